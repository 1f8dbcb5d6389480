package kbv

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// Encounter: KBV_PR_AW_Begegnung, one contact of the patient with the practice. The profile is
// checked by fhir/profile; here are the rules every encounter meets, what the profile tables do
// not cover yet, and plausibility.

func init() { register("Encounter", encounter) }

const (
	kbvSD = "https://fhir.kbv.de/StructureDefinition/"
	kbvCS = "https://fhir.kbv.de/CodeSystem/"

	extAdditionalComment = kbvSD + "KBV_EX_Base_Additional_Comment"
)

// vermittlungsart is KBV_VS_AW_Vermittlungsart: the TSS placement kinds an encounter may carry.
var vermittlungsart = codes("1", "2", "3")

// encounterStatus is the R4 encounter-status code list (a required binding of FHIR core).
var encounterStatus = codes("planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown")

func encounter(c *Cursor) {
	// FHIR core: status and class are required, status from its code list.
	// (until the profile tables cover FHIR core)
	c.Require("status", "class")
	codeIn(c.One("status"), encounterStatus, "encounter status")
	periodPast(c.One("period"), false)
	for _, p := range c.All("participant") {
		for _, id := range p.One("individual").All("identifier") {
			id.Identifier()
		}
	}
	name, foreign := pickProfile(c, "KBV_PR_AW_Begegnung")
	if foreign || name == "" {
		// Another Encounter profile (a home visit, a hospital stay), or none.
		refTo(c.One("subject"), "Patient")
		return
	}
	// KBV_PR_AW_Begegnung binds type to KBV_VS_AW_Vermittlungsart
	// (until the profile tables cover KBV_VS_AW_Vermittlungsart: it is not among the value sets read).
	for _, cd := range firstChild(c, "type").All("coding") {
		if code := cd.One("code"); code.Exists() && !vermittlungsart[code.Value()] {
			code.Errorf(fhir.CodeValue, "%q is not a Vermittlungsart of %s; allowed are %s", code.Value(), kbvCS+"KBV_CS_AW_TSVG_Vermittlungsart", orList(sortedCodes(vermittlungsart)))
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the clinical resource types (Encounter, Condition, Observation, Claim,
// DocumentReference, Medication*, Provenance).

// absentAt is a cursor for a location where nothing is (for reporting a missing slice).
func absentAt(c *Cursor, suffix string) *Cursor { return &Cursor{path: c.Path() + suffix, rep: c.rep} }

// firstChild walks down tags like One does, but without reporting repeated elements: for a
// second look at an element whose cardinality One already checked.
func firstChild(c *Cursor, tags ...string) *Cursor {
	for _, t := range tags {
		var el *etree.Element
		if c.el != nil {
			el = c.el.SelectElement(t)
		}
		c = c.child(el, t, -1)
	}
	return c
}

// pickProfile returns which of the known KBV profiles (names like "KBV_PR_AW_Begegnung") the
// resource claims in meta.profile (or was given by Options.Profile) and the profile tables checked
// it against. foreign is true when it claims profiles but none of those: the caller then applies
// only the rules every resource of its type meets. Claiming none, it gets the rules of its type's
// usual profile.
func pickProfile(c *Cursor, known ...string) (name string, foreign bool) {
	ps := c.rep.declared()
	if len(ps) == 0 {
		return "", false
	}
	for _, p := range ps {
		canon, _, _ := strings.Cut(p, "|")
		if n, ok := strings.CutPrefix(canon, kbvSD); ok && slices.Contains(known, n) {
			if !c.rep.profiled {
				return "", true // a version the tables do not hold: not checked against it
			}
			return n, false
		}
	}
	return "", true
}

// otherRef is the form of the references that name no type: urn:uuid:, urn:oid: and #id.
var otherRef = regexp.MustCompile(`^(urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|urn:oid:[0-2](\.(0|[1-9][0-9]*))+|#[A-Za-z0-9\-.]{1,64})$`)

// refType returns the resource type a reference names ("" for urn:uuid:…, urn:oid:… and #id) and
// whether it is written so that red can resolve it: Type/id or Type/id/_history/version, alone
// or at the end of an http(s) URL. (Read without regular expressions: every reference of every
// resource comes here.)
func refType(v string) (string, bool) {
	if strings.HasPrefix(v, "urn:") || strings.HasPrefix(v, "#") {
		return "", otherRef.MatchString(v)
	}
	base, abs := strings.CutPrefix(v, "https://")
	if !abs {
		base, abs = strings.CutPrefix(v, "http://")
	}
	if abs && strings.ContainsAny(base, " \t\n\r\f\v") {
		return "", false
	}
	segs := strings.Split(base, "/")
	for _, tail := range []int{4, 2} {
		switch {
		case abs && len(segs) <= tail, !abs && len(segs) != tail:
			continue
		case tail == 4 && (segs[len(segs)-2] != "_history" || !fhir.ValidID(segs[len(segs)-1])):
			continue
		case abs && strings.Join(segs[:len(segs)-tail], "/") == "":
			continue
		}
		if t := segs[len(segs)-tail:]; refTypeName(t[0]) && fhir.ValidID(t[1]) {
			return t[0], true
		}
	}
	return "", false
}

// refTypeName reports whether s can be a resource type: a capital letter and at least one more
// letter.
func refTypeName(s string) bool {
	if len(s) < 2 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// repeatingTags are the elements whose location carries an index even when there is only one
// (as fhir/profile writes them).
var repeatingTags = codes("extension", "modifierExtension", "identifier", "coding", "contained", "given", "prefix",
	"suffix", "line", "telecom", "address", "name", "contact", "category", "component", "performer", "link", "note",
	"reasonCode", "reasonReference", "qualification", "item", "diagnosis", "insurance", "content", "partOf", "basedOn",
	"supportingInfo", "target")

// coreRules checks what FHIR core says of every element, which the profile tables do not cover
// (until the profile tables cover FHIR core): an element has a value or content (ele-1);
// booleans, numbers and dates are written as FHIR writes them; and every reference (not in the
// resources contained in it) is written so that red can resolve it: Type/id,
// Type/id/_history/version, an absolute URL ending in one of these, urn:uuid: with a UUID,
// urn:oid:, or #id of a contained resource.
func coreRules(c *Cursor) {
	coreWalk(c, c.el)
}

func coreWalk(root *Cursor, el *etree.Element) {
	for _, tok := range el.Child {
		k, ok := tok.(*etree.Element)
		if !ok || k.Tag == "contained" || k.Tag == "text" {
			continue
		}
		value := k.SelectAttr("value") != nil
		switch {
		case !value && !hasChildElement(k) && k.SelectAttr("url") == nil:
			kc := &Cursor{el: k, parent: root, index: located, rep: root.rep}
			kc.Errorf(fhir.CodeRequired, "%s has neither a value nor content (FHIR ele-1)", k.Tag)
			continue
		case value:
			switch k.Tag {
			case "reference", "valueBoolean", "focal", "allowedBoolean", "valueDecimal", "valueInteger",
				"valueUnsignedInt", "valuePositiveInt", "valueDate", "valueDateTime":
				primitive(&Cursor{el: k, parent: root, index: located, rep: root.rep})
			}
		}
		coreWalk(root, k)
	}
}

func hasChildElement(el *etree.Element) bool {
	for _, tok := range el.Child {
		if _, ok := tok.(*etree.Element); ok {
			return true
		}
	}
	return false
}

// locate is the location of el below root's element, written as the rest of red writes them: an
// index where the element repeats (or repeats in FHIR everywhere, repeatingTags). Computed only
// for an element that is checked, so that walking costs no strings.
func locate(root *Cursor, el *etree.Element) string {
	var parts []string
	for e := el; e != nil && e != root.el; e = e.Parent() {
		part := "." + e.Tag
		if p := e.Parent(); p != nil {
			n, i := 0, 0
			for _, tok := range p.Child {
				if k, ok := tok.(*etree.Element); ok && k.Tag == e.Tag {
					if k == e {
						i = n
					}
					n++
				}
			}
			if repeatingTags[e.Tag] || n > 1 {
				part += "[" + strconv.Itoa(i) + "]"
			}
		}
		parts = append(parts, part)
	}
	slices.Reverse(parts)
	return root.Path() + strings.Join(parts, "")
}

// primitive checks the value of an element whose type its name tells: a reference, a value[x]
// of type boolean, integer, decimal, date or dateTime, and a few booleans.
func primitive(c *Cursor) {
	tag, v := c.el.Tag, c.Value()
	switch {
	case tag == "reference":
		switch _, ok := refType(strings.TrimSpace(v)); {
		case strings.TrimSpace(v) == "":
			c.Errorf(fhir.CodeRequired, "a reference value is required")
		case !ok:
			c.Errorf(fhir.CodeValue, "a reference is written Type/id, Type/id/_history/version, an absolute URL ending in Type/id, or urn:uuid: followed by a UUID")
		}
	case tag == "valueBoolean" || tag == "focal" || tag == "allowedBoolean":
		booleanValue(c)
	case tag == "valueDecimal":
		decimalValue(c)
	case tag == "valueInteger" || tag == "valueUnsignedInt" || tag == "valuePositiveInt":
		if !isInteger(v) || (tag == "valuePositiveInt" && strings.Trim(v, "0") == "") || (tag != "valueInteger" && strings.HasPrefix(v, "-")) {
			c.Errorf(fhir.CodeValue, "a whole number is written with digits only (FHIR %s)", strings.TrimPrefix(tag, "value"))
		}
	case tag == "valueDate":
		c.Date(true)
	case tag == "valueDateTime":
		c.Date(false)
	}
}

// isInteger reports whether v is written as a FHIR integer: an optional minus, then 0 or digits
// without a leading zero.
func isInteger(v string) bool {
	v = strings.TrimPrefix(v, "-")
	return v != "" && digits(v) && (v == "0" || v[0] != '0')
}

// refTo checks a present Reference of a resource the profile tables did not check: it must carry
// a reference, and the type it names must be one of types (any type when types is empty). How it
// is written is checked for every reference (refFormats); whether the target exists is checked
// where references are resolved.
func refTo(c *Cursor, types ...string) {
	if !c.Exists() {
		return
	}
	c.Require("reference")
	r := c.One("reference")
	if !r.Exists() {
		return
	}
	if typ, ok := refType(strings.TrimSpace(r.Value())); ok && typ != "" && len(types) > 0 && !slices.Contains(types, typ) {
		r.Errorf(fhir.CodeValue, "must refer to %s, not to %s", orList(types), typ)
	}
}

// orList writes "a", "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// fixedValue reports a present primitive whose value is not want; why explains the rule.
func fixedValue(c *Cursor, want, why string) {
	if c.Exists() && c.Value() != want {
		c.Errorf(fhir.CodeValue, "must be %q: %s", want, why)
	}
}

// codeIn reports a present primitive code that is not in set; what names the code list.
func codeIn(c *Cursor, set CodeSet, what string) {
	if !c.Exists() {
		return
	}
	if v := c.Value(); !set[v] {
		c.Errorf(fhir.CodeValue, "%q is not a %s; allowed are %s", v, what, orList(sortedCodes(set)))
	}
}

func sortedCodes(set CodeSet) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// codingIn checks a present Coding whose system must be one of the keys of bySystem, with its
// code in that system's set (any code when the set is nil).
func codingIn(c *Cursor, bySystem map[string]CodeSet) {
	if !c.Exists() {
		return
	}
	c.Require("system", "code")
	sys, code := c.One("system"), c.One("code")
	if !sys.Exists() {
		return
	}
	set, ok := bySystem[sys.Value()]
	if !ok {
		systems := make([]string, 0, len(bySystem))
		for s := range bySystem {
			systems = append(systems, s)
		}
		slices.Sort(systems)
		sys.Errorf(fhir.CodeValue, "the code system must be %s", orList(systems))
		return
	}
	if code.Exists() && set != nil && !set[code.Value()] {
		code.Errorf(fhir.CodeValue, "code %q is not in %s", code.Value(), sys.Value())
	}
}

// extensionOnce returns the one extension of c with url (name is how messages call it), reporting
// a missing required one and a repeated one. The returned cursor may be absent.
func extensionOnce(c *Cursor, url, name string, required bool) *Cursor {
	if !c.Exists() {
		return absentAt(c, ".extension")
	}
	es := c.Extension(url)
	switch {
	case len(es) == 0:
		if required {
			absentAt(c, ".extension").Errorf(fhir.CodeRequired, "the extension %s is required", name)
		}
		return absentAt(c, ".extension")
	case len(es) > 1:
		es[1].Errorf(fhir.CodeStructure, "the extension %s may occur only once, found %d", name, len(es))
	}
	return es[0]
}

// extValue returns the value[x] of an extension, which must be of type typ (for example
// "valueBoolean"): a missing value and a value of another type are reported.
func extValue(ext *Cursor, typ string) *Cursor {
	if !ext.Exists() {
		return absentAt(ext, "."+typ)
	}
	for _, k := range ext.Element().ChildElements() {
		if strings.HasPrefix(k.Tag, "value") && k.Tag != typ {
			absentAt(ext, "."+k.Tag).Errorf(fhir.CodeStructure, "only %s is allowed here", typ)
		}
	}
	ext.Require(typ)
	v := ext.One(typ)
	if typ == "valueBoolean" {
		booleanValue(v)
	}
	return v
}

// booleanValue reports a present primitive that is not true or false.
func booleanValue(c *Cursor) {
	if c.Exists() && c.Value() != "true" && c.Value() != "false" {
		c.Errorf(fhir.CodeValue, "a boolean is true or false")
	}
}

var clinicalDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// decimalValue parses a present primitive decimal, reporting a malformed one.
func decimalValue(c *Cursor) (float64, bool) {
	if !c.Exists() {
		return 0, false
	}
	v := c.Value()
	f, err := strconv.ParseFloat(v, 64)
	if !clinicalDecimal.MatchString(v) || err != nil {
		c.Errorf(fhir.CodeValue, "a decimal number is written with digits and an optional decimal point, like 12.5")
		return 0, false
	}
	return f, true
}

// positiveWhole reports a present primitive that is not a whole number of at least 1.
func positiveWhole(c *Cursor) (int, bool) {
	if !c.Exists() {
		return 0, false
	}
	n, err := strconv.Atoi(c.Value())
	if err != nil || n < 1 || strings.HasPrefix(c.Value(), "+") {
		c.Errorf(fhir.CodeValue, "a positive whole number is required")
		return 0, false
	}
	return n, true
}

// zoneSlack is how far a value without a time zone (a date, or a dateTime written without
// offset) may lie ahead of the server's clock and still be today somewhere.
const zoneSlack = 14 * time.Hour

// notFuture parses a present date or dateTime and reports one that lies in the future (plausibility:
// a warning, an error in strict mode). A value without a time zone is in the future only when it
// is after now in every time zone.
func notFuture(c *Cursor, dateOnly bool) (time.Time, bool) {
	t, ok := c.Date(dateOnly)
	if !ok {
		return t, false
	}
	limit := c.Now()
	if !hasTimeZone(c.Value()) {
		limit = limit.Add(zoneSlack)
	}
	if t.After(limit) {
		c.Warnf(fhir.CodeValue, "the date lies in the future")
	}
	return t, true
}

// hasTimeZone reports whether a dateTime value carries a time zone (Z or an offset after the time).
func hasTimeZone(v string) bool {
	_, clock, ok := strings.Cut(v, "T")
	return ok && strings.ContainsAny(clock, "Z+-")
}

// latestInstant is the last instant a date or dateTime value v (parsed as t, its earliest instant) can
// mean: the end of the year, month or day for partial dates.
func latestInstant(v string, t time.Time) time.Time {
	switch len(v) {
	case 4:
		return t.AddDate(1, 0, 0).Add(-time.Nanosecond)
	case 7:
		return t.AddDate(0, 1, 0).Add(-time.Nanosecond)
	case 10:
		return t.AddDate(0, 0, 1).Add(-time.Nanosecond)
	}
	return t
}

// periodPast checks a Period whose start should not lie in the future (and its end neither unless
// endMayBeFuture; plausibility): both well-formed, and the start not after the end (the FHIR core
// invariant per-1; until the profile tables cover FHIR core).
func periodPast(p *Cursor, endMayBeFuture bool) {
	if !p.Exists() {
		return
	}
	s, sok := notFuture(p.One("start"), false)
	var e time.Time
	var eok bool
	if endMayBeFuture {
		e, eok = p.One("end").Date(false)
	} else {
		e, eok = notFuture(p.One("end"), false)
	}
	if sok && eok && s.After(latestInstant(p.One("end").Value(), e)) {
		p.Errorf(fhir.CodeInvariant, "the period starts after it ends")
	}
}

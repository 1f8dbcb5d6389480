package kbv

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redclone/red/fhir"
)

// Encounter: KBV_PR_AW_Begegnung, one contact of the patient with the practice.

func init() { register("Encounter", encounter) }

const (
	kbvSD = "https://fhir.kbv.de/StructureDefinition/"
	kbvCS = "https://fhir.kbv.de/CodeSystem/"
	ucum  = "http://unitsofmeasure.org"
	anrNS = "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR"

	extAbrechnungsrelevant = kbvSD + "KBV_EX_AW_istAbrechnungsrelevant"
	extAdditionalComment   = kbvSD + "KBV_EX_Base_Additional_Comment"
	extBegegnungsinfo      = kbvSD + "KBV_EX_AW_Begegnung_Spezielle_Begegnungsinformationen"
)

// vermittlungsart is KBV_VS_AW_Vermittlungsart: the TSS placement kinds an encounter may carry.
var vermittlungsart = codes("1", "2", "3")

// encounterStatus is the R4 encounter-status code list, for encounters of other profiles.
var encounterStatus = codes("planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown")

func encounter(c *Cursor) {
	if _, foreign := pickProfile(c, "KBV_PR_AW_Begegnung"); foreign {
		// Another Encounter profile (a home visit, a hospital stay): only what every encounter needs.
		c.Require("status", "class")
		codeIn(c.One("status"), encounterStatus, "encounter status")
		refTo(c.One("subject"), "Patient")
		periodPast(c.One("period"), false)
		return
	}

	c.Require("status", "class", "subject", "participant", "period", "serviceProvider")
	c.Forbid("identifier", "statusHistory", "classHistory", "serviceType", "priority", "episodeOfCare",
		"appointment", "length", "reasonCode", "reasonReference", "diagnosis", "account", "hospitalization", "location")

	fixedValue(c.One("status"), "finished", "an encounter recorded in the patient file has status finished")
	c.One("class").Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", codes("AMB"))

	if t := c.One("type"); t.Exists() {
		singleCoding(t, kbvCS+"KBV_CS_AW_TSVG_Vermittlungsart", vermittlungsart)
	}
	refTo(c.One("subject"), "Patient")
	if b := c.One("basedOn"); b.Exists() {
		refTo(b, "ServiceRequest")
	}
	if p := c.One("partOf"); p.Exists() {
		refTo(p, "Encounter")
	}

	part := c.One("participant")
	part.Forbid("type", "period")
	part.Require("individual")
	if ind := part.One("individual"); ind.Exists() {
		id := ind.One("identifier")
		if ind.Count("reference") == 0 && !id.Exists() {
			ind.Require("reference")
		}
		// The profile names KBV_PR_AW_BehandelnderFunktion; KBV's own example refers to the Practitioner.
		if ind.Count("reference") > 0 {
			refTo(ind, "PractitionerRole", "Practitioner")
		}
		if id.Exists() {
			id.Require("system")
			fixedValue(id.One("system"), anrNS, "the identifier of the treating doctor is the LANR")
			id.Identifier()
		}
	}

	period := c.One("period")
	period.Require("start")
	periodPast(period, false)

	refTo(c.One("serviceProvider"), "Organization")

	for _, e := range c.Extension(extBegegnungsinfo) {
		if typ := subExtension(e, "typ", true); typ.Exists() {
			if v := extValue(typ, "valueCodeableConcept"); v.Exists() {
				v.Forbid("coding")
				v.Require("text")
				v.One("text").NotEmpty()
			}
		}
		if inhalt := subExtension(e, "inhalt", true); inhalt.Exists() {
			extValue(inhalt, "valueString").NotEmpty()
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the clinical resource types (Encounter, Condition, Observation, Claim,
// DocumentReference, Medication*, Provenance).

// absentAt is a cursor for a location where nothing is (for reporting a missing slice).
func absentAt(c *Cursor, suffix string) *Cursor { return &Cursor{path: c.path + suffix, rep: c.rep} }

// firstChild walks down tags like One does, but without reporting repeated elements: for a
// second look at an element whose cardinality One already checked.
func firstChild(c *Cursor, tags ...string) *Cursor {
	for _, t := range tags {
		k := &Cursor{path: c.path + "." + t, rep: c.rep}
		if c.el != nil {
			k.el = c.el.SelectElement(t)
		}
		c = k
	}
	return c
}

// pickProfile returns which of the known KBV profiles (names like "KBV_PR_AW_Begegnung") the
// resource claims in meta.profile, any version. foreign is true when it claims profiles but none
// of the known ones: the caller then applies only the rules every resource of its type meets.
func pickProfile(c *Cursor, known ...string) (name string, foreign bool) {
	metas := c.All("meta") // a second meta is reported by the checks every resource gets
	if len(metas) == 0 {
		return "", false
	}
	ps := metas[0].All("profile")
	if len(ps) == 0 {
		return "", false
	}
	for _, p := range ps {
		canon, _, _ := strings.Cut(p.Value(), "|")
		if n, ok := strings.CutPrefix(canon, kbvSD); ok && slices.Contains(known, n) {
			return n, false
		}
	}
	return "", true
}

var (
	relativeRef = regexp.MustCompile(`^([A-Z][A-Za-z]+)/[A-Za-z0-9\-.$_]{1,64}(/_history/[A-Za-z0-9\-.$_]{1,64})?$`)
	absoluteRef = regexp.MustCompile(`^https?://\S+/([A-Z][A-Za-z]+)/[A-Za-z0-9\-.$_]{1,64}(/_history/[A-Za-z0-9\-.$_]{1,64})?$`)
	uuidRef     = regexp.MustCompile(`^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// refTo checks a present Reference: it must carry a reference written as Type/id,
// Type/id/_history/version, an absolute URL ending in one of these, or urn:uuid:…, and the type
// must be one of types (any type when types is empty). Whether the target exists is checked
// where references are resolved, not here.
func refTo(c *Cursor, types ...string) {
	if !c.Exists() {
		return
	}
	c.Require("reference")
	r := c.One("reference")
	if !r.Exists() {
		return
	}
	v := strings.TrimSpace(r.Value())
	if v == "" {
		r.Errorf(fhir.CodeRequired, "a reference value is required")
		return
	}
	if uuidRef.MatchString(v) {
		return
	}
	m := relativeRef.FindStringSubmatch(v)
	if m == nil {
		m = absoluteRef.FindStringSubmatch(v)
	}
	if m == nil {
		r.Errorf(fhir.CodeValue, "a reference is written Type/id, Type/id/_history/version, an absolute URL ending in Type/id, or urn:uuid: followed by a UUID")
		return
	}
	if len(types) > 0 && !slices.Contains(types, m[1]) {
		r.Errorf(fhir.CodeValue, "must refer to %s, not to %s", orList(types), m[1])
	}
}

// requiredRef requires parent.tag (at most once) and checks it with refTo.
func requiredRef(parent *Cursor, tag string, types ...string) {
	parent.Require(tag)
	refTo(parent.One(tag), types...)
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

// singleCoding checks a CodeableConcept that carries exactly one coding from system (allowed codes
// only, any code when allowed is nil).
func singleCoding(cc *Cursor, system string, allowed CodeSet) {
	if !cc.Exists() {
		return
	}
	cc.Require("coding")
	cc.One("coding").Coding(system, allowed)
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

// subExtension returns the sub-extension url of a complex extension, reporting a missing
// required one and a repeated one. The returned cursor may be absent.
func subExtension(ext *Cursor, url string, required bool) *Cursor {
	return extensionOnce(ext, url, url, required)
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

// moneyValue checks a Money: value required and a decimal; currency required, and EUR when eur.
func moneyValue(c *Cursor, eur bool) {
	if !c.Exists() {
		return
	}
	c.Require("value", "currency")
	decimalValue(c.One("value"))
	if eur {
		fixedValue(c.One("currency"), "EUR", "amounts are in euro")
	}
}

// zoneSlack is how far a value without a time zone (a date, or a dateTime written without
// offset) may lie ahead of the server's clock and still be today somewhere.
const zoneSlack = 14 * time.Hour

// notFuture parses a present date or dateTime and reports one that lies in the future. A value without
// a time zone is in the future only when it is after now in every time zone.
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
		c.Errorf(fhir.CodeValue, "the date lies in the future")
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

// periodPast checks a Period whose start must not lie in the future (and its end neither unless
// endMayBeFuture): both well-formed, and the start not after the end.
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

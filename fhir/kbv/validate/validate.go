// Package validate checks one resource "as if entered by hand", with the official profiles as the
// source of truth: fhir/profile validates it against its KBV profile (generated tables from the
// StructureDefinitions, invariants evaluated by fhir/fhirpath) — every violation is an error — and
// then the hand-written rules of fhir/kbv add what the profiles cannot state: identifier numbers,
// plausible dates and values, consistency, FHIR core rules and the profile rules the tables do
// not cover yet.
//
// Which profile: the ones the resource names in meta.profile. A resource without meta.profile
// (PVS often omit it; RED accepts that) is checked against the KBV AWS profile of its type when
// the tables leave no doubt which one that is (see Choose). A profile the tables do not hold (a
// foreign one, another version) is an information issue, never an error.
//
// RED writes some elements itself, so their absence is no error here: the narrative (text), which
// red replaces, and meta.versionId and meta.lastUpdated, which red sets on every write.
package validate

import (
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirpath"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/profile"
)

// Resource checks res, located at (for example "Bundle.entry[3].resource"), on its own: the
// resources inside it (contained, a Bundle's entries) are not validated against their profiles.
// opts.Now is the clock for invariants and plausibility; opts.Mode says whether plausibility
// findings are warnings or errors; opts.Profile is ignored (the profile is chosen here).
//
// For a resource without meta.profile, the chosen profile is added to res's meta for the
// duration of the call and removed again: res must not be read concurrently meanwhile.
func Resource(res *etree.Element, at string, opts kbv.Options) fhir.Issues {
	if res == nil {
		return nil
	}
	if at == "" {
		at = res.Tag
	}
	popts := ProfileOptions(opts.Now)
	var issues fhir.Issues
	opts.Profile = ""
	var checked []string // the profiles res is checked against, without version
	if ps := metaProfiles(res); len(ps) > 0 {
		issues, checked = againstMeta(res, at, popts)
	} else {
		c := Choose(res)
		if c.Canonical == "" {
			opts.Profile = kbv.Generic
			issues = fhir.Issues{{Severity: fhir.SeverityInformation, Code: fhir.CodeInformational, Expression: at + ".meta.profile", Diagnostics: c.Why}}
		} else {
			opts.Profile = c.Canonical
			issues = against(res, c.Canonical, at, popts)
			checked = append(checked, c.Canonical)
		}
	}
	opts.Profiled = len(checked) > 0
	issues = tolerate(issues, at, checked, opts.Mode)
	return merge(issues, kbv.CheckWith(res, at, opts))
}

// againstMeta validates res against the profiles its meta.profile names (fhir/profile alone,
// without red's hand-written rules) and returns the findings with the profiles checked, their
// URLs without version.
func againstMeta(res *etree.Element, at string, popts profile.Options) (fhir.Issues, []string) {
	var checked []string
	for _, p := range metaProfiles(res) {
		if url, ok := inTables(fhir.Value(p), res.Tag); ok {
			checked = append(checked, url)
		}
	}
	return profile.Validate(res, at, popts), checked
}

// merge adds the hand-written rules' findings to the profile's, leaving out an error the profile
// reports already (an error of the same code at the same location).
func merge(prof, hand fhir.Issues) fhir.Issues {
	type key struct {
		code fhir.IssueCode
		at   string
	}
	errs := map[key]bool{}
	for _, i := range prof {
		if i.Severity == fhir.SeverityError {
			errs[key{i.Code, i.Expression}] = true
		}
	}
	for _, i := range hand {
		if i.Severity == fhir.SeverityError && errs[key{i.Code, i.Expression}] {
			continue
		}
		prof = append(prof, i)
	}
	return prof
}

// metaProfiles are the profile elements of res's meta.
func metaProfiles(res *etree.Element) []*etree.Element {
	if meta := res.SelectElement("meta"); meta != nil {
		return meta.SelectElements("profile")
	}
	return nil
}

// inTables reports whether fhir/profile checks a resource of type typ against the profile
// canonical (with an optional |version) names, and returns its URL.
func inTables(canonical, typ string) (string, bool) {
	sd := profile.Default().Profile(canonical) // picks the version as fhir/profile does (1.2 → 1.2.1)
	if sd == nil || sd.Type != typ {
		return "", false
	}
	return sd.URL, true
}

// against validates res, which names no profile, against canonical as if its meta.profile named
// it: the profile's fixed meta.profile holds, and the extensions outside slices are checked too,
// as fhir/profile does for the profiles a resource names.
func against(res *etree.Element, canonical, at string, opts profile.Options) fhir.Issues {
	sd := profile.Default().Profile(canonical)
	meta := res.SelectElement("meta")
	added := meta == nil
	if added {
		meta = etree.NewElement("meta")
		res.InsertChildAt(metaIndex(res), meta)
	}
	p := meta.CreateElement("profile")
	fhir.SetValue(p, sd.URL+"|"+sd.Version)
	defer func() {
		if added {
			res.RemoveChild(meta)
		} else {
			meta.RemoveChild(p)
		}
	}()
	return profile.Validate(res, at, opts)
}

// metaIndex is where meta goes among res's children: after id.
func metaIndex(res *etree.Element) int {
	for i, c := range res.Child {
		if el, ok := c.(*etree.Element); ok && el.Tag == "id" {
			return i + 1
		}
	}
	return 0
}

// ProfileOptions are the options of fhir/profile that Resource validates with: invariants read
// now as today, res alone (not the resources inside it), red's supplied elements.
func ProfileOptions(now time.Time) profile.Options {
	return profile.Options{Invariants: NewInvariants(now), TopOnly: true, Supplied: supplied}
}

// supplied are the elements red writes itself, whose absence the profile need not report: the
// narrative (replaced on every write), meta with versionId and lastUpdated (set on every write),
// and the id, whose absence the hand-written rules report with red's reason (it is the identity
// the resource is stored under).
var supplied = []string{"id", "text", "meta", "meta.versionId", "meta.lastUpdated"}

// tolerance is a profile finding red does not count because RED's API accepts what the profile
// forbids: the profile, the finding's location below the resource without indices, its code, and
// a text its message contains ("" for any).
type tolerance struct {
	profile, path string
	code          fhir.IssueCode
	text          string
}

// redTolerances: RED carries a document inline, base64 in content.attachment.data, where
// KBV_PR_AW_Anlage wants a url (and forbids data), and without the Anlage's version extension.
// And the tables bind the DMP-Kennzeichen to version 1.03 of the DMP key table (00–09), while the
// eGK carries the codes of the key table in force (1.06 since October 2024: 00–12, 30–58):
// fhir/kbv checks them against that (until the profile tables carry the current key table).
var redTolerances = []tolerance{
	{kbvSD + "KBV_PR_AW_Anlage", "content.attachment.data", fhir.CodeStructure, ""},
	{kbvSD + "KBV_PR_AW_Anlage", "content.attachment.url", fhir.CodeRequired, ""},
	{kbvSD + "KBV_PR_AW_Anlage", "content.attachment.extension", fhir.CodeRequired, "version_der_Anlage"},
	{kbvSD + "KBV_PR_AW_Krankenversicherungsverhaeltnis", "extension.valueCoding", fhir.CodeInvalid, "https://fhir.kbv.de/ValueSet/KBV_VS_SFHIR_KBV_DMP"},
}

// tolerate drops the findings below what red writes itself (supplied: a narrative or meta given
// badly is replaced) and those RED's API tolerates for the profiles checked.
func tolerate(is fhir.Issues, at string, checked []string, mode kbv.Mode) fhir.Issues {
	out := is[:0]
next:
	for _, i := range is {
		e, ok := strings.CutPrefix(i.Expression, at)
		if ok && (under(e, ".text") || under(e, ".meta.versionId") || under(e, ".meta.lastUpdated")) {
			continue
		}
		if i.Severity == fhir.SeverityError && mode != kbv.ModeStrict && practitionerForRole(i) {
			i.Severity = fhir.SeverityWarning
			i.Diagnostics += " — red accepts it, as the KBV's own examples refer so and its validation accepts them"
		}
		if rel, ok := strings.CutPrefix(e, "."); ok {
			rel = withoutIndices(rel)
			for _, t := range redTolerances {
				if rel == t.path && i.Code == t.code && strings.Contains(i.Diagnostics, t.text) && slices.Contains(checked, t.profile) {
					continue next
				}
			}
		}
		out = append(out, i)
	}
	return out
}

// practitionerForRole reports a finding of fhir/profile that a reference names a Practitioner (or
// a practice's Organization) where the profile wants the PractitionerRole
// (KBV_PR_AW_BehandelnderFunktion). The KBV's own examples of AWS 1.2.0 refer so (Begegnung,
// Abrechnung_Vertragsaerztlich, Bundle_Sprechstundenbedarf) and the KBV's validation reports no
// error for them, so red does not refuse it: it is a warning (an error in strict mode).
func practitionerForRole(i fhir.Issue) bool {
	if i.Code != fhir.CodeStructure || !strings.HasSuffix(i.Expression, ".reference") ||
		!strings.Contains(i.Diagnostics, kbvSD+"KBV_PR_AW_BehandelnderFunktion") && !strings.Contains(i.Diagnostics, "(KBV_PR_AW_BehandelnderFunktion)") {
		return false
	}
	m := referencedType.FindStringSubmatch(i.Diagnostics)
	return m != nil && (m[1] == "Practitioner" || m[1] == "Organization")
}

// referencedType finds the type a reference names in fhir/profile's finding about a reference
// target ("reference to a resource of type Practitioner is not allowed here; …").
var referencedType = regexp.MustCompile(`^reference to a resource of type ([A-Z][A-Za-z]+)`)

// withoutIndices drops the [n] of a location: content[0].attachment → content.attachment.
func withoutIndices(e string) string { return indices.ReplaceAllString(e, "") }

var indices = regexp.MustCompile(`\[[0-9]+\]`)

// under reports whether location e is at or below location p.
func under(e, p string) bool {
	rest, ok := strings.CutPrefix(e, p)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// Invariants evaluates the profiles' invariants with fhir/fhirpath, today() and now() reading
// Now (time.Now when zero). Each expression is compiled once for the process and kept; Invariants
// is safe for concurrent use.
type Invariants struct {
	Now time.Time

	clock []fhirpath.Option // Now as the evaluation's clock, made once (see NewInvariants)
}

// NewInvariants is Invariants{Now: now} with its clock option made once, for many evaluations.
func NewInvariants(now time.Time) Invariants {
	iv := Invariants{Now: now}
	if !now.IsZero() {
		iv.clock = []fhirpath.Option{fhirpath.WithClock(func() time.Time { return now })}
	}
	return iv
}

// compiled is an expression's compilation, kept by its text.
type compiled struct {
	expr *fhirpath.Expr
	err  error
}

var cache sync.Map // expression → *compiled

// Check evaluates expr with el as its context: true when the invariant holds.
func (iv Invariants) Check(expr string, el *etree.Element) (bool, error) {
	c, ok := cache.Load(expr)
	if !ok {
		e, err := fhirpath.Compile(expr)
		c, _ = cache.LoadOrStore(expr, &compiled{e, err})
	}
	cc := c.(*compiled)
	if cc.err != nil {
		return false, cc.err
	}
	switch {
	case iv.clock != nil:
		return cc.expr.Bool(el, iv.clock...)
	case iv.Now.IsZero():
		return cc.expr.Bool(el)
	}
	now := iv.Now
	return cc.expr.Bool(el, fhirpath.WithClock(func() time.Time { return now }))
}

package validate

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirpath"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/profile"
	"github.com/redclone/red/fhir/profile/sample"
	"github.com/redclone/red/internal/fixture"
)

// generatedNow is the clock the generated instances are validated with (their dates lie in
// January 2025).
var generatedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const kbvCS = "https://fhir.kbv.de/CodeSystem/"

// hint is what a profile needs beyond what fhir/profile/sample takes from the tables, and why.
type hint struct {
	why      string
	contents string      // the profile of the resource in Bundle.entry.resource
	set      [][2]string // element path (etree syntax below the resource) and the value to give it
}

// generatedHints: the KBV's own value sets of these bindings are not in the tables (their codes
// are checked by fhir/kbv), and a Bundle's entries are not typed by its profile (invariants ask
// for the resources by meta.profile).
var generatedHints = map[string]hint{
	"KBV_PR_AW_Abrechnung_privat": {why: "subType binds KBV_VS_AW_Abrechnung_Art_Privat, not in the tables: a private kind",
		set: [][2]string{{"subType/coding/system", kbvCS + "KBV_CS_AW_Abrechnung_Art"}, {"subType/coding/code", "Privat"}}},
	"KBV_PR_AW_Abrechnung_vertragsaerztlich": {why: "kostentraeger-Abrechnungsbereich binds KBV_VS_AW_Kostentraeger-Abrechnungsbereich, not in the tables: one of its codes",
		set: [][2]string{
			{"extension/extension[@url='kostentraeger-Abrechnungsbereich']/valueCodeableConcept/coding/system", kbvCS + "KBV_CS_AW_Kostentraeger-Abrechnungsbereich"},
			{"extension/extension[@url='kostentraeger-Abrechnungsbereich']/valueCodeableConcept/coding/code", "90"},
		}},
	"KBV_PR_AW_Anlage": {why: "type binds KBV_VS_AW_Anlagetyp, not in the tables: one of its codes",
		set: [][2]string{{"type/coding/system", kbvCS + "KBV_CS_AW_Anlagetyp"}, {"type/coding/code", "Arztbrief"}}},
	"KBV_PR_AW_Bundle_Adressbuch":          {why: "entries are untyped; invariant Allowed2 wants KBV AWS resources", contents: "KBV_PR_AW_Organisation"},
	"KBV_PR_AW_Bundle_Behandlungsbaustein": {why: "entries are untyped: a building block", contents: "KBV_PR_AW_Behandlungsbaustein_Definition"},
	"KBV_PR_AW_Bundle_Patientenakte":       {why: "entries are untyped; invariant Allowed1 wants a KBV_PR_AW_Patient", contents: "KBV_PR_AW_Patient"},
	"KBV_PR_AW_Bundle_Sprechstundenbedarf": {why: "entries are untyped; invariant Allowed1 wants a KBV_PR_AW_Anforderung_Sprechstundenbedarf", contents: "KBV_PR_AW_Anforderung_Sprechstundenbedarf"},
	"KBV_PR_AW_Bundle_Termin":              {why: "entries are untyped; invariant Allowed1 wants a KBV_PR_AW_Termin", contents: "KBV_PR_AW_Termin"},
}

// generate builds the minimal instance of the AWS profile name (with its hint) as it is posted:
// written and parsed again.
func generate(t *testing.T, name string) *etree.Element {
	t.Helper()
	h := generatedHints[name]
	opts := sample.Options{Invariants: strictInvariants{}}
	if h.contents != "" {
		opts.Contents = map[string]string{"Bundle.entry.resource": kbvSD + h.contents}
	}
	res, err := sample.Minimal(profile.Default(), kbvSD+name, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range h.set {
		el := res.FindElement("./" + s[0])
		if el == nil {
			t.Fatalf("%s: the hint's element %s is not in the instance\n%s", name, s[0], fhir.Document(res))
		}
		fhir.SetValue(el, s[1])
	}
	parsed, err := fhir.Parse(fhir.Marshal(res), fhir.DefaultLimits)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, fhir.Document(res))
	}
	return parsed
}

// TestGeneratedAWSInstances posts a minimal instance of every KBV AWS 1.2.0 resource profile,
// generated from the tables (fhir/profile/sample), in place of the KBV's examples, which may not
// be redistributed. Each must pass fhir/profile without errors and validate.Resource with exactly
// the errors testdata/generated-aws-1.2.0.tsv expects: what a hand-written rule of fhir/kbv
// refuses although the profile allows it. Each instance is posted again without meta.profile
// with the same outcome: Choose picks its profile or, for a type with several, may pick none (the
// hand-written rules alone check it then), never another.
func TestGeneratedAWSInstances(t *testing.T) {
	want := generatedExpectations(t)
	var names []string
	for _, ns := range awsProfiles {
		names = append(names, ns...)
	}
	sort.Strings(names)
	for name := range want {
		if !slices.Contains(names, name) {
			t.Errorf("testdata lists %s, which is no KBV AWS profile", name)
		}
	}
	clean, chosen := 0, 0
	for _, name := range names {
		res := generate(t, name)
		popts := profile.Options{Invariants: Invariants{Now: generatedNow}}
		if errs := errorsAt(profile.Validate(res, "", popts)); len(errs) > 0 {
			t.Errorf("%s: fhir/profile reports %q\n%s", name, errs, fhir.Document(res))
		}
		got := errorsAt(Resource(res, "", kbv.Options{Now: generatedNow}))
		if !slices.Equal(got, want[name]) {
			t.Errorf("%s: errors %q, want %q (hint: %q)\n%s", name, got, want[name], generatedHints[name].why, fhir.Document(res))
		}
		if len(got) == 0 {
			clean++
		}

		// without meta.profile
		meta := res.SelectElement("meta")
		for _, p := range meta.SelectElements("profile") {
			meta.RemoveChild(p)
		}
		if len(meta.ChildElements()) == 0 {
			res.RemoveChild(meta)
		}
		switch c := Choose(res).Canonical; c {
		case kbvSD + name:
			chosen++
		case "":
		default:
			t.Errorf("%s without meta.profile: Choose picks %s", name, c)
		}
		is := Resource(res, "", kbv.Options{Now: generatedNow})
		if got := errorsAt(is); !slices.Equal(got, want[name]) {
			t.Errorf("%s without meta.profile: errors %q, want %q", name, got, want[name])
		}
	}
	t.Logf("%d AWS profiles: %d instances without errors, %d with the expected findings; without meta.profile, Choose picks the profile of %d, none for the others (their types have several profiles)",
		len(names), clean, len(names)-clean, chosen)
}

// errorsAt are the locations (code and expression) of the error issues, sorted.
func errorsAt(is fhir.Issues) []string {
	var out []string
	for _, i := range is {
		if i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal {
			out = append(out, string(i.Code)+" "+i.Expression)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// generatedExpectations reads testdata/generated-aws-1.2.0.tsv: per profile the errors expected
// (code and expression, ' ; '-separated).
func generatedExpectations(t *testing.T) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	for _, row := range fixture.Table(t, "testdata/generated-aws-1.2.0.tsv", 3) {
		errs := strings.Split(row[1], " ; ")
		slices.Sort(errs)
		want[row[0]] = errs
	}
	return want
}

// strictInvariants evaluate the invariants for the generator as the HL7 validator does, reading
// an expression without result as violated, so that the instances meet them under either reading
// (fhir/profile reads no result as holding).
type strictInvariants struct{}

var strictCache sync.Map // expression → *fhirpath.Expr

func (strictInvariants) Check(expr string, el *etree.Element) (bool, error) {
	e, ok := strictCache.Load(expr)
	if !ok {
		c, err := fhirpath.Compile(expr)
		if err != nil {
			return false, err
		}
		e, _ = strictCache.LoadOrStore(expr, c)
	}
	return e.(*fhirpath.Expr).Bool(el, fhirpath.EmptyResult(false), fhirpath.WithClock(func() time.Time { return generatedNow }))
}

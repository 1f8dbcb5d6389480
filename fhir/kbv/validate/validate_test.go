package validate_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/internal/fixture"
)

var now = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

const (
	kbvSD = "https://fhir.kbv.de/StructureDefinition/"
	at    = "Bundle.entry[0].resource"
)

// load parses a fixture of fhir/kbv's testdata the way request bodies are parsed.
func load(t testing.TB, name string) *etree.Element {
	t.Helper()
	res, err := fhir.Parse(fixture.Read(t, filepath.Join("..", "testdata", name)), fhir.DefaultLimits)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func parse(t testing.TB, xml string) *etree.Element {
	t.Helper()
	res, err := fhir.Parse([]byte(xml), fhir.DefaultLimits)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return res
}

// change edits a fixture at the element path (etree syntax; "." is the resource): it sets the
// element's value, removes the element (del) or appends the XML fragment add to it.
type change struct {
	path, set, add string
	del            bool
}

func (c change) apply(t testing.TB, res *etree.Element) {
	t.Helper()
	el := res
	if c.path != "." {
		if el = res.FindElement("./" + c.path); el == nil {
			t.Fatalf("no element at %s", c.path)
		}
	}
	switch {
	case c.del:
		el.Parent().RemoveChild(el)
	case c.add != "":
		doc := etree.NewDocument()
		if err := doc.ReadFromString("<x>" + c.add + "</x>"); err != nil {
			t.Fatal(err)
		}
		for _, k := range doc.Root().ChildElements() {
			el.AddChild(k.Copy())
		}
	default:
		el.CreateAttr("value", c.set)
	}
}

func check(t testing.TB, file string, mode kbv.Mode, edits ...change) fhir.Issues {
	t.Helper()
	res := load(t, file)
	for _, e := range edits {
		e.apply(t, res)
	}
	return validate.Resource(res, at, kbv.Options{Now: now, Mode: mode})
}

func list(is fhir.Issues) string {
	var b strings.Builder
	for _, i := range is {
		fmt.Fprintf(&b, "\n  %s %s %s: %s", i.Severity, i.Code, i.Expression, i.Diagnostics)
	}
	return b.String()
}

// finding is a severity at a location ("" for none expected there).
type finding struct {
	sev fhir.Severity
	at  string
}

func has(is fhir.Issues, f finding) bool {
	return slices.ContainsFunc(is, func(i fhir.Issue) bool { return i.Severity == f.sev && i.Expression == at+f.at })
}

func errorsOf(is fhir.Issues) fhir.Issues {
	var out fhir.Issues
	for _, i := range is {
		if i.Severity == fhir.SeverityError {
			out = append(out, i)
		}
	}
	return out
}

// TestChangedRules are the rules issue 9 changes: each was stricter than the KBV (or wrong), or
// is now judged by the profile. want is what the default mode reports (nil: nothing at all but
// what is listed), strict what strict mode does.
func TestChangedRules(t *testing.T) {
	const (
		cov   = "persons/coverage.xml"
		pat   = "persons/patient.xml"
		doc   = "clinical/documentreference.xml"
		gkvID = `<identifier><type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="GKV"/></coding></type><system value="http://fhir.de/NamingSystem/gkv/kvid-10"/><value value="M123456785"/></identifier>`
		altIK = `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_Alternative_IK"><valueIdentifier><system value="http://fhir.de/NamingSystem/arge-ik/iknr"/><value value="260326822"/></valueIdentifier></extension>`
	)
	cases := []struct {
		name   string
		file   string
		edits  []change
		want   []finding // every finding of the default mode
		strict []finding // findings strict mode must have (besides)
	}{
		{name: "GKV coverage without besondere-personengruppe, dmp-kennzeichen and wop (0..1 in the AWS profile)", file: cov,
			edits: []change{change{path: "extension[@url='http://fhir.de/StructureDefinition/gkv/besondere-personengruppe']", del: true},
				change{path: "extension[@url='http://fhir.de/StructureDefinition/gkv/dmp-kennzeichen']", del: true},
				change{path: "extension[@url='http://fhir.de/StructureDefinition/gkv/wop']", del: true}}},
		{name: "alternative IK for a GKV coverage (no rule keeps it to BG or UK)", file: cov,
			edits: []change{change{path: "payor/identifier", add: altIK}}},
		{name: "KVNR check digit: a warning, an error in strict mode", file: cov,
			edits:  []change{change{path: "identifier/value", set: "M123456784"}},
			want:   []finding{{fhir.SeverityWarning, ".identifier[0].value"}},
			strict: []finding{{fhir.SeverityError, ".identifier[0].value"}}},
		{name: "IK check digit: a warning, an error in strict mode", file: cov,
			edits:  []change{change{path: "payor/identifier/value", set: "109500127"}},
			want:   []finding{{fhir.SeverityWarning, ".payor[0].identifier.value"}},
			strict: []finding{{fhir.SeverityError, ".payor[0].identifier.value"}}},
		{name: "Coverage.subscriber.display missing with a HauptversichertenID: a warning", file: cov,
			edits:  []change{change{path: "subscriber/display", del: true}},
			want:   []finding{{fhir.SeverityWarning, ".subscriber.display"}},
			strict: []finding{{fhir.SeverityError, ".subscriber.display"}}},
		{name: "the identifier type GKV (the AWS profiles' KVNR type): no warning", file: pat,
			edits: []change{change{path: "identifier[2]", del: true}, change{path: ".", add: gkvID}}},
		{name: "attachment without contentType (0..1)", file: doc,
			edits: []change{change{path: "content/attachment/contentType", del: true}}},
		{name: "document of patient and encounter: the invariant's xor refuses two", file: doc,
			edits: []change{change{path: ".", add: `<subject><reference value="Patient/P1001"/></subject>`}},
			want:  []finding{{fhir.SeverityError, ""}}},
		{name: "document of none: the invariant's xor refuses it", file: doc,
			edits: []change{change{path: "context", del: true}},
			want:  []finding{{fhir.SeverityError, ""}}},
		{name: "document of patient, encounter and related entry: the invariant's xor (an odd number) holds", file: doc,
			edits: []change{change{path: ".", add: `<subject><reference value="Patient/P1001"/></subject>`},
				change{path: "context", add: `<related><reference value="Organization/O4001"/></related>`}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := check(t, tc.file, kbv.ModeProfile, tc.edits...)
			if len(got) != len(tc.want) {
				t.Errorf("got %d findings, want %d:%s", len(got), len(tc.want), list(got))
			}
			for _, f := range tc.want {
				if !has(got, f) {
					t.Errorf("want %s at %s, got:%s", f.sev, at+f.at, list(got))
				}
			}
			strict := check(t, tc.file, kbv.ModeStrict, tc.edits...)
			for _, f := range tc.strict {
				if !has(strict, f) {
					t.Errorf("strict mode: want %s at %s, got:%s", f.sev, at+f.at, list(strict))
				}
			}
			if len(tc.strict) == 0 && len(errorsOf(strict)) != len(errorsOf(got)) {
				t.Errorf("strict mode changes errors where no plausibility finding is:%s", list(strict))
			}
		})
	}
}

// TestPrescriptionNumbers: in an e-prescription (KBV_PR_ERP_*, and the KBV_PR_FOR_* profiles of
// its persons) a wrong number is an error in every mode.
func TestPrescriptionNumbers(t *testing.T) {
	med := parse(t, `<Medication xmlns="http://hl7.org/fhir"><id value="m1"/><meta><profile value="`+kbvSD+`KBV_PR_ERP_Medication_PZN|1.1.0"/></meta>`+
		`<code><coding><system value="http://fhir.de/CodeSystem/ifa/pzn"/><code value="12345679"/></coding><text value="Ibuprofen"/></code></Medication>`)
	got := validate.Resource(med, at, kbv.Options{Now: now})
	if !has(got, finding{fhir.SeverityError, ".code.coding[0].code"}) {
		t.Errorf("PZN check digit in an e-prescription: want an error, got:%s", list(got))
	}
	pat := load(t, "persons/patient.xml")
	change{path: "meta/profile", set: kbvSD + "KBV_PR_FOR_Patient|1.1.0"}.apply(t, pat)
	change{path: "identifier[2]/value", set: "M123456784"}.apply(t, pat)
	if got := validate.Resource(pat, "Patient", kbv.Options{Now: now}); !slices.ContainsFunc(got, func(i fhir.Issue) bool {
		return i.Severity == fhir.SeverityError && i.Expression == "Patient.identifier[1].value"
	}) {
		t.Errorf("KVNR check digit of an e-prescription's patient: want an error, got:%s", list(got))
	}
}

// TestUnknownProfileIsNeverAnError: a profile the tables do not hold is an information issue.
func TestUnknownProfileIsNeverAnError(t *testing.T) {
	for _, canon := range []string{"https://example.org/StructureDefinition/Mine", kbvSD + "KBV_PR_AW_Patient|1.1.0"} {
		res := load(t, "persons/patient.xml")
		change{path: "meta/profile", set: canon}.apply(t, res)
		got := validate.Resource(res, "Patient", kbv.Options{Now: now})
		if len(errorsOf(got)) > 0 {
			t.Errorf("%s: errors:%s", canon, list(got))
		}
		if !has(got, finding{fhir.SeverityInformation, ""}) && !slices.ContainsFunc(got, func(i fhir.Issue) bool { return i.Severity == fhir.SeverityInformation }) {
			t.Errorf("%s: want an information issue, got:%s", canon, list(got))
		}
	}
}

// TestWithoutProfile: a resource without meta.profile is checked against the profile chosen for
// it, and is given back unchanged.
func TestWithoutProfile(t *testing.T) {
	res := load(t, "persons/patient.xml")
	change{path: "meta/profile", del: true}.apply(t, res)
	change{path: "gender", del: true}.apply(t, res)
	before := fhir.Marshal(res)
	got := validate.Resource(res, "Patient", kbv.Options{Now: now})
	if !slices.ContainsFunc(got, func(i fhir.Issue) bool { return i.Severity == fhir.SeverityError && i.Expression == "Patient.gender" }) {
		t.Errorf("a patient without meta.profile is checked against KBV_PR_AW_Patient (gender 1..1), got:%s", list(got))
	}
	if after := fhir.Marshal(res); string(after) != string(before) {
		t.Errorf("the resource changed:\n%s\n%s", before, after)
	}
	res = load(t, "persons/patient.xml")
	change{path: "meta", del: true}.apply(t, res)
	before = fhir.Marshal(res)
	if got := validate.Resource(res, "Patient", kbv.Options{Now: now}); len(got) != 0 {
		t.Errorf("valid patient without meta: findings:%s", list(got))
	}
	if after := fhir.Marshal(res); string(after) != string(before) {
		t.Errorf("the resource changed:\n%s\n%s", before, after)
	}
}

// TestRedWritesThese: the narrative, meta.versionId and meta.lastUpdated, which red writes, may
// be missing though the profiles require them.
func TestRedWritesThese(t *testing.T) {
	res := load(t, "clinical/observation-blutdruck.xml") // has neither text nor versionId
	if res.FindElement("meta/versionId") != nil || res.SelectElement("text") != nil {
		t.Fatal("fixture changed: it should lack text and meta.versionId")
	}
	if got := validate.Resource(res, at, kbv.Options{Now: now}); len(got) != 0 {
		t.Errorf("findings:%s", list(got))
	}
}

// TestTolerances: what RED's API accepts although the profile forbids it, and what the KBV's own
// validation accepts.
func TestTolerances(t *testing.T) {
	t.Run("the document inline instead of by url, without the Anlage's version", func(t *testing.T) {
		if got := check(t, "clinical/documentreference.xml", kbv.ModeStrict); len(got) != 0 {
			t.Errorf("findings:%s", list(got))
		}
	})
	t.Run("a document neither inline nor by url", func(t *testing.T) {
		got := check(t, "clinical/documentreference.xml", kbv.ModeProfile, change{path: "content/attachment/data", del: true})
		if !has(got, finding{fhir.SeverityError, ".content[0].attachment.data"}) {
			t.Errorf("want an error, got:%s", list(got))
		}
	})
	t.Run("DMP code of the key table in force, not in the tables' version 1.03", func(t *testing.T) {
		res := load(t, "persons/coverage.xml")
		change{path: "extension[@url='http://fhir.de/StructureDefinition/gkv/dmp-kennzeichen']/valueCoding/code", set: "42"}.apply(t, res)
		if got := validate.Resource(res, "Coverage", kbv.Options{Now: now}); len(got) != 0 {
			t.Errorf("findings:%s", list(got))
		}
	})
	t.Run("the Practitioner where the profile wants the PractitionerRole, as the KBV's examples do", func(t *testing.T) {
		e := change{path: "participant/individual/reference", set: "Practitioner/A3002"}
		got := check(t, "clinical/encounter.xml", kbv.ModeProfile, e)
		if len(errorsOf(got)) > 0 || !has(got, finding{fhir.SeverityWarning, ".participant.individual.reference"}) {
			t.Errorf("want a warning only, got:%s", list(got))
		}
		if strict := check(t, "clinical/encounter.xml", kbv.ModeStrict, e); !has(strict, finding{fhir.SeverityError, ".participant.individual.reference"}) {
			t.Errorf("strict mode: want an error, got:%s", list(strict))
		}
	})
	t.Run("a Patient where the profile wants the PractitionerRole", func(t *testing.T) {
		got := check(t, "clinical/encounter.xml", kbv.ModeProfile, change{path: "participant/individual/reference", set: "Patient/P1001"})
		if !has(got, finding{fhir.SeverityError, ".participant.individual.reference"}) {
			t.Errorf("want an error, got:%s", list(got))
		}
	})
}

func TestChoose(t *testing.T) {
	res := func(xml string) *etree.Element { return parse(t, `<`+xml+`</`+strings.Fields(xml)[0]+`>`) }
	coding := func(sys, code string) string {
		return `<coding><system value="` + sys + `"/><code value="` + code + `"/></coding>`
	}
	cases := []struct {
		name string
		res  *etree.Element
		want string // profile name, "" for none
	}{
		{"the one Patient profile", res(`Patient xmlns="http://hl7.org/fhir"><id value="p"/>`), "KBV_PR_AW_Patient"},
		{"the one Coverage profile", res(`Coverage xmlns="http://hl7.org/fhir"><id value="c"/>`), "KBV_PR_AW_Krankenversicherungsverhaeltnis"},
		{"a diagnosis: the Condition profile without a fixed code", res(`Condition xmlns="http://hl7.org/fhir"><code>` + coding("http://fhir.de/CodeSystem/bfarm/icd-10-gm", "J06.9") + `</code>`), "KBV_PR_AW_Diagnose"},
		{"an accident by its code", res(`Condition xmlns="http://hl7.org/fhir"><code>` + coding("https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Ressourcentyp", "Unfall") + `</code>`), "KBV_PR_AW_Unfall"},
		{"a doctor", res(`Practitioner xmlns="http://hl7.org/fhir"><id value="a"/>`), "KBV_PR_AW_Behandelnder"},
		{"staff by their qualification", res(`Practitioner xmlns="http://hl7.org/fhir"><qualification><code>` + coding("https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Ressourcentyp", "Mitarbeiter") + `</code></qualification>`), "KBV_PR_AW_Mitarbeiter"},
		{"an ambulatory encounter", res(`Encounter xmlns="http://hl7.org/fhir"><class><code value="AMB"/></class>`), "KBV_PR_AW_Begegnung"},
		{"a home visit", res(`Encounter xmlns="http://hl7.org/fhir"><class><code value="HH"/></class>`), "KBV_PR_AW_Hausbesuch"},
		{"an encounter of another class", res(`Encounter xmlns="http://hl7.org/fhir"><class><code value="EMER"/></class>`), ""},
		{"a blood pressure by its codes", res(`Observation xmlns="http://hl7.org/fhir"><code>` + coding("http://loinc.org", "85354-9") + `</code>`), "KBV_PR_AW_Observation_Blutdruck"},
		{"a finding by its code", res(`Observation xmlns="http://hl7.org/fhir"><code>` + coding("https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Ressourcentyp", "Befund") + `</code>`), "KBV_PR_AW_Observation_Befund"},
		{"an observation of no profile's code", res(`Observation xmlns="http://hl7.org/fhir"><code>` + coding("http://loinc.org", "29463-7") + `</code>`), ""},
		{"a document by its category", res(`DocumentReference xmlns="http://hl7.org/fhir"><category>` + coding("https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Ressourcentyp", "Anlage") + `</category>`), "KBV_PR_AW_Anlage"},
		{"a document without category", res(`DocumentReference xmlns="http://hl7.org/fhir"><id value="d"/>`), ""},
		{"a provisional billing by its subType", res(`Claim xmlns="http://hl7.org/fhir"><subType>` + coding("https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Abrechnung_Art", "Abrechnung_Vorlaeufig") + `</subType>`), "KBV_PR_AW_Abrechnung_Vorlaeufig"},
		{"a private invoice: the Claim profile without a fixed subType", res(`Claim xmlns="http://hl7.org/fhir"><subType>` + coding("https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Abrechnung_Art", "Privat") + `</subType>`), "KBV_PR_AW_Abrechnung_privat"},
		{"an organisation: practice site or other, no code tells", res(`Organization xmlns="http://hl7.org/fhir"><id value="o"/>`), ""},
		{"a type without AWS profile", res(`Basic xmlns="http://hl7.org/fhir"><id value="b"/>`), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validate.Choose(tc.res)
			want := ""
			if tc.want != "" {
				want = kbvSD + tc.want
			}
			if c.Canonical != want {
				t.Errorf("chose %q, want %q (%s)", c.Canonical, want, c.Why)
			}
			if c.Canonical == "" && c.Why == "" {
				t.Error("no profile and no reason")
			}
		})
	}
}

// TestInvariantsCompileOnce evaluates one expression from many goroutines (run with -race).
func TestInvariantsCompileOnce(t *testing.T) {
	el := parse(t, `<Patient xmlns="http://hl7.org/fhir"><gender value="female"/></Patient>`)
	iv := validate.Invariants{Now: now}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if ok, err := iv.Check("gender.exists() and gender = 'female'", el); !ok || err != nil {
					t.Errorf("got %v, %v", ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, err := iv.Check("gender.nosuchfunction()", el); err == nil {
		t.Error("an expression outside the evaluator's subset must be an error")
	}
	if _, err := iv.Check("gender.nosuchfunction()", el); err == nil {
		t.Error("the compile error is kept")
	}
}

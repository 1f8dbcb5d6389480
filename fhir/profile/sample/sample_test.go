package sample

import (
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir/fhirpath"
	"github.com/redclone/red/fhir/profile"
)

const (
	sd = "https://example.org/StructureDefinition/"
	cs = "https://example.org/CodeSystem/"
)

// el is an element definition of the test tables.
func el(id string, min int, max string) *profile.ElementDef {
	path := id
	if i := strings.IndexByte(id, ':'); i >= 0 {
		path = id[:i]
		if j := strings.IndexByte(id[i:], '.'); j >= 0 {
			path += id[i+j:]
		}
	}
	return &profile.ElementDef{ID: id, Path: path, Min: min, Max: max}
}

func with(d *profile.ElementDef, f func(d *profile.ElementDef)) *profile.ElementDef {
	f(d)
	return d
}

func fixed(typ, v string) *profile.Value {
	return &profile.Value{Type: typ, Node: profile.Node{Value: v}}
}

func coding(system, code string) profile.Node {
	return profile.Node{Name: "coding", Children: []profile.Node{{Name: "system", Value: system}, {Name: "code", Value: code}}}
}

func byURL(d *profile.ElementDef, url string) *profile.ElementDef {
	d.Match = &profile.SliceMatch{Discriminators: []profile.DiscValue{{Type: "value", Path: "url", Values: []string{url}}}}
	return d
}

// tables are small profiles, one per piece of the generator, and what they refer to.
var tables = &profile.Tables{
	Profiles: []*profile.StructureDef{
		{URL: sd + "Fixed", Version: "1.0", Name: "Fixed", Kind: "resource", Type: "Basic", Elements: []*profile.ElementDef{
			el("Basic", -1, ""),
			with(el("Basic.code", 1, "1"), func(d *profile.ElementDef) {
				d.Pattern = &profile.Value{Type: "CodeableConcept", Node: profile.Node{Children: []profile.Node{coding(cs+"art", "A")}}}
			}),
			with(el("Basic.created", 1, "1"), func(d *profile.ElementDef) { d.Fixed = fixed("Date", "2024-02-29") }),
			el("Basic.author", 0, "0"),
		}},
		{URL: sd + "Binding", Version: "1.0", Name: "Binding", Kind: "resource", Type: "Basic", Elements: []*profile.ElementDef{
			el("Basic", -1, ""),
			with(el("Basic.code", 1, "1"), func(d *profile.ElementDef) {
				d.Binding = &profile.Binding{Strength: "required", ValueSet: "https://example.org/ValueSet/arten"}
			}),
			with(el("Basic.code.coding.system", 1, ""), func(d *profile.ElementDef) { d.Fixed = fixed("Uri", cs+"zwei") }),
		}},
		{URL: sd + "Slices", Version: "1.0", Name: "Slices", Kind: "resource", Type: "Patient", Elements: []*profile.ElementDef{
			el("Patient", -1, ""),
			with(el("Patient.identifier", 1, "*"), func(d *profile.ElementDef) {
				d.Slicing = &profile.Slicing{Discriminators: []profile.Discriminator{{Type: "value", Path: "type.coding.code"}}, Rules: "closed"}
			}),
			with(el("Patient.identifier:kvnr", 1, "1"), func(d *profile.ElementDef) {
				d.Match = &profile.SliceMatch{Discriminators: []profile.DiscValue{{Type: "value", Path: "type.coding.code", Values: []string{"GKV"}}}}
			}),
			with(el("Patient.identifier:kvnr.system", 1, "1"), func(d *profile.ElementDef) { d.Fixed = fixed("Uri", "http://fhir.de/sid/gkv/kvid-10") }),
			with(el("Patient.identifier:kvnr.value", 1, "1"), func(d *profile.ElementDef) { d.MaxLength = 5 }),
			with(el("Patient.identifier:pkv", 0, "1"), func(d *profile.ElementDef) {
				d.Match = &profile.SliceMatch{Discriminators: []profile.DiscValue{{Type: "value", Path: "type.coding.code", Values: []string{"PKV"}}}}
			}),
		}},
		{URL: sd + "Choice", Version: "1.0", Name: "Choice", Kind: "resource", Type: "Observation", Elements: []*profile.ElementDef{
			el("Observation", -1, ""),
			with(el("Observation.effective[x]", 1, "1"), func(d *profile.ElementDef) {
				d.Types = []profile.TypeRef{{Code: "Period"}, {Code: "dateTime"}}
			}),
			with(el("Observation.value[x]", 1, "1"), func(d *profile.ElementDef) {
				d.Types = []profile.TypeRef{{Code: "Quantity"}, {Code: "string"}}
				d.Slicing = &profile.Slicing{Discriminators: []profile.Discriminator{{Type: "type", Path: "$this"}}, Rules: "closed"}
			}),
			with(el("Observation.value[x]:valueString", 1, "1"), func(d *profile.ElementDef) {
				d.Match = &profile.SliceMatch{Discriminators: []profile.DiscValue{{Type: "type", Path: "$this", Types: []string{"string"}}}}
			}),
			el("Observation.code.coding", 0, "0"),
		}},
		{URL: sd + "Reference", Version: "1.0", Name: "Reference", Kind: "resource", Type: "Encounter", Elements: []*profile.ElementDef{
			el("Encounter", -1, ""),
			with(el("Encounter.subject", 1, "1"), func(d *profile.ElementDef) {
				d.Types = []profile.TypeRef{{Code: "Reference", TargetProfile: []string{sd + "Slices|1.0"}}}
			}),
			el("Encounter.participant", 1, "*"),
			with(el("Encounter.participant.individual", 1, "1"), func(d *profile.ElementDef) {
				d.Types = []profile.TypeRef{{Code: "Reference", TargetProfile: []string{"http://hl7.org/fhir/StructureDefinition/PractitionerRole"}}}
			}),
			with(el("Encounter.serviceProvider", 1, "1"), func(d *profile.ElementDef) {
				d.Types = []profile.TypeRef{{Code: "Reference", TargetProfile: []string{sd + "Fixed"}}}
			}),
			el("Encounter.serviceProvider.reference", 0, "0"),
			el("Encounter.serviceProvider.identifier", 1, "1"),
		}},
		{URL: sd + "Extension", Version: "1.0", Name: "Extension", Kind: "resource", Type: "Basic", Elements: []*profile.ElementDef{
			el("Basic", -1, ""),
			with(el("Basic.extension", -1, ""), func(d *profile.ElementDef) {
				d.Slicing = &profile.Slicing{Discriminators: []profile.Discriminator{{Type: "value", Path: "url"}}, Rules: "open"}
			}),
			with(byURL(el("Basic.extension:art", -1, "1"), sd+"Art"), func(d *profile.ElementDef) {
				d.Types = []profile.TypeRef{{Code: "Extension", Profiles: []string{sd + "Art"}}}
			}),
		}},
		{URL: sd + "Art", Version: "1.0", Name: "Art", Kind: "complex-type", Type: "Extension", Elements: []*profile.ElementDef{
			el("Extension", 1, "1"), // the definition requires its extension
			with(el("Extension.extension", -1, ""), func(d *profile.ElementDef) {
				d.Slicing = &profile.Slicing{Discriminators: []profile.Discriminator{{Type: "value", Path: "url"}}, Rules: "open"}
			}),
			byURL(el("Extension.extension:stufe", 1, "1"), "stufe"),
			with(el("Extension.extension:stufe.value[x]", -1, ""), func(d *profile.ElementDef) {
				d.Types = []profile.TypeRef{{Code: "Coding"}}
				d.Binding = &profile.Binding{Strength: "required", ValueSet: "https://example.org/ValueSet/arten"}
			}),
			byURL(el("Extension.extension:datum", 0, "1"), "datum"),
			with(el("Extension.url", -1, ""), func(d *profile.ElementDef) { d.Fixed = fixed("Uri", sd+"Art") }),
			el("Extension.value[x]", -1, "0"),
		}},
		{URL: sd + "Invariant", Version: "1.0", Name: "Invariant", Kind: "resource", Type: "Condition", Elements: []*profile.ElementDef{
			with(el("Condition", -1, ""), func(d *profile.ElementDef) {
				d.Constraints = []profile.Constraint{
					{Key: "aktiv", Severity: "error", Expression: "clinicalStatus.coding.code='active' xor clinicalStatus.coding.code='inactive'"},
					{Key: "datiert", Severity: "error", Expression: "onset.exists() or recordedDate.exists()"},
				}
			}),
			el("Condition.onset[x]", -1, "0"),
			el("Condition.recordedDate", -1, ""),
			el("Condition.clinicalStatus", -1, ""),
			with(el("Condition.code.coding.code", -1, ""), func(d *profile.ElementDef) {
				d.Constraints = []profile.Constraint{{Key: "icd", Severity: "error", Expression: "matches('^[A-Z][0-9]{2}(\\\\.[0-9]{1,2})?$')"}}
			}),
			el("Condition.code", 1, "1"),
			el("Condition.code.coding", 1, "1"),
		}},
		{URL: sd + "Bundle", Version: "1.0", Name: "Bundle", Kind: "resource", Type: "Bundle", Elements: []*profile.ElementDef{
			el("Bundle", -1, ""),
			with(el("Bundle.type", -1, ""), func(d *profile.ElementDef) { d.Fixed = fixed("Code", "history") }),
			el("Bundle.entry", 1, "*"),
			el("Bundle.entry.fullUrl", 1, "1"),
			el("Bundle.entry.resource", 1, "1"),
		}},
	},
	ValueSets: []*profile.ValueSet{
		{URL: "https://example.org/ValueSet/arten", Version: "1.0", Expanded: true, Codes: []profile.Code{{System: cs + "eins", Code: "1"}, {System: cs + "zwei", Code: "2"}}},
	},
}

// fhirpathInvariants evaluates the invariants with fhir/fhirpath, reading no result as violated.
type fhirpathInvariants struct{}

func (fhirpathInvariants) Check(expr string, el *etree.Element) (bool, error) {
	e, err := fhirpath.Compile(expr)
	if err != nil {
		return false, err
	}
	return e.Bool(el, fhirpath.EmptyResult(false))
}

// TestMinimal builds an instance of each test profile and compares it, written compactly (after
// id and meta), with the expected XML.
func TestMinimal(t *testing.T) {
	v := profile.New(tables)
	for _, tc := range []struct {
		name, profile string
		opts          Options
		want          string
	}{
		{"fixed and pattern values", "Fixed", Options{},
			`<code><coding><system value="https://example.org/CodeSystem/art"/><code value="A"/></coding></code>` +
				`<created value="2024-02-29"/>`},
		{"a required binding's code, in the system the profile fixes", "Binding", Options{},
			`<code><coding><system value="https://example.org/CodeSystem/zwei"/><code value="2"/></coding></code>`},
		{"a required slice with its discriminator's value; values cut to the maximum length", "Slices", Options{},
			`<identifier><type><coding><code value="GKV"/></coding></type>` +
				`<system value="http://fhir.de/sid/gkv/kvid-10"/><value value="Beisp"/></identifier>`},
		{"an optional slice when Include names it", "Slices", Options{Include: []string{"Patient.identifier:pkv"}},
			`<identifier><type><coding><code value="GKV"/></coding></type>` +
				`<system value="http://fhir.de/sid/gkv/kvid-10"/><value value="Beisp"/></identifier>` +
				`<identifier><type><coding><code value="PKV"/></coding></type>` +
				`<system value="http://example.org/fhir/sample"/><value value="Beispiel"/></identifier>`},
		{"choice elements: the first allowed type, the type of a required type slice", "Choice", Options{},
			`<status value="final"/><code><text value="Beispiel"/></code>` +
				`<effectivePeriod><start value="2025-01-15T10:00:00+01:00"/></effectivePeriod>` +
				`<valueString value="Beispiel"/>`},
		{"references to the type of the target profile, else an identifier", "Reference", Options{},
			`<status value="finished"/><class><system value="http://terminology.hl7.org/CodeSystem/v3-ActCode"/><code value="AMB"/></class>` +
				`<subject><reference value="Patient/sample-patient"/></subject>` +
				`<participant><individual><reference value="PractitionerRole/sample-practitionerrole"/></individual></participant>` +
				`<serviceProvider><identifier><system value="http://example.org/fhir/sample"/><value value="Beispiel"/></identifier></serviceProvider>`},
		{"an extension its definition requires, with its required sub-extension and bound code", "Extension", Options{},
			`<extension url="https://example.org/StructureDefinition/Art">` +
				`<extension url="stufe"><valueCoding><system value="https://example.org/CodeSystem/eins"/><code value="1"/></valueCoding></extension>` +
				`</extension>`},
		{"invariants: the value compared with, an element named; a value matching the pattern", "Invariant", Options{Invariants: fhirpathInvariants{}},
			`<clinicalStatus><coding><system value="http://terminology.hl7.org/CodeSystem/condition-clinical"/><code value="active"/></coding></clinicalStatus>` +
				`<code><coding><system value="http://example.org/fhir/sample"/><code value="A00"/></coding></code>` +
				`<subject><reference value="Patient/sample-patient"/></subject>` +
				`<recordedDate value="2025-01-15T10:00:00+01:00"/>`},
		{"a resource container gets the resource Contents names", "Bundle", Options{Contents: map[string]string{"Bundle.entry.resource": sd + "Fixed"}},
			`<type value="history"/><entry><fullUrl value="https://example.org/fhir/Basic/sample-basic"/>` +
				`<resource><Basic><id value="sample-basic"/><meta><profile value="https://example.org/StructureDefinition/Fixed|1.0"/></meta>` +
				`<code><coding><system value="https://example.org/CodeSystem/art"/><code value="A"/></coding></code>` +
				`<created value="2024-02-29"/></Basic></resource></entry>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Minimal(v, sd+tc.profile, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			typ := v.Profile(sd + tc.profile).Type
			head := `<` + typ + `><id value="sample-` + strings.ToLower(typ) + `"/><meta><profile value="` + sd + tc.profile + `|1.0"/></meta>`
			if got, want := compact(res), head+tc.want+`</`+typ+`>`; got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func compact(el *etree.Element) string {
	doc := etree.NewDocumentWithRoot(el.Copy())
	s, _ := doc.WriteToString()
	return s
}

func TestMinimalUnknownProfile(t *testing.T) {
	if _, err := Minimal(profile.New(tables), sd+"Unknown", Options{}); err == nil {
		t.Error("no error for a profile not in the tables")
	}
}

// TestMinimalDataType builds an instance of a profile of a data type: an extension.
func TestMinimalDataType(t *testing.T) {
	ext, err := Minimal(profile.New(tables), sd+"Art", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `<extension url="https://example.org/StructureDefinition/Art"><extension url="stufe">` +
		`<valueCoding><system value="https://example.org/CodeSystem/eins"/><code value="1"/></valueCoding></extension></extension>`
	if got := compact(ext); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestPatterned writes values for the simple regular expressions of the profiles' invariants.
func TestPatterned(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{`matches('^[0-9]{9}$')`, "000000000"},
		{`$this.matches('[0-9]{8,9}')`, "00000000"},
		{`matches('^[A-Z][0-9]{9}$' )`, "A000000000"},
		{`matches('^[1|3|5|6|8|9]-[a-zA-Z0-9]{3}([.][a-zA-Z0-9]{1,2})?$')`, "1-aaa"},
		{`matches('^(1\\+{0,1}|2)$')`, "1"},
		{`matches('[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}')`, "0.0.0"},
		{`matches('^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')`, "urn:uuid:00000000-0000-0000-0000-000000000000"},
		{`matches('[^0-9]+')`, ""},                    // a negated class: beyond the simple ones
		{`value.matches('[0-9]{9}')`, ""},             // not the element's own value
		{`matches('[0-9]{9}') or value.exists()`, ""}, // not the whole invariant
	} {
		n := &node{def: &profile.ElementDef{Constraints: []profile.Constraint{{Expression: tc.expr}}}}
		if got := patterned([]*node{n}); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.expr, got, tc.want)
		}
	}
}

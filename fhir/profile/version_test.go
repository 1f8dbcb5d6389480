package profile

import (
	"slices"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
)

func TestPickVersion(t *testing.T) {
	ver := func(s string) string { return s }
	for _, c := range []struct {
		cands   []string
		version string
		want    string // "" none
	}{
		{[]string{"1.1.3", "1.7.0"}, "", "1.1.3"},       // unversioned: the first
		{[]string{"1.1.3", "1.7.0"}, "1.7.0", "1.7.0"},  // exact
		{[]string{"1.1.3", "1.7.0"}, "1.1.0", "1.1.3"},  // its major.minor
		{[]string{"1.3.2", "1.3.10"}, "1.3", "1.3.10"},  // a partial version: the highest
		{[]string{"1.3.2", "1.3.10"}, "1.3.2", "1.3.2"}, // exact before the highest
		{[]string{"1.3.3"}, "1.2", ""},
		{[]string{"1.3.3"}, "1", ""},
		{nil, "", ""},
	} {
		got, ok := PickVersion(c.cands, c.version, ver, nil)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%q of %q: %q %v, want %q", c.version, c.cands, got, ok, c.want)
		}
	}
	// in context before the first
	got, _ := PickVersion([]string{"0.9.13", "1.5.2"}, "", ver, func(s string) bool { return s == "1.5.2" })
	if got != "1.5.2" {
		t.Errorf("in context: %q", got)
	}
}

// versionTables has an extension in two versions (its value fixed to "one" and "two"), the second
// in package base, and two Patient profiles: loose (no package) and app (package app, which
// depends on base).
var versionTables = &Tables{
	Profiles: []*StructureDef{
		{URL: "https://example.org/ext", Version: "1.0.0", Kind: "complex-type", Type: "Extension", Elements: []*ElementDef{
			{ID: "Extension", Path: "Extension", Min: -1},
			{ID: "Extension.value[x]", Path: "Extension.value[x]", Min: -1, Fixed: &Value{Type: "String", Node: Node{Value: "one"}}},
		}},
		{URL: "https://example.org/ext", Version: "2.0.0", Kind: "complex-type", Type: "Extension", Package: "base|2.0.0", Elements: []*ElementDef{
			{ID: "Extension", Path: "Extension", Min: -1},
			{ID: "Extension.value[x]", Path: "Extension.value[x]", Min: -1, Fixed: &Value{Type: "String", Node: Node{Value: "two"}}},
		}},
		{URL: "https://example.org/only-base", Version: "2.0.0", Kind: "complex-type", Type: "Extension", Package: "base|2.0.0", Elements: []*ElementDef{
			{ID: "Extension", Path: "Extension", Min: -1},
			{ID: "Extension.value[x]", Path: "Extension.value[x]", Min: -1, Fixed: &Value{Type: "String", Node: Node{Value: "two"}}},
		}},
		{URL: "https://example.org/app", Version: "1.3.3", Kind: "resource", Type: "Patient", Package: "app|1.0.0",
			Elements: []*ElementDef{{ID: "Patient", Path: "Patient", Min: -1}}},
		{URL: "https://example.org/loose", Version: "1.0.0", Kind: "resource", Type: "Patient",
			Elements: []*ElementDef{{ID: "Patient", Path: "Patient", Min: -1}}},
	},
	Packages: []Package{
		{ID: "app|1.0.0", Closure: []string{"app|1.0.0", "base|2.0.0"}},
		{ID: "base|2.0.0", Closure: []string{"base|2.0.0"}},
	},
}

// meta.profile names a version (1.3 is 1.3.3); an extension in an instance is validated against
// the version of its resource profile's package, not at all when none is in its scope.
func TestVersionSelection(t *testing.T) {
	v := New(versionTables)
	patient := func(profile, value string) string {
		return `<Patient xmlns="http://hl7.org/fhir"><meta><profile value="https://example.org/` + profile + `"/></meta>` +
			`<extension url="https://example.org/ext"><valueString value="` + value + `"/></extension></Patient>`
	}
	for _, c := range []struct {
		profile, value string
		want           []string
	}{
		{"app|1.3", "two", nil},
		{"app|1.3.3", "one", []string{"error value Patient.extension[0].valueString"}},
		{"app", "two", nil},
		{"loose", "one", nil},
		{"loose|1.0.0", "two", []string{"error value Patient.extension[0].valueString"}},
		{"app|1.2", "one", []string{"information informational Patient.meta.profile"}},
	} {
		is := v.Validate(parse(t, patient(c.profile, c.value)), "", Options{})
		if got := found(is); !slices.Equal(got, c.want) {
			t.Errorf("%s with %s: %q, want %q\n%v", c.profile, c.value, got, c.want, is)
		}
	}
	onlyBase := func(profile string) string {
		return strings.Replace(patient(profile, "one"), "https://example.org/ext", "https://example.org/only-base", 1)
	}
	if is := v.Validate(parse(t, onlyBase("loose")), "", Options{}); len(is) != 0 {
		t.Errorf("an extension of a package, in a resource of a profile outside packages: %v", is)
	}
	if is := v.Validate(parse(t, onlyBase("app")), "", Options{}); len(errorsOf(is)) != 1 {
		t.Errorf("an extension of a package, in a resource of a package depending on it: %v", is)
	}
	is := v.Validate(parse(t, patient("app|1.2", "x")), "", Options{})
	if len(is) != 1 || is[0].Severity != fhir.SeverityInformation || is[0].Diagnostics != "profile https://example.org/app|1.2 is known here only in version 1.3.3; the resource is not checked against it" {
		t.Errorf("other version: %v", is)
	}
	if p := v.Profile("https://example.org/ext"); p == nil || p.Version != "1.0.0" {
		t.Errorf("unversioned: the first version, got %v", p)
	}
	if p := v.Profile("https://example.org/ext|2"); p != nil {
		t.Errorf("2 is no major.minor of 2.0.0: %v", p)
	}
}

// A Bundle's entries sliced by resource.meta.profile (as KBV_PR_ERP_Bundle slices them): the path
// steps into the resource inside entry.resource. A package's binding to a value set read only
// outside its dependencies does not check codes.
func TestEntrySlicesAndScope(t *testing.T) {
	v := New(&Tables{Profiles: []*StructureDef{
		{URL: "https://example.org/bundle", Version: "1.0.0", Kind: "resource", Type: "Bundle", Package: "app|1.0.0", Elements: []*ElementDef{
			{ID: "Bundle", Path: "Bundle", Min: -1},
			{ID: "Bundle.type", Path: "Bundle.type", Min: -1, Binding: &Binding{Strength: "required", ValueSet: "https://example.org/vs"}},
			{ID: "Bundle.entry", Path: "Bundle.entry", Min: -1, Slicing: &Slicing{Discriminators: []Discriminator{{Type: "value", Path: "resource.meta.profile"}}, Rules: "closed"}},
			{ID: "Bundle.entry:patient", Path: "Bundle.entry", SliceName: "patient", Min: 1, Max: "1", Match: &SliceMatch{
				Discriminators: []DiscValue{{Type: "value", Path: "resource.meta.profile", Values: []string{"https://example.org/patient|1.0"}}}}},
		}},
	}, ValueSets: []*ValueSet{{URL: "https://example.org/vs", Expanded: true, Codes: []Code{{"https://example.org/cs", "document"}}}},
		Packages: []Package{{ID: "app|1.0.0", Closure: []string{"app|1.0.0"}}}})
	bundle := func(profile string) string {
		return `<Bundle xmlns="http://hl7.org/fhir"><meta><profile value="https://example.org/bundle"/></meta><type value="collection"/>` +
			`<entry><resource><Patient><meta><profile value="` + profile + `"/></meta></Patient></resource></entry></Bundle>`
	}
	if is := v.Validate(parse(t, bundle("https://example.org/patient|1.0")), "", Options{}); len(errorsOf(is)) != 0 {
		t.Errorf("matching entry: %v", is)
	}
	want := []string{"error structure Bundle.entry[0]", "error required Bundle.entry"}
	if got := found(errorsOf(v.Validate(parse(t, bundle("https://example.org/other")), "", Options{}))); !slices.Equal(got, want) {
		t.Errorf("entry of another profile: %q, want %q", got, want)
	}
}

// errorsOf are the errors (and fatal issues) among is.
func errorsOf(is fhir.Issues) fhir.Issues {
	return slices.DeleteFunc(slices.Clone(is), func(i fhir.Issue) bool {
		return i.Severity != fhir.SeverityError && i.Severity != fhir.SeverityFatal
	})
}

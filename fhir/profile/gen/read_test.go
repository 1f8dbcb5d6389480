package main

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir/profile"
)

// tree writes an element tree in a form that compares XML with JSON: tags, attributes in order of
// name, children in order.
func tree(e *etree.Element) string {
	var b strings.Builder
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		b.WriteString("<" + e.Tag)
		attrs := slices.Clone(e.Attr)
		sort.Slice(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
		for _, a := range attrs {
			if a.Space == "" && a.Key != "xmlns" {
				b.WriteString(" " + a.Key + "=" + a.Value)
			}
		}
		b.WriteString(">")
		for _, c := range e.ChildElements() {
			walk(c)
		}
		b.WriteString("</" + e.Tag + ">")
	}
	walk(e)
	return b.String()
}

func TestReadJSON(t *testing.T) {
	js := `{"resourceType":"StructureDefinition","id":"x","url":"https://example.org/SD/x","version":"1.0.0",
		"abstract":false,"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
		"differential":{"element":[{"id":"Patient.identifier:kvnr","path":"Patient.identifier","min":1,"max":"1",
		"patternIdentifier":{"type":{"coding":[{"system":"http://fhir.de/CodeSystem/identifier-type-de-basis","code":"GKV"}]}},
		"fixedDecimal":1.50,
		"type":[{"code":"Identifier","profile":["http://fhir.de/StructureDefinition/identifier-kvid-10"]}],
		"_short":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/translation","valueString":"KVNR"}]},
		"short":"kvnr",
		"constraint":[{"key":"k-1","severity":"error","expression":"value.matches('^[A-Z]')"}]}]},
		"contained":[{"resourceType":"ValueSet","id":"vs"}]}`
	xml := `<StructureDefinition xmlns="http://hl7.org/fhir"><id value="x"/><url value="https://example.org/SD/x"/>
		<version value="1.0.0"/><abstract value="false"/><text><status value="generated"/><div/></text>
		<differential><element id="Patient.identifier:kvnr"><path value="Patient.identifier"/><min value="1"/><max value="1"/>
		<patternIdentifier><type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="GKV"/></coding></type></patternIdentifier>
		<fixedDecimal value="1.50"/>
		<type><code value="Identifier"/><profile value="http://fhir.de/StructureDefinition/identifier-kvid-10"/></type>
		<short value="kvnr"><extension url="http://hl7.org/fhir/StructureDefinition/translation"><valueString value="KVNR"/></extension></short>
		<constraint><key value="k-1"/><severity value="error"/><expression value="value.matches('^[A-Z]')"/></constraint></element></differential>
		<contained><ValueSet><id value="vs"/></ValueSet></contained></StructureDefinition>`
	got, err := readJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		t.Fatal(err)
	}
	if g, w := tree(got), tree(doc.Root()); g != w {
		t.Errorf("JSON read as\n%s\nwant (its XML form)\n%s", g, w)
	}
	if r, err := readJSON([]byte(`{"name":"a.package"}`)); r != nil || err != nil {
		t.Errorf("no resourceType: %v %v", r, err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// extSD is an extension definition in JSON whose value is fixed to fixed.
func extSD(version, fixed string) string {
	return `{"resourceType":"StructureDefinition","url":"https://example.org/ext","version":"` + version + `",
		"name":"ext","kind":"complex-type","type":"Extension","derivation":"constraint",
		"baseDefinition":"http://hl7.org/fhir/StructureDefinition/Extension",
		"differential":{"element":[{"id":"Extension.value[x]","path":"Extension.value[x]","fixedString":"` + fixed + `"}]}}`
}

// patientSD is a Patient profile in JSON with an extension slice of https://example.org/ext.
func patientSD(url, version, base string) string {
	return `{"resourceType":"StructureDefinition","url":"` + url + `","version":"` + version + `",
		"name":"p","kind":"resource","type":"Patient","derivation":"constraint","baseDefinition":"` + base + `",
		"differential":{"element":[{"id":"Patient.extension:e","path":"Patient.extension","sliceName":"e","min":1,
		"type":[{"code":"Extension","profile":["https://example.org/ext"]}]}]}}`
}

// Versions of one canonical are all kept; an unversioned reference resolves to the version of the
// referring package's dependencies, outside packages to the version read first; a versioned one to
// its version or the highest of its major.minor.
func TestVersions(t *testing.T) {
	dir := t.TempDir()
	// a folder that is no package, read first: version 1 of the extension (JSON outside a package
	// is not read: only its XML)
	write(t, filepath.Join(dir, "loose", "ext.xml"), `<StructureDefinition xmlns="http://hl7.org/fhir">
		<url value="https://example.org/ext"/><version value="1.0.0"/><name value="ext"/><kind value="complex-type"/>
		<type value="Extension"/><baseDefinition value="http://hl7.org/fhir/StructureDefinition/Extension"/>
		<derivation value="constraint"/></StructureDefinition>`)
	write(t, filepath.Join(dir, "loose", "ignored.json"), extSD("9.0.0", "never"))
	write(t, filepath.Join(dir, "loose", "p.xml"), `<StructureDefinition xmlns="http://hl7.org/fhir">
		<url value="https://example.org/loose-patient"/><version value="1.0.0"/><name value="lp"/><kind value="resource"/>
		<type value="Patient"/><baseDefinition value="http://hl7.org/fhir/StructureDefinition/Patient"/>
		<derivation value="constraint"/><differential><element id="Patient.extension:e"><path value="Patient.extension"/>
		<sliceName value="e"/><type><code value="Extension"/><profile value="https://example.org/ext"/></type></element>
		</differential></StructureDefinition>`)
	// package base 2.1.3 with version 2 of the extension, package app depending on it
	write(t, filepath.Join(dir, "base", "package", "package.json"), `{"name":"base","version":"2.1.3"}`)
	write(t, filepath.Join(dir, "base", "package", "ext.json"), extSD("2.1.3", "two"))
	write(t, filepath.Join(dir, "base", "package", "examples", "ext.json"), extSD("7.0.0", "example"))
	write(t, filepath.Join(dir, "base", "package", "p.json"), patientSD("https://example.org/base-patient", "2.1.3", "http://hl7.org/fhir/StructureDefinition/Patient"))
	write(t, filepath.Join(dir, "app", "package", "package.json"), `{"name":"app","version":"1.0.0","dependencies":{"BASE":"2.1.3"}}`)
	write(t, filepath.Join(dir, "app", "package", "p.json"), patientSD("https://example.org/app-patient", "1.0.0", "https://example.org/base-patient|2.1.0"))

	g := newGen()
	for _, d := range []string{"loose", "base", "app"} {
		if err := g.readDir(filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	tb := g.build()
	var exts []string
	types := map[string]string{}
	chains := map[string][]string{}
	for _, p := range tb.Profiles {
		if p.URL == "https://example.org/ext" {
			exts = append(exts, p.Version+"/"+p.Package)
		}
		for _, e := range p.Elements {
			if e.ID == "Patient.extension:e" {
				types[p.URL] = e.Types[0].Profiles[0]
			}
		}
		chains[p.URL] = p.Chain
	}
	if want := []string{"1.0.0/", "2.1.3/base|2.1.3"}; !slices.Equal(exts, want) {
		t.Errorf("versions of the extension kept: %q, want %q", exts, want)
	}
	for url, want := range map[string]string{
		"https://example.org/loose-patient": "https://example.org/ext|1.0.0",
		"https://example.org/base-patient":  "https://example.org/ext|2.1.3",
		"https://example.org/app-patient":   "https://example.org/ext|2.1.3", // inherited as resolved
	} {
		if types[url] != want {
			t.Errorf("%s: extension slice of type %q, want %q", url, types[url], want)
		}
	}
	if got := chains["https://example.org/app-patient"]; !slices.Equal(got, []string{"https://example.org/base-patient"}) {
		t.Errorf("app-patient's base|2.1.0 is base-patient 2.1.3: chain %q", got)
	}
	want := []profile.Package{{ID: "app|1.0.0", Closure: []string{"app|1.0.0", "base|2.1.3"}}, {ID: "base|2.1.3", Closure: []string{"base|2.1.3"}}}
	if !slices.EqualFunc(tb.Packages, want, func(a, b profile.Package) bool { return a.ID == b.ID && slices.Equal(a.Closure, b.Closure) }) {
		t.Errorf("packages: %v", tb.Packages)
	}
}

package profile

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

func parse(t testing.TB, xml string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(xml); err != nil {
		t.Fatalf("test instance: %v", err)
	}
	return doc.Root()
}

// head is the start of a test instance of a KBV AWS 1.2.0 profile: id, meta and narrative.
func head(typ, id, profile, text string) string {
	return `<` + typ + ` xmlns="http://hl7.org/fhir"><id value="` + id + `"/><meta><versionId value="1"/>` +
		`<lastUpdated value="2024-05-02T10:00:00+02:00"/><profile value="https://fhir.kbv.de/StructureDefinition/` + profile + `|1.2.0"/></meta>` +
		`<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">` + text + `</div></text>`
}

// found is an issue in short: "severity code expression".
func found(is fhir.Issues) []string {
	var out []string
	for _, i := range is {
		out = append(out, string(i.Severity)+" "+string(i.Code)+" "+i.Expression)
	}
	return out
}

var coverage = head("Coverage", "c1", "KBV_PR_AW_Krankenversicherungsverhaeltnis", "Versicherung") + `	<!--EXT-->
	<identifier>
		<type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="GKV"/></coding></type>
		<system value="http://fhir.de/NamingSystem/gkv/kvid-10"/>
		<value value="A000000000"/>
	</identifier>
	<status value="active"/>
	<type><coding><system value="http://fhir.de/CodeSystem/versicherungsart-de-basis"/><version value="1.0.0"/><code value="GKV"/></coding></type>
	<beneficiary><reference value="Patient/p1"/></beneficiary>
	<payor>
		<identifier><system value="http://fhir.de/NamingSystem/arge-ik/iknr"/><value value="100000001"/></identifier>
		<display value="Testkasse"/>
	</payor>
</Coverage>`

const wop = `<extension url="http://fhir.de/StructureDefinition/gkv/wop"><valueCoding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_ITA_WOP"/><code value="38"/></valueCoding></extension>`

const dmp = `<extension url="http://fhir.de/StructureDefinition/gkv/dmp-kennzeichen"><valueCoding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_DMP"/><code value="01"/></valueCoding></extension>`

const personengruppe = `<extension url="http://fhir.de/StructureDefinition/gkv/besondere-personengruppe"><valueCoding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_PERSONENGRUPPE"/><code value="00"/></valueCoding></extension>`

var puls = head("Observation", "o1", "KBV_PR_AW_Observation_Puls", "Puls") + `	<status value="final"/>
	<code>
		<coding><system value="http://loinc.org"/><code value="8867-4"/></coding>
		<coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Koerperkenngroessen"/><code value="Puls"/></coding>
	</code>
	<subject><reference value="Patient/p1"/></subject>
	<encounter><reference value="Encounter/e1"/></encounter>
	<effectiveDateTime value="2024-05-02"/>
	<valueQuantity><value value="72"/><unit value="pro Min"/><system value="http://unitsofmeasure.org"/><code value="/min"/></valueQuantity>
</Observation>`

var anlage = head("DocumentReference", "d1", "KBV_PR_AW_Anlage", "Anlage") + `	<masterIdentifier><type><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Anlage_Identifiertyp"/><code value="Spezifikationsversion"/></coding></type><value value="befund.pdf"/></masterIdentifier>
	<identifier><type><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Anlage_Identifiertyp"/><code value="Bezeichnung"/></coding></type><value value="42"/></identifier>
	<status value="current"/>
	<type><coding><system value="https://example.org/anlagetyp"/><code value="x"/></coding></type>
	<category><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Ressourcentyp"/><code value="Anlage"/></coding></category>
	<subject><reference value="Patient/p1"/></subject>
	<date value="2024-05-02T10:00:00+02:00"/>
	<content>
		<attachment>
			<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Anlage_Version"><valueCodeableConcept><coding><code value="1.0"/></coding></valueCodeableConcept></extension>
			<!--CT-->
			<url value="file:befund.pdf"/>
			<title value="Befund"/>
		</attachment>
	</content>
</DocumentReference>`

type ruleCase struct {
	name string
	xml  string
	want []string // the error issues expected, "severity code expression"; nil: none
}

func runCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := Validate(parse(t, c.xml), "", Options{})
			var errs fhir.Issues
			for _, i := range is {
				if i.Severity == fhir.SeverityError {
					errs = append(errs, i)
				}
			}
			got := found(errs)
			if !slices.Equal(got, c.want) {
				t.Errorf("issues\n got %q\nwant %q\n(all: %v)", got, c.want, is)
			}
		})
	}
}

func with(base, marker, insert string) string { return strings.Replace(base, marker, insert, 1) }

func TestCardinality(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "Krankenversicherungsverhaeltnis without the optional GKV extensions", xml: coverage},
		{name: "besondere-personengruppe, dmp-kennzeichen, wop once each", xml: with(coverage, "<!--EXT-->", personengruppe+dmp+wop)},
		{name: "wop twice (slice 0..1)", xml: with(coverage, "<!--EXT-->", wop+wop),
			want: []string{"error structure Coverage.extension"}},
		{name: "dmp-kennzeichen twice (slice 0..1)", xml: with(coverage, "<!--EXT-->", dmp+dmp),
			want: []string{"error structure Coverage.extension"}},
		{name: "meta.versionId missing (1..)", xml: with(coverage, `<versionId value="1"/>`, ""),
			want: []string{"error required Coverage.meta.versionId"}},
		{name: "two identifiers (..1)", xml: with(coverage, `<status value="active"/>`, `<status value="active"/><identifier><system value="urn:x"/><value value="1"/></identifier>`),
			want: []string{"error structure Coverage.identifier"}},
		{name: "Anlage without contentType (0..1)", xml: anlage},
		{name: "Anlage with contentType", xml: with(anlage, "<!--CT-->", `<contentType value="application/pdf"/>`)},
		{name: "Anlage: masterIdentifier.system is 0..0", xml: with(anlage, `<value value="befund.pdf"/>`, `<system value="urn:x"/><value value="befund.pdf"/>`),
			want: []string{"error structure DocumentReference.masterIdentifier.system"}},
		{name: "Anlage: slice version_der_Anlage is 1..1", xml: with(anlage, `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Anlage_Version"><valueCodeableConcept><coding><code value="1.0"/></coding></valueCodeableConcept></extension>`, ""),
			want: []string{"error required DocumentReference.content[0].attachment.extension"}},
		{name: "Puls: slice loinc is 1..1", xml: with(puls, `<coding><system value="http://loinc.org"/><code value="8867-4"/></coding>`, ""),
			want: []string{"error required Observation.code.coding", "error required Observation.code.coding"}},
	})
}

func TestFixedAndPattern(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "Puls as published", xml: puls},
		{name: "fixed unit", xml: with(puls, `<unit value="pro Min"/>`, `<unit value="bpm"/>`),
			want: []string{"error value Observation.valueQuantity.unit"}},
		{name: "fixed code in a slice", xml: with(puls, `<code value="8867-4"/>`, `<code value="8480-6"/>`),
			want: []string{"error value Observation.code.coding[0].code"}},
		{name: "fixed status", xml: with(puls, `<status value="final"/>`, `<status value="preliminary"/>`),
			want: []string{"error value Observation.status"}},
		{name: "fixed meta.profile canonical", xml: with(coverage, `KBV_PR_AW_Krankenversicherungsverhaeltnis|1.2.0"/>`, `KBV_PR_AW_Krankenversicherungsverhaeltnis|1.2.0"/><profile value="https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Krankenversicherungsverhaeltnis|1.2.0"/>`),
			want: []string{"error structure Coverage.meta.profile"}},
		// the slice KrankenversichertenID is recognised by type.coding.code, which its type profile
		// identifier-kvid-10 fixes; that profile then fixes the system
		{name: "fixed system from the slice's type profile", xml: with(coverage, `<system value="http://fhir.de/NamingSystem/gkv/kvid-10"/>`, `<system value="http://fhir.de/NamingSystem/gkv/kvk"/>`),
			want: []string{"error value Coverage.identifier[0].system"}},
	})
}

func TestPattern(t *testing.T) {
	// identifier-lanr: Identifier.type has patternCodeableConcept v2-0203#LANR
	lanr := func(system, code string) string {
		return `<identifier xmlns="http://hl7.org/fhir"><type><coding><system value="` + system + `"/><code value="` + code + `"/><display value="x"/></coding><text value="LANR"/></type>` +
			`<system value="https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR"/><value value="123456628"/></identifier>`
	}
	const url = "https://fhir.kbv.de/StructureDefinition/identifier-lanr"
	v := Default()
	pattern := v.Profile("http://fhir.de/StructureDefinition/identifier-lanr")
	if pattern == nil {
		t.Fatal("identifier-lanr not in the tables")
	}
	for _, c := range []struct {
		system, code string
		want         []string
	}{
		{"http://terminology.hl7.org/CodeSystem/v2-0203", "LANR", nil},
		{"http://terminology.hl7.org/CodeSystem/v2-0203", "XX", []string{"error value identifier.type", "error value identifier.type.coding[0].code"}},
		{"urn:other", "LANR", []string{"error value identifier.type"}},
	} {
		is := v.ValidateAgainst(parse(t, lanr(c.system, c.code)), pattern.URL, "", Options{})
		var got []string
		for _, i := range is {
			if i.Severity == fhir.SeverityError && i.Code == fhir.CodeValue {
				got = append(got, found(fhir.Issues{i})...)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s#%s: got %q want %q (all %v)", c.system, c.code, got, c.want, is)
		}
	}
	if is := v.ValidateAgainst(parse(t, lanr("a", "b")), url, "", Options{}); len(is) != 1 || is[0].Severity != fhir.SeverityInformation {
		t.Errorf("unknown profile: %v", is)
	}
}

func TestMaxLength(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "IK of 9 digits", xml: coverage},
		{name: "IK of 10 digits", xml: with(coverage, `<value value="100000001"/>`, `<value value="1000000012"/>`),
			want: []string{"error value Coverage.payor.identifier[0].value"}},
	})
}

func TestRequiredBinding(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "WOP 38 is in KBV_VS_SFHIR_ITA_WOP", xml: with(coverage, "<!--EXT-->", wop)},
		{name: "WOP 99 is not", xml: with(coverage, "<!--EXT-->", strings.Replace(wop, `"38"`, `"99"`, 1)),
			want: []string{"error invalid Coverage.extension[0].valueCoding"}},
		{name: "WOP 38 of another system", xml: with(coverage, "<!--EXT-->", strings.Replace(wop, `KBV_CS_SFHIR_ITA_WOP`, `KBV_CS_SFHIR_KBV_DMP`, 1)),
			want: []string{"error invalid Coverage.extension[0].valueCoding"}},
		{name: "DMP 01 is in KBV_VS_SFHIR_KBV_DMP", xml: with(coverage, "<!--EXT-->", dmp)},
		{name: "DMP 77 is not", xml: with(coverage, "<!--EXT-->", strings.Replace(dmp, `"01"`, `"77"`, 1)),
			want: []string{"error invalid Coverage.extension[0].valueCoding"}},
		// KBV_VS_AW_Befundart (KBV AWS terminology) over KBV_CS_AW_Befundart
		{name: "Befundart Eigenbefund", xml: allergie(atcCoding)},
		{name: "Befundart 1 is no code of it", xml: strings.Replace(allergie(atcCoding), `"Eigenbefund"`, `"1"`, 1),
			want: []string{"error invalid AllergyIntolerance.asserter.extension[0].valueCodeableConcept"}},
	})
}

const atcCoding = `<coding><system value="http://fhir.de/CodeSystem/dimdi/atc"/><code value="N02BE01"/></coding>`

func TestSlicing(t *testing.T) {
	runCases(t, []ruleCase{
		// value discriminator on system, closed: a third coding matches no slice
		{name: "closed slicing by system: unknown coding", xml: with(puls, `<subject>`, ``+
			`<subject>`)},
		{name: "closed slicing by system: coding of another system", xml: with(puls, `</code>
	<subject>`, `<coding><system value="http://snomed.info/sct"/><code value="364075005"/></coding></code><subject>`),
			want: []string{"error structure Observation.code.coding", "error structure Observation.code.coding[2]"}},
		// type discriminator on value[x], closed
		{name: "type slicing: valueString where only Quantity is sliced", xml: with(puls, `<valueQuantity><value value="72"/><unit value="pro Min"/><system value="http://unitsofmeasure.org"/><code value="/min"/></valueQuantity>`, `<valueString value="72"/>`),
			want: []string{"error structure Observation.valueString"}},
		{name: "type restriction: effectivePeriod where only dateTime is allowed", xml: with(puls, `<effectiveDateTime value="2024-05-02"/>`, `<effectivePeriod><start value="2024-05-02"/></effectivePeriod>`),
			want: []string{"error structure Observation.effectivePeriod"}}, // once: the type, not also the closed type slicing
		// value discriminator on url (extension slices): the matched slice's extension profile applies
		{name: "url discriminator picks the wop slice and its binding", xml: with(coverage, "<!--EXT-->", personengruppe+strings.Replace(wop, `"38"`, `"XX"`, 1)),
			want: []string{"error invalid Coverage.extension[1].valueCoding"}},
		// value discriminator through the slice's type profile (identifier-kvid-10 fixes type.coding.code)
		{name: "Anlage: closed slicing on Allergie substance codings", xml: allergie(atcCoding)},
		{name: "Allergie: substance coding of an unsliced system", xml: allergie(`<coding><system value="http://example.org/x"/><code value="1"/></coding>`),
			want: []string{"error structure AllergyIntolerance.reaction.substance.coding[0]"}},
	})
}

func allergie(coding string) string {
	return head("AllergyIntolerance", "a1", "KBV_PR_AW_Allergie", "Allergie") +
		`<verificationStatus><coding><system value="http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"/><code value="confirmed"/></coding></verificationStatus>` +
		`<patient><reference value="Patient/p1"/></patient><encounter><reference value="Encounter/e1"/></encounter>` +
		`<asserter><extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Allergie_Erfasser_Befund"><valueCodeableConcept><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Befundart"/><code value="Eigenbefund"/></coding></valueCodeableConcept></extension><display value="Erfasserart"/></asserter>` +
		`<reaction><substance>` + coding + `</substance><manifestation><text value="Ausschlag"/></manifestation></reaction></AllergyIntolerance>`
}

func TestReferenceTargets(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "beneficiary Patient/…", xml: coverage},
		{name: "beneficiary Practitioner/…", xml: with(coverage, `Patient/p1`, `Practitioner/p1`),
			want: []string{"error structure Coverage.beneficiary.reference"}},
		{name: "absolute URL of a Patient", xml: with(coverage, `Patient/p1`, `https://example.org/fhir/Patient/p1/_history/2`)},
		{name: "urn:uuid cannot be typed without a resolver", xml: with(coverage, `Patient/p1`, `urn:uuid:8b5c4b4e-1111-4c3c-9c4e-000000000001`)},
	})
	// with a resolver the urn's target type is checked
	is := Validate(parse(t, with(coverage, `Patient/p1`, `urn:uuid:1`)), "", Options{Resolve: func(ref string) *etree.Element {
		return etree.NewElement("Organization")
	}})
	if got := found(is); !slices.Equal(got, []string{"error structure Coverage.beneficiary.reference"}) {
		t.Errorf("resolved urn to an Organization: %q", got)
	}
	// the message names the types the profile allows, whether or not the target was resolved
	for _, c := range []struct {
		name string
		is   fhir.Issues
		want string
	}{
		{"resolved", is, "reference to a resource of type Organization is not allowed here; the profile allows only Patient"},
		{"not resolved", Validate(parse(t, with(coverage, `Patient/p1`, `Practitioner/p1`)), "", Options{}),
			`reference to a resource of type Practitioner is not allowed here; the profile allows only Patient`},
	} {
		if len(c.is) != 1 || !strings.HasPrefix(c.is[0].Diagnostics, c.want) {
			t.Errorf("%s: %v, want a message starting %q", c.name, c.is, c.want)
		}
	}
}

func TestExtensionContext(t *testing.T) {
	skt := `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_SKT_Zusatzangabe"><valueString value="Südbrandenburg"/></extension>`
	runCases(t, []ruleCase{
		{name: "SKT-Zusatzangabe on Coverage (its context)", xml: with(coverage, "<!--EXT-->", skt)},
		{name: "SKT-Zusatzangabe on Observation", xml: with(puls, `<status value="final"/>`, skt+`<status value="final"/>`),
			want: []string{"error structure Observation.extension[0]"}},
		{name: "SKT-Zusatzangabe on Coverage.payor", xml: with(coverage, `<display value="Testkasse"/>`, skt+`<display value="Testkasse"/>`),
			want: []string{"error structure Coverage.payor.extension[0]"}},
		{name: "in a Bundle entry, on Coverage", xml: inBundle(with(coverage, "<!--EXT-->", skt))},
		{name: "in a Bundle entry, on Coverage.payor", xml: inBundle(with(coverage, `<display value="Testkasse"/>`, skt+`<display value="Testkasse"/>`)),
			want: []string{"error structure Bundle.entry[0].resource.payor.extension[0]"}},
	})
}

func TestProfileSelection(t *testing.T) {
	unknown := with(coverage, `KBV_PR_AW_Krankenversicherungsverhaeltnis|1.2.0`, `KBV_PR_XX_Unbekannt|1.0.0`)
	is := Validate(parse(t, unknown), "Bundle.entry[2].resource", Options{})
	if len(is) != 1 || is[0].Severity != fhir.SeverityInformation || is[0].Expression != "Bundle.entry[2].resource.meta.profile" {
		t.Errorf("unknown profile: %v", is)
	}
	other := with(coverage, `KBV_PR_AW_Krankenversicherungsverhaeltnis|1.2.0`, `KBV_PR_AW_Krankenversicherungsverhaeltnis|1.1.0`)
	if is := Validate(parse(t, other), "", Options{}); len(is) != 1 || is[0].Severity != fhir.SeverityInformation {
		t.Errorf("other version: %v", is)
	}
	none := with(coverage, `<profile value="https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Krankenversicherungsverhaeltnis|1.2.0"/>`, "")
	if is := Validate(parse(t, none), "", Options{}); len(is) != 0 {
		t.Errorf("no meta.profile: %v", is)
	}
	// a located resource keeps its location
	is = Validate(parse(t, with(coverage, `<versionId value="1"/>`, "")), "Bundle.entry[3].resource", Options{})
	if got := found(is); !slices.Equal(got, []string{"error required Bundle.entry[3].resource.meta.versionId"}) {
		t.Errorf("located: %q", got)
	}
}

// fakeInvariants fails one expression, cannot evaluate another, keeps all others.
// inBundle wraps a resource into a Bundle without a profile (only the entry is validated).
func inBundle(res string) string {
	return `<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/><entry><fullUrl value="urn:uuid:1"/><resource>` +
		strings.Replace(res, ` xmlns="http://hl7.org/fhir"`, "", 1) + `</resource></entry></Bundle>`
}

type fakeInvariants struct{ fail, broken string }

func (f fakeInvariants) Check(expr string, el *etree.Element) (bool, error) {
	switch expr {
	case f.broken:
		return false, errors.New("not supported")
	case f.fail:
		return false, nil
	}
	return true, nil
}

func TestInvariants(t *testing.T) {
	anl := parse(t, anlage)
	c := Default().Profile("https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Anlage").Elements[0].Constraints[0]
	if c.Key != "NotAllOrNothingHASOne" {
		t.Fatalf("first constraint of KBV_PR_AW_Anlage: %s", c.Key)
	}
	if is := Validate(anl, "", Options{}); len(is) != 0 {
		t.Fatalf("without an evaluator invariants are not evaluated: %v", is)
	}
	is := Validate(anl, "", Options{Invariants: fakeInvariants{fail: c.Expression}})
	if len(is) != 1 || is[0].Code != fhir.CodeInvariant || is[0].Severity != fhir.SeverityError || is[0].Expression != "DocumentReference" {
		t.Errorf("violated invariant: %v", is)
	}
	if is := Validate(anl, "", Options{Invariants: fakeInvariants{}}); len(is) != 0 {
		t.Errorf("kept invariants: %v", is)
	}
	if is := Validate(anl, "", Options{Invariants: fakeInvariants{broken: c.Expression}}); len(is) != 1 || is[0].Severity != fhir.SeverityWarning {
		t.Errorf("evaluator error: %v", is)
	}
}

// A slicing by pattern on $this whose slices carry a complex pattern (a CodeableConcept) is matched
// by that pattern: KBV_PR_Base_Observation_Heart_Rate requires the category slice vs-cat once.
func TestComplexPatternSlice(t *testing.T) {
	obs := func(system, code string) string {
		return `<Observation xmlns="http://hl7.org/fhir"><status value="final"/><category><coding><system value="` + system +
			`"/><code value="` + code + `"/></coding></category><code><text value="Herzfrequenz"/></code></Observation>`
	}
	const canon = "https://fhir.kbv.de/StructureDefinition/KBV_PR_Base_Observation_Heart_Rate"
	vsCat := "http://terminology.hl7.org/CodeSystem/observation-category"
	for _, c := range []struct {
		name, system, code string
		want               int // issues about the slice vs-cat
	}{
		{"vital-signs category matches vs-cat", vsCat, "vital-signs", 0},
		{"another category leaves vs-cat empty", vsCat, "laboratory", 1},
		{"vital-signs of another system", "urn:other", "vital-signs", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := Default().ValidateAgainst(parse(t, obs(c.system, c.code)), canon, "", Options{})
			n := 0
			for _, i := range is {
				if strings.Contains(i.Diagnostics, "slice vs-cat") {
					n++
				}
			}
			if n != c.want {
				t.Errorf("%d issues about vs-cat, want %d: %v", n, c.want, is)
			}
		})
	}
}

// Element.id is an XML attribute: KBV_PR_AW_Behandlungsbaustein_Definition requires action.id.
func TestAttributeElements(t *testing.T) {
	plan := func(action string) string {
		return head("PlanDefinition", "pd1", "KBV_PR_AW_Behandlungsbaustein_Definition", "Plan") +
			`<title value="Plan"/><status value="active"/>` + action + `</PlanDefinition>`
	}
	const code = `<code><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Behandlungsbaustein_Bausteine"/><code value="Baustein_Sonstige"/></coding></code>` +
		`<definitionCanonical value="https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Behandlungsbaustein_Sonstige|1.2.0"/>`
	runCases(t, []ruleCase{
		{name: "action with its id attribute", xml: plan(`<action id="1">` + code + `</action>`)},
		{name: "action without id", xml: plan(`<action>` + code + `</action>`),
			want: []string{"error required PlanDefinition.action.id"}},
	})
}

// TestSupplied: an element the caller writes itself may be absent — below the resource only.
func TestSupplied(t *testing.T) {
	res := parse(t, with(coverage, `<versionId value="1"/>`, ""))
	opts := Options{Supplied: []string{"meta.versionId", "text"}}
	if got := found(Validate(res, "", opts)); len(got) != 0 {
		t.Errorf("meta.versionId supplied: got %q, want none", got)
	}
	if got := found(Validate(res, "", Options{Supplied: []string{"versionId"}})); !slices.Equal(got, []string{"error required Coverage.meta.versionId"}) {
		t.Errorf("a data type's element (Meta.versionId) is not the resource's: got %q", got)
	}
}

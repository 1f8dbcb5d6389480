package kbv_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/internal/fixture"
)

// The helpers in this file serve the tests of Patient, Coverage, Practitioner, Organization and
// PractitionerRole; they are prefixed "persons" to stay apart from other types' test helpers.

// personsNow is the clock of the table tests.
var personsNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// personsIssue is an expected finding: its code and exact location.
type personsIssue struct {
	code fhir.IssueCode
	at   string
}

// personsEdit changes a fixture into a broken variant.
type personsEdit func(tb testing.TB, res *etree.Element)

// personsCase is one broken (or still valid) variant of a fixture and the error-level and
// warning-level findings it must produce, exactly.
type personsCase struct {
	name string
	edit personsEdit
	errs []personsIssue
	warn []personsIssue
	now  time.Time // zero: personsNow
}

// personsLoad reads a fixture from testdata/persons.
func personsLoad(tb testing.TB, name string) *etree.Element {
	tb.Helper()
	res, err := fhir.Parse(fixture.Read(tb, filepath.Join("testdata", "persons", name)), fhir.DefaultLimits)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return res
}

// personsRun checks that the fixture is accepted without any finding, that every case produces
// exactly its findings, that no message repeats person data of the fixture, and that the messages
// match the fixture's golden file.
func personsRun(t *testing.T, fixture string, cases []personsCase) {
	t.Helper()
	typ := personsLoad(t, fixture).Tag
	secrets := personsSecrets(personsLoad(t, fixture))
	var golden strings.Builder

	t.Run("accepts the valid "+strings.TrimSuffix(fixture, ".xml"), func(t *testing.T) {
		if got := validate.Resource(personsLoad(t, fixture), typ, kbv.Options{Now: personsNow}); len(got) != 0 {
			t.Errorf("valid %s: unexpected findings:\n%s", fixture, personsFormat(got))
		}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := personsLoad(t, fixture)
			c.edit(t, res)
			now := c.now
			if now.IsZero() {
				now = personsNow
			}
			got := validate.Resource(res, typ, kbv.Options{Now: now})
			personsCompare(t, "errors", personsOf(got, fhir.SeverityError), c.errs)
			personsCompare(t, "warnings", personsOf(got, fhir.SeverityWarning), c.warn)
			for _, is := range got {
				for _, s := range secrets {
					if strings.Contains(is.Diagnostics, s) {
						t.Errorf("message %q repeats person data", is.Diagnostics)
					}
				}
			}
			fmt.Fprintf(&golden, "%s\n%s", c.name, personsFormat(got))
		})
	}
	personsGolden(t, strings.TrimSuffix(fixture, ".xml")+".golden", golden.String())
}

// personsOf returns the findings of one severity as (code, location) pairs.
func personsOf(is fhir.Issues, sev fhir.Severity) []personsIssue {
	var out []personsIssue
	for _, i := range is {
		if i.Severity == sev {
			out = append(out, personsIssue{i.Code, i.Expression})
		}
	}
	return out
}

func personsCompare(t *testing.T, what string, got, want []personsIssue) {
	t.Helper()
	key := func(a, b personsIssue) int { return strings.Compare(a.at+" "+string(a.code), b.at+" "+string(b.code)) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, key)
	slices.SortFunc(want, key)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func personsFormat(is fhir.Issues) string {
	var b strings.Builder
	for _, i := range is {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", i.Severity, i.Code, i.Expression, i.Diagnostics)
	}
	return b.String()
}

// personsGolden compares got with testdata/persons/name (go test -update rewrites it).
func personsGolden(t *testing.T, name, got string) {
	t.Helper()
	fixture.Golden(t, filepath.Join("testdata", "persons", name), []byte(got))
}

// personsSecrets are the person data of a fixture: names, birth date, address, numbers, contact
// points. Messages must never repeat them.
func personsSecrets(res *etree.Element) []string {
	var out []string
	var walk func(e *etree.Element, parent string)
	walk = func(e *etree.Element, parent string) {
		v := e.SelectAttrValue("value", "")
		switch e.Tag {
		case "family", "given", "birthDate", "line", "city", "postalCode", "valueString", "display":
			out = append(out, v)
		case "value":
			if parent == "identifier" || parent == "telecom" {
				out = append(out, v)
			}
		}
		for _, k := range e.ChildElements() {
			walk(k, e.Tag)
		}
	}
	walk(res, "")
	return slices.DeleteFunc(out, func(s string) bool { return utf8.RuneCountInString(s) < 4 })
}

// personsFind returns the element at an etree path (1-based indexes, e.g. "name[2]/family").
func personsFind(tb testing.TB, res *etree.Element, path string) *etree.Element {
	tb.Helper()
	e := res.FindElement("./" + path)
	if e == nil {
		tb.Fatalf("fixture has no %s", path)
	}
	return e
}

// personsSet sets the value attribute of the element at path.
func personsSet(path, value string) personsEdit {
	return func(tb testing.TB, res *etree.Element) {
		tb.Helper()
		personsFind(tb, res, path).CreateAttr("value", value)
	}
}

// personsRemove removes the element at path.
func personsRemove(path string) personsEdit {
	return func(tb testing.TB, res *etree.Element) {
		tb.Helper()
		e := personsFind(tb, res, path)
		e.Parent().RemoveChild(e)
	}
}

// personsAdd appends the XML snippet to the element at path ("" is the resource itself).
func personsAdd(path, snippet string) personsEdit {
	return func(tb testing.TB, res *etree.Element) {
		tb.Helper()
		parent := res
		if path != "" {
			parent = personsFind(tb, res, path)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromString("<x>" + snippet + "</x>"); err != nil {
			tb.Fatalf("snippet: %v", err)
		}
		for _, k := range doc.Root().ChildElements() {
			parent.AddChild(k.Copy())
		}
	}
}

// personsEdits applies several edits in order.
func personsEdits(edits ...personsEdit) personsEdit {
	return func(tb testing.TB, res *etree.Element) {
		tb.Helper()
		for _, e := range edits {
			e(tb, res)
		}
	}
}

func personsErr(code fhir.IssueCode, at string) []personsIssue { return []personsIssue{{code, at}} }

const (
	personsQualifier = `<extension url="http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier"><valueCode value="AC"/></extension>`
	personsAmtlich   = `<extension url="http://fhir.de/StructureDefinition/gender-amtlich-de"><valueCoding><system value="http://fhir.de/CodeSystem/gender-amtlich-de"/><code value="%s"/></valueCoding></extension>`
)

func TestPatient(t *testing.T) {
	const (
		kvnr   = "identifier[2]"
		kvnrAt = "Patient.identifier[1]"
		name   = "name[1]"
		family = "name[1]/family"
		addr   = "address[1]"
	)
	long := strings.Repeat("x", 46)
	personsRun(t, "patient.xml", []personsCase{
		// Identifiers.
		{name: "warns about KVNR with wrong check digit",
			edit: personsSet(kvnr+"/value", "M123456784"),
			warn: personsErr(fhir.CodeValue, "Patient.identifier[1].value")},
		{name: "warns about KVNR starting with a digit",
			edit: personsSet(kvnr+"/value", "1X11043327"),
			warn: personsErr(fhir.CodeInvariant, "Patient.identifier[1].value")}, // kvid-1
		{name: "warns about KVNR with an umlaut",
			edit: personsSet(kvnr+"/value", "Ü110433273"),
			warn: personsErr(fhir.CodeInvariant, "Patient.identifier[1].value")}, // kvid-1
		{name: "warns about KVNR with eleven characters",
			edit: personsSet(kvnr+"/value", "X1104333200"),
			warn: personsErr(fhir.CodeInvariant, "Patient.identifier[1].value")}, // kvid-1
		{name: "rejects KVNR under a foreign identifier system",
			edit: personsSet(kvnr+"/system", "http://www.acme.com/identifiers/patient"),
			errs: personsErr(fhir.CodeValue, kvnrAt+".system")},
		{name: "rejects KVNR without system",
			edit: personsRemove(kvnr + "/system"),
			errs: personsErr(fhir.CodeRequired, kvnrAt+".system")},
		{name: "rejects a second KVNR",
			edit: personsAdd("", `<identifier><type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="KVZ10"/></coding></type><system value="http://fhir.de/sid/gkv/kvid-10"/><value value="G987654321"/></identifier>`),
			errs: personsErr(fhir.CodeStructure, "Patient.identifier[2]")},
		{name: "rejects identifier without type",
			edit: personsRemove("identifier[1]/type"),
			errs: personsErr(fhir.CodeStructure, "Patient.identifier[0]")}, // closed slicing
		{name: "rejects identifier type that is not one of a patient",
			edit: personsSet("identifier[1]/type/coding/code", "XX"),
			errs: personsErr(fhir.CodeStructure, "Patient.identifier[0]")},
		{name: "rejects identifier type from a foreign code system",
			edit: personsSet("identifier[1]/type/coding/system", "http://example.org/types"),
			errs: []personsIssue{{fhir.CodeValue, "Patient.identifier[0].type"}, {fhir.CodeValue, "Patient.identifier[0].type.coding[0].system"}}},
		{name: "rejects identifier without value",
			edit: personsRemove("identifier[1]/value"),
			errs: personsErr(fhir.CodeRequired, "Patient.identifier[0].value")},
		{name: "warns about identifier with a blank value",
			edit: personsSet("identifier[1]/value", "  "),
			warn: personsErr(fhir.CodeRequired, "Patient.identifier[0].value")},
		{name: "rejects identifier with a period",
			edit: personsAdd("identifier[1]", `<period><start value="2020-01-01"/></period>`),
			errs: personsErr(fhir.CodeStructure, "Patient.identifier[0].period")},
		{name: "rejects patient without identifier",
			edit: personsEdits(personsRemove("identifier[2]"), personsRemove("identifier[1]")),
			errs: personsErr(fhir.CodeRequired, "Patient.identifier")},
		{name: "accepts the identifier type GKV (the KVNR slices of KBV AWS 1.2.0 use it)",
			edit: personsSet(kvnr+"/type/coding/code", "GKV")},
		{name: "accepts the legacy KVNR system",
			edit: personsSet(kvnr+"/system", "http://fhir.de/NamingSystem/gkv/kvid-10")},

		// Names.
		{name: "rejects patient without name",
			edit: personsEdits(personsRemove("name[2]"), personsRemove("name[1]")),
			errs: personsErr(fhir.CodeRequired, "Patient.name")},
		{name: "rejects a second official name",
			edit: personsEdits(personsSet("name[2]/use", "official"), personsAdd("name[2]", `<given value="Erika"/>`)),
			errs: personsErr(fhir.CodeStructure, "Patient.name")}, // slice name 0..1
		{name: "rejects a name use outside official, usual and maiden",
			edit: personsSet("name[2]/use", "nickname"),
			errs: personsErr(fhir.CodeStructure, "Patient.name[1]")}, // closed slicing
		{name: "warns about patient without official name (KBV_PR_AW_Patient: 0..1)",
			edit: personsSet(name+"/use", "usual"),
			warn: personsErr(fhir.CodeInvariant, "Patient.name")},
		{name: "rejects more than three names",
			edit: personsEdits(
				personsAdd("", `<name><use value="usual"/><family value="Musterfrau"/><given value="Erika"/></name>`),
				personsAdd("", `<name><use value="old"/><family value="Alt"/></name>`)),
			errs: []personsIssue{{fhir.CodeStructure, "Patient.name"}, {fhir.CodeStructure, "Patient.name[3]"}}},
		{name: "rejects name without family name",
			edit: personsRemove(family),
			errs: personsErr(fhir.CodeRequired, "Patient.name[0].family")},
		{name: "rejects official name without first name",
			edit: personsRemove(name + "/given"),
			errs: personsErr(fhir.CodeRequired, "Patient.name[0].given")},
		{name: "rejects first names in two given elements",
			edit: personsAdd(name, `<given value="Luise"/>`),
			errs: personsErr(fhir.CodeStructure, "Patient.name[0].given")},
		{name: "rejects first name longer than 45 characters",
			edit: personsSet(name+"/given", long),
			errs: personsErr(fhir.CodeValue, "Patient.name[0].given[0]")},
		{name: "rejects Nachname longer than 45 characters",
			edit: personsEdits(personsSet(family, "Freifrau von "+long), personsSet(family+"/extension[3]/valueString", long)),
			errs: personsErr(fhir.CodeValue, "Patient.name[0].family.extension[2].valueString")},
		{name: "warns about family name longer than 45 characters without parts",
			edit: personsSet("name[2]/family", long),
			warn: personsErr(fhir.CodeValue, "Patient.name[1].family")},
		{name: "rejects Vorsatzwort longer than 20 characters",
			edit: personsEdits(
				personsSet(family, "Freifrau von und zu aber echt jetzt Musterfrau"),
				personsSet(family+"/extension[2]/valueString", "von und zu aber echt jetzt")),
			errs: personsErr(fhir.CodeValue, "Patient.name[0].family.extension[1].valueString")},
		{name: "warns about Namenszusatz missing from the family name",
			edit: personsSet(family+"/extension[1]/valueString", "Gräfin"),
			warn: personsErr(fhir.CodeInvariant, "Patient.name[0].family")},
		{name: "rejects Namenszusatz given twice",
			edit: personsAdd(family, `<extension url="http://fhir.de/StructureDefinition/humanname-namenszusatz"><valueString value="Freifrau"/></extension>`),
			errs: personsErr(fhir.CodeStructure, "Patient.name[0].family.extension")},
		{name: "rejects academic title without qualifier AC",
			edit: personsRemove(name + "/prefix/extension"),
			errs: personsErr(fhir.CodeRequired, "Patient.name[0].prefix[0].extension")},
		{name: "rejects name prefix qualifier other than AC",
			edit: personsSet(name+"/prefix/extension/valueCode", "NB"),
			errs: personsErr(fhir.CodeValue, "Patient.name[0].prefix[0].extension[0].valueCode")},
		{name: "rejects academic titles in two prefix elements",
			edit: personsAdd(name, `<prefix value="Prof.">`+personsQualifier+`</prefix>`),
			errs: personsErr(fhir.CodeStructure, "Patient.name[0].prefix")},
		{name: "rejects academic title longer than 20 characters",
			edit: personsSet(name+"/prefix", "Prof. Dr. med. Dr. rer. nat."),
			errs: personsErr(fhir.CodeValue, "Patient.name[0].prefix[0]")},

		// Gender.
		{name: "rejects a missing gender (KBV_PR_AW_Patient: 1..1)",
			edit: personsRemove("gender"),
			errs: personsErr(fhir.CodeRequired, "Patient.gender")},
		{name: "rejects gender outside the administrative genders",
			edit: personsSet("gender", "divers"),
			errs: personsErr(fhir.CodeValue, "Patient.gender")},
		{name: "warns about gender other without gender-amtlich-de (AWS states only the converse)",
			edit: personsSet("gender", "other"),
			warn: personsErr(fhir.CodeInvariant, "Patient.gender")},
		{name: "accepts gender other with gender-amtlich-de X",
			edit: personsEdits(personsSet("gender", "other"), personsAdd("gender", fmt.Sprintf(personsAmtlich, "X")))},
		{name: "rejects gender-amtlich-de with gender female",
			edit: personsAdd("gender", fmt.Sprintf(personsAmtlich, "D")),
			errs: personsErr(fhir.CodeInvariant, "Patient")}, // pat-de-1
		{name: "rejects gender-amtlich-de code outside D and X",
			edit: personsEdits(personsSet("gender", "other"), personsAdd("gender", fmt.Sprintf(personsAmtlich, "M"))),
			errs: personsErr(fhir.CodeInvalid, "Patient.gender.extension[0].valueCoding")}, // required binding

		// Birth and death.
		{name: "warns about birth date in the future",
			edit: personsSet("birthDate", "2031-01-01"),
			warn: personsErr(fhir.CodeValue, "Patient.birthDate")},
		{name: "rejects birth date that does not exist",
			edit: personsSet("birthDate", "1964-02-30"),
			errs: personsErr(fhir.CodeValue, "Patient.birthDate")},
		{name: "rejects birth date written with dots",
			edit: personsSet("birthDate", "12.08.1964"),
			errs: personsErr(fhir.CodeValue, "Patient.birthDate")},
		{name: "warns about birth date more than 150 years ago",
			edit: personsSet("birthDate", "1850-01-01"),
			warn: personsErr(fhir.CodeValue, "Patient.birthDate")},
		{name: "accepts birth year only",
			edit: personsSet("birthDate", "1964")},
		{name: "rejects missing birth date",
			edit: personsRemove("birthDate"),
			errs: personsErr(fhir.CodeRequired, "Patient.birthDate")},
		{name: "accepts unknown birth date marked with data-absent-reason",
			edit: personsEdits(personsRemove("birthDate"), personsAdd("", `<birthDate><extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason"><valueCode value="unknown"/></extension></birthDate>`))},
		{name: "rejects birth date without value or data-absent-reason",
			edit: personsEdits(personsRemove("birthDate"), personsAdd("", `<birthDate/>`)),
			errs: personsErr(fhir.CodeRequired, "Patient.birthDate")},
		{name: "warns about date of death before birth",
			edit: personsAdd("", `<deceasedDateTime value="1960-01-01"/>`),
			warn: personsErr(fhir.CodeInvariant, "Patient.deceasedDateTime")},
		{name: "warns about date of death in the future",
			edit: personsAdd("", `<deceasedDateTime value="2030-01-01T10:00:00+01:00"/>`),
			warn: personsErr(fhir.CodeValue, "Patient.deceasedDateTime")},
		{name: "accepts death on the day of birth",
			edit: personsAdd("", `<deceasedDateTime value="1964-08-12T23:30:00+02:00"/>`)},
		{name: "rejects deceased as a boolean",
			edit: personsAdd("", `<deceasedBoolean value="true"/>`),
			errs: personsErr(fhir.CodeStructure, "Patient.deceasedBoolean")},
		{name: "rejects multiple birth",
			edit: personsAdd("", `<multipleBirthInteger value="2"/>`),
			errs: personsErr(fhir.CodeStructure, "Patient.multipleBirth[x]")},

		// Address.
		{name: "rejects street name longer than 46 characters",
			edit: personsEdits(personsSet(addr+"/line[1]", long+"x 17"), personsSet(addr+"/line[1]/extension[1]/valueString", long+"x")),
			errs: personsErr(fhir.CodeValue, "Patient.address[0].line[0].extension[0].valueString")},
		{name: "rejects house number longer than 9 characters",
			edit: personsEdits(personsSet(addr+"/line[1]", "Heidestraße 1234567890"), personsSet(addr+"/line[1]/extension[2]/valueString", "1234567890")),
			errs: personsErr(fhir.CodeValue, "Patient.address[0].line[0].extension[1].valueString")},
		{name: "warns about house number missing from the address line",
			edit: personsSet(addr+"/line[1]/extension[2]/valueString", "18"),
			warn: personsErr(fhir.CodeInvariant, "Patient.address[0].line[0]")},
		{name: "rejects address supplement longer than 40 characters",
			edit: personsEdits(personsSet(addr+"/line[2]", long), personsSet(addr+"/line[2]/extension/valueString", long)),
			errs: personsErr(fhir.CodeValue, "Patient.address[0].line[1].extension[0].valueString")},
		{name: "warns about address without city",
			edit: personsRemove(addr + "/city"),
			warn: personsErr(fhir.CodeRequired, "Patient.address[0].city")},
		{name: "rejects city longer than 40 characters",
			edit: personsSet(addr+"/city", long),
			errs: personsErr(fhir.CodeValue, "Patient.address[0].city")},
		{name: "warns about German postal code with four digits",
			edit: personsSet(addr+"/postalCode", "5114"),
			warn: personsErr(fhir.CodeValue, "Patient.address[0].postalCode")},
		{name: "warns about German address without postal code",
			edit: personsRemove(addr + "/postalCode"),
			warn: personsErr(fhir.CodeRequired, "Patient.address[0].postalCode")},
		{name: "accepts foreign postal code",
			edit: personsEdits(personsSet(addr+"/country", "CH"), personsSet(addr+"/postalCode", "CH-8001"))},
		{name: "rejects postal code longer than 10 characters",
			edit: personsEdits(personsSet(addr+"/country", "GB"), personsSet(addr+"/postalCode", "SW1A 1AA 99")),
			errs: personsErr(fhir.CodeValue, "Patient.address[0].postalCode")},
		{name: "rejects country longer than 3 characters",
			edit: personsSet(addr+"/country", "Deutschland"),
			errs: personsErr(fhir.CodeValue, "Patient.address[0].country")},
		{name: "warns about country that is not a DEÜV Anlage 8 code (the binding is extensible)",
			edit: personsSet(addr+"/country", "de"),
			warn: personsErr(fhir.CodeValue, "Patient.address[0].country")},
		{name: "rejects address type outside both, postal and physical",
			edit: personsSet(addr+"/type", "home"),
			errs: personsErr(fhir.CodeValue, "Patient.address[0].type")},
		{name: "rejects post box in a street address",
			edit: personsEdits(personsRemove(addr+"/line[2]"), personsRemove(addr+"/line[1]"),
				personsAdd(addr, `<line value="Postfach 1234"><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox"><valueString value="1234"/></extension></line>`)),
			errs: personsErr(fhir.CodeStructure, "Patient.address[0].line[0].extension")},
		{name: "rejects street and post box in one address",
			edit: personsAdd(addr, `<line value="Postfach 1234"><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox"><valueString value="1234"/></extension></line>`),
			errs: []personsIssue{{fhir.CodeStructure, "Patient.address[0].line"}, {fhir.CodeStructure, "Patient.address[0].line[2].extension"}}},
		{name: "warns about post box in a contact's street address",
			edit: personsAdd("contact", `<address><type value="both"/><line value="Postfach 1234"><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox"><valueString value="1234"/></extension></line><city value="Köln"/></address>`),
			warn: personsErr(fhir.CodeInvariant, "Patient.contact[0].address.type")},

		// Telecom.
		{name: "warns about phone number with letters",
			edit: personsSet("telecom[1]/value", "030 CALL ME"),
			warn: personsErr(fhir.CodeValue, "Patient.telecom[0].value")},
		{name: "warns about phone number longer than 30 characters",
			edit: personsSet("telecom[1]/value", "030 1234567 1234567 1234567 1234567"),
			warn: personsErr(fhir.CodeValue, "Patient.telecom[0].value")},
		{name: "warns about e-mail address without @",
			edit: personsSet("telecom[2]/value", "erika.example.org"),
			warn: personsErr(fhir.CodeValue, "Patient.telecom[1].value")},
		{name: "rejects contact point without system",
			edit: personsRemove("telecom[1]/system"),
			errs: personsErr(fhir.CodeRequired, "Patient.telecom[0].system")},
		{name: "rejects contact point system outside the FHIR list",
			edit: personsSet("telecom[1]/system", "mobile"),
			errs: personsErr(fhir.CodeValue, "Patient.telecom[0].system")},

		// Other elements.
		{name: "rejects marital status outside v3-MaritalStatus",
			edit: personsSet("maritalStatus/coding/code", "Z"),
			errs: personsErr(fhir.CodeValue, "Patient.maritalStatus.coding[0].code")},
		{name: "rejects marital status with two codings",
			edit: personsAdd("maritalStatus", `<coding><system value="http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"/><code value="S"/></coding>`),
			errs: personsErr(fhir.CodeStructure, "Patient.maritalStatus.coding")},
		{name: "rejects contact without relationship",
			edit: personsRemove("contact/relationship"),
			errs: personsErr(fhir.CodeStructure, "Patient.contact[0]")},
		{name: "rejects contact relationship other than CP and BP",
			edit: personsSet("contact/relationship/coding/code", "N"),
			errs: personsErr(fhir.CodeStructure, "Patient.contact[0]")},
		{name: "warns about contact name without family name (humanname-de-basis: 0..1)",
			edit: personsRemove("contact/name/family"),
			warn: personsErr(fhir.CodeRequired, "Patient.contact[0].name.family")},
		{name: "rejects language without preferred flag",
			edit: personsRemove("communication/preferred"),
			errs: personsErr(fhir.CodeRequired, "Patient.communication.preferred")},
		{name: "rejects managing organization",
			edit: personsAdd("", `<managingOrganization><reference value="Organization/o1"/></managingOrganization>`),
			errs: personsErr(fhir.CodeStructure, "Patient.managingOrganization")},
		{name: "rejects general practitioner that is a patient",
			edit: personsAdd("", `<generalPractitioner><reference value="Patient/p2"/></generalPractitioner>`),
			errs: personsErr(fhir.CodeStructure, "Patient.generalPractitioner.reference")},
		{name: "accepts general practitioner as urn:uuid reference",
			edit: personsAdd("", `<generalPractitioner><reference value="urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"/></generalPractitioner>`)},
	})

	// The e-prescription's KBV_PR_FOR_Patient (FOR 1.1.0), on the patient of gematik's examples.
	personsRun(t, "patient-for.xml", []personsCase{
		{name: "rejects KVNR with wrong check digit in an e-prescription",
			edit: personsSet("identifier/value", "T110397982"),
			errs: personsErr(fhir.CodeValue, "Patient.identifier[0].value")},
		{name: "rejects gender in an e-prescription (KBV_PR_FOR_Patient: 0..0)",
			edit: personsAdd("", `<gender value="female"/>`),
			errs: personsErr(fhir.CodeStructure, "Patient.gender")},
		{name: "rejects a birth name in an e-prescription (KBV_PR_FOR_Patient: name 1..1, geburtsname 0..0)",
			edit: personsAdd("", `<name><use value="maiden"/><family value="Gabler"/></name>`),
			errs: []personsIssue{{fhir.CodeStructure, "Patient.name"}, {fhir.CodeStructure, "Patient.name"}}},
	})
}

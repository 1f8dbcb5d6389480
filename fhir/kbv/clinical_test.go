package kbv_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/internal/fixture"
)

// clinicalNow is the clock of every clinical test: the test data lies before it.
var clinicalNow = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

// clinicalBase is where the tests place the resource, as the records layer does for bundle entries.
const clinicalBase = "Bundle.entry[0].resource"

// clinicalPersonData are strings of person data in the test files that no message may repeat.
var clinicalPersonData = []string{"P1001", "123456601", "721234500", "Kontrolle nach Infekt", "Rachen", "Husten",
	"Beschwerden", "RE-2025-00417", "DE02120300000000202051", "K-77812", "Arztbrief Kardiologie"}

// loadClinical parses testdata/clinical/name the way request bodies are parsed.
func loadClinical(t testing.TB, name string) *etree.Element {
	t.Helper()
	res, err := fhir.Parse(fixture.Read(t, filepath.Join("testdata", "clinical", name)), fhir.DefaultLimits)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

// clinicalEdit changes a valid resource into a broken (or differently valid) one.
type clinicalEdit func(t testing.TB, res *etree.Element)

// find returns the element at an etree path below res ("." is res itself).
func clinicalFind(t testing.TB, res *etree.Element, path string) *etree.Element {
	t.Helper()
	if path == "." {
		return res
	}
	el := res.FindElement("./" + path)
	if el == nil {
		t.Fatalf("test data has no element at %s", path)
	}
	return el
}

// del removes the element at path.
func clDel(path string) clinicalEdit {
	return func(t testing.TB, res *etree.Element) {
		t.Helper()
		el := clinicalFind(t, res, path)
		el.Parent().RemoveChild(el)
	}
}

// set sets the value of the element at path.
func clSet(path, value string) clinicalEdit {
	return func(t testing.TB, res *etree.Element) {
		t.Helper()
		clinicalFind(t, res, path).CreateAttr("value", value)
	}
}

// add appends the XML fragment as the last child of the element at path.
func clAdd(path, fragment string) clinicalEdit {
	return func(t testing.TB, res *etree.Element) {
		t.Helper()
		doc := etree.NewDocument()
		if err := doc.ReadFromString("<x>" + fragment + "</x>"); err != nil {
			t.Fatalf("fragment %s: %v", fragment, err)
		}
		parent := clinicalFind(t, res, path)
		for _, k := range doc.Root().ChildElements() {
			parent.AddChild(k.Copy())
		}
	}
}

func clinicalCheck(t testing.TB, file string, muts ...clinicalEdit) fhir.Issues {
	t.Helper()
	res := loadClinical(t, file)
	for _, m := range muts {
		m(t, res)
	}
	return validate.Resource(res, clinicalBase, kbv.Options{Now: clinicalNow})
}

func clinicalHas(is fhir.Issues, sev fhir.Severity, code fhir.IssueCode, at string) bool {
	for _, i := range is {
		if i.Severity == sev && i.Code == code && i.Expression == at {
			return true
		}
	}
	return false
}

func clinicalErrors(is fhir.Issues) fhir.Issues {
	var out fhir.Issues
	for _, i := range is {
		if i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal {
			out = append(out, i)
		}
	}
	return out
}

func clinicalList(is fhir.Issues) string {
	var b strings.Builder
	for _, i := range is {
		fmt.Fprintf(&b, "\n  %s %s %s: %s", i.Severity, i.Code, i.Expression, i.Diagnostics)
	}
	return b.String()
}

var clinicalFiles = []string{
	"encounter.xml", "condition.xml", "documentreference.xml",
	"observation-befund.xml", "observation-anamnese.xml", "observation-blutdruck.xml", "observation-koerpertemperatur.xml",
	"medication.xml", "medicationstatement.xml", "medicationrequest.xml", "provenance.xml",
	"claim-vorlaeufig.xml", "claim-vertragsaerztlich.xml", "claim-privat.xml",
}

func TestClinicalValid(t *testing.T) {
	for _, file := range clinicalFiles {
		t.Run("accepts "+file, func(t *testing.T) {
			if is := clinicalCheck(t, file); len(is) > 0 {
				t.Errorf("issues for a valid resource:%s", clinicalList(is))
			}
		})
	}
}

func TestClinicalAccepts(t *testing.T) {
	cases := []struct {
		name string
		file string
		muts []clinicalEdit
	}{
		{"accepts a subject given as urn:uuid", "encounter.xml", []clinicalEdit{clSet("subject/reference", "urn:uuid:0c3b5a7e-1d2f-4e6a-8b9c-0d1e2f3a4b5c")}},
		{"accepts a version-specific subject", "encounter.xml", []clinicalEdit{clSet("subject/reference", "Patient/P1001/_history/3")}},
		{"accepts an absolute subject URL", "encounter.xml", []clinicalEdit{clSet("subject/reference", "https://praxis.example/fhir/Patient/P1001")}},
		{"accepts an encounter today given as a date", "encounter.xml", []clinicalEdit{clSet("period/start", "2026-03-15"), clDel("period/end")}},
		{"accepts a period ending on the day it starts", "encounter.xml", []clinicalEdit{clSet("period/start", "2025-11-04T09:15:00+01:00"), clSet("period/end", "2025-11-04")}},
		{"accepts the participant given by reference to the practitioner only", "encounter.xml", []clinicalEdit{clSet("participant/individual/reference", "Practitioner/A3002"), clDel("participant/individual/identifier")}},
		{"accepts an encounter of a profile version the tables do not hold with the general rules", "encounter.xml", []clinicalEdit{clSet("meta/profile", "https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Hausbesuch|1.1.0"), clSet("class/code", "HH"), clDel("serviceProvider")}},
		{"accepts a diagnosis coded with the DIMDI system and a star code", "condition.xml", []clinicalEdit{clSet("code/coding/system", "http://fhir.de/CodeSystem/dimdi/icd-10-gm"), clSet("code/coding/code", "A17.0+ G01*")}},
		{"accepts a refuted diagnosis", "condition.xml", []clinicalEdit{clSet("clinicalStatus/coding/code", "inactive"), clSet("verificationStatus/coding/code", "refuted"), clSet("code/coding/extension/valueCoding/code", "A")}},
		{"accepts an attachment without content type (0..1)", "documentreference.xml", []clinicalEdit{clDel("content/attachment/contentType")}},
		{"accepts a document given by url", "documentreference.xml", []clinicalEdit{clDel("content/attachment/data"), clAdd("content/attachment", `<url value="file:///Anlagen/arztbrief.pdf"/>`)}},
		{"accepts a KBV form with its specification version", "documentreference.xml", []clinicalEdit{clSet("type/coding/code", "KV-Muster_6"), clSet("masterIdentifier/value", "2Q2025")}},
		{"accepts a document belonging to the patient", "documentreference.xml", []clinicalEdit{clDel("context"), clAdd(".", `<subject><reference value="Patient/P1001"/></subject>`)}},
		{"accepts a Befund recognised by its code without profile", "observation-befund.xml", []clinicalEdit{clDel("meta/profile")}},
		{"accepts a blood pressure with the systolic value only", "observation-blutdruck.xml", []clinicalEdit{clDel("component[2]")}},
		{"accepts an observation of another profile", "observation-koerpertemperatur.xml", []clinicalEdit{
			clSet("meta/profile", "https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Observation_Puls|1.2.0"),
			clSet("code/coding[1]/code", "8867-4"), clSet("code/coding[2]/code", "Puls"), clSet("valueQuantity/unit", "pro Min"), clSet("valueQuantity/code", "/min"),
		}},
		{"accepts a Rezeptur without PZN", "medication.xml", []clinicalEdit{clDel("code/coding"), clSet("code/text", "Salicylsäure 5 % in Vaseline"), clDel("amount")}},
		{"accepts an intended long-term medication starting later", "medicationstatement.xml", []clinicalEdit{clSet("status", "intended"), clSet("effectivePeriod/start", "2026-04-01")}},
		{"accepts an e-prescription with the general rules", "medicationrequest.xml", []clinicalEdit{
			clSet("meta/profile", "https://fhir.kbv.de/StructureDefinition/KBV_PR_ERP_Prescription|1.4"),
			clAdd(".", `<insurance><reference value="Coverage/V1101"/></insurance>`),
		}},
		{"accepts a package count written as a decimal", "medicationrequest.xml", []clinicalEdit{clSet("dispenseRequest/quantity/value", "2.0")}},
		{"accepts a prescription without dispense request and substitution", "medicationrequest.xml", []clinicalEdit{clDel("dispenseRequest"), clDel("substitution")}},
		{"accepts a provenance without agent", "provenance.xml", []clinicalEdit{clDel("agent")}},
		{"accepts a private invoice of the Postbeamte tariff", "claim-privat.xml", []clinicalEdit{clSet("subType/coding/code", "Privattarif_Postbeamte")}},
		{"accepts a provisional billing without profile with the shared rules", "claim-vorlaeufig.xml", []clinicalEdit{clDel("meta/profile")}},
		{"accepts the umlaut spelling of Beihilfeergaenzung with a warning", "claim-privat.xml", []clinicalEdit{clSet("subType/coding/code", "Privattarif_Beihilfeergänzung")}},
		{"accepts a GOP given by the sonstige_GOP extension", "claim-vorlaeufig.xml", []clinicalEdit{
			clDel("item[2]/productOrService/coding"),
			clAdd("item[2]/productOrService", `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Abrechnung_Sonstige_GOP"><valueCoding><system value="https://praxis.example/gop"/><version value="2025"/><code value="X1"/><display value="Sonderleistung"/></valueCoding></extension>`),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if is := clinicalErrors(clinicalCheck(t, tc.file, tc.muts...)); len(is) > 0 {
				t.Errorf("errors:%s", clinicalList(is))
			}
		})
	}
}

type clinicalCase struct {
	name string
	file string
	muts []clinicalEdit
	code fhir.IssueCode
	at   string // location below the resource
}

// clinicalRun checks that each case gets an error of its code at its location.
func clinicalRun(t *testing.T, cases []clinicalCase) {
	t.Helper()
	clinicalRunSev(t, fhir.SeverityError, cases)
}

// clinicalWarnRun checks that each case gets a plausibility warning of its code at its location,
// and an error there in strict mode.
func clinicalWarnRun(t *testing.T, cases []clinicalCase) {
	t.Helper()
	clinicalRunSev(t, fhir.SeverityWarning, cases)
}

func clinicalRunSev(t *testing.T, sev fhir.Severity, cases []clinicalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := clinicalCheck(t, tc.file, tc.muts...)
			want := clinicalBase + tc.at
			if sev == fhir.SeverityWarning {
				res := loadClinical(t, tc.file)
				for _, m := range tc.muts {
					m(t, res)
				}
				strict := validate.Resource(res, clinicalBase, kbv.Options{Now: clinicalNow, Mode: kbv.ModeStrict})
				if !clinicalHas(strict, fhir.SeverityError, tc.code, want) {
					t.Errorf("strict mode: want %s error at %s, got:%s", tc.code, want, clinicalList(strict))
				}
			}
			found := false
			for _, i := range is {
				if i.Severity == sev && i.Code == tc.code && i.Expression == want {
					found = true
				}
				for _, p := range clinicalPersonData {
					if strings.Contains(i.Diagnostics, p) {
						t.Errorf("message repeats person data %q: %s", p, i.Diagnostics)
					}
				}
			}
			if !found {
				t.Errorf("want %s %s at %s, got:%s", tc.code, sev, want, clinicalList(is))
			}
			seen := map[fhir.Issue]bool{}
			for _, i := range is {
				if seen[i] {
					t.Errorf("reported twice: %s %s: %s", i.Code, i.Expression, i.Diagnostics)
				}
				seen[i] = true
			}
		})
	}
}

const (
	clinicalExtRelevant       = `extension[@url='https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_istAbrechnungsrelevant']`
	clinicalSecondParticipant = `<participant><individual><reference value="PractitionerRole/R3002"/></individual></participant>`
)

func TestEncounterRejects(t *testing.T) {
	f := "encounter.xml"
	clinicalRun(t, []clinicalCase{
		{"rejects a missing subject", f, []clinicalEdit{clDel("subject")}, fhir.CodeRequired, ".subject"},
		{"rejects a subject that is not a patient", f, []clinicalEdit{clSet("subject/reference", "Practitioner/A3002")}, fhir.CodeStructure, ".subject.reference"},
		{"rejects a malformed reference", f, []clinicalEdit{clSet("serviceProvider/reference", "Organization O4001")}, fhir.CodeValue, ".serviceProvider.reference"},
		{"rejects a missing service provider", f, []clinicalEdit{clDel("serviceProvider")}, fhir.CodeRequired, ".serviceProvider"},
		{"rejects a status other than finished", f, []clinicalEdit{clSet("status", "in-progress")}, fhir.CodeValue, ".status"},
		{"rejects a class other than ambulatory", f, []clinicalEdit{clSet("class/code", "IMP")}, fhir.CodeValue, ".class.code"},
		{"rejects a period that ends before it starts", f, []clinicalEdit{clSet("period/end", "2025-11-04T08:00:00+01:00")}, fhir.CodeInvariant, ".period"},
		{"rejects a period without start", f, []clinicalEdit{clDel("period/start")}, fhir.CodeRequired, ".period.start"},
		{"rejects an impossible date", f, []clinicalEdit{clSet("period/start", "2025-02-30")}, fhir.CodeValue, ".period.start"},
		{"rejects a diagnosis, which the profile excludes", f, []clinicalEdit{clAdd(".", `<diagnosis><condition><reference value="Condition/C5001"/></condition></diagnosis>`)}, fhir.CodeStructure, ".diagnosis"},
		{"rejects a second participant", f, []clinicalEdit{clAdd(".", clinicalSecondParticipant)}, fhir.CodeStructure, ".participant"},
		{"rejects a participant that is a patient", f, []clinicalEdit{clSet("participant/individual/reference", "Patient/P1001")}, fhir.CodeStructure, ".participant.individual.reference"},
		{"rejects an unknown Vermittlungsart", f, []clinicalEdit{clSet("type/coding/code", "9")}, fhir.CodeValue, ".type.coding[0].code"},
		{"rejects encounter information without content", f, []clinicalEdit{clDel("extension/extension[@url='inhalt']")}, fhir.CodeRequired, ".extension[0].extension"},
	})
	clinicalWarnRun(t, []clinicalCase{
		{"warns about an encounter in the future", f, []clinicalEdit{clSet("period/start", "2026-04-01T09:00:00+02:00"), clDel("period/end")}, fhir.CodeValue, ".period.start"},
		{"warns about a LANR with a wrong check digit", f, []clinicalEdit{clSet("participant/individual/identifier/value", "123456701")}, fhir.CodeValue, ".participant[0].individual.identifier[0].value"},
	})
}

func TestConditionRejects(t *testing.T) {
	f := "condition.xml"
	clinicalRun(t, []clinicalCase{
		{"rejects a diagnosis without istAbrechnungsrelevant", f, []clinicalEdit{clDel(clinicalExtRelevant)}, fhir.CodeRequired, ".extension"},
		{"rejects istAbrechnungsrelevant that is not a boolean", f, []clinicalEdit{clSet(clinicalExtRelevant+"/valueBoolean", "ja")}, fhir.CodeValue, ".extension[1].valueBoolean"},
		{"rejects a resolved diagnosis", f, []clinicalEdit{clSet("clinicalStatus/coding/code", "resolved")}, fhir.CodeInvariant, ""},
		{"rejects a provisional diagnosis", f, []clinicalEdit{clSet("verificationStatus/coding/code", "provisional")}, fhir.CodeInvariant, ""},
		{"rejects a diagnosis without clinical status", f, []clinicalEdit{clDel("clinicalStatus")}, fhir.CodeRequired, ".clinicalStatus"},
		{"rejects a clinical status from another code system", f, []clinicalEdit{clSet("clinicalStatus/coding/system", "http://snomed.info/sct")}, fhir.CodeValue, ".clinicalStatus.coding.system"},
		{"rejects a malformed ICD-10-GM code", f, []clinicalEdit{clSet("code/coding/code", "J6.9")}, fhir.CodeValue, ".code.coding[0].code"},
		{"rejects an ICD-10-GM code without catalogue year", f, []clinicalEdit{clDel("code/coding/version")}, fhir.CodeRequired, ".code.coding[0].version"},
		{"rejects two ICD-10-GM codes", f, []clinicalEdit{clAdd("code", `<coding><system value="http://fhir.de/CodeSystem/bfarm/icd-10-gm"/><version value="2025"/><code value="R05"/></coding>`)}, fhir.CodeStructure, ".code.coding[1]"},
		{"rejects an unknown Diagnosesicherheit", f, []clinicalEdit{clSet("code/coding/extension/valueCoding/code", "X")}, fhir.CodeValue, ".code.coding[0].extension[0].valueCoding.code"},
		{"rejects a diagnosis without code", f, []clinicalEdit{clDel("code")}, fhir.CodeRequired, ".code"},
		{"rejects a diagnosis without encounter", f, []clinicalEdit{clDel("encounter")}, fhir.CodeRequired, ".encounter"},
		{"rejects an encounter reference to a patient", f, []clinicalEdit{clSet("encounter/reference", "Patient/P1001")}, fhir.CodeStructure, ".encounter.reference"},
		{"rejects an unknown Diagnosekategorie", f, []clinicalEdit{clSet("category[1]/coding/code", "Verdachtsdiagnose")}, fhir.CodeValue, ".category[0].coding[0].code"},
		{"rejects a third category", f, []clinicalEdit{clAdd(".", `<category><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Diagnoseart"/><code value="anamnestische_Diagnose"/></coding></category>`)}, fhir.CodeStructure, ".category"},
		{"rejects an abatement, which the profile excludes", f, []clinicalEdit{clAdd(".", `<abatementDateTime value="2025-11-20"/>`)}, fhir.CodeStructure, ".abatement[x]"},
	})
	clinicalWarnRun(t, []clinicalCase{
		{"warns about an onset in the future", f, []clinicalEdit{clSet("onsetDateTime", "2026-05-01")}, fhir.CodeValue, ".onsetDateTime"},
	})
}

const clinicalNotPDF = "aGVsbG8gd29ybGQ=" // "hello world"

func TestDocumentReferenceRejects(t *testing.T) {
	f := "documentreference.xml"
	clinicalRun(t, []clinicalCase{
		{"rejects a document belonging to patient and encounter at once", f, []clinicalEdit{clAdd(".", `<subject><reference value="Patient/P1001"/></subject>`)}, fhir.CodeInvariant, ""},
		{"rejects a document belonging to nothing", f, []clinicalEdit{clDel("context")}, fhir.CodeInvariant, ""},
		{"rejects status entered-in-error", f, []clinicalEdit{clSet("status", "entered-in-error")}, fhir.CodeInvariant, ""},
		{"rejects an unknown status", f, []clinicalEdit{clSet("status", "final")}, fhir.CodeValue, ".status"},
		{"rejects a KBV form with a malformed specification version", f, []clinicalEdit{clSet("type/coding/code", "KV-Muster_6")}, fhir.CodeInvariant, ""},
		{"rejects a KBV form without specification version", f, []clinicalEdit{clSet("type/coding/code", "KV-Muster_6"), clDel("masterIdentifier")}, fhir.CodeInvariant, ".masterIdentifier"},
		{"rejects an NFD document with a malformed specification version", f, []clinicalEdit{clSet("type/coding/code", "NFD")}, fhir.CodeInvariant, ""},
		{"rejects data that is not base64", f, []clinicalEdit{clSet("content/attachment/data", "not base64!")}, fhir.CodeValue, ".content[0].attachment.data"},
		{"rejects an attachment without the document", f, []clinicalEdit{clDel("content/attachment/data")}, fhir.CodeRequired, ".content[0].attachment.data"},
		{"rejects an attachment without title", f, []clinicalEdit{clDel("content/attachment/title")}, fhir.CodeRequired, ".content[0].attachment.title"},
		{"rejects two contents", f, []clinicalEdit{clAdd(".", `<content><attachment><contentType value="text/plain"/><data value="aGFsbG8="/><title value="b.txt"/></attachment></content>`)}, fhir.CodeStructure, ".content"},
		{"rejects an unknown document type", f, []clinicalEdit{clSet("type/coding/code", "Brief")}, fhir.CodeValue, ".type.coding.code"},
		{"rejects a category other than Anlage", f, []clinicalEdit{clSet("category/coding/code", "Befund")}, fhir.CodeValue, ".category[0].coding[0].code"},
		{"rejects a document without name", f, []clinicalEdit{clDel("identifier")}, fhir.CodeRequired, ".identifier"},
		{"rejects an author, which the profile excludes", f, []clinicalEdit{clAdd(".", `<author><reference value="Practitioner/A3002"/></author>`)}, fhir.CodeStructure, ".author"},
		{"rejects a context encounter that is not an encounter", f, []clinicalEdit{clSet("context/encounter/reference", "Condition/C5001")}, fhir.CodeStructure, ".context.encounter.reference"},
	})
	clinicalWarnRun(t, []clinicalCase{
		{"warns about a PDF that does not start like one", f, []clinicalEdit{clSet("content/attachment/data", clinicalNotPDF)}, fhir.CodeValue, ".content[0].attachment.data"},
		{"warns about a document dated in the future", f, []clinicalEdit{clSet("date", "2026-06-01T10:00:00+02:00")}, fhir.CodeValue, ".date"},
	})
}

func TestObservationRejects(t *testing.T) {
	befund, anamnese, bd, temp := "observation-befund.xml", "observation-anamnese.xml", "observation-blutdruck.xml", "observation-koerpertemperatur.xml"
	clinicalRun(t, []clinicalCase{
		{"rejects a preliminary finding", befund, []clinicalEdit{clSet("status", "preliminary")}, fhir.CodeValue, ".status"},
		{"rejects a finding without category", befund, []clinicalEdit{clDel("category")}, fhir.CodeRequired, ".category"},
		{"rejects a finding with a quantity instead of text", befund, []clinicalEdit{clDel("valueString"), clAdd(".", `<valueQuantity><value value="1"/></valueQuantity>`)}, fhir.CodeStructure, ".valueQuantity"},
		{"rejects a finding without text", befund, []clinicalEdit{clDel("valueString")}, fhir.CodeRequired, ".value[x]"},
		{"rejects a coding of a system the profile does not slice", befund, []clinicalEdit{clAdd("code", `<coding><system value="http://snomed.info/sct"/><code value="404684003"/></coding>`)}, fhir.CodeStructure, ".code.coding"},
		{"rejects a finding without the Befund coding", befund, []clinicalEdit{clDel("code/coding[1]")}, fhir.CodeRequired, ".code.coding"},
		{"rejects a finding without encounter", befund, []clinicalEdit{clDel("encounter")}, fhir.CodeRequired, ".encounter"},
		{"rejects a note, which the profile excludes", befund, []clinicalEdit{clAdd(".", `<note><text value="x"/></note>`)}, fhir.CodeStructure, ".note"},
		{"rejects an effective period", befund, []clinicalEdit{clDel("effectiveDateTime"), clAdd(".", `<effectivePeriod><start value="2025-11-04"/></effectivePeriod>`)}, fhir.CodeStructure, ".effectivePeriod"},
		{"rejects a component without LOINC code", befund, []clinicalEdit{clSet("component/code/coding/system", "http://snomed.info/sct")}, fhir.CodeValue, ".component[0].code.coding[0].system"},
		{"rejects a history with components", anamnese, []clinicalEdit{clAdd(".", `<component><code><coding><system value="http://loinc.org"/><code value="8310-5"/></coding></code><valueString value="x"/></component>`)}, fhir.CodeStructure, ".component"},
		{"rejects a history without text", anamnese, []clinicalEdit{clDel("valueString")}, fhir.CodeRequired, ".value[x]"},
		{"rejects a history without subject", anamnese, []clinicalEdit{clDel("subject")}, fhir.CodeRequired, ".subject"},
		{"rejects a blood pressure with a value of its own", bd, []clinicalEdit{clAdd(".", `<valueQuantity><value value="120"/></valueQuantity>`)}, fhir.CodeStructure, ".valueQuantity"},
		{"rejects an unknown blood pressure component", bd, []clinicalEdit{clSet("component[1]/code/coding/code", "mittel")}, fhir.CodeStructure, ".component[0]"},
		{"rejects two systolic values", bd, []clinicalEdit{clSet("component[2]/code/coding/code", "systolisch")}, fhir.CodeStructure, ".component"},
		{"rejects a blood pressure without components", bd, []clinicalEdit{clDel("component[2]"), clDel("component[1]")}, fhir.CodeRequired, ".component"},
		{"rejects a blood pressure with the wrong LOINC code", bd, []clinicalEdit{clSet("code/coding[1]/code", "8480-6")}, fhir.CodeValue, ".code.coding[0].code"},
		{"rejects a temperature in Fahrenheit", temp, []clinicalEdit{clSet("valueQuantity/code", "[degF]")}, fhir.CodeValue, ".valueQuantity.code"},
		{"rejects a temperature without the Koerperkenngroessen coding", temp, []clinicalEdit{clDel("code/coding[2]")}, fhir.CodeRequired, ".code.coding"},
		{"rejects a temperature that is not a number", temp, []clinicalEdit{clSet("valueQuantity/value", "37,8")}, fhir.CodeValue, ".valueQuantity.value"},
	})
	clinicalWarnRun(t, []clinicalCase{
		{"warns about a LOINC code with a wrong check digit", befund, []clinicalEdit{clSet("code/coding[2]/code", "29545-2")}, fhir.CodeValue, ".code.coding[1].code"},
		{"warns about a negative blood pressure", bd, []clinicalEdit{clSet("component[1]/valueQuantity/value", "-5")}, fhir.CodeValue, ".component[0].valueQuantity.value"},
		{"warns about a temperature measured in the future", temp, []clinicalEdit{clSet("effectiveDateTime", "2026-03-16T08:00:00+01:00")}, fhir.CodeValue, ".effectiveDateTime"},
	})
}

func TestMedicationRejects(t *testing.T) {
	med, stmt, req := "medication.xml", "medicationstatement.xml", "medicationrequest.xml"
	clinicalRun(t, []clinicalCase{
		{"rejects a product code of another system", med, []clinicalEdit{clSet("code/coding/system", "http://example.org/pzn")}, fhir.CodeValue, ".code.coding[0].system"},
		{"rejects a medication without name", med, []clinicalEdit{clDel("code/text")}, fhir.CodeRequired, ".code.text"},
		{"rejects a name longer than 50 characters", med, []clinicalEdit{clSet("code/text", strings.Repeat("Ä", 51))}, fhir.CodeValue, ".code.text"},
		{"rejects an unknown dosage form", med, []clinicalEdit{clSet("form/coding/code", "tab")}, fhir.CodeInvalid, ".form"},
		{"rejects a package size per two", med, []clinicalEdit{clSet("amount/denominator/value", "2")}, fhir.CodeValue, ".amount.denominator.value"},
		{"rejects a package unit longer than 12 characters", med, []clinicalEdit{clSet("amount/numerator/unit", "Filmtabletten")}, fhir.CodeValue, ".amount.numerator.unit"},
		{"rejects ingredients, which the profile excludes", med, []clinicalEdit{clAdd(".", `<ingredient><itemCodeableConcept><text value="Ramipril"/></itemCodeableConcept></ingredient>`)}, fhir.CodeStructure, ".ingredient"},

		{"rejects a long-term medication given as a code", stmt, []clinicalEdit{clAdd(".", `<medicationCodeableConcept><text value="Ramipril"/></medicationCodeableConcept>`)}, fhir.CodeStructure, ".medicationCodeableConcept"},
		{"rejects a long-term medication without medication", stmt, []clinicalEdit{clDel("medicationReference")}, fhir.CodeRequired, ".medication[x]"},
		{"rejects a structured dosage", stmt, []clinicalEdit{clAdd(".", `<dosage><text value="1-0-0"/></dosage>`)}, fhir.CodeStructure, ".dosage"},
		{"rejects an unknown status", stmt, []clinicalEdit{clSet("status", "taking")}, fhir.CodeValue, ".status"},
		{"rejects a long-term medication without patient", stmt, []clinicalEdit{clDel("subject")}, fhir.CodeRequired, ".subject"},
		{"rejects a period without start", stmt, []clinicalEdit{clDel("effectivePeriod/start")}, fhir.CodeRequired, ".effectivePeriod.start"},
		{"rejects a medication reference to a substance", stmt, []clinicalEdit{clSet("medicationReference/reference", "Substance/S1")}, fhir.CodeStructure, ".medicationReference.reference"},
		{"rejects an effective date instead of a period", stmt, []clinicalEdit{clAdd(".", `<effectiveDateTime value="2025-01-01"/>`)}, fhir.CodeStructure, ".effectiveDateTime"},
		{"rejects a note with author", stmt, []clinicalEdit{clAdd("note", `<authorString value="Dr. X"/>`)}, fhir.CodeStructure, ".note[0].author[x]"},

		{"rejects a prescription with status draft", req, []clinicalEdit{clSet("status", "draft")}, fhir.CodeValue, ".status"},
		{"rejects a prescription that is a plan", req, []clinicalEdit{clSet("intent", "plan")}, fhir.CodeValue, ".intent"},
		{"rejects a requester that is a practitioner role", req, []clinicalEdit{clSet("requester/reference", "PractitionerRole/R3001")}, fhir.CodeStructure, ".requester.reference"},
		{"rejects a prescription without requester", req, []clinicalEdit{clDel("requester")}, fhir.CodeRequired, ".requester"},
		{"rejects a prescription without date", req, []clinicalEdit{clDel("authoredOn")}, fhir.CodeRequired, ".authoredOn"},
		{"rejects a quantity that does not count packages", req, []clinicalEdit{clSet("dispenseRequest/quantity/code", "Stk")}, fhir.CodeValue, ".dispenseRequest.quantity.code"},
		{"rejects a structured dosage timing", req, []clinicalEdit{clAdd("dosageInstruction", `<timing><code><text value="BID"/></code></timing>`)}, fhir.CodeStructure, ".dosageInstruction.timing"},
		{"rejects an insurance, which the profile excludes", req, []clinicalEdit{clAdd(".", `<insurance><reference value="Coverage/V1101"/></insurance>`)}, fhir.CodeStructure, ".insurance"},
		{"rejects a substitution without decision", req, []clinicalEdit{clDel("substitution/allowedBoolean")}, fhir.CodeRequired, ".substitution.allowedBoolean"},
	})
	clinicalWarnRun(t, []clinicalCase{
		{"warns about a PZN with a wrong check digit", med, []clinicalEdit{clSet("code/coding/code", "12345679")}, fhir.CodeValue, ".code.coding[0].code"},
		{"warns about a PZN of seven digits", med, []clinicalEdit{clSet("code/coding/code", "1234567")}, fhir.CodeValue, ".code.coding[0].code"},
		{"warns about an active medication starting in the future", stmt, []clinicalEdit{clSet("effectivePeriod/start", "2026-09-01")}, fhir.CodeValue, ".effectivePeriod.start"},
		{"warns about a prescription dated in the future", req, []clinicalEdit{clSet("authoredOn", "2026-03-20")}, fhir.CodeValue, ".authoredOn"},
		{"warns about a thousand packages", req, []clinicalEdit{clSet("dispenseRequest/quantity/value", "1000")}, fhir.CodeValue, ".dispenseRequest.quantity.value"},
		{"warns about half a package", req, []clinicalEdit{clSet("dispenseRequest/quantity/value", "0.5")}, fhir.CodeValue, ".dispenseRequest.quantity.value"},
	})
}

func TestProvenanceRejects(t *testing.T) {
	f := "provenance.xml"
	clinicalRun(t, []clinicalCase{
		{"rejects a provenance without target", f, []clinicalEdit{clDel("target[2]"), clDel("target[1]")}, fhir.CodeRequired, ".target"},
		{"rejects a target without reference", f, []clinicalEdit{clDel("target[1]/reference"), clAdd("target[1]", `<display value="Begegnung"/>`)}, fhir.CodeRequired, ".target[0].reference"},
		{"rejects a provenance without activity", f, []clinicalEdit{clDel("activity")}, fhir.CodeRequired, ".activity"},
		{"rejects an unknown data operation", f, []clinicalEdit{clSet("activity/coding/code", "MAKE")}, fhir.CodeValue, ".activity.coding[0].code"},
		{"rejects an agent that is a patient", f, []clinicalEdit{clSet("agent/who/reference", "Patient/P1001")}, fhir.CodeStructure, ".agent.who.reference"},
		{"rejects an agent acting for a patient", f, []clinicalEdit{clSet("agent/onBehalfOf/reference", "Patient/P1001")}, fhir.CodeStructure, ".agent.onBehalfOf.reference"},
		{"rejects two agents", f, []clinicalEdit{clAdd(".", `<agent><who><reference value="Practitioner/A3003"/></who></agent>`)}, fhir.CodeStructure, ".agent"},
		{"rejects an occurrence, which the profile excludes", f, []clinicalEdit{clAdd(".", `<occurredDateTime value="2025-11-04"/>`)}, fhir.CodeStructure, ".occurred[x]"},
		{"rejects a provenance without recording time", f, []clinicalEdit{clDel("recorded")}, fhir.CodeRequired, ".recorded"},
		{"rejects an entity, which the profile excludes", f, []clinicalEdit{clAdd(".", `<entity><role value="source"/><what><reference value="DocumentReference/D6001"/></what></entity>`)}, fhir.CodeStructure, ".entity"},
	})
	clinicalWarnRun(t, []clinicalCase{
		{"warns about a recording in the future", f, []clinicalEdit{clSet("recorded", "2026-03-15T12:00:00Z")}, fhir.CodeValue, ".recorded"},
	})
}

const clinicalBegruendung = "item[1]/extension[@url='https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Abrechnung_spezielle_Abrechnungsbegruendung']"

func TestClaimRejects(t *testing.T) {
	vor, vert, priv := "claim-vorlaeufig.xml", "claim-vertragsaerztlich.xml", "claim-privat.xml"
	clinicalRun(t, []clinicalCase{
		{"rejects a fee item without istAbrechnungsrelevant", vor, []clinicalEdit{clDel("item[2]/" + clinicalExtRelevant)}, fhir.CodeRequired, ".item[1].extension"},
		{"rejects a fee item that is not a GOP", vor, []clinicalEdit{clSet("item[1]/category/coding/code", "Material")}, fhir.CodeValue, ".item[0].category[0].coding[0].code"},
		{"rejects a fee schedule the profile does not know", vor, []clinicalEdit{clSet("item[1]/productOrService/coding/system", "https://fhir.kbv.de/NamingSystem/KBV_NS_AW_EBM")}, fhir.CodeStructure, ".item[0].productOrService.coding[0]"},
		{"rejects a fee item without code", vor, []clinicalEdit{clDel("item[1]/productOrService/coding")}, fhir.CodeRequired, ".item[0].productOrService"},
		{"rejects a fee item without encounter", vor, []clinicalEdit{clDel("item[1]/encounter")}, fhir.CodeRequired, ".item[0].encounter"},
		{"rejects a fee item in dollars", vor, []clinicalEdit{clSet("item[1]/unitPrice/currency", "USD")}, fhir.CodeValue, ".item[0].unitPrice.currency"},
		{"rejects a multiplier with a unit", vor, []clinicalEdit{clSet("item[1]/quantity/code", "h")}, fhir.CodeValue, ".item[0].quantity.code"},
		{"rejects an unknown TSS placement", vor, []clinicalEdit{clSet(clinicalBegruendung+"/extension[@url='tsvg_Vermittlungsart']/valueCodeableConcept/coding/code", "7")}, fhir.CodeValue, ".item[0].extension[0].extension[0].valueCodeableConcept.coding[0].code"},
		{"rejects material without device", vor, []clinicalEdit{clDel("item[2]/detail/udi")}, fhir.CodeRequired, ".item[1].detail.udi"},
		{"rejects a provisional billing without fee items", vor, []clinicalEdit{clDel("item[2]"), clDel("item[1]")}, fhir.CodeRequired, ".item"},
		{"rejects a known insurer on a provisional billing", vor, []clinicalEdit{clAdd("insurance/coverage", `<reference value="Coverage/V1101"/>`)}, fhir.CodeStructure, ".insurance[0].coverage.reference"},
		{"rejects an insurer display other than N.N.", vor, []clinicalEdit{clSet("insurance/coverage/display", "AOK")}, fhir.CodeValue, ".insurance[0].coverage.display"},
		{"rejects two insurances", vor, []clinicalEdit{clAdd(".", `<insurance><sequence value="2"/><focal value="false"/><coverage><display value="N.N."/></coverage></insurance>`)}, fhir.CodeStructure, ".insurance"},
		{"rejects a provisional billing entered in error", vor, []clinicalEdit{clSet("status", "entered-in-error")}, fhir.CodeInvariant, ""},
		{"rejects a provisional billing used as claim", vor, []clinicalEdit{clSet("use", "claim")}, fhir.CodeValue, ".use"},
		{"rejects a misspelt provider type", vor, []clinicalEdit{clSet("provider/reference", "PractionerRole/R3001")}, fhir.CodeStructure, ".provider.reference"},
		{"rejects diagnoses, which the profiles exclude", vor, []clinicalEdit{clAdd(".", `<diagnosis><sequence value="1"/><diagnosisReference><reference value="Condition/C5001"/></diagnosisReference></diagnosis>`)}, fhir.CodeStructure, ".diagnosis"},
		{"rejects a claim type other than professional", vor, []clinicalEdit{clDel("meta/profile"), clSet("type/coding/code", "institutional")}, fhir.CodeValue, ".type.coding[0].code"},

		{"rejects a settled billing without related provisional billing", vert, []clinicalEdit{clDel("related")}, fhir.CodeRequired, ".related"},
		{"rejects a related claim that is not a claim", vert, []clinicalEdit{clSet("related/claim/reference", "Encounter/E2001")}, fhir.CodeStructure, ".related.claim.reference"},
		{"rejects a statutory billing without billing details", vert, []clinicalEdit{clDel("extension")}, fhir.CodeRequired, ".extension"},
		{"rejects an unknown Scheinuntergruppe", vert, []clinicalEdit{clSet("extension/extension[@url='scheinuntergruppe']/valueCodeableConcept/coding/code", "99")}, fhir.CodeInvalid, ".extension[0].extension[3].valueCodeableConcept"},
		{"rejects billing details without the accident flag", vert, []clinicalEdit{clDel("extension/extension[@url='unfall_Unfallfolgen']")}, fhir.CodeRequired, ".extension[0].extension"},
		{"rejects fee items on a statutory billing", vert, []clinicalEdit{clAdd(".", `<item><sequence value="1"/><productOrService><text value="x"/></productOrService></item>`)}, fhir.CodeStructure, ".item"},
		{"rejects an unknown kind of supporting information", vert, []clinicalEdit{clSet("supportingInfo/category/coding/code", "Leistungsgenehmigung")}, fhir.CodeStructure, ".supportingInfo[0]"},
		{"rejects a statutory billing without coverage reference", vert, []clinicalEdit{clDel("insurance/coverage/reference"), clAdd("insurance/coverage", `<display value="AOK"/>`)}, fhir.CodeRequired, ".insurance[0].coverage.reference"},
		{"rejects a billing quarter ending before it starts", vert, []clinicalEdit{clSet("billablePeriod/end", "2025-09-30")}, fhir.CodeInvariant, ".billablePeriod"},

		{"rejects an invoice without number", priv, []clinicalEdit{clDel("identifier")}, fhir.CodeRequired, ".identifier"},
		{"rejects an invoice number with a system", priv, []clinicalEdit{clAdd("identifier", `<system value="https://praxis.example/rechnungen"/>`)}, fhir.CodeStructure, ".identifier[0].system"},
		{"rejects a private invoice of statutory kind", priv, []clinicalEdit{clSet("subType/coding/code", "Vertragsaerztlich")}, fhir.CodeValue, ".subType.coding.code"},
		{"rejects an invoice without recipient", priv, []clinicalEdit{clDel("extension[@url='https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Privatabrechnung_Rechnungsempfaenger']")}, fhir.CodeRequired, ".extension"},
		{"rejects an invoice recipient that is a practitioner", priv, []clinicalEdit{clSet("extension[@url='https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Privatabrechnung_Rechnungsempfaenger']/valueReference/reference", "Practitioner/A3002")}, fhir.CodeStructure, ".extension[1].valueReference.reference"},
		{"rejects other costs without description", priv, []clinicalEdit{clDel("item[2]/productOrService/text")}, fhir.CodeRequired, ".item[1].productOrService.text"},
		{"rejects travel costs of an expense kind", priv, []clinicalEdit{clSet("item[1]/modifier/coding/system", "https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Abrechnung_Auslagenart")}, fhir.CodeValue, ".item[0].modifier.coding.system"},
		{"rejects an item kind that is not private", priv, []clinicalEdit{clSet("item[1]/productOrService/coding/code", "GOP")}, fhir.CodeStructure, ".item[0]"},
		{"rejects a payer other than the patient", priv, []clinicalEdit{clSet("insurance/coverage/display", "Kasse")}, fhir.CodeValue, ".insurance[0].coverage.display"},
		{"rejects a reminder without level", priv, []clinicalEdit{clDel("extension/extension[@url='mahnstufe']")}, fhir.CodeRequired, ".extension[0].extension"},
		{"rejects a reminder fee in another currency", priv, []clinicalEdit{clSet("extension/extension[@url='mahngebuehr']/valueMoney/currency", "CHF")}, fhir.CodeValue, ".extension[0].extension[2].valueMoney.currency"},
	})
	clinicalWarnRun(t, []clinicalCase{
		{"warns about a TSS contact in the future", vor, []clinicalEdit{clSet(clinicalBegruendung+"/extension[@url='tsvg_Kontaktaufnahme']/valueDate", "2026-04-02")}, fhir.CodeValue, ".item[0].extension[0].extension[1].valueDate"},
		{"warns about a billing created in the future", vor, []clinicalEdit{clSet("created", "2026-04-01")}, fhir.CodeValue, ".created"},
		{"warns about a provider that is a practice", vert, []clinicalEdit{clSet("provider/reference", "Organization/O4001")}, fhir.CodeStructure, ".provider.reference"},
		{"warns about a billing service IK with a wrong check digit", priv, []clinicalEdit{clSet("insurer/identifier/value", "261234562")}, fhir.CodeValue, ".insurer.identifier.value"},
	})
}

// TestClinicalReportsEverything checks, against golden files, that a thoroughly broken resource
// gets every problem reported at once, each at its location.
func TestClinicalReportsEverything(t *testing.T) {
	for _, file := range fixture.Glob(t, filepath.Join("testdata", "clinical", "broken", "*.xml")) {
		name := strings.TrimSuffix(filepath.Base(file), ".xml")
		t.Run("reports every problem of "+name, func(t *testing.T) {
			is := clinicalCheck(t, filepath.Join("broken", name+".xml"))
			var b strings.Builder
			for _, i := range is {
				fmt.Fprintf(&b, "%s %s %s: %s\n", i.Severity, i.Code, i.Expression, i.Diagnostics)
			}
			fixture.Golden(t, filepath.Join("testdata", "clinical", "broken", name+".golden"), []byte(b.String()))
		})
	}
}

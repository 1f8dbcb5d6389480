package fhirpath

import (
	"os"
	"strings"
	"testing"
)

// res writes a resource of type tag with body inside.
func res(tag, body string) string {
	return `<` + tag + ` xmlns="http://hl7.org/fhir">` + body + `</` + tag + `>`
}

// edit replaces old by new in doc; old must be there.
func edit(t *testing.T, doc, old, new string) string {
	t.Helper()
	if !strings.Contains(doc, old) {
		t.Fatalf("edit: %q is not in the document", old)
	}
	return strings.Replace(doc, old, new, 1)
}

// exprFor is the listed expression of the one use that starts with use.
func exprFor(t *testing.T, list []listed, use string) string {
	t.Helper()
	var found []string
	for _, l := range list {
		for _, u := range l.uses {
			if strings.HasPrefix(u+" ", use+" ") {
				found = append(found, l.expr)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%q names %d uses", use, len(found))
	}
	return found[0]
}

type passFail struct {
	use        string // how the use line of testdata/expressions.txt starts
	at         string // the context element in both instances ("" the root)
	pass, fail string
	emptyFails bool // evaluate with EmptyResult(false)
}

// TestExpressionsPassFail evaluates listed invariants on an instance that satisfies and one
// that violates each.
func TestExpressionsPassFail(t *testing.T) {
	list := readExpressions(t)
	data, err := os.ReadFile("testdata/erp-bundle.xml")
	if err != nil {
		t.Fatal(err)
	}
	erp := string(data)
	if data, err = os.ReadFile("testdata/aws-bundle.xml"); err != nil {
		t.Fatal(err)
	}
	aws := string(data)
	e := func(doc, old, new string) string { return edit(t, doc, old, new) }
	const (
		pzn         = `<code value="08585997"/>`
		author      = `<author><type value="Device"/><identifier><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_FOR_Pruefnummer"/><value value="Y/400/2107/36/999"/></identifier></author>`
		legal       = `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_Legal_basis"><valueCoding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_STATUSKENNZEICHEN"/><code value="00"/></valueCoding></extension>`
		copay       = `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_StatusCoPayment"><valueCoding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_StatusCoPayment"/><code value="0"/></valueCoding></extension>`
		multiple    = `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_Multiple_Prescription"><extension url="Kennzeichen"><valueBoolean value="false"/></extension></extension>`
		lanr        = `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="LANR"/></coding></type><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR"/><value value="123456601"/></identifier>`
		bsnr        = `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="BSNR"/></coding></type><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR"/><value value="031234567"/></identifier>`
		accident    = `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_Accident"><extension url="Unfallkennzeichen"><valueCoding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_Ursache_Type"/><code value="2"/></valueCoding></extension><extension url="Unfallbetrieb"><valueString value="Dachdeckerei Wolf"/></extension><extension url="Unfalltag"><valueDate value="2026-02-27"/></extension></extension>`
		dosage      = `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_DosageFlag"><valueBoolean value="true"/></extension>`
		gkv         = `<code value="GKV"/></coding></type>`
		bg          = `<code value="BG"/></coding></type>`
		mulExt      = `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_Multiple_Prescription">`
		ratio       = `<extension url="Nummerierung"><valueRatio><numerator><value value="2"/></numerator><denominator><value value="4"/></denominator></valueRatio></extension>`
		period      = `<extension url="Zeitraum"><valuePeriod><start value="2026-03-02"/><end value="2026-06-30"/></valuePeriod></extension>`
		mulID       = `<extension url="ID"><valueIdentifier><system value="urn:ietf:rfc:3986"/><value value="urn:uuid:24e2e10d-e962-4d1c-be4f-8760e690a5f0"/></valueIdentifier></extension>`
		mulTrue     = mulExt + `<extension url="Kennzeichen"><valueBoolean value="true"/></extension>` + ratio + period + mulID + `</extension>`
		icdSure     = `<extension url="http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"><valueCoding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_ICD_DIAGNOSESICHERHEIT"/><code value="A"/></valueCoding></extension>`
		refuted     = `<verificationStatus><coding><code value="refuted"/></coding></verificationStatus>`
		activeCS    = `<clinicalStatus><coding><code value="active"/></coding></clinicalStatus>`
		street      = `<extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName"><valueString value="Hauptstr."/></extension>`
		postBox     = `<extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox"><valueString value="Postfach 12"/></extension>`
		precinct    = `<extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-precinct"><valueString value="Mitte"/></extension>`
		kreuz       = `<extension url="http://fhir.de/StructureDefinition/icd-10-gm-haupt-kreuz"><valueCoding><system value="http://fhir.de/CodeSystem/bfarm/icd-10-gm"/><code value="A39.0"/></valueCoding></extension>`
		cont        = `<contained><Patient><id value="c1"/></Patient></contained>`
		composition = `<entry><fullUrl value="urn:uuid:1"/><resource><Composition><id value="c"/></Composition></resource></entry>`
		doc         = `<type value="document"/><identifier><system value="urn:ietf:rfc:3986"/><value value="urn:uuid:9"/></identifier><timestamp value="2026-03-02T08:30:00Z"/>`
	)
	anlage := func(body string) string {
		return res("DocumentReference", `<status value="current"/>`+body)
	}
	cases := []passFail{
		// KBV AWS 1.2.0
		{use: "KBV_PR_AW_Anlage|1.2.0 NotAllOrNothingHASOne",
			pass: anlage(`<subject><reference value="Patient/1"/></subject>`),
			fail: anlage(`<subject><reference value="Patient/1"/></subject><context><encounter><reference value="Encounter/1"/></encounter></context>`)},
		{use: "KBV_PR_AW_Anlage|1.2.0 SpezifikationsVersionKBVMuster",
			pass: anlage(`<masterIdentifier><value value="1Q2026"/></masterIdentifier><type><coding><code value="KV-Muster-6"/></coding></type>`),
			fail: anlage(`<masterIdentifier><value value="Q12026"/></masterIdentifier><type><coding><code value="KV-Muster-6"/></coding></type>`)},
		{use: "KBV_PR_AW_Anlage|1.2.0 SpezifikationsVersionDPE",
			pass: anlage(`<masterIdentifier><value value="1.2.3"/></masterIdentifier><type><coding><code value="DPE"/></coding></type>`),
			fail: anlage(`<masterIdentifier><value value="1.2"/></masterIdentifier><type><coding><code value="DPE"/></coding></type>`)},
		{use: "KBV_PR_AW_Anlage|1.2.0 EnteredInError",
			pass: anlage(""), fail: res("DocumentReference", `<status value="entered-in-error"/>`)},
		{use: "KBV_PR_AW_BehandelnderFunktion|1.2.0 AWS-1",
			pass: res("PractitionerRole", `<organization><reference value="Organization/1"/></organization>`),
			fail: res("PractitionerRole", `<organization><reference value="Organization/1"/><identifier><value value="031234567"/></identifier></organization>`)},
		{use: "KBV_PR_AW_Behandlungsbaustein_Textvorlage|1.2.0 AWS-1", at: "relatedArtifact",
			pass: res("ActivityDefinition", `<relatedArtifact><type value="documentation"/><display value="Vorlage"/></relatedArtifact>`),
			fail: res("ActivityDefinition", `<relatedArtifact><type value="documentation"/></relatedArtifact>`)},
		{use: "KBV_PR_AW_Bundle_Patientenakte|1.2.0 Allowed1", pass: aws,
			fail: e(aws, `KBV_PR_AW_Patient|1.2.0`, `KBV_PR_AW_Patient|1.1.0`)},
		{use: "KBV_PR_AW_Bundle_Patientenakte|1.2.0 Allowed2", pass: aws,
			fail: e(aws, `KBV_PR_AW_Diagnose|1.2.0`, `KBV_PR_Base_Condition_Diagnosis|1.2.0`)},
		{use: "KBV_PR_AW_Diagnose|1.2.0 activeOrInactive", at: "entry[2]/resource/Condition", pass: aws,
			fail: e(aws, `<code value="active"/>`, `<code value="resolved"/>`)},
		{use: "KBV_PR_AW_Diagnose|1.2.0 ConfirmedOrRefuted", at: "entry[2]/resource/Condition", pass: aws,
			fail: e(aws, `<code value="confirmed"/>`, `<code value="provisional"/>`)},
		{use: "KBV_PR_AW_Krankenbefoerderung_Befoerderungsmittel|1.2.0 SonstigerText",
			pass: res("Device", `<type><coding><code value="Sonstige"/></coding><text value="Tragestuhl"/></type>`),
			fail: res("Device", `<type><coding><code value="Sonstige"/></coding></type>`)},
		{use: "KBV_PR_AW_Krebsfrueherkennung_Frauen_HPV_HR_Testergebnis_2020|1.2.0 AWS-1",
			pass: res("Observation", `<interpretation><coding><code value="NEG"/></coding></interpretation>`),
			fail: res("Observation", `<status value="final"/>`)},
		{use: "KBV_PR_AW_Krebsfrueherkennung_Frauen_HPV_HR_Testergebnis_2020|1.2.0 AWS-2",
			pass: res("Observation", `<interpretation><coding><code value="POS"/></coding></interpretation><component><code><text value="HPV 16"/></code></component>`),
			fail: res("Observation", `<interpretation><coding><code value="NEG"/></coding></interpretation><component><code><text value="HPV 16"/></code></component>`)},
		{use: "KBV_PR_AW_Selektivvertrag|1.2.0 AWS-1",
			pass: res("Contract", `<status value="executed"/>`), fail: res("Contract", `<status value="draft"/>`)},
		{use: "KBV_PR_AW_Termin|1.2.0 AWS-1",
			pass: res("Appointment", `<status value="booked"/>`), fail: res("Appointment", `<status value="proposed"/>`)},
		{use: "KBV_PR_AW_Therapie|1.2.0 AWS-1",
			pass: res("Procedure", `<status value="in-progress"/>`), fail: res("Procedure", `<status value="stopped"/>`)},
		{use: "KBV_PR_AW_Abrechnung_Vorlaeufig|1.2.0 activeOrInactive",
			pass: res("Claim", `<status value="draft"/>`), fail: res("Claim", `<status value="entered-in-error"/>`)},
		// de.basisprofil (HL7 Deutschland) 0.9.11
		{use: "address-de-basis|0.9.11 add-1", at: "address",
			pass: res("Patient", `<address><line value="Hauptstr. 1">`+street+`</line></address>`),
			fail: res("Patient", `<address><line><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber"><valueString value="1"/></extension></line></address>`)},
		{use: "address-de-basis|0.9.11 add-4", at: "address",
			pass: res("Patient", `<address><type value="postal"/><line>`+postBox+`</line></address>`),
			fail: res("Patient", `<address><type value="both"/><line>`+postBox+`</line></address>`)},
		{use: "address-de-basis|0.9.11 add-6", at: "address",
			pass: res("Patient", `<address><line value="Postfach 12">`+postBox+`</line></address>`),
			fail: res("Patient", `<address><line value="Postfach 12">`+postBox+street+`</line></address>`)},
		{use: "address-de-basis|0.9.11 add-7", at: "address",
			pass: res("Patient", `<address>`+precinct+`<line value="Mitte">`+precinct+`</line></address>`),
			fail: res("Patient", `<address>`+precinct+`<line value="Hauptstr. 1"/></address>`)},
		{use: "condition-de-icd10|0.9.11 icd-1", at: "code/coding",
			pass: res("Condition", `<code><coding>`+kreuz+`<code value="G01+ A39.0"/></coding></code>`),
			fail: res("Condition", `<code><coding>`+kreuz+`<code value="G01"/></coding></code>`)},
		{use: "icd-10-gm-diagnosesicherheit|0.9.11 icd-4", at: "code/coding/extension/valueCoding",
			pass: res("Condition", refuted+`<code><coding>`+icdSure+`<code value="I10.90"/></coding></code>`),
			fail: res("Condition", activeCS+refuted+`<code><coding>`+icdSure+`<code value="I10.90"/></coding></code>`)},
		{use: "icd-10-gm-diagnosesicherheit|0.9.11 icd-7", at: "code/coding/extension/valueCoding",
			pass: res("Condition", `<clinicalStatus><coding><code value="resolved"/></coding></clinicalStatus><verificationStatus><coding><code value="confirmed"/></coding></verificationStatus><code><coding>`+strings.Replace(icdSure, `"A"`, `"Z"`, 1)+`</coding></code>`),
			fail: res("Condition", activeCS+`<code><coding>`+strings.Replace(icdSure, `"A"`, `"Z"`, 1)+`</coding></code>`)},
		{use: "identifier-iknr|0.9.11 ik-1", at: "identifier/value",
			pass: res("Organization", `<identifier><value value="109500969"/></identifier>`),
			fail: res("Organization", `<identifier><value value="1095009"/></identifier>`)},
		{use: "identifier-lanr|0.9.11 lanr-1", at: "identifier/value",
			pass: res("Practitioner", `<identifier><value value="123456601"/></identifier>`),
			fail: res("Practitioner", `<identifier><value value="12345660"/></identifier>`)},
		{use: "chargeitem-ebm|0.9.11 chrg-1", at: "code",
			pass: res("ChargeItem", `<code><coding><code value="03000"/></coding></code>`),
			fail: res("ChargeItem", `<code><coding><code value="3000"/></coding></code>`)},
		{use: "ags|0.9.11 ags-extension-1", at: "address/extension/valueCoding/code",
			pass: res("Patient", `<address><extension url="http://fhir.de/StructureDefinition/destatis/ags"><valueCoding><code value="11000000"/></valueCoding></extension></address>`),
			fail: res("Patient", `<address><extension url="http://fhir.de/StructureDefinition/destatis/ags"><valueCoding><code value="1100"/></valueCoding></extension></address>`)},
		// KBV eRezept 1.3.3: the bundle
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabePruefnummerPflicht", pass: erp, fail: e(erp, author, "")},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabePatientenPLZPflicht", pass: erp, fail: e(erp, `<postalCode value="10115"/><country value="D"/></address>
      </Patient>`, `<country value="D"/></address></Patient>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeRechtsgrundlagePflicht", pass: erp, fail: e(erp, legal, "")},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeZuzahlungsstatusPflicht", pass: erp, fail: e(erp, copay, "")},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeIdentifikatorAusstellendePersonPflicht", pass: erp, fail: e(erp, lanr, "")},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeVerantwortlichePersonVerbot-1", pass: erp,
			fail: e(erp, `<custodian>`, `<attester><mode value="legal"/><party><reference value="Practitioner/doc1"/></party></attester><custodian>`)},
		// with no SupplyRequest the right side of its or is empty: only an empty result that
		// fails (as in the HL7 Java validator) catches a wrong requester
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-referenzAufAusstellendePerson-1", pass: erp, emptyFails: true,
			fail: e(erp, `<requester><reference value="Practitioner/doc1"/>`, `<requester><reference value="Practitioner/doc2"/>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeIdentifikatorEinrichtungPflicht", pass: erp, fail: e(erp, bsnr, "")},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeSubstitutionPflicht", pass: erp,
			fail: e(erp, `<substitution><allowedBoolean value="true"/></substitution>`, "")},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeVersichertenIDPflicht", pass: erp, fail: e(erp, `<code value="KVZ10"/>`, `<code value="GKV"/>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeKVKVersichertennummerVerbot", pass: erp, fail: e(erp, `<code value="KVZ10"/>`, `<code value="kvk"/>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabePKVTarifVerbot", pass: erp,
			fail: e(erp, legal, legal+`<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_PKV_Tariff"><valueCoding><code value="01"/></valueCoding></extension>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeUnfallkennzeichenArbeitsunfallBerufskrankheitPflicht", pass: erp, fail: e(erp, gkv, bg)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeUnfallkennzeichenArbeitsunfallBerufskrankheitVerbot", pass: erp, fail: e(erp, copay, copay+accident)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeUnfallkennzeichenZuzahlungsbefreiung", pass: e(e(erp, copay, strings.Replace(copay, `"0"`, `"1"`, 1)+accident), gkv, bg),
			fail: e(e(erp, copay, copay+accident), gkv, bg)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-geburtsdatumPatient", pass: e(erp, `<birthDate value="1987-01-15"/>`, `<birthDate value="2026"/>`),
			fail: e(erp, `<birthDate value="1987-01-15"/>`, `<birthDate value="2026-03-03"/>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeAsvTeamnummerPflicht", pass: erp, fail: e(erp, `<code value="00"/></valueCoding></extension>`, `<code value="01"/></valueCoding></extension>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeDosierkennzeichenPflicht", pass: erp, fail: e(erp, dosage, "")},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeGebrauchsanweisungVerbot", pass: erp,
			fail: e(erp, `<text value="1-0-1-0"/>`, `<text value="1-0-1-0"/><patientInstruction value="auftragen"/>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeDosierungRezepturVerbot", pass: e(erp, pzn, `<code value="freitext"/>`),
			fail: e(erp, pzn, `<code value="rezeptur"/>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeImpfstoffRezepturFalse", pass: e(erp, pzn, `<code value="rezeptur"/>`),
			fail: e(e(erp, pzn, `<code value="rezeptur"/>`), `Vaccine"><valueBoolean value="false"/>`, `Vaccine"><valueBoolean value="true"/>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-entwederPrescriptionOderPracticeSupply", pass: erp,
			fail: e(erp, `</Bundle>`, `<entry><fullUrl value="urn:uuid:s"/><resource><SupplyRequest><id value="s"/></SupplyRequest></resource></entry></Bundle>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-anzahlMedication", pass: erp,
			fail: e(erp, `</Bundle>`, `<entry><fullUrl value="urn:uuid:m"/><resource><Medication><id value="m"/></Medication></resource></entry></Bundle>`)},
		{use: "KBV_PR_ERP_Bundle|1.3.3 -erp-multiplePrescriptionEinloesefristBeginn", pass: e(erp, multiple, mulTrue),
			fail: e(erp, multiple, strings.Replace(mulTrue, `<start value="2026-03-02"/>`, `<start value="2026-03-01"/>`, 1))},
		// the other eRezept profiles
		{use: "KBV_PR_ERP_Composition|1.3.3 -erp-subjectAndPrescription", at: "entry/resource/Composition", pass: erp,
			fail: e(erp, `<subject><reference value="Patient/pat1"/></subject>
        <date`, `<date`)},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-begrenzungDate", at: "entry[2]/resource/MedicationRequest", pass: erp,
			fail: e(erp, `<authoredOn value="2026-03-02"/>`, `<authoredOn value="2026-03-02T09:00:00+01:00"/>`)},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-unfalltagDatum", at: "entry[2]/resource/MedicationRequest", pass: e(erp, copay, copay+accident),
			fail: e(erp, copay, strings.Replace(copay+accident, "2026-02-27", "2026-03-04", 1))},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-angabeUnfallbetriebPflicht", at: "entry[2]/resource/MedicationRequest/extension[2]",
			pass: e(erp, copay, copay+accident),
			fail: e(erp, copay, copay+strings.Replace(accident, `<extension url="Unfallbetrieb"><valueString value="Dachdeckerei Wolf"/></extension>`, "", 1))},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-angabeUnfalltagVerbot", at: "entry[2]/resource/MedicationRequest/extension[2]",
			pass: e(erp, copay, copay+accident),
			fail: e(erp, copay, copay+strings.Replace(accident, `<code value="2"/>`, `<code value="4"/>`, 1))},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-angabeDosierungKennzeichenTrue", at: "entry[2]/resource/MedicationRequest/dosageInstruction", pass: erp,
			fail: e(erp, `<text value="1-0-1-0"/>`, "")},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-angabeDosierungKennzeichenFalse", at: "entry[2]/resource/MedicationRequest/dosageInstruction", pass: erp,
			fail: e(erp, dosage, strings.Replace(dosage, "true", "false", 1))},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-begrenzungText", at: "entry[2]/resource/MedicationRequest/note", pass: erp,
			fail: e(erp, `<note><text value="Bitte kindersichere Verpackung"/>`, `<note><text value="`+strings.Repeat("x", 501)+`"/>`)},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-begrenzungValue", at: "entry[2]/resource/MedicationRequest/dispenseRequest/quantity", pass: erp,
			fail: e(erp, `<quantity><value value="1"/>`, `<quantity><value value="1234567"/>`)},
		{use: "KBV_PR_ERP_Prescription|1.3.3 -erp-begrenzungIntegerValue", at: "entry[2]/resource/MedicationRequest/dispenseRequest/quantity", pass: erp,
			fail: e(erp, `<quantity><value value="1"/>`, `<quantity><value value="1.5"/>`)},
		{use: "KBV_PR_ERP_Medication_PZN|1.3.3 -erp-angabeNormgroesseOderMenge", at: "entry[3]/resource/Medication", pass: erp,
			fail: e(erp, `<valueCode value="N1"/>`, `<valueCode value="KTP"/>`)},
		{use: "KBV_PR_ERP_Medication_PZN|1.3.3 -erp-begrenzungPznCode", at: "entry[3]/resource/Medication/code/coding", pass: erp,
			fail: e(erp, pzn, `<code value="0858599"/>`)},
		{use: "KBV_PR_ERP_Medication_Compounding|1.3.3 -erp-numeratorOderFreitext", at: "ingredient/strength",
			pass: res("Medication", `<ingredient><strength><numerator><value value="10"/><unit value="g"/></numerator></strength></ingredient>`),
			fail: res("Medication", `<ingredient><strength><extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_Medication_Ingredient_Amount"><valueString value="ad 100,0"/></extension><numerator><value value="10"/></numerator></strength></ingredient>`)},
		{use: "KBV_PR_ERP_Medication_Ingredient|1.3.3 -erp-begrenzungValue @Medication.ingredient.strength.numerator", at: "ingredient/strength/numerator",
			pass: res("Medication", `<ingredient><strength><numerator><value value="1000.5"/></numerator></strength></ingredient>`),
			fail: res("Medication", `<ingredient><strength><numerator><value value="1000.0000000000005"/></numerator></strength></ingredient>`)},
		{use: "KBV_PR_ERP_PracticeSupply|1.3.3 -erp-laengeIK", at: "extension/extension/valueIdentifier/value",
			pass: res("SupplyRequest", `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_PracticeSupply_Payor"><extension url="IK"><valueIdentifier><value value="109500969"/></valueIdentifier></extension></extension>`),
			fail: res("SupplyRequest", `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_PracticeSupply_Payor"><extension url="IK"><valueIdentifier><value value="1095009690"/></valueIdentifier></extension></extension>`)},
		{use: "KBV_EX_ERP_Multiple_Prescription|1.3.3 -erp-multiplePrescriptionKennzeichenTrueNummerierung", at: "entry[2]/resource/MedicationRequest/extension[4]",
			pass: e(erp, multiple, mulTrue), fail: e(erp, multiple, strings.Replace(mulTrue, ratio, "", 1))},
		{use: "KBV_EX_ERP_Multiple_Prescription|1.3.3 -erp-multiplePrescriptionKennzeichenFalseID", at: "entry[2]/resource/MedicationRequest/extension[4]",
			pass: erp, fail: e(erp, multiple, strings.Replace(mulTrue, "true", "false", 1))},
		{use: "KBV_EX_ERP_Multiple_Prescription|1.3.3 -erp-multiplePrescriptionEinloesefristEnde", at: "entry[2]/resource/MedicationRequest/extension[4]",
			pass: e(erp, multiple, mulTrue), fail: e(erp, multiple, strings.Replace(mulTrue, "2026-06-30", "2026-03-01", 1))},
		{use: "KBV_EX_ERP_Multiple_Prescription|1.3.3 -erp-multiplePrescriptionNummerierung", at: "entry[2]/resource/MedicationRequest/extension[4]/extension[2]/valueRatio",
			pass: e(erp, multiple, mulTrue), fail: e(erp, multiple, strings.Replace(mulTrue, `<value value="4"/>`, `<value value="1"/>`, 1))},
		{use: "KBV_EX_ERP_Multiple_Prescription|1.3.3 -erp-multiplePrescriptionNumeratorValue", at: "entry[2]/resource/MedicationRequest/extension[4]/extension[2]/valueRatio/numerator",
			pass: e(erp, multiple, mulTrue), fail: e(erp, multiple, strings.Replace(mulTrue, `<value value="2"/>`, `<value value="5"/>`, 1))},
		{use: "KBV_EX_ERP_Multiple_Prescription|1.3.3 -erp-begrenzungDateEnd", at: "entry[2]/resource/MedicationRequest/extension[4]/extension[3]/valuePeriod",
			pass: e(erp, multiple, mulTrue), fail: e(erp, multiple, strings.Replace(mulTrue, "2026-06-30", "2026-06-30T12:00:00Z", 1))},
		{use: "KBV_EX_ERP_Multiple_Prescription|1.3.3 -erp-aufbauMehrfachverordnungID", at: "entry[2]/resource/MedicationRequest/extension[4]/extension[4]/valueIdentifier/value",
			pass: e(erp, multiple, mulTrue), fail: e(erp, multiple, strings.Replace(mulTrue, "urn:uuid:24e2e10d", "urn:uuid:24e2e10", 1))},
		// FOR 1.2.1
		{use: "KBV_PR_FOR_Practitioner|1.2.1 -for-angabeArztnummerPflicht", at: "entry[5]/resource/Practitioner", pass: erp,
			fail: e(erp, lanr, strings.Replace(lanr, "LANR", "ZANR", 1))},
		{use: "KBV_PR_FOR_Practitioner|1.2.1 -for-anzahlIdentifikatorAusstellende-VerantwortlichePerson", at: "entry[5]/resource/Practitioner", pass: erp,
			fail: e(erp, lanr, lanr+strings.Replace(lanr, "LANR", "ZANR", 1))},
		{use: "KBV_PR_FOR_Practitioner|1.2.1 -for-angabeIdentifikatorAusstellende-VerantwortlichePersonVerbot", at: "entry[5]/resource/Practitioner",
			pass: e(e(erp, lanr, ""), `<code value="00"/></coding></code></qualification>`, `<code value="02"/></coding></code></qualification>`),
			fail: e(erp, `<code value="00"/></coding></code></qualification>`, `<code value="02"/></coding></code></qualification>`)},
		{use: "KBV_PR_FOR_Practitioner|1.2.1 -for-laengeLANR", at: "entry[5]/resource/Practitioner/identifier/value", pass: erp,
			fail: e(erp, `<value value="123456601"/>`, `<value value="12345660"/>`)},
		{use: "KBV_PR_FOR_Coverage|1.2.1 -for-angabeVersichertenartPflicht", at: "entry[7]/resource/Coverage", pass: erp,
			fail: e(erp, `<extension url="http://fhir.de/StructureDefinition/gkv/versichertenart">`, `<extension url="http://fhir.de/StructureDefinition/gkv/versichertenart-x">`)},
		{use: "KBV_PR_FOR_Coverage|1.2.1 -for-angabeIKKostentraegerVerbot", at: "entry[7]/resource/Coverage", pass: erp,
			fail: e(erp, `<payor><identifier>`, `<payor><identifier><extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_Alternative_IK"><valueIdentifier><value value="120390597"/></valueIdentifier></extension>`)},
		{use: "KBV_PR_FOR_Coverage|1.2.1 -for-begrenzungDate", at: "entry[7]/resource/Coverage/period", pass: erp,
			fail: e(erp, `<end value="2028-12-31"/>`, `<end value="2028-12"/>`)},
		{use: "KBV_PR_FOR_Coverage|1.2.1 -for-laengeIK @Coverage.payor.identifier.value", at: "entry[7]/resource/Coverage/payor/identifier/value", pass: erp,
			fail: e(erp, `<value value="109500969"/>`, `<value value="10950096"/>`)},
		{use: "KBV_PR_FOR_PractitionerRole|1.2.1 -for-laengeASVnummer", at: "organization/identifier/value",
			pass: res("PractitionerRole", `<organization><identifier><value value="123456789"/></identifier></organization>`),
			fail: res("PractitionerRole", `<organization><identifier><value value="12345"/></identifier></organization>`)},
		// FHIR R4 core
		{use: "FHIR-R4-4.0.1 ele-1", at: "name", pass: res("Patient", `<name><given value="Lena"/></name>`), fail: res("Patient", `<name id="n1"/>`)},
		{use: "FHIR-R4-4.0.1 ext-1", at: "extension",
			pass: res("Patient", `<extension url="http://x"><valueString value="x"/></extension>`),
			fail: res("Patient", `<extension url="http://x"><extension url="y"><valueString value="y"/></extension><valueString value="x"/></extension>`)},
		{use: "FHIR-R4-4.0.1 dom-2", pass: res("Observation", cont),
			fail: res("Observation", `<contained><Patient><id value="c1"/>`+cont+`</Patient></contained>`)},
		{use: "FHIR-R4-4.0.1 dom-3", pass: res("Observation", cont+`<subject><reference value="#c1"/></subject>`), fail: res("Observation", cont)},
		{use: "FHIR-R4-4.0.1 dom-4", pass: res("Observation", cont),
			fail: res("Observation", `<contained><Patient><id value="c1"/><meta><versionId value="2"/></meta></Patient></contained>`)},
		{use: "FHIR-R4-4.0.1 dom-5", pass: res("Observation", cont),
			fail: res("Observation", `<contained><Patient><id value="c1"/><meta><security><code value="R"/></security></meta></Patient></contained>`)},
		{use: "FHIR-R4-4.0.1 dom-6", pass: res("Patient", `<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">Lena</div></text>`),
			fail: res("Patient", `<text><status value="empty"/></text>`)},
		{use: "FHIR-R4-4.0.1 bdl-1", pass: erp, fail: e(erp, `<type value="document"/>`, `<type value="document"/><total value="7"/>`)},
		{use: "FHIR-R4-4.0.1 bdl-2", pass: erp, fail: e(erp, `<fullUrl value="http://pvs.praxis.local/fhir/Coverage/cov1"/>`, `<fullUrl value="http://pvs.praxis.local/fhir/Coverage/cov1"/><search><mode value="match"/></search>`)},
		{use: "FHIR-R4-4.0.1 bdl-3", pass: res("Bundle", `<type value="transaction"/><entry><request><method value="POST"/></request></entry>`),
			fail: res("Bundle", `<type value="collection"/><entry><request><method value="POST"/></request></entry>`)},
		{use: "FHIR-R4-4.0.1 bdl-4", pass: res("Bundle", `<type value="batch-response"/><entry><response><status value="200"/></response></entry>`),
			fail: res("Bundle", `<type value="batch-response"/><entry><fullUrl value="urn:uuid:1"/></entry>`)},
		{use: "FHIR-R4-4.0.1 bdl-5", at: "entry", pass: res("Bundle", composition),
			fail: res("Bundle", `<entry><fullUrl value="urn:uuid:1"/></entry>`)},
		{use: "FHIR-R4-4.0.1 bdl-7", pass: erp,
			fail: e(erp, `<fullUrl value="http://pvs.praxis.local/fhir/Medication/med1"/>`, `<fullUrl value="http://pvs.praxis.local/fhir/MedicationRequest/mr1"/>`)},
		{use: "FHIR-R4-4.0.1 bdl-8", at: "entry", pass: res("Bundle", composition),
			fail: res("Bundle", `<entry><fullUrl value="https://x/Patient/1/_history/2"/></entry>`)},
		{use: "FHIR-R4-4.0.1 bdl-9", pass: res("Bundle", doc+composition), fail: res("Bundle", `<type value="document"/>`+composition)},
		{use: "FHIR-R4-4.0.1 bdl-10", pass: res("Bundle", doc+composition),
			fail: res("Bundle", strings.Replace(doc, `<timestamp value="2026-03-02T08:30:00Z"/>`, "", 1)+composition)},
		{use: "FHIR-R4-4.0.1 bdl-11", pass: res("Bundle", doc+composition),
			fail: res("Bundle", doc+strings.Replace(composition, "Composition", "Patient", 2))},
		{use: "FHIR-R4-4.0.1 bdl-12", pass: res("Bundle", `<type value="message"/><entry><resource><MessageHeader/></resource></entry>`),
			fail: res("Bundle", `<type value="message"/>`+composition)},
		{use: "FHIR-R4-4.0.1 pat-1", at: "contact", pass: aws[strings.Index(aws, "<Patient>") : strings.Index(aws, "</Patient>")+10],
			fail: res("Patient", `<contact><gender value="male"/></contact>`)},
		{use: "FHIR-R4-4.0.1 org-1", pass: res("Organization", `<name value="Praxis"/>`), fail: res("Organization", `<active value="true"/>`)},
		{use: "FHIR-R4-4.0.1 org-2", at: "address", pass: res("Organization", `<address><use value="work"/></address>`),
			fail: res("Organization", `<address><use value="home"/></address>`)},
		{use: "FHIR-R4-4.0.1 con-3", pass: res("Condition", activeCS+`<category><coding><code value="problem-list-item"/></coding></category>`),
			fail: res("Condition", `<category><coding><code value="problem-list-item"/></coding></category>`)},
		{use: "FHIR-R4-4.0.1 con-4",
			pass: res("Condition", `<clinicalStatus><coding><system value="http://terminology.hl7.org/CodeSystem/condition-clinical"/><code value="resolved"/></coding></clinicalStatus><abatementDateTime value="2026-01-01"/>`),
			fail: res("Condition", `<clinicalStatus><coding><system value="http://terminology.hl7.org/CodeSystem/condition-clinical"/><code value="active"/></coding></clinicalStatus><abatementDateTime value="2026-01-01"/>`)},
		{use: "FHIR-R4-4.0.1 con-5", pass: res("Condition", activeCS),
			fail: res("Condition", activeCS+`<verificationStatus><coding><system value="http://terminology.hl7.org/CodeSystem/condition-ver-status"/><code value="entered-in-error"/></coding></verificationStatus>`)},
		{use: "FHIR-R4-4.0.1 obs-6", pass: res("Observation", `<valueQuantity><value value="1"/></valueQuantity>`),
			fail: res("Observation", `<dataAbsentReason><text value="nicht erhoben"/></dataAbsentReason><valueQuantity><value value="1"/></valueQuantity>`)},
		{use: "FHIR-R4-4.0.1 obs-7", pass: observationXML,
			fail: strings.Replace(observationXML, `<code value="8462-4"/>`, `<code value="8480-6"/>`, 1)},
		{use: "FHIR-R4-4.0.1 ait-1", pass: res("AllergyIntolerance", activeCS), fail: res("AllergyIntolerance", `<code><text value="Penicillin"/></code>`)},
		{use: "FHIR-R4-4.0.1 cmp-1", at: "section", pass: res("Composition", `<section><entry><reference value="Patient/1"/></entry></section>`),
			fail: res("Composition", `<section><title value="leer"/></section>`)},
		{use: "FHIR-R4-4.0.1 cmp-2", at: "section", pass: res("Composition", `<section><emptyReason><text value="nichts"/></emptyReason></section>`),
			fail: res("Composition", `<section><emptyReason><text value="nichts"/></emptyReason><entry><reference value="Patient/1"/></entry></section>`)},
		{use: "FHIR-R4-4.0.1 ctm-1", at: "entry/resource/CareTeam/participant",
			pass: res("Bundle", `<entry><resource><CareTeam><participant><member><reference value="Practitioner/d"/></member><onBehalfOf><reference value="Organization/o"/></onBehalfOf></participant></CareTeam></resource></entry><entry><fullUrl value="https://x/Practitioner/d"/><resource><Practitioner><id value="d"/></Practitioner></resource></entry>`),
			fail: res("Bundle", `<entry><resource><CareTeam><participant><member><reference value="Patient/d"/></member><onBehalfOf><reference value="Organization/o"/></onBehalfOf></participant></CareTeam></resource></entry><entry><fullUrl value="https://x/Patient/d"/><resource><Patient><id value="d"/></Patient></resource></entry>`)},
		{use: "FHIR-R4-4.0.1 gol-1", at: "target",
			pass: res("Goal", `<target><measure><text value="HbA1c"/></measure><detailString value="&lt; 7"/></target>`),
			fail: res("Goal", `<target><detailString value="&lt; 7"/></target>`)},
		{use: "FHIR-R4-4.0.1 imm-1", at: "education", pass: res("Immunization", `<education><documentType value="x"/></education>`),
			fail: res("Immunization", `<education><presentationDate value="2026-01-01"/></education>`)},
		{use: "FHIR-R4-4.0.1 obs-3", at: "referenceRange", pass: res("Observation", `<referenceRange><text value="normal"/></referenceRange>`),
			fail: res("Observation", `<referenceRange><age><low><value value="1"/></low></age></referenceRange>`)},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		expr := exprFor(t, list, c.use)
		covered[expr] = true
		x := MustCompile(expr)
		for _, want := range []bool{true, false} {
			doc := c.pass
			if !want {
				doc = c.fail
			}
			got, err := x.Bool(at(t, parseXML(t, doc), c.at), WithClock(clock), EmptyResult(!c.emptyFails))
			if err != nil || got != want {
				t.Errorf("%s: got %v, %v; want %v", c.use, got, err, want)
			}
		}
	}
	t.Logf("%d cases cover %d of %d expressions", len(cases), len(covered), len(list))
}

package kbv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
)

func TestPractitioner(t *testing.T) {
	const (
		lanr = "identifier[1]"
		efn  = "identifier[2]"
	)
	zanr := `<identifier><type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="ZANR"/></coding></type><system value="http://fhir.de/NamingSystem/kzbv/zahnarztnummer"/><value value="245863350"/></identifier>`
	qualType := `<qualification><code><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_Qualification_Type"/><code value="%s"/></coding></code></qualification>`
	beruf := `<qualification><code><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_Berufsbezeichnung"/><code value="Berufsbezeichnung"/></coding><text value="Fachärztin für Allgemeinmedizin"/></code></qualification>`
	personsRun(t, "practitioner.xml", []personsCase{
		// Identifiers. The profile's invariants lanr-1 and zanr-2 (warnings) ask for nine digits in
		// a row; the check digit, and a tenth digit, are left to red's rules.
		{name: "warns about LANR with wrong check digit",
			edit: personsSet(lanr+"/value", "838382301"),
			warn: personsErr(fhir.CodeValue, "Practitioner.identifier[0].value")},
		{name: "warns about LANR with a letter",
			edit: personsSet(lanr+"/value", "987G54423"),
			warn: personsErr(fhir.CodeInvariant, "Practitioner.identifier[0].value")},
		{name: "warns about LANR with eight digits",
			edit: personsSet(lanr+"/value", "87654423"),
			warn: personsErr(fhir.CodeInvariant, "Practitioner.identifier[0].value")},
		{name: "warns about LANR with ten digits",
			edit: personsSet(lanr+"/value", "1087654423"),
			warn: personsErr(fhir.CodeValue, "Practitioner.identifier[0].value")},
		{name: "accepts pseudo-LANR 555555",
			edit: personsSet(lanr+"/value", "555555199")},
		// KBV_PR_AW_Behandelnder slices the identifiers by type code, closed: ANR (LANR), EFN (DN), ZANR.
		{name: "rejects identifier type LÜNR",
			edit: personsSet(lanr+"/type/coding/code", "LÜNR"),
			errs: personsErr(fhir.CodeStructure, "Practitioner.identifier[0]")},
		{name: "rejects LANR under the BSNR system",
			edit: personsSet(lanr+"/system", "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR"),
			errs: personsErr(fhir.CodeValue, "Practitioner.identifier[0].system")},
		{name: "rejects the legacy LANR system (the profile fixes KBV_NS_Base_ANR)",
			edit: personsSet(lanr+"/system", "http://fhir.de/NamingSystem/kbv/lanr"),
			errs: personsErr(fhir.CodeValue, "Practitioner.identifier[0].system")},
		{name: "rejects identifier without type",
			edit: personsRemove(lanr + "/type"),
			errs: personsErr(fhir.CodeStructure, "Practitioner.identifier[0]")},
		{name: "rejects a second LANR",
			edit: personsAdd("", `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="LANR"/></coding></type><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR"/><value value="123456699"/></identifier>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.identifier")},
		{name: "accepts LANR together with ZANR (KBV_PR_AW_Behandelnder allows both)",
			edit: personsAdd("", zanr)},
		{name: "warns about ZANR with eight digits",
			edit: personsEdits(personsRemove(lanr), personsAdd("", strings.Replace(zanr, "245863350", "24586335", 1))),
			warn: personsErr(fhir.CodeInvariant, "Practitioner.identifier[1].value")},
		{name: "warns about EFN with six digits",
			edit: personsSet(efn+"/value", "123456"),
			warn: personsErr(fhir.CodeValue, "Practitioner.identifier[1].value")},
		{name: "rejects a Telematik-ID (KBV_PR_AW_Behandelnder has no slice for it)",
			edit: personsAdd("", `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="PRN"/></coding></type><system value="https://gematik.de/fhir/sid/telematik-id"/><value value="1-2-ARZT-1234"/></identifier>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.identifier[2]")},
		{name: "rejects practitioner without identifier",
			edit: personsEdits(personsRemove(efn), personsRemove(lanr)),
			errs: personsErr(fhir.CodeRequired, "Practitioner.identifier")},

		// Qualifications.
		{name: "rejects Fachgruppe with one digit",
			edit: personsSet("qualification[1]/code/coding/code", "1"),
			errs: personsErr(fhir.CodeInvalid, "Practitioner.qualification[0].code")},
		{name: "rejects qualification from a foreign code system",
			edit: personsSet("qualification[1]/code/coding/system", "http://example.org/fachgruppe"),
			errs: personsErr(fhir.CodeInvalid, "Practitioner.qualification[0].code")},
		{name: "rejects two codings in one qualification",
			edit: personsAdd("qualification[1]/code", `<coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_BAR2_ARZTNRFACHGRUPPE"/><code value="02"/></coding>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.qualification[0].code.coding")},
		{name: "rejects qualification without code",
			edit: personsRemove("qualification[1]/code"),
			errs: personsErr(fhir.CodeRequired, "Practitioner.qualification[0]")},
		// The e-prescription's qualification types (KBV_PR_FOR_Practitioner, see
		// TestPractitionerEPrescription); the AWS profile binds the qualification to the Fachgruppen.
		{name: "rejects the e-prescription qualification type in an AWS practitioner",
			edit: personsAdd("", fmt.Sprintf(qualType, "00")+beruf),
			errs: []personsIssue{{fhir.CodeInvalid, "Practitioner.qualification[2].code"}, {fhir.CodeInvalid, "Practitioner.qualification[3].code"}}},

		// Name, address, gender, other elements.
		{name: "rejects practitioner without name",
			edit: personsRemove("name"),
			// The profile's name 1..1 and its slice name (use official) 1..1.
			errs: []personsIssue{{fhir.CodeRequired, "Practitioner.name"}, {fhir.CodeRequired, "Practitioner.name"}}},
		{name: "rejects practitioner without first name",
			edit: personsRemove("name/given"),
			errs: personsErr(fhir.CodeRequired, "Practitioner.name[0].given")},
		{name: "rejects Nachname missing from the family name",
			edit: personsSet("name/family/extension/valueString", "Muster"),
			errs: personsErr(fhir.CodeInvariant, "Practitioner.name[0].family")},
		{name: "rejects a birth name (KBV_PR_AW_Behandelnder: name 1..1)",
			edit: personsAdd("", `<name><use value="maiden"/><family value="Geboren"/></name>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.name")},
		{name: "rejects name with a period",
			edit: personsAdd("name", `<period><start value="2000-01-01"/></period>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.name[0].period")},
		{name: "rejects two addresses",
			edit: personsAdd("", `<address><city value="Berlin"/></address>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.address")},
		{name: "rejects address without city",
			edit: personsRemove("address/city"),
			errs: personsErr(fhir.CodeRequired, "Practitioner.address[0].city")},
		{name: "rejects gender-amtlich-de with gender male",
			edit: personsSet("gender", "male"),
			errs: personsErr(fhir.CodeInvariant, "Practitioner.gender.extension[0]")},
		{name: "rejects telecom with a use",
			edit: personsAdd("telecom", `<use value="work"/>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.telecom[0].use")},
		{name: "rejects birth date",
			edit: personsAdd("", `<birthDate value="1970-01-01"/>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.birthDate")},
		{name: "rejects photo",
			edit: personsAdd("", `<photo><contentType value="image/png"/></photo>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.photo")},
	})
}

// TestPractitionerEPrescription runs the e-prescription's cases on a KBV_PR_FOR_Practitioner of
// gematik's examples: a doctor (qualification type 00) with LANR and Telematik-ID. Which number
// the qualification type asks for, and that only one of LANR and ZANR is given, are invariants of
// the profile, reported at the Practitioner.
func TestPractitionerEPrescription(t *testing.T) {
	const (
		lanr     = "identifier[1]"
		tid      = "identifier[2]"
		typ      = "qualification[1]/code/coding/code"
		berufTxt = "qualification[2]/code/text"
	)
	zanr := `<identifier><type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="ZANR"/></coding></type><system value="http://fhir.de/sid/kzbv/zahnarztnummer"/><value value="245863350"/></identifier>`
	asv := `<qualification><code><coding><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_FOR_Fachgruppennummer_ASV"/><code value="%s"/></coding></code></qualification>`
	personsRun(t, "practitioner-for.xml", []personsCase{
		// Identifier numbers are errors in an e-prescription.
		{name: "rejects LANR with wrong check digit",
			edit: personsSet(lanr+"/value", "987654523"),
			errs: personsErr(fhir.CodeValue, "Practitioner.identifier[0].value")},
		{name: "rejects Telematik-ID without hyphen",
			edit: personsSet(tid+"/value", "1748382202"),
			errs: personsErr(fhir.CodeValue, "Practitioner.identifier[1].value")},
		{name: "rejects an EFN (KBV_PR_FOR_Practitioner: slice EFN 0..0)",
			edit: personsEdits(personsRemove(tid), personsAdd("", `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="DN"/></coding></type><system value="http://fhir.de/sid/bundesaerztekammer/efn"/><value value="802761234567890"/></identifier>`)),
			errs: personsErr(fhir.CodeStructure, "Practitioner.identifier")},

		// Qualification type and professional title.
		{name: "accepts qualification type 04 (Arzt als Vertreter)",
			edit: personsSet(typ, "04")},
		{name: "rejects qualification type 05",
			edit: personsSet(typ, "05"),
			errs: personsErr(fhir.CodeInvalid, "Practitioner.qualification[0].code")},
		{name: "rejects professional title without text",
			edit: personsRemove(berufTxt),
			errs: personsErr(fhir.CodeRequired, "Practitioner.qualification[1].code.text")},
		{name: "rejects professional title longer than 100 characters",
			edit: personsSet(berufTxt, strings.Repeat("Fachärztin ", 10)),
			errs: personsErr(fhir.CodeValue, "Practitioner.qualification[1].code.text")},
		{name: "accepts ASV doctor with pseudo-LANR and Fachgruppennummer",
			edit: personsEdits(personsSet(lanr+"/value", "555555199"), personsAdd("", fmt.Sprintf(asv, "555555472")))},
		{name: "rejects ASV-Fachgruppennummer with eight digits",
			edit: personsAdd("", fmt.Sprintf(asv, "55555547")),
			errs: personsErr(fhir.CodeValue, "Practitioner.qualification[2].code.coding[0].code")},

		// The number the qualification type asks for.
		{name: "rejects doctor without LANR",
			edit: personsRemove(lanr),
			errs: []personsIssue{{fhir.CodeInvariant, "Practitioner"}, {fhir.CodeInvariant, "Practitioner"}}},
		{name: "accepts doctor without any identifier",
			edit: personsEdits(personsRemove(tid), personsRemove(lanr))},
		{name: "rejects LANR together with ZANR",
			edit: personsEdits(personsRemove(tid), personsAdd("", zanr)),
			errs: personsErr(fhir.CodeInvariant, "Practitioner")},
		{name: "rejects dentist without ZANR",
			edit: personsSet(typ, "01"),
			errs: personsErr(fhir.CodeInvariant, "Practitioner")},
		{name: "accepts dentist with ZANR",
			edit: personsEdits(personsSet(typ, "01"), personsRemove(lanr), personsAdd("", zanr))},
		{name: "rejects midwife with LANR",
			edit: personsSet(typ, "02"),
			errs: personsErr(fhir.CodeInvariant, "Practitioner")},
		{name: "accepts midwife without identifier",
			edit: personsEdits(personsSet(typ, "02"), personsRemove(tid), personsRemove(lanr))},

		// Name.
		{name: "rejects a birth name (KBV_PR_FOR_Practitioner: name 1..1, slice geburtsname 0..0)",
			edit: personsAdd("", `<name><use value="maiden"/><family value="Geboren"/></name>`),
			errs: []personsIssue{{fhir.CodeStructure, "Practitioner.name"}, {fhir.CodeStructure, "Practitioner.name"}}},
	})
}

func TestPractitionerStaff(t *testing.T) {
	personsRun(t, "staff.xml", []personsCase{
		{name: "rejects staff member with a second qualification",
			edit: personsAdd("", `<qualification><code><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_AW_Ressourcentyp"/><code value="Mitarbeiter"/></coding></code></qualification>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.qualification")},
		{name: "rejects staff identifier with a type",
			edit: personsAdd("identifier", `<type><text value="Personalnummer"/></type>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.identifier[0].type")},
		{name: "rejects a second staff identifier",
			edit: personsAdd("", `<identifier><value value="MFA-08"/></identifier>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.identifier")},
		{name: "rejects staff member without name",
			edit: personsRemove("name"),
			errs: personsErr(fhir.CodeRequired, "Practitioner.name")},
		{name: "accepts staff member without first name",
			edit: personsRemove("name/given")},
		{name: "rejects staff member with birth date",
			edit: personsAdd("", `<birthDate value="1990-01-01"/>`),
			errs: personsErr(fhir.CodeStructure, "Practitioner.birthDate")},
		{name: "warns about staff e-mail without domain",
			edit: personsSet("telecom/value", "empfang@"),
			warn: personsErr(fhir.CodeValue, "Practitioner.telecom[0].value")},
	})
}

package kbv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
)

func TestOrganization(t *testing.T) {
	const (
		bsnr = "identifier[1]"
		ik   = "identifier[2]"
	)
	personsRun(t, "organization.xml", []personsCase{
		// Identifiers.
		{name: "warns about BSNR with ten digits",
			edit: personsSet(bsnr+"/value", "0312345670"),
			warn: personsErr(fhir.CodeValue, "Organization.identifier[0].value")},
		{name: "warns about BSNR with a letter",
			edit: personsSet(bsnr+"/value", "03123456A"),
			warn: personsErr(fhir.CodeValue, "Organization.identifier[0].value")},
		{name: "rejects BSNR under the IK system",
			edit: personsSet(bsnr+"/system", "http://fhir.de/NamingSystem/arge-ik/iknr"),
			errs: personsErr(fhir.CodeValue, "Organization.identifier[0].system")},
		{name: "warns about IK with wrong check digit",
			edit: personsSet(ik+"/value", "260326821"),
			warn: personsErr(fhir.CodeValue, "Organization.identifier[1].value")},
		{name: "rejects KZV-Abrechnungsnummer in an AWS practice site (the slice KZV-Abrechnungsnummer is 0..0)",
			edit: personsAdd("", fmt.Sprintf(organizationKZVA, "http://fhir.de/NamingSystem/kzbv/kzvabrechnungsnummer", "721111100")),
			errs: personsErr(fhir.CodeStructure, "Organization.identifier")},
		{name: "rejects identifier type VKNR",
			edit: personsSet(ik+"/type/coding/code", "VKNR"),
			errs: personsErr(fhir.CodeValue, "Organization.identifier[1].type.coding[0].code")},
		{name: "rejects identifier without type",
			edit: personsRemove(ik + "/type"),
			errs: personsErr(fhir.CodeRequired, "Organization.identifier[1].type")},
		{name: "rejects a second BSNR",
			edit: personsAdd("", organizationBSNR),
			errs: personsErr(fhir.CodeStructure, "Organization.identifier")},
		{name: "rejects practice site without BSNR",
			edit: personsRemove(bsnr),
			errs: personsErr(fhir.CodeRequired, "Organization.identifier")},
		{name: "rejects organization without identifier (identifier 1..*, the slice Betriebsstaettennummer 1..1)",
			edit: personsEdits(personsRemove(ik), personsRemove(bsnr)),
			errs: []personsIssue{{fhir.CodeRequired, "Organization.identifier"}, {fhir.CodeRequired, "Organization.identifier"}}},
		{name: "rejects organization with only a Telematik-ID",
			edit: personsEdits(personsRemove("extension"), personsRemove(ik), personsRemove(bsnr), personsAdd("", organizationTI)),
			errs: []personsIssue{{fhir.CodeRequired, "Organization.extension"}, {fhir.CodeRequired, "Organization.identifier"}}},

		// Site hierarchy.
		{name: "rejects a missing site hierarchy (KBV_PR_AW_Betriebsstaette: 1..1)",
			edit: personsRemove("extension"),
			errs: personsErr(fhir.CodeRequired, "Organization.extension")},
		{name: "accepts a secondary site",
			edit: personsSet("extension/valueCode", "NBSNR")},
		{name: "rejects site hierarchy outside BSNR and NBSNR",
			edit: personsSet("extension/valueCode", "HBS"),
			errs: personsErr(fhir.CodeInvalid, "Organization.extension[0].valueCode")},
		{name: "rejects site hierarchy without value",
			edit: personsRemove("extension/valueCode"),
			errs: []personsIssue{{fhir.CodeRequired, "Organization.extension[0].value[x]"}, {fhir.CodeRequired, "Organization.extension[0].value[x]"}}},

		// Name, contact, address.
		{name: "rejects organization without name",
			edit: personsRemove("name"),
			errs: personsErr(fhir.CodeRequired, "Organization.name")},
		{name: "warns about name longer than 60 characters",
			edit: personsSet("name", strings.Repeat("Praxis ", 9)),
			warn: personsErr(fhir.CodeValue, "Organization.name")},
		{name: "warns about a missing phone number",
			edit: personsRemove("telecom[1]"),
			warn: personsErr(fhir.CodeRequired, "Organization.telecom")},
		{name: "warns about fax number with letters",
			edit: personsSet("telecom[2]/value", "fax me"),
			warn: personsErr(fhir.CodeValue, "Organization.telecom[1].value")},
		{name: "warns about e-mail address longer than 256 characters",
			edit: personsSet("telecom[3]/value", strings.Repeat("a", 250)+"@praxis.example"),
			warn: personsErr(fhir.CodeValue, "Organization.telecom[2].value")},
		{name: "rejects organization without address",
			edit: personsRemove("address"),
			errs: personsErr(fhir.CodeRequired, "Organization.address")},
		{name: "rejects two addresses",
			edit: personsAdd("", `<address><type value="postal"/><line value="Postfach 12"><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox"><valueString value="12"/></extension></line><city value="Musterstadt"/><postalCode value="07740"/><country value="D"/></address>`),
			errs: personsErr(fhir.CodeStructure, "Organization.address")},
		// personAddress (shared with Patient) repeats the post box's limit and the address type as
		// warnings.
		{name: "rejects post box longer than 8 characters (the slice Postfach: maxLength 8)",
			edit: personsEdits(personsRemove("address"), personsAdd("", `<address><type value="postal"/><line value="Postfach 123456789"><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox"><valueString value="123456789"/></extension></line><city value="Musterstadt"/><postalCode value="07740"/><country value="D"/></address>`)),
			errs: personsErr(fhir.CodeValue, "Organization.address[0].line[0].extension[0].valueString"),
			warn: personsErr(fhir.CodeValue, "Organization.address[0].line[0].extension[0].valueString")},
		{name: "rejects street address of type postal (the slice Postfach has no street)",
			edit: personsSet("address/type", "postal"),
			errs: []personsIssue{{fhir.CodeRequired, "Organization.address[0].line[0].extension"}, {fhir.CodeStructure, "Organization.address[0].line[0].extension"}, {fhir.CodeStructure, "Organization.address[0].line[0].extension"}},
			warn: personsErr(fhir.CodeInvariant, "Organization.address[0].type")},
		{name: "rejects part of another organization",
			edit: personsAdd("", `<partOf><reference value="Organization/o9"/></partOf>`),
			errs: personsErr(fhir.CodeStructure, "Organization.partOf")},
		{name: "rejects organization type",
			edit: personsAdd("", `<type><text value="Praxis"/></type>`),
			errs: personsErr(fhir.CodeStructure, "Organization.type")},
	})
}

// organizationKZVA, organizationBSNR and organizationTI are identifiers to add to a practice site
// (organizationKZVA takes the system, AWS 1.2.0 fixing the old one, and the number).
const (
	organizationKZVA       = `<identifier><type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="KZVA"/></coding></type><system value="%s"/><value value="%s"/></identifier>`
	organizationKZVASystem = "http://fhir.de/sid/kzbv/kzvabrechnungsnummer"
	organizationBSNR       = `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="BSNR"/></coding></type><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR"/><value value="031234500"/></identifier>`
	organizationTI         = `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="PRN"/></coding></type><system value="https://gematik.de/fhir/sid/telematik-id"/><value value="1-2-PRAXIS"/></identifier>`
)

// TestOrganizationFOR: the e-prescription's prescribing site (KBV_PR_FOR_Organization 1.1.0),
// from gematik's examples.
func TestOrganizationFOR(t *testing.T) {
	const bsnr = "identifier[1]"
	personsRun(t, "organization-for.xml", []personsCase{
		{name: "rejects BSNR with ten digits",
			edit: personsSet(bsnr+"/value", "4641610810"),
			errs: []personsIssue{{fhir.CodeInvariant, "Organization.identifier[0].value"}, {fhir.CodeValue, "Organization.identifier[0].value"}}},
		{name: "accepts KZV-Abrechnungsnummer only",
			edit: personsEdits(personsRemove(bsnr), personsAdd("", fmt.Sprintf(organizationKZVA, organizationKZVASystem, "721111100")))},
		{name: "rejects KZV-Abrechnungsnummer besides the BSNR (one number of BSNR, IK, KZVA, KSN)",
			edit: personsAdd("", fmt.Sprintf(organizationKZVA, organizationKZVASystem, "721111100")),
			errs: personsErr(fhir.CodeInvariant, "Organization")},
		{name: "rejects KZV-Abrechnungsnummer with a letter",
			edit: personsEdits(personsRemove(bsnr), personsAdd("", fmt.Sprintf(organizationKZVA, organizationKZVASystem, "721L11101"))),
			errs: []personsIssue{{fhir.CodeInvariant, "Organization.identifier[0].value"}, {fhir.CodeValue, "Organization.identifier[0].value"}},
			warn: personsErr(fhir.CodeInvariant, "Organization.identifier[0].value")},
		{name: "rejects KZV-Abrechnungsnummer with ten digits",
			edit: personsEdits(personsRemove(bsnr), personsAdd("", fmt.Sprintf(organizationKZVA, organizationKZVASystem, "7211111010"))),
			errs: []personsIssue{{fhir.CodeInvariant, "Organization.identifier[0].value"}, {fhir.CodeValue, "Organization.identifier[0].value"}}},
		{name: "rejects KZV-Abrechnungsnummer under the BSNR system",
			edit: personsEdits(personsSet(bsnr+"/type/coding/system", "http://fhir.de/CodeSystem/identifier-type-de-basis"), personsSet(bsnr+"/type/coding/code", "KZVA")),
			errs: personsErr(fhir.CodeValue, "Organization.identifier[0].system")},
		{name: "rejects the site hierarchy (KBV_PR_FOR_Organization has no extensions)",
			edit: personsAdd("", `<extension url="https://fhir.kbv.de/StructureDefinition/KBV_EX_AW_Betriebsstaette_Hierarchie"><valueCode value="BSNR"/></extension>`),
			errs: personsErr(fhir.CodeStructure, "Organization.extension[0]")},
		{name: "rejects name longer than 60 characters (KBV_PR_FOR_Organization: maxLength 60)",
			edit: personsSet("name", strings.Repeat("Praxis ", 9)),
			errs: personsErr(fhir.CodeValue, "Organization.name[0]")},
		{name: "rejects two addresses",
			edit: personsAdd("", `<address><type value="both"/><line value="Am Markt 3"><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName"><valueString value="Am Markt"/></extension><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber"><valueString value="3"/></extension></line><city value="Musterstadt"/><postalCode value="07743"/><country value="D"/></address>`),
			// The invariant reads address.line[1]: the second address's line.
			errs: []personsIssue{{fhir.CodeInvariant, "Organization"}, {fhir.CodeStructure, "Organization.address"}, {fhir.CodeStructure, "Organization.address"}}},
		{name: "rejects part of another organization",
			edit: personsAdd("", `<partOf><reference value="Organization/o9"/></partOf>`),
			errs: personsErr(fhir.CodeStructure, "Organization.partOf")},
		{name: "rejects a second BSNR",
			edit: personsAdd("", `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="BSNR"/></coding></type><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR"/><value value="031234567"/></identifier>`),
			errs: []personsIssue{{fhir.CodeInvariant, "Organization"}, {fhir.CodeStructure, "Organization.identifier"}}},
	})
}

func TestOrganizationOther(t *testing.T) {
	personsRun(t, "organisation-other.xml", []personsCase{
		{name: "rejects other organisation without name",
			edit: personsRemove("name"),
			errs: personsErr(fhir.CodeRequired, "Organization.name")},
		{name: "warns about IK with wrong check digit",
			edit: personsSet("identifier/value", "109500127"),
			warn: personsErr(fhir.CodeValue, "Organization.identifier[0].value")},
		{name: "warns about identifier without type (the identifier slicing is open)",
			edit: personsRemove("identifier/type"),
			warn: personsErr(fhir.CodeRequired, "Organization.identifier[0].type")},
		{name: "accepts a VKNR",
			edit: personsAdd("", `<identifier><type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="VKNR"/></coding></type><system value="http://fhir.de/sid/kbv/vknr"/><value value="38825"/></identifier>`)},
		{name: "rejects address without city",
			edit: personsAdd("", `<address><postalCode value="10115"/><country value="D"/></address>`),
			errs: personsErr(fhir.CodeRequired, "Organization.address[0].city")},
		{name: "rejects contact",
			edit: personsAdd("", `<contact><name><family value="Muster"/></name></contact>`),
			errs: personsErr(fhir.CodeStructure, "Organization.contact")},
	})
}

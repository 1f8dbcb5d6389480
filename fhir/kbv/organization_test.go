package kbv_test

import (
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
)

func TestOrganization(t *testing.T) {
	const (
		bsnr = "identifier[1]"
		ik   = "identifier[2]"
	)
	kzva := `<identifier><type><coding><system value="http://fhir.de/CodeSystem/identifier-type-de-basis"/><code value="KZVA"/></coding></type><system value="http://fhir.de/NamingSystem/kzbv/kzvabrechnungsnummer"/><value value="%s"/></identifier>`
	forOrganization := personsFOR("KBV_PR_FOR_Organization")
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
		{name: "rejects KZV-Abrechnungsnummer in an AWS practice site",
			edit: personsAdd("", strings.Replace(kzva, "%s", "721111100", 1)),
			errs: personsErr(fhir.CodeStructure, "Organization.identifier[2]")},
		{name: "rejects KZV-Abrechnungsnummer with a letter",
			edit: personsEdits(forOrganization, personsAdd("", strings.Replace(kzva, "%s", "721L11101", 1))),
			errs: personsErr(fhir.CodeValue, "Organization.identifier[2].value")},
		{name: "rejects KZV-Abrechnungsnummer with ten digits",
			edit: personsEdits(forOrganization, personsAdd("", strings.Replace(kzva, "%s", "7211111010", 1))),
			errs: personsErr(fhir.CodeValue, "Organization.identifier[2].value")},
		{name: "rejects KZV-Abrechnungsnummer under the BSNR system",
			edit: personsEdits(forOrganization, personsRemove("extension"), personsSet(bsnr+"/type/coding/system", "http://fhir.de/CodeSystem/identifier-type-de-basis"), personsSet(bsnr+"/type/coding/code", "KZVA")),
			errs: personsErr(fhir.CodeValue, "Organization.identifier[0].system"),
			warn: personsErr(fhir.CodeRequired, "Organization.extension")},
		{name: "rejects identifier type VKNR",
			edit: personsSet(ik+"/type/coding/code", "VKNR"),
			errs: personsErr(fhir.CodeValue, "Organization.identifier[1].type.coding[0].code")},
		{name: "rejects identifier without type",
			edit: personsRemove(ik + "/type"),
			errs: personsErr(fhir.CodeRequired, "Organization.identifier[1].type")},
		{name: "rejects a second BSNR",
			edit: personsAdd("", `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="BSNR"/></coding></type><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR"/><value value="031234500"/></identifier>`),
			errs: personsErr(fhir.CodeStructure, "Organization.identifier[2]")},
		{name: "rejects practice site without BSNR",
			edit: personsRemove(bsnr),
			errs: personsErr(fhir.CodeRequired, "Organization.identifier")},
		{name: "rejects organization without identifier",
			edit: personsEdits(personsRemove(ik), personsRemove(bsnr)),
			errs: personsErr(fhir.CodeRequired, "Organization.identifier")},
		{name: "accepts e-prescription organization with KZV-Abrechnungsnummer only",
			edit: personsEdits(forOrganization, personsRemove("extension"), personsRemove(ik), personsRemove(bsnr), personsAdd("", strings.Replace(kzva, "%s", "721111100", 1))),
			warn: personsErr(fhir.CodeRequired, "Organization.extension")},
		{name: "rejects organization with only a Telematik-ID",
			edit: personsEdits(personsRemove("extension"), personsRemove(ik), personsRemove(bsnr),
				personsAdd("", `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="PRN"/></coding></type><system value="https://gematik.de/fhir/sid/telematik-id"/><value value="1-2-PRAXIS"/></identifier>`)),
			errs: []personsIssue{{fhir.CodeRequired, "Organization.extension"}, {fhir.CodeRequired, "Organization.identifier"}}},

		// Site hierarchy.
		{name: "rejects a missing site hierarchy (KBV_PR_AW_Betriebsstaette: 1..1)",
			edit: personsRemove("extension"),
			errs: personsErr(fhir.CodeRequired, "Organization.extension")},
		{name: "warns about a missing site hierarchy in an e-prescription",
			edit: personsEdits(forOrganization, personsRemove("extension")),
			warn: personsErr(fhir.CodeRequired, "Organization.extension")},
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
		{name: "warns about post box longer than 8 characters",
			edit: personsEdits(personsRemove("address"), personsAdd("", `<address><type value="postal"/><line value="Postfach 123456789"><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox"><valueString value="123456789"/></extension></line><city value="Musterstadt"/><postalCode value="07740"/><country value="D"/></address>`)),
			warn: personsErr(fhir.CodeValue, "Organization.address[0].line[0].extension[0].valueString")},
		{name: "warns about street address of type postal",
			edit: personsSet("address/type", "postal"),
			warn: personsErr(fhir.CodeInvariant, "Organization.address[0].type")},
		{name: "rejects part of another organization",
			edit: personsAdd("", `<partOf><reference value="Organization/o9"/></partOf>`),
			errs: personsErr(fhir.CodeStructure, "Organization.partOf")},
		{name: "rejects organization type",
			edit: personsAdd("", `<type><text value="Praxis"/></type>`),
			errs: personsErr(fhir.CodeStructure, "Organization.type")},
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
		{name: "rejects identifier without type",
			edit: personsRemove("identifier/type"),
			errs: personsErr(fhir.CodeRequired, "Organization.identifier[0].type")},
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

package kbv_test

import (
	"fmt"
	"testing"

	"github.com/redclone/red/fhir"
)

func TestPractitionerRole(t *testing.T) {
	team := `<identifier><system value="http://fhir.de/NamingSystem/asv/teamnummer"/><value value="%s"/></identifier>`
	asv := func(number string) personsEdit {
		return personsEdits(personsRemove("organization/reference"), personsAdd("organization", fmt.Sprintf(team, number)))
	}
	personsRun(t, "practitionerrole.xml", []personsCase{
		{name: "rejects role without practitioner",
			edit: personsRemove("practitioner"),
			errs: personsErr(fhir.CodeRequired, "PractitionerRole.practitioner")},
		{name: "rejects practitioner without reference",
			edit: personsRemove("practitioner/reference"),
			errs: []personsIssue{{fhir.CodeRequired, "PractitionerRole.practitioner"}, {fhir.CodeRequired, "PractitionerRole.practitioner.reference"}}},
		{name: "rejects practitioner reference to a patient",
			edit: personsSet("practitioner/reference", "Patient/p1"),
			errs: personsErr(fhir.CodeStructure, "PractitionerRole.practitioner.reference")},
		{name: "rejects practitioner reference with a blank",
			edit: personsSet("practitioner/reference", "Practitioner/pr 1"),
			errs: personsErr(fhir.CodeValue, "PractitionerRole.practitioner.reference")},
		{name: "rejects role without organization",
			edit: personsRemove("organization"),
			errs: []personsIssue{{fhir.CodeInvariant, "PractitionerRole"}, {fhir.CodeRequired, "PractitionerRole.organization"}}},
		{name: "rejects organization reference to a practitioner",
			edit: personsSet("organization/reference", "Practitioner/pr1"),
			errs: personsErr(fhir.CodeStructure, "PractitionerRole.organization.reference")},
		{name: "accepts ASV team number",
			edit: asv("555555501")},
		{name: "warns about ASV team number with eight digits",
			edit: asv("55555550"),
			warn: personsErr(fhir.CodeValue, "PractitionerRole.organization.identifier.value")},
		{name: "rejects team number under a foreign system",
			edit: personsEdits(asv("555555501"), personsSet("organization/identifier/system", "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR")),
			errs: personsErr(fhir.CodeValue, "PractitionerRole.organization.identifier[0].system")},
		{name: "rejects organization with reference and team number",
			edit: personsAdd("organization", fmt.Sprintf(team, "555555501")),
			errs: personsErr(fhir.CodeInvariant, "PractitionerRole")},
		{name: "rejects organization with neither reference nor team number",
			edit: personsEdits(personsRemove("organization/reference"), personsAdd("organization", `<display value="Praxis"/>`)),
			errs: []personsIssue{{fhir.CodeInvariant, "PractitionerRole"}, {fhir.CodeStructure, "PractitionerRole.organization.display"}}},
		{name: "rejects specialty",
			edit: personsAdd("", `<specialty><text value="Allgemeinmedizin"/></specialty>`),
			errs: personsErr(fhir.CodeStructure, "PractitionerRole.specialty")},
		{name: "rejects role identifier",
			edit: personsAdd("", `<identifier><value value="1"/></identifier>`),
			errs: personsErr(fhir.CodeStructure, "PractitionerRole.identifier")},
		{name: "rejects telecom",
			edit: personsAdd("", `<telecom><system value="phone"/><value value="030 1"/></telecom>`),
			errs: personsErr(fhir.CodeStructure, "PractitionerRole.telecom")},
	})
}

package records

import (
	"sort"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// kind is what red knows about one resource type: page size, search parameters (besides the
// common ones), parameters a search must name, and its one-line German summary.
type kind struct {
	pageSize int
	params   map[string]param
	required []string // at least one of these must be given
	summary  func(res *etree.Element) string
}

// Search parameter indexes every type has.
var commonParams = map[string]param{
	"_lastUpdated": lastUpdatedParam(),
}

func patientRef(typ string, paths ...string) map[string]param {
	p := refParam(typ+".patient", "Patient", paths...)
	return map[string]param{"subject": p, "patient": p}
}

// humanNames are the name, family and given searches of a HumanName, over one index.
func humanNames(index string) map[string]param {
	p := nameParams(index, nameField{"f", texts("name/family")}, nameField{"g", texts("name/given")}, nameField{"p", texts("name/prefix", "name/text")})
	return map[string]param{"name": p[0], "family": p[1], "given": p[2]}
}

func with(m map[string]param, more map[string]param) map[string]param {
	for k, v := range more {
		m[k] = v
	}
	return m
}

// kinds lists the resource types red stores and searches (red-api.md §3).
var kinds = map[string]kind{
	"Patient": {pageSize: 10, summary: patientSummary, params: with(humanNames("Patient.name"), map[string]param{
		"identifier": identifierParam("Patient.identifier"),
		"birthdate":  dateParam("Patient.birthdate", "birthDate"),
		"gender":     codeParam("Patient.gender", "gender"),
	})},
	"Practitioner": {pageSize: 10, summary: practitionerSummary, params: with(humanNames("Practitioner.name"), map[string]param{
		"identifier": identifierParam("Practitioner.identifier"),
	})},
	"PractitionerRole": {pageSize: 10, summary: practitionerRoleSummary, params: map[string]param{
		"identifier":   identifierParam("PractitionerRole.identifier"),
		"practitioner": refParam("PractitionerRole.practitioner", "Practitioner", "practitioner"),
		"organization": refParam("PractitionerRole.organization", "Organization", "organization"),
	}},
	"Organization": {pageSize: 10, summary: organizationSummary, params: map[string]param{
		"identifier": identifierParam("Organization.identifier"),
		"name":       nameParams("Organization.name", nameField{"n", texts("name", "alias")})[0],
	}},
	"Coverage": {pageSize: 5, summary: coverageSummary, required: []string{"beneficiary", "patient", "_id"}, params: map[string]param{
		"beneficiary": refParam("Coverage.patient", "Patient", "beneficiary"),
		"patient":     refParam("Coverage.patient", "Patient", "beneficiary"),
		"identifier":  identifierParam("Coverage.identifier"),
		"from":        periodParam("from", "period", true),
		"to":          periodParam("to", "period", true),
	}},
	"Encounter": {pageSize: 10, summary: encounterSummary, params: with(patientRef("Encounter", "subject"), map[string]param{
		"from": periodParam("from", "period", false),
		"to":   periodParam("to", "period", false),
	})},
	"Condition": {pageSize: 10, summary: conditionSummary, params: with(patientRef("Condition", "subject"), map[string]param{
		"code":      codeParam("Condition.code", "code"),
		"encounter": refParam("Condition.encounter", "Encounter", "encounter"),
	})},
	"Observation": {pageSize: 10, summary: observationSummary, params: with(patientRef("Observation", "subject"), map[string]param{
		"code":                     codeParam("Observation.code", "code"),
		"encounter":                refParam("Observation.encounter", "Encounter", "encounter"),
		"_ExportObservationTables": flagParam("_ExportObservationTables"),
	})},
	"Claim": {pageSize: 10, summary: claimSummary, required: []string{"patient", "_id"}, params: map[string]param{
		"patient":    refParam("Claim.patient", "Patient", "patient"),
		"identifier": identifierParam("Claim.identifier"),
		"encounter":  refParam("Claim.encounter", "Encounter", "item/encounter"),
	}},
	"DocumentReference": {pageSize: 10, summary: documentSummary, params: with(patientRef("DocumentReference", "subject"), map[string]param{
		"_summary":  flagParam("_summary"),
		"encounter": refParam("DocumentReference.encounter", "Encounter", "context/encounter"),
	})},
	"Medication": {pageSize: 10, summary: medicationSummary, params: with(patientRef("Medication", "__patient"), map[string]param{
		"code": codeParam("Medication.code", "code"),
	})},
	"MedicationStatement": {pageSize: 10, summary: medicationStatementSummary, params: with(patientRef("MedicationStatement", "subject"), map[string]param{
		"medication": refParam("MedicationStatement.medication", "Medication", "medicationReference"),
	})},
	"MedicationRequest": {pageSize: 10, summary: medicationRequestSummary, params: with(patientRef("MedicationRequest", "subject"), map[string]param{
		"medication": refParam("MedicationRequest.medication", "Medication", "medicationReference"),
	})},
	"Provenance": {pageSize: 10, summary: provenanceSummary, params: map[string]param{
		"target": refParam("Provenance.target", "Patient", "target"),
	}},
}

// Stored reports whether red keeps resources of type typ at all: every searchable type, and any
// other FHIR resource type a Patientenakte may carry (kept and read by id, not searchable) — but
// not the envelopes and infrastructure types that never belong in a patient record.
func Stored(typ string) bool {
	switch typ {
	case "Bundle", "OperationOutcome", "Parameters", "CapabilityStatement", "Binary":
		return false
	}
	return fhir.IsResourceType(typ)
}

// Supported reports whether red searches resources of type typ.
func Supported(typ string) bool {
	_, ok := kinds[typ]
	return ok
}

// Types lists the resource types red searches, sorted.
func Types() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Params lists the search parameters of typ, sorted.
func Params(typ string) []string {
	return known(kinds[typ])
}

// ParamType is the FHIR type of search parameter name of typ (number for RED's page).
func ParamType(typ, name string) string {
	switch name {
	case "page", "_count":
		return "number"
	case "_id":
		return "token"
	}
	p, _ := lookupParam(kinds[typ], name)
	return p.kind
}

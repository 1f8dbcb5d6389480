// Package fhir reads and writes FHIR R4 XML on etree trees: bounded, DOCTYPE-free parsing,
// resource helpers, OperationOutcome errors and the Bundle shapes red answers with.
package fhir

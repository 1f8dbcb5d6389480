package sample

// Example values of primitive types. Dates lie in January 2025 (birth dates in 1980): before the
// clock tests run with, after any date a profile might expect to have passed.

// examples are values by element name, where the name says more than the type.
var examples = map[string]string{
	"birthDate": "1980-01-15", "family": "Mustermann", "given": "Erika", "city": "Berlin",
	"postalCode": "10115", "country": "D", "line": "Musterstraße 1", "versionId": "1",
	"contentType": "application/pdf", "currency": "EUR", "periodUnit": "d",
}

// byType are values by primitive type.
var byType = map[string]string{
	"boolean": "true", "integer": "1", "unsignedInt": "1", "positiveInt": "1", "decimal": "1",
	"string": "Beispiel", "markdown": "Beispiel", "code": "sample", "id": "sample",
	"uri": "http://example.org/fhir/sample", "url": "https://example.org/sample",
	"canonical": "http://example.org/fhir/StructureDefinition/sample",
	"oid":       "urn:oid:1.2.276.0.76.4.8", "uuid": "urn:uuid:3b0c1f2e-7e0a-4c8e-9d7b-1b2f6f0e5a41",
	"base64Binary": "QmVpc3BpZWw=", "date": "2025-01-15", "dateTime": "2025-01-15T10:00:00+01:00",
	"instant": "2025-01-15T10:00:00+01:00", "time": "10:00:00",
}

// example is a value for a primitive element named name of type typ.
func example(name, typ string) string {
	if v, ok := examples[name]; ok && (typ == "string" || typ == "code" || typ == "date" || typ == "id") {
		return v
	}
	return byType[typ]
}

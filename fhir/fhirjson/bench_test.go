package fhirjson_test

import (
	"context"
	"os"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirjson"
)

// BenchmarkConvert compares reading and writing a 10-resource Patientenakte in XML (fhir.Parse,
// fhir.Document) and in JSON (Unmarshal, Marshal): the work a request's format adds.
func BenchmarkConvert(b *testing.B) {
	xml, err := os.ReadFile("../../testdata/bundles/patients.xml")
	if err != nil {
		b.Fatal(err)
	}
	res, err := fhir.Parse(xml, fhir.DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	js, err := fhirjson.Marshal(res)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("read/xml", func(b *testing.B) {
		b.SetBytes(int64(len(xml)))
		for b.Loop() {
			if _, err := fhir.Parse(xml, fhir.DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read/json", func(b *testing.B) {
		b.SetBytes(int64(len(js)))
		for b.Loop() {
			if _, err := fhirjson.Unmarshal(context.Background(), js, fhir.DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write/xml", func(b *testing.B) {
		b.SetBytes(int64(len(fhir.Document(res))))
		for b.Loop() {
			fhir.Document(res)
		}
	})
	b.Run("write/json", func(b *testing.B) {
		b.SetBytes(int64(len(js)))
		for b.Loop() {
			if _, err := fhirjson.Marshal(res); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package profile

import (
	"testing"
	"time"

	"github.com/redclone/red/fhir/kbv"
)

// The cost of validating one resource against its profile tables, next to the hand-written
// rules of fhir/kbv on the same resources.
var benchResources = []struct{ name, xml string }{
	{"Coverage", with(coverage, "<!--EXT-->", personengruppe+dmp+wop)},
	{"Observation", puls},
	{"DocumentReference", anlage},
}

func BenchmarkValidate(b *testing.B) {
	v := Default()
	for _, r := range benchResources {
		el := parse(b, r.xml)
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.Validate(el, "", Options{})
			}
		})
	}
}

func BenchmarkKBVCheck(b *testing.B) {
	now := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range benchResources {
		el := parse(b, r.xml)
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				kbv.Check(el, "", now)
			}
		})
	}
}

// BenchmarkTables prepares the tables (each profile is built on first use).
func BenchmarkTables(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		New(generated)
	}
}

// BenchmarkTablesAll prepares the tables and builds every profile, as New did before profiles
// were built on first use.
func BenchmarkTablesAll(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v := New(generated)
		for _, cs := range v.profiles {
			for _, c := range cs {
				c.tree()
			}
		}
	}
}

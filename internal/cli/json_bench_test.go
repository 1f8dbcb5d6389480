package cli_test

import (
	"net/http"
	"testing"
)

// BenchmarkFormats compares FHIR JSON with RED's XML over HTTP on the embedded store: ingest (a
// 10-patient Patientenakte per POST), read (one Patient) and search (a page of Patients).
// Each ingest starts on an empty store. Throughput is reported as requests/s and, for ingest, resources/s; MB/s counts the bodies.
func BenchmarkFormats(b *testing.B) {
	start := func(b *testing.B) *server {
		in := newInstance(b, "")
		in.initTenant("praxis", "anna", "pw")
		return in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	}
	bundle := tenPatients(b)
	formats := []struct {
		name, contentType, accept string
		body                      func([]byte) []byte
	}{
		{"xml", fhirXML, "application/fhir+xml", func(x []byte) []byte { return x }},
		{"json", fhirJSON, "application/fhir+json", func(x []byte) []byte { return asJSON(b, x) }},
	}
	for _, f := range formats {
		b.Run("ingest/"+f.name, func(b *testing.B) {
			srv := start(b) // each on an empty store: a growing one would favour the first
			bodies := make([][]byte, b.N)
			size := 0
			for i := range bodies {
				bodies[i] = f.body(bundle(f.name, i))
				size += len(bodies[i])
			}
			b.SetBytes(int64(size / b.N))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if status, body := srv.do(b, "POST", "/praxis/Bundle", f.contentType, bodies[i]); status != http.StatusOK {
					b.Fatal(status, body)
				}
			}
			b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "resources/s")
		})
	}
	srv := start(b)
	if status, body := srv.do(b, "POST", "/praxis/Bundle", fhirXML, bundle("xml", 0)); status != http.StatusOK {
		b.Fatal(status, body)
	}
	for _, op := range []struct{ name, path string }{{"read", "/praxis/Patient/xml0-3"}, {"search", "/praxis/Patient?_count=10"}} {
		for _, f := range formats {
			b.Run(op.name+"/"+f.name, func(b *testing.B) {
				size := 0
				for i := 0; i < b.N; i++ {
					status, body := srv.do(b, "GET", op.path, "", nil, "Accept", f.accept)
					if status != http.StatusOK {
						b.Fatal(status, body)
					}
					size += len(body)
				}
				b.SetBytes(int64(size / b.N))
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
			})
		}
	}
}

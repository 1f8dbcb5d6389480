package cli_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/redclone/red/storage/postgres/pgtest"
)

// BenchmarkPostBundle posts a 10-resource patient bundle over HTTP to a running red — parse,
// check, seal, tokens, atomic commit — on each backend. Each iteration creates 10 new patients.
func BenchmarkPostBundle(b *testing.B) {
	onEachBackend(b, func(b *testing.B, in *instance) {
		srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
		bundle := tenPatients(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if status, body := srv.do(b, "POST", "/praxis/Bundle", fhirXML, bundle("b", i)); status != http.StatusOK {
				b.Fatal(status, body)
			}
		}
		b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "resources/s")
	})
}

// tenPatients returns what makes bundle i of a run: a history bundle of 10 new patients (the
// first Patient of testdata/bundles/patients.xml), their ids made unique by prefix.
func tenPatients(t testing.TB) func(prefix string, i int) []byte {
	template := string(patientsBundle(t))
	entry := template[strings.Index(template, "<entry>") : strings.Index(template, "</entry>")+len("</entry>")]
	return func(prefix string, i int) []byte {
		var sb strings.Builder
		sb.WriteString(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`)
		for j := range 10 {
			sb.WriteString(strings.Replace(entry, `<id value="60151"/>`, fmt.Sprintf(`<id value="%s%d-%d"/>`, prefix, i, j), 1))
		}
		sb.WriteString(`</Bundle>`)
		return []byte(sb.String())
	}
}

// onEachBackend runs f on the embedded store and on PostgreSQL, each time with a fresh instance
// holding the tenant praxis and its user anna (password pw).
func onEachBackend[T interface {
	testing.TB
	Run(string, func(T)) bool
}](t T, f func(T, *instance)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t T) {
			url := ""
			if backend == "postgres" {
				url = pgtest.URL(t)
			}
			in := newInstance(t, url)
			in.initTenant("praxis", "anna", "pw")
			f(t, in)
		})
	}
}

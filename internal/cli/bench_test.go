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
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			url := ""
			if backend == "postgres" {
				url = pgtest.URL(b)
			}
			in := newInstance(b, url)
			in.initTenant("praxis", "anna", "pw")
			srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
			template := string(patientsBundle(b))
			entry := template[strings.Index(template, "<entry>") : strings.Index(template, "</entry>")+len("</entry>")]
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var sb strings.Builder
				sb.WriteString(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`)
				for j := 0; j < 10; j++ {
					sb.WriteString(strings.Replace(entry, `<id value="60151"/>`, fmt.Sprintf(`<id value="b%d-%d"/>`, i, j), 1))
				}
				sb.WriteString(`</Bundle>`)
				if status, body := srv.do(b, "POST", "/praxis/Bundle", fhirXML, []byte(sb.String())); status != http.StatusOK {
					b.Fatal(status, body)
				}
			}
			b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}

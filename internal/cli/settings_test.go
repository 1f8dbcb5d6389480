package cli_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestTenantValidation: red config stores a tenant's validation mode (after a login) for every
// server of the tenant, on either backend; red serve --validation overrides it.
func TestTenantValidation(t *testing.T) {
	onEachBackend(t, func(t *testing.T, in *instance) {
		pw := in.passwordFile("pw")

		if out := in.mustRun("config", "--tenant", "praxis", "--user", "anna", "--password-file", pw); !strings.Contains(out, "tenant praxis: validation profile (default)") {
			t.Errorf("a new tenant validates by the profiles:\n%s", out)
		}
		if out, err := in.run("config", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("wrong"), "--validation", "strict"); err == nil {
			t.Errorf("a wrong password changed the settings:\n%s", out)
		}
		if out, err := in.run("config", "--tenant", "praxis", "--user", "anna", "--password-file", pw, "--validation", "lenient"); err == nil || !strings.Contains(err.Error(), "use profile or strict") {
			t.Errorf("an unknown mode: %v\n%s", err, out)
		}
		if out := in.mustRun("config", "--tenant", "praxis", "--user", "anna", "--password-file", pw, "--validation", "strict"); !strings.Contains(out, "tenant praxis: validation strict") {
			t.Errorf("set strict:\n%s", out)
		}

		// P1 has a KVNR with a wrong check digit: a plausibility finding.
		entry := strings.Replace(patientEntry(t, "P1", 'M', 12345678), "M123456785", "M123456784", 1)
		if !strings.Contains(entry, "M123456784") {
			t.Fatal("the test KVNR changed")
		}
		body := []byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>` + entry + `</Bundle>`)
		post := func(srv *server) (int, string) {
			return srv.do(t, "POST", "/praxis/Bundle", fhirXML, body)
		}

		strict := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", pw)
		mustContain(t, "start message", strict.output.String(), "red: validation strict (tenant setting)")
		if status, got := post(strict); status != http.StatusBadRequest {
			t.Errorf("strict tenant: status %d, want 400:\n%s", status, got)
		} else {
			mustContain(t, "strict answer", got, `<severity value="error"/>`, `<expression value="Bundle.entry[0].resource.identifier[0].value"/>`)
		}
		if err := strict.stop(); err != nil {
			t.Fatal(err)
		}

		lenient := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", pw, "--validation", "profile")
		mustContain(t, "start message", lenient.output.String(), "red: validation profile (--validation)")
		status, got := post(lenient)
		if status != http.StatusOK {
			t.Errorf("--validation profile overrides the tenant: status %d, want 200:\n%s", status, got)
		}
		mustContain(t, "answer", got, `<status value="201 Created"/>`, `<severity value="warning"/>`, `<expression value="Bundle.entry[0].resource.identifier[0].value"/>`)
	})
}

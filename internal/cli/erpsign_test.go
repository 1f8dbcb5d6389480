package cli_test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// prescriptionBundle is gematik's example prescription (Apache-2.0, in the testdata of package
// ident) as MedicationRequest id, for the holder of the eGK in the simulated terminal.
func prescriptionBundle(t testing.TB, id string) []byte {
	t.Helper()
	raw := readFile(t, filepath.Join("..", "..", "fhir", "ident", "testdata", "gematik", "eRezept-Examples", "End-to-End-Examples",
		"7_01.10.2025", "PZN-Verordnung", "PZN-Verordnung_1", "PZN_Nr1_VerordnungArzt.xml"))
	b := strings.ReplaceAll(string(raw), "e930cdee-9eb5-4b44-88b5-2a18b69f3b9a", id)
	return []byte(regexp.MustCompile(`<value value="[A-Z][0-9]{9}"\s*/>`).ReplaceAllString(b, `<value value="M123456785"/>`))
}

// queuePrescriptions queues one prescription per id with $createerptask.
func queuePrescriptions(t testing.TB, srv *server, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if status, body := srv.do(t, "POST", "/praxis/TI?action=$createerptask", fhirXML, prescriptionBundle(t, id)); status != 201 {
			t.Fatalf("queue %s: %d\n%s", id, status, body)
		}
	}
}

func portOf(t testing.TB, base string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// red erp sign against a running red serve: it signs what is queued, shows the progress line by
// line (no terminal here) and each outcome, exits non-zero when a prescription was not
// activated, and reaches only the server of its data directory, by its client token.
func TestERPSignCommand(t *testing.T) {
	srv, _, in := tiInstance(t)
	port := portOf(t, srv.base)
	sign := func(args ...string) (string, error) {
		return in.run(append([]string{"erp", "sign", "--tenant", "praxis", "--port", port}, args...)...)
	}
	tokenFile := filepath.Join(in.dir, "serve-"+port+".token")

	t.Run("the client token is its user's only", func(t *testing.T) {
		skipOnWindows(t)
		if m := mode(t, tokenFile); m != 0o600 {
			t.Errorf("mode %04o", m)
		}
	})
	t.Run("nothing to sign", func(t *testing.T) {
		out, err := sign()
		if err != nil || !strings.Contains(out, "nothing to sign") {
			t.Errorf("%v\n%s", err, out)
		}
	})
	queuePrescriptions(t, srv, "mr-1", "mr-2")
	t.Run("an HBA that is not inserted", func(t *testing.T) {
		out, err := sign("--card", "HBA-99")
		if err == nil || !strings.Contains(err.Error(), "no physician's or dentist's HBA with this handle") {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("signs and activates every queued prescription", func(t *testing.T) {
		out, err := sign("--card", "HBA-16")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		mustContain(t, "red erp sign", out, "signing 2 prescriptions with the HBA of Dr. med. Hanna Berger TEST-ONLY", "mr-1  activated", "mr-2  activated", "2 of 2 prescriptions activated")
		if strings.Contains(out, "Königsstein") || strings.Contains(out, "Ludger") {
			t.Errorf("person data in the output:\n%s", out)
		}
		if _, body := srv.do(t, "GET", "/praxis/Task", "", nil); !strings.Contains(body, `<total value="2"/>`) {
			t.Errorf("Task polling:\n%s", body)
		}
	})
	t.Run("a prescription not activated is an error, with its reason", func(t *testing.T) {
		m := regexp.MustCompile(`E-Rezept-Fachdienst simulator at (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.output.String())
		if m == nil {
			t.Fatalf("no Fachdienst:\n%s", srv.output)
		}
		resp, err := http.Post(m[1]+"/sim/faults", "application/json", strings.NewReader(`{"op":"activate","kind":"fail","count":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		queuePrescriptions(t, srv, "mr-3")
		out, err := sign()
		if err == nil || !strings.Contains(err.Error(), "1 of 1 prescription not activated; they stay queued") {
			t.Errorf("%v\n%s", err, out)
		}
		mustContain(t, "red erp sign", out, "mr-3  signed: the E-Rezept-Fachdienst did not activate the Task", "0 of 1 prescription activated")
		// the next batch takes it up again
		if out, err := sign(); err != nil || !strings.Contains(out, "mr-3  activated") {
			t.Errorf("the retry: %v\n%s", err, out)
		}
	})
	t.Run("another tenant", func(t *testing.T) {
		out, err := in.run("erp", "sign", "--tenant", "labor", "--port", port)
		if err == nil || !strings.Contains(err.Error(), `red on port `+port+` serves tenant "praxis", not "labor"`) {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("no server on the port", func(t *testing.T) {
		other := strconv.Itoa(freePort(t))
		out, err := in.run("erp", "sign", "--tenant", "praxis", "--port", other)
		if err == nil || !strings.Contains(err.Error(), "no red serve with this data directory listens on port "+other) {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("a token file others may read is not red's", func(t *testing.T) {
		skipOnWindows(t)
		if err := os.Chmod(tokenFile, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(tokenFile, 0o600)
		out, err := sign()
		if err == nil || !strings.Contains(err.Error(), "may be read or changed by others") {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("a wrong token is refused by the server", func(t *testing.T) {
		good := readFile(t, tokenFile)
		defer os.WriteFile(tokenFile, good, 0o600)
		bad := regexp.MustCompile(`"token":"[^"]*"`).ReplaceAll(good, []byte(`"token":"guessed"`))
		if err := os.WriteFile(tokenFile, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := sign()
		if err == nil || !strings.Contains(err.Error(), "red serve refused (403)") {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("the token file goes with the server", func(t *testing.T) {
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
			t.Errorf("still there: %v", err)
		}
	})
}

// freePort is a loopback port nobody listens on (for now).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

//go:build linux

package cli_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var readByReception = regexp.MustCompile(`(?m)\banna\s+empfang\s+-\s+read\s+Patient\s+success$`)

// TestAuditAfterKill kills red serve (its own process) with SIGKILL after a write and a read: red
// audit verify names its chain as ended without close, no break, and a later session's start
// witnesses it — while the events that were written stay readable.
func TestAuditAfterKill(t *testing.T) {
	onEachBackend(t, func(t *testing.T, in *instance) {
		p := startProcess(t, in, "serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--workstation", "empfang")
		if status, body := p.post(t, patientsBundle(t)); status != http.StatusOK {
			t.Fatal(status, body)
		}
		resp, err := http.Get(p.base + "/praxis/Patient/60151")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatal(err, resp)
		}
		resp.Body.Close()
		// the read's event is written right after the answer: wait until another process sees it
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			out, err := in.audit("--patient", "60151")
			if err != nil {
				t.Fatal(err, out)
			}
			if readByReception.MatchString(out) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the read is not in the trail:\n%s", out)
			}
		}
		p.kill(t)
		for deadline := time.Now().Add(10 * time.Second); !portFree(t, p.base); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("red serve still listens after SIGKILL")
			}
		}

		out, err := in.audit("verify")
		if err != nil {
			t.Fatalf("verify after a kill: %v\n%s", err, out)
		}
		if !strings.Contains(out, "(anna on empfang, started") || !strings.Contains(out, ": chain ended without close after record ") || strings.Contains(out, "BREAK") {
			t.Fatalf("want the killed session's chain ended without close, and no break:\n%s", out)
		}
		srv := in.serveAs("empfang")
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}
		if out, err := in.audit("verify"); err != nil || strings.Count(out, "chain ended without close") != 1 {
			t.Fatalf("verify after the next session: %v\n%s", err, out)
		}
	})
}

//go:build linux

package cli_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var importProgress = regexp.MustCompile(`^red: import (\d+)/(\d+) bundles`)

// TestImportResumesAfterKill kills red import (its own process) with SIGKILL in the middle, runs
// it again, and finds every resource of every bundle exactly once, in version 1.
func TestImportResumesAfterKill(t *testing.T) {
	const patients, killAfter = 300, 60
	data := loadReadData(t)
	onEachBackend(t, func(t *testing.T, in *instance) {
		dir := filepath.Join(t.TempDir(), "export")
		a := &importArchive{}
		a.add("0-praxis.xml", data.sharedBundle(), false)
		for i := range patients {
			a.add(fmt.Sprintf("akten/%04d.xml", i), data.bundle(i), false)
		}
		a.folder(t, dir)
		args := []string{"import", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw")}

		cmd := exec.Command(os.Args[0], in.args(append(args, "--batch", "10", "--progress-every", "10ms", dir)...)...)
		cmd.Env = append(os.Environ(), asRed+"=1")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := 0
		var seen strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if m := importProgress.FindStringSubmatch(sc.Text()); m != nil {
				if n, _ := strconv.Atoi(m[1]); n >= killAfter {
					_ = cmd.Process.Kill() // SIGKILL: no chance to finish a batch or clean up
					killed = n
					break
				}
			}
		}
		err = cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if killed == 0 || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("red import was not killed in the middle (%v):\n%s", err, seen.String())
		}

		out := in.mustRun(append(args, dir)...)
		m := regexp.MustCompile(`(\d+) of (\d+) bundles imported \((\d+) resources\).*; (\d+) already imported, 0 refused`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the second import's summary is missing:\n%s", out)
		}
		imported, _ := strconv.Atoi(m[1])
		skipped, _ := strconv.Atoi(m[4])
		if skipped < killed || skipped >= patients+1 || imported+skipped != patients+1 {
			t.Fatalf("killed after %d bundles, the second import skipped %d and imported %d of %d:\n%s", killed, skipped, imported, patients+1, out)
		}
		t.Logf("killed after %d bundles done; the second import skipped %d, imported %d", killed, skipped, imported)

		srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
		if _, body := srv.do(t, "GET", "/praxis/Patient?_count=1", "", nil); loadTotal([]byte(body)) != patients {
			t.Fatalf("want %d patients, got\n%.1000s", patients, body)
		}
		for i := range patients {
			pid := loadPatientID(i)
			for _, ref := range []string{"Patient/" + pid, "Coverage/V" + pid[1:], "Encounter/E" + pid[1:], "Condition/C" + pid[1:]} {
				status, body := srv.do(t, "GET", "/praxis/"+ref, "", nil)
				if status != http.StatusOK || !strings.Contains(body, `<versionId value="1"/>`) {
					t.Fatalf("%s: %d\n%.1000s", ref, status, body)
				}
			}
		}
		for _, ref := range []string{"Practitioner/pr1", "Organization/o1", "PractitionerRole/r1"} {
			if status, body := srv.do(t, "GET", "/praxis/"+ref, "", nil); status != http.StatusOK || !strings.Contains(body, `<versionId value="1"/>`) {
				t.Fatalf("%s: %d\n%.1000s", ref, status, body)
			}
		}
	})
}

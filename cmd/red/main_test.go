//go:build unix

package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runAsRed makes the test binary run main, so that the tests can start the real program.
const runAsRed = "RED_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsRed) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// red runs the real program with args in a data directory of its own.
func red(t testing.TB, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--data-dir", dir, "--kdf-time", "1", "--kdf-memory", "64", "--kdf-threads", "1"}, args...)...)
	// the TI simulators' state goes to a temporary directory too, never to the user's home
	cmd.Env = append(os.Environ(), runAsRed+"=1", "RED_PASSWORD=pw", "RED_DATABASE_URL=", "XDG_STATE_HOME="+t.TempDir())
	return cmd
}

// SIGINT (Ctrl-C) and SIGTERM stop red: it says so, wipes the keys, closes the port and ends
// with exit code 0.
func TestSignalStops(t *testing.T) {
	dir := t.TempDir()
	if out, err := red(t, dir, "init", "--tenant", "praxis", "--user", "anna").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	listening := regexp.MustCompile(`listening on http://(127\.0\.0\.1:\d+)`)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := red(t, dir, "serve", "--tenant", "praxis", "--user", "anna", "--port", "0")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout // one stream, in order
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// the reader sends the address once red listens, then all it read once red has ended
			addr, out := make(chan string, 1), make(chan string, 1)
			go func() {
				var all strings.Builder
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					all.WriteString(sc.Text() + "\n")
					if m := listening.FindStringSubmatch(sc.Text()); m != nil {
						addr <- m[1]
					}
				}
				_ = cmd.Wait()
				out <- all.String()
			}()
			var a string
			select {
			case a = <-addr:
			case o := <-out:
				t.Fatalf("red ended before listening:\n%s", o)
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("red did not listen:\n%s", <-out)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var o string
			select {
			case o = <-out:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("red did not stop on %s:\n%s", sig, <-out)
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit code %d:\n%s", code, o)
			}
			if !strings.Contains(o, "red: server stopped; keys wiped and port closed\n") {
				t.Errorf("no word of the stop:\n%s", o)
			}
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				t.Error("the port is still open")
			}
		})
	}
}

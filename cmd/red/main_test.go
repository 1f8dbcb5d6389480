//go:build unix

package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
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
	cmd.Env = append(os.Environ(), runAsRed+"=1", "RED_PASSWORD=pw", "RED_DATABASE_URL=")
	return cmd
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
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
			var out, errOut lockedBuffer
			cmd.Stderr = &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			addr := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					out.Write(append(sc.Bytes(), '\n'))
					if m := listening.FindStringSubmatch(sc.Text()); m != nil {
						addr <- m[1]
					}
				}
				done <- cmd.Wait()
			}()
			var a string
			select {
			case a = <-addr:
			case err := <-done:
				t.Fatalf("red ended before listening: %v\n%s%s", err, &out, &errOut)
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("red did not listen:\n%s%s", &out, &errOut)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("exit: %v\n%s", err, &errOut)
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("red did not stop on %s:\n%s%s", sig, &out, &errOut)
			}
			if !strings.Contains(out.String(), "red: server stopped; keys wiped and port closed\n") {
				t.Errorf("no word of the stop:\n%s%s", &out, &errOut)
			}
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				t.Error("the port is still open")
			}
		})
	}
}

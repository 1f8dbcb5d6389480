package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/cli"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/storage/postgres/pgtest"
)

func TestMain(m *testing.M) {
	// a test that starts the TI simulators without naming their directory (--ti-sim-dir) keeps
	// their state in a temporary directory, never in the user's home
	state, err := os.MkdirTemp("", "red-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(state)
	os.Exit(code)
}

// cheap Argon2id parameters keep tests fast; the defaults are tested in the vault's benchmarks.
var cheapKDF = []string{"--kdf-time", "1", "--kdf-memory", "64", "--kdf-threads", "1"}

// instance is a red data location: a temp dir, or a PostgreSQL database; and the TI simulators'
// state directory, a temp dir apart from the data.
type instance struct {
	t       testing.TB
	dir     string
	dbURL   string
	simDir  string
	pwFiles map[string]string
}

func newInstance(t testing.TB, dbURL string) *instance {
	return &instance{t: t, dir: t.TempDir(), dbURL: dbURL, simDir: t.TempDir(), pwFiles: map[string]string{}}
}

// serving is args of a serving command (serve, demo, ti-sim) with the simulators' directory
// (none when simDir is "": red's default).
func (in *instance) serving(args ...string) []string {
	if in.simDir == "" {
		return in.args(args...)
	}
	return in.args(append(args, "--ti-sim-dir", in.simDir)...)
}

func (in *instance) args(args ...string) []string {
	base := append([]string{"--data-dir", in.dir}, cheapKDF...)
	if in.dbURL != "" {
		base = append(base, "--database-url", in.dbURL)
	}
	return append(base, args...)
}

// passwordFile writes pw to a file and returns its path.
func (in *instance) passwordFile(pw string) string {
	if p, ok := in.pwFiles[pw]; ok {
		return p
	}
	p := filepath.Join(in.t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		in.t.Fatal(err)
	}
	in.pwFiles[pw] = p
	return p
}

// run runs red to completion.
func (in *instance) run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), in.args(args...), cli.IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return out.String() + errOut.String(), err
}

func (in *instance) mustRun(args ...string) string {
	in.t.Helper()
	out, err := in.run(args...)
	if err != nil {
		in.t.Fatalf("red %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// initTenant creates tenant with its first user, who practises and dispenses (the simulated TI
// has a practice's and a pharmacy's cards) and is its admin.
func (in *instance) initTenant(tenant, user, pw string) {
	in.t.Helper()
	in.mustRun("init", "--tenant", tenant, "--user", user, "--password-file", in.passwordFile(pw), "--role", "physician,pharmacist,admin")
}

// server is a running `red serve`.
type server struct {
	base   string // http://127.0.0.1:port
	stop   func() error
	done   chan error
	output *fixture.Buffer
}

var listening = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// listenAt copies what red writes on r into output, to its end, and sends the address red says
// it listens at; the channel is closed when r ends.
func listenAt(r io.Reader, output *fixture.Buffer) <-chan string {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			output.Write(append(sc.Bytes(), '\n'))
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	return found
}

// serve starts red serve (or another serving command) on port 0 and waits until it listens.
func (in *instance) serve(args ...string) *server {
	in.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{done: make(chan error, 1), output: &fixture.Buffer{}}
	go func() {
		err := cli.Run(ctx, in.serving(append(args, "--port", "0")...), cli.IO{In: strings.NewReader(""), Out: pw, Err: s.output})
		pw.Close()
		s.done <- err
	}()
	found := listenAt(pr, s.output)
	select {
	case base, ok := <-found:
		if !ok {
			cancel()
			in.t.Fatalf("red serve ended before listening: %v\n%s", <-s.done, s.output)
		}
		s.base = base
	case <-time.After(30 * time.Second):
		cancel()
		in.t.Fatalf("red serve did not start:\n%s", s.output)
	}
	var once sync.Once
	var result error
	s.stop = func() error {
		once.Do(func() { cancel(); result = <-s.done })
		return result
	}
	in.t.Cleanup(func() { _ = s.stop() })
	return s
}

// do sends one request with the loopback Host red expects.
func (s *server) do(t testing.TB, method, path, contentType string, body []byte, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const fhirXML = "application/fhir+xml; charset=UTF-8"

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func patientsBundle(t testing.TB) []byte {
	return readFile(t, filepath.Join("..", "..", "testdata", "bundles", "patients.xml"))
}

// patientEntry renders a valid Patient bundle entry from testdata/bundles/patient.tmpl.xml with
// a KVNR made from letter and n; extra identifiers are [system, value] pairs typed MR.
func patientEntry(t testing.TB, id string, letter byte, n int, identifiers ...[2]string) string {
	t.Helper()
	kv := ""
	for d := 0; d < 10 && kv == ""; d++ {
		if k := fmt.Sprintf("%c%08d%d", letter, n, d); ident.KVNR(k) == nil {
			kv = k
		}
	}
	tmpl := string(readFile(t, filepath.Join("..", "..", "testdata", "bundles", "patient.tmpl.xml")))
	e := strings.NewReplacer("{{ID}}", id, "{{KVNR}}", kv, "{{FAMILY}}", "Muster", "{{GIVEN}}", "Erika", "{{GENDER}}", "female", "{{BIRTH}}", "1970-01-01").Replace(tmpl)
	var extra strings.Builder
	for _, i := range identifiers {
		fmt.Fprintf(&extra, `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="MR"/></coding></type><system value="%s"/><value value="%s"/></identifier>`, i[0], i[1])
	}
	return strings.Replace(e, "<name>", extra.String()+"<name>", 1)
}

func mustContain(t testing.TB, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

func portFree(t testing.TB, base string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

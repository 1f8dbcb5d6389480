//go:build linux

package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redclone/red/internal/cli"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/storage/postgres/pgtest"
)

// asRed makes the test binary run red itself (as cmd/red does), so that the memory of a real
// server process can be measured apart from the test's own.
const asRed = "RED_CLI_TEST_AS_RED"

func init() {
	if os.Getenv(asRed) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "red:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// process is a red serve running as its own process.
type process struct {
	cmd    *exec.Cmd
	base   string
	exited chan struct{} // closed when it has ended (startProcess waits for it: nobody else may)
}

// kill ends p with SIGKILL, as a crash would, and waits until it has ended.
func (p *process) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// startProcess starts red on a port it picks itself (--port 0: no other process can take the
// port between a test's choice and red's listen) and waits until it says where it listens; a
// red that ends or does not listen fails t with what it wrote.
func startProcess(t testing.TB, in *instance, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], in.args(append(args, "--port", "0")...)...)
	cmd.Env = append(os.Environ(), asRed+"=1")
	output := &fixture.Buffer{}
	cmd.Stderr = output
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := listenAt(stdout, output) // to its end, so that red never blocks writing
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case base, ok := <-found:
		if !ok {
			<-exited
			t.Fatalf("red ended before listening:\n%s", output)
		}
		return &process{cmd: cmd, base: base, exited: exited}
	case <-time.After(60 * time.Second):
		t.Fatalf("red did not listen within 60 s:\n%s", output)
		return nil
	}
}

var procField = regexp.MustCompile(`(?m)^(VmHWM|VmRSS):\s+(\d+) kB$`)

// memory is the process's peak and current resident set in bytes.
func (p *process) memory(t testing.TB) (peak, now int64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range procField.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		if m[1] == "VmHWM" {
			peak = n << 10
		} else {
			now = n << 10
		}
	}
	return peak, now
}

// cpu is the processor time the process has used.
func (p *process) cpu(t testing.TB) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// the fields after the command name (which may hold spaces) start with the state, field 3
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func (p *process) post(t testing.TB, body []byte) (int, string) {
	req, err := http.NewRequest("POST", p.base+"/praxis/Bundle", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.Header.Set("Content-Type", fhirXML)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// documentBundle is patientenakte.xml with its ids suffixed by n and the PDF grown to about size
// bytes of base64: one large resource, stored.
func documentBundle(t testing.TB, n, size int) []byte {
	akte := string(readFile(t, filepath.Join("..", "..", "testdata", "bundles", "patientenakte.xml")))
	var pairs []string
	for _, m := range regexp.MustCompile(`<id value="([^"]+)"`).FindAllStringSubmatch(akte, -1) {
		id, to := m[1], m[1]+"-"+strconv.Itoa(n)
		pairs = append(pairs, `"`+id+`"`, `"`+to+`"`, `/`+id+`"`, `/`+to+`"`, `/`+id+`/`, `/`+to+`/`)
	}
	akte = strings.NewReplacer(pairs...).Replace(akte)
	pdf := regexp.MustCompile(`<data value="[^"]*"`)
	return []byte(pdf.ReplaceAllString(akte, `<data value="`+strings.Repeat("JVBERi0xLjQK", size/12)+`"`))
}

// patientsBundleOf is a Patientenakte of about size bytes of patient entries whose last entry has
// a wrong gender: read, checked in full, then refused.
func patientsBundleOf(t testing.TB, n, size int) []byte {
	var sb strings.Builder
	sb.WriteString(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`)
	for i := 0; sb.Len() < size; i++ {
		sb.WriteString(patientEntry(t, fmt.Sprintf("m%d-%d", n, i), 'M', i%100000000, [2]string{"urn:oid:1.2.3", strconv.Itoa(i)}))
	}
	sb.WriteString(strings.Replace(patientEntry(t, fmt.Sprintf("m%d-x", n), 'M', 1), `"female"`, `"feminine"`, 1))
	sb.WriteString(`</Bundle>`)
	return []byte(sb.String())
}

// BenchmarkMemory posts large bundles (27 MiB; the default --max-body is 32 MiB) to a red running
// as its own process, one and four at a time, on each backend, and reports the server's resident
// set: idle, at its peak (VmHWM; also as a multiple of one body's bytes — of four bodies, red
// admits two at a time), and once it has fallen under 100 MB after the last request (or after
// 10 s), with the seconds that took, and the processor time the server spent per round.
//
//   - document: patientenakte.xml with a 27 MiB PDF in its DocumentReference, stored;
//   - patients: 27 MiB of Patient entries (about 26,000), the last one broken, so every entry is
//     read, checked and refused.
func BenchmarkMemory(b *testing.B) {
	const size = 27 << 20
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, c := range []struct {
			name   string
			make   func(t testing.TB, n, size int) []byte
			status int
		}{
			{"document", documentBundle, http.StatusOK},
			{"patients", patientsBundleOf, http.StatusBadRequest},
		} {
			for _, parallel := range []int{1, 4} {
				b.Run(fmt.Sprintf("%s/%s/parallel=%d", backend, c.name, parallel), func(b *testing.B) {
					bodies := make([][]byte, parallel)
					for i := range bodies {
						bodies[i] = c.make(b, i, size)
					}
					url := ""
					if backend == "postgres" {
						url = pgtest.URL(b)
					}
					in := newInstance(b, url)
					in.initTenant("praxis", "anna", "pw")
					p := startProcess(b, in, "serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
					_, idle := p.memory(b)
					cpu0 := p.cpu(b)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						var wg sync.WaitGroup
						for j, body := range bodies {
							wg.Add(1)
							go func() {
								defer wg.Done()
								if status, answer := p.post(b, body); status != c.status {
									b.Errorf("request %d: %d %s", j, status, answer)
								}
							}()
						}
						wg.Wait()
					}
					b.StopTimer()
					cpu := p.cpu(b) - cpu0
					peak, _ := p.memory(b)
					after, start := int64(0), time.Now()
					for time.Since(start) < 10*time.Second {
						time.Sleep(250 * time.Millisecond)
						if _, after = p.memory(b); after < 100<<20 {
							break
						}
					}
					b.ReportMetric(float64(idle)/(1<<20), "MB-idle")
					b.ReportMetric(float64(peak)/(1<<20), "MB-peak")
					b.ReportMetric(float64(peak)/float64(len(bodies[0])), "x-body")
					b.ReportMetric(float64(after)/(1<<20), "MB-after")
					b.ReportMetric(time.Since(start).Seconds(), "s-to-release")
					b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
				})
			}
		}
	}
}

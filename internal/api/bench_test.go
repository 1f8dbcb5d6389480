package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault/vaulttest"
)

// BenchmarkHandler drives red's real handler chain in-process — router, guards, request log,
// admission, handler, records, vault, SQLite — without a network, over a tenant holding
// RED_BENCH_PATIENTS patients (default 10,000), each rendered from testdata/load/patient.xml:
//
//   - read: GET /praxis/Patient/{id} of a random stored patient;
//   - search: GET /praxis/Patient?identifier=http://fhir.de/sid/gkv/kvid-10|{KVNR};
//   - create: POST /praxis/Bundle, a history bundle of one new patient.
//
// It measures red's own CPU and allocations per request (what the goals of 15,000 reads,
// 10,000 searches and 2,500 creates per second leave to red); run with -benchmem, and with
// -cpuprofile or -memprofile to see where they go:
//
//	go test -run '^$' -bench BenchmarkHandler -benchmem ./internal/api/
func BenchmarkHandler(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // as red serve sets it
	patients := 10_000
	if v := os.Getenv("RED_BENCH_PATIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("RED_BENCH_PATIENTS=%q: want a whole number from 1", v)
		}
		patients = n
	}
	tmpl := benchTemplate(b)
	barrier, _ := vaulttest.Barrier(b)
	recs := &records.Service{Tenant: "praxis", Store: barrier}
	const perBundle = 100
	for i := 0; i < patients; i += perBundle {
		var sb strings.Builder
		sb.WriteString(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`)
		for j := i; j < min(i+perBundle, patients); j++ {
			sb.WriteString(benchEntry(tmpl, j))
		}
		sb.WriteString(`</Bundle>`)
		bundle, err := fhir.Parse([]byte(sb.String()), fhir.DefaultLimits)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := recs.PostBundle(context.Background(), bundle); err != nil {
			b.Fatal(err)
		}
	}
	h := (&api.Server{
		Tenant:  "praxis",
		Records: recs,
		TI:      &stubTI{},
		Limits:  fhir.DefaultLimits,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}).Handler()

	run := func(b *testing.B, want string, req func(i int) *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req(-1))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			b.Fatalf("HTTP %d, want 200 with %q:\n%s", rec.Code, want, rec.Body)
		}
		w := &discardWriter{header: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			clear(w.header)
			w.status = 0
			h.ServeHTTP(w, req(i))
			if w.status != http.StatusOK {
				b.Fatalf("HTTP %d", w.status)
			}
		}
	}
	read := func(i int) *http.Request {
		return benchRequest(b, "GET", "/praxis/Patient/"+benchID((i+1)*7919%patients), nil)
	}
	search := func(i int) *http.Request {
		return benchRequest(b, "GET", "/praxis/Patient?identifier=http://fhir.de/sid/gkv/kvid-10%7C"+benchKVNR((i+1)*7919%patients), nil)
	}
	// as a member of a user group (not an admin): the barrier checks each read's group and
	// has the store leave out other groups' data
	member := func(req func(int) *http.Request) func(int) *http.Request {
		return func(i int) *http.Request {
			r := req(i)
			return r.WithContext(access.With(r.Context(), access.Principal{Tenant: "praxis", User: "anna", Roles: []access.Role{access.Physician}, Groups: []string{"gruppe-kardiologie"}}))
		}
	}
	b.Run("read", func(b *testing.B) { run(b, `<family value="Mustermann">`, read) })
	b.Run("search", func(b *testing.B) { run(b, `<total value="1"/>`, search) })
	b.Run("read as a group member", func(b *testing.B) { run(b, `<family value="Mustermann">`, member(read)) })
	b.Run("search as a group member", func(b *testing.B) { run(b, `<total value="1"/>`, member(search)) })
	next := patients // the next new patient, across the rounds of create
	b.Run("create", func(b *testing.B) {
		run(b, "201 Created", func(int) *http.Request {
			next++
			body := `<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>` + benchEntry(tmpl, next) + `</Bundle>`
			return benchRequest(b, "POST", "/praxis/Bundle", []byte(body))
		})
	})
}

// benchTemplate is testdata/load/patient.xml with its placeholders that do not vary filled in.
func benchTemplate(b *testing.B) string {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "load", "patient.xml"))
	if err != nil {
		b.Fatal(err)
	}
	return strings.NewReplacer(
		"{{FAMILY}}", "Mustermann", "{{GIVEN}}", "Erika", "{{GENDER}}", "female", "{{BIRTH}}", "1957-03-21",
		"{{PHONE}}", "030 1234567", "{{STREET}}", "Musterweg", "{{HOUSE}}", "12", "{{CITY}}", "Berlin",
		"{{POSTAL}}", "10115", "{{MARITAL}}", "M", "{{CONTACT_GIVEN}}", "Max", "{{CONTACT_PHONE}}", "+49 30 7654321",
	).Replace(string(data))
}

// benchEntry is the bundle entry of patient i.
func benchEntry(tmpl string, i int) string {
	res := strings.NewReplacer("{{ID}}", benchID(i), "{{MRN}}", strconv.Itoa(4711+i), "{{KVNR}}", benchKVNR(i),
		"{{EMAIL}}", "patient"+strconv.Itoa(i)+"@example.org").Replace(tmpl)
	return "<entry><resource>" + strings.Replace(res, ` xmlns="http://hl7.org/fhir"`, "", 1) + "</resource></entry>"
}

func benchID(i int) string { return "P" + strconv.Itoa(100000+i) }

// benchKVNR is patient i's KVNR, unique per i, with a valid check digit.
func benchKVNR(i int) string {
	for letter := byte('A'); letter <= 'Z'; letter++ {
		body := fmt.Sprintf("%c%08d", letter, i)
		for d := byte('0'); d <= '9'; d++ {
			if k := body + string(d); ident.KVNR(k) == nil {
				return k
			}
		}
	}
	panic("no KVNR for " + strconv.Itoa(i))
}

func benchRequest(b *testing.B, method, target string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, "http://127.0.0.1"+target, rd)
	if err != nil {
		b.Fatal(err)
	}
	r.RemoteAddr = "127.0.0.1:40000"
	if body != nil {
		r.Header.Set("Content-Type", "application/fhir+xml; charset=UTF-8")
	}
	return r
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}

package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/postgres/pgtest"
	"github.com/redclone/red/storage/sqlite"
)

func TestMain(m *testing.M) {
	defer pgtest.Stop()
	m.Run()
}

// The store alone writes what aCreate says, once per create: every resource of it, and one
// audit head per committer, moved on once per create of its committer.
func TestCreates(t *testing.T) {
	ctx := context.Background()
	open := map[string]func(t *testing.T) storage.Store{
		"sqlite": func(t *testing.T) storage.Store {
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "red.db"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"postgres": func(t *testing.T) storage.Store {
			st, err := postgres.Open(ctx, pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, open := range open {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			defer st.Close()
			if err := st.CreateTenant(ctx, storage.Tenant{Alias: "load", Created: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
			const clients, count = 3, 12
			r := creates(ctx, st, "load", clients, 0, count, true)
			if r.Requests != count || r.Errors != 0 || r.P50 <= 0 {
				t.Fatalf("%d creates, %d errors (%s), p50 %s; want %d, none", r.Requests, r.Errors, r.FirstErr, r.P50, count)
			}
			for _, res := range aCreate {
				page, err := st.Find(ctx, "load", storage.Query{Type: res.typ})
				if err != nil || page.Total != count {
					t.Errorf("%s: %d stored (%v), want %d", res.typ, page.Total, err, count)
				}
				if err == nil && len(page.Records[0].Sealed) != res.sealed {
					t.Errorf("%s: %d sealed bytes, want %d", res.typ, len(page.Records[0].Sealed), res.sealed)
				}
			}
			heads, err := st.Find(ctx, "load", storage.Query{Type: auditHead})
			if err != nil || heads.Total != clients {
				t.Fatalf("%d audit heads (%v), want one per committer: %d", heads.Total, err, clients)
			}
			var versions int64
			for _, h := range heads.Records {
				versions += h.Version
			}
			if versions != count {
				t.Errorf("the audit heads' versions add up to %d, want one per create: %d", versions, count)
			}
		})
	}
}

// The ceilings run every phase without an error, on both stores, and the static answer is the
// patient's resource as a read answers it.
func TestCeilings(t *testing.T) {
	d, err := ReadData(filepath.Join("..", "..", "testdata", "load"))
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Data: d, Patients: 20, SeedClients: 2, Duration: 300 * time.Millisecond, Repeat: 1, Clients: []int{1, 2}}
	rep, err := Ceilings(context.Background(), c, []string{"sqlite", "postgres"}, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	body := string(patientXML(d.Bundle(0)))
	if !strings.HasPrefix(body, "<?xml") || !strings.Contains(body, "<Patient xmlns=") || !strings.HasSuffix(body, "</Patient>") || rep.BodyBytes != len(body) {
		t.Errorf("static answer of %d bytes: %.80s … %s", rep.BodyBytes, body, body[max(0, len(body)-20):])
	}
	phases := append([]PhaseReport(nil), rep.Static...)
	if len(rep.Stores) != 2 {
		t.Fatalf("%d stores measured alone, want 2", len(rep.Stores))
	}
	for _, s := range rep.Stores {
		phases = append(phases, s.Phases...)
	}
	if len(phases) != 8 {
		t.Fatalf("%d phases, want 8", len(phases))
	}
	for _, p := range phases {
		if r := p.Runs[0]; r.Requests == 0 || r.Errors != 0 || r.CPU <= 0 {
			t.Errorf("%s, %d clients: %d requests, %d errors (%s), CPU %s", p.Operation, p.Clients, r.Requests, r.Errors, r.FirstErr, r.CPU)
		}
	}
}

// The static server answers a GET to its own address and nothing else.
func TestStaticHandler(t *testing.T) {
	h := staticHandler("127.0.0.1:4000", []byte("<Patient/>"))
	for _, tc := range []struct {
		name, method, host string
		header             map[string]string
		want               int
	}{
		{"a read", "GET", "127.0.0.1:4000", nil, http.StatusOK},
		{"another host", "GET", "evil.example:4000", nil, http.StatusMisdirectedRequest},
		{"another port", "GET", "127.0.0.1:4001", nil, http.StatusMisdirectedRequest},
		{"a POST", "POST", "127.0.0.1:4000", nil, http.StatusMisdirectedRequest},
		{"a web page's request", "GET", "127.0.0.1:4000", map[string]string{"Origin": "https://evil.example"}, http.StatusMisdirectedRequest},
		{"cross-site fetch", "GET", "127.0.0.1:4000", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://"+tc.host+"/Patient/P100000", nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("HTTP %d, want %d", w.Code, tc.want)
			}
			if tc.want == http.StatusOK && (w.Body.String() != "<Patient/>" || w.Header().Get("Content-Length") != "10") {
				t.Errorf("answer %q, Content-Length %q", w.Body, w.Header().Get("Content-Length"))
			}
		})
	}
}

// The ceilings' table; testdata/ceiling.md is what it looks like (go test -update rewrites it).
func TestCeilingMarkdown(t *testing.T) {
	run := func(requests uint64, lat ...time.Duration) Result {
		r := Result{Requests: requests, Elapsed: time.Second, CPU: time.Duration(requests) * 50 * time.Microsecond}
		for _, d := range lat {
			r.Latencies.Record(d)
		}
		r.P50, r.P99 = r.Latencies.Percentile(0.5), r.Latencies.Percentile(0.99)
		return r
	}
	ms := time.Millisecond
	rep := CeilingReport{
		BodyBytes: 2578,
		Static:    []PhaseReport{{Operation: "read by id", Clients: 8, Runs: []Result{run(47000, ms/8, 5*ms)}}},
		Stores: []StoreCeiling{
			{Store: "postgres", Phases: []PhaseReport{
				{Operation: createOp, Clients: 8, Runs: []Result{run(1000, 6*ms, 20*ms), run(1100, 7*ms, 22*ms)}},
				{Operation: createWithoutTokens, Clients: 8, Runs: []Result{run(1500, 4*ms, 12*ms)}},
			}},
			{Store: "sqlite", Phases: []PhaseReport{{Operation: createOp, Clients: 1, Runs: []Result{run(400, 2*ms, 6*ms)}}}},
		},
		LoadAvg: [2]string{"0.91", "1.67"},
	}
	c := Config{Patients: 10_000, Duration: 20 * time.Second, Repeat: 3}
	fixture.Golden(t, filepath.Join("testdata", "ceiling.md"), []byte(CeilingMarkdown(c, rep)))
}

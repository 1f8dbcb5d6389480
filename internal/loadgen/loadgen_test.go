package loadgen

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/fixture"
)

// Every bucket's upper end lies in the bucket, the next value in the next one; the buckets are at
// most 1/64 of their values wide.
func TestBuckets(t *testing.T) {
	for i := range histBuckets - 1 {
		hi := upper(i)
		if bucket(hi) != i || bucket(hi+1) != i+1 {
			t.Fatalf("bucket %d ends at %d: bucket(%d) = %d, bucket(%d) = %d", i, hi, hi, bucket(hi), hi+1, bucket(hi+1))
		}
		if lo := upper(i-1) + 1; i > 0 && float64(hi-lo) > float64(lo)/64 {
			t.Fatalf("bucket %d is [%d, %d]: wider than 1/64", i, lo, hi)
		}
	}
	if bucket(^uint64(0)) != histBuckets-1 {
		t.Errorf("the largest value is in bucket %d of %d", bucket(^uint64(0)), histBuckets)
	}
}

// Percentiles of the histogram agree with the nearest-rank percentiles of the sorted values
// within the buckets' precision, and merging histograms is recording into one.
func TestPercentile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var values []time.Duration
	var a, b Histogram
	for k := range 100_000 {
		// log-normal-ish: most around 0.3 ms, a long tail up to seconds
		d := time.Duration(float64(300*time.Microsecond) * rng.ExpFloat64() * rng.ExpFloat64())
		values = append(values, d)
		if k%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(values)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		want := values[int(float64(len(values))*q+0.999999)-1].Truncate(time.Microsecond)
		got := a.Percentile(q)
		if got < want || float64(got-want) > float64(want)/64+float64(time.Microsecond) {
			t.Errorf("p%g = %s, want %s (+1/64)", q*100, got, want)
		}
	}
	if a.Count() != uint64(len(values)) {
		t.Errorf("count %d, want %d", a.Count(), len(values))
	}
	if got := a.Percentile(1); got != values[len(values)-1].Truncate(time.Microsecond) {
		t.Errorf("p100 = %s, want the largest value %s", got, values[len(values)-1])
	}
}

func TestPercentileSmall(t *testing.T) {
	var h Histogram
	if h.Percentile(0.5) != 0 {
		t.Error("an empty histogram has a p50")
	}
	for _, ms := range []int{5, 1, 3, 2, 4} {
		h.Record(time.Duration(ms) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.2, 1}, {0.5, 3}, {0.6, 3}, {0.61, 4}, {0.99, 5}, {1, 5}} {
		if got := h.Percentile(c.q); got != c.want*time.Microsecond {
			t.Errorf("p%g of 1..5 µs = %s, want %d µs", c.q*100, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %g, want %g", c.in, got, c.want)
		}
	}
}

// The phase runner keeps its clients busy for the duration, on kept-alive connections, counts
// every answer and every non-2xx one as an error, and quotes the first.
func TestPhaseRun(t *testing.T) {
	var served, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path == "/fail" {
			http.Error(w, "no such thing", http.StatusNotFound)
			return
		}
		time.Sleep(time.Millisecond)
		w.Write([]byte("<ok/>"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	var n atomic.Int64
	p := Phase{Clients: 4, Duration: 300 * time.Millisecond, Next: func(*rand.Rand) (Request, bool) {
		if n.Add(1)%10 == 0 {
			return Request{Method: "GET", Path: "/fail"}, true
		}
		return Request{Method: "POST", Path: "/ok", Body: []byte("<x/>")}, true
	}}
	start := time.Now()
	r := p.Run(context.Background(), NewClient(p.Clients), srv.URL)
	if took := time.Since(start); took < p.Duration || took > p.Duration+time.Second {
		t.Errorf("the phase took %s, want about %s", took, p.Duration)
	}
	if r.Requests == 0 || r.Requests != uint64(served.Load()) || r.Latencies.Count() != r.Requests {
		t.Errorf("%d requests, %d latencies; the server answered %d", r.Requests, r.Latencies.Count(), served.Load())
	}
	if want := uint64(n.Load() / 10); r.Errors != want {
		t.Errorf("%d errors, want %d", r.Errors, want)
	}
	if !strings.Contains(r.FirstErr, "GET /fail: 404 Not Found: no such thing") {
		t.Errorf("first error %q", r.FirstErr)
	}
	if c := conns.Load(); c != int64(p.Clients) {
		t.Errorf("%d connections for %d clients: not kept alive", c, p.Clients)
	}
	if r.Latencies.Percentile(0.5) < time.Millisecond || r.Rate() <= 0 {
		t.Errorf("p50 %s, rate %g", r.Latencies.Percentile(0.5), r.Rate())
	}

	// without a duration, a phase ends when Next has no more
	var left atomic.Int64
	left.Store(25)
	p = Phase{Clients: 3, Next: func(*rand.Rand) (Request, bool) {
		return Request{Method: "GET", Path: "/ok"}, left.Add(-1) >= 0
	}}
	if r := p.Run(context.Background(), NewClient(3), srv.URL); r.Requests != 25 || r.Errors != 0 {
		t.Errorf("a counted phase made %d requests, %d errors; want 25, 0", r.Requests, r.Errors)
	}
}

// Every rendered bundle is well-formed FHIR of the Patientenakte's shape with valid KVNRs; the
// same patient renders the same, and different patients have different ids and KVNRs.
func TestData(t *testing.T) {
	d, err := ReadData(filepath.Join("..", "..", "testdata", "load"))
	if err != nil {
		t.Fatal(err)
	}
	kvnrs := map[string]int{}
	for i := range 2000 {
		k := KVNR(i)
		if err := ident.KVNR(k); err != nil {
			t.Fatalf("KVNR(%d) = %s: %v", i, k, err)
		}
		if j, ok := kvnrs[k]; ok {
			t.Fatalf("patients %d and %d share KVNR %s", j, i, k)
		}
		kvnrs[k] = i
	}
	for _, i := range []int{0, 1, 9999, 123456} {
		b := d.Bundle(i)
		if string(b) != string(d.Bundle(i)) {
			t.Fatalf("patient %d renders differently twice", i)
		}
		if _, err := fhir.Parse(b, fhir.DefaultLimits); err != nil {
			t.Fatalf("patient %d: %v\n%s", i, err, b)
		}
		for _, want := range []string{`<id value="` + PatientID(i) + `"/>`, `<value value="` + KVNR(i) + `"/>`, `<family value="` + d.Patient(i).Family + `">`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("patient %d's bundle lacks %s", i, want)
			}
		}
		if n := strings.Count(string(b), "<entry>"); n != 4 {
			t.Errorf("patient %d's bundle has %d entries, want 4", i, n)
		}
	}
	if _, err := fhir.Parse(d.SharedBundle(), fhir.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadData(t.TempDir()); !os.IsNotExist(err) {
		t.Errorf("templates from an empty folder: %v", err)
	}
}

// A process's processor time is read from /proc and grows as it works.
func TestCPUTime(t *testing.T) {
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	after := before
	for start := time.Now(); after == before && err == nil && time.Since(start) < 10*time.Second; {
		after, err = CPUTime(os.Getpid()) // reading /proc in a loop is work
	}
	if err != nil || after <= before {
		t.Errorf("CPU time %s, then after up to 10 s of work %s (%v)", before, after, err)
	}
	if _, err := CPUTime(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

// The report is the table; testdata/report.md is what it looks like (go test -update
// rewrites it).
func TestMarkdown(t *testing.T) {
	run := func(requests uint64, elapsed time.Duration, errs uint64, lat ...time.Duration) Result {
		r := Result{Requests: requests, Elapsed: elapsed, Errors: errs}
		for _, d := range lat {
			r.Latencies.Record(d)
		}
		r.P50, r.P99 = r.Latencies.Percentile(0.5), r.Latencies.Percentile(0.99)
		r.CPU = time.Duration(requests) * (40*time.Microsecond + elapsed/2000)
		return r
	}
	ms := time.Millisecond
	phases := func(scale uint64, rss int64) []PhaseReport {
		return []PhaseReport{
			{"read by id", 1, []Result{run(2000*scale, time.Second, 0, ms/2, ms), run(2100*scale, time.Second, 0, ms/3, 2*ms), run(1900*scale, time.Second, 0, ms/2, ms)}, rss},
			{"search identifier=sys|val", 8, []Result{run(900*scale, time.Second, 1, 3*ms), run(1000*scale, time.Second, 0, 4*ms), run(950*scale, time.Second, 0, 5*ms)}, rss + 1<<20},
		}
	}
	c := Config{Patients: 10_000, SeedClients: 4, Duration: 20 * time.Second, Repeat: 3, Wrk: &Wrk{}}
	reps := []StoreReport{
		{Store: "sqlite", StartRSS: 93 << 20, Seed: run(10_000, 5*time.Second, 0, 7*ms, 9*ms), SeedRSS: 94 << 20, Phases: phases(2, 50<<20), PhasesRSS: 51 << 20, LoadAvg: [2]string{"1.02", "1.50"}},
		{Store: "postgres", StartRSS: 92 << 20, Seed: run(10_000, 4*time.Second, 0, 6*ms, 8*ms), SeedRSS: 95 << 20, Phases: phases(1, 60<<20), PhasesRSS: 61 << 20, LoadAvg: [2]string{"0.50", "1.02"}, RSSNote: "not reset"},
	}
	got := Markdown(c, reps, time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), "2 CPUs, go1.26")
	fixture.Golden(t, filepath.Join("testdata", "report.md"), []byte(got))
}

// A create script's templates, their slots filled with patient j's numbers, are Bundle(j): the
// script's bundles are the Go generator's, but for the names and details of 16 patients taken
// in turn.
func TestTemplates(t *testing.T) {
	d, err := ReadData(filepath.Join("..", "..", "testdata", "load"))
	if err != nil {
		t.Fatal(err)
	}
	for j := range templates {
		parts := d.template(j)
		slots := map[string]string{"1": strconv.Itoa(100000 + j), "2": strconv.Itoa(4711 + j), "3": strconv.Itoa(j), "4": KVNR(j)}
		var sb strings.Builder
		for k, p := range parts {
			if k%2 == 1 {
				if p = slots[p]; p == "" {
					t.Fatalf("template %d: slot %q", j, parts[k])
				}
			}
			sb.WriteString(p)
		}
		if got, want := sb.String(), string(d.Bundle(j)); got != want {
			t.Fatalf("template %d filled is not Bundle(%d):\n%s\nwant\n%s", j, j, got, want)
		}
		if strings.ContainsRune(sb.String(), '\r') {
			t.Fatalf("template %d holds a carriage return, which a Lua long string turns into a newline", j)
		}
	}
}

// The script carries its phase's constants, the searched KVNRs in order, and a Lua string of
// each template part, in long brackets of a level the text does not close.
func TestScript(t *testing.T) {
	d, err := ReadData(filepath.Join("..", "..", "testdata", "load"))
	if err != nil {
		t.Fatal(err)
	}
	read := Script{Op: OpRead, Prefix: "/load", Data: d, Patients: 10_000, Threads: 2}.Lua()
	if want := `local op, prefix, patients, threads, first, stride = "read", "/load", 10000, 2, 0, 6181` + "\n"; !strings.Contains(read, want) {
		t.Errorf("read script lacks %q:\n%.400s", want, read)
	}
	for _, fn := range []string{"function setup(thread)", "function init(args)", "function request()", "function done(summary, latency)"} {
		if !strings.Contains(read, "\n"+fn+"\n") {
			t.Errorf("read script lacks %s", fn)
		}
	}
	if strings.Contains(read, "function response(") {
		t.Error("the script defines response(): wrk would parse every answer")
	}

	search := Script{Op: OpSearch, Prefix: "/t", Data: d, Patients: 300, Threads: 1}.Lua()
	var kv strings.Builder
	for i := range 300 {
		kv.WriteString(KVNR(i))
	}
	if want := "local kvnrsystem = \"http%3A%2F%2Ffhir.de%2Fsid%2Fgkv%2Fkvid-10%7C\"\nlocal kvnrs = [[\n" + kv.String() + "]]\n"; !strings.Contains(search, want) {
		t.Errorf("search script lacks the KVNRs of patients 0 to 299:\n%.600s", search)
	}

	create := Script{Op: OpCreate, Prefix: "/load", Data: d, Patients: 10_000, Threads: 2, First: 12_345}.Lua()
	if !strings.Contains(create, `"create", "/load", 10000, 2, 12345, 6181`) || strings.Count(create, "\n  {[[\n") != templates {
		t.Errorf("create script:\n%.600s", create)
	}
	if part := luaString(d.template(3)[0]); !strings.Contains(create, "\n  {"+part+", 1, ") {
		t.Error("create script lacks template 3's first part and slot")
	}

	for _, c := range []struct{ in, want string }{
		{"a", "[[\na]]"},
		{"x]]y", "[=[\nx]]y]=]"},
		{"]]]=]", "[==[\n]]]=]]==]"},
	} {
		if got := luaString(c.in); got != c.want {
			t.Errorf("luaString(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A stride visits every patient once per round.
func TestStride(t *testing.T) {
	for _, n := range []int{1, 2, 10, 618, 1000, 10_000, 9973} {
		s, seen := stride(n), map[int]bool{}
		for k := range n {
			seen[k*s%n] = true
		}
		if len(seen) != n {
			t.Errorf("stride(%d) = %d visits %d patients", n, s, len(seen))
		}
	}
}

// wrk's output: its own summary, then done()'s line.
func TestParseWrk(t *testing.T) {
	const summary = `Running 20s test @ http://127.0.0.1:43173/load
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   712.20us    1.01ms  20.13ms   93.87%
    Req/Sec     5.64k   412.77     6.30k    72.50%
  Latency Distribution
     50%  574.00us
     75%  803.00us
     90%    1.16ms
     99%    5.19ms
  226300 requests in 20.00s, 640.50MB read
`
	for _, c := range []struct {
		name, out string
		want      Result
		last      int
		err       string
	}{
		{name: "read", out: summary + "Requests/sec:  11315.02\nTransfer/sec:     32.02MB\nredload-wrk requests=226300 duration_us=20000123 p50_us=574 p99_us=5190 status_errors=0 socket_errors=0 last=-1\n",
			want: Result{Requests: 226300, Elapsed: 20000123 * time.Microsecond, P50: 574 * time.Microsecond, P99: 5190 * time.Microsecond}, last: -1},
		{name: "create with errors", out: "  Non-2xx or 3xx responses: 3\nredload-wrk requests=900 duration_us=1000000 p50_us=8000 p99_us=21000 status_errors=3 socket_errors=2 last=10907\n",
			want: Result{Requests: 900, Errors: 5, Elapsed: time.Second, P50: 8 * time.Millisecond, P99: 21 * time.Millisecond,
				FirstErr: "3 answers with a status from 400, 2 socket errors (connect, read, write, timeout)"}, last: 10907},
		{name: "no line", out: summary, err: "no redload-wrk line"},
		{name: "a figure missing", out: "redload-wrk requests=9 duration_us=1 p50_us=1 p99_us=1 status_errors=0 last=0\n", err: "lacks socket_errors"},
		{name: "a figure not a number", out: "redload-wrk requests=nan duration_us=1 p50_us=1 p99_us=1 status_errors=0 socket_errors=0 last=0\n", err: "requests"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, last, err := parseWrk(c.out)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil || last != c.last || got.Requests != c.want.Requests || got.Errors != c.want.Errors || got.Elapsed != c.want.Elapsed ||
				got.P50 != c.want.P50 || got.P99 != c.want.P99 || got.FirstErr != c.want.FirstErr {
				t.Errorf("got %+v last %d err %v\nwant %+v last %d", got, last, err, c.want, c.last)
			}
			if got.Rate() < 11314 && c.name == "read" {
				t.Errorf("rate %g", got.Rate())
			}
		})
	}
}

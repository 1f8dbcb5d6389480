package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/internal/cli"
	"github.com/redclone/red/internal/loadgen"
	"github.com/redclone/red/storage/postgres/pgtest"
)

// BenchmarkLoad measures red on PostgreSQL at practice scale, over HTTP, the way a PVS uses it:
//
//  1. ingest: N patients (RED_BENCH_PATIENTS, default 100,000), each a Patientenakte bundle of
//     Patient, Coverage, Encounter and Condition, posted by RED_BENCH_CLIENTS (default 4)
//     concurrent clients after one bundle with the shared Practitioner, Organization and
//     PractitionerRole that every Encounter refers to;
//  2. 2,000 random reads GET /{tenant}/Patient/{id}, sequential;
//  3. 1,000 random searches by KVNR (identifier=http://fhir.de/sid/gkv/kvid-10|…);
//  4. 1,000 first pages of a name-prefix search (name=<3–5 letters of a surname>);
//  5. the process's peak RSS (server and this benchmark's client together) and the heap in use
//     after the load.
//
// The data are rendered from testdata/load/*.xml, templates copied from the valid KBV fixtures,
// and pass red's validation. Run it once, without a time limit:
//
//	RED_BENCH_PATIENTS=2000 go test -run '^$' -bench BenchmarkLoad -benchtime 1x -timeout 0 ./internal/cli/
//
// Progress goes to stderr. Targets (from the issue; a benchmark measures, it does not fail on a
// missed target): ingest ≥ 4,000 resources/s, read p50 ≤ 0.5 ms and p99 ≤ 2 ms, identifier
// search p99 ≤ 5 ms, name-prefix first page p99 ≤ 5 ms, peak RSS ≤ 200 MB.
//
// Further knobs, for finding out why:
//   - RED_BENCH_DATABASE_URL: use this empty database instead of a throwaway one, and leave the
//     data there for inspection (EXPLAIN ANALYZE);
//   - RED_BENCH_REUSE=1 (with RED_BENCH_DATABASE_URL and the same RED_BENCH_PATIENTS): skip the
//     ingest and query what an earlier run left there;
//   - RED_BENCH_PROFILE_DIR: write a CPU profile per phase (ingest, read, ident, name) and a heap
//     profile after the ingest into this directory (not together with -cpuprofile);
//   - RED_BENCH_VACUUM=1: VACUUM ANALYZE between ingest and queries, as autovacuum would;
//   - RED_BENCH_SETUP_SQL: SQL run on the database before red serves, to try storage settings,
//     e.g. "ALTER TABLE resources SET (toast_tuple_target = 8160)".
func BenchmarkLoad(b *testing.B) {
	patients := loadEnvInt(b, "RED_BENCH_PATIENTS", 100_000)
	clients := loadEnvInt(b, "RED_BENCH_CLIENTS", 4)
	const reads, identSearches, nameSearches = 2000, 1000, 1000
	profDir := os.Getenv("RED_BENCH_PROFILE_DIR")

	dbURL := os.Getenv("RED_BENCH_DATABASE_URL")
	reuse := os.Getenv("RED_BENCH_REUSE") == "1"
	if reuse && dbURL == "" {
		b.Fatal("RED_BENCH_REUSE=1 needs RED_BENCH_DATABASE_URL naming the database an earlier run with the same RED_BENCH_PATIENTS filled")
	}
	if dbURL == "" {
		dbURL = pgtest.URL(b)
	}
	data := loadReadData(b)
	in := newInstance(b, dbURL)
	if !reuse {
		in.initTenant("praxis", "anna", "pw")
	}
	if sql := os.Getenv("RED_BENCH_SETUP_SQL"); sql != "" {
		loadExec(b, dbURL, sql)
		b.Logf("ran RED_BENCH_SETUP_SQL: %s", sql)
	}
	srv := loadServe(b, in, "serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 4 * clients, MaxIdleConnsPerHost: 4 * clients, DisableCompression: true}}
	call := func(method, path string, body []byte) (int, []byte, time.Duration, error) {
		return loadCall(client, method, srv.base+path, body)
	}
	b.ResetTimer()

	// 1. ingest
	if !reuse {
		loadIngest(b, data, call, patients, clients, profDir, dbURL)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBeforeGC := ms.HeapInuse
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapInuse := ms.HeapInuse
	if profDir != "" {
		loadWriteHeap(b, filepath.Join(profDir, "heap.pprof"))
	}
	rssAfterIngest := loadPeakRSSMB()
	dbBytes := loadDatabaseSize(b, dbURL)
	if os.Getenv("RED_BENCH_VACUUM") == "1" {
		t := time.Now()
		loadExec(b, dbURL, "VACUUM ANALYZE heads, tokens, resources")
		b.Logf("VACUUM ANALYZE took %s", time.Since(t).Round(time.Millisecond))
	}
	fmt.Fprintf(os.Stderr, "load: querying\n")
	queryLoad := loadAvg()
	rng := rand.New(rand.NewPCG(2026, 11))

	// 2. reads by id
	stopProfile := loadProfile(b, profDir, "read")
	readLat := make([]time.Duration, reads)
	for k := range readLat {
		i := rng.IntN(patients)
		status, body, d, err := call("GET", "/praxis/Patient/"+loadgen.PatientID(i), nil)
		if err != nil || status != http.StatusOK || !strings.Contains(string(body), `<id value="`+loadgen.PatientID(i)+`"/>`) {
			b.Fatalf("read patient %d: %d %v\n%.2000s", i, status, err, body)
		}
		readLat[k] = d
	}
	stopProfile()

	// 3. searches by KVNR
	stopProfile = loadProfile(b, profDir, "ident")
	identLat := make([]time.Duration, identSearches)
	for k := range identLat {
		i := rng.IntN(patients)
		q := url.QueryEscape("http://fhir.de/sid/gkv/kvid-10|" + loadgen.KVNR(i))
		status, body, d, err := call("GET", "/praxis/Patient?identifier="+q, nil)
		if err != nil || status != http.StatusOK || loadTotal(body) != 1 || !strings.Contains(string(body), `<id value="`+loadgen.PatientID(i)+`"/>`) {
			b.Fatalf("identifier search for patient %d: %d %v\n%.2000s", i, status, err, body)
		}
		identLat[k] = d
	}
	stopProfile()

	// 4. first pages of name-prefix searches: a prefix of 3 to 5 letters of a stored patient's
	// surname, so common names are searched as often as they occur
	stopProfile = loadProfile(b, profDir, "name")
	nameLat := make([]time.Duration, nameSearches)
	totals := make([]int, nameSearches)
	entries := 0
	for k := range nameLat {
		p := data.Patient(rng.IntN(patients))
		word := strings.FieldsFunc(p.Family, func(r rune) bool { return r == '-' || r == ' ' })[0]
		n := min(3+rng.IntN(3), utf8.RuneCountInString(word))
		prefix := string([]rune(word)[:n])
		status, body, d, err := call("GET", "/praxis/Patient?name="+url.QueryEscape(prefix), nil)
		total := loadTotal(body)
		if err != nil || status != http.StatusOK || total < 1 {
			b.Fatalf("name search %q: %d %v\n%.2000s", prefix, status, err, body)
		}
		totals[k] = total
		entries += strings.Count(string(body), "<entry>")
		nameLat[k] = d
	}
	stopProfile()
	b.StopTimer()

	peak := loadPeakRSSMB()
	rp50, rp99 := loadPercentile(readLat, 0.50), loadPercentile(readLat, 0.99)
	ip50, ip99 := loadPercentile(identLat, 0.50), loadPercentile(identLat, 0.99)
	np50, np99 := loadPercentile(nameLat, 0.50), loadPercentile(nameLat, 0.99)
	sum := 0
	for _, t := range totals {
		sum += t
	}
	avgTotal := float64(sum) / float64(nameSearches)
	slices.Sort(totals)

	b.ReportMetric(float64(patients), "patients")
	b.ReportMetric(loadMS(rp50), "read-p50-ms")
	b.ReportMetric(loadMS(rp99), "read-p99-ms")
	b.ReportMetric(loadMS(ip50), "ident-p50-ms")
	b.ReportMetric(loadMS(ip99), "ident-p99-ms")
	b.ReportMetric(loadMS(np50), "name-p50-ms")
	b.ReportMetric(loadMS(np99), "name-p99-ms")
	b.ReportMetric(avgTotal, "name-avg-total")
	b.ReportMetric(peak, "peak-rss-MB")
	b.ReportMetric(float64(heapInuse)/(1<<20), "heap-inuse-MB")

	b.Logf("queries: load average %s at the start, %s at the end (a busy machine shows in the p99s)", queryLoad, loadAvg())
	b.Logf("read by id: %d sequential: p50 %.3f ms (target ≤ 0.5), p99 %.3f ms (target ≤ 2)", reads, loadMS(rp50), loadMS(rp99))
	b.Logf("identifier search: %d: p50 %.3f ms, p99 %.3f ms (target ≤ 5)", identSearches, loadMS(ip50), loadMS(ip99))
	b.Logf("name-prefix first page: %d: p50 %.3f ms, p99 %.3f ms (target ≤ 5); total per search: average %.0f, median %d, p99 %d, max %d; average entries on the page %.1f",
		nameSearches, loadMS(np50), loadMS(np99), avgTotal, totals[len(totals)/2], totals[len(totals)*99/100], totals[len(totals)-1], float64(entries)/float64(nameSearches))
	b.Logf("memory: peak RSS %.0f MB (target ≤ 200; server and benchmark client in one process; %.0f MB before the queries), heap in use after the load %.0f MB (%.0f MB before a forced GC)",
		peak, rssAfterIngest, float64(heapInuse)/(1<<20), float64(heapBeforeGC)/(1<<20))
	b.Logf("database: %.0f MB (%.1f KB per patient)", float64(dbBytes)/(1<<20), float64(dbBytes)/1024/float64(patients))
}

// loadIngest posts the shared bundle, then patients' bundles from clients goroutines, and reports
// the ingest figures.
func loadIngest(b *testing.B, data *loadgen.Data, call func(method, path string, body []byte) (int, []byte, time.Duration, error), patients, clients int, profDir, dbURL string) {
	if status, body, _, err := call("POST", "/praxis/Bundle", data.SharedBundle()); err != nil || status != http.StatusOK {
		b.Fatalf("shared bundle: %d %v\n%s", status, err, body)
	}
	stopProfile := loadProfile(b, profDir, "ingest")
	cpu0, gc0, pg0, load0 := loadCPU(), loadGCs(), loadPostgresCPU(), loadAvg()
	backends := loadBackendCPU(b, dbURL)
	var (
		next      atomic.Int64
		done      atomic.Int64
		failed    atomic.Pointer[string]
		latencies = make([]time.Duration, patients)
		wg        sync.WaitGroup
	)
	start := time.Now()
	progress := time.NewTicker(10 * time.Second)
	stopProgress := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopProgress:
				return
			case <-progress.C:
				n := done.Load()
				el := time.Since(start).Seconds()
				fmt.Fprintf(os.Stderr, "load: %d/%d patients in %.0fs, %.0f resources/s, RSS peak %.0f MB\n", n, patients, el, float64(4*n)/el, loadPeakRSSMB())
			}
		}
	}()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= patients {
					return
				}
				status, body, d, err := call("POST", "/praxis/Bundle", data.Bundle(i))
				if err == nil && status == http.StatusOK && strings.Count(string(body), `<status value="201 Created"/>`) != 4 {
					err = errors.New("not 4 resources created")
				}
				if err != nil || status != http.StatusOK {
					msg := fmt.Sprintf("bundle of patient %d: %d %v\n%.4000s", i, status, err, body)
					failed.CompareAndSwap(nil, &msg)
					return
				}
				latencies[i] = d
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	ingest := time.Since(start)
	progress.Stop()
	close(stopProgress)
	stopProfile()
	if msg := failed.Load(); msg != nil {
		b.Fatal(*msg)
	}
	cpu, gcs, pg, db := loadCPU()-cpu0, loadGCs()-gc0, loadPostgresCPU()-pg0, backends()
	resPerSec := float64(4*patients) / ingest.Seconds()
	p50, p99 := loadPercentile(latencies, 0.50), loadPercentile(latencies, 0.99)
	fmt.Fprintf(os.Stderr, "load: ingest done in %s\n", ingest.Round(time.Millisecond))

	b.ReportMetric(resPerSec, "ingest-res/s")
	b.ReportMetric(loadMS(p50), "ingest-bundle-p50-ms")
	b.ReportMetric(loadMS(p99), "ingest-bundle-p99-ms")
	b.Logf("ingest: %d patients (%d resources) by %d clients in %s: %.0f resources/s (target ≥ 4000); bundle p50 %.2f ms, p99 %.2f ms",
		patients, 4*patients, clients, ingest.Round(time.Millisecond), resPerSec, loadMS(p50), loadMS(p99))
	b.Logf("ingest: this process used %.1f CPU-s in %.1f s (%.2f of %d cores), PostgreSQL processes %.1f CPU-s (%.2f cores); %d GCs; load average %s at the start, %s at the end",
		cpu.Seconds(), ingest.Seconds(), cpu.Seconds()/ingest.Seconds(), runtime.NumCPU(), pg.Seconds(), pg.Seconds()/ingest.Seconds(), gcs, load0, loadAvg())
	b.Logf("ingest: per bundle %.2f ms CPU in this process (server and client), %.2f ms in PostgreSQL (%.2f ms in the backends of this database, which other users of the server do not change)",
		loadMS(cpu)/float64(patients), loadMS(pg)/float64(patients), loadMS(db)/float64(patients))
	b.ReportMetric(loadMS(db)/float64(patients), "ingest-pg-backend-ms/bundle")
}

// loadReadData reads the benchmark's patients' templates from testdata/load.
func loadReadData(t testing.TB) *loadgen.Data {
	t.Helper()
	d, err := loadgen.ReadData(filepath.Join("..", "..", "testdata", "load"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// loadServe starts red serve like instance.serve, but keeps only the tail of the server's
// request log: a line per request would otherwise pile up in memory and count as RSS.
func loadServe(t testing.TB, in *instance, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	tail := &loadgen.Tail{}
	s := &server{done: make(chan error, 1)}
	go func() {
		err := cli.Run(ctx, in.serving(append(args, "--port", "0")...), cli.IO{In: strings.NewReader(""), Out: pw, Err: tail})
		pw.Close()
		s.done <- err
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			_, _ = tail.Write(append(sc.Bytes(), '\n'))
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case base, ok := <-found:
		if !ok {
			cancel()
			t.Fatalf("red serve ended before listening: %v\n%s", <-s.done, tail)
		}
		s.base = base
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("red serve did not start:\n%s", tail)
	}
	var once sync.Once
	var result error
	s.stop = func() error {
		once.Do(func() { cancel(); result = <-s.done })
		return result
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Logf("red serve: %v\n%s", err, tail)
		}
	})
	return s
}

// loadCall sends one request and reads the whole answer; d is the time until the last byte.
func loadCall(c *http.Client, method, u string, body []byte) (status int, resp []byte, d time.Duration, err error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		return 0, nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", fhirXML)
	}
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	resp, err = io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, resp, time.Since(start), err
}

var loadTotalRE = regexp.MustCompile(`<total value="(\d+)"/>`)

func loadTotal(body []byte) int {
	m := loadTotalRE.FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// loadPercentile is the nearest-rank percentile q of ds (which it sorts).
func loadPercentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[max(int(math.Ceil(q*float64(len(ds))))-1, 0)]
}

func loadMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func loadEnvInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a whole number from 1", name, v)
	}
	return n
}

// loadPeakRSSMB is the process's peak resident set (Linux reports ru_maxrss in KiB).
func loadPeakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Maxrss) / 1024
}

// loadCPU is the CPU time (user and system) the process has used.
func loadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadPostgresCPU is the CPU time of the machine's PostgreSQL processes (Linux, best effort):
// user and system time of every process named postgres plus what the postmaster collected from
// children that ended. Other users of the same server count too.
func loadPostgresCPU() time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var cpu time.Duration
	for _, d := range dirs {
		if d.Name()[0] >= '0' && d.Name()[0] <= '9' {
			cpu += loadProcessCPU(d.Name(), "postgres", true)
		}
	}
	return cpu
}

// loadProcessCPU is the user and system time of process pid when it is named name (Linux, best
// effort; 0 otherwise), with the time of its ended children when children is set.
func loadProcessCPU(pid, name string, children bool) time.Duration {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || string(stat[open+1:end]) != name {
		return 0
	}
	f := strings.Fields(string(stat[end+1:])) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0
	}
	fields := []int{11, 12} // utime, stime
	if children {
		fields = append(fields, 13, 14) // cutime, cstime
	}
	var ticks int64
	for _, k := range fields {
		n, _ := strconv.ParseInt(f[k], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ
}

// loadBackendCPU starts measuring the CPU time of the PostgreSQL backends connected to the
// database of dbURL — red's, not other users' of the same server — and returns what ends the
// measurement. The backends are looked at every half second, so that one that ends is counted
// until then; the server's own processes (WAL writer, checkpointer), which all databases share,
// are not counted.
func loadBackendCPU(t testing.TB, dbURL string) func() time.Duration {
	first := loadBackends(t, dbURL)
	last := maps.Clone(first)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			maps.Copy(last, loadBackends(t, dbURL))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() time.Duration {
		close(stop)
		<-stopped
		var d time.Duration
		for pid, cpu := range last {
			d += cpu - first[pid]
		}
		return d
	}
}

// loadBackends is the CPU time so far of each backend connected to the database of dbURL but
// the one asking.
func loadBackends(t testing.TB, dbURL string) map[string]time.Duration {
	out := map[string]time.Duration{}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Logf("backends: %v", err)
		return out
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		t.Logf("backends: %v", err)
		return out
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Logf("backends: %v", err)
	}
	for _, pid := range pids {
		id := strconv.Itoa(int(pid))
		out[id] = loadProcessCPU(id, "postgres", false)
	}
	return out
}

// loadAvg is the one-minute load average (Linux, best effort).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func loadGCs() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

// loadProfile starts a CPU profile of one phase when dir is set and returns its stop function.
func loadProfile(t testing.TB, dir, phase string) func() {
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, phase+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		t.Fatalf("cpu profile (is -cpuprofile set too?): %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func loadWriteHeap(t testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}

func loadDatabaseSize(t testing.TB, dbURL string) int64 {
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Logf("database size: %v", err)
		return 0
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
		t.Logf("database size: %v", err)
	}
	return n
}

func loadExec(t testing.TB, dbURL, sql string) {
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

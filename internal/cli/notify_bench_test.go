package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkNotify posts 10-patient bundles over HTTP to a running red with 0, 1 and 10
// Subscriptions that each select every Patient (id-only), on each backend, and waits until every
// notification was received by a webhook receiver on loopback. It reports the throughput in
// resources/s (posting and delivering all: the goal is that 10 subscriptions cost at most 15 %
// of the throughput without any) and, with subscriptions, the latency from the commit (the
// POST's answer) to the first subscription's receipt, p50 and p99 in ms. As the machine may be
// shared, it also reports the CPU time per bundle of this process (red and the receivers;
// cpu-ms/bundle) and of the machine's PostgreSQL processes (pg-cpu-ms/bundle, where others count
// too), and what the store wrote: this process's write syscalls (write-kB/bundle: SQLite's WAL
// and checkpoints, and the HTTP traffic) and PostgreSQL's WAL (pg-wal-kB/bundle, server-wide).
// With RED_BENCH_PROFILE_DIR set it writes a CPU profile per backend and level, in which the
// receivers' samples carry the label role=receiver and the deliverer's role=deliver. The levels
// run one after the other on a seeded database (see seeded); on a machine others share, where
// the load changes from level to level, BenchmarkNotifyOverhead tells the cost more reliably.
func BenchmarkNotify(b *testing.B) {
	profDir := os.Getenv("RED_BENCH_PROFILE_DIR")
	onEachBackend(b, func(b *testing.B, in *instance) {
		backend := "sqlite"
		if in.dbURL != "" {
			backend = "postgres"
		}
		srv, bundle := seeded(b, in)
		var ids []string
		for _, want := range []int{0, 1, 10} {
			var mu sync.Mutex
			received := map[string]map[int]time.Time{} // path → sequence number → when
			var hook *httptest.Server
			// the receivers' goroutines inherit the label (the profile tells their share)
			pprof.Do(context.Background(), pprof.Labels("role", "receiver"), func(context.Context) {
				hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					seq, _ := strconv.Atoi(r.Header.Get("X-Red-Sequence"))
					mu.Lock()
					if received[r.URL.Path] == nil {
						received[r.URL.Path] = map[int]time.Time{}
					}
					received[r.URL.Path][seq] = time.Now()
					mu.Unlock()
					w.WriteHeader(http.StatusNoContent)
				}))
			})
			for _, id := range ids { // the last level's, sending to its closed receiver
				if status, body := srv.do(b, "DELETE", "/praxis/Subscription/"+id, "", nil); status != http.StatusNoContent {
					b.Fatal(status, body)
				}
			}
			ids = ids[:0]
			for k := range want {
				status, body := srv.do(b, "POST", "/praxis/Subscription", fhirXML, subscriptionBody("Patient", fmt.Sprintf("%s/hook/%d", hook.URL, k)))
				if status != http.StatusCreated {
					b.Fatal(status, body)
				}
				ids = append(ids, between(body, `<id value="`, `"`))
			}
			b.Run(fmt.Sprintf("subscriptions=%d", want), func(b *testing.B) {
				mu.Lock()
				clear(received)
				mu.Unlock()
				committed := make([]time.Time, b.N)
				prefix := strconv.FormatInt(time.Now().UnixNano(), 36)
				stop := loadProfile(b, profDir, fmt.Sprintf("notify-%s-%d", backend, want))
				cpu, pgCPU, written, pgWAL := loadCPU(), loadPostgresCPU(), writtenBytes(), postgresWAL(b, in.dbURL)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if status, body := srv.do(b, "POST", "/praxis/Bundle", fhirXML, bundle(prefix, i)); status != http.StatusOK {
						b.Fatal(status, body)
					}
					committed[i] = time.Now()
				}
				// every subscription received every bundle's notification
				for deadline := time.Now().Add(2 * time.Minute); want > 0; time.Sleep(time.Millisecond) {
					mu.Lock()
					done := len(received) == want
					for _, got := range received {
						done = done && len(got) >= b.N
					}
					mu.Unlock()
					if done {
						break
					}
					if time.Now().After(deadline) {
						mu.Lock()
						counts := map[string]int{}
						for path, got := range received {
							counts[path] = len(got)
						}
						mu.Unlock()
						_, subs := srv.do(b, "GET", "/praxis/Subscription", "", nil)
						b.Fatalf("not every notification arrived: %v of %d each\n%s", counts, b.N, subs)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "resources/s")
				b.ReportMetric(float64((loadCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/bundle")
				b.ReportMetric(float64(writtenBytes()-written)/1024/float64(b.N), "write-kB/bundle")
				if backend == "postgres" {
					b.ReportMetric(float64((loadPostgresCPU()-pgCPU).Microseconds())/1000/float64(b.N), "pg-cpu-ms/bundle")
					b.ReportMetric(float64(postgresWAL(b, in.dbURL)-pgWAL)/1024/float64(b.N), "pg-wal-kB/bundle")
				}
				stop()
				if want == 0 {
					return
				}
				// the first subscription's sequence numbers follow the bundles: its notification n
				// is about bundle n-1 (posted one after the other)
				mu.Lock()
				first := received["/hook/0"]
				mu.Unlock()
				base := -1 // sequence numbers continue from the earlier runs of this level
				for seq := range first {
					if base < 0 || seq-1 < base {
						base = seq - 1
					}
				}
				lat := make([]float64, 0, b.N)
				for i := 0; i < b.N; i++ {
					if at, ok := first[base+i+1]; ok {
						lat = append(lat, float64(at.Sub(committed[i]).Microseconds())/1000)
					}
				}
				slices.Sort(lat)
				if len(lat) > 0 {
					b.ReportMetric(lat[len(lat)/2], "p50-ms")
					b.ReportMetric(lat[min(len(lat)-1, len(lat)*99/100)], "p99-ms")
				}
			})
			hook.Close()
		}
	})
}

// notifySeed is the number of 10-patient bundles posted before a notification benchmark.
const notifySeed = 1000

// seeded starts red serve on in with notifySeed 10-patient bundles stored, so that what is
// measured writes into a database of some size (an empty one's indexes are cheaper to write
// into than those found later), and returns it with the function that makes bundle i of a run
// (ids made unique by prefix).
func seeded(b *testing.B, in *instance) (*server, func(prefix string, i int) []byte) {
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	ten := tenPatients(b)
	bundle := func(prefix string, i int) []byte { return ten("n"+prefix+"-", i) }
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < notifySeed; i += 4 {
				if status, body := srv.do(b, "POST", "/praxis/Bundle", fhirXML, bundle("seed", i)); status != http.StatusOK {
					b.Error(status, body)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return srv, bundle
}

// notifyBlock is the number of bundles BenchmarkNotifyOverhead posts in a row with the
// subscriptions active, or paused.
const notifyBlock = 100

// BenchmarkNotifyOverhead measures what 10 subscriptions that each select every Patient
// (id-only) cost the ingest of 10-patient bundles over HTTP, on each backend, in a way that a
// machine others share does not distort: blocks of notifyBlock bundles alternate between the
// subscriptions active — a block ends when every notification of it was received by the
// webhook receiver on loopback — and paused (status off: nothing is collected for them), so that
// a change of the machine's load falls on both alike. It reports the throughput of each
// (resources/s-off, resources/s-on) and what the subscriptions cost in % of the throughput
// without them (overhead-%; the goal is at most 15).
func BenchmarkNotifyOverhead(b *testing.B) {
	onEachBackend(b, func(b *testing.B, in *instance) {
		srv, bundle := seeded(b, in)
		var mu sync.Mutex
		received := 0
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			received++
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}))
		defer hook.Close()
		const subs = 10
		ids := make([]string, subs)
		for k := range ids {
			status, body := srv.do(b, "POST", "/praxis/Subscription", fhirXML, subscriptionBody("Patient", fmt.Sprintf("%s/hook/%d", hook.URL, k)))
			if status != http.StatusCreated {
				b.Fatal(status, body)
			}
			ids[k] = between(body, `<id value="`, `"`)
		}
		set := func(status string) {
			for k, id := range ids {
				body := strings.Replace(string(subscriptionBody("Patient", fmt.Sprintf("%s/hook/%d", hook.URL, k))), `"requested"`, `"`+status+`"`, 1)
				if code, answer := srv.do(b, "PUT", "/praxis/Subscription/"+id, fhirXML, []byte(body)); code != http.StatusOK {
					b.Fatal(code, answer)
				}
			}
		}
		var on, off time.Duration
		posted, prefix := 0, strconv.FormatInt(time.Now().UnixNano(), 36)
		b.ResetTimer()
		for block := 0; posted < b.N; block++ {
			// the order within a pair alternates, so that a trend in the load favours neither
			for _, active := range []bool{block%2 == 0, block%2 == 1} {
				b.StopTimer()
				if active {
					set("active")
				} else {
					set("off")
				}
				mu.Lock()
				want := received + notifyBlock*subs
				mu.Unlock()
				b.StartTimer()
				start := time.Now()
				for i := range notifyBlock {
					if status, body := srv.do(b, "POST", "/praxis/Bundle", fhirXML, bundle(prefix, posted+i)); status != http.StatusOK {
						b.Fatal(status, body)
					}
				}
				for deadline := time.Now().Add(2 * time.Minute); active; time.Sleep(time.Millisecond) {
					mu.Lock()
					done := received >= want
					mu.Unlock()
					if done {
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("not every notification arrived")
					}
				}
				if active {
					on += time.Since(start)
				} else {
					off += time.Since(start)
				}
				posted += notifyBlock
			}
		}
		b.StopTimer()
		perSecond := func(d time.Duration) float64 { return float64(posted/2*10) / d.Seconds() }
		b.ReportMetric(perSecond(off), "resources/s-off")
		b.ReportMetric(perSecond(on), "resources/s-on")
		b.ReportMetric(100*(1-perSecond(on)/perSecond(off)), "overhead-%")
	})
}

// writtenBytes is what this process has written with write syscalls (Linux: /proc/self/io
// wchar; 0 elsewhere).
func writtenBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// postgresWAL is the WAL the PostgreSQL server at url has written (pg_stat_wal, server-wide);
// 0 without a url.
func postgresWAL(t testing.TB, url string) int64 {
	if url == "" {
		return 0
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT wal_bytes::bigint FROM pg_stat_wal").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

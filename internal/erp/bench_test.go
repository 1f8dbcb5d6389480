package erp

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/internal/vault/vaulttest"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/postgres/pgtest"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// TestMain stops the throwaway PostgreSQL cluster BenchmarkTaskPoll may have started.
func TestMain(m *testing.M) {
	defer pgtest.Stop()
	m.Run()
}

// timed adds up the time spent in the TI simulators (Fachdienst and Konnektor calls).
type timed struct {
	mu sync.Mutex
	d  time.Duration
}

func (t *timed) add(start time.Time) {
	t.mu.Lock()
	t.d += time.Since(start)
	t.mu.Unlock()
}

type timedFachdienst struct {
	Fachdienst
	t *timed
}

func (f timedFachdienst) Create(ctx context.Context, flow int) (fachdienst.Task, error) {
	defer f.t.add(time.Now())
	return f.Fachdienst.Create(ctx, flow)
}

func (f timedFachdienst) Activate(ctx context.Context, id, ac string, signed []byte) (fachdienst.Task, error) {
	defer f.t.add(time.Now())
	return f.Fachdienst.Activate(ctx, id, ac, signed)
}

type timedSigner struct {
	Signer
	t *timed
}

func (s timedSigner) SignDocuments(ctx context.Context, card string, docs []konnektor.Document) ([]konnektor.Signature, error) {
	defer s.t.add(time.Now())
	return s.Signer.SignDocuments(ctx, card, docs)
}

// BenchmarkProcess100 queues 100 prescriptions and runs one batch ($processerp) against the
// simulators over loopback HTTP: the time per prescription, and red's share of it (the rest is
// the simulators' work and the HTTP between them).
func BenchmarkProcess100(b *testing.B) {
	var total, inTI time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b)
		tm := &timed{}
		s := &Service{Store: w.store, Fachdienst: timedFachdienst{w.fd, tm}, Signer: timedSigner{w.k, tm}}
		for i := range 100 {
			if err := s.Queue(b.Context(), prescription(b, fmt.Sprintf("mr-%03d", i))); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		ps, err := s.Process(b.Context(), hba)
		if err != nil || len(ps) != 100 || ps[99].State != Activated {
			b.Fatalf("%v, %d", err, len(ps))
		}
		total += time.Since(start)
		inTI += tm.d
		n++
	}
	b.ReportMetric(float64(total.Microseconds())/float64(n*100)/1000, "ms/prescription")
	b.ReportMetric(100*float64(total-inTI)/float64(total), "%red")
}

// BenchmarkTaskPoll stores 10,000 activated prescriptions spread over 30 days and polls as a
// practice system does — the last quarter hour, the last day, a week — and the whole time (page
// 1 and the last page), reporting p50 and p99 per poll, on SQLite and on PostgreSQL.
func BenchmarkTaskPoll(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) {
		store, _ := vaulttest.Barrier(b)
		benchmarkTaskPoll(b, store, func() {})
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		url := pgtest.URL(b)
		st, err := postgres.Open(b.Context(), url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		benchmarkTaskPoll(b, vaulttest.On(b, st), func() {
			// the state autovacuum brings a table to within a minute of a bulk load: statistics,
			// and a visibility map that lets index-only scans skip the heap
			conn, err := pgx.Connect(b.Context(), url)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(b.Context())
			if _, err := conn.Exec(b.Context(), "VACUUM ANALYZE"); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// benchmarkTaskPoll loads the prescriptions into store, calls settle and polls.
func benchmarkTaskPoll(b *testing.B, store *vault.Barrier, settle func()) {
	s := &Service{Store: store}
	ctx := b.Context()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, Berlin)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 10000
	for i := 0; i < n; i += 500 {
		var writes []vault.Write
		for j := i; j < i+500; j++ {
			p := Prescription{ID: fmt.Sprintf("mr-%05d", j), State: Activated, TaskID: fmt.Sprintf("160.000.000.%03d.%03d.00", j/1000, j%1000),
				AccessCode: fmt.Sprintf("%064x", j), SignedDay: "2026-11-01", Activated: start.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))}
			body, _ := json.Marshal(p)
			index := []vault.Term{{Index: "state", Value: string(Activated)}}
			for _, tok := range timeTokens(p.Activated) {
				index = append(index, vault.Term{Index: "at", Value: tok})
			}
			writes = append(writes, vault.Write{Type: recordType, ID: p.ID, Updated: time.Now().UTC(), Body: body, Index: index})
		}
		if err := store.Commit(ctx, writes); err != nil {
			b.Fatal(err)
		}
	}
	settle()
	end := start.Add(30 * 24 * time.Hour)
	s.Now = func() time.Time { return end }
	for _, q := range []struct {
		name     string
		from, to time.Time
		page     int
	}{
		{"last-15-minutes", end.Add(-15 * time.Minute), time.Time{}, 1},
		{"last-day", end.Add(-24 * time.Hour), time.Time{}, 1},
		{"a-week-page-5", end.Add(-8*24*time.Hour + 13*time.Minute), end.Add(-24*time.Hour - 7*time.Minute), 5},
		{"all-page-1", time.Time{}, time.Time{}, 1},
		{"all-page-900", time.Time{}, time.Time{}, 900},
	} {
		b.Run(q.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				_, total, err := s.Tasks(ctx, q.from, q.to, q.page)
				lat = append(lat, time.Since(t0))
				if err != nil || total == 0 {
					b.Fatalf("%v, total %d", err, total)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

package storetest

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/redclone/red/storage"
)

// clients is the number of concurrent callers of the parallel benchmarks: the 8 clients of
// the load measurements (issue #12).
const clients = 8

// runClients runs body in clients goroutines at once (b.RunParallel with the parallelism
// that gives clients goroutines on this machine's GOMAXPROCS).
func runClients(b *testing.B, body func(pb *testing.PB)) {
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(body)
}

// BenchmarkCommitParallel measures Commit from 8 concurrent callers, each committing one new
// Patient at a time with 2 KiB of sealed bytes and twelve tokens (what creating a one-patient
// bundle writes), into the store newStore returns.
func BenchmarkCommitParallel(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	mustCreateTenant(b, s, "bench")
	sealed := make([]byte, 2048)
	var n atomic.Uint64
	b.ResetTimer()
	runClients(b, func(pb *testing.PB) {
		for pb.Next() {
			m := n.Add(1)
			c := benchChange(m, sealed)
			for i := range 8 { // tokens shared by 1, 2, 4, … 128 patients
				c.Tokens = append(c.Tokens, fmt.Appendf(nil, "t%d:%d", i, m>>i))
			}
			if err := s.Commit(b.Context(), "bench", []storage.Change{c}); err != nil {
				b.Errorf("Commit: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkCurrent measures Current (a read by id) among 10,000 resources of 2 KiB, from one
// caller and from 8 concurrent callers.
func BenchmarkCurrent(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	mustCreateTenant(b, s, "bench")
	const total = 10000
	load(b, s, total)
	read := func(b *testing.B, n uint64) {
		id := benchChange(n%total, nil).ID
		r, err := s.Current(b.Context(), "bench", "Patient", id)
		if err != nil || r.Version != 1 || len(r.Sealed) != 2048 {
			b.Fatalf("Current = version %d, %d sealed bytes, %v", r.Version, len(r.Sealed), err)
		}
	}
	b.Run("1 client", func(b *testing.B) {
		n := uint64(0)
		for b.Loop() {
			n += 7919
			read(b, n)
		}
	})
	b.Run("8 clients", func(b *testing.B) {
		var n atomic.Uint64
		runClients(b, func(pb *testing.PB) {
			for pb.Next() {
				read(b, n.Add(7919))
			}
		})
	})
}

// BenchmarkFindParallel measures Find by a token one resource carries among 10,000 (an
// identifier search) from 8 concurrent callers.
func BenchmarkFindParallel(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	mustCreateTenant(b, s, "bench")
	const total = 10000
	load(b, s, total)
	b.Run("unique token, 8 clients", func(b *testing.B) {
		var n atomic.Uint64
		runClients(b, func(pb *testing.PB) {
			for pb.Next() {
				q := storage.Query{Type: "Patient", All: [][][]byte{{fmt.Appendf(nil, "id:%d", n.Add(7919)%total)}}, Limit: 20}
				page, err := s.Find(b.Context(), "bench", q)
				if err != nil || page.Total != 1 || len(page.Records) != 1 {
					b.Errorf("Find = %d of %d, %v", len(page.Records), page.Total, err)
					return
				}
			}
		})
	})
}

// load commits resources 0 … total-1 of the benchmarks (benchChange) in batches of 500.
func load(b *testing.B, s storage.Store, total uint64) {
	sealed := make([]byte, 2048)
	for from := uint64(0); from < total; from += 500 {
		changes := make([]storage.Change, 0, 500)
		for n := from; n < min(from+500, total); n++ {
			changes = append(changes, benchChange(n, sealed))
		}
		if err := s.Commit(b.Context(), "bench", changes); err != nil {
			b.Fatalf("Commit: %v", err)
		}
	}
}

package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records latencies in microseconds, as wrk does: exactly below 128 µs, above that in
// buckets 1/64 of their magnitude wide (an error of at most 1.6 %), in constant memory however
// many requests a phase makes. The zero value is empty and ready; it is not safe for concurrent
// use (each client keeps its own, Merge adds them up).
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    uint64 // µs
}

const (
	exact       = 128 // values below are their own bucket
	perOctave   = 64  // buckets per doubling above exact
	histBuckets = exact + (64-7)*perOctave
)

// bucket is the index of the bucket that holds v µs.
func bucket(v uint64) int {
	if v < exact {
		return int(v)
	}
	e := bits.Len64(v) - 7 // v>>e is in [64, 128)
	return exact + (e-1)*perOctave + int(v>>e) - perOctave
}

// upper is the largest value bucket i holds.
func upper(i int) uint64 {
	if i < exact {
		return uint64(i)
	}
	e := (i-exact)/perOctave + 1
	m := uint64((i-exact)%perOctave + perOctave)
	return (m+1)<<e - 1
}

// Record counts one latency.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0) / time.Microsecond)
	h.counts[bucket(v)]++
	h.n++
	h.max = max(h.max, v)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Percentile is the latency below or at which a fraction q (0 < q ≤ 1) of the recorded ones lie:
// the upper end of the bucket that holds the nearest-rank value, never more than the largest
// value recorded; 0 when the histogram is empty.
func (h *Histogram) Percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := min(max(uint64(math.Ceil(q*float64(h.n))), 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return time.Duration(min(upper(i), h.max)) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

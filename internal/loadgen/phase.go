package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Request is one request of a phase; Body is nil for a GET.
type Request struct {
	Method, Path string
	Body         []byte
}

// Phase is a run of Clients concurrent keep-alive clients, each sending the requests Next gives
// it one after the other, as fast as the server answers (wrk's closed loop), for Duration (0: no
// limit) or until Next has no more.
type Phase struct {
	Clients  int
	Duration time.Duration
	// Next makes a client's next request, or reports that there are no more; rng is the client's
	// own.
	Next func(rng *rand.Rand) (Request, bool)
}

// Result is what a phase measured.
type Result struct {
	Requests  uint64        // answered, errors included
	Errors    uint64        // answers other than 2xx, and requests that failed
	FirstErr  string        // the first error, for the report
	Elapsed   time.Duration // from the first request to the end of the last
	P50, P99  time.Duration // latency percentiles
	Latencies Histogram     // the Go generator's (Phase.Run): every latency
	CPU       time.Duration // red's processor time during the run (0: not measured)
}

// Rate is the requests answered per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// CPUPerRequest is red's processor time per request answered (0: not measured).
func (r Result) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// NewClient is an HTTP client for clients concurrent connections that are kept alive.
func NewClient(clients int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        clients,
		MaxIdleConnsPerHost: clients,
		DisableCompression:  true,
	}}
}

// Run runs the phase against base (a URL the requests' paths are appended to) with c. A client
// stops after the request it is in when the duration is over or ctx ends.
func (p Phase) Run(ctx context.Context, c *http.Client, base string) Result {
	seed := uint64(time.Now().UnixNano())
	return runClients(ctx, p.Clients, p.Duration, func(ctx context.Context, k int, r *Result) {
		rng := rand.New(rand.NewPCG(uint64(k), seed))
		for ctx.Err() == nil {
			req, ok := p.Next(rng)
			if !ok {
				return
			}
			t := time.Now()
			err := Do(c, base, req)
			r.record(time.Since(t), err)
		}
	})
}

// runClients runs n clients at once, client k recording into a Result of its own, until all
// have returned, and totals their results; d > 0 ends their ctx after d.
func runClients(ctx context.Context, n int, d time.Duration, client func(ctx context.Context, k int, r *Result)) Result {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	results := make([]Result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for k := range results {
		wg.Go(func() { client(ctx, k, &results[k]) })
	}
	wg.Wait()
	return total(results, time.Since(start))
}

// record counts a request that took d and ended with err.
func (r *Result) record(d time.Duration, err error) {
	r.Latencies.Record(d)
	r.Requests++
	if err != nil {
		r.Errors++
		if r.FirstErr == "" {
			r.FirstErr = err.Error()
		}
	}
}

// total is the clients' results of a phase that took elapsed together.
func total(results []Result, elapsed time.Duration) Result {
	t := Result{Elapsed: elapsed}
	for _, r := range results {
		t.Requests += r.Requests
		t.Errors += r.Errors
		if t.FirstErr == "" {
			t.FirstErr = r.FirstErr
		}
		t.Latencies.Merge(&r.Latencies)
	}
	t.P50, t.P99 = t.Latencies.Percentile(0.5), t.Latencies.Percentile(0.99)
	return t
}

// Do sends req and reads the whole answer; an answer other than 2xx is an error that quotes its
// beginning.
func Do(c *http.Client, base string, req Request) error {
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	r, err := http.NewRequest(req.Method, base+req.Path, body)
	if err != nil {
		return err
	}
	if req.Body != nil {
		r.Header.Set("Content-Type", "application/fhir+xml")
	}
	res, err := c.Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		head, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		_, _ = io.Copy(io.Discard, res.Body)
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.Path, res.Status, bytes.Join(bytes.Fields(head), []byte(" ")))
	}
	_, err = io.Copy(io.Discard, res.Body)
	return err
}

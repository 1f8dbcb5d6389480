package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

// Config is the shape of a load.
type Config struct {
	Red         string        // the red binary
	Data        *Data         // the patients
	Patients    int           // seeded before the phases
	SeedClients int           // concurrent clients of the seed
	Duration    time.Duration // of each phase
	Repeat      int           // runs of each phase; the report gives their medians
	Clients     []int         // the phases' numbers of concurrent clients
	Progress    io.Writer     // a line per step
	Wrk         *Wrk          // drives the phases; nil: the Go generator (Phase) does
}

// operations are the phases' requests, in the order they run.
var operations = []struct {
	name string
	op   Op
}{{"read by id", OpRead}, {"search identifier=sys|val", OpSearch}, {"create (1-patient bundle)", OpCreate}}

// target is what the phases' requests are made from: the seeded patients 0 to patients-1, and the
// next number of a patient not yet created.
type target struct {
	data     *Data
	patients int
	fresh    atomic.Int64
}

// request is an op's request for patient i (a seeded one, except for OpCreate).
func (t *target) request(op Op, i int) Request {
	switch op {
	case OpRead:
		return Request{Method: "GET", Path: "/Patient/" + PatientID(i)}
	case OpSearch:
		return Request{Method: "GET", Path: "/Patient?identifier=" + kvnrSystem + KVNR(i)}
	}
	return Request{Method: "POST", Path: "/Bundle", Body: t.data.Bundle(i)}
}

// next is the Go generator's next request of op: a random seeded patient, or a new one.
func (t *target) next(op Op, rng *rand.Rand) Request {
	if op == OpCreate {
		return t.request(op, int(t.fresh.Add(1)-1))
	}
	return t.request(op, rng.IntN(t.patients))
}

// StoreReport is what a load measured on one store.
type StoreReport struct {
	Store     string // "sqlite" or "postgres"
	StartRSS  int64  // peak resident set from the server's start (unlocking included) until it listened
	Seed      Result // one request per patient
	SeedRSS   int64  // peak resident set during the seed
	Phases    []PhaseReport
	PhasesRSS int64 // peak resident set during all phases
	RSSNote   string
	LoadAvg   [2]string // at the start and the end
}

// PhaseReport is the runs of one operation at one number of clients.
type PhaseReport struct {
	Operation string
	Clients   int
	Runs      []Result
	PeakRSS   int64 // during these runs
}

// Run starts red on the store (databaseURL "" is the embedded store), seeds it and runs every
// phase, Repeat times each.
func Run(ctx context.Context, c Config, store, databaseURL string) (rep StoreReport, err error) {
	rep = StoreReport{Store: store}
	rep.LoadAvg[0] = LoadAverage()
	say := func(format string, args ...any) {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "load %s: "+format+"\n", append([]any{store}, args...)...)
		}
	}
	red, err := StartRed(ctx, c.Red, databaseURL)
	if err != nil {
		return rep, err
	}
	defer func() {
		if stopErr := red.Stop(); err == nil && stopErr != nil {
			err = fmt.Errorf("stop red: %w", stopErr)
		}
	}()
	pid := red.Pid()
	rep.StartRSS, _ = PeakRSS(pid)
	say("red listening at %s (peak RSS so far %s); seeding %d patients with %d clients", red.Base, MB(rep.StartRSS), c.Patients, c.SeedClients)
	if err := ResetPeakRSS(pid); err != nil {
		rep.RSSNote = fmt.Sprintf("the peak resident set could not be reset (%v): every peak counts from red's start", err)
	}

	client := NewClient(max(c.SeedClients, slicesMax(c.Clients)))
	if err := Do(client, red.Base, Request{Method: "POST", Path: "/Bundle", Body: c.Data.SharedBundle()}); err != nil {
		return rep, fmt.Errorf("shared bundle: %w", err)
	}
	rep.Seed = seed(ctx, client, red.Base, c)
	rep.SeedRSS, _ = PeakRSS(pid)
	_ = ResetPeakRSS(pid)
	if rep.Seed.Errors > 0 {
		return rep, fmt.Errorf("seed: %d of %d bundles failed, the first: %s\n%s", rep.Seed.Errors, rep.Seed.Requests, rep.Seed.FirstErr, red.Log())
	}
	say("seeded in %s: %.0f bundles/s; peak RSS %s", rep.Seed.Elapsed.Round(time.Millisecond), rep.Seed.Rate(), MB(rep.SeedRSS))

	t := &target{data: c.Data, patients: c.Patients}
	t.fresh.Store(int64(c.Patients))
	for _, op := range operations {
		// one request first, from Go: when red refuses it, the error quotes red's answer
		probe := t.request(op.op, 0)
		if op.op == OpCreate {
			probe = t.next(op.op, nil)
		}
		if err := Do(client, red.Base, probe); err != nil {
			return rep, fmt.Errorf("%s: %w", op.name, err)
		}
		for _, n := range c.Clients {
			before, _ := PeakRSS(pid)
			_ = ResetPeakRSS(pid)
			pr := PhaseReport{Operation: op.name, Clients: n}
			for k := range c.Repeat {
				r, err := measured(pid, func() (Result, error) { return t.phase(ctx, c, client, red.Base, "/"+red.Tenant, op.op, n) })
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				say("%s, %d clients, run %d/%d: %.0f/s, p50 %s, p99 %s, %d errors, red's CPU %s per request%s", op.name, n, k+1, c.Repeat,
					r.Rate(), ms(r.P50), ms(r.P99), r.Errors, us(r.CPUPerRequest()), firstErr(r))
				if err != nil {
					return rep, fmt.Errorf("%s, %d clients: %w", op.name, n, err)
				}
				pr.Runs = append(pr.Runs, r)
			}
			pr.PeakRSS, _ = PeakRSS(pid)
			rep.PhasesRSS = max(rep.PhasesRSS, before, pr.PeakRSS)
			rep.Phases = append(rep.Phases, pr)
		}
	}
	rep.LoadAvg[1] = LoadAverage()
	return rep, nil
}

// seed posts one Patientenakte per patient from c.SeedClients clients.
func seed(ctx context.Context, client *http.Client, base string, c Config) Result {
	var next atomic.Int64
	p := Phase{Clients: c.SeedClients, Next: func(*rand.Rand) (Request, bool) {
		i := int(next.Add(1) - 1)
		if i >= c.Patients {
			return Request{}, false
		}
		return Request{Method: "POST", Path: "/Bundle", Body: c.Data.Bundle(i)}, true
	}}
	return p.Run(ctx, client, base)
}

// phase runs op with clients clients for c.Duration against base, with wrk (its requests' paths
// start with prefix) or the Go generator (they are appended to base).
func (t *target) phase(ctx context.Context, c Config, client *http.Client, base, prefix string, op Op, clients int) (Result, error) {
	if c.Wrk == nil {
		p := Phase{Clients: clients, Duration: c.Duration, Next: func(rng *rand.Rand) (Request, bool) { return t.next(op, rng), true }}
		return p.Run(ctx, client, base), nil
	}
	s := Script{Op: op, Prefix: prefix, Data: t.data, Patients: t.patients,
		Threads: min(clients, runtime.NumCPU()), First: int(t.fresh.Load())}
	r, last, err := c.Wrk.Run(ctx, base, s, clients, c.Duration)
	if err != nil || op != OpCreate || last < s.First {
		return r, err
	}
	t.fresh.Store(int64(last + 1))
	// The script rendered the bundles itself: the first one sent is found by the KVNR Go gives
	// it. That is First+Threads, the first thread's second: wrk calls request() once before the
	// run to check what it gives (script_verify_request) and never sends that one; the last ones
	// made may have been cut off when wrk stopped.
	first := s.First + s.Threads
	res, err := client.Get(base + t.request(OpSearch, first).Path)
	if err != nil {
		return r, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if want := `<id value="` + PatientID(first) + `"/>`; err == nil && (res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want))) {
		err = fmt.Errorf("the first patient created, %s, is not found by its KVNR %s: %s\n%.300s", PatientID(first), KVNR(first), res.Status, body)
	}
	return r, err
}

package loadgen

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/sqlite"
)

// Ceilings measure what this machine does with red's own work left out, under the load of the
// phases: how far a goal is from what the machine allows at all.
//
//   - static answers: an HTTP server (Go's net/http, in redload's own process) answering every
//     read of the read phase with a stored patient's bytes as they are, no store, no decryption,
//     no XML — what any Go HTTP server costs and how long its answers take when wrk and it share
//     the processors;
//   - the store alone: red's store (storage/postgres on a throwaway database, storage/sqlite in
//     a temporary directory, opened as red opens them) committing what red writes for one
//     create of the create phase (aCreate), after as many such creates as the seed makes —
//     red without HTTP, XML, validation, sealing, tokenising and audit trail.
type CeilingReport struct {
	BodyBytes int           // of the static answer
	Static    []PhaseReport // the read phase against the static server
	Stores    []StoreCeiling
	LoadAvg   [2]string // at the start and the end
}

// StoreCeiling is the store-alone phases of one store.
type StoreCeiling struct {
	Store  string // "sqlite" or "postgres"
	Phases []PhaseReport
}

// aCreate is what red writes for one create of the create phase (a new patient's 1-patient
// Patientenakte as a history Bundle), as counted in a red-PG database after ten of them: per
// resource its search tokens and the size of its sealed version — the Bundle, its four
// resources and the audit trail's record of the request — and the audit chain's head, whose
// next version goes with them. Each is created (the head: moved on) in one commit, as red does.
var aCreate = []struct {
	typ            string
	tokens, sealed int
}{
	{"Bundle", 1, 353},
	{"Patient", 18, 2291},
	{"Coverage", 6, 3412},
	{"Encounter", 5, 1484},
	{"Condition", 7, 1990},
	{"red:audit", 5, 708},
}

// The store-alone phases' operations.
const (
	createOp            = "create (1-patient bundle)"
	createWithoutTokens = "create without search tokens"
)

// auditHead is the audit chain head aCreate moves on: one token, 330 sealed bytes.
const (
	auditHead       = "red:audit-head"
	auditHeadSealed = 330
)

// Ceilings runs the ceiling phases: the static answers with c.Wrk (or the Go generator), and
// the store alone on each of stores (databaseURL: the PostgreSQL server for "postgres").
func Ceilings(ctx context.Context, c Config, stores []string, databaseURL string) (rep CeilingReport, err error) {
	rep.LoadAvg[0] = LoadAverage()
	say := func(format string, args ...any) {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "ceiling: "+format+"\n", args...)
		}
	}
	body := patientXML(c.Data.Bundle(0))
	rep.BodyBytes = len(body)
	if rep.Static, err = staticPhases(ctx, c, body, say); err != nil {
		return rep, err
	}
	for _, s := range stores {
		sc := StoreCeiling{Store: s}
		if sc.Phases, err = storePhases(ctx, c, s, databaseURL, say); err != nil {
			return rep, fmt.Errorf("%s alone: %w", s, err)
		}
		rep.Stores = append(rep.Stores, sc)
	}
	rep.LoadAvg[1] = LoadAverage()
	return rep, nil
}

// patientXML is the Patient resource of a bundle: what a read of it answers, as near as the
// bundle tells.
func patientXML(bundle []byte) []byte {
	start := bytes.Index(bundle, []byte("<Patient"))
	end := bytes.Index(bundle, []byte("</Patient>"))
	if start < 0 || end < start {
		return bundle
	}
	// the resource without its bundle declares the namespace itself, as red's answer does
	patient := bytes.Replace(bundle[start:end+len("</Patient>")], []byte("<Patient>"), []byte(`<Patient xmlns="http://hl7.org/fhir">`), 1)
	return append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"), patient...)
}

// staticPhases runs the read phase at each number of clients against a loopback server that
// answers every GET with body.
func staticPhases(ctx context.Context, c Config, body []byte, say func(string, ...any)) ([]PhaseReport, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host := ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10, Handler: staticHandler(host, body)}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + host

	client := NewClient(slicesMax(c.Clients))
	if err := Do(client, base, Request{Method: "GET", Path: "/Patient/" + PatientID(0)}); err != nil {
		return nil, err
	}
	t := &target{data: c.Data, patients: c.Patients}
	self := os.Getpid()
	var out []PhaseReport
	for _, n := range c.Clients {
		pr := PhaseReport{Operation: "read by id", Clients: n}
		for k := range c.Repeat {
			r, err := measured(self, func() (Result, error) { return t.phase(ctx, c, client, base, "", OpRead, n) })
			if err != nil {
				return nil, err
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			say("static answers, %d clients, run %d/%d: %.0f/s, p50 %s, p99 %s, %d errors, CPU %s per request", n, k+1, c.Repeat, r.Rate(), ms(r.P50), ms(r.P99), r.Errors, us(r.CPUPerRequest()))
			pr.Runs = append(pr.Runs, r)
		}
		out = append(out, pr)
	}
	return out, nil
}

// staticHandler answers a GET to host with body, and anything else — another Host, a method
// other than GET, a request of a web page (Origin, cross-site fetch metadata) — with 421.
func staticHandler(host string, body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != host || r.Method != http.MethodGet || r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			http.Error(w, "a GET to "+host+" only", http.StatusMisdirectedRequest)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+xml;charset=utf-8")
		w.Header().Set("Content-Length", length)
		_, _ = w.Write(body)
	})
}

// storePhases seeds the store alone with c.Patients creates from c.SeedClients committers, then
// runs the create phase at each number of clients.
func storePhases(ctx context.Context, c Config, store, databaseURL string, say func(string, ...any)) (_ []PhaseReport, err error) {
	st, closeStore, err := openStore(ctx, store, databaseURL)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := closeStore(); err == nil {
			err = cerr
		}
	}()
	const tenant = "load"
	if err := st.CreateTenant(ctx, storage.Tenant{Alias: tenant, Created: time.Now().UTC()}); err != nil {
		return nil, err
	}
	seed := creates(ctx, st, tenant, c.SeedClients, 0, c.Patients, true)
	if seed.Errors > 0 {
		return nil, fmt.Errorf("seed: %d of %d creates failed, the first: %s", seed.Errors, seed.Requests, seed.FirstErr)
	}
	say("%s alone seeded with %d creates in %s", storeName(store), c.Patients, seed.Elapsed.Round(time.Millisecond))
	self := os.Getpid()
	var out []PhaseReport
	// the phases, then the most clients' again without search tokens: what the rest costs
	type phase struct {
		clients int
		tokens  bool
	}
	var phases []phase
	for _, n := range c.Clients {
		phases = append(phases, phase{n, true})
	}
	phases = append(phases, phase{slicesMax(c.Clients), false})
	for _, ph := range phases {
		n := ph.clients
		pr := PhaseReport{Operation: createOp, Clients: n}
		what := "create"
		if !ph.tokens {
			pr.Operation, what = createWithoutTokens, "create without tokens"
		}
		for k := range c.Repeat {
			r, _ := measured(self, func() (Result, error) { return creates(ctx, st, tenant, n, c.Duration, 0, ph.tokens), nil })
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			say("%s alone, %s, %d clients, run %d/%d: %.0f/s, p50 %s, p99 %s, %d errors, CPU %s per create%s", storeName(store), what, n, k+1, c.Repeat,
				r.Rate(), ms(r.P50), ms(r.P99), r.Errors, us(r.CPUPerRequest()), firstErr(r))
			if r.Errors > 0 {
				return nil, fmt.Errorf("%s, %d clients: %d of %d failed, the first: %s", what, n, r.Errors, r.Requests, r.FirstErr)
			}
			pr.Runs = append(pr.Runs, r)
		}
		out = append(out, pr)
	}
	return out, nil
}

// openStore opens store as red serve does: "postgres" on a throwaway database of the server of
// databaseURL, "sqlite" in a temporary directory; closeStore closes it and drops the database
// or removes the directory.
func openStore(ctx context.Context, store, databaseURL string) (st storage.Store, closeStore func() error, err error) {
	switch store {
	case "postgres":
		u, drop, err := createDatabase(ctx, databaseURL)
		if err != nil {
			return nil, nil, err
		}
		pg, err := postgres.Open(ctx, u)
		if err != nil {
			return nil, nil, errors.Join(err, drop())
		}
		return pg, func() error { return errors.Join(pg.Close(), drop()) }, nil
	case "sqlite":
		dir, err := os.MkdirTemp("", "redload-ceiling-")
		if err != nil {
			return nil, nil, err
		}
		lite, err := sqlite.Open(ctx, filepath.Join(dir, "red.db"))
		if err != nil {
			return nil, nil, errors.Join(err, os.RemoveAll(dir))
		}
		return lite, func() error { return errors.Join(lite.Close(), os.RemoveAll(dir)) }, nil
	}
	return nil, nil, fmt.Errorf("store %q: want sqlite or postgres", store)
}

// creates commits what aCreate describes (without its search tokens unless tokens) from clients
// committers until d is over (d > 0) or count creates are made (count > 0), each committer with an
// audit chain head of its own. Like red, each create first asks the store for the heads of the
// resources it creates.
func creates(ctx context.Context, st storage.Store, tenant string, clients int, d time.Duration, count int, tokens bool) Result {
	sealed := make([]byte, 4096) // ciphertext does not compress: random bytes stand for it
	_, _ = crand.Read(sealed)
	var made atomic.Int64
	return runClients(ctx, clients, d, func(ctx context.Context, _ int, r *Result) {
		head := storage.Change{Type: auditHead, ID: randomBytes(16), Sealed: sealed[:auditHeadSealed]}
		for ctx.Err() == nil && (count == 0 || made.Add(1) <= int64(count)) {
			changes := make([]storage.Change, 0, len(aCreate)+1)
			keys := make([]storage.Key, 0, len(aCreate))
			now := time.Now().UTC()
			for _, res := range aCreate {
				ch := storage.Change{Type: res.typ, ID: randomBytes(16), Updated: now, Sealed: sealed[:res.sealed]}
				for i := 0; tokens && i < res.tokens; i++ {
					ch.Tokens = append(ch.Tokens, randomBytes(16))
				}
				changes = append(changes, ch)
				keys = append(keys, storage.Key{Type: ch.Type, ID: ch.ID})
			}
			head.Updated, head.Tokens = now, nil
			if tokens {
				head.Tokens = [][]byte{randomBytes(16)}
			}
			changes = append(changes, head)
			t := time.Now()
			_, err := st.Heads(ctx, tenant, keys, storage.Exclusion{})
			if err == nil {
				err = st.Commit(ctx, tenant, changes)
			}
			if ctx.Err() != nil {
				return // cut off by the end of the phase: not counted
			}
			r.record(time.Since(t), err)
			if err == nil {
				head.Expect++
			}
		}
	})
}

// randomBytes is n random bytes, as a blind token or id stands for.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return b
}

// CeilingMarkdown is rep as a table of its own: a row per ceiling and number of clients, then
// how the figures were taken.
func CeilingMarkdown(c Config, rep CeilingReport) string {
	var sb strings.Builder
	sb.WriteString("| ceiling: the machine without red's work | clients | rate · p50 · p99 · CPU per request |\n|---|---|---|\n")
	row := func(what string, p PhaseReport) {
		rate, p50, p99, cpu, errs := p.medians()
		fmt.Fprintf(&sb, "| %s | %d | %s/s · p50 %s · p99 %s · %s · CPU %s |\n", what, p.Clients, thousands(rate), ms(p50), ms(p99), errorCount(errs), us(cpu))
	}
	for _, p := range rep.Static {
		row(fmt.Sprintf("static answers (%s bytes, a patient's XML) to the read phase", thousands(float64(rep.BodyBytes))), p)
	}
	for _, s := range rep.Stores {
		for _, p := range s.Phases {
			what := "the commits of the create phase"
			if p.Operation == createWithoutTokens {
				what += " without their search tokens"
			}
			row(fmt.Sprintf("%s store alone: %s", storeName(s.Store), what), p)
		}
	}
	fmt.Fprintf(&sb, "\nCeilings: %s phases, %d runs, medians. Static answers: Go's net/http in redload's process answers every read with the same bytes, "+
		"no store, no decryption, no XML; CPU is that process's. Store alone: red's store (as red serve opens it; PostgreSQL on a throwaway database) "+
		"after %s such creates commits what red writes for one create — %s — with a lookup of their heads first, as red does; CPU is redload's "+
		"(the store's client side, on SQLite the database itself). Load average (1 min) %s at the start, %s at the end.\n",
		c.Duration, c.Repeat, thousands(float64(c.Patients)), describeCreate(), rep.LoadAvg[0], rep.LoadAvg[1])
	return sb.String()
}

// describeCreate tells what aCreate writes.
func describeCreate() string {
	var parts []string
	tokens := 1 // the audit head's
	for _, r := range aCreate {
		parts = append(parts, fmt.Sprintf("%s (%s, %s sealed bytes)", r.typ, count(r.tokens, "token"), thousands(float64(r.sealed))))
		tokens += r.tokens
	}
	return fmt.Sprintf("%d new resources: %s; and the next version of the audit chain's head (1 token, %d sealed bytes): %d search tokens in all",
		len(aCreate), strings.Join(parts, ", "), auditHeadSealed, tokens)
}

// count is n things, with the plural's s unless n is 1.
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

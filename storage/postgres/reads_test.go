package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres/pgtest"
)

// groupedStore is a store with tenants praxis and zweite: Patients a (two versions), b and c
// and a deleted one in praxis, a in zweite, found by tokens "kv-" plus the id and "all".
func groupedStore(t *testing.T) (*Store, string) {
	url := pgtest.URL(t)
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, tenant := range []string{"praxis", "zweite"} {
		if err := s.CreateTenant(t.Context(), storage.Tenant{Alias: tenant, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []struct {
		tenant, id string
		expect     int64
		deleted    bool
	}{
		{"praxis", "a", 0, false}, {"praxis", "a", 1, false}, {"praxis", "b", 0, false}, {"praxis", "c", 0, false},
		{"praxis", "gone", 0, false}, {"praxis", "gone", 1, true}, {"zweite", "a", 0, false},
	} {
		c := storage.Change{Type: "Patient", ID: []byte(w.id), Expect: w.expect, Updated: time.Now(), Deleted: w.deleted,
			Sealed: fmt.Appendf(nil, "%s/%s/%d", w.tenant, w.id, w.expect+1), Tokens: [][]byte{[]byte("kv-" + w.id), []byte("all")}}
		if w.deleted {
			c.Sealed, c.Tokens = nil, nil
		}
		if err := s.Commit(t.Context(), w.tenant, []storage.Change{c}); err != nil {
			t.Fatal(err)
		}
	}
	return s, url
}

// holdTables has another session lock the tables until the returned function is called, so
// that the queries reading them wait.
func holdTables(t *testing.T, url string, tables string) (release func()) {
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+tables+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// waitGrouped waits until cond holds for the queries under way and the requests waiting.
func waitGrouped[R any](t *testing.T, g *grouped[R], what string, cond func(busy, waiting int) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		ok := cond(g.busy, len(g.waiting))
		g.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

// runGrouped checks group read for one kind of request: with the tables held, every place is
// taken by a caller of its own (busy), then each of calls waits, and a waiting call whose
// context ends (withdrawn) gets its error; once the tables are free, it returns what each call
// answered (run together in one query).
func runGrouped[R, A any](t *testing.T, g *grouped[R], release func(), busy func(), withdrawn func(context.Context) error, calls []func() A) []A {
	t.Helper()
	for i := range g.limit {
		go busy()
		waitGrouped(t, g, "a caller's own query", func(b, _ int) bool { return b == i+1 })
	}
	answers := make([]chan A, len(calls))
	for i, call := range calls {
		answers[i] = make(chan A, 1)
		go func() { answers[i] <- call() }()
		waitGrouped(t, g, "a waiting request", func(_, w int) bool { return w == i+1 })
	}
	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := withdrawn(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting request whose context ends: %v, want context.DeadlineExceeded", err)
	}
	waitGrouped(t, g, "the withdrawn request gone", func(_, w int) bool { return w == len(calls) })
	release()
	out := make([]A, len(calls))
	for i := range calls {
		out[i] = <-answers[i]
	}
	waitGrouped(t, g, "every query done", func(b, w int) bool { return b == 0 && w == 0 })
	return out
}

// TestCurrentGrouped checks that reads by id that go together in one query each get their own
// tenant's newest version, a tombstone, or ErrNotFound — what each read alone gets.
func TestCurrentGrouped(t *testing.T) {
	s, url := groupedStore(t)
	ctx := t.Context()
	tests := []struct {
		tenant, id string
		version    int64
		err        error
	}{
		{"praxis", "a", 2, nil},
		{"praxis", "b", 1, nil},
		{"zweite", "a", 1, nil},
		{"zweite", "b", 0, storage.ErrNotFound},
		{"praxis", "gone", 2, nil},
		{"praxis", "none", 0, storage.ErrNotFound},
		{"dritte", "a", 0, storage.ErrNotFound},
	}
	type answer struct {
		rec storage.Record
		err error
	}
	var calls []func() answer
	for _, tc := range tests {
		calls = append(calls, func() answer {
			rec, err := s.Current(ctx, tc.tenant, "Patient", []byte(tc.id))
			return answer{rec, err}
		})
	}
	got := runGrouped(t, &s.reads, holdTables(t, url, "resources"),
		func() { _, _ = s.Current(ctx, "praxis", "Patient", []byte("a")) },
		func(ctx context.Context) error {
			_, err := s.Current(ctx, "praxis", "Patient", []byte("b"))
			return err
		},
		calls)
	for i, tc := range tests {
		name := tc.tenant + "/" + tc.id
		alone, err := s.current(ctx, tc.tenant, "Patient", []byte(tc.id))
		if !errors.Is(got[i].err, tc.err) || !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v grouped, %v alone; want %v", name, got[i].err, err, tc.err)
			continue
		}
		if got[i].rec.Version != tc.version || !reflect.DeepEqual(got[i].rec, alone) {
			t.Errorf("%s: grouped %+v, alone %+v; want version %d", name, got[i].rec, alone, tc.version)
		}
	}
}

// TestFindGrouped checks that searches by one token that go together in one query each get
// their own tenant's and type's count and page — what each search alone gets.
func TestFindGrouped(t *testing.T) {
	s, url := groupedStore(t)
	ctx := t.Context()
	tests := []struct {
		tenant, typ, token string
		offset, limit      int
		total              int
		ids                string
	}{
		{"praxis", "Patient", "kv-a", 0, 10, 1, "a"},
		{"praxis", "Patient", "all", 0, 2, 3, "a b"},
		{"praxis", "Patient", "all", 2, 2, 3, "c"},
		{"praxis", "Patient", "all", 0, 0, 3, "a b c"},
		{"praxis", "Patient", "all", 5, 2, 3, ""},
		{"zweite", "Patient", "kv-a", 0, 10, 1, "a"},
		{"zweite", "Patient", "kv-b", 0, 10, 0, ""},
		{"praxis", "Observation", "kv-a", 0, 10, 0, ""},
		{"praxis", "Patient", "kv-gone", 0, 10, 0, ""},
	}
	type answer struct {
		page storage.Page
		err  error
	}
	query := func(typ, token string, offset, limit int) storage.Query {
		return storage.Query{Type: typ, All: [][][]byte{{[]byte(token)}}, Offset: offset, Limit: limit}
	}
	var calls []func() answer
	for _, tc := range tests {
		calls = append(calls, func() answer {
			page, err := s.Find(ctx, tc.tenant, query(tc.typ, tc.token, tc.offset, tc.limit))
			return answer{page, err}
		})
	}
	got := runGrouped(t, &s.finds, holdTables(t, url, "tokens"),
		func() { _, _ = s.Find(ctx, "praxis", query("Patient", "all", 0, 10)) },
		func(ctx context.Context) error {
			_, err := s.Find(ctx, "praxis", query("Patient", "kv-b", 0, 10))
			return err
		},
		calls)
	for i, tc := range tests {
		name := fmt.Sprintf("%s %s %s offset %d limit %d", tc.tenant, tc.typ, tc.token, tc.offset, tc.limit)
		alone, err := s.findOneGroup(ctx, tc.tenant, query(tc.typ, tc.token, tc.offset, tc.limit))
		if got[i].err != nil || err != nil {
			t.Errorf("%s: error %v grouped, %v alone", name, got[i].err, err)
			continue
		}
		ids := ""
		for j, r := range got[i].page.Records {
			if j > 0 {
				ids += " "
			}
			ids += string(r.ID)
		}
		if got[i].page.Total != tc.total || ids != tc.ids || !reflect.DeepEqual(got[i].page, alone) {
			t.Errorf("%s: grouped total %d ids %q (%+v), alone %+v; want total %d ids %q", name, got[i].page.Total, ids, got[i].page, alone, tc.total, tc.ids)
		}
	}
}

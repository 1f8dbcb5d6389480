package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres/pgtest"
)

// TestCurrentGrouped checks group read: reads that wait while the readers are busy go together
// in one query and each caller gets its own tenant's newest version or ErrNotFound, and a
// waiting read whose context ends gets its error without holding up the others.
func TestCurrentGrouped(t *testing.T) {
	url := pgtest.URL(t)
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	for _, tenant := range []string{"praxis", "zweite"} {
		if err := s.CreateTenant(ctx, storage.Tenant{Alias: tenant, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	write := func(tenant, id string, expect int64, deleted bool) {
		t.Helper()
		sealed := []byte(fmt.Sprintf("%s/%s/%d", tenant, id, expect+1))
		if deleted {
			sealed = nil
		}
		if err := s.Commit(ctx, tenant, []storage.Change{{Type: "Patient", ID: []byte(id), Expect: expect, Updated: time.Now(), Deleted: deleted, Sealed: sealed}}); err != nil {
			t.Fatal(err)
		}
	}
	write("praxis", "a", 0, false)
	write("praxis", "a", 1, false)
	write("praxis", "b", 0, false)
	write("praxis", "gone", 0, false)
	write("praxis", "gone", 1, true)
	write("zweite", "a", 0, false)

	tests := []struct {
		tenant, id string
		version    int64
		sealed     string // "" for a tombstone
		err        error
	}{
		{"praxis", "a", 2, "praxis/a/2", nil},
		{"praxis", "b", 1, "praxis/b/1", nil},
		{"zweite", "a", 1, "zweite/a/1", nil},
		{"zweite", "b", 0, "", storage.ErrNotFound},
		{"praxis", "gone", 2, "", nil},
		{"praxis", "none", 0, "", storage.ErrNotFound},
		{"dritte", "a", 0, "", storage.ErrNotFound},
	}

	// another session holds resources, so the readers' queries wait
	blocker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(context.WithoutCancel(ctx))
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE resources IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.readMu.Lock()
			ok := cond()
			s.readMu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited 10 s for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	type answer struct {
		rec storage.Record
		err error
	}
	read := func(tenant, id string) chan answer {
		c := make(chan answer, 1)
		go func() {
			rec, err := s.Current(ctx, tenant, "Patient", []byte(id))
			c <- answer{rec, err}
		}()
		return c
	}
	// the readers, each at the lock
	var first []chan answer
	for i := range s.maxReaders {
		first = append(first, read("praxis", "a"))
		waitFor("a reader", func() bool { return s.readers == i+1 })
	}
	// the reads that wait for them, among them one that gives up
	answers := make([]chan answer, len(tests))
	for i, tc := range tests {
		answers[i] = read(tc.tenant, tc.id)
		waitFor("a waiting read", func() bool { return len(s.reads) == i+1 })
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.Current(short, "praxis", "Patient", []byte("b")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting read whose context ends: %v, want context.DeadlineExceeded", err)
	}
	waitFor("the withdrawn read gone", func() bool { return len(s.reads) == len(tests) })
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	for _, c := range first {
		if a := <-c; a.err != nil || a.rec.Version != 2 {
			t.Errorf("read by a reader: version %d, %v; want 2", a.rec.Version, a.err)
		}
	}
	for i, tc := range tests {
		a := <-answers[i]
		name := tc.tenant + "/" + tc.id
		if tc.err != nil {
			if !errors.Is(a.err, tc.err) {
				t.Errorf("%s: error %v, want %v", name, a.err, tc.err)
			}
			continue
		}
		switch {
		case a.err != nil:
			t.Errorf("%s: %v", name, a.err)
		case a.rec.Type != "Patient" || string(a.rec.ID) != tc.id || a.rec.Version != tc.version ||
			string(a.rec.Sealed) != tc.sealed || a.rec.Deleted != (tc.sealed == "") || a.rec.Updated.Location() != time.UTC:
			t.Errorf("%s: got %s/%s version %d sealed %q deleted %v (%v), want version %d sealed %q",
				name, a.rec.Type, a.rec.ID, a.rec.Version, a.rec.Sealed, a.rec.Deleted, a.rec.Updated.Location(), tc.version, tc.sealed)
		}
	}
	waitFor("the readers done", func() bool { return s.readers == 0 && len(s.reads) == 0 })
}

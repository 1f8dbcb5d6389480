package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres/pgtest"
)

// TestCommitWithdrawn checks that a Commit waiting for a busy group commit withdraws its changes
// when its context ends, while the commits under way complete.
func TestCommitWithdrawn(t *testing.T) {
	url := pgtest.URL(t)
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	if err := s.CreateTenant(ctx, storage.Tenant{Alias: "praxis", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// another session holds heads, so the committers' transactions wait
	blocker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(context.WithoutCancel(ctx))
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE heads IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	create := func(id string) []storage.Change {
		return []storage.Change{{Type: "Patient", ID: []byte(id), Updated: time.Now(), Sealed: []byte(id), Tokens: [][]byte{[]byte("t")}}}
	}
	// one commit after the other, each taken by a committer of its own before the next comes
	// (commits that arrive together would go in one group, leaving committers idle, and the
	// withdrawn commit below would be taken instead of waiting)
	busy := make(chan error, s.maxCommitters)
	for i := range s.maxCommitters {
		go func() { busy <- s.Commit(ctx, "praxis", create(string(rune('a'+i)))) }()
		for { // until a committer has taken it, and waits for the lock
			s.mu.Lock()
			taken := s.committers == i+1 && len(s.queue) == 0
			s.mu.Unlock()
			if taken {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.Commit(short, "praxis", create("withdrawn")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting Commit error = %v, want context.DeadlineExceeded", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range s.maxCommitters {
		if err := <-busy; err != nil {
			t.Errorf("Commit under way: %v", err)
		}
	}
	if _, err := s.Current(ctx, "praxis", "Patient", []byte("withdrawn")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Current of the withdrawn commit: %v, want ErrNotFound", err)
	}
	page, err := s.Find(ctx, "praxis", storage.Query{Type: "Patient", All: [][][]byte{{[]byte("t")}}})
	if err != nil || page.Total != s.maxCommitters {
		t.Errorf("Find total %d, %v; want %d", page.Total, err, s.maxCommitters)
	}
}

// TestMigrateTokens checks that a resource written before heads kept its tokens (migration
// 0002) is still found by them, and loses them when it is updated.
func TestMigrateTokens(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	first, err := migrations.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		string(first),
		`CREATE TABLE schema_migrations (name text PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now());
		INSERT INTO schema_migrations (name) VALUES ('0001_init.sql');
		INSERT INTO tenants (alias, created) VALUES ('praxis', now());
		INSERT INTO heads (tenant, type, id, version, updated, deleted) VALUES ('praxis', 'Patient', 'p1', 1, now(), false), ('praxis', 'Patient', 'p2', 1, now(), false);
		INSERT INTO resources (tenant, type, id, version, updated, deleted, sealed) VALUES ('praxis', 'Patient', 'p1', 1, now(), false, 'v1'), ('praxis', 'Patient', 'p2', 1, now(), false, 'v1');
		INSERT INTO tokens (tenant, type, id, token) VALUES ('praxis', 'Patient', 'p1', 'anna'), ('praxis', 'Patient', 'p1', 'berlin'), ('praxis', 'Patient', 'p2', 'berlin')`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	total := func(token string) int {
		t.Helper()
		page, err := s.Find(ctx, "praxis", storage.Query{Type: "Patient", All: [][][]byte{{[]byte(token)}}})
		if err != nil {
			t.Fatalf("Find(%s): %v", token, err)
		}
		return page.Total
	}
	if a, b := total("anna"), total("berlin"); a != 1 || b != 2 {
		t.Errorf("after the migration anna finds %d, berlin %d; want 1 and 2", a, b)
	}
	err = s.Commit(ctx, "praxis", []storage.Change{{Type: "Patient", ID: []byte("p1"), Expect: 1, Updated: time.Now(), Sealed: []byte("v2"), Tokens: [][]byte{[]byte("bert")}}})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if a, b, c := total("anna"), total("berlin"), total("bert"); a != 0 || b != 1 || c != 1 {
		t.Errorf("after the update anna finds %d, berlin %d, bert %d; want 0, 1 and 1", a, b, c)
	}
}

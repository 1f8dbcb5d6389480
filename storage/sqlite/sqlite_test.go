package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/sqlite"
	"github.com/redclone/red/storage/storetest"
)

func TestStore(t *testing.T) {
	storetest.RunTests(t, func(t testing.TB) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "red.db"))
	})
}

func TestSharedFile(t *testing.T) {
	storetest.RunSharedTests(t, func(t testing.TB) (a, b storage.Store) {
		path := filepath.Join(t.TempDir(), "red.db")
		// Both handles open at once, so their migrations race for the write lock.
		second := make(chan error, 1)
		go func() {
			var err error
			b, err = sqlite.Open(t.Context(), path)
			second <- err
		}()
		a = open(t, path)
		if err := <-second; err != nil {
			t.Fatalf("Open of the second handle: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}

// open opens the store in the file at path and closes it when t ends.
func open(t testing.TB, path string) storage.Store {
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A Commit after Close fails at once instead of waiting for a writer that has ended, and
// Close may be called twice.
func TestCommitAfterClose(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "red.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(t.Context(), storage.Tenant{Alias: "praxis"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = s.Commit(t.Context(), "praxis", []storage.Change{{Type: "Patient", ID: []byte("p1"), Sealed: []byte("x")}})
	if err == nil {
		t.Error("Commit after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

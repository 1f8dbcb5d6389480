package sqlite_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
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

// A commit that fails after it has written part of a batch (here: a change without an id, which
// the schema refuses) makes the writer write the batch commit by commit: the failing commit
// writes nothing, the commits beside it are written.
func TestBatchFailingMidway(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "red.db"))
	ctx := t.Context()
	if err := s.CreateTenant(ctx, storage.Tenant{Alias: "praxis"}); err != nil {
		t.Fatal(err)
	}
	const workers = 12
	for round := range 5 {
		start := make(chan struct{})
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				<-start
				changes := []storage.Change{{Type: "Patient", ID: fmt.Appendf(nil, "p-%d-%d", round, w), Sealed: []byte("x")}}
				if w%3 == 0 {
					changes = append(changes, storage.Change{Type: "Patient", Sealed: []byte("no id")})
				}
				errs[w] = s.Commit(ctx, "praxis", changes)
			})
		}
		close(start)
		wg.Wait()
		for w, err := range errs {
			_, cerr := s.Current(ctx, "praxis", "Patient", fmt.Appendf(nil, "p-%d-%d", round, w))
			if w%3 == 0 {
				if err == nil || !errors.Is(cerr, storage.ErrNotFound) {
					t.Errorf("round %d worker %d: the commit with a change without id: %v, and its first change: %v", round, w, err, cerr)
				}
			} else if err != nil || cerr != nil {
				t.Errorf("round %d worker %d: %v, then Current: %v", round, w, err, cerr)
			}
		}
	}
}

package postgres_test

import (
	"testing"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/postgres/pgtest"
	"github.com/redclone/red/storage/storetest"
)

func TestMain(m *testing.M) {
	defer pgtest.Stop()
	m.Run()
}

func TestStore(t *testing.T) {
	storetest.RunTests(t, func(t testing.TB) storage.Store { return open(t, pgtest.URL(t)) })
}

func TestSharedDatabase(t *testing.T) {
	storetest.RunSharedTests(t, func(t testing.TB) (a, b storage.Store) {
		url := pgtest.URL(t)
		// Both handles open at once, so their migrations race for the advisory lock.
		second := make(chan error, 1)
		go func() {
			var err error
			b, err = postgres.Open(t.Context(), url)
			second <- err
		}()
		a = open(t, url)
		if err := <-second; err != nil {
			t.Fatalf("Open of the second handle: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}

// open opens the store at url and closes it when t ends.
func open(t testing.TB, url string) storage.Store {
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

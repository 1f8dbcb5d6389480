// Package vaulttest gives tests a tenant's unsealed barrier over a fresh SQLite store or a store
// of their own (for tests only).
package vaulttest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/sqlite"
)

// Barrier opens a SQLite store in a temporary directory with the tenant "praxis", unseals its
// vault for the user "anna" (with the fast test KDF) and returns the barrier and the store's
// file, for tests that read the raw bytes. The store is closed when the test ends.
func Barrier(t testing.TB) (*vault.Barrier, string) {
	t.Helper()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "red.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return On(t, st), db
}

// On creates the tenant "praxis" in st, unseals its vault for the user "anna" (with the fast
// test KDF) and returns the barrier over st.
func On(t testing.TB, st storage.Store) *vault.Barrier {
	t.Helper()
	ctx := context.Background()
	if err := st.CreateTenant(ctx, storage.Tenant{Alias: "praxis", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	blob, err := vault.NewCredential(rand.Reader, "praxis", "anna", []byte("pw"), vault.TestKDF)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New("praxis", rand.Reader)
	if err := v.Unseal("anna", blob, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	return v.Barrier(st)
}

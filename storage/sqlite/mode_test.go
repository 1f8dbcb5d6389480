//go:build unix

package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/redclone/red/storage"
)

// red.db and its -wal and -shm files are the owner's only (0600), also in a directory others
// may read, and also when an earlier version left them readable by others.
func TestFileModes(t *testing.T) {
	for _, c := range []struct {
		name     string
		existing os.FileMode // mode of files an earlier version left; 0: none
	}{
		{"new files are 0600 in a 0755 directory", 0},
		{"files left 0644 by an earlier version become 0600", 0o644},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "red.db")
			if c.existing != 0 {
				// an earlier red's files: a store with data, then companions SQLite keeps as they are
				s := open(t, path)
				if err := s.CreateTenant(t.Context(), storage.Tenant{Alias: "praxis"}); err != nil {
					t.Fatal(err)
				}
				_ = s.Close()
				for _, f := range []string{"red.db-wal", "red.db-shm"} { // SQLite removed them on close
					if err := os.WriteFile(filepath.Join(dir, f), nil, c.existing); err != nil {
						t.Fatal(err)
					}
				}
				for _, f := range []string{"red.db", "red.db-wal", "red.db-shm"} {
					if err := os.Chmod(filepath.Join(dir, f), c.existing); err != nil {
						t.Fatal(err)
					}
				}
			}
			s := open(t, path)
			if err := s.CreateTenant(t.Context(), storage.Tenant{Alias: "zweite"}); err != nil {
				t.Fatal(err)
			}
			if c.existing != 0 {
				if _, err := s.Tenant(t.Context(), "praxis"); err != nil {
					t.Fatalf("the earlier data is gone: %v", err)
				}
			}
			for _, f := range []string{"red.db", "red.db-wal", "red.db-shm"} {
				fi, err := os.Stat(filepath.Join(dir, f))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %#o, want 0600", f, fi.Mode().Perm())
				}
			}
		})
	}
}

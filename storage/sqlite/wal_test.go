package sqlite_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/sqlite"
)

// The WAL stays bounded while commits and reads come in all the time — as during an import with
// the API in use, when passive checkpoints alone let it grow to gigabytes: past the limit the
// checkpointer empties it, and every commit and read still succeeds.
func TestWALStaysBoundedUnderReadsAndWrites(t *testing.T) {
	defer sqlite.SetWALLimit(256)() // pages: 1 MiB
	path := filepath.Join(t.TempDir(), "red.db")
	s := open(t, path)
	ctx := t.Context()
	if err := s.CreateTenant(ctx, storage.Tenant{Alias: "praxis"}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 2048)
	token := func() []byte { tok := make([]byte, 16); _, _ = rand.Read(tok); return tok }
	if err := s.Commit(ctx, "praxis", []storage.Change{{Type: "Patient", ID: []byte("p0"), Sealed: body}}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	readErr := make(chan error, 4)
	for range 4 { // readers that never pause: a passive checkpoint never finds the WAL free
		wg.Go(func() {
			for !stop.Load() {
				if _, err := s.Current(ctx, "praxis", "Patient", []byte("p0")); err != nil {
					readErr <- err
					return
				}
				reads.Add(1)
			}
		})
	}
	var largest int64
	const commits = 2000
	for i := range commits {
		var changes []storage.Change
		for j := range 4 {
			changes = append(changes, storage.Change{Type: "Patient", ID: fmt.Appendf(nil, "p-%d-%d", i, j), Sealed: body,
				Tokens: [][]byte{token(), token(), token()}})
		}
		if err := s.Commit(ctx, "praxis", changes); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		if fi, err := os.Stat(path + "-wal"); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	stop.Store(true)
	wg.Wait()
	close(readErr)
	for err := range readErr {
		t.Fatalf("a read failed: %v", err)
	}
	// Between two checkpoints the writer adds 256 changes (here some 2,000 pages: 8 MiB), and
	// more while a checkpoint copies. Without the limit the WAL grew by some 13 MiB every 200
	// commits, to 135 MiB in these; with it emptied by another connection than the writer's,
	// it still reached 80 MiB now and then, that connection waiting for a pause in the commits.
	const bound = 24 << 20
	t.Logf("%d commits, %d reads meanwhile; the WAL's largest size %.1f MiB", commits, reads.Load(), float64(largest)/(1<<20))
	if largest > bound {
		t.Errorf("the WAL grew to %.1f MiB, want at most %d MiB", float64(largest)/(1<<20), bound>>20)
	}
	if reads.Load() == 0 {
		t.Error("no read ran beside the commits")
	}
}

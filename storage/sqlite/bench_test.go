package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/storetest"
)

func BenchmarkCommit(b *testing.B) {
	storetest.BenchmarkCommit(b, func(t testing.TB) storage.Store { return open(t, filepath.Join(t.TempDir(), "red.db")) })
}

func BenchmarkFind(b *testing.B) {
	storetest.BenchmarkFind(b, func(t testing.TB) storage.Store { return open(t, filepath.Join(t.TempDir(), "red.db")) })
}

func BenchmarkCommitParallel(b *testing.B) {
	storetest.BenchmarkCommitParallel(b, func(t testing.TB) storage.Store { return open(t, filepath.Join(t.TempDir(), "red.db")) })
}

func BenchmarkCurrent(b *testing.B) {
	storetest.BenchmarkCurrent(b, func(t testing.TB) storage.Store { return open(t, filepath.Join(t.TempDir(), "red.db")) })
}

func BenchmarkFindParallel(b *testing.B) {
	storetest.BenchmarkFindParallel(b, func(t testing.TB) storage.Store { return open(t, filepath.Join(t.TempDir(), "red.db")) })
}

package postgres_test

import (
	"testing"

	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres/pgtest"
	"github.com/redclone/red/storage/storetest"
)

func BenchmarkCommit(b *testing.B) {
	storetest.BenchmarkCommit(b, func(t testing.TB) storage.Store { return open(t, pgtest.URL(t)) })
}

func BenchmarkFind(b *testing.B) {
	storetest.BenchmarkFind(b, func(t testing.TB) storage.Store { return open(t, pgtest.URL(t)) })
}

func BenchmarkCommitParallel(b *testing.B) {
	storetest.BenchmarkCommitParallel(b, func(t testing.TB) storage.Store { return open(t, pgtest.URL(t)) })
}

func BenchmarkCurrent(b *testing.B) {
	storetest.BenchmarkCurrent(b, func(t testing.TB) storage.Store { return open(t, pgtest.URL(t)) })
}

func BenchmarkFindParallel(b *testing.B) {
	storetest.BenchmarkFindParallel(b, func(t testing.TB) storage.Store { return open(t, pgtest.URL(t)) })
}

func BenchmarkCommitLarge(b *testing.B) {
	storetest.BenchmarkCommitLarge(b, func(t testing.TB) storage.Store { return open(t, pgtest.URL(t)) })
}

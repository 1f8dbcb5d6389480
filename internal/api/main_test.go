package api_test

import (
	"os"
	"testing"

	"github.com/redclone/red/storage/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop() // a throwaway PostgreSQL cluster of BenchmarkAudit
	os.Exit(code)
}

package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's driver "pgx", for raw SQL on PostgreSQL

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/audit"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/internal/vault/vaulttest"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// backend is a tenant's barrier over one store, with raw SQL on the store's own tables.
type backend struct {
	barrier *vault.Barrier
	exec    func(query string, args ...any)          // $1, $2 … as PostgreSQL writes them
	query   func(query string, args ...any) [][]byte // the rows' single column
	raw     func() []byte                            // every byte the store holds
}

// onBoth runs f on SQLite and on PostgreSQL.
func onBoth(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) {
		barrier, path := vaulttest.Barrier(t)
		dollar := regexp.MustCompile(`\$(\d+)`)
		b := sqlBackend(t, barrier, "sqlite", path, func(q string) string { return dollar.ReplaceAllString(q, "?$1") })
		b.raw = func() []byte {
			var all []byte
			files, _ := filepath.Glob(path + "*")
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return all
		}
		f(t, b)
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		st, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		b := sqlBackend(t, vaulttest.On(t, st), "pgx", url, func(q string) string { return q })
		b.raw = func() []byte {
			var all []byte
			for _, q := range []string{
				"SELECT convert_to(row_to_json(t)::text, 'UTF8') FROM tenants t", "SELECT convert_to(row_to_json(h)::text, 'UTF8') FROM heads h",
				"SELECT sealed FROM resources WHERE sealed IS NOT NULL", "SELECT id FROM resources", "SELECT token FROM tokens",
				"SELECT convert_to(type, 'UTF8') FROM resources",
			} {
				for _, b := range b.query(q) {
					all = append(all, b...)
				}
			}
			return all
		}
		f(t, b)
	})
}

// sqlBackend is raw SQL on the store at source (database/sql's driver), its statements
// rewritten by dialect.
func sqlBackend(t *testing.T, barrier *vault.Barrier, driver, source string, dialect func(string) string) backend {
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return backend{
		barrier: barrier,
		exec: func(q string, args ...any) {
			if _, err := db.Exec(dialect(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		query: func(q string, args ...any) [][]byte {
			rows, err := db.Query(dialect(q), args...)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			defer rows.Close()
			var out [][]byte
			for rows.Next() {
				var b []byte
				if err := rows.Scan(&b); err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
			return out
		},
	}
}

// acting is the context of a request by user on workstation ws.
func acting(user, ws string, roles ...access.Role) context.Context {
	return access.With(context.Background(), access.Principal{Tenant: "praxis", User: user, Workstation: ws, Roles: roles})
}

// start opens a session for user on ws.
func start(t testing.TB, b *vault.Barrier, user, ws string) *audit.Trail {
	t.Helper()
	tr, err := audit.Start(context.Background(), b, audit.Options{Tenant: "praxis", User: user, Workstation: ws, Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func closeTrail(t testing.TB, tr *audit.Trail) {
	t.Helper()
	if err := tr.Close(context.Background(), "stopped"); err != nil {
		t.Fatal(err)
	}
}

// bundle reads a bundle of the repository's testdata.
func bundle(t testing.TB, name string) *etree.Element {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bundles", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := fhir.Parse(data, fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post stores a bundle through the trail's wrappers.
func post(t testing.TB, ctx context.Context, r api.Records, name string) {
	t.Helper()
	if _, err := r.PostBundle(ctx, bundle(t, name)); err != nil {
		t.Fatal(err)
	}
}

// service is records over the trail's wrapped store, as red serve wires it.
func service(tr *audit.Trail, b *vault.Barrier) api.Records {
	return tr.Records(&records.Service{Tenant: "praxis", Store: tr.Wrap(b)})
}

// line is what a test compares of an event.
func line(f audit.Found) string {
	s := fmt.Sprintf("%s %s %s", f.User, f.Workstation, f.Action)
	if f.Type != "" {
		s += " " + f.Type
	}
	if f.Operation != "" {
		s += " [" + f.Operation + "]"
	}
	s += " " + f.Outcome
	if f.Status != 0 {
		s += fmt.Sprintf(" %d", f.Status)
	}
	return s + " " + strings.Join(f.Patients, ",")
}

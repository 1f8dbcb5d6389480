package sqlite_test

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/redclone/red/storage"
)

// TestMigrateTokens opens a file written with the first schema, whose tokens table kept each
// token twice (by resource and by token), and checks that migration 0002 keeps every resource
// findable by its tokens, and that a later update, deletion or forgetting deletion removes the
// tokens written before the migration.
func TestMigrateTokens(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "red.db")
	first, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	long := bytes.Repeat([]byte{0x00, 0xff}, 150) // 300 bytes: a length of two varint bytes
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []struct {
		query string
		args  []any
	}{
		{query: string(first)},
		{query: `CREATE TABLE schema_migrations (name TEXT NOT NULL PRIMARY KEY, applied INTEGER NOT NULL);
			INSERT INTO schema_migrations (name, applied) VALUES ('0001_init.sql', 0);
			INSERT INTO tenants (alias, created) VALUES ('praxis', 0), ('andere', 0);
			INSERT INTO heads (tenant, type, id, version, updated, deleted) VALUES
				('praxis', 'Patient', x'7031', 1, 0, 0), ('praxis', 'Patient', x'7032', 2, 0, 0),
				('praxis', 'Patient', x'7033', 2, 0, 1), ('praxis', 'Observation', x'6f31', 1, 0, 0),
				('andere', 'Patient', x'7031', 1, 0, 0);
			INSERT INTO resources (tenant, type, id, version, updated, deleted, sealed) VALUES
				('praxis', 'Patient', x'7031', 1, 0, 0, x'01'), ('praxis', 'Patient', x'7032', 1, 0, 0, x'01'),
				('praxis', 'Patient', x'7032', 2, 0, 0, x'02'), ('praxis', 'Patient', x'7033', 1, 0, 0, x'01'),
				('praxis', 'Patient', x'7033', 2, 0, 1, NULL), ('praxis', 'Observation', x'6f31', 1, 0, 0, x'01'),
				('andere', 'Patient', x'7031', 1, 0, 0, x'01');
			INSERT INTO tokens (tenant, type, id, token) VALUES
				('praxis', 'Patient', x'7031', CAST('anna' AS BLOB)), ('praxis', 'Patient', x'7031', CAST('berlin' AS BLOB)),
				('praxis', 'Patient', x'7031', x'00'), ('praxis', 'Patient', x'7032', CAST('berlin' AS BLOB)),
				('praxis', 'Observation', x'6f31', CAST('berlin' AS BLOB)), ('andere', 'Patient', x'7031', CAST('anna' AS BLOB))`},
		{query: "INSERT INTO tokens (tenant, type, id, token) VALUES ('praxis', 'Patient', x'7031', ?)", args: []any{long}},
	} {
		if _, err := raw.ExecContext(ctx, stmt.query, stmt.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	s := open(t, path)
	find := func(tenant, typ string, groups ...[][]byte) []string {
		t.Helper()
		page, err := s.Find(ctx, tenant, storage.Query{Type: typ, All: groups})
		if err != nil {
			t.Fatalf("Find: %v", err)
		}
		ids := []string{}
		for _, r := range page.Records {
			ids = append(ids, string(r.ID))
		}
		if len(ids) != page.Total {
			t.Errorf("Find(%s %s %q): total %d for %d records", tenant, typ, groups, page.Total, len(ids))
		}
		return ids
	}
	tok := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, v := range s {
			out[i] = []byte(v)
		}
		return out
	}
	type query struct {
		tenant, typ string
		groups      [][][]byte
		want        []string
	}
	check := func(stage string, queries []query) {
		t.Helper()
		for _, q := range queries {
			if got := find(q.tenant, q.typ, q.groups...); !slices.Equal(got, q.want) {
				t.Errorf("%s: Find(%s %s %q) = %q, want %q", stage, q.tenant, q.typ, q.groups, got, q.want)
			}
		}
	}
	check("after the migration", []query{
		{"praxis", "Patient", [][][]byte{tok("anna")}, []string{"p1"}},
		{"praxis", "Patient", [][][]byte{tok("berlin")}, []string{"p1", "p2"}},
		{"praxis", "Patient", [][][]byte{{{0x00}}}, []string{"p1"}},
		{"praxis", "Patient", [][][]byte{{long}}, []string{"p1"}},
		{"praxis", "Patient", [][][]byte{tok("berlin"), tok("anna", "bert")}, []string{"p1"}},
		{"praxis", "Patient", nil, []string{"p1", "p2"}},
		{"praxis", "Observation", [][][]byte{tok("berlin")}, []string{"o1"}},
		{"andere", "Patient", [][][]byte{tok("anna")}, []string{"p1"}},
	})
	heads, err := s.Heads(ctx, "praxis", []storage.Key{{Type: "Patient", ID: []byte("p1")}, {Type: "Patient", ID: []byte("p2")}},
		storage.Exclusion{Token: []byte("anna")})
	if err != nil {
		t.Fatal(err)
	}
	if heads[0].Version != 0 || heads[1].Version != 2 {
		t.Errorf("Heads leaving out anna: versions %d and %d, want 0 and 2", heads[0].Version, heads[1].Version)
	}

	now := time.Now()
	if err := s.Commit(ctx, "praxis", []storage.Change{
		{Type: "Patient", ID: []byte("p1"), Expect: 1, Updated: now, Sealed: []byte{2}, Tokens: tok("bert", "berlin")},
		{Type: "Patient", ID: []byte("p2"), Expect: 2, Updated: now, Deleted: true},
		{Type: "Observation", ID: []byte("o1"), Expect: 1, Updated: now, Deleted: true, Forget: true},
	}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	check("after the update", []query{
		{"praxis", "Patient", [][][]byte{tok("anna")}, []string{}},
		{"praxis", "Patient", [][][]byte{{{0x00}}}, []string{}},
		{"praxis", "Patient", [][][]byte{{long}}, []string{}},
		{"praxis", "Patient", [][][]byte{tok("berlin")}, []string{"p1"}},
		{"praxis", "Patient", [][][]byte{tok("bert")}, []string{"p1"}},
		{"praxis", "Observation", [][][]byte{tok("berlin")}, []string{}},
		{"andere", "Patient", [][][]byte{tok("anna")}, []string{"p1"}},
	})
	if err := s.Commit(ctx, "praxis", []storage.Change{{Type: "Observation", ID: []byte("o1"), Updated: now, Sealed: []byte{1}, Tokens: tok("wien")}}); err != nil {
		t.Fatalf("Commit of the forgotten id: %v", err)
	}
	check("after the forgotten id was created again", []query{{"praxis", "Observation", [][][]byte{tok("wien")}, []string{"o1"}}})

	// each token is kept once: what is left is p1's two, andere's anna and o1's wien
	raw, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var rows, indexes int
	if err := raw.QueryRowContext(ctx, "SELECT count(*) FROM tokens").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'tokens'").Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if rows != 4 || indexes != 0 {
		t.Errorf("tokens has %d rows and %d indexes, want 4 and none (the table is its primary key)", rows, indexes)
	}
}

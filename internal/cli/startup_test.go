package cli_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/storage/postgres/pgtest"
)

// needsData are the commands that work on existing data, with the flags they need.
func needsData(in *instance) map[string][]string {
	pw := in.passwordFile("pw")
	return map[string][]string{
		"serve":    {"serve", "--tenant", "praxis", "--user", "anna", "--password-file", pw, "--port", "0"},
		"user add": {"user", "add", "--tenant", "praxis", "--user", "anna", "--new-user", "ben", "--role", "assistant", "--password-file", pw, "--new-password-file", pw},
		"passwd":   {"passwd", "--tenant", "praxis", "--user", "anna", "--password-file", pw, "--new-password-file", pw},
	}
}

// A mistyped --data-dir creates nothing and says that no red data is there and how to make some.
func TestNoDataThere(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, dir string) // prepares the directory red is pointed at
	}{
		{"directory missing", func(*testing.T, string) {}},
		{"directory without red.db", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := newInstance(t, "")
			for name, args := range needsData(in) {
				t.Run(name, func(t *testing.T) {
					in.dir = filepath.Join(t.TempDir(), "typo")
					c.setup(t, in.dir)
					before := entries(t, in.dir)
					out, err := in.run(args...)
					if err == nil {
						t.Fatalf("red %s succeeded without data:\n%s", name, out)
					}
					for _, want := range []string{"no red data in " + filepath.Join(in.dir, "red.db"), "red --data-dir " + in.dir + " init --tenant ALIAS --user NAME", "red --data-dir " + in.dir + " demo", "--data-dir"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("the message lacks %q:\n%v", want, err)
						}
					}
					if strings.Contains(err.Error(), "wrong tenant, user name or password") {
						t.Errorf("a missing store reads as a failed login: %v", err)
					}
					if after := entries(t, in.dir); after != before {
						t.Errorf("red %s changed %s: %s before, %s after", name, in.dir, before, after)
					}
				})
			}
		})
	}

	t.Run("init and demo still create", func(t *testing.T) {
		in := newInstance(t, "")
		in.dir = filepath.Join(t.TempDir(), "new", "place")
		in.initTenant("praxis", "anna", "pw")
		if _, err := os.Stat(filepath.Join(in.dir, "red.db")); err != nil {
			t.Fatalf("init did not create the store: %v", err)
		}
		in.dir = filepath.Join(t.TempDir(), "demo", "place")
		srv := in.serve("demo")
		mustContain(t, "demo output", srv.output.String(), `created tenant "demo"`)
	})
}

// entries describes what is at path: "absent", or the sorted names in the directory.
func entries(t testing.TB, path string) string {
	t.Helper()
	es, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	return "[" + strings.Join(names, " ") + "]"
}

// A tenant that is not in the store is named as such, not taken for a wrong password.
func TestUnknownTenant(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"embedded", func(testing.TB) string { return "" }},
		{"PostgreSQL", pgtest.URL},
	} {
		t.Run(db.name, func(t *testing.T) {
			in := newInstance(t, db.url(t))
			in.initTenant("praxis", "anna", "pw")
			for name, args := range needsData(in) {
				args = append([]string(nil), args...)
				for i := range args[:len(args)-1] {
					if args[i] == "--tenant" {
						args[i+1] = "praxsi"
					}
				}
				t.Run(name, func(t *testing.T) {
					_, err := in.run(args...)
					if err == nil || !strings.Contains(err.Error(), `there is no tenant "praxsi"`) || !strings.Contains(err.Error(), "init --tenant praxsi --user NAME") {
						t.Errorf("err = %v", err)
					}
				})
			}
			_, err := in.run("serve", "--tenant", "demo", "--user", "demo", "--password-file", in.passwordFile("pw"), "--port", "0")
			if err == nil || !strings.Contains(err.Error(), `there is no tenant "demo"`) || !strings.Contains(err.Error(), "demo\"") {
				t.Errorf("missing demo tenant: %v", err)
			}
		})
	}
}

// A PostgreSQL database without red's tables gets the same message, and serve creates no tables
// in it; a database that does not exist is named.
func TestNoDataInPostgres(t *testing.T) {
	dbURL := pgtest.URL(t)
	in := newInstance(t, dbURL)
	for name, args := range needsData(in) {
		t.Run(name, func(t *testing.T) {
			_, err := in.run(args...)
			if err == nil || !strings.Contains(err.Error(), "no red data in PostgreSQL database") ||
				!strings.Contains(err.Error(), "red --database-url URL init --tenant ALIAS --user NAME") {
				t.Errorf("err = %v", err)
			}
		})
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tables int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d tables were created", tables)
	}

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/red_no_such_database"
	missing := newInstance(t, u.String())
	for _, args := range [][]string{needsData(missing)["serve"], {"init", "--tenant", "praxis", "--user", "anna", "--password-file", missing.passwordFile("pw")}} {
		_, err := missing.run(args...)
		if err == nil || !strings.Contains(err.Error(), `PostgreSQL database "red_no_such_database"`) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("red %s: err = %v", args[0], err)
		}
	}
}

// A port that is taken is named as such, with the way out.
func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "pw")
	for _, cmd := range [][]string{
		{"serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw")},
		{"demo"},
	} {
		out, err := in.run(append(cmd, "--port", port)...)
		if err == nil {
			t.Fatalf("red %s served on a taken port:\n%s", cmd[0], out)
		}
		for _, want := range []string{"port " + port + " on 127.0.0.1 is taken", "--port"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("red %s: the message lacks %q: %v", cmd[0], want, err)
			}
		}
	}
}

package cli_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's driver "pgx"

	"github.com/redclone/red/internal/audit"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/postgres/pgtest"
	"github.com/redclone/red/storage/sqlite"
)

// serveAs starts red serve for anna on the workstation ws.
func (in *instance) serveAs(ws string) *server {
	return in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--workstation", ws)
}

// audit runs red audit with anna's login (an admin: red keeps no roles yet).
func (in *instance) audit(args ...string) (string, error) {
	return in.run(append([]string{"audit", "--tenant", "praxis", "--admin", "anna", "--password-file", in.passwordFile("pw")}, args...)...)
}

func TestAuditShowsAReadOfAnotherWorkstation(t *testing.T) {
	in := newInstance(t, pgtest.URL(t))
	in.initTenant("praxis", "anna", "pw")
	reception := in.serveAs("empfang")
	consulting := in.serveAs("sprechzimmer")
	if status, body := reception.do(t, "POST", "/praxis/Bundle", fhirXML, patientsBundle(t)); status != http.StatusOK {
		t.Fatal(status, body)
	}
	if status, body := consulting.do(t, "GET", "/praxis/Patient/60151", "", nil); status != http.StatusOK {
		t.Fatal(status, body)
	}
	if status, _ := consulting.do(t, "GET", "/praxis/Patient/60152", "", nil); status != http.StatusOK {
		t.Fatal(status)
	}
	for _, s := range []*server{reception, consulting} {
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
	}

	host, _ := os.Hostname() // red audit's workstation
	table, err := in.audit("--patient", "60151")
	if err != nil {
		t.Fatal(err, table)
	}
	rows := regexp.MustCompile(`(?m)^\S+ \S+\s+anna\s+(\S+)\s+-\s+(\S+)\s+(.+?)\s+(\S+)$`).FindAllStringSubmatch(table, -1)
	var got []string
	for _, r := range rows {
		got = append(got, strings.Join(r[1:], " | "))
	}
	want := []string{"empfang | create | Patient, Bundle (Bundle history) | success", "sprechzimmer | read | Patient | success"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the events concerning Patient/60151:\n%s\nwant rows %q", table, want)
	}

	t.Run("as JSON", func(t *testing.T) {
		out, err := in.audit("--patient", "60151", "--format", "json")
		if err != nil {
			t.Fatal(err, out)
		}
		var found []struct {
			ID, Workstation, Action, Type string
			Entities                      []struct{ Token []byte }
		}
		if err := json.Unmarshal([]byte(out), &found); err != nil || len(found) != 3 {
			t.Fatalf("%d events, want the create, the read and the reading of the trail before (%v):\n%s", len(found), err, out)
		}
		if f := found[1]; f.Workstation != "sprechzimmer" || f.Action != audit.Read || len(f.Entities) != 1 || len(f.Entities[0].Token) != 16 || f.ID == "" {
			t.Errorf("the read: %+v", f)
		}
		if f := found[2]; f.Workstation != host || f.Action != audit.Search || f.Type != "AuditEvent" {
			t.Errorf("the reading of the trail: %+v", f)
		}
	})
	t.Run("by user and time", func(t *testing.T) {
		if out, err := in.audit("--patient", "60151", "--user", "ben"); err != nil || !strings.Contains(out, "no event of user ben concerning Patient/60151") {
			t.Errorf("ben's events: %v\n%s", err, out)
		}
		if out, err := in.audit("--patient", "60151", "--since", "2999-01-01"); err != nil || !strings.Contains(out, "no event") {
			t.Errorf("events since 2999: %v\n%s", err, out)
		}
		if out, err := in.audit("--patient", "60151", "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("--since yesterday: %v\n%s", err, out)
		}
	})
	t.Run("the trail verifies, with the reading of it", func(t *testing.T) {
		out, err := in.audit("verify")
		if err != nil {
			t.Fatal(err, out)
		}
		for _, want := range []string{"(anna on empfang, started", "(anna on sprechzimmer, started", "(anna on " + host + ", started", "closed", "the audit trail is intact"} {
			if !strings.Contains(out, want) {
				t.Errorf("verify's report lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("needs a login", func(t *testing.T) {
		out, err := in.run("audit", "--tenant", "praxis", "--admin", "anna", "--password-file", in.passwordFile("wrong"), "--patient", "60151")
		if err == nil || strings.Contains(out, "60151") {
			t.Fatalf("a wrong password read the trail: %v\n%s", err, out)
		}
	})
}

// auditRows changes the trail's rows in a store behind red's back; the vault finds the rows.
type auditRows struct {
	t       *testing.T
	barrier *vault.Barrier
	db      *sql.DB
	dialect func(string) string
}

func openAuditRows(t *testing.T, in *instance) auditRows {
	ctx := context.Background()
	r := auditRows{t: t, dialect: func(q string) string { return q }}
	var st storage.Store
	var err error
	if in.dbURL != "" {
		st, err = postgres.Open(ctx, in.dbURL)
		if err == nil {
			r.db, err = sql.Open("pgx", in.dbURL)
		}
	} else {
		path := filepath.Join(in.dir, "red.db")
		dollar := regexp.MustCompile(`\$(\d+)`)
		r.dialect = func(q string) string { return dollar.ReplaceAllString(q, "?$1") }
		st, err = sqlite.Open(ctx, path)
		if err == nil {
			r.db, err = sql.Open("sqlite", path)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close(); st.Close() })
	cred, err := st.Credential(ctx, "praxis", "anna")
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New("praxis", rand.Reader)
	if err := v.Unseal("anna", cred.Blob, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Lock)
	r.barrier = v.Barrier(st)
	return r
}

func (r auditRows) exec(q string, args ...any) {
	if _, err := r.db.Exec(r.dialect(q), args...); err != nil {
		r.t.Fatal(err)
	}
}

func (r auditRows) sealed(id []byte) (b []byte) {
	if err := r.db.QueryRow(r.dialect(`SELECT sealed FROM resources WHERE type = 'red:audit' AND id = $1`), id).Scan(&b); err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r auditRows) id(chain, seq string) []byte {
	tok, err := r.barrier.IDToken("red:audit", chain+"/"+seq)
	if err != nil {
		r.t.Fatal(err)
	}
	return tok
}

func (r auditRows) setSealed(id, sealed []byte) {
	r.exec(`UPDATE resources SET sealed = $1 WHERE type = 'red:audit' AND id = $2`, sealed, id)
}

var chainLine = regexp.MustCompile(`(?m)^(?:ok|open)\s+chain (\S+) \(anna on \S+, started [^)]+\): (\d+) records`)

// TestAuditVerifyNamesTampering serves three sessions, then edits one record's sealed bytes in
// the first chain, deletes a record of the second and swaps two of the third with SQL — red audit
// verify names each, and fails.
func TestAuditVerifyNamesTampering(t *testing.T) {
	onEachBackend(t, func(t *testing.T, in *instance) {
		for range 3 {
			srv := in.serveAs("empfang")
			for range 3 {
				if status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, patientsBundle(t)); status != http.StatusOK {
					t.Fatal(status, body)
				}
			}
			if err := srv.stop(); err != nil {
				t.Fatal(err)
			}
		}
		out, err := in.audit("verify")
		if err != nil {
			t.Fatal(err, out)
		}
		chains := chainLine.FindAllStringSubmatch(out, -1)
		if len(chains) < 3 {
			t.Fatalf("want the three sessions' chains:\n%s", out)
		}
		for _, c := range chains[:3] {
			if c[2] != "5" {
				t.Fatalf("chain %s has %s records, want its opening, three writes and its close:\n%s", c[1], c[2], out)
			}
		}
		rows := openAuditRows(t, in)
		one, two, three := chains[0][1], chains[1][1], chains[2][1]
		edited := rows.sealed(rows.id(one, "3"))
		edited[40] ^= 0x20
		rows.setSealed(rows.id(one, "3"), edited)
		for _, table := range []string{"resources", "heads", "tokens"} {
			rows.exec(`DELETE FROM `+table+` WHERE type = 'red:audit' AND id = $1`, rows.id(two, "2"))
		}
		a, b := rows.sealed(rows.id(three, "2")), rows.sealed(rows.id(three, "4"))
		rows.setSealed(rows.id(three, "2"), b)
		rows.setSealed(rows.id(three, "4"), a)

		out, err = in.audit("verify")
		if err == nil || !strings.Contains(err.Error(), "the audit trail is broken: chain "+one+", record 3, ") {
			t.Fatalf("verify after tampering: %v\n%s", err, out)
		}
		for _, want := range []string{
			"BREAK  chain " + one + " (anna on empfang, started ", "): record 3: the record does not open: its sealed bytes were altered",
			"BREAK  chain " + two + " (", "): record 2: the record is missing (removed from the database)",
			"BREAK  chain " + three + " (", "): record 2: the record does not open",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("verify's report lacks %q:\n%s", want, out)
			}
		}
	})
}

package cli_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/storage/postgres/pgtest"
)

// secrets are the person data in testdata/bundles/patients.xml.
var secrets = []string{
	"Quästorius", "Wilhelmine", "Eichelberger", "Bartholomäus", // names
	"1957-03-21", "1988-11-05", // birth dates
	"X110614233", "K010124021", // KVNRs
	"Zaunkönigweg", "Hagebuttenstraße", "Radebeul", "Meißen", "01445", "01662", // addresses
	"4471928", "55501234", // phone numbers
	"60151", "60152", // patient ids (a KVNR may be one)
}

// leaks lists the secrets found in raw bytes, in plain text or hex-encoded.
func leaks(raw []byte) []string {
	var found []string
	lower := strings.ToLower(string(raw))
	for _, s := range secrets {
		if strings.Contains(string(raw), s) || strings.Contains(lower, hex.EncodeToString([]byte(s))) {
			found = append(found, s)
		}
	}
	return found
}

func postPatients(t *testing.T, in *instance) {
	if found := leaks(patientsBundle(t)); len(found) != len(secrets) {
		t.Fatalf("the check itself finds only %d of %d secrets in the bundle", len(found), len(secrets))
	}
	in.initTenant("praxis", "anna", "pw")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	for i := 0; i < 2; i++ { // create, then update
		if status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, patientsBundle(t)); status != http.StatusOK {
			t.Fatal(status, body)
		}
	}
	// searches write nothing, but prove the tokens work before we look at the bytes
	if _, body := srv.do(t, "GET", "/praxis/Patient?identifier=X110614233", "", nil); !strings.Contains(body, `<total value="1"/>`) {
		t.Fatalf("search before the check failed:\n%s", body)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if found := leaks([]byte(srv.output.String())); len(found) > 0 {
		t.Errorf("the log holds person data: %v", found)
	}
}

func TestConfidentialitySQLite(t *testing.T) {
	in := newInstance(t, "")
	postPatients(t, in)
	files, _ := filepath.Glob(filepath.Join(in.dir, "*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		raw := readFile(t, f)
		if found := leaks(raw); len(found) > 0 {
			t.Errorf("%s holds plaintext person data: %v", filepath.Base(f), found)
		}
	}
	if found := leaks(readFile(t, filepath.Join(in.dir, "red.db"))); len(found) > 0 {
		t.Errorf("red.db: %v", found)
	}
	// the temp directory holds nothing else of ours
	tmp, _ := os.ReadDir(os.TempDir())
	for _, e := range tmp {
		if strings.HasPrefix(e.Name(), "red") && !e.IsDir() {
			t.Errorf("stray temp file %s", e.Name())
		}
	}
}

func TestConfidentialityPostgres(t *testing.T) {
	url := pgtest.URL(t)
	in := newInstance(t, url)
	postPatients(t, in)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog','information_schema') AND table_type='BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var schema, name string
		if err := rows.Scan(&schema, &name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, pgx.Identifier{schema, name}.Sanitize())
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(tables) < 3 {
		t.Fatalf("only %d tables: %v", len(tables), tables)
	}
	rowCount := 0
	for _, tbl := range tables {
		// every column of every row, bytea as hex, as text
		r, err := conn.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s t`, tbl))
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var text string
			if err := r.Scan(&text); err != nil {
				t.Fatal(err)
			}
			rowCount++
			if found := leaks([]byte(text)); len(found) > 0 {
				t.Errorf("table %s holds plaintext person data: %v", tbl, found)
			}
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
	}
	if rowCount < 8 {
		t.Errorf("only %d rows read; the check looked at too little", rowCount)
	}
}

// Two workstations (two red serve processes) on one PostgreSQL database and tenant update the
// same patient at once: every acknowledged write is a new version, the rest get 409.
func TestTwoWorkstationsOnePostgres(t *testing.T) {
	url := pgtest.URL(t)
	in := newInstance(t, url)
	in.initTenant("praxis", "anna", "pw")
	a := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	b := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	bundle := []byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>` + patientEntry(t, "shared", 'S', 1) + `</Bundle>`)

	const perServer = 15
	var mu sync.Mutex
	ok, conflicts := 0, 0
	var wg sync.WaitGroup
	for _, srv := range []*server{a, b, a, b} {
		wg.Add(1)
		go func(srv *server) {
			defer wg.Done()
			for i := 0; i < perServer; i++ {
				status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, bundle)
				mu.Lock()
				switch status {
				case http.StatusOK:
					ok++
				case http.StatusConflict:
					conflicts++
					if !strings.Contains(body, `<code value="conflict"/>`) {
						t.Errorf("409 without conflict outcome:\n%s", body)
					}
				default:
					t.Errorf("status %d\n%s", status, body)
				}
				mu.Unlock()
			}
		}(srv)
	}
	wg.Wait()
	_, body := b.do(t, "GET", "/praxis/Patient/shared", "", nil)
	want := fmt.Sprintf(`<versionId value="%d"/>`, ok)
	if !strings.Contains(body, want) {
		t.Errorf("%d writes acknowledged (%d conflicts) but the patient reads:\n%s", ok, conflicts, body)
	}
	t.Logf("%d acknowledged, %d conflicts", ok, conflicts)
	for v := 1; v <= ok; v++ {
		if status, _ := a.do(t, "GET", fmt.Sprintf("/praxis/Patient/shared/_history/%d", v), "", nil); status != 200 {
			t.Errorf("version %d: %d", v, status)
		}
	}
}

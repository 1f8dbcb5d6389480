package cli_test

import (
	"bytes"
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
	// patientenakte.xml: every resource type
	"Musterfrau", "M123456785", "1964-08-12", "Heidestraße", "51147", "erika.musterfrau", // patient
	"J06.9", "Akute Infektion der oberen Atemwege", "Beschwerden seit fünf Tagen", // diagnosis
	"Kontrolle nach Infekt", "Husten und Schnupfen", "Rachen gerötet", // encounter, findings
	"Ramipril", "Wird gut vertragen", // medication
	"RE-2025-00417", "DE02120300000000202051", // invoice number, IBAN
	"JVBERi0xLjQK", "Arztbrief_Kardiologie.pdf", // the document and its name
	"P1001", "E2001", "C5001", "D6001", // ids
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

// postPatients posts the bundles to a red with a full-resource Subscription whose notifications
// (the outbox) carry all of it; it returns the Subscription's webhook secret, which must not be
// found in plaintext either.
func postPatients(t *testing.T, in *instance) (webhookSecret string) {
	all := append(patientsBundle(t), readFile(t, filepath.Join("..", "..", "testdata", "bundles", "patientenakte.xml"))...)
	if found := leaks(all); len(found) != len(secrets) {
		t.Fatalf("the check itself finds only %d of %d secrets in the bundle", len(found), len(secrets))
	}
	in.initTenant("praxis", "anna", "pw")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	akte := readFile(t, filepath.Join("..", "..", "testdata", "bundles", "patientenakte.xml"))
	h := newHook(t)
	status, created := srv.do(t, "POST", "/praxis/Subscription", fhirXML, []byte(strings.Replace(string(subscriptionBody("Patient", h.url)),
		`<payload value="application/fhir+xml"/>`, `<payload value="application/fhir+xml"><extension url="http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"><valueCode value="full-resource"/></extension></payload>`, 1)))
	m := secretValue.FindStringSubmatch(created)
	if status != http.StatusCreated || m == nil {
		t.Fatalf("%d\n%s", status, created)
	}
	for _, b := range [][]byte{patientsBundle(t), patientsBundle(t), akte} { // create, update, every type
		if status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, b); status != http.StatusOK {
			t.Fatal(status, body)
		}
	}
	// the notifications went out with the person data (full-resource): the outbox had them
	if got := h.waitFor(t, 3); !strings.Contains(got[len(got)-1].body, "Musterfrau") {
		t.Fatalf("the last notification lacks the patient:\n%s", got[len(got)-1].body)
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
	return m[1]
}

func TestConfidentialitySQLite(t *testing.T) {
	in := newInstance(t, "")
	// red's temporary files, if it made any, land in a directory of this test's own: other
	// programs' files in the system's temp directory are none of its business
	tmp := t.TempDir()
	for _, v := range []string{"TMPDIR", "TMP", "TEMP"} {
		t.Setenv(v, tmp)
	}
	secret := postPatients(t, in)
	files, _ := filepath.Glob(filepath.Join(in.dir, "red.db*")) // ti-sim/ is the simulated remote services' state
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		raw := readFile(t, f)
		if found := leaks(raw); len(found) > 0 {
			t.Errorf("%s holds plaintext person data: %v", filepath.Base(f), found)
		}
		if strings.Contains(string(raw), secret) || strings.Contains(string(raw), secret[len("whsec_"):]) {
			t.Errorf("%s holds the webhook secret in plaintext", filepath.Base(f))
		}
	}
	if found := leaks(readFile(t, filepath.Join(in.dir, "red.db"))); len(found) > 0 {
		t.Errorf("red.db: %v", found)
	}
	// red left no temporary files behind
	stray, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range stray {
		t.Errorf("stray temp file %s", e.Name())
	}
}

func TestConfidentialityPostgres(t *testing.T) {
	url := pgtest.URL(t)
	in := newInstance(t, url)
	secret := []byte(postPatients(t, in)[len("whsec_"):])
	postgresLeaks(t, url, func(raw []byte) []string {
		found := leaks(raw)
		if bytes.Contains(raw, secret) {
			found = append(found, "the webhook secret")
		}
		return found
	})
}

// postgresLeaks reports what leaks finds in the text and binary columns of every table of the
// database at url.
func postgresLeaks(t *testing.T, url string, leaks func(raw []byte) []string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// every text and binary column of every table (timestamps and numbers carry no person data,
	// and their digits could match a numeric id by chance)
	rows, err := conn.Query(ctx, `SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema NOT IN ('pg_catalog','information_schema') AND t.table_type = 'BASE TABLE'
		AND c.data_type IN ('bytea', 'text', 'character varying', 'json', 'jsonb')`)
	if err != nil {
		t.Fatal(err)
	}
	columns := map[string][]string{}
	for rows.Next() {
		var schema, table, column string
		if err := rows.Scan(&schema, &table, &column); err != nil {
			t.Fatal(err)
		}
		tbl := pgx.Identifier{schema, table}.Sanitize()
		columns[tbl] = append(columns[tbl], pgx.Identifier{column}.Sanitize())
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(columns) < 3 {
		t.Fatalf("only %d tables: %v", len(columns), columns)
	}
	rowCount := 0
	for tbl, cols := range columns {
		for _, col := range cols {
			// binary columns are read as bytes (not as hex text, where short digit runs occur by chance)
			r, err := conn.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s`, col, tbl), pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatal(err)
			}
			for r.Next() {
				vals, err := r.Values()
				if err != nil {
					t.Fatal(err)
				}
				rowCount++
				var raw []byte
				switch v := vals[0].(type) {
				case []byte:
					raw = v
				case string:
					raw = []byte(v)
				case nil:
				default:
					raw = []byte(fmt.Sprint(v))
				}
				if found := leaks(raw); len(found) > 0 {
					t.Errorf("column %s.%s holds plaintext person data: %v", tbl, col, found)
				}
			}
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
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

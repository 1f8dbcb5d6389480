package cli_test

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/internal/fixture"
)

// goldenTypes are the resource types with golden HTTP exchanges under testdata/http/<Type>/: each
// directory holds valid.xml (a KBV AWS Patientenakte that creates the type and what it needs),
// broken-*.xml (the same bundle with one defect a person could type, which the profiles or red's
// rules refuse) and warn-*.xml (one implausible value, which red stores with a warning in the
// default validation mode). Every directory uses its own
// ids, so a directory's goldens do not depend on the others; the types whose search lists the whole
// tenant (?page=1) come first, before other directories add resources of their type.
var goldenTypes = []struct {
	typ    string // directory and resource type
	id     string // the resource read back
	search string // RED's search for it (red-api.md §3)
}{
	{"Organization", "O40101", "Organization?page=1"},
	{"Practitioner", "A30202", "Practitioner?page=1"},
	{"Patient", "P10301", "Patient?page=1"},
	{"PractitionerRole", "R30401", "PractitionerRole?page=1&practitioner=Practitioner/A30402"},
	{"Coverage", "V10501", "Coverage?page=1&beneficiary=Patient/P10501"},
	{"Encounter", "E20601", "Encounter?page=1&subject=Patient/P10601&from=20251101&to=20251130"},
	{"Condition", "C50701", "Condition?page=1&subject=Patient/P10701"},
	{"Observation", "B70801", "Observation?page=1&subject=Patient/P10801&_ExportObservationTables=true"},
	{"Claim", "K90901", "Claim?page=1&patient=Patient/P10901"},
	{"DocumentReference", "D61001", "DocumentReference?page=1&subject=Patient/P11001&_summary=true"},
	{"Medication", "M81101", "Medication?page=1&subject=Patient/P11101"},
	{"MedicationStatement", "MS81202", "MedicationStatement?page=1&subject=Patient/P11201"},
	{"MedicationRequest", "MR81303", "MedicationRequest?page=1&subject=Patient/P11301"},
	{"Provenance", "PV91401", "Provenance?page=1&target=Condition/C51401"},
}

// TestGoldenHTTP posts each type's valid bundle to one real server, reads the resource, reads its
// version 1, runs the type's RED search and posts every broken and every warned bundle, comparing
// each answer with testdata/http/<Type>/<case>.golden (go test -run Golden -update rewrites them).
func TestGoldenHTTP(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "pw")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))

	for _, gt := range goldenTypes {
		t.Run(gt.typ, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "http", gt.typ)
			stored := t.Run("stores the valid bundle", func(t *testing.T) {
				status, got := exchangeGolden(t, srv, "POST", "/praxis/Bundle", readFile(t, filepath.Join(dir, "valid.xml")))
				if status != http.StatusOK {
					t.Errorf("status %d, want 200", status)
				}
				mustContain(t, "transaction-response", got, `<location value="`+gt.typ+"/"+gt.id+`/_history/1"/>`)
				fixture.Golden(t, filepath.Join(dir, "post-valid.golden"), []byte(got))
			})
			if !stored {
				t.Fatal("the valid bundle was not stored; the other cases would only repeat that")
			}
			t.Run("reads the current version", func(t *testing.T) {
				status, got := exchangeGolden(t, srv, "GET", "/praxis/"+gt.typ+"/"+gt.id, nil)
				if status != http.StatusOK {
					t.Errorf("status %d, want 200", status)
				}
				mustContain(t, "read", got, `<versionId value="1"/>`)
				fixture.Golden(t, filepath.Join(dir, "read.golden"), []byte(got))
			})
			t.Run("reads version 1", func(t *testing.T) {
				status, got := exchangeGolden(t, srv, "GET", "/praxis/"+gt.typ+"/"+gt.id+"/_history/1", nil)
				if status != http.StatusOK {
					t.Errorf("status %d, want 200", status)
				}
				mustContain(t, "version 1", got, `<versionId value="1"/>`)
				fixture.Golden(t, filepath.Join(dir, "read-history-1.golden"), []byte(got))
			})
			t.Run("finds it with RED's search", func(t *testing.T) {
				status, got := exchangeGolden(t, srv, "GET", "/praxis/"+gt.search, nil)
				if status != http.StatusOK {
					t.Errorf("status %d, want 200", status)
				}
				mustContain(t, "searchset", got, `<fullUrl value="/`+gt.typ+"/"+gt.id+`"/>`)
				fixture.Golden(t, filepath.Join(dir, "search.golden"), []byte(got))
			})

			broken, err := filepath.Glob(filepath.Join(dir, "broken-*.xml"))
			if err != nil {
				t.Fatal(err)
			}
			if len(broken) < 2 {
				t.Errorf("%s has %d broken bundles, want at least 2", dir, len(broken))
			}
			for _, path := range broken {
				name := strings.TrimSuffix(filepath.Base(path), ".xml")
				t.Run("rejects "+name+" and stores nothing", func(t *testing.T) {
					body := readFile(t, path)
					before := storeState(t, srv, gt.search, body)
					status, got := exchangeGolden(t, srv, "POST", "/praxis/Bundle", body)
					if status != http.StatusBadRequest {
						t.Errorf("status %d, want 400", status)
					}
					mustContain(t, "outcome", got, "<OperationOutcome", `<severity value="error"/>`)
					if after := storeState(t, srv, gt.search, body); after != before {
						t.Errorf("the rejected bundle changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
					}
					fixture.Golden(t, filepath.Join(dir, name+".golden"), []byte(got))
				})
			}

			warned, err := filepath.Glob(filepath.Join(dir, "warn-*.xml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range warned {
				name := strings.TrimSuffix(filepath.Base(path), ".xml")
				t.Run("stores "+name+" with a warning", func(t *testing.T) {
					status, got := exchangeGolden(t, srv, "POST", "/praxis/Bundle", readFile(t, path))
					if status != http.StatusOK {
						t.Errorf("status %d, want 200", status)
					}
					mustContain(t, "transaction-response", got, `<severity value="warning"/>`)
					if strings.Contains(got, `<severity value="error"/>`) {
						t.Errorf("a warned bundle has errors:\n%s", got)
					}
					fixture.Golden(t, filepath.Join(dir, name+".golden"), []byte(got))
				})
			}
		})
	}
}

// exchangeGolden sends one request and returns its status and the golden text: the request line
// as a comment, the response's status line, its Content-Type and its masked body.
func exchangeGolden(t testing.TB, srv *server, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", fhirXML)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var g strings.Builder
	g.WriteString("# " + method + " " + path + "\n")
	g.WriteString(resp.Proto + " " + resp.Status + "\n")
	g.WriteString("Content-Type: " + resp.Header.Get("Content-Type") + "\n\n")
	g.WriteString(maskVolatile(string(b)))
	return resp.StatusCode, g.String()
}

// volatile are the parts of an answer that change from run to run, and their placeholders.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	// instants the server writes (meta.lastUpdated, response.lastModified): UTC, milliseconds
	{regexp.MustCompile(`(<(?:lastUpdated|lastModified) value=")\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z(")`), "${1}{instant}${2}"},
	// the random id of a searchset or of a transaction-response to a bundle without a usable id
	{regexp.MustCompile(`(<Bundle xmlns="http://hl7.org/fhir">\s*<id value=")[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(")`), "${1}{uuid}${2}"},
	// a search's parameters, sealed into paging links with a fresh nonce each time
	{regexp.MustCompile(`([?&;]_q=)[A-Za-z0-9_-]+`), "${1}{sealed}"},
	// the narrative's time of the last change, in Berlin time
	{regexp.MustCompile(`(zuletzt bearbeitet )\d\d\.\d\d\.\d{4} \d\d:\d\d`), "${1}TT.MM.JJJJ hh:mm"},
}

// searchEntry is one top-level entry of an indented Bundle.
var searchEntry = regexp.MustCompile(`(?s)\n  <entry>\n.*?\n  </entry>`)

// maskVolatile replaces the volatile parts of body by placeholders, and orders a searchset's
// entries by fullUrl: red pages in the order of blind-index tokens, which are keyed per tenant, so
// the order of several matches differs between runs.
func maskVolatile(body string) string {
	for _, v := range volatile {
		body = v.re.ReplaceAllString(body, v.with)
	}
	if strings.Contains(body, `<type value="searchset"/>`) {
		locs := searchEntry.FindAllStringIndex(body, -1)
		if len(locs) > 1 {
			entries := make([]string, len(locs))
			for i, l := range locs {
				entries[i] = body[l[0]:l[1]]
			}
			sort.Strings(entries) // each starts with its fullUrl
			var b strings.Builder
			b.WriteString(body[:locs[0][0]])
			for i, l := range locs {
				b.WriteString(entries[i])
				end := len(body)
				if i+1 < len(locs) {
					end = locs[i+1][0]
				}
				b.WriteString(body[l[1]:end])
			}
			body = b.String()
		}
	}
	return body
}

// storeState is what a rejected bundle must leave as it was: the current version of every resource
// the bundle names (or its absence) and the type's search.
func storeState(t testing.TB, srv *server, search string, bundle []byte) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(bundle); err != nil {
		t.Fatalf("broken bundles are well-formed XML with a defect in their content: %v", err)
	}
	var b strings.Builder
	for _, res := range doc.FindElements("/Bundle/entry/resource/*") {
		id := res.SelectElement("id")
		if id == nil {
			continue
		}
		path := "/praxis/" + res.Tag + "/" + id.SelectAttrValue("value", "")
		status, body := srv.do(t, "GET", path, "", nil)
		b.WriteString(path + " " + http.StatusText(status) + "\n" + body + "\n")
	}
	status, body := srv.do(t, "GET", "/praxis/"+search, "", nil)
	b.WriteString(search + " " + http.StatusText(status) + "\n" + maskVolatile(body))
	return b.String()
}

package cli_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redclone/red/storage/postgres/pgtest"
)

// Two users of different user groups serve the same PostgreSQL database at two workstations:
// what ben posts into his group (testdata/bundles/group.xml) reaches cem through no endpoint,
// search parameter, paging link, _history or DELETE — each answers as for data never posted —
// while ben sees it all; the database holds no group id in plaintext.
func TestUserGroupsAcrossWorkstations(t *testing.T) {
	url := pgtest.URL(t)
	in := newInstance(t, url)
	in.initTenant("praxis", "anna", "pw")
	in.addUser("ben", "bens", "physician")
	in.addUser("cem", "cems", "physician")
	for _, args := range [][]string{
		{"group", "add", "gruppe-kardiologie", "--name", "Kardiologie"},
		{"group", "add", "gruppe-orthopaedie", "--name", "Orthopädie"},
		{"group", "member", "add", "gruppe-kardiologie", "ben"},
		{"group", "member", "add", "gruppe-orthopaedie", "cem"},
	} {
		in.mustRun(in.as("anna", "pw", args...)...)
	}
	ben := in.serve(in.as("ben", "bens", "serve", "--workstation", "kardio", "--notify-off")...)
	cem := in.serve(in.as("cem", "cems", "serve", "--workstation", "ortho", "--notify-off")...)
	mustContain(t, "ben's server", ben.output.String(), "groups gruppe-kardiologie")
	for _, name := range []string{"patientenakte.xml", "group.xml"} {
		if status, body := ben.do(t, "POST", "/praxis/Bundle", fhirXML, readFile(t, filepath.Join("..", "..", "testdata", "bundles", name))); status != http.StatusOK {
			t.Fatalf("posting %s: %d\n%s", name, status, body)
		}
	}

	t.Run("reads and versions answer as for ids never posted", func(t *testing.T) {
		for _, path := range []string{"Patient/P7001", "Encounter/E7001", "DocumentReference/D7001", "DocumentReference/D7002", "Provenance/PV7001", "Provenance/PV7002", "Patient/P7001/_history/1", "DocumentReference/D7001/_history/1"} {
			never := regexp.MustCompile(`[A-Z]+\d{4}`).ReplaceAllString(path, "N0N0N0")
			wantStatus, wantBody := cem.do(t, "GET", "/praxis/"+never, "", nil)
			status, body := cem.do(t, "GET", "/praxis/"+path, "", nil)
			if status != http.StatusNotFound || status != wantStatus || body != wantBody {
				t.Errorf("cem reads %s: %d\n%s\nwant %d\n%s", path, status, body, wantStatus, wantBody)
			}
			if status, body := ben.do(t, "GET", "/praxis/"+path, "", nil); status != http.StatusOK {
				t.Errorf("ben reads %s: %d\n%s", path, status, body)
			}
		}
	})

	t.Run("searches skip it and do not count it", func(t *testing.T) {
		for _, c := range []struct {
			query    string
			ben, cem int
		}{
			{"Patient?_id=P7001", 1, 0},
			{"Patient?_id=P7001,P1001", 2, 1},
			{"Patient?identifier=http://fhir.de/NamingSystem/gkv/kvid-10%7CM123456785", 2, 1},
			{"Patient?family=Musterfrau", 2, 1},
			{"Patient?page=1", 2, 1},
			{"Encounter?subject=Patient/P7001", 1, 0},
			{"Encounter?patient=P7001&from=20250101", 1, 0},
			{"DocumentReference?subject=Patient/P7001", 2, 0},
			{"DocumentReference?encounter=Encounter/E7001&_summary=true", 2, 0},
			{"DocumentReference?_id=D7001,D6001", 2, 1},
			{"Provenance?target=DocumentReference/D7001", 1, 0},
			{"Provenance?page=1", 3, 1},
			{"Organization?page=1", 1, 1},
		} {
			for _, s := range []struct {
				who  string
				srv  *server
				want int
			}{{"ben", ben, c.ben}, {"cem", cem, c.cem}} {
				status, body := s.srv.do(t, "GET", "/praxis/"+c.query, "", nil)
				if status != http.StatusOK || !strings.Contains(body, `<total value="`+strconv.Itoa(s.want)+`"/>`) {
					t.Errorf("%s searches %s: %d, want total %d\n%s", s.who, c.query, status, s.want, body)
				}
				if s.who == "cem" && regexp.MustCompile(`[PEDV]7001|D7002`).MatchString(body) {
					t.Errorf("cem's %s names the group's data:\n%s", c.query, body)
				}
			}
		}
	})

	t.Run("a paging link leads to nothing of it", func(t *testing.T) {
		_, body := ben.do(t, "GET", "/praxis/DocumentReference?subject=Patient/P7001&_count=1", "", nil)
		next := regexp.MustCompile(`<next>\s*<relation value="next"/>\s*<url value="([^"]+)"/>`).FindStringSubmatch(body)
		if next == nil {
			t.Fatalf("ben's first page has no next link:\n%s", body)
		}
		link := strings.ReplaceAll(next[1], "&amp;", "&")
		if status, body := cem.do(t, "GET", link, "", nil); status != http.StatusOK || !strings.Contains(body, `<total value="0"/>`) || strings.Contains(body, "<entry>") {
			t.Errorf("cem follows ben's link %s: %d\n%s", link, status, body)
		}
		if status, body := ben.do(t, "GET", link, "", nil); status != http.StatusOK || !strings.Contains(body, `<total value="2"/>`) {
			t.Errorf("ben follows his link: %d\n%s", status, body)
		}
	})

	t.Run("the TI's patient lookup does not know the patient", func(t *testing.T) {
		if status, body := cem.do(t, "GET", "/praxis/TI?action=$openpatient&id=P7001", "", nil); status != http.StatusNotFound {
			t.Errorf("cem: %d\n%s", status, body)
		}
		if status, body := ben.do(t, "GET", "/praxis/TI?action=$openpatient&id=P7001", "", nil); status != http.StatusOK {
			t.Errorf("ben: %d\n%s", status, body)
		}
	})

	t.Run("deletions and updates are refused as if it were absent", func(t *testing.T) {
		if status, body := cem.do(t, "DELETE", "/praxis/Bundle/30000", "", nil); status != http.StatusNotFound || !strings.Contains(body, "no bundle with this id was posted") {
			t.Errorf("cem deletes the group's bundle: %d\n%s", status, body)
		}
		del := []byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/><entry><request><method value="DELETE"/><url value="Patient/P7001"/></request></entry></Bundle>`)
		if status, body := cem.do(t, "POST", "/praxis/Bundle", fhirXML, del); status != http.StatusOK || !strings.Contains(body, `<status value="204 No Content"/>`) || strings.Contains(body, "_history") {
			t.Errorf("cem deletes the patient: %d\n%s", status, body)
		}
		update := bytes.Replace(readFile(t, filepath.Join("..", "..", "testdata", "bundles", "group.xml")), []byte(`<id value="30000"/>`), []byte(`<id value="30001"/>`), 1)
		update = regexp.MustCompile(`(?s)  <entry>\s*<fullUrl value="http://praxis.example/fhir/Provenance.*?</entry>\n`).ReplaceAll(update, nil)
		status, body := cem.do(t, "POST", "/praxis/Bundle", fhirXML, update)
		if status != http.StatusForbidden {
			t.Errorf("cem writes over the group's data: %d\n%s", status, body)
		}
		mustContain(t, "refusal", body, "Bundle.entry[0].resource", "Patient/P7001 cannot be written: the id is taken by data you may not see")
		for _, path := range []string{"Patient/P7001", "DocumentReference/D7002"} {
			if status, body := ben.do(t, "GET", "/praxis/"+path, "", nil); status != http.StatusOK || !strings.Contains(body, `<versionId value="1"/>`) {
				t.Errorf("ben reads %s after cem's attempts: %d\n%s", path, status, body)
			}
		}
	})

	t.Run("a member of no group may not put data into a group", func(t *testing.T) {
		b := bytes.Replace(readFile(t, filepath.Join("..", "..", "testdata", "bundles", "group.xml")), []byte("7001"), []byte("7101"), -1)
		b = bytes.ReplaceAll(b, []byte("D7002"), []byte("D7102"))
		status, body := cem.do(t, "POST", "/praxis/Bundle", fhirXML, b)
		if status != http.StatusForbidden {
			t.Errorf("%d\n%s", status, body)
		}
		mustContain(t, "refusal", body, "Bundle.entry[4].resource.agent.onBehalfOf.reference", "names user group gruppe-kardiologie, of which you are no member")
	})

	postgresLeaks(t, url, func(raw []byte) []string {
		var found []string
		for _, s := range []string{"gruppe-kardiologie", "gruppe-orthopaedie"} {
			if bytes.Contains(raw, []byte(s)) {
				found = append(found, s)
			}
		}
		return found
	})
}

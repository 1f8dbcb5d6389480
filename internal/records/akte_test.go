package records_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/records"
)

func readBundle(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bundles", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func postRaw(t testing.TB, s *records.Service, body []byte) (string, error) {
	t.Helper()
	b, err := fhir.Parse(body, fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.PostBundle(context.Background(), b)
	if err != nil {
		return "", err
	}
	return string(fhir.Document(resp)), nil
}

func search(t testing.TB, s *records.Service, typ, query string) fhir.SearchSet {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	set, err := s.Search(context.Background(), typ, q)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, query, err)
	}
	return set
}

func TestPatientenakte(t *testing.T) {
	s := newService(t)
	resp, err := postRaw(t, s, readBundle(t, "patientenakte.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(resp, `<status value="201 Created"/>`); n != 19 {
		t.Fatalf("%d created:\n%s", n, resp)
	}
	ctx := context.Background()
	enc, err := s.Read(ctx, "Encounter", "E2001")
	if err != nil {
		t.Fatal(err)
	}
	got := string(fhir.Marshal(enc))
	for _, want := range []string{
		`<reference value="Patient/P1001/_history/1"/>`,
		`<reference value="PractitionerRole/R3001/_history/1"/>`,
		`<reference value="Organization/O4001/_history/1"/>`, // an absolute fullUrl reference, resolved
		`<div xmlns="http://www.w3.org/1999/xhtml">Begegnung 04.11.2025 (V1) | ID E2001 | abgeschlossen | zuletzt bearbeitet 30.11.2026 09:00</div>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Encounter lacks %s:\n%s", want, got)
		}
	}
	pat, _ := s.Read(ctx, "Patient", "P1001")
	if div := pat.FindElement("text/div").Text(); !strings.HasPrefix(div, "Patient ") || !strings.Contains(div, "(V1) | ID P1001 |") {
		t.Errorf("patient narrative %q", div)
	}

	cases := []struct {
		typ, query string
		total      int
	}{
		{"PractitionerRole", "page=1", 1},
		{"PractitionerRole", "practitioner=Practitioner/A3002", 1},
		{"PractitionerRole", "organization=Organization/O4001", 1},
		{"PractitionerRole", "organization=Organization/none", 0},
		{"Organization", "page=1", 1},
		{"Claim", "page=1&patient=Patient/P1001", 3},
		{"Condition", "page=1&subject=Patient/P1001", 1},
		{"Encounter", "page=1&subject=Patient/P1001", 1},
		{"Encounter", "subject=Patient/P1001&from=20251101&to=20251130", 1},
		{"Encounter", "subject=Patient/P1001&from=20251105", 0},
		{"Encounter", "subject=Patient/P1001&to=20251103", 0},
		{"Observation", "page=1&subject=Patient/P1001", 4},
		{"Coverage", "page=1&beneficiary=Patient/P1001", 1},
		{"DocumentReference", "page=1&subject=Patient/P1001", 1}, // filed under its encounter
		{"DocumentReference", "encounter=Encounter/E2001", 1},
		{"Medication", "page=1&subject=Patient/P1001", 1},
		{"MedicationStatement", "subject=Patient/P1001", 1},
		{"MedicationRequest", "subject=Patient/P1001", 1},
		{"Provenance", "target=Condition/C5001", 1},
		{"Patient", "name=müll", 0},
		{"Practitioner", "page=1", 1},
	}
	for _, c := range cases {
		t.Run(c.typ+"?"+c.query, func(t *testing.T) {
			if set := search(t, s, c.typ, c.query); set.Total != c.total || len(set.Entries) != c.total {
				t.Errorf("total %d, %d entries, want %d", set.Total, len(set.Entries), c.total)
			}
		})
	}
}

func TestSearchRequiresThePatient(t *testing.T) {
	s := newService(t)
	for _, typ := range []string{"Claim", "Coverage"} {
		if _, err := s.Search(context.Background(), typ, url.Values{"page": {"1"}}); err == nil || !strings.Contains(err.Error(), "need the patient") {
			t.Errorf("%s without patient: %v", typ, err)
		}
	}
}

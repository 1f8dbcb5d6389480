package records_test

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// akteEntry returns the entry of patientenakte.xml holding typ/id, as XML.
func akteEntry(t testing.TB, typ, id string) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(readBundle(t, "patientenakte.xml")); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.Root().SelectElements("entry") {
		if res := fhir.ResourceOf(e.SelectElement("resource")); res != nil && res.Tag == typ && fhir.ChildValue(res, "id") == id {
			var b strings.Builder
			doc := etree.NewDocumentWithRoot(e.Copy())
			doc.WriteTo(&b)
			return b.String()
		}
	}
	t.Fatalf("no %s/%s in patientenakte.xml", typ, id)
	return ""
}

func bundle(id, typ string, entries ...string) []byte {
	head := `<Bundle xmlns="http://hl7.org/fhir">`
	if id != "" {
		head += `<id value="` + id + `"/>`
	}
	return []byte(head + `<type value="` + typ + `"/>` + strings.Join(entries, "") + `</Bundle>`)
}

func code(t testing.TB, err error) fhir.IssueCode {
	t.Helper()
	c := fhir.CodeOf(err)
	if c == "" {
		t.Fatalf("error %v carries no code for the caller", err)
	}
	return c
}

func TestDeleteBundle(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	if _, err := postRaw(t, s, readBundle(t, "patientenakte.xml")); err != nil {
		t.Fatal(err)
	}
	// a later bundle updates the patient and adds a diagnosis on the same encounter
	later := strings.ReplaceAll(akteEntry(t, "Condition", "C5001"), `"C5001"`, `"C5002"`)
	later = strings.ReplaceAll(later, "Condition/C5001", "Condition/C5002")
	if _, err := postRaw(t, s, bundle("20001", "history", akteEntry(t, "Patient", "P1001"), later)); err != nil {
		t.Fatal(err)
	}

	resp, err := s.DeleteBundle(ctx, "20000")
	if err != nil {
		t.Fatal(err)
	}
	out := string(fhir.Document(resp))
	kept := map[string]string{
		"Patient/P1001":          "a later bundle changed it",
		"Encounter/E2001":        "another resource still refers to it",
		"PractitionerRole/R3001": "another resource still refers to it",
		"Organization/O4001":     "another resource still refers to it",
		"Practitioner/A3002":     "another resource still refers to it",
	}
	for key, why := range kept {
		typ, id, _ := strings.Cut(key, "/")
		if _, err := s.Read(ctx, typ, id); err != nil {
			t.Errorf("%s was deleted: %v", key, err)
		}
		if !strings.Contains(out, why) {
			t.Errorf("the answer does not say %q:\n%s", why, out)
		}
	}
	for _, key := range []string{"Condition/C5001", "Observation/B7001", "Claim/K9101", "Claim/K9102", "Coverage/V1101", "DocumentReference/D6001", "Medication/M8001", "MedicationStatement/MS8002", "Provenance/PV9001"} {
		typ, id, _ := strings.Cut(key, "/")
		if _, err := s.Read(ctx, typ, id); err == nil || code(t, err) != fhir.CodeDeleted {
			t.Errorf("%s: %v, want deleted", key, err)
		}
	}
	if set := search(t, s, "Observation", "subject=Patient/P1001"); set.Total != 0 {
		t.Errorf("deleted observations still found: %d", set.Total)
	}
	if set := search(t, s, "Condition", "subject=Patient/P1001"); set.Total != 1 {
		t.Errorf("conditions after delete: %d, want the later one", set.Total)
	}
	if _, err := s.ReadVersion(ctx, "Condition", "C5001", "1"); err != nil {
		t.Errorf("history of a deleted resource: %v", err)
	}
	if _, err := s.DeleteBundle(ctx, "20000"); err == nil || code(t, err) != fhir.CodeDeleted {
		t.Errorf("second delete: %v", err)
	}
	if _, err := s.DeleteBundle(ctx, "nope"); err == nil || code(t, err) != fhir.CodeNotFound {
		t.Errorf("unknown bundle: %v", err)
	}
	// the later bundle can still be deleted; now nothing refers to the encounter's patient data
	if _, err := s.DeleteBundle(ctx, "20001"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, "Condition", "C5002"); err == nil {
		t.Error("C5002 survived its bundle's deletion")
	}
}

func TestTransactionBundle(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	pat := strings.Replace(patient("ignored"), `<fullUrl value="http://praxis.example/fhir/Patient/ignored"/>`,
		`<fullUrl value="urn:uuid:7d0e8a38-5f2b-4e43-9b6e-0a1c2d3e4f50"/>`, 1)
	pat = strings.Replace(pat, "</resource>", `</resource><request><method value="POST"/><url value="Patient"/></request>`, 1)
	cov := strings.ReplaceAll(akteEntry(t, "Coverage", "V1101"), "Patient/P1001", "urn:uuid:7d0e8a38-5f2b-4e43-9b6e-0a1c2d3e4f50")
	cov = strings.Replace(cov, "</resource>", `</resource><request><method value="PUT"/><url value="Coverage/V1101"/></request>`, 1)
	resp, err := postRaw(t, s, bundle("", "transaction", pat, cov))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp, `<type value="transaction-response"/>`) || strings.Count(resp, "201 Created") != 2 {
		t.Fatalf("response:\n%s", resp)
	}
	loc := between(resp, `<location value="Patient/`, `/_history/1"/>`)
	if len(loc) != 32 || strings.Contains(loc, "ignored") {
		t.Fatalf("server-assigned id %q", loc)
	}
	c, err := s.Read(ctx, "Coverage", "V1101")
	if err != nil {
		t.Fatal(err)
	}
	if got := fhir.ChildValue(c.SelectElement("beneficiary"), "reference"); got != "Patient/"+loc+"/_history/1" {
		t.Errorf("beneficiary %q", got)
	}
	// a DELETE entry in a transaction
	del := `<entry><request><method value="DELETE"/><url value="Coverage/V1101"/></request></entry>`
	if resp, err = postRaw(t, s, bundle("", "transaction", del)); err != nil || !strings.Contains(resp, "204 No Content") {
		t.Fatalf("delete entry: %v\n%s", err, resp)
	}
	if _, err := s.Read(ctx, "Coverage", "V1101"); err == nil || code(t, err) != fhir.CodeDeleted {
		t.Errorf("after DELETE entry: %v", err)
	}
	// an unresolvable urn:uuid is refused
	dangling := strings.ReplaceAll(akteEntry(t, "Coverage", "V1101"), "Patient/P1001", "urn:uuid:00000000-0000-0000-0000-000000000000")
	if _, err := postRaw(t, s, bundle("", "transaction", dangling)); err == nil || !strings.Contains(err.Error(), "beneficiary.reference") {
		t.Errorf("dangling urn:uuid: %v", err)
	}
}

func TestBatchBundle(t *testing.T) {
	s := newService(t)
	broken := strings.Replace(patient("b2"), `<gender value="female"/>`, `<gender value="sometimes"/>`, 1)
	resp, err := postRaw(t, s, bundle("", "batch", patient("b1"), broken))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp, `<type value="batch-response"/>`) || !strings.Contains(resp, "201 Created") || !strings.Contains(resp, "400 Bad Request") ||
		!strings.Contains(resp, `<expression value="Bundle.entry[1].resource.gender"/>`) {
		t.Fatalf("batch response:\n%s", resp)
	}
	if _, err := s.Read(context.Background(), "Patient", "b1"); err != nil {
		t.Error("the good entry of a batch was not stored")
	}
	if _, err := s.Read(context.Background(), "Patient", "b2"); err == nil {
		t.Error("the broken entry of a batch was stored")
	}
}

func TestSearchParameters(t *testing.T) {
	s := newService(t)
	if err := post(t, s,
		patientWith("n1", kvnrOf('N', 1), "Müller-Lüdenscheidt", "Jürgen", "1950-02-03"),
		patientWith("n2", kvnrOf('N', 2), "Mueller", "Anna", "1988-12-24"),
		patientWith("n3", kvnrOf('N', 3), "Schmidt", "Müllerin", "2001-07"),
		patientWith("n4", kvnrOf('N', 4), "Strauß", "Eva", "1950"),
	); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, query, want string }{
		{"name is a prefix, accent- and case-insensitive", "name=MULL", "n1,n3"},
		{"name matches any word of a double name", "name=lüdensch", "n1"},
		{"name of two letters scans", "name=mu", "n1,n2,n3"},
		{"a long name is checked exactly", "name=Müller-Lüdenscheidt", "n1"},
		{"family ignores given names", "family=müll", "n1"},
		{"given", "given=jur", "n1"},
		{"ß matches ss", "family=strauss", "n4"},
		{"birthdate eq a day", "birthdate=1950-02-03", "n1"},
		{"birthdate eq a year", "birthdate=1950", "n1,n4"},
		{"birthdate lt", "birthdate=lt1960-01-01", "n1,n4"},
		{"birthdate ge a month", "birthdate=ge2001-07", "n3"},
		{"birthdate ne", "birthdate=ne1950", "n2,n3"},
		{"gender", "gender=female&name=schm", "n3"},
		{"_lastUpdated", "_lastUpdated=ge2026-11-30&name=strau", "n4"},
		{"_lastUpdated before", "_lastUpdated=lt2026-01-01", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := search(t, s, "Patient", c.query)
			var got []string
			for _, e := range set.Entries {
				got = append(got, fhir.ChildValue(e.Resource, "id"))
			}
			if strings.Join(sorted(got), ",") != c.want || set.Total != len(got) {
				t.Errorf("got %v (total %d), want %s", got, set.Total, c.want)
			}
		})
	}
	for _, bad := range []string{"birthdate=xx1950", "birthdate=1950-13", "_lastUpdated=yesterday", "name="} {
		q, _ := url.ParseQuery(bad)
		if _, err := s.Search(context.Background(), "Patient", q); err == nil || code(t, err) != fhir.CodeValue {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestCoverageQuarters(t *testing.T) {
	s := newService(t)
	if _, err := postRaw(t, s, readBundle(t, "patientenakte.xml")); err != nil {
		t.Fatal(err)
	}
	cov, _ := s.Read(context.Background(), "Coverage", "V1101")
	start := fhir.ChildValue(cov.SelectElement("period"), "start")
	if start == "" {
		t.Skip("the fixture coverage has no period start")
	}
	// the coverage starts on `start`; a range ending in the same quarter but before that day
	// still finds it, since RED widens ranges to whole quarters
	day, _ := time.Parse("2006-01-02", start[:10])
	qStart := time.Date(day.Year(), time.Month((int(day.Month())-1)/3*3+1), 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		from, to string
		total    int
	}{
		{qStart.Format("20060102"), qStart.Format("20060102"), 1},
		{qStart.AddDate(0, -3, 0).Format("20060102"), qStart.AddDate(0, 0, -1).Format("20060102"), 0},
		{qStart.AddDate(0, 1, 0).Format("20060102"), "", 1},
	}
	for _, c := range cases {
		q := "beneficiary=Patient/P1001&from=" + c.from
		if c.to != "" {
			q += "&to=" + c.to
		}
		if set := search(t, s, "Coverage", q); set.Total != c.total {
			t.Errorf("%s: %d, want %d", q, set.Total, c.total)
		}
	}
}

func TestOutputParameters(t *testing.T) {
	s := newService(t)
	if _, err := postRaw(t, s, readBundle(t, "patientenakte.xml")); err != nil {
		t.Fatal(err)
	}
	full := search(t, s, "DocumentReference", "encounter=Encounter/E2001")
	sum := search(t, s, "DocumentReference", "encounter=Encounter/E2001&_summary=true")
	if full.Entries[0].Resource.FindElement("content/attachment/data") == nil {
		t.Error("the full DocumentReference lacks its data")
	}
	if sum.Entries[0].Resource.FindElement("content/attachment/data") != nil || sum.Entries[0].Resource.FindElement("content/attachment/contentType") == nil {
		t.Error("_summary=true must drop the data and keep the metadata")
	}
	tab := search(t, s, "Observation", "subject=Patient/P1001&_ExportObservationTables=true")
	tables := 0
	for _, e := range tab.Entries {
		if e.Resource.FindElement("text/div/table") != nil {
			tables++
		}
	}
	if tables == 0 {
		t.Error("no observation rendered its components as a table")
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return ""
}

func TestNamedReferenceVersions(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	if _, err := postRaw(t, s, readBundle(t, "patientenakte.xml")); err != nil {
		t.Fatal(err)
	}
	if _, err := postRaw(t, s, bundle("", "history", akteEntry(t, "Patient", "P1001"))); err != nil { // version 2
		t.Fatal(err)
	}
	enc := akteEntry(t, "Encounter", "E2001")
	cases := []struct {
		name, ref, want string
	}{
		{"an unversioned reference pins the current version", "Patient/P1001", "Patient/P1001/_history/2"},
		{"a named older version is kept", "Patient/P1001/_history/1", "Patient/P1001/_history/1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := strings.Replace(enc, `<reference value="Patient/P1001"/>`, `<reference value="`+c.ref+`"/>`, 1)
			if _, err := postRaw(t, s, bundle("", "history", body)); err != nil {
				t.Fatal(err)
			}
			got, err := s.Read(ctx, "Encounter", "E2001")
			if err != nil {
				t.Fatal(err)
			}
			if ref := fhir.ChildValue(got.SelectElement("subject"), "reference"); ref != c.want {
				t.Errorf("subject %q, want %q", ref, c.want)
			}
		})
	}
	body := strings.Replace(enc, `<reference value="Patient/P1001"/>`, `<reference value="Patient/P1001/_history/7"/>`, 1)
	if _, err := postRaw(t, s, bundle("", "history", body)); err == nil || !strings.Contains(err.Error(), "refers to version 7 of Patient/P1001, which does not exist") {
		t.Errorf("a version that does not exist: %v", err)
	}
}

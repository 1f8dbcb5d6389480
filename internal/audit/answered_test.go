package audit_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/audit"
	"github.com/redclone/red/internal/vault/vaulttest"
)

// The answers written from stored bytes (ReadDocument, SearchDocument) are recorded as the trees
// are (Read, Search): the same resources, the same patients.
func TestDocumentsAreRecordedAsTrees(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	tr := start(t, b, "anna", "ws-1")
	r := service(tr, b)
	post(t, acting("anna", "ws-1"), r, "patients.xml")
	tree, doc := acting("tree", "ws-1"), acting("doc", "ws-1")
	searches := []struct {
		typ string
		q   url.Values
	}{
		{"Patient", url.Values{"identifier": {"X110614233"}}},
		{"Patient", url.Values{}},
		{"Condition", url.Values{"patient": {"Patient/60152"}}},
		{"Encounter", url.Values{"subject": {"60151,60152"}}},
		{"Observation", url.Values{"_count": {"1"}}},
	}
	for _, s := range searches {
		if _, err := r.Search(tree, s.typ, s.q); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SearchDocument(doc, s.typ, s.q); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"60151", "60152", "60999"} {
		_, err := r.Read(tree, "Patient", id)
		_, _, derr := r.ReadDocument(doc, "Patient", id)
		if (err == nil) != (derr == nil) {
			t.Fatalf("Patient/%s: Read %v, ReadDocument %v", id, err, derr)
		}
	}
	closeTrail(t, tr)
	tr = start(t, b, "anna", "ws-1")
	defer closeTrail(t, tr)
	events := func(user string) []string {
		found, err := tr.Query(acting("anna", "ws-1", access.Admin), audit.Filter{User: user})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range found {
			l := strings.TrimPrefix(line(f), user+" ")
			for _, en := range f.Entities {
				l += " " + en.Type
			}
			out = append(out, l)
		}
		return out
	}
	want, got := events("tree"), events("doc")
	if len(want) != len(searches)+3 {
		t.Fatalf("%d events of the tree path, want %d: %v", len(want), len(searches)+3, want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the documents' events (-trees +documents):\n%s", diff)
	}
}

// A document fhir.Walk leaves to the tree is read from the tree, with the same result.
func TestAnsweredFromTheTree(t *testing.T) {
	const set = `<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir">
  <type value="searchset"/>
  <entry>
    <fullUrl value="/Encounter/e1"/>
    <resource>
      <Encounter>
        <id value="e1"/>
        <text><div xmlns="http://www.w3.org/1999/xhtml"><reference value="Patient/narrative"/></div></text>
        <subject><reference value="Patient/60151"/></subject>
        <note><text value="NOTE"/></note>
      </Encounter>
    </resource>
  </entry>
  <entry>
    <resource>
      <Task>
        <id value="t1"/>
        <for><identifier><system value="http://fhir.de/sid/gkv/kvid-10"/><value value="X110614233"/></identifier></for>
        <basedOn><reference value="Observation/o1"/></basedOn>
      </Task>
    </resource>
  </entry>
</Bundle>
`
	wantResources := []audit.Entity{{Type: "Encounter", ID: "e1"}, {Type: "Task", ID: "t1"}}
	wantPatients := []string{"Patient/60151", "kvnr:X110614233"}
	for name, doc := range map[string]string{
		"walked":           set,
		"left to the tree": strings.Replace(set, "NOTE", "two&#xD;lines", 1), // a value Walk does not decode
	} {
		resources, patients, err := audit.Answered([]byte(doc), true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(wantResources, resources); diff != "" {
			t.Errorf("%s: resources (-want +got):\n%s", name, diff)
		}
		if diff := cmp.Diff(wantPatients, patients); diff != "" {
			t.Errorf("%s: patients (-want +got):\n%s", name, diff)
		}
	}
	for _, c := range []struct{ doc, want string }{
		{`<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><link><other><reference value="Patient/p2"/></other></link></Patient>`, "Patient/p1"},
		{`<Patient xmlns="http://hl7.org/fhir"><identifier><system value="http://fhir.de/sid/gkv/kvid-10"/><value value="X110614233"/></identifier></Patient>`, "kvnr:X110614233"},
		{`<Coverage xmlns="http://hl7.org/fhir"><identifier><system value="urn:other"/><assigner><reference value="Patient/p3"/></assigner></identifier><beneficiary><reference value="Patient/p4"/></beneficiary></Coverage>`, "Patient/p3 Patient/p4"},
		{`<Task xmlns="http://hl7.org/fhir"><for><identifier><assigner><reference value="Patient/p5"/></assigner><system value="http://fhir.de/sid/pkv/kvid-10"/><value value=""/></identifier></for></Task>`, ""},
		{`<Encounter xmlns="http://hl7.org/fhir"><subject><reference value="Patient/a/b"/></subject><partOf><reference value="Encounter/e"/></partOf></Encounter>`, ""},
	} {
		for _, doc := range []string{c.doc, strings.Replace(c.doc, "<id ", `<extension url="&#xD;"/><id `, 1)} {
			_, patients, err := audit.Answered([]byte(doc), false)
			if got := strings.Join(patients, " "); err != nil || got != c.want {
				t.Errorf("%s: %q, %v; want %q", doc, got, err, c.want)
			}
		}
	}
	if _, _, err := audit.Answered([]byte("<Bundle>"), true); err == nil {
		t.Error("a document that does not parse was read")
	}
}

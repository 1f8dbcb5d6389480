package records_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault/vaulttest"
)

func newService(t testing.TB) *records.Service {
	t.Helper()
	b, _ := vaulttest.Barrier(t)
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	return &records.Service{Tenant: "praxis", Store: b, Now: func() time.Time { return at }}
}

func post(t testing.TB, s *records.Service, entries ...string) error {
	t.Helper()
	b, err := fhir.Parse([]byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`+strings.Join(entries, "")+`</Bundle>`), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.PostBundle(context.Background(), b)
	return err
}

var patientTemplate = func() string {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bundles", "patient.tmpl.xml"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// patientWith renders a valid Patient entry; identifiers are extra [system, value] pairs typed MR.
func patientWith(id, kv, family, given, birth string, identifiers ...[2]string) string {
	e := strings.NewReplacer("{{ID}}", id, "{{KVNR}}", kv, "{{FAMILY}}", family, "{{GIVEN}}", given, "{{GENDER}}", "female", "{{BIRTH}}", birth).Replace(patientTemplate)
	var extra strings.Builder
	for _, i := range identifiers {
		fmt.Fprintf(&extra, `<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="MR"/></coding></type><system value="%s"/><value value="%s"/></identifier>`, i[0], i[1])
	}
	return strings.Replace(e, "<name>", extra.String()+"<name>", 1)
}

var serial = 0

// patient is a valid Patient entry with a fresh KVNR and the extra identifiers.
func patient(id string, identifiers ...[2]string) string {
	serial++
	return patientWith(id, kvnrOf('T', serial), "Muster", "Erika", "1970-01-01", identifiers...)
}

func kvnrOf(letter byte, n int) string {
	for d := 0; d < 10; d++ {
		if k := fmt.Sprintf("%c%08d%d", letter, n, d); ident.KVNR(k) == nil {
			return k
		}
	}
	panic("no KVNR")
}

func ids(set fhir.SearchSet) string {
	var out []string
	for _, e := range set.Entries {
		out = append(out, fhir.ChildValue(e.Resource, "id"))
	}
	return strings.Join(out, ",")
}

func TestSearchByIdentifier(t *testing.T) {
	s := newService(t)
	const kv = "http://fhir.de/sid/gkv/kvid-10"
	if err := post(t, s,
		patientWith("a", "X110614233", "A", "A", "1970-01-01"),
		patientWith("b", "K010124021", "B", "B", "1970-01-01", [2]string{"urn:other", "X110614233"}),
		patientWith("c", kvnrOf('C', 1), "C", "C", "1970-01-01", [2]string{"urn:pid", "X110614233"}),
		patientWith("d", kvnrOf('D', 1), "D", "D", "1970-01-01", [2]string{"urn:pid", "77"}),
	); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, query, want string }{
		{"value alone matches every system", "identifier=X110614233", "a,b,c"},
		{"system|value matches that system only", "identifier=" + kv + "|X110614233", "a"},
		{"|value matches identifiers without system only", "identifier=|X110614233", ""},
		{"system| matches every value of the system", "identifier=urn:pid|", "c,d"},
		{"comma means or", "identifier=urn:pid|77,urn:other|X110614233", "b,d"},
		{"two parameters mean and", "identifier=" + kv + "|&identifier=urn:pid|77", "d"},
		{"_id and identifier combine", "_id=a,b&identifier=X110614233", "a,b"},
		{"no match is an empty page", "identifier=nobody", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			if err != nil {
				t.Fatal(err)
			}
			set, err := s.Search(context.Background(), "Patient", q)
			if err != nil {
				t.Fatal(err)
			}
			sameDocument(t, s, q, set)
			// results come in id-token order, which is random: compare sorted
			got := strings.Split(ids(set), ",")
			sort.Strings(got)
			if strings.Join(got, ",") != c.want || set.Total != len(set.Entries) {
				t.Errorf("got %v (total %d), want %s", got, set.Total, c.want)
			}
		})
	}
}

// randomParts are what two answers to one search differ in: the bundle's id and the sealed
// parameters of its links.
var randomParts = regexp.MustCompile(`<id value="[0-9a-f]{8}-[0-9a-f-]{27}"/>|_q=[^"]*"`)

// sameDocument checks that SearchDocument answers q with set's document, but for the parts that
// are drawn anew for each answer.
func sameDocument(t *testing.T, s *records.Service, q url.Values, set fhir.SearchSet) {
	t.Helper()
	doc, err := s.SearchDocument(context.Background(), "Patient", q)
	if err != nil {
		t.Fatal(err)
	}
	want := fhir.Document(set.Element())
	if got, want := randomParts.ReplaceAll(doc, nil), randomParts.ReplaceAll(want, nil); !bytes.Equal(got, want) {
		t.Errorf("SearchDocument\n%s\nwant\n%s", doc, want)
	}
}

func TestSearchPaging(t *testing.T) {
	s := newService(t)
	var entries []string
	for i := 0; i < 150; i++ {
		entries = append(entries, patient(fmt.Sprintf("p%03d", i)))
	}
	if err := post(t, s, entries...); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, query   string
		entries, last int
	}{
		{"RED's page size is 10", "page=1", 10, 15},
		{"the last page holds the rest", "page=15", 10, 15},
		{"a page past the end is empty", "page=16", 0, 15},
		{"_count sets the page size", "_count=40&page=4", 30, 4},
		{"_count is capped at 100", "_count=1000", 100, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, _ := url.ParseQuery(c.query)
			set, err := s.Search(context.Background(), "Patient", q)
			if err != nil {
				t.Fatal(err)
			}
			sameDocument(t, s, q, set)
			if len(set.Entries) != c.entries || set.Total != 150 {
				t.Errorf("%d entries of %d, want %d of 150", len(set.Entries), set.Total, c.entries)
			}
			last := set.Links[len(set.Links)-1]
			if last.Relation != "last" || !strings.Contains(last.URL, fmt.Sprintf("page=%d", c.last)) {
				t.Errorf("last link %+v, want page %d", last, c.last)
			}
		})
	}
}

func TestPostBundleIsAtomic(t *testing.T) {
	s := newService(t)
	err := post(t, s, patient("ok1"), `<entry><resource><Patient/></resource></entry>`, patient("bad id!"), patient("ok1"),
		`<entry><resource><Condition><id value="c"/><subject><reference value="Patient/missing"/></subject></Condition></resource></entry>`,
		`<entry><resource><Bundle><id value="b"/></Bundle></resource></entry>`)
	var issues fhir.Issues
	if !errors.As(err, &issues) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"Bundle.entry[1].resource.id", "Bundle.entry[2].resource.id", "Bundle.entry[3].resource.id", "Bundle.entry[4].resource.subject.reference", "Bundle.entry[5].resource"} {
		found := false
		for _, is := range issues {
			found = found || is.Expression == want
		}
		if !found {
			t.Errorf("no issue at %s in %v", want, issues)
		}
	}
	entry := func(expr string) string { return expr[:strings.IndexByte(expr, ']')+1] }
	for i := 1; i < len(issues); i++ {
		if entry(issues[i-1].Expression) > entry(issues[i].Expression) {
			t.Errorf("issues not in entry order: %v", issues)
		}
	}
	if _, err := s.Read(context.Background(), "Patient", "ok1"); err == nil {
		t.Error("a refused bundle stored an entry")
	}
}

func TestReadVersions(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := post(t, s, patientWith("p", "X110614233", "M", "E", "1970-01-01", [2]string{"urn:x", fmt.Sprint(i)})); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := s.Read(ctx, "Patient", "p")
	if err != nil {
		t.Fatal(err)
	}
	if v := fhir.ChildValue(cur, "meta", "versionId"); v != "3" {
		t.Errorf("current version %s", v)
	}
	if lu := fhir.ChildValue(cur, "meta", "lastUpdated"); lu != "2026-11-30T08:00:00.000Z" {
		t.Errorf("lastUpdated %s", lu)
	}
	// the answer written from the stored bytes is the current version's document
	if doc, version, err := s.ReadDocument(ctx, "Patient", "p"); err != nil || version != 3 || !bytes.Equal(doc, fhir.Document(cur)) {
		t.Errorf("ReadDocument: version %d, %v\n%s\nwant\n%s", version, err, doc, fhir.Document(cur))
	}
	old, err := s.ReadVersion(ctx, "Patient", "p", "1")
	if err != nil {
		t.Fatal(err)
	}
	if v := fhir.ChildValue(old.SelectElements("identifier")[1], "value"); v != "0" {
		t.Errorf("version 1 has identifier %s", v)
	}
	// the search tokens follow the current version only
	set, err := s.Search(ctx, "Patient", url.Values{"identifier": {"urn:x|0"}})
	if err != nil || set.Total != 0 {
		t.Errorf("old identifier still found: %v %d", err, set.Total)
	}
	for _, v := range []string{"0", "x", "4"} {
		if _, err := s.ReadVersion(ctx, "Patient", "p", v); err == nil {
			t.Errorf("version %q read", v)
		}
	}
}

func TestOneClockReadPerRequest(t *testing.T) {
	s := newService(t)
	tick := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { tick = tick.Add(time.Second); return tick } // every read a new second
	for _, typ := range []string{"history", "batch"} {
		t.Run(typ, func(t *testing.T) {
			b, err := fhir.Parse([]byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="`+typ+`"/>`+patient("c1-"+typ)+patient("c2-"+typ)+`</Bundle>`), fhir.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.PostBundle(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			answered := fhir.ChildValue(resp, "meta", "lastUpdated")
			for i, e := range resp.SelectElements("entry") {
				if got := fhir.ChildValue(e, "response", "lastModified"); got != answered {
					t.Errorf("entry %d lastModified %s, answer %s", i, got, answered)
				}
			}
			for _, id := range []string{"c1-" + typ, "c2-" + typ} {
				res, err := s.Read(context.Background(), "Patient", id)
				if err != nil {
					t.Fatal(err)
				}
				if got := fhir.ChildValue(res, "meta", "lastUpdated"); got != answered {
					t.Errorf("%s lastUpdated %s, answer %s", id, got, answered)
				}
			}
		})
	}
	set, err := s.Search(context.Background(), "Patient", url.Values{"name": {"mus"}})
	if err != nil {
		t.Fatal(err)
	}
	before := tick
	if !set.Updated.Equal(before) {
		t.Errorf("the searchset's time %s is not the one clock read %s", set.Updated, before)
	}
}

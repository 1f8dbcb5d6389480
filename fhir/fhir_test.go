package fhir_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/fixture"
)

func issueOf(t testing.TB, err error) fhir.Issue {
	t.Helper()
	is, _ := fhir.Explain(err)
	if len(is) == 0 {
		t.Fatalf("error %v carries no issues", err)
	}
	return is[0]
}

func TestParseRefuses(t *testing.T) {
	lim := fhir.Limits{MaxBytes: 4096, MaxDepth: 5, MaxElements: 20}
	cases := []struct {
		name, body string
		code       fhir.IssueCode
		msg        string
	}{
		{"rejects a DOCTYPE", `<!DOCTYPE Patient [<!ENTITY x "y">]><Patient xmlns="http://hl7.org/fhir"/>`, fhir.CodeSecurity, "DOCTYPE"},
		{"rejects an undeclared entity", `<Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>`, fhir.CodeStructure, "line 1"},
		{"rejects mismatched tags with the line", "<Patient xmlns=\"http://hl7.org/fhir\">\n<id></Patient>", fhir.CodeStructure, "line 2"},
		{"rejects an empty body", ``, fhir.CodeStructure, "no XML element"},
		{"rejects text without elements", `hello`, fhir.CodeStructure, "no XML element"},
		{"rejects nesting beyond the limit", `<a><b><c><d><e><f/></e></d></c></b></a>`, fhir.CodeTooCostly, "5 levels"},
		{"rejects too many elements", "<a>" + strings.Repeat("<b/>", 20) + "</a>", fhir.CodeTooCostly, "20 elements"},
		{"rejects a body over the size limit", "<a>" + strings.Repeat(" ", 5000) + "</a>", fhir.CodeTooCostly, "4096"},
		{"rejects a foreign root namespace", `<Patient xmlns="urn:other"/>`, fhir.CodeStructure, "namespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := fhir.Parse([]byte(c.body), lim)
			if err == nil {
				t.Fatal("parsed")
			}
			is := issueOf(t, err)
			if is.Code != c.code || !strings.Contains(is.Diagnostics, c.msg) {
				t.Errorf("got %s %q, want %s containing %q", is.Code, is.Diagnostics, c.code, c.msg)
			}
		})
	}
}

func TestParseNormalizes(t *testing.T) {
	body := `<?xml version="1.0"?>
<f:Patient xmlns:f="http://hl7.org/fhir">
  <!-- a comment -->
  <f:id value="1"/>
  <f:text><f:status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">
    <p>Hallo <b>Welt</b></p>
  </div></f:text>
</f:Patient>`
	root, err := fhir.Parse([]byte(body), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	got := string(fhir.Marshal(root))
	want := `<Patient xmlns="http://hl7.org/fhir"><id value="1"/><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">
    <p>Hallo <b>Welt</b></p>
  </div></text></Patient>`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSetMetaKeepsOrder(t *testing.T) {
	root, err := fhir.Parse([]byte(`<Patient xmlns="http://hl7.org/fhir"><id value="1"/><meta><versionId value="9"/><profile value="p"/></meta><gender value="other"/></Patient>`), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	fhir.SetMeta(root, "2", "2026-11-30T10:00:00.000Z")
	want := `<Patient xmlns="http://hl7.org/fhir"><id value="1"/><meta><versionId value="2"/><lastUpdated value="2026-11-30T10:00:00.000Z"/><profile value="p"/></meta><gender value="other"/></Patient>`
	if got := string(fhir.Marshal(root)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	bare := etree.NewElement("Patient")
	bare.CreateElement("id").CreateAttr("value", "x")
	bare.CreateElement("gender").CreateAttr("value", "male")
	fhir.SetMeta(bare, "1", "2026-11-30T10:00:00.000Z")
	if got := string(fhir.Marshal(bare)); !strings.Contains(got, `<id value="x"/><meta><versionId value="1"/>`) {
		t.Errorf("meta not right after id: %s", got)
	}
}

func TestDocuments(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	res, err := fhir.Parse([]byte(`<Patient xmlns="http://hl7.org/fhir"><id value="6006"/><text><status value="extensions"/><div xmlns="http://www.w3.org/1999/xhtml">Patient <b>6006</b></div></text></Patient>`), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		el   *etree.Element
	}{
		{"operation-outcome.xml", fhir.OperationOutcome(fhir.Issues{
			{Severity: fhir.SeverityError, Code: fhir.CodeValue, Diagnostics: "wrong check digit", Expression: "Bundle.entry[3].resource.identifier[0].value"},
			{Severity: fhir.SeverityWarning, Code: fhir.CodeInvalid, Diagnostics: "no expression"},
		})},
		{"searchset.xml", fhir.SearchSet{ID: "9ee8ae62-2b54-e16f-0565-8f00c42003b8", Updated: at, Total: 21,
			Links:   []fhir.Link{{"self", "/demo/Patient?page=2"}, {"first", "/demo/Patient?page=1"}, {"previous", "/demo/Patient?page=1"}, {"next", "/demo/Patient?page=3"}, {"last", "/demo/Patient?page=3"}},
			Entries: []fhir.Entry{{FullURL: "/Patient/6006", Resource: res}}}.Element()},
		{"transaction-response.xml", fhir.TransactionResponse("r1", "transaction-response", at, []fhir.Outcome{
			{Type: "Patient", ID: "6006", Version: 1, Status: http.StatusCreated, Modified: at},
			{Type: "Patient", ID: "6009", Version: 4, Status: http.StatusOK, Modified: at},
			{Type: "Patient", ID: "6010", Status: http.StatusBadRequest, Issues: fhir.Issues{{Severity: fhir.SeverityError, Code: fhir.CodeValue, Diagnostics: "bad", Expression: "Bundle.entry[2].resource.birthDate"}}},
		})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := fhir.Document(c.el)
			fixture.Golden(t, filepath.Join("testdata", c.name), out)
			if _, err := fhir.Parse(out, fhir.DefaultLimits); err != nil {
				t.Errorf("output does not parse again: %v", err)
			}
		})
	}
}

// FuzzParse: no input makes the parser panic or build a tree beyond its limits, and what it
// accepts is written out (Marshal, Document) in a form it reads again to the same tree.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Patient><id value="1"/></Patient></resource></entry></Bundle>`))
	f.Add([]byte(`<!DOCTYPE x><x/>`))
	f.Add([]byte("\uFEFF<f:Patient xmlns:f=\"http://hl7.org/fhir\"><f:text><f:div xmlns:f=\"http://www.w3.org/1999/xhtml\"><f:p>a<!-- c -->b</f:p></f:div></f:text></f:Patient>"))
	f.Add([]byte(`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><x:Patient xmlns:x="urn:evil"/></resource></entry></Bundle>`))
	f.Add([]byte(`<Patient><id xmlns="" value="a&amp;b" a="1" b="2"/><text><div xmlns="http://www.w3.org/1999/xhtml"> <p class="c">x</p> </div></text></Patient>`))
	lim := fhir.Limits{MaxBytes: 1 << 16, MaxDepth: 32, MaxElements: 1000, MaxAttributes: 8}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := fhir.Parse(b, lim)
		if err != nil {
			if fhir.CodeOf(err) == "" {
				t.Fatalf("an error without a code (a 500): %v", err)
			}
			return
		}
		elements := 0
		var walk func(e *etree.Element, depth int)
		walk = func(e *etree.Element, depth int) {
			elements++
			if depth > lim.MaxDepth || len(e.Attr) > lim.MaxAttributes {
				t.Fatalf("<%s> at depth %d with %d attributes is beyond the limits", e.Tag, depth, len(e.Attr))
			}
			for _, c := range e.ChildElements() {
				walk(c, depth+1)
			}
		}
		walk(root, 1)
		if elements > lim.MaxElements {
			t.Fatalf("%d elements", elements)
		}
		out := fhir.Marshal(root)
		again, err := fhir.Parse(out, fhir.DefaultLimits)
		if err != nil {
			t.Fatalf("written out, it does not parse again: %v\n%s", err, out)
		}
		if twice := fhir.Marshal(again); !bytes.Equal(twice, out) {
			t.Fatalf("read again, it differs:\n%s\n%s", out, twice)
		}
		if _, err := fhir.Parse(fhir.Document(root), fhir.DefaultLimits); err != nil {
			t.Fatalf("as a document, it does not parse again: %v", err)
		}
	})
}

func TestCanonicalize(t *testing.T) {
	in := `<Patient xmlns="http://hl7.org/fhir"><identifier><value value="1"/><extension url="u"><valueString value="x"/></extension></identifier><id value="p"/><extension url="e"><valueBoolean value="true"/></extension><meta><lastUpdated value="2026-11-02T09:15:00+0100"/></meta><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>b</p><span>a</span></div></text><birthDate value="1957-03-21"/></Patient>`
	want := `<Patient xmlns="http://hl7.org/fhir"><id value="p"/><meta><lastUpdated value="2026-11-02T09:15:00+01:00"/></meta><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>b</p><span>a</span></div></text><extension url="e"><valueBoolean value="true"/></extension><identifier><extension url="u"><valueString value="x"/></extension><value value="1"/></identifier><birthDate value="1957-03-21"/></Patient>`
	res, err := fhir.Parse([]byte(in), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	fhir.Canonicalize(res)
	if got := string(fhir.Marshal(res)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestReadXML(t *testing.T) {
	root, err := fhir.ReadXML([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`), fhir.DefaultLimits)
	if err != nil || root.Tag != "Envelope" || root.NamespaceURI() != "http://www.w3.org/2003/05/soap-envelope" {
		t.Fatalf("a SOAP envelope: %v %v", root, err)
	}
	if _, err := fhir.ReadXML([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`), fhir.DefaultLimits); err == nil || issueOf(t, err).Code != fhir.CodeSecurity {
		t.Errorf("DOCTYPE: %v", err)
	}
	if _, err := fhir.ReadXML([]byte("<a><b><c/></b></a>"), fhir.Limits{MaxDepth: 2}); err == nil || issueOf(t, err).Code != fhir.CodeTooCostly {
		t.Errorf("depth: %v", err)
	}
}

func TestIssuesUnique(t *testing.T) {
	a := fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeRequired, Expression: "Patient.name", Diagnostics: "x"}
	b := fhir.Issue{Severity: fhir.SeverityWarning, Code: fhir.CodeValue, Expression: "Patient.birthDate", Diagnostics: "y"}
	for _, tc := range []struct{ in, want fhir.Issues }{
		{nil, nil},
		{fhir.Issues{a}, fhir.Issues{a}},
		{fhir.Issues{a, b, a, b, a}, fhir.Issues{a, b}},
		{fhir.Issues{b, a}, fhir.Issues{b, a}},
	} {
		if got := slices.Clone(tc.in).Unique(); !slices.Equal(got, tc.want) {
			t.Errorf("%v.Unique() = %v, want %v", tc.in, got, tc.want)
		}
	}
}

package epasim_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/internal/guard/guardtest"
	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/epa/epasim"
)

var testNow = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// The patients of gematik's sample requests, their home communities and callers.
const (
	epa1Patient = "X110411319"
	epa2Patient = "X110474970" // request_noreplace
	epa2Replace = "X110425360" // request_replace
	epa1HC      = "urn:oid:1.2.276.0.76.3.1.315.3.2.1.1"
	epa2HC      = "urn:oid:1.2.276.0.76.3.1.466.2.1.6.90.1"
	epa1Caller  = "1-SMC-B-Testkarte-883110000092397"
	epa2Caller  = "9-SMC-B-Testkarte-883110000119267"
	expired     = "1-2-PRAXIS-ABGELAUFEN"
	stranger    = "1-2-FREMDE-PRAXIS"
)

// testRecords are the records of the sample patients plus one whose only entitlement expired.
func testRecords() []epasim.Record {
	until := testNow.Add(24 * time.Hour)
	return []epasim.Record{
		{KVNR: epa1Patient, HomeCommunityID: epa1HC, Entitlements: []epasim.Entitlement{{TelematikID: epa1Caller, ValidTo: until}}},
		{KVNR: epa2Patient, HomeCommunityID: epa2HC, Entitlements: []epasim.Entitlement{{TelematikID: epa2Caller, ValidTo: until}}},
		{KVNR: epa2Replace, HomeCommunityID: epa2HC, Entitlements: []epasim.Entitlement{
			{TelematikID: epa2Caller, ValidTo: until},
			{TelematikID: expired, ValidTo: testNow.Add(-time.Second)},
		}},
	}
}

// newServer starts a simulator with testRecords keeping its state in dir ("" = memory).
func newServer(t testing.TB, dir string) *httptest.Server {
	t.Helper()
	sim, err := epasim.New(epasim.Config{StateDir: dir, Records: testRecords(), Now: clock})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return srv
}

// sample reads one of gematik's sample requests.
func sample(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gematik", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// includeHref finds the cid of the sample's xop:Include.
var includeRE = regexp.MustCompile(`<(?:xop:)?Include [^>]*href="cid:([^"]+)"[^>]*/>`)

// mtom packs an envelope and the document content for every xop:Include as MTOM, with the
// Content-ID unescaped as on the wire (the href is its URL-encoded form).
func mtom(t testing.TB, envelope string, content []byte) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	root, _ := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type": {`application/xop+xml; charset=UTF-8; type="application/soap+xml"`},
		"Content-Id":   {"<root@test>"},
	})
	_, _ = root.Write([]byte(envelope))
	for _, m := range includeRE.FindAllStringSubmatch(envelope, -1) {
		id := strings.ReplaceAll(m[1], "%3A", ":")
		p, _ := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {"application/octet-stream"},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Id":                {"<" + id + ">"},
		})
		_, _ = p.Write(content)
	}
	_ = mw.Close()
	return buf.Bytes(), mime.FormatMediaType("multipart/related", map[string]string{
		"type": "application/xop+xml", "boundary": mw.Boundary(), "start": "<root@test>", "start-info": "application/soap+xml",
	})
}

// inline replaces every xop:Include by the base64 content.
func inline(envelope string, content []byte) string {
	return includeRE.ReplaceAllLiteralString(envelope, base64.StdEncoding.EncodeToString(content))
}

type answer struct {
	status      int
	contentType string
	body        []byte
}

// call posts to the simulator as caller; kvnr goes to x-insurantid when not empty.
func call(t testing.TB, srv *httptest.Server, method, path, caller, kvnr, contentType string, body []byte) answer {
	t.Helper()
	header := map[string]string{}
	if caller != "" {
		header[epa.HeaderTelematikID] = caller
	}
	if kvnr != "" {
		header[epa.HeaderInsurantID] = kvnr
	}
	return request(t, srv, method, path, contentType, body, header)
}

// request sends a request with the headers in header (Host sets the request's Host).
func request(t testing.TB, srv *httptest.Server, method, path, contentType string, body []byte, header map[string]string) answer {
	t.Helper()
	status, h, data := guardtest.Do(t, srv.Client(), guardtest.Request(t, method, srv.URL+path, contentType, body, header))
	return answer{status: status, contentType: h.Get("Content-Type"), body: []byte(data)}
}

const soapType = `application/soap+xml; charset=UTF-8`

func postSOAP(t testing.TB, srv *httptest.Server, caller, kvnr, envelope string) answer {
	t.Helper()
	return call(t, srv, http.MethodPost, epa.PathDocumentService, caller, kvnr, soapType, []byte(envelope))
}

// errorCode reads the errorCode of a JSON error answer.
func errorCode(t testing.TB, a answer) string {
	t.Helper()
	var e struct {
		ErrorCode string `json:"errorCode"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("answer %d is not a JSON error: %q", a.status, a.body)
	}
	return e.ErrorCode
}

// soapBody parses an answer envelope (the root part of MTOM answers) and returns the first body
// element and the attachments by Content-ID.
func soapBody(t testing.TB, a answer) (*etree.Element, map[string][]byte) {
	t.Helper()
	parts := map[string][]byte{}
	data := a.body
	if mt, params, _ := mime.ParseMediaType(a.contentType); mt == "multipart/related" {
		mr := multipart.NewReader(bytes.NewReader(a.body), params["boundary"])
		data = nil
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			id := strings.Trim(p.Header.Get("Content-ID"), "<>")
			if data == nil {
				data = b
			} else {
				parts[id] = b
			}
		}
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		t.Fatalf("answer is no XML: %v", err)
	}
	body := doc.Root().SelectElement("Body")
	if body == nil || len(body.ChildElements()) == 0 {
		t.Fatalf("answer has no SOAP body: %s", data)
	}
	return body.ChildElements()[0], parts
}

// registryResult reads the status (last URN segment) and error codes of a RegistryResponse or
// AdhocQueryResponse, or of the RegistryResponse inside a RetrieveDocumentSetResponse.
func registryResult(t testing.TB, op *etree.Element) (string, []string) {
	t.Helper()
	if rr := op.SelectElement("RegistryResponse"); rr != nil {
		op = rr
	}
	status := op.SelectAttrValue("status", "")
	var codes []string
	if list := op.SelectElement("RegistryErrorList"); list != nil {
		for _, re := range list.SelectElements("RegistryError") {
			codes = append(codes, re.SelectAttrValue("errorCode", ""))
		}
	}
	return status[strings.LastIndex(status, ":")+1:], codes
}

// findDocuments is an ITI-18 FindDocuments envelope for a patient.
func findDocuments(kvnr, returnType string, statuses ...string) string {
	var sb strings.Builder
	for i, s := range statuses {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("'urn:oasis:names:tc:ebxml-regrep:StatusType:" + s + "'")
	}
	return `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>
<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
<query:ResponseOption returnType="` + returnType + `"/>
<rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">
<rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList><rim:Value>'` + kvnr + `^^^&amp;1.2.276.0.76.4.8&amp;ISO'</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="$XDSDocumentEntryStatus"><rim:ValueList><rim:Value>(` + sb.String() + `)</rim:Value></rim:ValueList></rim:Slot>
</rim:AdhocQuery></query:AdhocQueryRequest></soap:Body></soap:Envelope>`
}

// entries runs FindDocuments with LeafClass and returns entryUUID → status.
func entries(t testing.TB, srv *httptest.Server, caller, kvnr string, statuses ...string) map[string]string {
	t.Helper()
	a := postSOAP(t, srv, caller, kvnr, findDocuments(kvnr, "LeafClass", statuses...))
	if a.status != http.StatusOK {
		t.Fatalf("FindDocuments: HTTP %d %s", a.status, a.body)
	}
	op, _ := soapBody(t, a)
	if status, codes := registryResult(t, op); status != "Success" {
		t.Fatalf("FindDocuments: %s %v", status, codes)
	}
	out := map[string]string{}
	for _, eo := range op.SelectElement("RegistryObjectList").SelectElements("ExtrinsicObject") {
		s := eo.SelectAttrValue("status", "")
		out[eo.SelectAttrValue("id", "")] = s[strings.LastIndex(s, ":")+1:]
	}
	return out
}

// retrieve is an ITI-43 envelope for one document.
func retrieve(repository, uniqueID string) string {
	return `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>
<xds:RetrieveDocumentSetRequest xmlns:xds="urn:ihe:iti:xds-b:2007"><xds:DocumentRequest>
<xds:RepositoryUniqueId>` + repository + `</xds:RepositoryUniqueId>
<xds:DocumentUniqueId>` + uniqueID + `</xds:DocumentUniqueId>
</xds:DocumentRequest></xds:RetrieveDocumentSetRequest></soap:Body></soap:Envelope>`
}

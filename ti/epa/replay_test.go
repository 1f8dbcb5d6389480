package epa_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/epa/epasim"
)

// replay answers every request with status, contentType and body, and keeps the last request.
type replay struct {
	status      int
	contentType string
	body        []byte

	mu      sync.Mutex
	header  http.Header
	request []byte
}

func (r *replay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.header, r.request = req.Header.Clone(), body
	r.mu.Unlock()
	w.Header().Set("Content-Type", r.contentType)
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func gematikResponse(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gematik", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const failure = `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>
<rs:RegistryResponse xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure">
<rs:RegistryErrorList highestSeverity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error">
<rs:RegistryError errorCode="XDSRegistryMetadataError" codeContext="classCode missing" severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"/>
<rs:RegistryError errorCode="XDSUnknownPatientId" codeContext="unknown" severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"/>
</rs:RegistryErrorList></rs:RegistryResponse></soap:Body></soap:Envelope>`

const fault = `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault>
<soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang="en">bad envelope</soap:Text></soap:Reason>
</soap:Fault></soap:Body></soap:Envelope>`

// TestUploadReadsAnswers replays gematik's sample ITI-41 responses and error answers.
func TestUploadReadsAnswers(t *testing.T) {
	xmlType := "application/soap+xml; charset=UTF-8"
	tests := []struct {
		name        string
		status      int
		contentType string
		body        []byte
		check       func(t *testing.T, err error)
	}{
		{"reads the ePA 2 DiGA response (no replace) as success", 200, xmlType, gematikResponse(t, "epa2-diga-response_noreplace.xml"), succeeded},
		{"reads the ePA 2 DiGA response (replace) as success", 200, xmlType, gematikResponse(t, "epa2-diga-response_replace.xml"), succeeded},
		{"reads the ePA 1 response as success", 200, "text/xml", gematikResponse(t, "epa1-provideandregister-resp.xml"), succeeded},
		{"reads a Failure with every RegistryError", 200, xmlType, []byte(failure), func(t *testing.T, err error) {
			var xe *epa.XDSError
			if !errors.As(err, &xe) || len(xe.Errors) != 2 || !xe.Has(epa.CodeRegistryMetadataError) || xe.Errors[0].Context != "classCode missing" {
				t.Fatalf("error %#v, want XDSError with both codes", err)
			}
			if !errors.Is(err, epa.ErrNoRecord) {
				t.Error("XDSUnknownPatientId does not match ErrNoRecord")
			}
		}},
		{"reads a 403 notEntitled as ErrNotAuthorized", 403, "application/json", []byte(`{"errorCode":"notEntitled"}`), func(t *testing.T, err error) {
			var ae *epa.APIError
			if !errors.Is(err, epa.ErrNotAuthorized) || !errors.As(err, &ae) || ae.StatusCode != 403 {
				t.Fatalf("error %v, want APIError 403 matching ErrNotAuthorized", err)
			}
		}},
		{"reads a 404 noHealthRecord as ErrNoRecord", 404, "application/json", []byte(`{"errorCode":"noHealthRecord"}`), func(t *testing.T, err error) {
			if !errors.Is(err, epa.ErrNoRecord) {
				t.Fatalf("error %v, want ErrNoRecord", err)
			}
		}},
		{"reads a SOAP Fault", 400, xmlType, []byte(fault), func(t *testing.T, err error) {
			var fe *epa.SOAPFaultError
			if !errors.As(err, &fe) || fe.Code != "soap:Sender" || fe.Reason != "bad envelope" {
				t.Fatalf("error %v, want SOAPFaultError", err)
			}
		}},
		{"refuses an answer with a DOCTYPE", 200, xmlType, []byte(`<!DOCTYPE x><x/>`), failed},
		{"refuses an answer that is not SOAP", 200, "text/html", []byte(`<html/>`), failed},
		{"refuses a 500 without body", 500, "", nil, failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &replay{status: tt.status, contentType: tt.contentType, body: tt.body}
			srv := httptest.NewServer(r)
			defer srv.Close()
			c := &epa.Client{BaseURL: srv.URL, HTTP: srv.Client(), TelematikID: practice, Now: clock}
			_, err := c.Upload(context.Background(), epasim.KVNRAuthorized, befund([]byte("%PDF")))
			tt.check(t, err)
		})
	}
}

func succeeded(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
}

func failed(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("Upload succeeded")
	}
}

// TestUploadSendsITI41 checks the request the client sends: MTOM with the document as a part,
// the headers naming record and institution, and the XDS metadata ePA expects.
func TestUploadSendsITI41(t *testing.T) {
	r := &replay{status: 200, contentType: "application/soap+xml", body: gematikResponse(t, "epa2-diga-response_noreplace.xml")}
	srv := httptest.NewServer(r)
	defer srv.Close()
	c := &epa.Client{BaseURL: srv.URL, HTTP: srv.Client(), TelematikID: practice, InstitutionName: "Praxis A&B", Now: clock}
	content := []byte("%PDF-1.4 binary \x00\xff")
	id, err := c.Upload(context.Background(), epasim.KVNRAuthorized, befund(content))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "2.25.") {
		t.Errorf("uniqueId %q is not a 2.25 OID", id)
	}
	if got := r.header.Get("x-insurantid"); got != epasim.KVNRAuthorized {
		t.Errorf("x-insurantid %q", got)
	}
	if got := r.header.Get("x-telematik-id"); got != practice {
		t.Errorf("x-telematik-id %q", got)
	}
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" || params["type"] != "application/xop+xml" {
		t.Fatalf("Content-Type %q is not MTOM", r.header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(r.request), params["boundary"])
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, b)
	}
	if len(parts) != 2 || !bytes.Equal(parts[1], content) {
		t.Fatalf("%d parts; the second must be the document", len(parts))
	}
	envelope := string(parts[0])
	for _, want := range []string{
		"urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
		`value="` + epasim.KVNRAuthorized + `^^^&amp;1.2.276.0.76.4.8&amp;ISO"`,
		`<rim:Value>Praxis A\T\B^^^^^&amp;1.2.276.0.76.4.188&amp;ISO^^^^` + practice + `</rim:Value>`,
		`<rim:Value>123456601^Muster\S\mann^Erika^^^Dr.^^^&amp;1.2.276.0.76.4.16&amp;ISO</rim:Value>`,
		`<rim:Value>11^^^&amp;1.3.6.1.4.1.19376.3.276.1.5.13&amp;ISO</rim:Value>`,
		`nodeRepresentation="BEF"`, `nodeRepresentation="BEFU"`, `nodeRepresentation="N"`, `nodeRepresentation="PRA"`,
		`nodeRepresentation="ALLG"`, `nodeRepresentation="urn:ihe:iti:xds:2017:mimeTypeSufficient"`,
		`<rim:Value>` + testNow.Format("20060102150405") + `</rim:Value>`,
		`value="` + id + `"`, `classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"`,
		`associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"`,
		`<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:`,
	} {
		if !strings.Contains(envelope, want) {
			t.Errorf("envelope lacks %s", want)
		}
	}
}

// TestCallsAreBounded checks that a server that never answers cannot hang a call.
func TestCallsAreBounded(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	tests := []struct {
		name    string
		timeout time.Duration // Client.Timeout
		ctx     func() (context.Context, context.CancelFunc)
	}{
		{"gives up at the context's deadline", time.Hour, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}},
		{"gives up after Client.Timeout without deadline", 100 * time.Millisecond, func() (context.Context, context.CancelFunc) {
			return context.Background(), func() {}
		}},
	}
	calls := map[string]func(c *epa.Client, ctx context.Context) error{
		"Status": func(c *epa.Client, ctx context.Context) error {
			_, err := c.Status(ctx, epasim.KVNRAuthorized)
			return err
		},
		"Upload": func(c *epa.Client, ctx context.Context) error {
			_, err := c.Upload(ctx, epasim.KVNRAuthorized, befund([]byte("x")))
			return err
		},
		"Find": func(c *epa.Client, ctx context.Context) error {
			_, err := c.Find(ctx, epasim.KVNRAuthorized)
			return err
		},
		"Retrieve": func(c *epa.Client, ctx context.Context) error {
			_, err := c.Retrieve(ctx, epasim.KVNRAuthorized, "2.25.1")
			return err
		},
	}
	for _, tt := range tests {
		for name, call := range calls {
			t.Run(name+" "+tt.name, func(t *testing.T) {
				c := &epa.Client{BaseURL: srv.URL, HTTP: srv.Client(), TelematikID: practice, Timeout: tt.timeout}
				ctx, cancel := tt.ctx()
				defer cancel()
				start := time.Now()
				err := call(c, ctx)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error %v, want context.DeadlineExceeded", err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("the call took %v", d)
				}
			})
		}
	}
}

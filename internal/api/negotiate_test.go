package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/storage"
)

// failingSign answers $signpdf as RED does for unreadable input: 400 with a ConnectorResponse.
type failingSign struct{ stubTI }

func (*failingSign) SignPDF(context.Context, url.Values, []byte) (telematik.Answer, error) {
	r := etree.NewElement("ConnectorResponse")
	r.CreateElement("SignatureStatus").SetText("ERROR")
	r.CreateElement("Error").SetText("No valid xml file")
	return telematik.Answer{Status: http.StatusBadRequest, Body: r}, nil
}

// noTenants knows no tenant besides the one served.
type noTenants struct{}

func (noTenants) Tenant(context.Context, string) (storage.Tenant, error) {
	return storage.Tenant{}, storage.ErrNotFound
}

func negotiatingServer(t *testing.T, mode string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer((&api.Server{Tenant: "praxis", TI: &failingSign{}, Tenants: noTenants{}, Limits: fhir.DefaultLimits,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), FHIRMode: mode}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, method, path string, header ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader("%PDF"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestNegotiation(t *testing.T) {
	srv := negotiatingServer(t, "")
	for _, tc := range []struct {
		name, path string
		header     []string
		status     int
		typ        string
	}{
		{"no Accept: RED's XML", "/metadata", nil, 200, "application/fhir+xml"},
		{"*/*: XML", "/metadata", []string{"Accept", "*/*"}, 200, "application/fhir+xml"},
		{"Accept FHIR JSON", "/metadata", []string{"Accept", "application/fhir+json"}, 200, "application/fhir+json"},
		{"Accept plain JSON", "/metadata", []string{"Accept", "application/json"}, 200, "application/fhir+json"},
		{"the higher q wins", "/metadata", []string{"Accept", "application/fhir+xml;q=0.5, application/fhir+json"}, 200, "application/fhir+json"},
		{"on equal q the first named", "/metadata", []string{"Accept", "application/fhir+xml, application/fhir+json"}, 200, "application/fhir+xml"},
		{"_format=json wins over Accept", "/metadata?_format=json", []string{"Accept", "application/fhir+xml"}, 200, "application/fhir+json"},
		{"_format with the media type", "/metadata?_format=application/fhir%2Bjson", nil, 200, "application/fhir+json"},
		{"_format's + arriving as a space", "/metadata?_format=application/fhir+json", nil, 200, "application/fhir+json"},
		{"_format=xml wins over Accept", "/metadata?_format=xml", []string{"Accept", "application/fhir+json"}, 200, "application/fhir+xml"},
		{"an Accept red cannot write is 406", "/metadata", []string{"Accept", "text/html"}, 406, "application/fhir+xml"},
		{"q=0 refuses", "/metadata", []string{"Accept", "application/fhir+json;q=0"}, 406, "application/fhir+xml"},
		{"an unknown _format is 406", "/metadata?_format=yaml", nil, 406, "application/fhir+xml"},
		{"errors come as asked", "/nobody/Patient/1", []string{"Accept", "application/fhir+json"}, 404, "application/fhir+json"},
		{"guard refusals too", "/metadata", []string{"Accept", "application/fhir+json", "Origin", "http://evil.example"}, 403, "application/fhir+json"},
		{"RED's own answers in JSON are plain JSON", "/praxis/Bundle?action=$signpdf&_format=json", []string{"Content-Type", "application/pdf"}, 400, "application/json"},
		{"RED's own answers stay RED's by default", "/praxis/Bundle?action=$signpdf", []string{"Content-Type", "application/pdf"}, 400, "application/xml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			switch {
			case strings.Contains(tc.path, "signpdf"):
				method = http.MethodPost
			}
			status, typ, body := get(t, srv, method, tc.path, tc.header...)
			if status != tc.status || !strings.HasPrefix(typ, tc.typ) {
				t.Fatalf("%d %s, want %d %s:\n%s", status, typ, tc.status, tc.typ, body)
			}
		})
	}
	if _, _, body := get(t, srv, "GET", "/metadata", "Accept", "text/html"); !strings.Contains(body, "application/fhir+json") {
		t.Errorf("the 406 does not list the formats:\n%s", body)
	}
}

func TestStrictModeErrorsAreOperationOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		header     []string
	}{
		{"server in strict mode", api.ModeStrict, nil},
		{"request with Prefer: handling=strict", "", []string{"Prefer", "handling=strict"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := negotiatingServer(t, tc.mode)
			status, typ, body := get(t, srv, "POST", "/praxis/Bundle?action=$signpdf", append(tc.header, "Content-Type", "application/pdf")...)
			if status != 400 || !strings.HasPrefix(typ, "application/fhir+xml") || !strings.Contains(body, "<OperationOutcome") || !strings.Contains(body, "Error: No valid xml file") {
				t.Fatalf("%d %s:\n%s", status, typ, body)
			}
		})
	}
	t.Run("Prefer: handling=lenient keeps RED's shape on a strict server", func(t *testing.T) {
		srv := negotiatingServer(t, api.ModeStrict)
		_, _, body := get(t, srv, "POST", "/praxis/Bundle?action=$signpdf", "Content-Type", "application/pdf", "Prefer", "handling=lenient")
		if !strings.Contains(body, "<ConnectorResponse>") {
			t.Fatalf("not RED's shape:\n%s", body)
		}
	})
}

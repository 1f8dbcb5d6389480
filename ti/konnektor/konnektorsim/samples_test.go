package konnektorsim_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
	"github.com/redclone/red/ti/simpki"
)

// examples are gematik's sample messages (Apache-2.0, see ../testdata/gematik/NOTICE), in the
// testdata of package konnektor.
const examples = "../testdata/gematik"

// vendorRequests are gematik's sample requests the simulator must accept as they are.
var vendorRequests = []string{
	"api-ePA/samples/ePA 1 Beispielnachrichten PS - Konnektor/Requests/verifypin.xml",
	"api-ePA/samples/ePA 1 Beispielnachrichten PS - Konnektor/Requests/getpinstatus.xml",
	"api-ePA/samples/ePA 1 Beispielnachrichten PS - Konnektor/Requests/readcardcertificate.xml",
	"eRezept-Examples/API-Examples/2025-01-15/authentisieren/01_request_ReadCardCertificate.xml",
	"eRezept-Examples/API-Examples/2025-01-15/authentisieren/03_request_VerifyCertificate.xml",
	"eRezept-Examples/API-Examples/2025-01-15/authentisieren/05_request_ExternalAuthenticate.xml",
	"eRezept-Examples/API-Examples/2025-01-15/erp_bereitstellen/03_request_SignDocument.xml",
	"eRezept-Examples/API-Examples/2025-01-15/erp_abrufen/04_request_VerifySignatureTask.xml",
	"eRezept-Examples/API-Examples/2025-01-15/erp_abrufen_egk/01_GetCards.xml",
	"eRezept-Examples/API-Examples/2025-01-15/erp_abrufen_egk/03_ReadVSD.xml",
}

// endpoints maps operations to the simulator's service paths (as connector.sds lists them).
var endpoints = map[string]string{
	"GetCards":             "/webservices/eventservice",
	"VerifyPin":            "/webservices/cardservice",
	"GetPinStatus":         "/webservices/cardservice",
	"ReadCardCertificate":  "/webservices/certificateservice",
	"VerifyCertificate":    "/webservices/certificateservice",
	"ExternalAuthenticate": "/webservices/authsignatureservice",
	"SignDocument":         "/webservices/signatureservice",
	"VerifyDocument":       "/webservices/signatureservice",
	"ReadVSD":              "/fm/vsdservice",
}

// masked are elements whose content differs on every run (fresh keys, random IDs, dates
// derived from the real time the PKI issued certificates at).
var masked = map[string]bool{
	"Base64Signature":           true,
	"X509Certificate":           true,
	"CertificateExpirationDate": true,
	"MessageID":                 true,
	"EventID":                   true,
}

var clock = func() time.Time { return time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC) }

func sharedPKI(t testing.TB) *simpki.PKI {
	t.Helper()
	p, err := simpki.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newServer(t testing.TB, p *simpki.PKI, stateDir string, cfg konnektorsim.Config) (*konnektorsim.Simulator, *httptest.Server) {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = clock
	}
	sim, err := konnektorsim.New(cfg, p, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func TestVendorRequests(t *testing.T) {
	files := append([]string(nil), vendorRequests...)
	for _, f := range fixture.Glob(t, filepath.Join(examples, "api-erp/samples/qes/signed/*_req.xml")) {
		rel, _ := filepath.Rel(examples, f)
		files = append(files, rel)
	}
	p := sharedPKI(t)
	for _, rel := range files {
		name := strings.TrimSuffix(filepath.Base(rel), ".xml")
		if strings.Contains(rel, "ePA 1") {
			name = "epa1_" + name
		}
		t.Run("accepts "+name, func(t *testing.T) {
			body := fixture.Read(t, filepath.Join(examples, rel))
			op := operationOf(t, body)
			_, srv := newServer(t, p, t.TempDir(), konnektorsim.DefaultConfig())
			req, err := http.NewRequest(http.MethodPost, srv.URL+endpoints[op], bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "text/xml; charset=UTF-8")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d:\n%s", resp.StatusCode, got)
			}
			fixture.Golden(t, filepath.Join("testdata", "vendor", name+".xml"), normalize(t, got))
		})
	}
}

// operationOf returns the local name of the SOAP body's first element.
func operationOf(t testing.TB, body []byte) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		t.Fatal(err)
	}
	b := doc.FindElement("//Body")
	if b == nil || len(b.ChildElements()) == 0 {
		t.Fatal("no SOAP body")
	}
	return b.ChildElements()[0].Tag
}

// normalize masks run-dependent content and indents.
func normalize(t testing.TB, data []byte) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		t.Fatalf("response is not XML: %v\n%s", err, data)
	}
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		if masked[e.Tag] && e.Text() != "" {
			e.SetText("MASKED")
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(doc.Root())
	doc.Indent(2)
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

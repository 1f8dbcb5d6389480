package konnektorsim_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
)

// fuzzSimulator is a simulator with the default cards for a fuzz target.
func fuzzSimulator(f *testing.F) *konnektorsim.Simulator {
	cfg := konnektorsim.DefaultConfig()
	cfg.Clock = clock
	sim, err := konnektorsim.New(cfg, sharedPKI(f), f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	return sim
}

// serve sends one request to sim as a loopback client would.
func serve(sim http.Handler, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://127.0.0.1"+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	return rec
}

// FuzzPinpad: whatever a client posts to the PIN pad, the simulator neither panics nor answers
// with a server error.
func FuzzPinpad(f *testing.F) {
	for _, seed := range []string{
		`{"cardHandle":"HBA-16","entries":["123456","CANCEL","TIMEOUT"]}`,
		`{"cardHandle":"HBA-5","entries":[]}`,
		`{"cardHandle":"nope","entries":["1"]}`,
		`{"cardHandle":"HBA-16","entries":["x"]}`,
		`{"cardHandle":"HBA-16","pin":"1"}`,
		`{"cardHandle":null,"entries":null}`,
		`[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	sim := fuzzSimulator(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(sim, http.MethodPost, "/sim/pinpad", "application/json", body)
		if rec.Code >= 500 {
			t.Errorf("HTTP %d: %s", rec.Code, rec.Body)
		}
		serve(sim, http.MethodDelete, "/sim/pinpad", "", nil) // the queues stay small
	})
}

// soapPaths are the simulator's SOAP endpoints.
var soapPaths = []string{
	"/webservices/eventservice", "/webservices/cardservice", "/webservices/signatureservice",
	"/webservices/authsignatureservice", "/webservices/certificateservice", "/fm/vsdservice",
}

// FuzzSOAPRequest: whatever envelope a client posts to a SOAP service, the simulator neither
// panics nor answers anything but a SOAP response or fault.
func FuzzSOAPRequest(f *testing.F) {
	for _, rel := range []string{
		"api-ePA/samples/ePA 1 Beispielnachrichten PS - Konnektor/Requests/verifypin.xml",
		"api-ePA/samples/ePA 1 Beispielnachrichten PS - Konnektor/Requests/getpinstatus.xml",
		"eRezept-Examples/API-Examples/2025-01-15/erp_abrufen_egk/01_GetCards.xml",
		"eRezept-Examples/API-Examples/2025-01-15/erp_abrufen_egk/03_ReadVSD.xml",
	} {
		body := fixture.Read(f, filepath.Join(examples, rel))
		path := uint8(0)
		for i, p := range soapPaths {
			if p == endpoints[operationOf(f, body)] {
				path = uint8(i)
			}
		}
		f.Add(path, body)
	}
	f.Add(uint8(0), []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>`))
	f.Add(uint8(1), []byte(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`))
	sim := fuzzSimulator(f)
	f.Fuzz(func(t *testing.T, path uint8, body []byte) {
		rec := serve(sim, http.MethodPost, soapPaths[int(path)%len(soapPaths)], "text/xml; charset=UTF-8", body)
		if rec.Code != http.StatusOK && !strings.Contains(rec.Body.String(), "Fault>") {
			t.Errorf("HTTP %d without a SOAP fault: %s", rec.Code, rec.Body)
		}
	})
}

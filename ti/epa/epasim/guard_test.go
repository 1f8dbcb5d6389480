package epasim_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redclone/red/ti/epa"
)

func TestGuardRefusesPagesAndOtherHosts(t *testing.T) {
	pdf := []byte("%PDF-1.4\n% a finding\n")
	envelope := sample(t, "epa2-diga-request_noreplace.xml")
	upload := []byte(inline(envelope, pdf))
	mtomUpload, mtomType := mtom(t, envelope, pdf)
	patient := map[string]string{epa.HeaderTelematikID: epa2Caller, epa.HeaderInsurantID: epa2Patient}
	stranger := map[string]string{epa.HeaderTelematikID: stranger, epa.HeaderInsurantID: epa2Replace}
	with := func(base map[string]string, kv ...string) map[string]string {
		h := map[string]string{}
		for k, v := range base {
			h[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	const evil = "http://evil.example"
	// stored tells whether the upload reached the registry; entitled whether the stranger
	// practice got an entitlement
	stored := func(t *testing.T, srv *httptest.Server) bool {
		return len(entries(t, srv, epa2Caller, epa2Patient, "Approved")) > 0
	}
	entitled := func(t *testing.T, srv *httptest.Server) bool {
		return call(t, srv, http.MethodGet, epa.PathEntitlements, stranger[epa.HeaderTelematikID], epa2Replace, "", nil).status == http.StatusOK
	}
	tests := []struct {
		name, path, contentType string
		body                    []byte
		header                  map[string]string
		status                  int
		changed                 func(*testing.T, *httptest.Server) bool
		changes                 bool
	}{
		{"refuses a page uploading a document as text/plain", epa.PathDocumentService, "text/plain", upload, with(patient, "Origin", evil), 403, stored, false},
		{"refuses an upload as text/plain without Origin", epa.PathDocumentService, "text/plain", upload, patient, 415, stored, false},
		{"refuses an upload as multipart/form-data", epa.PathDocumentService, "multipart/form-data; boundary=x", upload, patient, 415, stored, false},
		{"refuses an upload to a rebound name", epa.PathDocumentService, soapType, upload, with(patient, "Host", "evil.example"), 403, stored, false},
		{"refuses an upload from a same-site page", epa.PathDocumentService, soapType, upload, with(patient, "Sec-Fetch-Site", "same-site"), 403, stored, false},
		{"refuses a page setting an entitlement as text/plain", epa.PathEntitlements, "text/plain", []byte(`{"jwt":"proof"}`), with(stranger, "Origin", evil), 403, entitled, false},
		{"refuses an entitlement as text/plain without Origin", epa.PathEntitlements, "text/plain", []byte(`{"jwt":"proof"}`), stranger, 415, entitled, false},
		{"refuses an entitlement to a rebound name", epa.PathEntitlements, "application/json", []byte(`{"jwt":"proof"}`), with(stranger, "Host", "evil.example:80"), 403, entitled, false},
		{"serves an upload as SOAP", epa.PathDocumentService, soapType, upload, patient, 200, stored, true},
		{"serves an upload as MTOM", epa.PathDocumentService, mtomType, mtomUpload, patient, 200, stored, true},
		{"serves an entitlement as JSON", epa.PathEntitlements, "application/json", []byte(`{"jwt":"proof"}`), stranger, 201, entitled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, "")
			a := request(t, srv, http.MethodPost, tt.path, tt.contentType, tt.body, tt.header)
			if a.status != tt.status {
				t.Errorf("HTTP %d, want %d: %s", a.status, tt.status, a.body)
			}
			if a.status >= 400 && errorCode(t, a) == "" {
				t.Errorf("the refusal is no ErrorType: %s", a.body)
			}
			if changed := tt.changed(t, srv); changed != tt.changes {
				t.Errorf("state changed: %v, want %v", changed, tt.changes)
			}
		})
	}
	t.Run("refuses a same-site read of the record status", func(t *testing.T) {
		a := request(t, newServer(t, ""), http.MethodGet, epa.PathRecordStatus, "", nil, with(patient, "Sec-Fetch-Site", "same-site"))
		if a.status != http.StatusForbidden || !strings.Contains(string(a.body), "Sec-Fetch-Site") {
			t.Errorf("HTTP %d: %s", a.status, a.body)
		}
	})
}

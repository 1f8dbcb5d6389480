package fachdienstsim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/redclone/red/internal/guard/guardtest"
	"github.com/redclone/red/ti/fachdienst"
)

func TestGuardRefusesPagesAndOtherHosts(t *testing.T) {
	e := newEnv(t)
	port := e.srv.URL[strings.LastIndex(e.srv.URL, ":")+1:]
	const evil = "http://evil.example"
	tests := []struct {
		name, contentType string
		header            map[string]string // Host sets the request's Host
		status            int
		want              string
		activates         bool
	}{
		{"refuses a page activating a Task as text/plain", "text/plain", map[string]string{"Origin": evil}, 403, "cross-origin", false},
		{"refuses $activate as text/plain without Origin", "text/plain", nil, 415, "application/fhir+xml", false},
		{"refuses $activate as a form", "application/x-www-form-urlencoded", nil, 415, "application/fhir+xml", false},
		{"refuses $activate as JSON", "application/fhir+json", nil, 415, "application/fhir+xml", false},
		{"refuses $activate to a rebound name", fachdienst.ContentType, map[string]string{"Host": "evil.example:" + port}, 403, "localhost", false},
		{"refuses $activate from a same-site page", fachdienst.ContentType, map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "Sec-Fetch-Site", false},
		{"serves $activate to practice software", fachdienst.ContentType, nil, 200, "<Task", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			task := e.created(160)
			signed := e.sign(e.prescription(gkvPrescription, task.ID))
			p := `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="ePrescription"/><resource><Binary>` +
				`<contentType value="application/pkcs7-mime"/><data value="` + base64.StdEncoding.EncodeToString(signed) +
				`"/></Binary></resource></parameter></Parameters>`
			req := guardtest.Request(t, http.MethodPost, e.srv.URL+"/Task/"+task.ID+"/$activate", tt.contentType, []byte(p), tt.header)
			doctorID.Set(req.Header)
			req.Header.Set(fachdienst.HeaderAccessCode, task.AccessCode)
			status, _, body := guardtest.Do(t, e.srv.Client(), req)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("HTTP %d, want %d with %q:\n%s", status, tt.status, tt.want, body)
			}
			if status >= 400 && !strings.Contains(body, "<OperationOutcome") {
				t.Errorf("the refusal is no OperationOutcome:\n%s", body)
			}
			// the doctor's own $activate succeeds only on a Task still in draft
			_, err := e.doctor.Activate(context.Background(), task.ID, task.AccessCode, signed)
			if activated := err != nil; activated != tt.activates {
				t.Errorf("activated by the request: %v (then the doctor's $activate: %v)", activated, err)
			}
		})
	}
	t.Run("refuses a same-site read of the Tasks", func(t *testing.T) {
		req := guardtest.Request(t, http.MethodGet, e.srv.URL+"/Task", "", nil, map[string]string{"Sec-Fetch-Site": "same-site"})
		pharmacyID.Set(req.Header)
		if status, _, body := guardtest.Do(t, e.srv.Client(), req); status != http.StatusForbidden {
			t.Errorf("HTTP %d:\n%s", status, body)
		}
	})
	t.Run("refuses a body over 1 MB without Content-Length", func(t *testing.T) {
		req := guardtest.Request(t, http.MethodPost, e.srv.URL+"/Task/$create", fachdienst.ContentType, nil, nil)
		req.Body = io.NopCloser(bytes.NewReader(bytes.Repeat([]byte("<a/>"), 300_000))) // sent chunked
		doctorID.Set(req.Header)
		if status, _, body := guardtest.Do(t, e.srv.Client(), req); status != http.StatusRequestEntityTooLarge {
			t.Errorf("HTTP %d:\n%s", status, body)
		}
	})
}

package fhir_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/redclone/red/fhir"
)

func TestErrorsForTheCaller(t *testing.T) {
	internal := errors.New("pq: connection to 10.0.0.1 refused for patient Mustermann")
	cases := []struct {
		name       string
		err        error
		status     int
		code       fhir.IssueCode
		message    string
		expression string
	}{
		{"a failure carries code, message and location", fhir.Fail(fhir.CodeValue, "Patient.birthDate", "%s is not a date", "birthDate"),
			http.StatusBadRequest, fhir.CodeValue, "birthDate is not a date", "Patient.birthDate"},
		{"a failure survives wrapping inside a package", fmt.Errorf("read: %w", fhir.Fail(fhir.CodeNotFound, "", "no Patient with this id")),
			http.StatusNotFound, fhir.CodeNotFound, "no Patient with this id", ""},
		{"a wrapped internal error shows only the public message", fhir.Wrap(internal, fhir.CodeTransient, "the Konnektor cannot be reached"),
			http.StatusBadGateway, fhir.CodeTransient, "the Konnektor cannot be reached", ""},
		{"a rejection carries every issue", fhir.Reject(fhir.Issues{
			{Severity: fhir.SeverityWarning, Code: fhir.CodeInformational, Diagnostics: "note"},
			{Severity: fhir.SeverityError, Code: fhir.CodeRequired, Diagnostics: "Bundle.type is required", Expression: "Bundle.type"}}),
			http.StatusBadRequest, fhir.CodeInformational, "note", ""},
		{"a wrong method is 405, shown as not-supported", fhir.Fail(fhir.CodeMethodNotAllowed, "", "PATCH is not allowed here"),
			http.StatusMethodNotAllowed, fhir.CodeMethodNotAllowed, "PATCH is not allowed here", ""},
		{"a wrong media type is 415", fhir.Fail(fhir.CodeUnsupportedMediaType, "", "send FHIR XML"),
			http.StatusUnsupportedMediaType, fhir.CodeUnsupportedMediaType, "send FHIR XML", ""},
		{"a conflict is 409", fhir.Fail(fhir.CodeConflict, "", "changed meanwhile"), http.StatusConflict, fhir.CodeConflict, "changed meanwhile", ""},
		{"a deletion is 410", fhir.Fail(fhir.CodeDeleted, "", "deleted"), http.StatusGone, fhir.CodeDeleted, "deleted", ""},
		{"a request without a valid API token is 401", fhir.Fail(fhir.CodeUnauthorized, "", "no token"), http.StatusUnauthorized, fhir.CodeUnauthorized, "no token", ""},
		{"a locked tenant is 403", fhir.Fail(fhir.CodeLogin, "", "locked"), http.StatusForbidden, fhir.CodeLogin, "locked", ""},
		{"a TI timeout is 504", fhir.Fail(fhir.CodeTimeout, "", "no answer"), http.StatusGatewayTimeout, fhir.CodeTimeout, "no answer", ""},
		{"a busy server is 503", fhir.Fail(fhir.CodeThrottled, "", "busy"), http.StatusServiceUnavailable, fhir.CodeThrottled, "busy", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is, status := fhir.Explain(c.err)
			if status != c.status || len(is) == 0 || is[0].Code != c.code || is[0].Diagnostics != c.message || is[0].Expression != c.expression {
				t.Errorf("Explain = %d %+v, want %d %s %q at %q", status, is, c.status, c.code, c.message, c.expression)
			}
			if fhir.CodeOf(c.err) == "" {
				t.Errorf("CodeOf = \"\"")
			}
		})
	}
	t.Run("an internal error tells the caller nothing", func(t *testing.T) {
		if is, status := fhir.Explain(internal); is != nil || status != http.StatusInternalServerError || fhir.CodeOf(internal) != "" {
			t.Errorf("Explain = %d %+v", status, is)
		}
	})
	t.Run("statuses of entries come from the same table", func(t *testing.T) {
		for code, want := range map[fhir.IssueCode]string{fhir.CodeNotFound: "404 Not Found", fhir.CodeConflict: "409 Conflict", fhir.CodeValue: "400 Bad Request", "no-such-code": "500 Internal Server Error"} {
			if got := fhir.StatusLine(fhir.Status(code)); got != want {
				t.Errorf("%s: %q, want %q", code, got, want)
			}
		}
	})
	t.Run("an OperationOutcome shows transport codes as FHIR issue types", func(t *testing.T) {
		for code, want := range map[fhir.IssueCode]string{fhir.CodeMethodNotAllowed: "not-supported", fhir.CodeUnauthorized: "login"} {
			is, _ := fhir.Explain(fhir.Fail(code, "", "no"))
			oo := fhir.OperationOutcome(is)
			if got := oo.FindElement("issue/code").SelectAttrValue("value", ""); got != want {
				t.Errorf("%s: code %q, want %s", code, got, want)
			}
		}
	})
}

package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault"
)

// statusError is an error whose HTTP status is decided by the transport itself (405, 415).
type statusError struct {
	status int
	issue  fhir.Issue
}

func (e *statusError) Error() string { return e.issue.Diagnostics }

func transportError(status int, code fhir.IssueCode, msg string) error {
	return &statusError{status: status, issue: fhir.Issue{Severity: fhir.SeverityError, Code: code, Diagnostics: msg}}
}

// statusOf maps FHIR issue codes to HTTP statuses.
var statusOf = map[fhir.IssueCode]int{
	fhir.CodeInvalid:       http.StatusBadRequest,
	fhir.CodeInvariant:     http.StatusBadRequest,
	fhir.CodeStructure:     http.StatusBadRequest,
	fhir.CodeRequired:      http.StatusBadRequest,
	fhir.CodeValue:         http.StatusBadRequest,
	fhir.CodeSecurity:      http.StatusBadRequest,
	fhir.CodeNotSupported:  http.StatusBadRequest,
	fhir.CodeLogin:         http.StatusUnauthorized,
	fhir.CodeForbidden:     http.StatusForbidden,
	fhir.CodeNotFound:      http.StatusNotFound,
	fhir.CodeDeleted:       http.StatusGone,
	fhir.CodeConflict:      http.StatusConflict,
	fhir.CodeTooCostly:     http.StatusRequestEntityTooLarge,
	fhir.CodeTransient:     http.StatusBadGateway,
	fhir.CodeProcessing:    http.StatusUnprocessableEntity,
	fhir.CodeTimeout:       http.StatusGatewayTimeout,
	fhir.CodeException:     http.StatusInternalServerError,
	fhir.CodeInformational: http.StatusOK,
}

// writeError is the one place that decides an error's status, body and logging. Only 5xx are
// logged with detail, under a reference the client also sees; messages never carry person data.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		issues fhir.Issues
		se     *statusError
		mbe    *http.MaxBytesError
		status int
	)
	switch {
	case errors.As(err, &se):
		status, issues = se.status, fhir.Issues{se.issue}
	case errors.As(err, &issues):
		status = statusOf[issues.Code()]
	case errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
		issues = fhir.Issues{{Severity: fhir.SeverityError, Code: fhir.CodeTooCostly, Diagnostics: "the body is larger than the server accepts (" + byteSize(mbe.Limit) + ")"}}
	case errors.Is(err, vault.ErrSealed):
		status = http.StatusForbidden
		issues = fhir.Issues{{Severity: fhir.SeverityError, Code: fhir.CodeLogin, Diagnostics: "this tenant is locked on this server; log in again"}}
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		ref := reference()
		s.Log.Error("request failed", "ref", ref, "method", r.Method, "route", routePattern(r), "err", err)
		if len(issues) == 0 {
			issues = fhir.Issues{{Severity: fhir.SeverityFatal, Code: fhir.CodeException, Diagnostics: "internal error; the server log has the details under reference " + ref}}
		}
	}
	writeXML(w, status, fhir.OperationOutcome(issues))
}

func reference() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

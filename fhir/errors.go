package fhir

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/samber/oops"
)

// Errors that reach a caller are oops errors: their oops code is the IssueCode, their public
// message (oops Public) is what the caller reads, and the context key "expression" says where.
// What they wrap, and any error without an IssueCode, stays internal (500, logged, never shown).
// Inside a package, plain %w wrapping is fine.

// Codes that are not FHIR issue types but decide a transport status; an OperationOutcome shows
// them as not-supported (CodeUnauthorized as login).
const (
	CodeMethodNotAllowed     IssueCode = "method-not-allowed"
	CodeUnsupportedMediaType IssueCode = "unsupported-media-type"
	CodeNotAcceptable        IssueCode = "not-acceptable" // no answer format the client accepts
	CodeUnauthorized         IssueCode = "unauthorized"   // the request carries no valid API token
)

// codes is the one table from an error's code to the HTTP status it answers with — the whole
// response's in the API, each entry's in batch and transaction responses — and to the issue type
// an OperationOutcome shows.
var codes = map[IssueCode]struct {
	status    int
	issueType IssueCode
}{
	CodeInvalid:              {http.StatusBadRequest, CodeInvalid},
	CodeInvariant:            {http.StatusBadRequest, CodeInvariant},
	CodeStructure:            {http.StatusBadRequest, CodeStructure},
	CodeRequired:             {http.StatusBadRequest, CodeRequired},
	CodeValue:                {http.StatusBadRequest, CodeValue},
	CodeSecurity:             {http.StatusBadRequest, CodeSecurity},
	CodeNotSupported:         {http.StatusBadRequest, CodeNotSupported},
	CodeLogin:                {http.StatusForbidden, CodeLogin},
	CodeForbidden:            {http.StatusForbidden, CodeForbidden},
	CodeUnauthorized:         {http.StatusUnauthorized, CodeLogin},
	CodeNotFound:             {http.StatusNotFound, CodeNotFound},
	CodeMethodNotAllowed:     {http.StatusMethodNotAllowed, CodeNotSupported},
	CodeConflict:             {http.StatusConflict, CodeConflict},
	CodeDeleted:              {http.StatusGone, CodeDeleted},
	CodeTooCostly:            {http.StatusRequestEntityTooLarge, CodeTooCostly},
	CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType, CodeNotSupported},
	CodeNotAcceptable:        {http.StatusNotAcceptable, CodeNotSupported},
	CodeProcessing:           {http.StatusUnprocessableEntity, CodeProcessing},
	CodeException:            {http.StatusInternalServerError, CodeException},
	CodeTransient:            {http.StatusBadGateway, CodeTransient},
	CodeThrottled:            {http.StatusServiceUnavailable, CodeThrottled},
	CodeTimeout:              {http.StatusGatewayTimeout, CodeTimeout},
	CodeInformational:        {http.StatusOK, CodeInformational},
}

// Status is the HTTP status of an answer that failed with code (500 for an unknown code).
func Status(code IssueCode) int {
	if c, ok := codes[code]; ok {
		return c.status
	}
	return http.StatusInternalServerError
}

// StatusLine is the status of a bundle entry's response, e.g. "201 Created".
func StatusLine(status int) string {
	return strconv.Itoa(status) + " " + http.StatusText(status)
}

// issueType is the FHIR issue type an OperationOutcome shows for code.
func (code IssueCode) issueType() IssueCode {
	if c, ok := codes[code]; ok {
		return c.issueType
	}
	return code
}

// expressionKey is the oops context key of an error's location.
const expressionKey = "expression"

// Fail returns an error for the caller: one error-level issue with its code, location (a
// FHIRPath-like expression, or "" for none) and public message. Messages never quote person data.
func Fail(code IssueCode, expression, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return oops.Code(code).With(expressionKey, expression).Public(msg).New(msg)
}

// Wrap returns an error for the caller that keeps err as its internal cause (for the log) and
// shows only the public message.
func Wrap(err error, code IssueCode, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return oops.Code(code).Public(msg).Wrapf(err, "%s", msg)
}

// Reject returns an error carrying every finding of one request.
func Reject(is Issues) error {
	return oops.Code(is.Code()).Wrap(is)
}

// CodeOf is the code of an error for the caller, "" for an internal error.
func CodeOf(err error) IssueCode {
	var is Issues
	if errors.As(err, &is) {
		return is.Code()
	}
	if oe, ok := oops.AsOops(err); ok {
		if code, ok := oe.Code().(IssueCode); ok {
			return code
		}
	}
	return ""
}

// Explain says what the caller learns of err: its issues and the HTTP status. An internal error
// has no issues and status 500.
func Explain(err error) (Issues, int) {
	var is Issues
	if errors.As(err, &is) {
		return is, Status(is.Code())
	}
	code := CodeOf(err)
	if code == "" {
		return nil, http.StatusInternalServerError
	}
	oe, _ := oops.AsOops(err)
	expr, _ := oe.Context()[expressionKey].(string)
	return Issues{{Severity: SeverityError, Code: code, Diagnostics: oe.Public(), Expression: expr}}, Status(code)
}

package epa

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; the typed errors below match them with errors.Is.
var (
	// ErrNoRecord: the insured person has no health record (HTTP 404 noHealthRecord, or
	// XDSUnknownPatientId).
	ErrNoRecord = errors.New("epa: the insured person has no health record")
	// ErrNotAuthorized: the institution holds no valid entitlement (Befugnis) for the record, or
	// did not identify itself (HTTP 403 notEntitled or invalAuth).
	ErrNotAuthorized = errors.New("epa: the institution is not entitled to the health record")
	// ErrDocumentNotFound: the record has no such document (XDSDocumentUniqueIdError, or an empty
	// answer to a query by id).
	ErrDocumentNotFound = errors.New("epa: the health record has no such document")
)

// XDS error codes (IHE ITI TF-3 Table 4.2.4.1-2) a caller may want to tell apart.
const (
	CodeRegistryMetadataError   = "XDSRegistryMetadataError"
	CodeRepositoryMetadataError = "XDSRepositoryMetadataError"
	CodeUnknownPatientID        = "XDSUnknownPatientId"
	CodePatientIDDoesNotMatch   = "XDSPatientIdDoesNotMatch"
	CodeMissingDocument         = "XDSMissingDocument"
	CodeDuplicateUniqueID       = "XDSDuplicateUniqueIdInRegistry"
	CodeDocumentUniqueIDError   = "XDSDocumentUniqueIdError"
	CodeUnknownRepositoryID     = "XDSUnknownRepositoryId"
	CodeUnresolvedReference     = "UnresolvedReferenceException"
)

// APIError is an error answer of the ePA REST interfaces: an HTTP status and the ErrorType body.
type APIError struct {
	StatusCode int
	Code       string // errorCode, e.g. noHealthRecord, notEntitled, malformedRequest
	Detail     string // errorDetail
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("epa: HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("epa: HTTP %d %s", e.StatusCode, e.Code)
}

// Is matches ErrNoRecord and ErrNotAuthorized.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNoRecord:
		return e.Code == "noHealthRecord"
	case ErrNotAuthorized:
		return e.Code == "notEntitled" || e.Code == "invalAuth"
	}
	return false
}

// RegistryError is one entry of an XDS RegistryErrorList.
type RegistryError struct {
	Code     string // errorCode
	Context  string // codeContext: the server's explanation
	Severity string // urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error or …:Warning
	Location string
}

// XDSError is an XDS answer with status Failure or PartialSuccess.
type XDSError struct {
	Status string // the response status URN
	Errors []RegistryError
}

func (e *XDSError) Error() string {
	codes := make([]string, 0, len(e.Errors))
	for _, re := range e.Errors {
		codes = append(codes, re.Code)
	}
	status := e.Status[strings.LastIndex(e.Status, ":")+1:]
	if len(codes) == 0 {
		return "epa: XDS " + status
	}
	return "epa: XDS " + status + ": " + strings.Join(codes, ", ")
}

// Has tells whether the answer lists the error code.
func (e *XDSError) Has(code string) bool {
	for _, re := range e.Errors {
		if re.Code == code {
			return true
		}
	}
	return false
}

// Is matches ErrNoRecord (XDSUnknownPatientId) and ErrDocumentNotFound (XDSDocumentUniqueIdError).
func (e *XDSError) Is(target error) bool {
	switch target {
	case ErrNoRecord:
		return e.Has(CodeUnknownPatientID)
	case ErrDocumentNotFound:
		return e.Has(CodeDocumentUniqueIDError)
	}
	return false
}

// SOAPFaultError is a SOAP Fault answer.
type SOAPFaultError struct {
	Code   string // e.g. soap:Sender
	Reason string
}

func (e *SOAPFaultError) Error() string {
	return fmt.Sprintf("epa: SOAP fault %s: %s", e.Code, e.Reason)
}

package fhir

import (
	"strings"

	"github.com/beevik/etree"
)

// IssueCode is a FHIR OperationOutcome issue type (http://hl7.org/fhir/issue-type).
type IssueCode string

// The issue codes red uses. The HTTP status each one maps to is decided in one place, the table
// in errors.go.
const (
	CodeInvalid       IssueCode = "invalid"
	CodeInvariant     IssueCode = "invariant"
	CodeStructure     IssueCode = "structure"
	CodeRequired      IssueCode = "required"
	CodeValue         IssueCode = "value"
	CodeSecurity      IssueCode = "security"
	CodeForbidden     IssueCode = "forbidden"
	CodeLogin         IssueCode = "login"
	CodeNotSupported  IssueCode = "not-supported"
	CodeNotFound      IssueCode = "not-found"
	CodeDeleted       IssueCode = "deleted"
	CodeConflict      IssueCode = "conflict"
	CodeTooCostly     IssueCode = "too-costly"
	CodeTransient     IssueCode = "transient"
	CodeThrottled     IssueCode = "throttled"
	CodeProcessing    IssueCode = "processing"
	CodeTimeout       IssueCode = "timeout"
	CodeException     IssueCode = "exception"
	CodeInformational IssueCode = "informational"
)

// Severity of an issue.
type Severity string

// Severities.
const (
	SeverityFatal       Severity = "fatal"
	SeverityError       Severity = "error"
	SeverityWarning     Severity = "warning"
	SeverityInformation Severity = "information"
)

// Issue is one finding: what is wrong and exactly where (a FHIRPath-like expression such as
// Bundle.entry[3].resource.identifier[0].value).
type Issue struct {
	Severity    Severity
	Code        IssueCode
	Diagnostics string
	Expression  string
}

// Issues is an error carrying every finding of one request. Messages never quote person data.
type Issues []Issue

// Unique drops repeated issues, keeping the first of each in order; it reuses is.
func (is Issues) Unique() Issues {
	if len(is) < 2 {
		return is
	}
	seen := make(map[Issue]bool, len(is))
	out := is[:0]
	for _, i := range is {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

func (is Issues) Error() string {
	parts := make([]string, 0, len(is))
	for _, i := range is {
		if i.Expression != "" {
			parts = append(parts, i.Expression+": "+i.Diagnostics)
		} else {
			parts = append(parts, i.Diagnostics)
		}
	}
	return strings.Join(parts, "; ")
}

// Code is the code of the first error-level issue, or of the first issue.
func (is Issues) Code() IssueCode {
	for _, i := range is {
		if i.Severity == SeverityError || i.Severity == SeverityFatal {
			return i.Code
		}
	}
	if len(is) > 0 {
		return is[0].Code
	}
	return CodeException
}

// OperationOutcome renders issues as a FHIR OperationOutcome element.
func OperationOutcome(is Issues) *etree.Element {
	oo := etree.NewElement("OperationOutcome")
	oo.CreateAttr("xmlns", Namespace)
	for _, i := range is {
		ie := oo.CreateElement("issue")
		SetValue(ie.CreateElement("severity"), string(i.Severity))
		SetValue(ie.CreateElement("code"), string(i.Code.issueType()))
		if i.Diagnostics != "" {
			SetValue(ie.CreateElement("diagnostics"), i.Diagnostics)
		}
		if i.Expression != "" {
			SetValue(ie.CreateElement("expression"), i.Expression)
		}
	}
	return oo
}

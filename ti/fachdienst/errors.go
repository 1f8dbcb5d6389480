package fachdienst

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/redclone/red/fhir"
)

// Error is an answer of the Fachdienst with a status outside 2xx. Text and Diagnostics come from
// the first issue of the OperationOutcome in the body (details.text, diagnostics), the form of
// api-erp's erp_statuscodes examples.
type Error struct {
	Status       int    // HTTP status
	Code         string // issue code of the first issue, e.g. "conflict"
	Text         string // details.text, the fixed message, e.g. "Task has invalid status in-progress"
	Diagnostics  string // diagnostics, the detail, when given
	VAUErrorCode string // the VAU-Error-Code header, e.g. "brute_force"
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fachdienst: %d", e.Status)
	if st := http.StatusText(e.Status); st != "" {
		b.WriteString(" " + st)
	}
	if e.Text != "" {
		b.WriteString(": " + e.Text)
	}
	if e.Diagnostics != "" {
		b.WriteString(" (" + e.Diagnostics + ")")
	}
	return b.String()
}

// maxErrorText bounds the text taken from a body that is not an OperationOutcome.
const maxErrorText = 200

// errorFrom builds the Error for a non-2xx answer.
func errorFrom(status int, h http.Header, body []byte) *Error {
	e := &Error{Status: status, VAUErrorCode: h.Get(HeaderVAUErrorCode)}
	if root, err := fhir.Parse(body, fhir.DefaultLimits); err == nil && root.Tag == "OperationOutcome" {
		if issue := root.SelectElement("issue"); issue != nil {
			e.Code = fhir.ChildValue(issue, "code")
			e.Text = fhir.ChildValue(issue, "details", "text")
			e.Diagnostics = fhir.ChildValue(issue, "diagnostics")
		}
		return e
	}
	// Not FHIR (a proxy's page, plain text): keep a short printable excerpt.
	text := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(body))
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > maxErrorText {
		n := maxErrorText
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		text = text[:n]
	}
	e.Text = text
	return e
}

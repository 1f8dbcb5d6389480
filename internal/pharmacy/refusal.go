package pharmacy

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/fachdienst"
)

// refusal turns a failed call to the Fachdienst (op names it) into an error for the caller: the
// Fachdienst's meaning in a pharmacy's words, with the status that fits, and hint appended. It
// never keeps the cause: a transport error names the request's URL, which holds the
// PrescriptionId and the AccessCode or Secret.
func refusal(op string, err error, hint string) error {
	var fe *fachdienst.Error
	var ne net.Error
	switch {
	case errors.As(err, &fe):
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fhir.Fail(fhir.CodeTimeout, "", "the E-Rezept-Fachdienst did not answer %s in time%s", op, hint)
	default:
		return fhir.Fail(fhir.CodeTransient, "", "the E-Rezept-Fachdienst cannot be reached or gave no usable answer to %s%s", op, hint)
	}
	said := fe.Text
	if fe.Diagnostics != "" {
		said += " (" + fe.Diagnostics + ")"
	}
	switch {
	case fe.Status == 400:
		return fhir.Fail(fhir.CodeInvalid, "", "the E-Rezept-Fachdienst refused %s: %s%s", op, said, hint)
	case fe.Status == 403 && fe.VAUErrorCode == "brute_force" && strings.Contains(fe.Text, "ecret"):
		return fhir.Fail(fhir.CodeForbidden, "prescriptionid", "the E-Rezept-Fachdienst does not accept the kept Secret for %s: the Task is no longer this pharmacy's%s", op, hint)
	case fe.Status == 403 && fe.VAUErrorCode == "brute_force":
		return fhir.Fail(fhir.CodeForbidden, "accesscode", "the AccessCode does not match this prescription%s", hint)
	case fe.Status == 403 && strings.Contains(fe.Text, "einlösbar"):
		return fhir.Fail(fhir.CodeForbidden, "prescriptionid", "the prescription cannot be redeemed now: %s%s", said, hint)
	case fe.Status == 403:
		return fhir.Fail(fhir.CodeForbidden, "prescriptionid", "the E-Rezept-Fachdienst refused %s: %s%s", op, said, hint)
	case fe.Status == 404:
		return fhir.Fail(fhir.CodeNotFound, "prescriptionid", "the E-Rezept-Fachdienst knows no prescription with this PrescriptionId%s", hint)
	case fe.Status == 409 && strings.HasSuffix(fe.Text, "in-progress"):
		return fhir.Fail(fhir.CodeConflict, "prescriptionid", "another pharmacy has accepted this prescription%s", hint)
	case fe.Status == 409 && strings.HasSuffix(fe.Text, "completed"):
		return fhir.Fail(fhir.CodeConflict, "prescriptionid", "this prescription has been dispensed already%s", hint)
	case fe.Status == 409 && strings.HasSuffix(fe.Text, "draft"):
		return fhir.Fail(fhir.CodeConflict, "prescriptionid", "this prescription is not activated yet%s", hint)
	case fe.Status == 409 || fe.Status == 412:
		return fhir.Fail(fhir.CodeConflict, "prescriptionid", "the E-Rezept-Fachdienst refused %s: %s%s", op, said, hint)
	case fe.Status == 410:
		return fhir.Fail(fhir.CodeDeleted, "prescriptionid", "the prescription was cancelled at the E-Rezept-Fachdienst%s", hint)
	case fe.Status == 429:
		return fhir.Fail(fhir.CodeThrottled, "", "the E-Rezept-Fachdienst asks to slow down (%s)%s", op, hint)
	case fe.Status == 408 || fe.Status >= 500:
		return fhir.Fail(fhir.CodeTransient, "", "the E-Rezept-Fachdienst failed %s (%d %s)%s", op, fe.Status, fe.Text, hint)
	}
	return fhir.Fail(fhir.CodeProcessing, "", "the E-Rezept-Fachdienst refused %s (%d): %s%s", op, fe.Status, said, hint)
}

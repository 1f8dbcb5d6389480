package records_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
)

// TestValidationModes: a plausibility finding (a KVNR with a wrong check digit) comes back as a
// warning with the stored resource by default, and refuses the bundle in strict mode.
func TestValidationModes(t *testing.T) {
	const wrong = "M123456784" // M123456785 is right
	const at = "Bundle.entry[0].resource.identifier[0].value"

	t.Run("profile: stored with a warning at its location", func(t *testing.T) {
		s := newService(t)
		resp, err := postRaw(t, s, bundle("b1", "history", patientWith("P1", wrong, "Muster", "Erika", "1970-01-01")))
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		for _, want := range []string{`<status value="201 Created"/>`, `<severity value="warning"/>`, `<expression value="` + at + `"/>`, "check digit"} {
			if !strings.Contains(resp, want) {
				t.Errorf("answer lacks %s:\n%s", want, resp)
			}
		}
		if strings.Contains(resp, wrong) {
			t.Errorf("the warning repeats the KVNR:\n%s", resp)
		}
		if _, err := s.Read(context.Background(), "Patient", "P1"); err != nil {
			t.Errorf("not stored: %v", err)
		}
	})

	t.Run("strict: refused at its location, nothing stored", func(t *testing.T) {
		s := newService(t)
		s.Validation = kbv.ModeStrict
		_, err := postRaw(t, s, bundle("b1", "history", patientWith("P1", wrong, "Muster", "Erika", "1970-01-01")))
		is, status := fhir.Explain(err)
		if status != 400 || !hasIssue(is, fhir.SeverityError, at) {
			t.Fatalf("want 400 with an error at %s, got %d: %v", at, status, err)
		}
		if _, err := s.Read(context.Background(), "Patient", "P1"); fhir.CodeOf(err) != fhir.CodeNotFound {
			t.Errorf("refused patient is readable: %v", err)
		}
	})

	t.Run("strict: a clean bundle is stored", func(t *testing.T) {
		s := newService(t)
		s.Validation = kbv.ModeStrict
		if _, err := postRaw(t, s, readBundle(t, "patientenakte.xml")); err != nil {
			t.Fatalf("refused: %v", err)
		}
	})
}

// TestPrescriptionCheckDigits: in an e-prescription's resources (meta.profile KBV_PR_ERP_*) a
// wrong check digit is an error in the default mode too.
func TestPrescriptionCheckDigits(t *testing.T) {
	s := newService(t)
	med := `<entry><resource><Medication><id value="M1"/><meta><profile value="https://fhir.kbv.de/StructureDefinition/KBV_PR_ERP_Medication_PZN|1.1.0"/></meta>` +
		`<code><coding><system value="http://fhir.de/CodeSystem/ifa/pzn"/><code value="04773415"/></coding><text value="Ibuprofen 600 mg"/></code></Medication></resource></entry>`
	_, err := postRaw(t, s, bundle("b1", "history", med))
	is, status := fhir.Explain(err)
	if at := "Bundle.entry[0].resource.code.coding[0].code"; status != 400 || !hasIssue(is, fhir.SeverityError, at) {
		t.Fatalf("want 400 with an error at %s, got %d: %v", at, status, err)
	}
}

func hasIssue(is fhir.Issues, sev fhir.Severity, at string) bool {
	for _, i := range is {
		if i.Severity == sev && i.Expression == at {
			return true
		}
	}
	return false
}

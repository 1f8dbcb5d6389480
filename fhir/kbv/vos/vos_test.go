package vos_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/fhir/kbv/vos"
	"github.com/redclone/red/internal/fixture"
)

// now is the day the test bundles are written for.
var now = time.Date(2025, 10, 30, 10, 0, 0, 0, time.UTC)

// TestConvert: each testdata/NAME.in.xml, a VOS Speicherbundle, is converted; NAME.out.xml is
// the e-prescription bundle it becomes (none when it is refused), NAME.outcome.txt every finding
// of the conversion and of the converted bundle's validation, at locations of the posted bundle.
func TestConvert(t *testing.T) {
	for _, in := range fixture.Glob(t, filepath.Join("testdata", "*.in.xml")) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.xml")
		t.Run(name, func(t *testing.T) {
			b, err := fhir.Parse(fixture.Read(t, in), fhir.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if !vos.Is(b) {
				t.Fatal("not recognised as a VOS bundle")
			}
			r, err := vos.Convert(b)
			var warnings fhir.Issues
			if err == nil {
				fixture.Golden(t, filepath.Join("testdata", name+".out.xml"), fhir.Document(r.Bundle))
				warnings, err = r.Outcome(validated(r.Bundle))
			}
			var out strings.Builder
			errs, _ := fhir.Explain(err)
			for _, i := range append(errs, warnings...) {
				if i.Severity == fhir.SeverityInformation {
					continue
				}
				fmt.Fprintf(&out, "%s\t%s\t%s\t%s\n", i.Severity, i.Code, i.Expression, i.Diagnostics)
			}
			fixture.Golden(t, filepath.Join("testdata", name+".outcome.txt"), []byte(out.String()))
		})
	}
}

// validated validates the converted bundle as red validates a queued e-prescription: its
// warnings, and the error that refuses it.
func validated(b *etree.Element) (fhir.Issues, error) {
	var errs, warnings fhir.Issues
	for _, is := range validate.Prescription(b, now, true) {
		if is.Severity == fhir.SeverityError {
			errs = append(errs, is)
		} else {
			warnings = append(warnings, is)
		}
	}
	if len(errs) > 0 {
		return warnings, fhir.Reject(errs)
	}
	return warnings, nil
}

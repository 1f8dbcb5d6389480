package kbv_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/internal/fixture"
)

// personsE2EDir holds gematik's End-to-End example bundles (Apache-2.0, see the NOTICE there),
// in the testdata of package ident. The negative ones, in this package's testdata, are checked by
// TestERPNegativeExamples of package validate.
const personsE2EDir = "../ident/testdata/gematik/eRezept-Examples/End-to-End-Examples/7_01.10.2025"

// personsTypes are the resource types whose rules these tests exercise.
var personsTypes = []string{"Patient", "Coverage", "Practitioner", "Organization", "PractitionerRole"}

// personsKnownBadNumbers are test identifiers of the "valid" End-to-End examples whose check
// digit is wrong: the KVNRs documented in examples/INDEX.md, and the KVNR and LANR of the PKV
// Freitext-Verordnung (found by these tests; not in the documentation).
var personsKnownBadNumbers = []string{
	"K220645120", "P123464113", "H030170227", "M310119800", "X234567890", // documented
	"P123464233", "987789324", // PKV/Freitext-Verordnung/FT_VerordnungArzt.xml
}

// personsBundle reads a bundle and returns it with its timestamp, the clock it was made with.
func personsBundle(t *testing.T, path string) (*etree.Element, time.Time) {
	t.Helper()
	b, err := fhir.Parse(fixture.Read(t, path), fhir.DefaultLimits)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ts, err := kbv.ParseDate(fhir.ChildValue(b, "timestamp"))
	if err != nil {
		t.Fatalf("%s: bundle timestamp: %v", path, err)
	}
	return b, ts
}

// personsBundleCheck checks the bundle's Patient, Coverage, Practitioner, Organization and
// PractitionerRole entries as the bundle upload does, with now as the clock, and returns every
// finding and the resource of each checked entry.
func personsBundleCheck(b *etree.Element, now time.Time) (fhir.Issues, map[int]*etree.Element) {
	var all fhir.Issues
	checked := map[int]*etree.Element{}
	for i, e := range b.SelectElements("entry") {
		res := fhir.ResourceOf(e.SelectElement("resource"))
		if res == nil || !slices.Contains(personsTypes, res.Tag) {
			continue
		}
		checked[i] = res
		all = append(all, validate.Resource(res, fmt.Sprintf("Bundle.entry[%d].resource", i), kbv.Options{Now: now})...)
	}
	return all, checked
}

// TestEndToEndExamples runs the rules over the valid prescriptions of gematik's End-to-End
// examples: no errors, except check-digit errors for the known bad test numbers.
func TestEndToEndExamples(t *testing.T) {
	for _, f := range fixture.Glob(t, filepath.Join(personsE2EDir, "*", "*", "*_VerordnungArzt.xml")) {
		name, _ := filepath.Rel(personsE2EDir, f)
		t.Run("accepts "+name, func(t *testing.T) {
			b, now := personsBundle(t, f)
			got, checked := personsBundleCheck(b, now)
			// Every identifier carrying a known bad number must be reported, and nothing else.
			want := map[string]bool{}
			for i, res := range checked {
				for j, id := range res.SelectElements("identifier") {
					if slices.Contains(personsKnownBadNumbers, fhir.ChildValue(id, "value")) {
						want[fmt.Sprintf("Bundle.entry[%d].resource.identifier[%d].value", i, j)] = true
					}
				}
			}
			for _, is := range got {
				if is.Severity != fhir.SeverityError {
					continue
				}
				if want[is.Expression] && is.Code == fhir.CodeValue && strings.Contains(is.Diagnostics, "check digit") {
					delete(want, is.Expression)
					continue
				}
				t.Errorf("unexpected error: %s %s: %s", is.Code, is.Expression, is.Diagnostics)
			}
			for at := range want {
				t.Errorf("known bad test number at %s not reported as a check-digit error", at)
			}
		})
	}
}

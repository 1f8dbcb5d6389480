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

// gematik's example bundles (Apache-2.0, see testdata/gematik/NOTICE): the negative ones in this
// package's testdata, the End-to-End ones in the testdata of package ident.
const (
	personsNegativeDir = "testdata/gematik/eRezept-Examples/Negative-Examples/2_01.07.2023/KBV_PR_ERP_Bundle"
	personsE2EDir      = "../ident/testdata/gematik/eRezept-Examples/End-to-End-Examples/7_01.10.2025"
	personsNegativeFmt = "e98da709-d9f8-494d-87b0-a59a0f471924_%02d.xml"
)

// personsTypes are the resource types whose rules these tests exercise.
var personsTypes = []string{"Patient", "Coverage", "Practitioner", "Organization", "PractitionerRole"}

// personsNegatives are the intentionally broken bundles whose defect lies in a Patient,
// Coverage, Practitioner or Organization (examples/INDEX.md §1c), with the entry of the defective
// resource and the exact location and code of the error that must catch it. The entries are those
// of the bundles: 3 Patient, 4 Organization, 5 Coverage, 6 Practitioner.
var personsNegatives = []struct {
	file   int
	entry  int
	at     string
	code   fhir.IssueCode
	defect string
}{
	{1, 5, "extension[1].valueCoding.code", fhir.CodeValue, "DMP-Kennzeichen 42 (not in the key table of July 2023)"},
	{2, 5, "extension[1].valueCoding.code", fhir.CodeValue, "DMP-Kennzeichen 0"},
	{3, 5, "extension[1].valueCoding.code", fhir.CodeValue, "DMP-Kennzeichen 12 (not in the key table of July 2023)"},
	{4, 5, "extension[1].valueCoding.code", fhir.CodeValue, "DMP-Kennzeichen asthma"},
	{5, 5, "extension[0].valueCoding.code", fhir.CodeValue, "besondere Personengruppe -T"},
	{6, 5, "extension[0].valueCoding.code", fhir.CodeValue, "besondere Personengruppe 0"},
	{7, 5, "extension[0].valueCoding.code", fhir.CodeValue, "besondere Personengruppe 10"},
	{8, 5, "type.coding[0].code", fhir.CodeValue, "insurance type gkv in lower case"},
	{9, 5, "type.coding[0].code", fhir.CodeValue, "insurance type Inkasso"},
	{10, 5, "extension[3].valueCoding.code", fhir.CodeValue, "Versichertenart P"},
	{11, 5, "extension[2].valueCoding.code", fhir.CodeValue, "WOP 40"},
	{12, 5, "extension[2].valueCoding.code", fhir.CodeValue, "WOP 1000"},
	{13, 5, "payor[0].identifier.value", fhir.CodeValue, "payor IK with ten digits"},
	{22, 4, "identifier[0].system", fhir.CodeValue, "BSNR typed identifier under the IK system (with a ten-digit value)"},
	{23, 4, "identifier[0].system", fhir.CodeValue, "KZVA typed identifier under the BSNR system"},
	{24, 4, "identifier[0].value", fhir.CodeValue, "KZV-Abrechnungsnummer with a letter"},
	{25, 4, "identifier[0].value", fhir.CodeValue, "KZV-Abrechnungsnummer with ten digits"},
	{26, 3, "identifier[0].type", fhir.CodeRequired, "patient identifier of a foreign system without type"},
	{27, 3, "identifier[0].system", fhir.CodeValue, "KVNR typed identifier under a foreign system"},
	{28, 3, "identifier[0].value", fhir.CodeValue, "KVNR starting with a digit"},
	{29, 3, "identifier[0].value", fhir.CodeValue, "KVNR with an umlaut"},
	{30, 3, "identifier[0].value", fhir.CodeValue, "KVNR in lower case"},
	{31, 3, "identifier[0].value", fhir.CodeValue, "KVNR with nine characters"},
	{32, 3, "identifier[0].value", fhir.CodeValue, "KVNR with eleven characters"},
	{33, 3, "name[0].family.extension[1].valueString", fhir.CodeValue, "Vorsatzwort (own-prefix) too long and not part of the family name"},
	{34, 3, "name[0].family.extension[1].valueString", fhir.CodeValue, "Namenszusatz too long and not part of the family name"},
	{35, 6, "identifier[0].value", fhir.CodeValue, "LANR with a letter"},
	{36, 6, "identifier[0].value", fhir.CodeValue, "LANR with eight digits"},
	{37, 6, "identifier[0].value", fhir.CodeValue, "LANR with ten digits"},
	{38, 6, "", fhir.CodeInvariant, "practitioner with LANR and ZANR"},
	{39, 6, "identifier[0]", fhir.CodeStructure, "identifier type LÜNR instead of LANR"},
}

// personsNegativeBaseline is a defect every negative bundle shares besides its own: the payor IK
// 343614470 of the Coverage has a wrong check digit (its serial digits give 3, not 0).
const personsNegativeBaseline = "Bundle.entry[5].resource.payor[0].identifier.value"

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

// TestNegativeExamples runs the rules over gematik's intentionally broken e-prescription bundles
// (profiles KBV_PR_FOR_*: the rules apply by resource type). The clock is each bundle's own
// timestamp (July 2023), so key tables are those in force then: the DMP codes 12 and 42 of files
// 03 and 01 were not in the table of 2023; they are valid since the table of October 2024.
func TestNegativeExamples(t *testing.T) {
	handled := map[int]bool{}
	for _, n := range personsNegatives {
		handled[n.file] = true
		t.Run(fmt.Sprintf("catches %02d %s", n.file, n.defect), func(t *testing.T) {
			b, now := personsBundle(t, filepath.Join(personsNegativeDir, fmt.Sprintf(personsNegativeFmt, n.file)))
			got, checked := personsBundleCheck(b, now)
			if _, ok := checked[n.entry]; !ok {
				t.Fatalf("entry %d is not one of the checked resources", n.entry)
			}
			resource := fmt.Sprintf("Bundle.entry[%d].resource", n.entry)
			want := resource
			if n.at != "" {
				want += "." + n.at
			}
			found := false
			for _, is := range got {
				if is.Severity != fhir.SeverityError {
					continue
				}
				switch {
				case is.Expression == want && is.Code == n.code:
					found = true
				case is.Expression == resource, strings.HasPrefix(is.Expression, resource+"."), personsIsBaseline(is):
					// A consequence in the defective resource, or the shared baseline defect.
				default:
					t.Errorf("unexpected error outside the defective resource: %s %s: %s", is.Code, is.Expression, is.Diagnostics)
				}
			}
			if !found {
				t.Errorf("defect not caught: want %s at %s, got:\n%s", n.code, want, personsFormat(got))
			}
		})
	}
	// The other files break Composition, MedicationRequest or Medication: nothing but the baseline
	// defect may be reported for the persons of those bundles.
	for file := 1; file <= 42; file++ {
		if handled[file] {
			continue
		}
		t.Run(fmt.Sprintf("reports only the baseline defect in %02d", file), func(t *testing.T) {
			b, now := personsBundle(t, filepath.Join(personsNegativeDir, fmt.Sprintf(personsNegativeFmt, file)))
			got, _ := personsBundleCheck(b, now)
			for _, is := range got {
				if is.Severity == fhir.SeverityError && !personsIsBaseline(is) {
					t.Errorf("unexpected error: %s %s: %s", is.Code, is.Expression, is.Diagnostics)
				}
			}
		})
	}
}

func personsIsBaseline(is fhir.Issue) bool {
	return is.Expression == personsNegativeBaseline && strings.Contains(is.Diagnostics, "check digit")
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

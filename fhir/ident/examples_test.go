package ident_test

import (
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redclone/red/fhir/ident"
)

// endToEndExamples is gematik's set of complete, valid e-prescription use cases (Apache-2.0, see
// testdata/gematik/NOTICE); package kbv and the Fachdienst simulator read them here too.
const endToEndExamples = "testdata/gematik/eRezept-Examples/End-to-End-Examples"

// knownInvalid lists the values that appear in gematik's "valid" examples although their check
// digit is wrong: test KVNRs and documentation placeholders. The value maps to the kind of
// identifier it is used as.
var knownInvalid = map[string]string{
	// Listed in ti.md §4 and examples/INDEX.md (not all of them occur in this example set).
	"K220645120":             "KVNR",
	"P123464113":             "KVNR", // P = 16: 1+3+1+4+3+8+6+8+1+2 = 37 → 7
	"H030170227":             "KVNR", // H = 08: 0+7+0+6+0+2+7+0+2+4 = 28 → 8
	"M310119800":             "KVNR",
	"X234567890":             "KVNR", // X = 24: 2+8+2+6+4+1+6+5+8+9 = 51 → 1
	"X123456789":             "KVNR",
	"P987654321":             "KVNR",
	"987654321":              "IK", // 5+6+1+4+6+2 = 24 → 4
	"160.000.000.000.000.01": "PrescriptionId",
	"200.000.000.000.000.01": "PrescriptionId",

	// Not listed there, but found with a wrong check digit in End-to-End 7_01.10.2025 — mostly in
	// a *_MedicationDispense.xml whose KVNR differs from the case's prescription.
	"K220645129": "KVNR", // K = 11: 1+2+2+4+0+3+4+1+1+4 = 22 → 2 (K220645122 is used too)
	"M310119819": "KVNR", // M = 13: 1+6+3+2+0+2+1+9+8+2 = 34 → 4 (M310119814 is used too)
	"P123464233": "KVNR", // P = 16: 1+3+1+4+3+8+6+8+2+6 = 42 → 2
	"P123464315": "KVNR", // P = 16: 1+3+1+4+3+8+6+8+3+2 = 39 → 9 (P123464319 is used too)
	"987789324":  "LANR", // 36+72+28+63+32+81 = 312 → 8
}

// kinds names the identifier kind of the systems the example walk must find.
var kinds = map[string]string{
	"http://fhir.de/sid/gkv/kvid-10":                                     "KVNR",
	"https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR":                   "LANR",
	"https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR":                  "BSNR",
	"http://fhir.de/sid/arge-ik/iknr":                                    "IK",
	"http://fhir.de/CodeSystem/ifa/pzn":                                  "PZN",
	"https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_PrescriptionId": "PrescriptionId",
}

func TestEndToEndExamples(t *testing.T) {
	seen := map[string]int{}
	var files int
	err := filepath.WalkDir(endToEndExamples, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".xml") {
			return err
		}
		files++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		found, err := systemValues(f)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		name := filepath.Base(path)
		for _, sv := range found {
			check, ok := ident.Systems[sv.system]
			if !ok {
				continue
			}
			kind := kinds[sv.system]
			if kind == "" {
				kind = sv.system
			}
			seen[kind]++
			err := check(sv.value)
			if documented, ok := knownInvalid[sv.value]; ok && documented == kind {
				if err == nil {
					t.Errorf("%s: accepts %s %q, documented as invalid", name, kind, sv.value)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: rejects %s %q: %v", name, kind, sv.value, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err) // a missing folder too: the examples are part of the repository
	}
	t.Logf("checked %d files, values per kind: %v", files, seen)
	for _, kind := range kinds {
		if seen[kind] == 0 {
			t.Errorf("found no %s in the examples; the walk is broken", kind)
		}
	}
}

// systemValue is a system and the value or code beside it in one element (an Identifier or a
// Coding).
type systemValue struct{ system, value string }

// systemValues returns every element of a FHIR XML document that has both a system child and a
// value (Identifier) or code (Coding) child, as the values of their value attributes.
func systemValues(r io.Reader) ([]systemValue, error) {
	type frame struct{ system, value, code string }
	var (
		stack []frame
		found []systemValue
	)
	dec := xml.NewDecoder(r)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if n := len(stack); n > 0 {
				parent := &stack[n-1]
				switch el.Name.Local {
				case "system":
					parent.system = attr(el, "value")
				case "value":
					parent.value = attr(el, "value")
				case "code":
					parent.code = attr(el, "value")
				}
			}
			stack = append(stack, frame{})
		case xml.EndElement:
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			value := top.value
			if value == "" {
				value = top.code
			}
			if top.system != "" && value != "" {
				found = append(found, systemValue{top.system, value})
			}
		}
	}
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

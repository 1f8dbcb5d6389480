package fhirjson_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirjson"
)

// moduleRoot is the repository's root, whose testdata folders hold every example red keeps.
const moduleRoot = "../.."

// canonical writes a parsed FHIR tree the way the round trip compares it: red's document form,
// attributes sorted, comments and processing instructions left out (JSON has none).
func canonical(tb testing.TB, e *etree.Element) string {
	tb.Helper()
	c := e.Copy()
	var clean func(e *etree.Element)
	clean = func(e *etree.Element) {
		sort.SliceStable(e.Attr, func(i, j int) bool { return e.Attr[i].FullKey() < e.Attr[j].FullKey() })
		for i := len(e.Child) - 1; i >= 0; i-- {
			switch t := e.Child[i].(type) {
			case *etree.Comment, *etree.ProcInst:
				e.RemoveChildAt(i)
			case *etree.Element:
				clean(t)
			}
		}
	}
	clean(c)
	return string(fhir.Document(c))
}

// examples lists the XML files under every testdata folder of the module.
func examples(tb testing.TB) []string {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".xml") && strings.Contains(filepath.ToSlash(path), "/testdata/") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// notFHIR are example files that parse as FHIR-namespace XML but are not FHIR resources as R4
// defines them, with the reason; every other FHIR XML example must go through JSON and back.
var notFHIR = map[string]string{
	"fhir/kbv/testdata/clinical/broken/claim.xml":          "a decimal with a comma, kept to test its refusal",
	"fhir/kbv/testdata/clinical/broken/encounter.xml":      "a Coding with two codes, kept to test its refusal",
	"testdata/http/Claim/broken-unit-price-with-comma.xml": "a decimal with a comma, kept to test its refusal",
	"fhir/testdata/searchset.xml":                          "RED's searchset with its links as <self>, <next>, …",
	"testdata/load/condition.xml":                          "a load-test template with placeholders ({{DAUER}}) in typed values",
}

func TestRoundTripEveryExample(t *testing.T) {
	var fhirFiles, other int
	for _, path := range examples(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := fhir.Parse(data, fhir.DefaultLimits)
		if err != nil || !fhirjson.IsResource(res.Tag) {
			other++ // SOAP envelopes, RED's own shapes, broken XML kept for other tests
			continue
		}
		rel, _ := filepath.Rel(moduleRoot, path)
		t.Run(rel, func(t *testing.T) {
			js, err := fhirjson.Marshal(res)
			if reason, ok := notFHIR[filepath.ToSlash(rel)]; ok {
				if err == nil {
					t.Fatalf("listed as not FHIR (%s) but converts", reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("to JSON: %v", err)
			}
			if !json.Valid(js) {
				t.Fatalf("not valid JSON: %.300s", js)
			}
			back, err := fhirjson.Unmarshal(context.Background(), js, fhir.DefaultLimits)
			if err != nil {
				t.Fatalf("from JSON: %v\n%.500s", err, js)
			}
			if diff := cmp.Diff(canonical(t, res), canonical(t, back)); diff != "" {
				t.Fatalf("XML → JSON → XML differs (-before +after):\n%s", diff)
			}
		})
		fhirFiles++
	}
	t.Logf("%d FHIR examples went through JSON and back; %d other XML files are not FHIR resources", fhirFiles, other)
	if fhirFiles < 150 {
		t.Fatalf("only %d FHIR examples found", fhirFiles)
	}
}

// TestOfficialJSONExamples reads gematik's examples published in FHIR JSON and writes them back:
// red's JSON must be theirs, member for member (numbers as written).
func TestOfficialJSONExamples(t *testing.T) {
	var n int
	err := filepath.WalkDir("testdata/gematik", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		n++
		t.Run(strings.TrimPrefix(filepath.ToSlash(path), "testdata/gematik/"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := fhirjson.Unmarshal(context.Background(), data, fhir.DefaultLimits)
			if err != nil {
				t.Fatalf("from JSON: %v", err)
			}
			js, err := fhirjson.Marshal(res)
			if err != nil {
				t.Fatalf("to JSON: %v", err)
			}
			if diff := cmp.Diff(decode(t, data), decode(t, js)); diff != "" {
				t.Fatalf("JSON → XML → JSON differs (-official +red):\n%s", diff)
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 30 {
		t.Fatalf("only %d official JSON examples found", n)
	}
}

func decode(tb testing.TB, data []byte) any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// TestPatientsJSON keeps testdata/bundles/patients.json (the README's JSON example) the JSON form
// of patients.xml.
func TestPatientsJSON(t *testing.T) {
	x, err := os.ReadFile(moduleRoot + "/testdata/bundles/patients.xml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := fhir.Parse(x, fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	js, err := fhirjson.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(moduleRoot + "/testdata/bundles/patients.json")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(decode(t, want), decode(t, js)); diff != "" {
		t.Fatalf("patients.json is not patients.xml in JSON (-file +converted):\n%s", diff)
	}
}

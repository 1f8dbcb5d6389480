package profile

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirpath"
)

// gematik's e-prescription examples (Apache-2.0, see the NOTICE files there): the End-to-End
// examples in the testdata of package ident, the intentionally broken bundles in that of kbv.
const (
	erpValidDir    = "../ident/testdata/gematik/eRezept-Examples/End-to-End-Examples"
	erpNegativeDir = "../kbv/testdata/gematik/eRezept-Examples/Negative-Examples/2_01.07.2023/KBV_PR_ERP_Bundle"
	erpBundle      = "https://fhir.kbv.de/StructureDefinition/KBV_PR_ERP_Bundle"
)

// fhirpathInvariants evaluates the profiles' invariants with fhir/fhirpath, each expression
// compiled once.
type fhirpathInvariants struct {
	mu    sync.Mutex
	exprs map[string]compiledExpr
}

type compiledExpr struct {
	e   *fhirpath.Expr
	err error
}

func (f *fhirpathInvariants) Check(expr string, el *etree.Element) (bool, error) {
	f.mu.Lock()
	c, ok := f.exprs[expr]
	if !ok {
		c.e, c.err = fhirpath.Compile(expr)
		f.exprs[expr] = c
	}
	f.mu.Unlock()
	if c.err != nil {
		return false, c.err
	}
	return c.e.Bool(el)
}

func newFHIRPathInvariants() *fhirpathInvariants {
	return &fhirpathInvariants{exprs: map[string]compiledExpr{}}
}

// erpBundles are the files below dir that are Bundles of the profile KBV_PR_ERP_Bundle.
func erpBundles(t *testing.T, dir string) map[string]*etree.Element {
	t.Helper()
	out := map[string]*etree.Element{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".xml") {
			return err
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromFile(p); err != nil {
			return err
		}
		root := doc.Root()
		if root == nil || root.Tag != "Bundle" || child(root, "meta") == nil {
			return nil
		}
		for _, pr := range child(root, "meta").SelectElements("profile") {
			if stripVersion(attr(pr, "value")) == erpBundle {
				rel, _ := filepath.Rel(dir, p)
				out[filepath.ToSlash(rel)] = root
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestERPValidExamples validates gematik's valid e-prescription bundles (every End-to-End example
// of profile KBV_PR_ERP_Bundle: 1.3, FOR 1.2) with their entries, invariants evaluated by
// fhir/fhirpath: every profile they name is known, and there are no errors. (Two invariants of
// FOR 1.2.1, -for-adresszeilenAufbauPatientRessource-1 and ...OrganizationRessource-1, use
// indexOf(), which fhir/fhirpath does not implement: they come back as warnings, not evaluated.)
func TestERPValidExamples(t *testing.T) {
	bundles := erpBundles(t, erpValidDir)
	if len(bundles) != 24 {
		t.Fatalf("%d ERP bundles found in %s, want 24", len(bundles), erpValidDir)
	}
	inv := newFHIRPathInvariants()
	for name, b := range bundles {
		for _, i := range Validate(b, "", Options{Invariants: inv}) {
			switch {
			case i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal:
				t.Errorf("%s: %s %s: %s", name, i.Code, i.Expression, i.Diagnostics)
			case strings.HasSuffix(i.Expression, "meta.profile"):
				t.Errorf("%s: %s: %s", name, i.Expression, i.Diagnostics)
			default:
				t.Logf("%s: %s %s %s: %.160s", name, i.Severity, i.Code, i.Expression, i.Diagnostics)
			}
		}
	}
}

// TestERPNegativeExamples validates gematik's intentionally broken bundles (as TestERPValidExamples
// does) and compares the errors with testdata/erp-negative-examples.tsv: for each defect whether
// the profile tables refuse it, and where.
func TestERPNegativeExamples(t *testing.T) {
	want := expectations(t, "testdata/erp-negative-examples.tsv", 3)
	bundles := erpBundles(t, erpNegativeDir)
	if len(bundles) != 42 || len(want) != 42 {
		t.Fatalf("%d broken bundles, %d listed; want 42", len(bundles), len(want))
	}
	inv := newFHIRPathInvariants()
	refused := 0
	for name, b := range bundles {
		num := strings.TrimSuffix(name[strings.LastIndexByte(name, '_')+1:], ".xml")
		exp, listed := want[num]
		if !listed {
			t.Errorf("%s is not in the list", name)
			continue
		}
		var got []string
		for _, i := range errorsOf(Validate(b, "", Options{Invariants: inv})) {
			got = append(got, i.Expression)
		}
		if !slices.Equal(got, exp) {
			t.Errorf("%s: errors at %q, want %q", name, got, exp)
		}
		if len(exp) > 0 {
			refused++
		}
	}
	t.Logf("%d broken bundles: %d refused by the profile tables, %d not", len(bundles), refused, len(bundles)-refused)
}

// The profiles of a new Validator are built on first use: validating from several goroutines at
// once gives what validating one after another does (run with -race to see the building is safe).
func TestERPConcurrentFirstUse(t *testing.T) {
	bundles := erpBundles(t, erpValidDir)
	var names []string
	for n := range bundles {
		names = append(names, n)
	}
	inv := newFHIRPathInvariants()
	want := map[string]string{}
	for _, n := range names {
		want[n] = fmt.Sprint(New(generated).Validate(bundles[n], "", Options{Invariants: inv}))
	}
	v := New(generated)
	var wg sync.WaitGroup
	got := make([]string, len(names))
	for i, n := range names {
		wg.Go(func() { got[i] = fmt.Sprint(v.Validate(bundles[n], "", Options{Invariants: inv})) })
	}
	wg.Wait()
	for i, n := range names {
		if got[i] != want[n] {
			t.Errorf("%s: concurrently %s, alone %s", n, got[i], want[n])
		}
	}
}

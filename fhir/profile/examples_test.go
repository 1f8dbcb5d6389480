package profile

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// exampleList is testdata/kbv-aws-1.2.0-examples.tsv: per KBV example file, the error
// expressions fhir/profile is expected to report (the profiles forbid them).
func exampleList(t *testing.T) map[string][]string {
	return expectations(t, "testdata/kbv-aws-1.2.0-examples.tsv", 4)
}

// expectations reads a list of examples (tab-separated, ncols columns, # comments): per first
// column the error expressions of the last, ' ; '-separated, each optionally followed by
// =what forbids it; '-' for none.
func expectations(t *testing.T, path string, ncols int) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != ncols {
			t.Fatalf("%s: %q has %d columns", path, line, len(cols))
		}
		var exprs []string
		if last := cols[ncols-1]; last != "-" {
			for _, e := range strings.Split(last, " ; ") {
				expr, _, _ := strings.Cut(e, "=")
				exprs = append(exprs, expr)
			}
		}
		want[cols[0]] = exprs
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestKBVExamples validates the KBV's example instances of KBV AWS 1.2.0 found in $KBV_EXAMPLES
// (they are not part of the repository, see the list's header) and compares the errors with the
// list. Skipped without the variable.
func TestKBVExamples(t *testing.T) {
	want := exampleList(t)
	if len(want) < 100 {
		t.Fatalf("examples list has %d entries", len(want))
	}
	dir := os.Getenv("KBV_EXAMPLES")
	if dir == "" {
		t.Skip("KBV_EXAMPLES not set: the KBV example instances are not part of the repository")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	clean, forbidden := 0, 0
	for _, f := range files {
		name := filepath.Base(f)
		doc := etree.NewDocument()
		if err := doc.ReadFromFile(f); err != nil {
			t.Fatal(err)
		}
		var got []string
		is := Validate(doc.Root(), "", Options{})
		for _, i := range is {
			if i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal {
				got = append(got, i.Expression)
			}
		}
		exp, listed := want[name]
		switch {
		case !listed:
			t.Errorf("%s is not in the examples list", name)
		case !slices.Equal(got, exp):
			t.Errorf("%s: errors at %q, want %q\n%v", name, got, exp, is)
		case len(exp) == 0:
			clean++
		default:
			forbidden++
		}
	}
	t.Logf("%d example instances: %d without errors, %d with the errors the profiles forbid (as listed)", len(files), clean, forbidden)
}

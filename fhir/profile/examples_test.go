package profile

import (
	"bufio"
	"os"
	"strings"
	"testing"
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

// TestKBVExampleList checks the list of the KBV's example instances; with -tags kbvdata,
// TestKBVExamples validates the instances themselves (they are not part of the repository).
func TestKBVExampleList(t *testing.T) {
	if want := exampleList(t); len(want) < 100 {
		t.Fatalf("examples list has %d entries", len(want))
	}
}

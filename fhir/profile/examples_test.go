package profile

import (
	"strings"
	"testing"

	"github.com/redclone/red/internal/fixture"
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
	want := map[string][]string{}
	for _, row := range fixture.Table(t, path, ncols) {
		var exprs []string
		if last := row[ncols-1]; last != "-" {
			for _, e := range strings.Split(last, " ; ") {
				expr, _, _ := strings.Cut(e, "=")
				exprs = append(exprs, expr)
			}
		}
		want[row[0]] = exprs
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

package validate_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/redclone/red/internal/fixture"
)

// forbidden is the reason every expected error of the KBV's examples must give: red refuses only
// what the profiles forbid, and fhir/profile is what reports that.
const forbidden = "forbidden by the profile: "

// TestKBVExamplesPostedList checks the list TestKBVExamplesAsPosted (-tags kbvdata) compares
// with: every reason is what a profile forbids, and it names the examples fhir/profile's list
// names.
func TestKBVExamplesPostedList(t *testing.T) {
	want := postedList(t)
	var names []string
	for _, row := range fixture.Table(t, "../../profile/testdata/kbv-aws-1.2.0-examples.tsv", 4) {
		names = append(names, row[0])
	}
	var got []string
	for name := range want {
		got = append(got, name)
	}
	slices.Sort(names)
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Errorf("the list names %d examples, fhir/profile's %d: %q, want %q", len(got), len(names), got, names)
	}
}

// postedList reads testdata/kbv-aws-1.2.0-examples.tsv: per example the error locations, ' ; '
// separated, each followed by = and its reason, which must be forbidden; '-' for none.
func postedList(t *testing.T) map[string][]string {
	t.Helper()
	const path = "testdata/kbv-aws-1.2.0-examples.tsv"
	want := map[string][]string{}
	for _, row := range fixture.Table(t, path, 2) {
		name, errs := row[0], row[1]
		var exprs []string
		if errs != "-" {
			for _, e := range strings.Split(errs, " ; ") {
				expr, why, _ := strings.Cut(e, "=")
				if !strings.HasPrefix(why, forbidden) {
					t.Errorf("%s: %s: %s: the reason must be %q<element or invariant>", path, name, expr, forbidden)
				}
				exprs = append(exprs, expr)
			}
		}
		want[name] = exprs
	}
	return want
}

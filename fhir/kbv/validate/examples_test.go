package validate_test

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// forbidden is the reason every expected error of the KBV's examples must give: red refuses only
// what the profiles forbid, and fhir/profile is what reports that.
const forbidden = "forbidden by the profile: "

// TestKBVExamplesPostedList checks the list TestKBVExamplesAsPosted (-tags kbvdata) compares
// with: every reason is what a profile forbids, and it names the examples fhir/profile's list
// names.
func TestKBVExamplesPostedList(t *testing.T) {
	want := postedList(t)
	f, err := os.Open("../../profile/testdata/kbv-aws-1.2.0-examples.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			name, _, _ := strings.Cut(line, "\t")
			names = append(names, name)
		}
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
		name, errs, ok := strings.Cut(line, "\t")
		if !ok || strings.Contains(errs, "\t") {
			t.Fatalf("%s: %q is not two columns", path, line)
		}
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
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

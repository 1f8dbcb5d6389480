//go:build kbvdata

package profile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// TestKBVExamples validates the KBV's example instances of KBV AWS 1.2.0 found in $KBV_EXAMPLES
// (they are not part of the repository, see the list's header) and compares the errors with the
// list. It is built with -tags kbvdata and fails without the variable:
//
//	KBV_EXAMPLES=/path/to/examples go test -tags kbvdata -run TestKBVExamples ./fhir/profile/
func TestKBVExamples(t *testing.T) {
	want := exampleList(t)
	dir := os.Getenv("KBV_EXAMPLES")
	if dir == "" {
		t.Fatal("KBV_EXAMPLES not set: name the folder of the KBV example instances (they are not part of the repository)")
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

package profile

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/beevik/etree"
)

// TestExamplesDir validates every XML file in $KBV_EXAMPLES (not part of the repository) and
// prints the issues; it is skipped without the variable.
func TestExamplesDir(t *testing.T) {
	dir := os.Getenv("KBV_EXAMPLES")
	if dir == "" {
		t.Skip("KBV_EXAMPLES not set")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	sort.Strings(files)
	for _, f := range files {
		doc := etree.NewDocument()
		if err := doc.ReadFromFile(f); err != nil {
			t.Fatal(err)
		}
		is := Validate(doc.Root(), "", Options{})
		errs := 0
		for _, i := range is {
			if i.Severity == "error" {
				errs++
			}
		}
		t.Logf("%s: %d errors, %d issues", filepath.Base(f), errs, len(is))
		for _, i := range is {
			t.Logf("   %s %s %s: %s", i.Severity, i.Code, i.Expression, i.Diagnostics)
		}
	}
}

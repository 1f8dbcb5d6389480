//go:build kbvdata

package validate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/fhir/profile"
)

// examplesNow is the clock of TestKBVExamplesAsPosted: after every date of the examples (the
// latest, an Encounter's period, ends in February 2021; a Coverage runs to 2025).
var examplesNow = time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)

// TestKBVExamplesAsPosted validates the KBV's example instances of KBV AWS 1.2.0 found in
// $KBV_EXAMPLES (they are not part of the repository: see fhir/profile's list of them) as red
// validates a POST, in the default mode: validate.Resource for the instance and, for a Bundle,
// for each entry's resource (as red's bundle upload checks each entry). It compares the errors
// with testdata/kbv-aws-1.2.0-examples.tsv and requires each of them to be one fhir/profile
// reports (what a profile forbids): an error of the hand-written rules of fhir/kbv on a KBV
// example is a rule refusing what the profile allows. It is built with -tags kbvdata and fails
// without the variable:
//
//	KBV_EXAMPLES=/path/to/examples go test -tags kbvdata -run TestKBVExamplesAsPosted ./fhir/kbv/validate/
func TestKBVExamplesAsPosted(t *testing.T) {
	want := postedList(t)
	dir := os.Getenv("KBV_EXAMPLES")
	if dir == "" {
		t.Fatal("KBV_EXAMPLES not set: name the folder of the KBV example instances (they are not part of the repository)")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	if len(files) != len(want) {
		t.Errorf("%d files in %s, %d in the list", len(files), dir, len(want))
	}
	clean, refused := 0, 0
	for _, f := range files {
		name := filepath.Base(f)
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := fhir.Parse(body, fhir.DefaultLimits)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var got []string
		var hand []string
		for _, r := range posted(res) {
			is := validate.Resource(r.res, r.at, kbv.Options{Now: examplesNow})
			prof := profileErrors(r.res, r.at)
			for _, i := range is {
				if i.Severity != fhir.SeverityError && i.Severity != fhir.SeverityFatal {
					continue
				}
				got = append(got, i.Expression)
				if !prof[i.Expression] {
					hand = append(hand, fmt.Sprintf("%s: %s", i.Expression, i.Diagnostics))
				}
			}
		}
		exp, listed := want[name]
		switch {
		case !listed:
			t.Errorf("%s is not in the list", name)
		case len(hand) > 0:
			t.Errorf("%s: errors that no profile forbids (a hand-written rule refusing what the profile allows):\n\t%s", name, strings.Join(hand, "\n\t"))
		case !slices.Equal(got, exp):
			t.Errorf("%s: errors at %q, want %q", name, got, exp)
		case len(exp) == 0:
			clean++
		default:
			refused++
		}
	}
	t.Logf("%d example instances: %d accepted without errors, %d refused for what the profiles forbid (as listed)", len(files), clean, refused)
}

// postedResource is a resource red validates on a POST of an example: the example itself and,
// for a Bundle, each entry's resource.
type postedResource struct {
	res *etree.Element
	at  string
}

func posted(res *etree.Element) []postedResource {
	out := []postedResource{{res, res.Tag}}
	if res.Tag != "Bundle" {
		return out
	}
	for i, e := range res.SelectElements("entry") {
		if r := e.SelectElement("resource"); r != nil && len(r.ChildElements()) == 1 {
			out = append(out, postedResource{r.ChildElements()[0], fmt.Sprintf("Bundle.entry[%d].resource", i)})
		}
	}
	return out
}

// profileErrors are the locations fhir/profile reports an error at for res, validated as
// validate.Resource validates it.
func profileErrors(res *etree.Element, at string) map[string]bool {
	errs := map[string]bool{}
	for _, i := range profile.Validate(res, at, validate.ProfileOptions(examplesNow)) {
		if i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal {
			errs[i.Expression] = true
		}
	}
	return errs
}

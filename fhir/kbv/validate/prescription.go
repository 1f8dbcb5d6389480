package validate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
)

// erpBundleProfile is the profile of a prescription bundle.
const erpBundleProfile = "https://fhir.kbv.de/StructureDefinition/KBV_PR_ERP_Bundle"

// Prescription validates a prescription bundle as if typed by hand: the bundle itself
// against KBV_PR_ERP_Bundle (its entries' slices, the invariants across them) and each entry
// against its profile and red's rules. queued: the prescription waits for signing, and what red
// writes then is not required yet — the PrescriptionId (Bundle.identifier) and, when the bundle
// has no Practitioner, the signing physician.
func Prescription(b *etree.Element, now time.Time, queued bool) fhir.Issues {
	opts := kbv.Options{Now: now}
	var issues fhir.Issues
	if namesProfile(b, erpBundleProfile) {
		// the bundle against its profile only: red's hand-written rules run on each entry below
		// (on the bundle they would walk every entry a second time)
		prof, checked := againstMeta(b, "Bundle", ProfileOptions(now))
		issues = tolerate(prof, "Bundle", checked, opts.Mode)
	} else {
		issues = fhir.Issues{{Severity: fhir.SeverityError, Code: fhir.CodeRequired, Expression: "Bundle.meta.profile",
			Diagnostics: "a prescription names its profile in meta.profile: " + erpBundleProfile + " with the version it follows"}}
	}
	for i, e := range b.SelectElements("entry") {
		if res := fhir.ResourceOf(e.SelectElement("resource")); res != nil {
			issues = append(issues, Resource(res, fmt.Sprintf("Bundle.entry[%d].resource", i), opts)...)
		}
	}
	if queued {
		unsigned := !HasEntry(b, "Practitioner")
		issues = slices.DeleteFunc(issues, func(i fhir.Issue) bool { return writtenAtSigning(i, unsigned) })
	}
	return issues.Unique()
}

// writtenAtSigning tells the findings about what red writes into a queued prescription when it
// is signed: the PrescriptionId and, for a bundle without physician, the Practitioner entry, the
// Composition's author and the MedicationRequest's requester.
func writtenAtSigning(i fhir.Issue, noPhysician bool) bool {
	if i.Severity != fhir.SeverityError {
		return false
	}
	if i.Expression == "Bundle.identifier" || strings.HasPrefix(i.Expression, "Bundle.identifier.") {
		return i.Code == fhir.CodeRequired
	}
	if !noPhysician {
		return false
	}
	switch {
	case i.Code == fhir.CodeInvariant:
		return i.Expression == "Bundle" && strings.Contains(i.Diagnostics, "-erp-angabeVerantwortlichePersonPflicht")
	case i.Code != fhir.CodeRequired:
		return false
	case i.Expression == "Bundle.entry":
		return strings.Contains(i.Diagnostics, "AusstellendeVerschreibendeVerantwortlichePerson")
	default:
		return strings.HasSuffix(i.Expression, ".resource.author") || strings.HasSuffix(i.Expression, ".resource.requester")
	}
}

// namesProfile tells whether res's meta.profile names canonical (in any version).
func namesProfile(res *etree.Element, canonical string) bool {
	meta := res.SelectElement("meta")
	if meta == nil {
		return false
	}
	for _, p := range meta.SelectElements("profile") {
		if u, _, _ := strings.Cut(fhir.Value(p), "|"); u == canonical {
			return true
		}
	}
	return false
}

// HasEntry tells whether bundle b has an entry of type typ.
func HasEntry(b *etree.Element, typ string) bool {
	for _, e := range b.SelectElements("entry") {
		if r := fhir.ResourceOf(e.SelectElement("resource")); r != nil && r.Tag == typ {
			return true
		}
	}
	return false
}

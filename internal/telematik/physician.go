package telematik

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/ti/konnektor"
)

// erpBundleProfile is the profile of a prescription bundle.
const erpBundleProfile = "https://fhir.kbv.de/StructureDefinition/KBV_PR_ERP_Bundle"

// telematikIDSystem names a Telematik-ID, the identity on a card's certificate.
const telematikIDSystem = "https://gematik.de/fhir/sid/telematik-id"

// prescriptionIssues validates a prescription bundle as if typed by hand: the bundle itself
// against KBV_PR_ERP_Bundle (its entries' slices, the invariants across them) and each entry
// against its profile and red's rules. queued: the prescription waits for signing, and what red
// writes then is not required yet — the PrescriptionId (Bundle.identifier) and, when the bundle
// has no Practitioner, the signing physician (see physician).
func prescriptionIssues(b *etree.Element, now time.Time, queued bool) fhir.Issues {
	opts := kbv.Options{Now: now}
	var issues fhir.Issues
	if namesProfile(b, erpBundleProfile) {
		issues = validate.Resource(b, "Bundle", opts)
	} else {
		issues = fhir.Issues{{Severity: fhir.SeverityError, Code: fhir.CodeRequired, Expression: "Bundle.meta.profile",
			Diagnostics: "a prescription names its profile in meta.profile: " + erpBundleProfile + " with the version it follows"}}
	}
	for i, e := range b.SelectElements("entry") {
		if res := fhir.ResourceOf(e.SelectElement("resource")); res != nil {
			issues = append(issues, validate.Resource(res, fmt.Sprintf("Bundle.entry[%d].resource", i), opts)...)
		}
	}
	if queued {
		unsigned := !hasEntry(b, "Practitioner")
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

// hasEntry tells whether bundle b has an entry of type typ.
func hasEntry(b *etree.Element, typ string) bool {
	for _, e := range b.SelectElements("entry") {
		if r := fhir.ResourceOf(e.SelectElement("resource")); r != nil && r.Tag == typ {
			return true
		}
	}
	return false
}

// preparer is what a batch signed with the HBA hba does to each completed bundle before it is
// signed: a bundle queued without physician gets the one who signs — the stored Practitioner the
// request names (practitioner=id), else the stored one with the HBA's Telematik-ID — and then the
// whole bundle must be valid, as the Fachdienst will check it.
func (s *Service) preparer(q url.Values, hba string) func(ctx context.Context, b *etree.Element) error {
	var signer *etree.Element // found once for the batch
	return func(ctx context.Context, b *etree.Element) error {
		if !hasEntry(b, "Practitioner") {
			if signer == nil {
				p, err := s.physician(ctx, q.Get("practitioner"), hba)
				if err != nil {
					return err
				}
				signer = p
			}
			addPhysician(b, signer)
		}
		var errs fhir.Issues
		for _, i := range prescriptionIssues(b, s.now(), false) {
			if i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal {
				errs = append(errs, i)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("the completed prescription is not valid: %s: %s", errs[0].Expression, errs[0].Diagnostics)
		}
		return nil
	}
}

// physician is the stored Practitioner who signs: the one with id, or else the one whose
// Telematik-ID is on the HBA's certificate — as the KBV bundle writes it (asInBundle).
func (s *Service) physician(ctx context.Context, id, hba string) (*etree.Element, error) {
	if s.Patients == nil || s.Records == nil {
		return nil, fhir.Fail(fhir.CodeNotSupported, "", "the prescription names no physician, and this server keeps no Practitioners to take one from")
	}
	var found *etree.Element
	if id != "" {
		p, err := s.Patients.Read(ctx, "Practitioner", id)
		if err != nil {
			return nil, fhir.Wrap(err, fhir.CodeNotFound, "the prescription names no physician, and practitioner=%s is not a stored Practitioner", id)
		}
		found = p
	} else {
		cert, err := s.certificate(ctx, hba, konnektor.CertAUT)
		if err != nil {
			return nil, err
		}
		tid := professionOf(cert).RegistrationNumber
		set, err := s.Records.Search(ctx, "Practitioner", url.Values{"identifier": {telematikIDSystem + "|" + tid}})
		if err != nil {
			return nil, err
		}
		if len(set.Entries) != 1 {
			return nil, fhir.Fail(fhir.CodeNotFound, "practitioner",
				"the prescription names no physician, and %d stored Practitioners carry the Telematik-ID of the signing HBA: post the physician's Practitioner (KBV_PR_FOR_Practitioner with the Telematik-ID) or name one with practitioner=id", len(set.Entries))
		}
		found = set.Entries[0].Resource
	}
	return asInBundle(found), nil
}

// addPhysician writes the Practitioner p into the prescription bundle b as its physician: an
// entry (its fullUrl on the base of the bundle's others), the Composition's author and the
// MedicationRequest's requester.
func addPhysician(b, p *etree.Element) {
	ref := "Practitioner/" + fhir.ChildValue(p, "id")
	base := ""
	for _, e := range b.SelectElements("entry") {
		if r := fhir.ResourceOf(e.SelectElement("resource")); r != nil {
			if u, ok := strings.CutSuffix(fhir.ChildValue(e, "fullUrl"), r.Tag+"/"+fhir.ChildValue(r, "id")); ok {
				base = u
			}
			switch r.Tag {
			case "Composition":
				author := etree.NewElement("author")
				fhir.SetValue(author.CreateElement("reference"), ref)
				fhir.SetValue(author.CreateElement("type"), "Practitioner")
				r.InsertChildAt(fhir.IndexAfter(r, "id", "meta", "text", "extension", "identifier", "status", "type", "category", "subject", "encounter", "date"), author)
			case "MedicationRequest":
				if r.SelectElement("requester") == nil {
					req := etree.NewElement("requester")
					fhir.SetValue(req.CreateElement("reference"), ref)
					r.InsertChildAt(fhir.IndexAfter(r, "id", "meta", "text", "contained", "extension", "identifier", "status", "statusReason", "intent", "category", "priority", "doNotPerform", "reportedBoolean", "reportedReference", "medicationCodeableConcept", "medicationReference", "subject", "encounter", "supportingInformation", "authoredOn"), req)
				}
			}
		}
	}
	entry := etree.NewElement("entry")
	fhir.SetValue(entry.CreateElement("fullUrl"), base+ref)
	entry.CreateElement("resource").AddChild(p)
	b.InsertChildAt(fhir.IndexAfter(b, "entry"), entry)
}

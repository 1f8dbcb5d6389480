package telematik

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// preparer is what a batch signed with the HBA hba does to each completed bundle before it is
// signed: a bundle queued without physician gets the one who signs — the stored Practitioner the
// request names (practitioner=id), else the stored one with the HBA's Telematik-ID — and then the
// whole bundle must be valid, as the Fachdienst will check it.
func (s *Service) preparer(q url.Values, hba string) func(ctx context.Context, b *etree.Element) error {
	var signer *etree.Element // found once for the batch
	return func(ctx context.Context, b *etree.Element) error {
		if !validate.HasEntry(b, "Practitioner") {
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
		for _, i := range validate.Prescription(b, s.now(), false) {
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
		set, err := s.Records.Search(ctx, "Practitioner", url.Values{"identifier": {fachdienst.SystemTelematikID + "|" + tid}})
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

package telematik

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// pharmacyOIDs are the professions of a pharmacy's SMC-B.
var pharmacyOIDs = map[string]bool{fachdienst.OIDOeffentlicheApotheke: true, "1.2.276.0.76.4.55": true}

// institution finds the SMC-B of a pharmacy (pharmacy true) or of a practice, with the identity
// its certificate names. RED's role rules: pharmacy actions need a pharmacy SMC-B, practice
// actions a practice's.
func (s *Service) institution(ctx context.Context, pharmacy bool, iccsn ...string) (konnektor.Card, fachdienst.Identity, error) {
	cards, err := s.cardsOf(ctx, "", konnektor.CardSMCB)
	if err != nil {
		return konnektor.Card{}, fachdienst.Identity{}, err
	}
	for _, c := range cards {
		if len(iccsn) > 0 && iccsn[0] != "" && c.ICCSN != iccsn[0] {
			continue
		}
		cert, err := s.certificate(ctx, c.Handle, konnektor.CertAUT)
		if err != nil {
			return konnektor.Card{}, fachdienst.Identity{}, err
		}
		a := professionOf(cert)
		for _, oid := range a.ProfessionOIDs {
			if pharmacyOIDs[oid] == pharmacy {
				return c, fachdienst.Identity{ProfessionOID: oid, ID: a.RegistrationNumber}, nil
			}
		}
	}
	if pharmacy {
		return konnektor.Card{}, fachdienst.Identity{}, fhir.Fail(fhir.CodeForbidden, "", "this action needs the SMC-B of a pharmacy in a card terminal")
	}
	return konnektor.Card{}, fachdienst.Identity{}, fhir.Fail(fhir.CodeForbidden, "", "this action needs the SMC-B of a practice in a card terminal")
}

// epaAs is the ePA client acting for the practice whose SMC-B is inserted.
func (s *Service) epaAs(ctx context.Context) (*epa.Client, error) {
	_, id, err := s.institution(ctx, false)
	if err != nil {
		return nil, err
	}
	c := *s.EPA
	c.TelematikID = id.ID
	return &c, nil
}

// egkFetch answers $egkfetch (pharmacy): reads the one inserted eGK (VSDM with online check),
// asks the Fachdienst for that person's prescriptions with the proof of the check, accepts every
// ready one — kept exactly as $accept keeps it, so that $reject, $abort and $dispense work on it
// — and returns the accepted Tasks (without their Secret) together with their prescription
// bundles as $accept answers them. With bundle=raw only the Fachdienst's Task list comes back,
// nothing is accepted.
func (s *Service) egkFetch(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	smcb, id, err := s.institution(ctx, true)
	if err != nil {
		return Answer{}, err
	}
	egks, err := s.cardsOf(ctx, q.Get("cardreader"), konnektor.CardEGK)
	if err != nil {
		return Answer{}, err
	}
	switch len(egks) {
	case 0:
		return Answer{}, fhir.Fail(fhir.CodeNotFound, "", "no eGK is inserted")
	case 1:
	default:
		return Answer{}, fhir.Fail(fhir.CodeConflict, "", "%d eGKs are inserted; leave only the patient's in the terminal", len(egks))
	}
	var vsd konnektor.VSD
	if err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
		vsd, err = s.Konnektor.ReadVSD(ctx, egks[0].Handle, smcb.Handle, true, true)
		return err
	}); err != nil {
		return Answer{}, err
	}
	fd := *s.Fachdienst
	fd.Identity = id
	var tasks []fachdienst.Task
	if err := s.call(ctx, "E-Rezept-Fachdienst", func(ctx context.Context) (err error) {
		tasks, err = fd.ListTasks(ctx, url.Values{"kvnr": {vsd.Personal.KVNR}, "pnw": {vsd.PruefungsnachweisBase64}})
		return err
	}); err != nil {
		return Answer{}, err
	}
	out := etree.NewElement("Bundle")
	out.CreateAttr("xmlns", fhir.Namespace)
	if q.Get("bundle") == "raw" {
		fhir.SetValue(out.CreateElement("type"), "searchset")
		fhir.SetValue(out.CreateElement("total"), itoa(len(tasks)))
		for _, t := range tasks {
			if err := addXML(out, t.XML); err != nil {
				return Answer{}, err
			}
		}
		return Answer{http.StatusOK, out}, nil
	}
	fhir.SetValue(out.CreateElement("type"), "collection")
	ph, err := s.pharmacyAs(&id)
	if err != nil {
		return Answer{}, err
	}
	for _, t := range tasks {
		if t.Status != fachdienst.StatusReady {
			continue
		}
		p, err := ph.Accept(ctx, t.ID, t.AccessCode) // kept as $accept keeps it
		if err != nil {
			return Answer{}, err
		}
		if err := addXML(out, withoutSecret(p.Task)); err != nil {
			return Answer{}, err
		}
		b, err := prescriptionAnswer(p)
		if err != nil {
			return Answer{}, err
		}
		out.CreateElement("entry").CreateElement("resource").AddChild(b)
	}
	return Answer{http.StatusOK, out}, nil
}

// addXML appends a resource given as XML bytes as an entry of b.
func addXML(b *etree.Element, data []byte) error {
	res, err := fhir.Parse(data, fhir.DefaultLimits)
	if err != nil {
		return fhir.Fail(fhir.CodeProcessing, "", "the E-Rezept-Fachdienst sent a resource that does not parse")
	}
	b.CreateElement("entry").CreateElement("resource").AddChild(res)
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// openPatient answers $openpatient&id=…: RED opens the patient in its user interface; red, which
// has none yet, confirms that the patient exists (200) or answers 404.
func (s *Service) openPatient(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	id := q.Get("id")
	if id == "" {
		return Answer{}, fhir.Fail(fhir.CodeRequired, "id", "name the patient: id=…")
	}
	if _, err := s.Patients.Read(ctx, "Patient", id); err != nil {
		return Answer{}, err
	}
	return Answer{http.StatusOK, fhir.OperationOutcome(fhir.Issues{{Severity: fhir.SeverityInformation, Code: fhir.CodeInformational, Diagnostics: "the patient is open"}})}, nil
}

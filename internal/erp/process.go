package erp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// Berlin is the time zone of the signing day (authoredOn) and of the Task polling's bounds.
var Berlin = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Berlin"); err == nil {
		return l
	}
	return time.FixedZone("CET", 3600)
}()

// Process runs one batch ($processerp): every open prescription (or only those named by ids) is
// taken as far as it goes —
// pending ones are created at the Fachdienst, the created ones signed with the HBA hba in one
// request, the signed ones activated. It returns the open prescriptions as they are afterwards
// (activated, or with the reason they stopped). A step's failure stops that prescription, not
// the batch; only a failure to store a step's result ends the batch (its error is returned).
func (s *Service) Process(ctx context.Context, hba string, ids ...string) ([]Prescription, error) {
	ps, err := s.Open(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		ps = slices.DeleteFunc(ps, func(p Prescription) bool { return !slices.Contains(ids, p.ID) })
	}
	today := s.now().In(Berlin).Format(time.DateOnly)
	for i := range ps {
		if ps[i].State == Pending {
			if err := s.create(ctx, &ps[i]); err != nil {
				return ps, err
			}
		}
	}
	if err := s.sign(ctx, ps, hba, today); err != nil {
		return ps, err
	}
	for i := range ps {
		if ps[i].State == Signed && ps[i].SignedDay == today {
			if err := s.activate(ctx, &ps[i]); err != nil {
				return ps, err
			}
		}
	}
	return ps, nil
}

// create asks the Fachdienst for a Task and stores its PrescriptionId and AccessCode.
func (s *Service) create(ctx context.Context, p *Prescription) error {
	cctx, cancel := s.bounded(ctx)
	t, err := s.Fachdienst.Create(cctx, p.FlowType)
	cancel()
	if err != nil {
		p.Reason = "the E-Rezept-Fachdienst did not create the Task: " + err.Error()
		return s.save(ctx, p)
	}
	p.State, p.Reason, p.TaskID, p.AccessCode = Created, "", t.ID, t.AccessCode
	return s.save(ctx, p)
}

// sign completes the bundles of the created prescriptions (and of those signed on another day:
// the Fachdienst wants the signing day as authoredOn) and signs them all in one request.
func (s *Service) sign(ctx context.Context, ps []Prescription, hba, today string) error {
	var todo []*Prescription
	var docs []konnektor.Document
	for i := range ps {
		p := &ps[i]
		if p.State != Created && (p.State != Signed || p.SignedDay == today) {
			continue
		}
		doc, err := s.complete(ctx, p.Bundle, p.TaskID, today)
		if err != nil {
			p.Reason = err.Error()
			if err := s.save(ctx, p); err != nil {
				return err
			}
			continue
		}
		todo = append(todo, p)
		docs = append(docs, konnektor.Document{ShortText: "Rezept " + p.TaskID /* at most 30 characters */, MimeType: "text/xml", Content: doc})
	}
	if len(docs) == 0 {
		return nil
	}
	// The PIN is typed at the terminal meanwhile: the signature gets the whole batch's time.
	sctx, cancel := context.WithTimeout(ctx, max(s.Timeout, DefaultTimeout)*time.Duration(1+len(docs)/10))
	sigs, err := s.Signer.SignDocuments(sctx, hba, docs)
	cancel()
	if err == nil && len(sigs) != len(docs) {
		err = fmt.Errorf("the Konnektor returned %d signatures for %d prescriptions", len(sigs), len(docs))
	}
	for i, p := range todo {
		switch {
		case err != nil:
			p.Reason = "not signed: " + err.Error()
		case sigs[i].Status.Result != "" && sigs[i].Status.Result != "OK":
			p.Reason = "not signed: the Konnektor answered " + sigs[i].Status.Result
		default:
			p.State, p.Reason, p.Signed, p.SignedDay, p.Bundle = Signed, "", sigs[i].Value, today, docs[i].Content
		}
		if err := s.save(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// activate hands the signed prescription to the Fachdienst. An activation whose answer was lost
// is recognised on the retry: the Fachdienst refuses a second one, naming the Task's status.
func (s *Service) activate(ctx context.Context, p *Prescription) error {
	actx, cancel := s.bounded(ctx)
	_, err := s.Fachdienst.Activate(actx, p.TaskID, p.AccessCode, p.Signed)
	cancel()
	if err != nil && !activatedBefore(err) {
		p.Reason = "the E-Rezept-Fachdienst did not activate the Task: " + err.Error()
		return s.save(ctx, p)
	}
	p.State, p.Reason, p.Activated, p.TaskStatus = Activated, "", s.now().UTC(), fachdienst.StatusReady
	if st := namedStatus(err); st != "" {
		p.TaskStatus = st
	}
	return s.save(ctx, p)
}

// activatedBefore reports the Fachdienst's refusal to activate a Task that is no draft any more
// because it was activated (ready, or already accepted or completed by a pharmacy).
func activatedBefore(err error) bool {
	var fe *fachdienst.Error
	if !errors.As(err, &fe) || fe.Status != 403 || !strings.HasPrefix(fe.Text, "Task not in status draft") {
		return false
	}
	st := namedStatus(err)
	return st == fachdienst.StatusReady || st == fachdienst.StatusInProgress || st == fachdienst.StatusCompleted
}

// namedStatus is the Task status a refusal of the Fachdienst names at the end of its text
// ("… but in status ready", "… but is: in-progress"); "" when it names none.
func namedStatus(err error) fachdienst.Status {
	var fe *fachdienst.Error
	if !errors.As(err, &fe) {
		return ""
	}
	for _, st := range []fachdienst.Status{fachdienst.StatusDraft, fachdienst.StatusReady, fachdienst.StatusInProgress, fachdienst.StatusCompleted, fachdienst.StatusCancelled} {
		if strings.HasSuffix(fe.Text, " "+string(st)) {
			return st
		}
	}
	return ""
}

// complete writes the PrescriptionId the Fachdienst assigned into the KBV bundle's identifier and
// the signing day into the MedicationRequest's authoredOn — a practice system cannot know either
// when it queues the prescription — and hands the bundle to s.Prepare.
func (s *Service) complete(ctx context.Context, bundle []byte, prescriptionID, day string) ([]byte, error) {
	b, err := fhir.Parse(bundle, fhir.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("the queued bundle is unreadable: %w", err)
	}
	id := b.SelectElement("identifier")
	if id == nil {
		id = etree.NewElement("identifier")
		b.InsertChildAt(fhir.IndexAfter(b, "meta", "id"), id)
		fhir.SetValue(id.CreateElement("system"), fachdienst.SystemPrescriptionID)
	}
	if v := id.SelectElement("value"); v != nil {
		fhir.SetValue(v, prescriptionID)
	} else {
		fhir.SetValue(id.CreateElement("value"), prescriptionID)
	}
	found := false
	for _, e := range b.SelectElements("entry") {
		if r := fhir.ResourceOf(e.SelectElement("resource")); r != nil && r.Tag == "MedicationRequest" {
			if a := r.SelectElement("authoredOn"); a != nil {
				fhir.SetValue(a, day)
				found = true
			}
		}
	}
	if !found {
		return nil, errors.New("the queued bundle has no MedicationRequest with authoredOn")
	}
	if s.Prepare != nil {
		if err := s.Prepare(ctx, b); err != nil {
			return nil, err
		}
	}
	return fhir.Marshal(b), nil
}

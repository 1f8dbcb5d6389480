// Package erp is the practice's e-prescription workflow, as RED's $createerptask, $processerp
// and Task polling offer it: a practice system queues prescriptions (KBV bundles) to be signed
// later; a batch signs all of them with the physician's HBA in one signature request
// (Stapelsignatur) and hands each to the E-Rezept-Fachdienst; the practice system then polls the
// Tasks with their AccessCode.
//
// Each prescription is one sealed record, stored through the vault's barrier (type red:erp, id
// the MedicationRequest's id, which identifies the request later), walking a persisted state
// machine:
//
//	pending → created (Task at the Fachdienst: PrescriptionId, AccessCode)
//	        → signed (the completed KBV bundle, QES of the HBA)
//	        → activated (the Fachdienst holds it; the Task is ready)
//	        → cancelled (the practice aborted it: $abort)
//
// Every step is stored before the next call to the TI, and a step that fails leaves the record
// where it was, with the reason, so that the next batch resumes it: a batch cut by a crash, a
// Konnektor or Fachdienst that is down or hangs, or a wrong PIN, neither drops a prescription
// nor creates a second activated Task for it. A Task created at the Fachdienst whose answer was
// lost stays a draft there, never activated; an activation whose answer was lost is recognised
// on the retry (the Fachdienst refuses to activate a Task twice and names its status).
package erp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// recordType is the storage type of a prescription's record: no FHIR type, so the API's reads
// and searches never reach it.
const recordType = "red:erp"

// State is where a prescription is in the workflow.
type State string

// The states, in order.
const (
	Pending   State = "pending"
	Created   State = "created"
	Signed    State = "signed"
	Activated State = "activated"
	Cancelled State = "cancelled" // aborted by the practice after its activation
)

// Prescription is one queued prescription and how far it got.
type Prescription struct {
	ID       string `json:"id"` // the MedicationRequest's id
	State    State  `json:"state"`
	Reason   string `json:"reason,omitempty"` // why the last step failed ("" when it did not)
	FlowType int    `json:"flowType"`
	Bundle   []byte `json:"bundle"` // the KBV bundle as queued; completed when signed

	Patient    Person `json:"patient"`
	Medication string `json:"medication"` // the medication's display text

	TaskID     string    `json:"taskId,omitempty"` // the PrescriptionId
	AccessCode string    `json:"accessCode,omitempty"`
	Signed     []byte    `json:"signed,omitempty"`    // the CAdES enveloping signature (DER)
	SignedDay  string    `json:"signedDay,omitempty"` // YYYY-MM-DD in Germany: authoredOn
	Queued     time.Time `json:"queued"`
	Activated  time.Time `json:"activated,omitzero"`
	// TaskStatus is the Task's status at the Fachdienst as red last learnt it, once activated:
	// ready, cancelled after the practice's $abort, or in-progress or completed when the
	// Fachdienst named that status refusing an abort (a prescriber cannot read its Tasks).
	TaskStatus fachdienst.Status `json:"taskStatus,omitempty"`

	// Group is the user group of the prescription's patient, whose members alone (and admins)
	// see it ("" for the tenant's): the record's (vault.Write.Group), not stored in its body.
	Group   string `json:"-"`
	version int64  // the record's version as read
}

// Person is who a prescription is for, as RED's <Prescriptions> answer names them.
type Person struct {
	Family   string `json:"family"`
	Given    string `json:"given"`
	Birthday string `json:"birthday"` // YYYY-MM-DD
}

// Fachdienst is what the workflow needs of the E-Rezept-Fachdienst (*fachdienst.Client).
type Fachdienst interface {
	Create(ctx context.Context, flowType int) (fachdienst.Task, error)
	Activate(ctx context.Context, taskID, accessCode string, signedBundle []byte) (fachdienst.Task, error)
	Abort(ctx context.Context, taskID, accessCode, secret string) error
}

// Signer signs documents with a card in one request (*konnektor.Client).
type Signer interface {
	SignDocuments(ctx context.Context, cardHandle string, docs []konnektor.Document) ([]konnektor.Signature, error)
}

// Store is the vault's barrier as the workflow uses it.
type Store interface {
	Commit(ctx context.Context, writes []vault.Write) error
	Current(ctx context.Context, typ, id string) (vault.Resource, error)
	Find(ctx context.Context, q vault.Query) (vault.Page, error)
}

// Service runs the workflow of one tenant.
type Service struct {
	Store      Store
	Fachdienst Fachdienst
	Signer     Signer
	Now        func() time.Time // nil: time.Now
	Timeout    time.Duration    // bounds each call to the TI; DefaultTimeout when 0
	// Prepare, when set, is called on each bundle completed at signing, before it is signed: it
	// fills in what the practice system could not know when it queued the prescription (the
	// signing physician) and checks the bundle; an error keeps the prescription from being
	// signed, with the error as its reason.
	Prepare func(ctx context.Context, bundle *etree.Element) error
	// Progress, when set, is told every step a batch stored (a prescription as it is now), for
	// a live view of the batch; it must not block.
	Progress func(Prescription)
}

// DefaultTimeout bounds one call to the Fachdienst or the Konnektor.
const DefaultTimeout = 30 * time.Second

// bounded is ctx limited to one TI call's time.
func (s *Service) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	t := s.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	return context.WithTimeout(ctx, t)
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Queue stores a prescription as pending ($createerptask): a new one, or, for an id queued
// before and not yet signed, its new content. A prescription that is already signed or
// activated cannot change.
func (s *Service) Queue(ctx context.Context, p Prescription) error {
	if !fhir.ValidID(p.ID) {
		return fhir.Fail(fhir.CodeValue, "MedicationRequest.id", "the MedicationRequest needs an id: it identifies the prescription later (%s)", fhir.IDRule)
	}
	old, err := s.Get(ctx, p.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return err
	case old.State != Pending:
		return fhir.Fail(fhir.CodeConflict, "MedicationRequest.id", "this prescription is %s already and cannot change; queue a new MedicationRequest", old.State)
	default:
		p.version, p.Queued = old.version, old.Queued
	}
	p.State, p.Reason = Pending, ""
	if p.Queued.IsZero() {
		p.Queued = s.now().UTC()
	}
	return s.save(ctx, &p)
}

// Get reads one prescription by its MedicationRequest id.
func (s *Service) Get(ctx context.Context, id string) (Prescription, error) {
	r, err := s.Store.Current(ctx, recordType, id)
	if err != nil {
		return Prescription{}, err
	}
	if r.Deleted {
		return Prescription{}, storage.ErrNotFound
	}
	return decode(r)
}

func decode(r vault.Resource) (Prescription, error) {
	var p Prescription
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return p, fmt.Errorf("erp: a prescription's record is unreadable: %w", err)
	}
	p.version, p.Group = r.Version, r.Group
	return p, nil
}

// save writes p's next version over the one read; its index: its state, and when activated the
// time tokens the Task polling finds it by.
func (s *Service) save(ctx context.Context, p *Prescription) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	index := []vault.Term{{Index: "state", Value: string(p.State)}}
	if p.TaskID != "" {
		index = append(index, vault.Term{Index: "task", Value: p.TaskID})
	}
	if p.State == Activated || p.State == Cancelled {
		for _, tok := range timeTokens(p.Activated) {
			index = append(index, vault.Term{Index: "at", Value: tok})
		}
	}
	w := vault.Write{Type: recordType, ID: p.ID, Expect: p.version, Updated: s.now().UTC(), Body: body, Index: index, Group: p.Group}
	if err := s.Store.Commit(ctx, []vault.Write{w}); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return fhir.Fail(fhir.CodeConflict, "", "another request changed this prescription at the same moment; nothing was changed — try again")
		}
		return err
	}
	p.version++
	if s.Progress != nil {
		s.Progress(*p)
	}
	return nil
}

// Abort cancels the activated prescription with the PrescriptionId taskID at the Fachdienst
// (the practice's $abort, with the AccessCode red keeps) and marks it cancelled; the Task
// polling lists it so. A prescription red does not know is not found; one the Fachdienst refuses
// to abort (a pharmacy has it) keeps its state, and the Fachdienst's reason is returned.
func (s *Service) Abort(ctx context.Context, taskID string) (Prescription, error) {
	page, err := s.Store.Find(ctx, vault.Query{Type: recordType, All: [][]vault.Term{{{Index: "task", Value: taskID}}}})
	if err != nil {
		return Prescription{}, err
	}
	if len(page.Resources) != 1 {
		return Prescription{}, fhir.Fail(fhir.CodeNotFound, "prescriptionid", "no prescription of this practice has this PrescriptionId")
	}
	p, err := decode(page.Resources[0])
	if err != nil {
		return p, err
	}
	if p.State == Cancelled {
		return p, nil
	}
	if p.State != Activated {
		return p, fhir.Fail(fhir.CodeConflict, "prescriptionid", "this prescription is %s, not activated: nothing to abort", p.State)
	}
	actx, cancel := s.bounded(ctx)
	err = s.Fachdienst.Abort(actx, p.TaskID, p.AccessCode, "")
	cancel()
	var fe *fachdienst.Error
	if errors.As(err, &fe) && fe.Status == 410 {
		err = nil // aborted before: an earlier answer was lost
	}
	if err != nil {
		// a pharmacy has it (in-progress) or has dispensed it (completed): the refusal names
		// the status, which the Task polling shows from now on
		if st := namedStatus(err); (st == fachdienst.StatusInProgress || st == fachdienst.StatusCompleted) && st != p.TaskStatus {
			p.TaskStatus = st
			if serr := s.save(ctx, &p); serr != nil {
				return p, serr
			}
		}
		return p, fhir.Wrap(err, fhir.CodeConflict, "the E-Rezept-Fachdienst did not abort the Task: %s", err.Error())
	}
	p.State, p.Reason, p.TaskStatus = Cancelled, "", fachdienst.StatusCancelled
	return p, s.save(ctx, &p)
}

// Open lists the prescriptions not yet activated (pending, created or signed).
func (s *Service) Open(ctx context.Context) ([]Prescription, error) {
	page, err := s.Store.Find(ctx, vault.Query{Type: recordType, All: [][]vault.Term{{
		{Index: "state", Value: string(Pending)}, {Index: "state", Value: string(Created)}, {Index: "state", Value: string(Signed)},
	}}})
	if err != nil {
		return nil, err
	}
	out := make([]Prescription, 0, len(page.Resources))
	for _, r := range page.Resources {
		p, err := decode(r)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Package pharmacy is the pharmacy's e-prescription workflow, as RED's Task actions offer it: a
// pharmacy claims a prescription at the E-Rezept-Fachdienst ($accept) and keeps it, hands it
// back ($reject), cancels it ($abort), records what it handed over ($dispense) and closes it with
// the Fachdienst's signed receipt ($close).
//
// Each prescription the pharmacy claimed is one sealed record, stored through the vault's barrier
// (type red:rx; its id is the PrescriptionId, which the barrier turns into a blind id token, so
// that the store never holds it in plaintext). It holds the AccessCode, the Secret, the signed
// KBV bundle (PKCS#7) and its content, the result of checking its signature, and the receipt,
// walking a persisted state machine:
//
//	claiming → accepted → dispensed → closing → closed (receipt kept)
//	    │          └─────────┴──→ rejected (Secret and prescription forgotten; may be claimed again)
//	    │          └─────────┴──→ aborted  (Secret and prescription forgotten)
//	    └── (the Fachdienst refused: the record is removed)
//
// Every step is stored before the next call to the TI: the claim before $accept, the Secret as
// soon as the Fachdienst answers, the dispensation before $close. A call whose answer was lost
// is recognised — at once, or when the action is called again: the Fachdienst refuses a second
// $accept of the same pharmacy, which then recovers the Secret with the AccessCode, and refuses a
// second $close, whose receipt red then reads with the Secret — so a Task is never claimed at
// the Fachdienst without red knowing its Secret, and nothing is claimed or closed twice.
package pharmacy

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// recordType is the storage type of a kept prescription: no FHIR type, so the API's reads and
// searches never reach it.
const recordType = "red:rx"

// State is where a kept prescription is in the pharmacy's workflow.
type State string

// The states.
const (
	Claiming  State = "claiming"  // $accept is under way; the Secret is not known yet
	Accepted  State = "accepted"  // the Task is in progress for this pharmacy; the Secret is kept
	Dispensed State = "dispensed" // a dispensation is recorded at the Fachdienst ($dispense); still in progress
	Closing   State = "closing"   // $close is under way with the kept dispensation
	Closed    State = "closed"    // completed; the receipt is kept
	Rejected  State = "rejected"  // handed back; ready for other pharmacies
	Aborted   State = "aborted"   // cancelled by the pharmacy
)

// holds reports whether the pharmacy holds the Task with a Secret in state s.
func (s State) holds() bool { return s == Accepted || s == Dispensed || s == Closing }

// Prescription is one prescription the pharmacy claimed, and how far it got.
type Prescription struct {
	ID         string `json:"id"` // the PrescriptionId
	State      State  `json:"state"`
	AccessCode string `json:"accessCode"`
	Secret     string `json:"secret,omitempty"`
	Task       []byte `json:"task,omitempty"`   // the Task as the Fachdienst answered $accept
	Signed     []byte `json:"signed,omitempty"` // the QES-signed KBV bundle (CMS, DER)
	Bundle     []byte `json:"bundle,omitempty"` // the KBV bundle inside it
	// Verification is the check of the prescriber's signature; Result "" until it was checked.
	Verification Verification `json:"verification"`
	Dispensation []byte       `json:"dispensation,omitempty"` // the $close input last sent
	Receipt      []byte       `json:"receipt,omitempty"`      // the Fachdienst's signed receipt (Bundle)
	Accepted     time.Time    `json:"accepted,omitzero"`
	Closed       time.Time    `json:"closed,omitzero"`

	version int64 // the record's version as read (0: none)
}

// Verification is the Konnektor's check of the prescriber's signature (VerifyDocument): the CMS
// signature and the signer's certificate against the TI's trust anchors.
type Verification struct {
	Result    string    `json:"result"` // konnektor.Valid, Inconclusive or Invalid; "" not checked
	Detail    string    `json:"detail,omitempty"`
	Signed    time.Time `json:"signed,omitzero"` // the signing time the signature states
	CheckedAt time.Time `json:"checkedAt,omitzero"`
}

// Fachdienst is what the workflow needs of the E-Rezept-Fachdienst (*fachdienst.Client acting as
// the pharmacy).
type Fachdienst interface {
	Accept(ctx context.Context, taskID, accessCode string) (fachdienst.Accepted, error)
	RecoverSecret(ctx context.Context, taskID, accessCode string) (fachdienst.Accepted, error)
	Reject(ctx context.Context, taskID, accessCode, secret string) error
	Dispense(ctx context.Context, taskID, secret string, dispense []byte) error
	Close(ctx context.Context, taskID, secret string, dispense []byte) (fachdienst.Receipt, error)
	Abort(ctx context.Context, taskID, accessCode, secret string) error
	GetTask(ctx context.Context, taskID, accessCode, secret string) (fachdienst.TaskDetails, error)
}

// Verifier checks a CMS signature against the TI's trust anchors (*konnektor.Client).
type Verifier interface {
	VerifyDocument(ctx context.Context, signature, content []byte) (konnektor.Verification, error)
}

// Store is the vault's barrier as the workflow uses it.
type Store interface {
	Commit(ctx context.Context, writes []vault.Write) error
	Current(ctx context.Context, typ, id string) (vault.Resource, error)
}

// Service runs the pharmacy's workflow of one tenant.
type Service struct {
	Store      Store
	Fachdienst Fachdienst
	Verifier   Verifier         // nil: signatures are not checked (Result stays "")
	Now        func() time.Time // nil: time.Now
	Timeout    time.Duration    // bounds each call to the TI; DefaultTimeout when 0
}

// DefaultTimeout bounds one call to the Fachdienst or the Konnektor.
const DefaultTimeout = 30 * time.Second

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// bounded runs f with ctx limited to one TI call's time.
func (s *Service) bounded(ctx context.Context, f func(ctx context.Context) error) error {
	t := s.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	return f(ctx)
}

// CheckID refuses a malformed PrescriptionId before anything is asked, naming the parameter it came in.
func CheckID(id, param string) error {
	if id == "" {
		return fhir.Fail(fhir.CodeRequired, param, "name the prescription: %s (its PrescriptionId, e.g. 160.000.000.000.001.54)", param)
	}
	if err := ident.PrescriptionID(id); err != nil {
		return fhir.Fail(fhir.CodeValue, param, "not a PrescriptionId: ddd.ddd.ddd.ddd.ddd.dd with valid check digits")
	}
	return nil
}

// CheckAccessCode refuses a malformed AccessCode (64 hexadecimal digits).
func CheckAccessCode(ac, param string) error {
	if ac == "" {
		return fhir.Fail(fhir.CodeRequired, param, "give the prescription's AccessCode: %s", param)
	}
	if _, err := hex.DecodeString(ac); err != nil || len(ac) != 64 {
		return fhir.Fail(fhir.CodeValue, param, "an AccessCode is 64 hexadecimal digits")
	}
	return nil
}

// Get reads a kept prescription (storage.ErrNotFound when red never claimed it).
func (s *Service) Get(ctx context.Context, id string) (Prescription, error) {
	p, err := s.load(ctx, id)
	if err == nil && p.State == "" {
		err = storage.ErrNotFound
	}
	return p, err
}

// load reads the record of id; one that never existed or was removed comes back with State ""
// (and the version to write over).
func (s *Service) load(ctx context.Context, id string) (Prescription, error) {
	r, err := s.Store.Current(ctx, recordType, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return Prescription{ID: id}, nil
	case err != nil:
		return Prescription{}, err
	case r.Deleted:
		return Prescription{ID: id, version: r.Version}, nil
	}
	var p Prescription
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return Prescription{}, fmt.Errorf("pharmacy: a prescription's record is unreadable: %w", err)
	}
	p.version = r.Version
	return p, nil
}

// save writes p's next version over the one read.
func (s *Service) save(ctx context.Context, p *Prescription) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	w := vault.Write{Type: recordType, ID: p.ID, Expect: p.version, Updated: s.now(), Body: body,
		Index: []vault.Term{{Index: "rx-state", Value: string(p.State)}}}
	return s.commit(ctx, p, w)
}

// remove deletes p's record (a claim the Fachdienst refused).
func (s *Service) remove(ctx context.Context, p *Prescription) error {
	if p.version == 0 {
		return nil
	}
	err := s.commit(ctx, p, vault.Write{Type: recordType, ID: p.ID, Expect: p.version, Updated: s.now(), Deleted: true})
	*p = Prescription{ID: p.ID, version: p.version}
	return err
}

func (s *Service) commit(ctx context.Context, p *Prescription, w vault.Write) error {
	if err := s.Store.Commit(ctx, []vault.Write{w}); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return fhir.Fail(fhir.CodeConflict, "prescriptionid", "another request changed this prescription at the same moment; try again")
		}
		return err
	}
	p.version++
	return nil
}

// sameCode compares two codes in constant time, ignoring the case of hex digits.
func sameCode(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(a)), []byte(strings.ToLower(b))) == 1
}

// Accept claims the prescription id with its AccessCode ac for the pharmacy and keeps it; a
// prescription red keeps already is answered from the store (with the same AccessCode), a claim
// that was cut off is finished. The signature is checked once, at the Konnektor; when the
// Konnektor cannot be asked, the next Accept checks again.
func (s *Service) Accept(ctx context.Context, id, ac string) (Prescription, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return p, err
	}
	switch p.State {
	case Accepted, Dispensed, Closing, Closed:
		if !sameCode(p.AccessCode, ac) {
			return p, fhir.Fail(fhir.CodeForbidden, "accesscode", "the AccessCode does not match this prescription")
		}
		if p.Verification.Result == "" {
			s.verify(ctx, &p)
		}
		return p, nil
	case Aborted:
		return p, fhir.Fail(fhir.CodeDeleted, "prescriptionid", "this pharmacy cancelled the prescription ($abort)")
	case Claiming:
		if !sameCode(p.AccessCode, ac) {
			return p, fhir.Fail(fhir.CodeForbidden, "accesscode", "the AccessCode does not match this prescription")
		}
	default: // new, or rejected before: a new claim
		p = Prescription{ID: id, version: p.version, State: Claiming, AccessCode: strings.ToLower(ac)}
		if err := s.save(ctx, &p); err != nil {
			return p, err
		}
	}
	acc, keep, err := s.claim(ctx, p)
	if err != nil {
		if !keep {
			if rerr := s.remove(ctx, &p); rerr != nil {
				return p, rerr
			}
		}
		return p, err
	}
	p.State, p.Secret, p.Task, p.Signed, p.Accepted = Accepted, acc.Secret, acc.Task.XML, acc.Bundle, s.now()
	if info, err := cms.Inspect(acc.Bundle); err == nil {
		p.Bundle = info.Content
	}
	if err := s.save(ctx, &p); err != nil { // the Secret, before anything else
		return p, err
	}
	s.verify(ctx, &p)
	return p, nil
}

// claim asks the Fachdienst for the Task. A second claim of the same pharmacy (the answer of the
// first was lost) recovers the Secret with the AccessCode; so does a call whose answer did not
// arrive, when the Fachdienst did claim the Task. keep tells that the claim may have reached the
// Fachdienst without red knowing the Secret yet: the record stays, and the next $accept
// finishes it.
func (s *Service) claim(ctx context.Context, p Prescription) (acc fachdienst.Accepted, keep bool, err error) {
	first := s.bounded(ctx, func(ctx context.Context) (err error) {
		acc, err = s.Fachdienst.Accept(ctx, p.ID, p.AccessCode)
		return err
	})
	if first == nil {
		return acc, false, nil
	}
	var fe *fachdienst.Error
	answered := errors.As(first, &fe)
	lost := !answered || fe.Status >= 500                                             // it may have claimed the Task
	mine := answered && fe.Status == 409 && strings.HasSuffix(fe.Text, "in-progress") // by this pharmacy?
	if !lost && !mine {
		return acc, false, refusal("$accept", first, "")
	}
	rerr := s.bounded(ctx, func(ctx context.Context) (err error) {
		acc, err = s.Fachdienst.RecoverSecret(ctx, p.ID, p.AccessCode)
		return err
	})
	if rerr == nil {
		return acc, false, nil
	}
	var re *fachdienst.Error
	if !errors.As(rerr, &re) || re.Status >= 500 {
		return acc, true, refusal("$accept", first, "; red keeps the claim and finishes it when $accept is called again")
	}
	switch {
	case lost: // the Fachdienst says the Task is not in progress for this pharmacy: nothing was claimed
		return acc, false, refusal("$accept", first, "; nothing was claimed, try again")
	case re.Status == 412:
		return acc, false, fhir.Fail(fhir.CodeConflict, "prescriptionid", "another pharmacy has accepted this prescription")
	}
	return acc, false, refusal("$accept", rerr, "")
}

// verify has the Konnektor check the prescriber's signature and keeps the result; when the
// Konnektor cannot be asked, the result says so and is not kept.
func (s *Service) verify(ctx context.Context, p *Prescription) {
	if s.Verifier == nil || len(p.Signed) == 0 {
		return
	}
	var v konnektor.Verification
	err := s.bounded(ctx, func(ctx context.Context) (err error) {
		v, err = s.Verifier.VerifyDocument(ctx, p.Signed, nil)
		return err
	})
	if err != nil {
		p.Verification = Verification{Result: "", Detail: "the Konnektor could not check the signature; the next $accept checks again"}
		return
	}
	p.Verification = Verification{Result: v.HighLevelResult, Detail: v.ResultMinor, Signed: v.SigningTime, CheckedAt: s.now()}
	if p.Verification.Signed.IsZero() && !v.Timestamp.IsZero() {
		p.Verification.Signed = v.Timestamp
	}
	if err := s.save(ctx, p); err != nil {
		p.Verification.CheckedAt = time.Time{} // shown, not kept: checked again next time
	}
}

// held reads a prescription the pharmacy holds with its Secret, for the actions that need it.
func (s *Service) held(ctx context.Context, id string) (Prescription, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return p, err
	}
	switch {
	case p.State == "":
		return p, fhir.Fail(fhir.CodeNotFound, "prescriptionid", "this pharmacy keeps no prescription with this PrescriptionId; $accept it first")
	case p.State == Claiming:
		return p, fhir.Fail(fhir.CodeConflict, "prescriptionid", "the $accept of this prescription did not finish; call $accept again")
	case !p.State.holds() && p.State != Closed:
		return p, fhir.Fail(fhir.CodeConflict, "prescriptionid", "this prescription is %s", p.State)
	}
	return p, nil
}

// Reject hands the prescription back to the Fachdienst ($reject): it is ready for other
// pharmacies, and red forgets its Secret and content. A prescription red does not keep is
// rejected with the AccessCode (the Fachdienst's Secret recovery), as when another system of the
// pharmacy accepted it.
func (s *Service) Reject(ctx context.Context, id, ac string) error {
	p, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if p.State != "" && p.State != Rejected && !sameCode(p.AccessCode, ac) {
		return fhir.Fail(fhir.CodeForbidden, "accesscode", "the AccessCode does not match this prescription")
	}
	switch p.State {
	case Closed:
		return fhir.Fail(fhir.CodeConflict, "prescriptionid", "this prescription is dispensed and closed; it cannot be handed back")
	case Aborted:
		return fhir.Fail(fhir.CodeDeleted, "prescriptionid", "this pharmacy cancelled the prescription ($abort)")
	}
	err = s.bounded(ctx, func(ctx context.Context) error {
		secret := p.Secret
		if !p.State.holds() {
			secret = ""
		}
		return s.Fachdienst.Reject(ctx, id, ac, secret)
	})
	var fe *fachdienst.Error
	if err != nil && p.State.holds() && errors.As(err, &fe) && fe.Status == 403 && fe.Text == "Task not in status in progress, is: ready" {
		err = nil // rejected before: that answer was lost
	}
	if err != nil {
		return refusal("$reject", err, "")
	}
	if p.State == "" {
		return nil // nothing kept, nothing to forget
	}
	p = Prescription{ID: id, version: p.version, State: Rejected, AccessCode: p.AccessCode}
	return s.save(ctx, &p)
}

// Abort cancels the prescription the pharmacy holds at the Fachdienst ($abort with the Secret);
// red forgets its Secret and content.
func (s *Service) Abort(ctx context.Context, id string) error {
	p, err := s.held(ctx, id)
	if err != nil {
		return err
	}
	if p.State == Closed {
		return fhir.Fail(fhir.CodeConflict, "prescriptionid", "this prescription is dispensed and closed; it cannot be cancelled")
	}
	err = s.bounded(ctx, func(ctx context.Context) error { return s.Fachdienst.Abort(ctx, id, "", p.Secret) })
	var fe *fachdienst.Error
	if errors.As(err, &fe) && fe.Status == 410 {
		err = nil // cancelled before: that answer was lost
	}
	if err != nil {
		return refusal("$abort", err, "")
	}
	p = Prescription{ID: id, version: p.version, State: Aborted, AccessCode: p.AccessCode}
	return s.save(ctx, &p)
}

// Keeps reports whether the pharmacy holds the prescription id with its Secret (so that $abort is
// the pharmacy's, not the practice's).
func (s *Service) Keeps(ctx context.Context, id string) (bool, error) {
	p, err := s.load(ctx, id)
	return err == nil && p.State.holds(), err
}

// Status is a kept prescription with the Task as the Fachdienst has it now (nil when red does not
// hold its Secret any more: rejected or aborted).
type Status struct {
	Prescription Prescription
	Task         *fachdienst.Task
}

// Task reads the Task of a kept prescription at the Fachdienst (with the Secret), finishing a
// claim or a close that was cut off.
func (s *Service) Task(ctx context.Context, id string) (Status, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return Status{}, err
	}
	switch p.State {
	case "":
		return Status{}, fhir.Fail(fhir.CodeNotFound, "prescriptionid", "this pharmacy keeps no prescription with this PrescriptionId; $accept it first")
	case Claiming:
		if p, err = s.Accept(ctx, id, p.AccessCode); err != nil {
			return Status{}, err
		}
	case Rejected, Aborted:
		return Status{Prescription: p}, nil
	}
	var d fachdienst.TaskDetails
	err = s.bounded(ctx, func(ctx context.Context) (err error) {
		d, err = s.Fachdienst.GetTask(ctx, id, "", p.Secret)
		return err
	})
	if err != nil {
		return Status{}, refusal("reading the Task", err, "")
	}
	if p.State == Closing && d.Task.Status == fachdienst.StatusCompleted && d.Receipt != nil {
		if err := s.closed(ctx, &p, *d.Receipt); err != nil {
			return Status{}, err
		}
	}
	return Status{Prescription: p, Task: &d.Task}, nil
}

// Receipt is the kept receipt of a closed prescription.
func (s *Service) Receipt(ctx context.Context, id string) ([]byte, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.State != Closed || len(p.Receipt) == 0 {
		if p.State == "" {
			return nil, fhir.Fail(fhir.CodeNotFound, "prescriptionid", "this pharmacy keeps no prescription with this PrescriptionId")
		}
		return nil, fhir.Fail(fhir.CodeNotFound, "prescriptionid", "this prescription is %s: there is no receipt", p.State)
	}
	return p.Receipt, nil
}

package telematik

import (
	"cmp"
	"context"
	"net/url"
	"slices"

	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/ti/konnektor"
)

// What the signing page (package ui) needs besides RED's actions: the open prescriptions, the
// HBAs that may sign them, and a batch like $processerp that tells how it goes.

// HBA is an inserted physician's or dentist's HBA: one that signs prescriptions.
type HBA struct {
	Handle string // its CardHandle
	Holder string // the name on the card (a physician's, no patient's)
	ICCSN  string
}

// PrescribingHBAs lists the inserted HBAs of physicians and dentists.
func (s *Service) PrescribingHBAs(ctx context.Context) ([]HBA, error) {
	cards, err := s.cardsOf(ctx, "", konnektor.CardHBA)
	if err != nil {
		return nil, err
	}
	var out []HBA
	for _, c := range cards {
		cert, err := s.certificate(ctx, c.Handle, konnektor.CertAUT)
		if err != nil {
			return nil, err
		}
		if prescribes(cert) {
			out = append(out, HBA{Handle: c.Handle, Holder: c.HolderName, ICCSN: c.ICCSN})
		}
	}
	return out, nil
}

// OpenPrescriptions lists the queued prescriptions not yet activated (pending, created or
// signed), the longest queued first.
func (s *Service) OpenPrescriptions(ctx context.Context) ([]erp.Prescription, error) {
	e, err := s.prescriptions(ctx, nil)
	if err != nil {
		return nil, err
	}
	ps, err := e.Open(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ps, func(a, b erp.Prescription) int {
		return cmp.Or(a.Queued.Compare(b.Queued), cmp.Compare(a.ID, b.ID))
	})
	return ps, nil
}

// Watch is told how a batch of SignPrescriptions goes. Its funcs may be nil and must not block.
type Watch struct {
	PIN     func()                 // the HBA's signature PIN is asked for at the card terminal now
	Signing func()                 // the card is ready: the prescriptions go to the Fachdienst and the Konnektor
	Step    func(erp.Prescription) // a prescription's step was stored (erp.Service.Progress)
}

// SignPrescriptions runs a batch as $processerp&card=handle does, for the open prescriptions
// ids (all open ones when none are named): the HBA must be a physician's or dentist's, its
// signature PIN is entered at the card terminal, then the prescriptions are created, signed in
// one request and activated. It returns them as they are afterwards; an error ends the batch as
// a whole (wrong card, PIN not entered, Konnektor down), what it did is kept.
func (s *Service) SignPrescriptions(ctx context.Context, handle string, ids []string, w Watch) ([]erp.Prescription, error) {
	if err := require(ctx, "signing e-prescriptions", physician); err != nil {
		return nil, err
	}
	e, err := s.prescriptions(ctx, url.Values{})
	if err != nil {
		return nil, err
	}
	hba, err := s.signer(ctx, e, url.Values{"card": {handle}}, w.PIN)
	if err != nil {
		return nil, err
	}
	if w.Signing != nil {
		w.Signing()
	}
	e.Progress = w.Step
	return e.Process(ctx, hba, ids...)
}

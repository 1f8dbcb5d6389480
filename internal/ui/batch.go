package ui

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/internal/telematik"
)

// Phase is where a batch is.
type Phase string

// The phases of a batch, in order; it ends done or failed.
const (
	PhaseCard    Phase = "card"    // the HBA is checked
	PhasePIN     Phase = "pin"     // the signature PIN is entered at the card terminal
	PhaseSigning Phase = "signing" // the prescriptions are created, signed and activated
	PhaseDone    Phase = "done"    // the batch ran; each prescription has its outcome
	PhaseFailed  Phase = "failed"  // the batch stopped as a whole (Batch.Error says why)
)

var phaseMessages = map[Phase]string{
	PhaseCard:    "Checking the HBA …",
	PhasePIN:     "Enter the signature PIN at the card terminal.",
	PhaseSigning: "Creating, signing and activating the prescriptions …",
	PhaseDone:    "Finished.",
	PhaseFailed:  "Stopped.",
}

// Batch is a batch as GET /{tenant}/ui/state shows it.
type Batch struct {
	ID       string `json:"id"`
	Running  bool   `json:"running"`
	Phase    Phase  `json:"phase"`
	Message  string `json:"message"`
	Card     string `json:"card"` // the HBA's holder
	Error    string `json:"error,omitempty"`
	Started  string `json:"started"`            // RFC 3339
	Finished string `json:"finished,omitempty"` // RFC 3339
	// Done of Total steps: each prescription walks pending → created → signed → activated.
	Done  int   `json:"done"`
	Total int   `json:"total"`
	Items []Row `json:"items"` // each prescription of the batch, as far as it got
}

// batch is the state of one batch; the Handler's mutex guards it.
type batch struct {
	id                string
	card              string
	current           Phase
	err               string
	started, finished time.Time
	items             []Row
	at                map[string]int // index in items by id
}

func newBatch(hba telematik.HBA, ps []erp.Prescription, now time.Time) *batch {
	var id [8]byte
	_, _ = rand.Read(id[:])
	b := &batch{id: hex.EncodeToString(id[:]), card: hba.Holder, current: PhaseCard, started: now, at: map[string]int{}}
	if b.card == "" {
		b.card = hba.Handle
	}
	for _, p := range ps {
		r := rowOf(p)
		r.Reason = "" // a reason of an earlier batch; this one tells its own
		b.at[r.ID] = len(b.items)
		b.items = append(b.items, r)
	}
	return b
}

func (b *batch) ids() []string {
	out := make([]string, len(b.items))
	for i, r := range b.items {
		out[i] = r.ID
	}
	return out
}

func (b *batch) running() bool { return b.finished.IsZero() }

func (b *batch) phase(p Phase) {
	if b.running() {
		b.current = p
	}
}

// step takes in a prescription's stored step.
func (b *batch) step(p erp.Prescription) {
	if i, ok := b.at[p.ID]; ok {
		b.items[i].State, b.items[i].Reason = string(p.State), p.Reason
	}
}

// finish ends the batch with the prescriptions as they are afterwards; why, when not "", is why
// it stopped as a whole, and the reason of each prescription that got no reason of its own.
func (b *batch) finish(ps []erp.Prescription, why string, now time.Time) {
	for _, p := range ps {
		b.step(p)
	}
	b.finished, b.err, b.current = now, why, PhaseDone
	if why != "" {
		b.current = PhaseFailed
	}
	for i, r := range b.items {
		if r.State != string(erp.Activated) && r.Reason == "" {
			b.items[i].Reason = why
			if why == "" {
				b.items[i].Reason = "not processed"
			}
		}
	}
}

// counts is how many prescriptions were activated and how many were not (yet).
func (b *batch) counts() (activated, open int) {
	for _, r := range b.items {
		if r.State == string(erp.Activated) {
			activated++
		} else {
			open++
		}
	}
	return activated, open
}

// rank is how far a prescription got: steps done of the three.
func rank(s string) int {
	switch erp.State(s) {
	case erp.Created:
		return 1
	case erp.Signed:
		return 2
	case erp.Activated:
		return 3
	}
	return 0
}

func (b *batch) snapshot() Batch {
	s := Batch{ID: b.id, Running: b.running(), Phase: b.current, Message: phaseMessages[b.current], Card: b.card, Error: b.err,
		Started: b.started.UTC().Format(time.RFC3339), Total: 3 * len(b.items), Items: make([]Row, len(b.items))}
	copy(s.Items, b.items)
	for _, r := range b.items {
		s.Done += rank(r.State)
	}
	if !b.running() {
		s.Finished = b.finished.UTC().Format(time.RFC3339)
		activated, _ := b.counts()
		s.Message = fmt.Sprintf("Finished: %d of %d activated.", activated, len(b.items))
		if b.err != "" {
			s.Message = "Stopped: " + b.err
		}
	}
	return s
}

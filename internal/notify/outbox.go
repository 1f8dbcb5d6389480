package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/internal/pharmacy"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/ti/fachdienst"
)

// entry is the outbox record of one commit: the notifications its changes cause, each for every
// subscription it is for. The deliverer numbers it into a segment of the log (Seqs are set
// there) and forgets it.
type entry struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"` // when the change was made
	Events []event   `json:"events"`

	version int64
}

// event is one notification of an entry, the same for each subscription it is for.
type event struct {
	Event     string   `json:"event"`
	Focus     []focus  `json:"focus"`                    // what changed
	Patient   string   `json:"patient,omitempty"`        // "Patient/id" the change belongs to, "" unknown
	PatientAt int64    `json:"patientVersion,omitempty"` // the patient's version, pinned at the latest when numbered
	Content   [][]byte `json:"content,omitempty"`        // resources of events red keeps no FHIR resource of (a Task, a message)
	Subs      []string `json:"subs"`                     // the keys of the subscriptions it is for
	Seqs      []int64  `json:"seqs,omitempty"`           // their sequence numbers (by Subs), once numbered
}

// notification is one event as one subscription receives it.
type notification struct {
	ID           string // the webhook-id, the same on every attempt
	Entry        string // the outbox entry and the event's place in it: the event's name for every subscription
	Subscription string
	Event        string
	At           time.Time
	Focus        []focus
	Patient      string
	PatientAt    int64
	Content      [][]byte
	Seq          int64
}

// notification is event i of e as the subscription Subs[j] receives it.
func (e *entry) notification(i, j int) notification {
	ev := &e.Events[i]
	n := notification{ID: webhookID(e.ID, i, ev.Subs[j]), Entry: e.ID + "/" + strconv.Itoa(i), Subscription: subscriptionOf(ev.Subs[j]), Event: ev.Event, At: e.At,
		Focus: ev.Focus, Patient: ev.Patient, PatientAt: ev.PatientAt, Content: ev.Content}
	if j < len(ev.Seqs) {
		n.Seq = ev.Seqs[j]
	}
	return n
}

// webhookID names event i of entry id for the subscription key: the same whenever it is sent,
// another for every subscription.
func webhookID(id string, i int, key string) string {
	sum := sha256.Sum256([]byte(id + "/" + strconv.Itoa(i) + "/" + key))
	return hex.EncodeToString(sum[:16])
}

func decodeEntry(r vault.Resource) (*entry, error) {
	e := &entry{version: r.Version}
	return e, decode(r, e, "an outbox entry")
}

// focus is one resource a notification is about.
type focus struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version int64  `json:"version"` // 0: not a stored resource (Content has it)
	Deleted bool   `json:"deleted,omitempty"`
	group   string // the user group of what changed, while the event is made (vault.Write.Group)
}

// Wrap returns store with the outbox in its Commit: each commit gets the notifications its
// changes cause added, to be stored atomically with them. Give the wrapped store to records, erp
// and pharmacy; notify itself writes through the one it was given (Service.Store).
func (s *Service) Wrap(store records.Store) records.Store {
	return &outbox{Store: store, s: s}
}

type outbox struct {
	records.Store
	s    *Service
	seen sync.Map // context.Context → the generation its Heads read last
}

// seenGeneration is the subscriptions' generation as a request's Heads read it, and when.
type seenGeneration struct {
	version int64
	at      time.Time
}

// freshFor is how long the generation a request's Heads read may stand for its Commit.
const freshFor = 100 * time.Millisecond

// Heads reads the current versions of refs and, in the same round trip, the subscriptions'
// generation, which a Commit with the same ctx then takes for the one it would read (a Commit
// of a request that read no generation, or too long before, reads it itself). So a bundle that
// records prepares costs one round trip less: it is notified by the subscriptions as they were
// when it read what it writes, just before the commit. A ctx that never ends keeps nothing.
func (o *outbox) Heads(ctx context.Context, refs []vault.Ref) ([]vault.Resource, error) {
	if ctx.Done() == nil {
		return o.Store.Heads(ctx, refs)
	}
	hs, err := o.Store.Heads(ctx, append(refs[:len(refs):len(refs)], vault.Ref{Type: generationType, ID: generationID}))
	if err != nil {
		return nil, err
	}
	if _, was := o.seen.Swap(ctx, seenGeneration{hs[len(refs)].Version, time.Now()}); !was {
		context.AfterFunc(ctx, func() { o.seen.Delete(ctx) })
	}
	return hs[:len(refs)], nil
}

// Commit commits writes and their notifications atomically, then wakes the deliverer.
func (o *outbox) Commit(ctx context.Context, writes []vault.Write) error {
	gen := int64(-1) // unknown
	if v, ok := o.seen.LoadAndDelete(ctx); ok && time.Since(v.(seenGeneration).at) < freshFor {
		gen = v.(seenGeneration).version
	}
	e, err := o.s.notifications(ctx, writes, gen)
	if err != nil {
		return err
	}
	return o.s.commitEntry(ctx, o.Store, writes, e)
}

// commitEntry commits writes with the outbox entry e (none when nil) — and with the deliverer's
// commit when one waits to be carried (Service.write): one transaction, one flush to disk for
// both — then wakes the deliverer when e was written. When the transaction conflicts, the
// deliverer's commit is left out and writes tried once more, as the conflict may have been its.
func (s *Service) commitEntry(ctx context.Context, st Store, writes []vault.Write, e *entry) error {
	if e != nil {
		body, err := json.Marshal(e)
		if err != nil {
			return err
		}
		writes = append(writes[:len(writes):len(writes)], vault.Write{Type: entryType, ID: e.ID, Updated: e.At, Body: body})
	}
	s.changed.Store(time.Now().UnixNano())
	s.carrying.Lock()
	c := s.carried
	s.carried = nil
	s.carrying.Unlock()
	var err error
	if c == nil {
		err = st.Commit(ctx, writes)
	} else {
		err = st.Commit(ctx, append(writes[:len(writes):len(writes)], c.writes...))
		c.done <- err
		if errors.Is(err, storage.ErrConflict) {
			err = st.Commit(ctx, writes)
		}
	}
	if err == nil && e != nil {
		s.Kick()
	}
	return err
}

// carry is a commit of the deliverer's waiting to go with the next commit of a change.
type carry struct {
	writes []vault.Write
	done   chan error // its outcome; buffered
}

// write commits the deliverer's writes: with the next commit of a change when changes are being
// committed here (commitEntry carries them), so that under load the deliverer adds no
// transaction of its own — or alone, when none comes within wait.
func (s *Service) write(ctx context.Context, writes []vault.Write, wait time.Duration) error {
	if time.Since(time.Unix(0, s.changed.Load())) > wait {
		return s.Store.Commit(ctx, writes)
	}
	c := &carry{writes: writes, done: make(chan error, 1)}
	s.carrying.Lock()
	s.carried = c
	s.carrying.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-c.done:
		return err
	case <-t.C:
	case <-ctx.Done():
	}
	s.carrying.Lock()
	mine := s.carried == c
	if mine {
		s.carried = nil
	}
	s.carrying.Unlock()
	if !mine {
		return <-c.done // a change's commit took it and is under way
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Store.Commit(ctx, writes)
}

// notifications is the outbox entry the commit of writes causes, nil when it notifies nobody.
// Subscriptions with the same criteria share one evaluation and one event. gen is the
// subscriptions' generation when the caller has read it, -1 to read it now.
func (s *Service) notifications(ctx context.Context, writes []vault.Write, gen int64) (*entry, error) {
	subs, err := s.currentAt(ctx, gen)
	if err != nil || len(subs) == 0 {
		return nil, err
	}
	now := s.now()
	var evs []event
	searched := map[string]int{}   // criteria and audience → index in evs, -1: selects nothing
	var byTopic map[string][]event // the workflow events, derived when the first topic subscription comes
	var topics map[string][]int    // event and audience → indexes in evs
	for _, sub := range subs {
		if sub.Status == statusOff {
			continue
		}
		if sub.crit != nil {
			k := sub.Criteria + "\x00" + sub.Audience.key()
			i, ok := searched[k]
			if !ok {
				i = -1
				if ev, ok := matching(sub.crit, sub.Audience, writes, now); ok {
					evs = append(evs, ev)
					i = len(evs) - 1
				}
				searched[k] = i
			}
			if i >= 0 {
				evs[i].Subs = append(evs[i].Subs, sub.key())
			}
			continue
		}
		if byTopic == nil {
			if byTopic, err = s.events(ctx, writes); err != nil {
				return nil, err
			}
			topics = map[string][]int{}
		}
		k := sub.topic + "\x00" + sub.Audience.key()
		is, ok := topics[k]
		if !ok {
			for _, ev := range byTopic[sub.topic] {
				if ev.Focus = sub.Audience.only(ev.Focus); len(ev.Focus) > 0 {
					evs = append(evs, ev)
					is = append(is, len(evs)-1)
				}
			}
			topics[k] = is
		}
		for _, i := range is {
			evs[i].Subs = append(evs[i].Subs, sub.key())
		}
	}
	evs = slices.DeleteFunc(evs, func(ev event) bool { return len(ev.Subs) == 0 })
	if len(evs) == 0 {
		return nil, nil
	}
	return &entry{ID: newID(), At: now, Events: evs}, nil
}

// matching is the event of a search subscription about the writes its criteria select that
// its audience sees.
func matching(crit *records.Criteria, aud audience, writes []vault.Write, now time.Time) (event, bool) {
	ev := event{Event: resourceChanged}
	for _, w := range writes {
		if !aud.sees(w.Group) || !crit.Matches(w, now) {
			continue
		}
		ev.Focus = append(ev.Focus, focus{Type: w.Type, ID: w.ID, Version: w.Expect + 1})
		if ev.Patient == "" {
			ev.Patient = records.PatientOf(w)
		}
	}
	// a patient written in the same commit is pinned now; others when the entry is numbered
	for _, w := range writes {
		if ev.Patient != "" && w.Type == "Patient" && "Patient/"+w.ID == ev.Patient && !w.Deleted {
			ev.PatientAt = w.Expect + 1
		}
	}
	return ev, len(ev.Focus) > 0
}

// events are the workflow events the writes cause, by topic: a prescription's record that became
// activated (task-available), a Task whose status changed (task-status), a bundle's deletion
// (bundle-deleted).
func (s *Service) events(ctx context.Context, writes []vault.Write) (map[string][]event, error) {
	out := map[string][]event{}
	for _, w := range writes {
		switch w.Type {
		case "Bundle":
			if !w.Deleted {
				continue
			}
			n := event{Event: BundleDeleted, Focus: []focus{{Type: "Bundle", ID: w.ID, Version: w.Expect + 1, Deleted: true}}}
			for _, o := range writes {
				if o.Deleted && o.Type != "Bundle" && records.Stored(o.Type) {
					n.Focus = append(n.Focus, focus{Type: o.Type, ID: o.ID, Version: o.Expect + 1, Deleted: true, group: o.Group})
				}
			}
			out[BundleDeleted] = append(out[BundleDeleted], n)
		case "red:erp":
			before, after, err := taskStates(ctx, s.Store, w, practiceTask)
			if err != nil {
				return nil, err
			}
			if after.status == "" {
				continue
			}
			if after.status != before.status {
				out[TaskStatus] = append(out[TaskStatus], after.notification(TaskStatus, w.Group))
			}
			if after.available && !before.available {
				out[TaskAvailable] = append(out[TaskAvailable], after.notification(TaskAvailable, w.Group))
			}
		case "red:rx":
			before, after, err := taskStates(ctx, s.Store, w, pharmacyTask)
			if err != nil {
				return nil, err
			}
			if after.status != "" && after.status != before.status {
				out[TaskStatus] = append(out[TaskStatus], after.notification(TaskStatus, w.Group))
			}
		}
	}
	return out, nil
}

// task is what an event tells of an e-prescription's Task.
type task struct {
	id        string // the PrescriptionId
	status    fachdienst.Status
	available bool // activated by the practice
	basedOn   string
}

func (t task) notification(name, group string) event {
	el := fachdienst.NewTask(t.id)
	if t.basedOn != "" {
		fhir.SetValue(el.CreateElement("basedOn").CreateElement("reference"), t.basedOn)
	}
	fhir.SetValue(el.CreateElement("status"), string(t.status))
	fhir.SetValue(el.CreateElement("intent"), "order")
	return event{Event: name, Focus: []focus{{Type: "Task", ID: t.id, group: group}}, Content: [][]byte{fhir.Marshal(el)}}
}

// taskStates reads a prescription record's Task before and after write w with read.
func taskStates(ctx context.Context, st Store, w vault.Write, read func([]byte) (task, error)) (before, after task, err error) {
	if !w.Deleted {
		if after, err = read(w.Body); err != nil {
			return task{}, task{}, err
		}
	}
	if w.Expect == 0 {
		return task{}, after, nil
	}
	prev, err := st.Version(ctx, w.Type, w.ID, w.Expect)
	if errors.Is(err, storage.ErrNotFound) {
		return task{}, after, nil
	}
	if err != nil || prev.Deleted {
		return task{}, after, err
	}
	before, err = read(prev.Body)
	return before, after, err
}

// practiceTask reads the Task of a practice's prescription record (package erp).
func practiceTask(body []byte) (task, error) {
	var p erp.Prescription
	if err := json.Unmarshal(body, &p); err != nil {
		return task{}, err
	}
	t := task{id: p.TaskID, basedOn: "MedicationRequest/" + p.ID}
	switch p.State {
	case erp.Activated:
		t.status, t.available = p.TaskStatus, true
		if t.status == "" {
			t.status = fachdienst.StatusReady
		}
	case erp.Cancelled:
		t.status = fachdienst.StatusCancelled
	}
	return t, nil
}

// pharmacyTask reads the Task of a prescription a pharmacy keeps (package pharmacy).
func pharmacyTask(body []byte) (task, error) {
	var p pharmacy.Prescription
	if err := json.Unmarshal(body, &p); err != nil {
		return task{}, err
	}
	t := task{id: p.ID}
	switch p.State {
	case pharmacy.Accepted, pharmacy.Dispensed, pharmacy.Closing:
		t.status = fachdienst.StatusInProgress
	case pharmacy.Closed:
		t.status = fachdienst.StatusCompleted
	case pharmacy.Rejected:
		t.status = fachdienst.StatusReady
	case pharmacy.Aborted:
		t.status = fachdienst.StatusCancelled
	}
	return t, nil
}

// Announce puts a notification of an event red stores nothing else for (message-received: the
// messages the pharmacy fetched, which red passes through) into the outbox for every subscription
// to the event, in a commit of its own. The resources themselves are kept (sealed, until
// retention lets them go) only when a full-resource subscription is to be sent them.
func (s *Service) Announce(ctx context.Context, name string, resources []*etree.Element) error {
	subs, err := s.current(ctx)
	if err != nil {
		return err
	}
	ev := event{Event: name}
	full := false // the resources are kept only for a subscription that is sent them
	for _, sub := range subs {
		if sub.topic == name && sub.Status != statusOff {
			ev.Subs = append(ev.Subs, sub.key())
			full = full || sub.Payload == FullResource
		}
	}
	if len(ev.Subs) == 0 {
		return nil
	}
	for _, r := range resources {
		ev.Focus = append(ev.Focus, focus{Type: r.Tag, ID: fhir.ChildValue(r, "id")})
		if full {
			ev.Content = append(ev.Content, fhir.Marshal(r))
		}
	}
	return s.commitEntry(ctx, s.Store, nil, &entry{ID: newID(), At: s.now(), Events: []event{ev}})
}

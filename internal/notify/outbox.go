package notify

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
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

// notification is one notification in the outbox: one event of one subscription.
type notification struct {
	ID           string    `json:"id"` // the webhook-id, the same on every attempt
	Subscription string    `json:"subscription"`
	Event        string    `json:"event"`
	At           time.Time `json:"at"`             // when the change was made
	Focus        []focus   `json:"focus"`          // what changed
	Patient      string    `json:"patient"`        // "Patient/id" the change belongs to, "" unknown
	Content      [][]byte  `json:"content"`        // resources of events red keeps no FHIR resource of (a Task, a message)
	Seq          int64     `json:"seq"`            // 0 until the deliverer numbers it
	PatientAt    int64     `json:"patientVersion"` // the patient's version, pinned when numbered
	Delivered    time.Time `json:"delivered"`      // zero until acknowledged
	Attempts     int       `json:"attempts"`       // POSTs made
	version      int64
}

// focus is one resource a notification is about.
type focus struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version int64  `json:"version"` // 0: not a stored resource (Content has it)
	Deleted bool   `json:"deleted,omitempty"`
}

// Wrap returns store with the outbox in its Commit: each commit gets the notifications its
// changes cause added, to be stored atomically with them. Give the wrapped store to records, erp
// and pharmacy; notify itself writes through the one it was given (Service.Store).
func (s *Service) Wrap(store records.Store) records.Store {
	return &outbox{Store: store, s: s}
}

type outbox struct {
	records.Store
	s *Service
}

// Commit commits writes and their notifications atomically, then wakes the deliverer.
func (o *outbox) Commit(ctx context.Context, writes []vault.Write) error {
	extra, err := o.s.notifications(ctx, writes)
	if err != nil {
		return err
	}
	if len(extra) == 0 {
		return o.Store.Commit(ctx, writes)
	}
	if err := o.Store.Commit(ctx, slices.Concat(writes, extra)); err != nil {
		return err
	}
	o.s.Kick()
	return nil
}

// notifications are the outbox writes the commit of writes causes.
func (s *Service) notifications(ctx context.Context, writes []vault.Write) ([]vault.Write, error) {
	subs, err := s.current(ctx)
	if err != nil || len(subs) == 0 {
		return nil, err
	}
	now := s.now()
	var events map[string][]notification // by topic, derived once when a topic subscription exists
	var out []vault.Write
	for _, sub := range subs {
		if sub.Status == statusOff {
			continue
		}
		var ns []notification
		if sub.crit != nil {
			if n, ok := matching(sub, writes, now); ok {
				ns = append(ns, n)
			}
		} else {
			if events == nil {
				if events, err = s.events(ctx, writes); err != nil {
					return nil, err
				}
			}
			ns = events[sub.topic]
		}
		for _, n := range ns {
			n.ID, n.Subscription, n.At = newID(), sub.ID, now
			w, err := n.write(now)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		}
	}
	return out, nil
}

// matching is the notification of a search subscription about the writes it selects.
func matching(sub *subscription, writes []vault.Write, now time.Time) (notification, bool) {
	n := notification{Event: resourceChanged}
	for _, w := range writes {
		if !sub.crit.Matches(w, now) {
			continue
		}
		n.Focus = append(n.Focus, focus{Type: w.Type, ID: w.ID, Version: w.Expect + 1})
		if n.Patient == "" {
			n.Patient = records.PatientOf(w)
		}
	}
	// a patient written in the same commit is pinned now; others when the notification is numbered
	for _, w := range writes {
		if n.Patient != "" && w.Type == "Patient" && "Patient/"+w.ID == n.Patient && !w.Deleted {
			n.PatientAt = w.Expect + 1
		}
	}
	return n, len(n.Focus) > 0
}

// write is n as the outbox record it is stored as: found by its subscription until numbered,
// then by its sequence number.
func (n notification) write(now time.Time) (vault.Write, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return vault.Write{}, err
	}
	w := vault.Write{Type: notificationType, ID: n.ID, Expect: n.version, Updated: now, Body: body}
	if n.Seq == 0 {
		w.Index = []vault.Term{{Index: queueIndex, Value: n.Subscription}}
	} else {
		w.Index = []vault.Term{{Index: seqIndex, Value: seqValue(n.Subscription, n.Seq)}}
	}
	return w, nil
}

// events are the workflow events the writes cause, by topic: a prescription's record that became
// activated (task-available), a Task whose status changed (task-status), a bundle's deletion
// (bundle-deleted).
func (s *Service) events(ctx context.Context, writes []vault.Write) (map[string][]notification, error) {
	out := map[string][]notification{}
	for _, w := range writes {
		switch w.Type {
		case "Bundle":
			if !w.Deleted {
				continue
			}
			n := notification{Event: BundleDeleted, Focus: []focus{{Type: "Bundle", ID: w.ID, Version: w.Expect + 1, Deleted: true}}}
			for _, o := range writes {
				if o.Deleted && o.Type != "Bundle" && records.Stored(o.Type) {
					n.Focus = append(n.Focus, focus{Type: o.Type, ID: o.ID, Version: o.Expect + 1, Deleted: true})
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
				out[TaskStatus] = append(out[TaskStatus], after.notification(TaskStatus))
			}
			if after.available && !before.available {
				out[TaskAvailable] = append(out[TaskAvailable], after.notification(TaskAvailable))
			}
		case "red:rx":
			before, after, err := taskStates(ctx, s.Store, w, pharmacyTask)
			if err != nil {
				return nil, err
			}
			if after.status != "" && after.status != before.status {
				out[TaskStatus] = append(out[TaskStatus], after.notification(TaskStatus))
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

func (t task) notification(event string) notification {
	el := etree.NewElement("Task")
	el.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(el.CreateElement("id"), t.id)
	idn := el.CreateElement("identifier")
	fhir.SetValue(idn.CreateElement("use"), "official")
	fhir.SetValue(idn.CreateElement("system"), fachdienst.SystemPrescriptionID)
	fhir.SetValue(idn.CreateElement("value"), t.id)
	if t.basedOn != "" {
		fhir.SetValue(el.CreateElement("basedOn").CreateElement("reference"), t.basedOn)
	}
	fhir.SetValue(el.CreateElement("status"), string(t.status))
	fhir.SetValue(el.CreateElement("intent"), "order")
	return notification{Event: event, Focus: []focus{{Type: "Task", ID: t.id}}, Content: [][]byte{fhir.Marshal(el)}}
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
// messages the pharmacy fetched, which red passes through) into the outbox of every subscription
// to the event, in a commit of its own.
func (s *Service) Announce(ctx context.Context, event string, resources []*etree.Element) error {
	subs, err := s.current(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	var writes []vault.Write
	for _, sub := range subs {
		if sub.topic != event || sub.Status == statusOff {
			continue
		}
		n := notification{ID: newID(), Subscription: sub.ID, Event: event, At: now}
		for _, r := range resources {
			n.Focus = append(n.Focus, focus{Type: r.Tag, ID: fhir.ChildValue(r, "id")})
			n.Content = append(n.Content, fhir.Marshal(r))
		}
		w, err := n.write(now)
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	if len(writes) == 0 {
		return nil
	}
	if err := s.Store.Commit(ctx, writes); err != nil {
		return err
	}
	s.Kick()
	return nil
}

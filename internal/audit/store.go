package audit

import (
	"context"

	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
)

// Wrap returns store with the trail in its Commit: every commit gets the event of its writes
// added, as a record of one of the session's chains, to be stored atomically with them. Give
// the wrapped store to records, erp and pharmacy; it composes with notify's outbox (wrap that one,
// so that the outbox is committed with the event too).
func (t *Trail) Wrap(store records.Store) records.Store {
	return &audited{Store: store, t: t}
}

type audited struct {
	records.Store
	t *Trail
}

// Commit commits writes with their event. When the commit fails, the failure is recorded after
// it — by the API's wrapper when a request made the commit (it knows the request's outcome),
// else here.
func (a *audited) Commit(ctx context.Context, writes []vault.Write) error {
	if len(writes) == 0 {
		return a.Store.Commit(ctx, writes)
	}
	ev := a.t.writeEvent(ctx, writes)
	l, err := a.t.acquire()
	if err != nil {
		return err
	}
	err = a.t.commit(ctx, a.Store.Commit, l, &block{At: ev.At, Events: []Event{ev}}, writes)
	a.t.release(l)
	if err != nil && !handled(ctx) {
		ev.failed(err)
		a.t.Record(ev)
	}
	return err
}

// Refused records a write of typ (operation: what wrote it) that was refused with err before it
// reached the store.
func (t *Trail) Refused(ctx context.Context, typ, operation string, err error) {
	ev := t.event(ctx, Write, typ)
	ev.Operation = operation
	ev.failed(err)
	t.Record(ev)
}

// writeEvent is the event of a commit of writes.
func (t *Trail) writeEvent(ctx context.Context, writes []vault.Write) Event {
	ev := t.event(ctx, "", "")
	ev.Operation = operationOf(ctx)
	mixed := false
	for _, w := range writes {
		change := Update
		switch {
		case w.Deleted:
			change = Delete
		case w.Expect == 0:
			change = Create
		}
		if ev.Action == "" {
			ev.Action, ev.Type = change, w.Type
		}
		if ev.Action != change {
			ev.Action = Write
		}
		if ev.Type != w.Type {
			mixed = true
		}
		ev.Entities = append(ev.Entities, Entity{Type: w.Type, ID: w.ID, Version: w.Expect + 1, Change: change})
		switch w.Type {
		case "red:erp", "red:rx":
			if !w.Deleted {
				ev.addPatients(patientsOfRecord(w.Body)...)
			}
		default:
			ev.addPatients(records.PatientOf(w))
		}
	}
	if mixed {
		ev.Type = ""
	}
	return ev
}

// request marks a context whose request the API's wrappers record: a failed commit inside it
// is left to them.
type request struct {
	operation string
}

type requestKey struct{}

// inRequest marks ctx as a request doing operation.
func inRequest(ctx context.Context, operation string) context.Context {
	return context.WithValue(ctx, requestKey{}, request{operation: operation})
}

func handled(ctx context.Context) bool {
	_, ok := ctx.Value(requestKey{}).(request)
	return ok
}

func operationOf(ctx context.Context) string {
	r, _ := ctx.Value(requestKey{}).(request)
	return r.operation
}

package audit

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/internal/ui"
)

// Records returns next with every call recorded: reads and searches with the resources answered
// and their patients, right after the answer; writes that fail with their outcome (a write that
// succeeds is recorded in its commit, by Wrap).
func (t *Trail) Records(next api.Records) api.Records { return &recordsTrail{next: next, t: t} }

type recordsTrail struct {
	next api.Records
	t    *Trail
}

func (r *recordsTrail) Read(ctx context.Context, typ, id string) (*etree.Element, error) {
	el, err := r.next.Read(ctx, typ, id)
	r.t.read(ctx, Read, Entity{Type: typ, ID: id}, patientsIn(el), err)
	return el, err
}

// ReadDocument records the read like Read, the patients found in the answer as written.
func (r *recordsTrail) ReadDocument(ctx context.Context, typ, id string) ([]byte, int64, error) {
	doc, v, err := r.next.ReadDocument(ctx, typ, id)
	var patients []string
	if err == nil && typ != "Patient" { // a Patient names itself alone (see patientsIn): read adds it
		if _, patients, err = answered(doc, false); err != nil {
			doc, v = nil, 0
		}
	}
	r.t.read(ctx, Read, Entity{Type: typ, ID: id}, patients, err)
	return doc, v, err
}

// SearchDocument records the search like Search, the resources and their patients found in the
// answer as written.
func (r *recordsTrail) SearchDocument(ctx context.Context, typ string, q url.Values) ([]byte, error) {
	doc, err := r.next.SearchDocument(ctx, typ, q)
	ev := r.t.searched(ctx, typ, q)
	if err == nil {
		var patients []string
		if ev.Entities, patients, err = answered(doc, true); err != nil {
			doc = nil
		}
		ev.addPatients(patients...)
	}
	ev.failed(err)
	r.t.Record(ev)
	return doc, err
}

func (r *recordsTrail) ReadVersion(ctx context.Context, typ, id, v string) (*etree.Element, error) {
	el, err := r.next.ReadVersion(ctx, typ, id, v)
	r.t.read(ctx, VRead, Entity{Type: typ, ID: id, Version: version(v)}, patientsIn(el), err)
	return el, err
}

// read records the read of en, answered with a resource naming patients or failed with err.
func (t *Trail) read(ctx context.Context, action string, en Entity, patients []string, err error) {
	ev := t.event(ctx, action, en.Type)
	ev.Entities = []Entity{en}
	if en.Type == "Patient" {
		ev.addPatients(patientRef(en.ID))
	}
	ev.addPatients(patients...)
	ev.failed(err)
	t.Record(ev)
}

// patientParams are the search parameters that name a patient.
var patientParams = []string{"patient", "subject", "beneficiary"}

func (r *recordsTrail) Search(ctx context.Context, typ string, q url.Values) (fhir.SearchSet, error) {
	set, err := r.next.Search(ctx, typ, q)
	ev := r.t.searched(ctx, typ, q)
	for _, e := range set.Entries {
		ev.Entities = append(ev.Entities, Entity{Type: e.Resource.Tag, ID: fhir.ChildValue(e.Resource, "id")})
		ev.addPatients(patientsIn(e.Resource)...)
	}
	ev.failed(err)
	r.t.Record(ev)
	return set, err
}

// searched is the event of a search of typ with q, naming the patients its parameters name.
func (t *Trail) searched(ctx context.Context, typ string, q url.Values) Event {
	ev := t.event(ctx, Search, typ)
	for _, name := range patientParams {
		for _, v := range q[name] {
			for alt := range strings.SplitSeq(v, ",") {
				ev.addPatients(patientRef(alt))
			}
		}
	}
	return ev
}

func (r *recordsTrail) PostBundle(ctx context.Context, b *etree.Element) (*etree.Element, error) {
	op := strings.TrimSpace("Bundle " + fhir.ChildValue(b, "type"))
	resp, err := r.next.PostBundle(inRequest(ctx, op), b)
	entries := b.SelectElements("entry")
	if err != nil {
		ev := r.t.event(ctx, Write, "Bundle")
		ev.Operation = op
		for _, e := range entries {
			ev.Entities = append(ev.Entities, entryEntity(e))
		}
		ev.addPatients(patientsIn(b)...)
		ev.failed(err)
		r.t.Record(ev)
		return resp, err
	}
	// a batch stores its entries one by one: those refused are recorded each with its outcome
	for i, answer := range resp.SelectElements("entry") {
		status, _, _ := strings.Cut(fhir.ChildValue(answer, "response", "status"), " ")
		code, _ := strconv.Atoi(status)
		if code < 400 || i >= len(entries) {
			continue
		}
		en := entryEntity(entries[i])
		ev := r.t.event(ctx, cmp.Or(en.Change, Write), en.Type)
		ev.Operation = op
		ev.Entities = []Entity{en}
		ev.addPatients(patientsIn(entries[i])...)
		ev.answered(code, answer.FindElement("response/outcome/OperationOutcome"))
		r.t.Record(ev)
	}
	return resp, nil
}

// entryEntity is the resource a bundle's entry writes.
func entryEntity(e *etree.Element) Entity {
	var en Entity
	if res := e.SelectElement("resource"); res != nil && len(res.ChildElements()) > 0 {
		el := res.ChildElements()[0]
		en.Type, en.ID = el.Tag, fhir.ChildValue(el, "id")
	} else {
		en.Type, en.ID, _ = strings.Cut(fhir.ChildValue(e, "request", "url"), "/")
	}
	switch fhir.ChildValue(e, "request", "method") {
	case "POST":
		en.Change = Create
	case "PUT":
		en.Change = Update
	case "DELETE":
		en.Change = Delete
	}
	return en
}

func (r *recordsTrail) DeleteBundle(ctx context.Context, id string) (*etree.Element, error) {
	const op = "Bundle deletion"
	resp, err := r.next.DeleteBundle(inRequest(ctx, op), id)
	if err != nil {
		ev := r.t.event(ctx, Delete, "Bundle")
		ev.Operation = op
		ev.Entities = []Entity{{Type: "Bundle", ID: id, Change: Delete}}
		ev.failed(err)
		r.t.Record(ev)
	}
	return resp, err
}

// Telematik returns next with every TI action recorded right after it, with the patients its
// parameters, body and answer name; the writes it makes are recorded in their commits.
func (t *Trail) Telematik(next api.Telematik) api.Telematik { return &tiTrail{next: next, t: t} }

type tiTrail struct {
	next api.Telematik
	t    *Trail
}

// run runs the TI action op and records it.
func (d *tiTrail) run(ctx context.Context, op string, q url.Values, body *etree.Element, call func(context.Context) (telematik.Answer, error)) (telematik.Answer, error) {
	a, err := call(inRequest(ctx, op))
	ev := d.t.event(ctx, Operation, "")
	ev.Operation = op
	ev.addPatients(queryPatients(op, q)...)
	ev.addPatients(patientsIn(body)...)
	if err == nil {
		ev.answered(a.Status, a.Body)
		ev.addPatients(patientsIn(a.Body)...)
	}
	ev.failed(err)
	d.t.Record(ev)
	return a, err
}

// queryPatients are the patients a TI action's parameters name: a KVNR (patient), or a Patient
// ($openpatient's id).
func queryPatients(op string, q url.Values) []string {
	var out []string
	if v := q.Get("patient"); v != "" {
		if ident.KVNR(v) == nil {
			out = append(out, kvnrPatient(v))
		} else {
			out = append(out, patientRef(v))
		}
	}
	if v := q.Get("id"); op == "$openpatient" && v != "" {
		out = append(out, patientRef(v))
	}
	return out
}

func (d *tiTrail) Do(ctx context.Context, action string, q url.Values, body *etree.Element) (telematik.Answer, error) {
	return d.run(ctx, action, q, body, func(ctx context.Context) (telematik.Answer, error) { return d.next.Do(ctx, action, q, body) })
}

func (d *tiTrail) SignPDF(ctx context.Context, q url.Values, body []byte) (telematik.Answer, error) {
	return d.run(ctx, "$signpdf", q, nil, func(ctx context.Context) (telematik.Answer, error) { return d.next.SignPDF(ctx, q, body) })
}

func (d *tiTrail) CreateERP(ctx context.Context, q url.Values, body *etree.Element) (telematik.Answer, error) {
	return d.run(ctx, "$createerp", q, body, func(ctx context.Context) (telematik.Answer, error) { return d.next.CreateERP(ctx, q, body) })
}

func (d *tiTrail) Tasks(ctx context.Context, q url.Values) (telematik.Answer, error) {
	return d.run(ctx, "Task polling", q, nil, func(ctx context.Context) (telematik.Answer, error) { return d.next.Tasks(ctx, q) })
}

func (d *tiTrail) Received(ctx context.Context, q url.Values) (telematik.Answer, error) {
	return d.run(ctx, "$received", q, nil, func(ctx context.Context) (telematik.Answer, error) { return d.next.Received(ctx, q) })
}

func (d *tiTrail) Reply(ctx context.Context, q url.Values, body *etree.Element) (telematik.Answer, error) {
	return d.run(ctx, "$reply", q, body, func(ctx context.Context) (telematik.Answer, error) { return d.next.Reply(ctx, q, body) })
}

func (d *tiTrail) TaskAction(ctx context.Context, action string, q url.Values) (telematik.Answer, error) {
	return d.run(ctx, action, q, nil, func(ctx context.Context) (telematik.Answer, error) { return d.next.TaskAction(ctx, action, q) })
}

func (d *tiTrail) PharmacyTask(ctx context.Context, id string) (telematik.Answer, error) {
	return d.run(ctx, "Task read", nil, nil, func(ctx context.Context) (telematik.Answer, error) { return d.next.PharmacyTask(ctx, id) })
}

func (d *tiTrail) Dispense(ctx context.Context, q url.Values, body *etree.Element) (telematik.Answer, error) {
	return d.run(ctx, "$dispense", q, body, func(ctx context.Context) (telematik.Answer, error) { return d.next.Dispense(ctx, q, body) })
}

// pageRepeat is how long the same user's showing the same open prescriptions again (the page
// polls its state while a batch runs) is not recorded again.
const pageRepeat = time.Minute

// UI returns next with the signing page's doings recorded: showing the open prescriptions (once
// a minute while the same ones show to the same user), listing the HBAs, signing.
func (t *Trail) UI(next ui.TI) ui.TI { return &pageTrail{next: next, t: t} }

type pageTrail struct {
	next ui.TI
	t    *Trail

	mu        sync.Mutex
	last      string // who saw which prescriptions last
	lastShown time.Time
}

const pageOperation = "signing page"

func (p *pageTrail) OpenPrescriptions(ctx context.Context) ([]erp.Prescription, error) {
	ps, err := p.next.OpenPrescriptions(ctx)
	ev := p.t.event(ctx, Search, "MedicationRequest")
	ev.Operation = pageOperation
	ev.failed(err)
	key := ev.User + "\x00" + ev.Workstation + "\x00" + ev.Client + "\x00" + ev.Outcome
	for _, pr := range ps {
		key += "\x00" + pr.ID
	}
	p.mu.Lock()
	again := key == p.last && ev.At.Sub(p.lastShown) < pageRepeat
	if !again {
		p.last, p.lastShown = key, ev.At
	}
	p.mu.Unlock()
	if !again {
		prescribed(&ev, ps)
		p.t.Record(ev)
	}
	return ps, err
}

func (p *pageTrail) PrescribingHBAs(ctx context.Context) ([]telematik.HBA, error) {
	hbas, err := p.next.PrescribingHBAs(ctx)
	ev := p.t.event(ctx, Operation, "")
	ev.Operation = pageOperation + ": HBAs"
	ev.failed(err)
	p.t.Record(ev)
	return hbas, err
}

func (p *pageTrail) SignPrescriptions(ctx context.Context, handle string, ids []string, w telematik.Watch) ([]erp.Prescription, error) {
	ps, err := p.next.SignPrescriptions(inRequest(ctx, pageOperation+": sign"), handle, ids, w)
	ev := p.t.event(ctx, Operation, "MedicationRequest")
	ev.Operation = pageOperation + ": sign"
	prescribed(&ev, ps)
	for _, id := range ids {
		if !slices.ContainsFunc(ev.Entities, func(en Entity) bool { return en.ID == id }) {
			ev.Entities = append(ev.Entities, Entity{Type: "MedicationRequest", ID: id})
		}
	}
	ev.failed(err)
	p.t.Record(ev)
	return ps, err
}

// prescribed adds the prescriptions to ev: each MedicationRequest, and the patient its bundle names.
func prescribed(ev *Event, ps []erp.Prescription) {
	for _, pr := range ps {
		ev.Entities = append(ev.Entities, Entity{Type: "MedicationRequest", ID: pr.ID})
		if b, err := fhir.Unmarshal(pr.Bundle); err == nil {
			ev.addPatients(patientsIn(b)...)
		}
	}
}

// Access returns next with every refused API client recorded — a request without the API token
// the server requires, or with one it does not know — as a failed login of the server's user,
// workstation and session (who the client is, is just what is not known).
func (t *Trail) Access(next api.Access) api.Access { return &accessTrail{Access: next, t: t} }

type accessTrail struct {
	api.Access
	t *Trail
}

func (a *accessTrail) Principal(ctx context.Context, authorization string) (access.Principal, error) {
	p, err := a.Access.Principal(ctx, authorization)
	if err != nil {
		ev := a.t.event(ctx, Login, "")
		ev.User, ev.Operation = a.t.user, "API token"
		ev.failed(err)
		a.t.Record(ev)
	}
	return p, err
}

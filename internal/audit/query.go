package audit

import (
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// Filter selects events.
type Filter struct {
	// Patient is a Patient's id: the events concerning it, those naming its KVNR as well; "" any.
	Patient string
	User    string              // the user who acted; "" any
	Since   time.Time           // the earliest time; zero: from the beginning
	Dates   []records.DateQuery // FHIR date conditions every event must meet
}

// Found is an event with its place in the trail.
type Found struct {
	Event
	Chain string
	Seq   int64 // the record holding it
	Index int   // its place in the record
}

// MarshalJSON writes the event as red audit --format json shows it.
func (f Found) MarshalJSON() ([]byte, error) {
	type entity struct {
		Type    string `json:"type"`
		Token   []byte `json:"token"`
		Version int64  `json:"version,omitempty"`
		Change  string `json:"change,omitempty"`
	}
	entities := make([]entity, len(f.Entities))
	for i, en := range f.Entities {
		entities[i] = entity{Type: en.Type, Token: en.Token, Version: en.Version, Change: en.Change}
	}
	return json.Marshal(struct {
		ID          string    `json:"id"`
		Time        time.Time `json:"time"`
		User        string    `json:"user,omitempty"`
		Workstation string    `json:"workstation,omitempty"`
		Client      string    `json:"client,omitempty"`
		Action      string    `json:"action"`
		Type        string    `json:"type,omitempty"`
		Operation   string    `json:"operation,omitempty"`
		Entities    []entity  `json:"entities,omitempty"`
		Patients    []string  `json:"patients,omitempty"`
		Outcome     string    `json:"outcome"`
		Status      int       `json:"status,omitempty"`
	}{f.ID(), f.At, f.User, f.Workstation, f.Client, f.Action, f.Type, f.Operation, entities, f.Patients, f.Outcome, f.Status})
}

// ID is the event's id as an AuditEvent.
func (f Found) ID() string {
	return f.Chain + "." + strconv.FormatInt(f.Seq, 10) + "." + strconv.Itoa(f.Index)
}

// Query answers red audit: the events f selects, oldest first. That the trail was read is
// recorded too.
func (t *Trail) Query(ctx context.Context, f Filter) ([]Found, error) {
	found, err := t.events(ctx, f)
	ev := t.event(ctx, Search, "AuditEvent")
	if f.Patient != "" {
		ev.addPatients(patientRef(f.Patient))
	}
	ev.failed(err)
	t.Record(ev)
	return found, err
}

// events are the events f selects, oldest first. A patient's are found in two steps: the
// records found by the patient are each chain's first of a day with an event of the patient
// (see Trail.writes); the patient's events are in those chains' records of those days.
func (t *Trail) events(ctx context.Context, f Filter) ([]Found, error) {
	var out []Found
	seen := map[string]bool{} // records read, by id
	read := func(groups [][]vault.Term, each func(block, Event) bool) error {
		page, err := t.v.Find(ctx, vault.Query{Type: recordType, All: groups})
		if err != nil {
			return unreadable(err)
		}
		for _, r := range page.Resources {
			b, _, err := t.decode(r.Body)
			if err != nil {
				return unreadable(err)
			}
			if id := recordID(b.Chain, b.Seq); !seen[id] {
				seen[id] = true
				for i, ev := range b.Events {
					if each(b, ev) {
						out = append(out, Found{Event: ev, Chain: b.Chain, Seq: b.Seq, Index: i})
					}
				}
			}
		}
		return nil
	}
	days, narrowed := t.days(f)
	if f.Patient == "" {
		var groups [][]vault.Term
		if f.User != "" {
			groups = append(groups, termsOf(userIndex, []string{f.User}))
		}
		if narrowed {
			groups = append(groups, days)
		}
		if err := read(groups, func(_ block, ev Event) bool { return f.selects(ev, nil) }); err != nil {
			return nil, err
		}
	} else {
		patients, err := t.patientNames(ctx, f.Patient)
		if err != nil {
			return nil, err
		}
		type chainDay struct{ chain, day string }
		var where []chainDay
		err = read([][]vault.Term{termsOf(patientIndex, patients)}, func(b block, ev Event) bool {
			if cd := (chainDay{b.Chain, day(ev.At)}); ev.concerns(patients) && !slices.Contains(where, cd) &&
				(!narrowed || slices.Contains(days, vault.Term{Index: dayIndex, Value: cd.day})) {
				where = append(where, cd)
			}
			return f.selects(ev, patients)
		})
		if err != nil {
			return nil, err
		}
		for _, cd := range where {
			err := read([][]vault.Term{termsOf(chainIndex, []string{cd.chain}), termsOf(dayIndex, []string{cd.day})},
				func(_ block, ev Event) bool { return f.selects(ev, patients) })
			if err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(out, func(a, b Found) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Chain, b.Chain), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Index, b.Index))
	})
	return out, nil
}

// unreadable is the error of a query that met a record that does not open.
func unreadable(err error) error {
	if errors.Is(err, vault.ErrTampered) || errors.Is(err, errMAC) {
		return fhir.Wrap(err, fhir.CodeException, "the audit trail holds a record that does not open or whose MAC does not match (altered in the database?); red audit verify names it")
	}
	return err
}

func (f Filter) selects(ev Event, patients []string) bool {
	if f.Patient != "" && !ev.concerns(patients) || f.User != "" && ev.User != f.User || ev.At.Before(f.Since) {
		return false
	}
	for _, d := range f.Dates {
		if !d.Matches(ev.At) {
			return false
		}
	}
	return true
}

// patientNames are how events name the patient with id: "Patient/id", and "kvnr:…" for each
// KVNR it has (in its current version, or the one before its deletion).
func (t *Trail) patientNames(ctx context.Context, id string) ([]string, error) {
	out := []string{"Patient/" + id}
	r, err := t.v.Current(ctx, "Patient", id)
	if err == nil && r.Deleted && r.Version > 1 {
		r, err = t.v.Version(ctx, "Patient", id, r.Version-1)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return out, nil
	case err != nil:
		return nil, err
	case r.Deleted:
		return out, nil
	}
	el, err := fhir.Unmarshal(r.Body)
	if err != nil {
		return nil, err
	}
	for _, i := range el.SelectElements("identifier") {
		if slices.Contains(kvnrSystems, ident.Canonical(fhir.ChildValue(i, "system"))) && fhir.ChildValue(i, "value") != "" {
			out = append(out, kvnrPatient(fhir.ChildValue(i, "value")))
		}
	}
	return out, nil
}

func termsOf(index string, values []string) []vault.Term {
	out := make([]vault.Term, len(values))
	for i, v := range values {
		out[i] = vault.Term{Index: index, Value: v}
	}
	return out
}

// maxDays bounds the days a query names by their index terms; a longer span reads every record.
const maxDays = 400

// days are the index terms of the days f's times span, when it bounds them from below.
func (t *Trail) days(f Filter) ([]vault.Term, bool) {
	lo, hi := f.Since, time.Time{}
	later := func(a, b time.Time) time.Time {
		if a.IsZero() || b.After(a) {
			return b
		}
		return a
	}
	earlier := func(a, b time.Time) time.Time {
		if a.IsZero() || b.Before(a) {
			return b
		}
		return a
	}
	for _, d := range f.Dates {
		switch d.Op {
		case "eq":
			lo, hi = later(lo, d.Lo), earlier(hi, d.Hi)
		case "ge":
			lo = later(lo, d.Lo)
		case "gt", "sa":
			lo = later(lo, d.Hi)
		case "le":
			hi = earlier(hi, d.Hi)
		case "lt", "eb":
			hi = earlier(hi, d.Lo)
		}
	}
	if lo.IsZero() {
		return nil, false
	}
	if hi.IsZero() {
		hi = t.now().Add(48 * time.Hour) // clocks of other workstations may be ahead
	}
	if hi.Sub(lo) > maxDays*24*time.Hour {
		return nil, false
	}
	out := []vault.Term{}
	for d := lo.UTC().Truncate(24 * time.Hour); d.Before(hi); d = d.Add(24 * time.Hour) {
		out = append(out, vault.Term{Index: dayIndex, Value: day(d)})
	}
	return out, true
}

var errMAC = errors.New("audit: a record's MAC does not match its content")

// decode reads a record's body: the block and its MAC, and errMAC (with both) when the MAC does
// not match the block.
func (t *Trail) decode(body []byte) (block, []byte, error) {
	var s stored
	var b block
	if err := json.Unmarshal(body, &s); err != nil {
		return b, nil, fmt.Errorf("audit: a record is unreadable: %w", err)
	}
	if err := json.Unmarshal(s.Block, &b); err != nil {
		return b, nil, fmt.Errorf("audit: a record is unreadable: %w", err)
	}
	mac, err := t.v.AuditMAC(s.Block)
	if err != nil {
		return b, nil, err
	}
	if !hmac.Equal(mac, s.MAC) {
		return b, s.MAC, errMAC
	}
	return b, s.MAC, nil
}

// searchParams are the parameters of an AuditEvent search.
var searchParams = []string{"_count", "agent", "date", "page", "patient"}

// pageSize is an AuditEvent search's page size.
const pageSize = 10

// Search answers GET /{tenant}/AuditEvent for the tenant's admins: the events, newest first, as
// FHIR R4 AuditEvents in RED's searchset, paged like other searches (the parameters travel
// sealed in _q). patient (Patient/{id} or the id) selects the events concerning the patient,
// date (with a prefix, repeated for a range) their time, agent the user who acted. Anyone else
// is refused (403). The search is recorded in the trail too.
func (t *Trail) Search(ctx context.Context, q url.Values) (fhir.SearchSet, error) {
	ev := t.event(ctx, Search, "AuditEvent")
	set, err := t.search(ctx, q, &ev)
	ev.failed(err)
	t.Record(ev)
	return set, err
}

func (t *Trail) search(ctx context.Context, q url.Values, ev *Event) (fhir.SearchSet, error) {
	ev.addPatients(patientRef(q.Get("patient")))
	if err := access.Require(ctx, "reading the audit trail", access.Admin); err != nil {
		return fhir.SearchSet{}, err
	}
	q, err := records.Unfold(t.v, "AuditEvent", q)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	var f Filter
	var issues fhir.Issues
	for name, vals := range q {
		if !slices.Contains(searchParams, name) {
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeNotSupported, Expression: fhir.Quote(name),
				Diagnostics: "unknown search parameter " + fhir.Quote(name) + " for AuditEvent; supported: " + strings.Join(searchParams, ", ")})
			continue
		}
		if slices.Contains(vals, "") {
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeValue, Expression: name, Diagnostics: name + " needs a value"})
		}
	}
	if vals := q["patient"]; len(vals) > 0 {
		ref := patientRef(vals[0])
		if len(vals) > 1 || ref == "" {
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeValue, Expression: "patient", Diagnostics: "patient names one Patient: Patient/{id} or the id"})
		}
		f.Patient = strings.TrimPrefix(ref, "Patient/")
	}
	f.User = q.Get("agent")
	for _, v := range q["date"] {
		d, err := records.ParseDateQuery("date", v)
		if err != nil {
			is, _ := fhir.Explain(err)
			issues = append(issues, is...)
			continue
		}
		f.Dates = append(f.Dates, d)
	}
	if len(issues) > 0 {
		slices.SortFunc(issues, func(a, b fhir.Issue) int { return strings.Compare(a.Expression, b.Expression) })
		return fhir.SearchSet{}, fhir.Reject(issues)
	}
	page, count, err := records.Paging(q, pageSize)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	if f.Patient != "" {
		ev.addPatients("Patient/" + f.Patient)
	}
	found, err := t.events(ctx, f)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	slices.Reverse(found)
	set := fhir.SearchSet{ID: newID(), Updated: t.now(), Total: len(found)}
	from := min((page-1)*count, len(found))
	for _, e := range found[from:min(from+count, len(found))] {
		set.Entries = append(set.Entries, fhir.Entry{FullURL: "/AuditEvent/" + e.ID(), Resource: e.Resource()})
	}
	set.Links, err = records.PageLinks(t.v, t.tenant, "AuditEvent", q, page, count, pageSize, len(found))
	return set, err
}

// Code systems of AuditEvent.
const (
	eventTypeSystem   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	interactionSystem = "http://hl7.org/fhir/restful-interaction"
	dicomSystem       = "http://dicom.nema.org/resources/ontology/DCM"
	roleTypeSystem    = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
	sourceTypeSystem  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	entityTypeSystem  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	objectRoleSystem  = "http://terminology.hl7.org/CodeSystem/object-role"
	operationSystem   = "urn:red:operation"
	userSystem        = "urn:red:user"
	clientSystem      = "urn:red:client"
	workstationSystem = "urn:red:workstation"
	// IDTokenSystem names a resource by its blind id token (base64url), as the store keeps it.
	IDTokenSystem = "urn:red:id-token"
)

// interactions are each action's restful interaction and AuditEvent.action.
var interactions = map[string][2]string{
	Read: {"read", "R"}, VRead: {"vread", "R"}, Search: {"search-type", "E"},
	Create: {"create", "C"}, Update: {"update", "U"}, Delete: {"delete", "D"},
	Write: {"transaction", "E"}, Operation: {"operation", "E"},
}

// Resource is the event as a FHIR R4 AuditEvent.
func (f Found) Resource() *etree.Element {
	a := etree.NewElement("AuditEvent")
	val(a, "id", f.ID())
	switch f.Action {
	case Login, Logout:
		coding(a.CreateElement("type"), dicomSystem, "110114", "User Authentication")
		if f.Action == Login {
			coding(a.CreateElement("subtype"), dicomSystem, "110122", "Login")
		} else {
			coding(a.CreateElement("subtype"), dicomSystem, "110123", "Logout")
		}
		val(a, "action", "E")
	case Verify:
		coding(a.CreateElement("type"), dicomSystem, "110101", "Audit Log Used")
		val(a, "action", "E")
	default:
		in := interactions[f.Action]
		coding(a.CreateElement("type"), eventTypeSystem, "rest", "RESTful Operation")
		coding(a.CreateElement("subtype"), interactionSystem, in[0], "")
		if f.Operation != "" {
			coding(a.CreateElement("subtype"), operationSystem, f.Operation, "")
		}
		val(a, "action", in[1])
	}
	val(a, "recorded", fhir.Instant(f.At))
	switch {
	case f.Succeeded():
		val(a, "outcome", "0")
	case f.Status >= 500:
		val(a, "outcome", "8")
	default:
		val(a, "outcome", "4")
	}
	if !f.Succeeded() {
		desc := f.Outcome
		if f.Status != 0 {
			desc += " (" + strconv.Itoa(f.Status) + ")"
		}
		val(a, "outcomeDesc", desc)
	}
	agent := a.CreateElement("agent")
	if f.User != "" {
		coding(agent.CreateElement("type").CreateElement("coding"), roleTypeSystem, "humanuser", "human user")
		identifier(agent.CreateElement("who"), userSystem, f.User)
		val(agent, "requestor", "true")
	} else {
		coding(agent.CreateElement("type").CreateElement("coding"), roleTypeSystem, "dataprocessor", "data processor")
		identifier(agent.CreateElement("who"), workstationSystem, f.Workstation)
		val(agent, "name", "red (background work)")
		val(agent, "requestor", "false")
	}
	if f.Workstation != "" {
		net := agent.CreateElement("network")
		val(net, "address", f.Workstation)
		val(net, "type", "1") // machine name
	}
	if f.Client != "" {
		client := a.CreateElement("agent")
		coding(client.CreateElement("type").CreateElement("coding"), dicomSystem, "110150", "Application")
		identifier(client.CreateElement("who"), clientSystem, f.Client)
		val(client, "requestor", "false")
	}
	source := a.CreateElement("source")
	val(source, "site", f.Workstation)
	identifier(source.CreateElement("observer"), workstationSystem, f.Workstation)
	coding(source.CreateElement("type"), sourceTypeSystem, "4", "Application Server")
	for _, p := range f.Patients {
		e := a.CreateElement("entity")
		what := e.CreateElement("what")
		if kvnr, ok := strings.CutPrefix(p, "kvnr:"); ok {
			identifier(what, kvnrSystems[0], kvnr)
		} else {
			val(what, "reference", p)
		}
		coding(e.CreateElement("type"), entityTypeSystem, "1", "Person")
		coding(e.CreateElement("role"), objectRoleSystem, "1", "Patient")
	}
	for _, en := range f.Entities {
		e := a.CreateElement("entity")
		what := e.CreateElement("what")
		val(what, "type", en.Type)
		identifier(what, IDTokenSystem, base64.RawURLEncoding.EncodeToString(en.Token))
		coding(e.CreateElement("type"), entityTypeSystem, "2", "System Object")
		if en.Version > 0 {
			detail(e, "version", strconv.FormatInt(en.Version, 10))
		}
		if en.Change != "" {
			detail(e, "change", en.Change)
		}
	}
	return a
}

func val(parent *etree.Element, tag, v string) {
	fhir.SetValue(parent.CreateElement(tag), v)
}

// coding fills el as a Coding.
func coding(el *etree.Element, system, code, display string) {
	val(el, "system", system)
	val(el, "code", code)
	if display != "" {
		val(el, "display", display)
	}
}

// identifier gives the Reference ref an identifier.
func identifier(ref *etree.Element, system, value string) {
	id := ref.CreateElement("identifier")
	val(id, "system", system)
	val(id, "value", value)
}

func detail(entity *etree.Element, typ, value string) {
	d := entity.CreateElement("detail")
	val(d, "type", typ)
	val(d, "valueString", value)
}

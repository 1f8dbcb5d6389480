package audit

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/access"
)

// The actions an event records.
const (
	Read      = "read"      // a resource by id
	VRead     = "vread"     // one version of a resource
	Search    = "search"    // a search; Type names what was searched
	Create    = "create"    // a write that created every resource it wrote
	Update    = "update"    // a write that updated every resource it wrote
	Delete    = "delete"    // a write that deleted every resource it wrote, or a bundle's deletion
	Write     = "write"     // a write of several kinds of change
	Operation = "operation" // a TI action (Operation names it) or signing on the page
	Login     = "login"     // a user logged in: the session began
	Logout    = "logout"    // the session ended (Operation says why)
	Verify    = "verify"    // red audit verify read the whole trail
)

// Success is the outcome of an event that succeeded; any other outcome is the FHIR issue code
// of the failure.
const Success = "success"

// Event is one thing a user (or red itself, for background work) did to a tenant's data. Its
// JSON is how a record stores it: short, since a busy server stores many (Found's JSON is for
// reading).
type Event struct {
	At          time.Time `json:"t"`
	User        string    `json:"u,omitempty"` // "" for red's own background work
	Workstation string    `json:"w,omitempty"`
	Client      string    `json:"c,omitempty"` // the API token's name, "" without one
	Action      string    `json:"a"`
	Type        string    `json:"y,omitempty"` // the resource type acted on
	Operation   string    `json:"o,omitempty"` // the TI action, the bundle's type, why a session ended
	Entities    []Entity  `json:"e,omitempty"`
	// Patients are the patients concerned: "Patient/id" or "kvnr:KVNR".
	Patients []string `json:"p,omitempty"`
	Outcome  string   `json:"r"`
	Status   int      `json:"s,omitempty"` // the HTTP status answered, 0 when none
}

// Entity is a resource an event concerns, named by its blind id token.
type Entity struct {
	Type    string `json:"y"`
	ID      string `json:"-"` // until the event is stored: the token replaces it
	Token   []byte `json:"k,omitempty"`
	Version int64  `json:"v,omitempty"`
	Change  string `json:"c,omitempty"` // create, update or delete for a written resource
}

// Succeeded reports whether the event's outcome is a success.
func (e Event) Succeeded() bool { return e.Outcome == Success }

// concerns reports whether the event concerns one of the patients.
func (e Event) concerns(patients []string) bool {
	return slices.ContainsFunc(e.Patients, func(p string) bool { return slices.Contains(patients, p) })
}

// event starts an event of ctx's principal at now.
func (t *Trail) event(ctx context.Context, action, typ string) Event {
	ev := Event{At: t.now(), Action: action, Type: typ, Workstation: t.workstation, Outcome: Success, Status: http.StatusOK}
	if p, ok := access.From(ctx); ok {
		ev.User, ev.Client = p.User, p.Client
		if p.Workstation != "" {
			ev.Workstation = p.Workstation
		}
	}
	return ev
}

// failed sets the event's outcome from err (nil: success).
func (e *Event) failed(err error) {
	if err == nil {
		return
	}
	issues, status := fhir.Explain(err)
	e.Outcome, e.Status = string(fhir.CodeException), status
	if len(issues) > 0 {
		e.Outcome = string(issues.Code())
	}
}

// answered sets the outcome of an answer that came without an error: its status, and for a
// failure the issue code of its OperationOutcome.
func (e *Event) answered(status int, body *etree.Element) {
	e.Status = status
	if status < 400 {
		return
	}
	e.Outcome = string(fhir.CodeProcessing)
	if body != nil && body.Tag == "OperationOutcome" {
		if code := fhir.ChildValue(body, "issue", "code"); code != "" {
			e.Outcome = code
		}
	}
}

// addPatients adds patients not named yet.
func (e *Event) addPatients(ps ...string) {
	for _, p := range ps {
		if p != "" && !slices.Contains(e.Patients, p) {
			e.Patients = append(e.Patients, p)
		}
	}
}

// kvnrPatient is how a patient known by KVNR alone is named.
func kvnrPatient(kvnr string) string { return "kvnr:" + kvnr }

// patientRef is a reference or bare id as "Patient/id"; "" when it names another type.
func patientRef(v string) string {
	if typ, id, ok := strings.Cut(v, "/"); ok {
		if typ != "Patient" || id == "" || strings.Contains(id, "/") {
			return ""
		}
		return v
	}
	if v == "" {
		return ""
	}
	return "Patient/" + v
}

// kvnrSystems are the identifier systems of a KVNR (after ident.Canonical).
var kvnrSystems = []string{"http://fhir.de/sid/gkv/kvid-10", "http://fhir.de/sid/pkv/kvid-10"}

// patientsIn are the patients el names: a Patient resource by its id (or, without one, its
// KVNR), a reference to a Patient, a KVNR identifier (of a Task, an insured person's message).
func patientsIn(el *etree.Element) []string {
	if el == nil {
		return nil
	}
	s := newScan(false)
	fhir.WalkTree(el, s)
	return s.patients
}

// answered are the resources an answer written by red holds — the resource of a read, or a
// search set's entries when set — and the patients they name (as patientsIn): read from the
// document as it is written where fhir.Walk can, else from its tree.
func answered(doc []byte, set bool) (resources []Entity, patients []string, err error) {
	s := newScan(set)
	if fhir.Walk(doc, s) {
		return s.resources, s.patients, nil
	}
	el, err := fhir.Parse(doc, fhir.DefaultLimits)
	if err != nil {
		return nil, nil, err
	}
	s = newScan(set)
	fhir.WalkTree(el, s)
	return s.resources, s.patients, nil
}

// scan finds, as a fhir.Walker, the resources and patients of what it is told: the root is the
// resource, or with set the resources of a search set's entries.
type scan struct {
	set       bool
	resources []Entity
	patients  []string
	open      []scanned // the open elements, outermost first
}

func newScan(set bool) *scan { return &scan{set: set, open: make([]scanned, 0, 8)} }

// scanned is an open element: what it makes of the patients found below it once it ends.
type scanned struct {
	rule     byte // 0 none; 'r' a reference; 'P' a Patient; 'I' an identifier
	resource bool // a resource answered
	mark     int  // len(patients) at its start
	name     string
	value    string // a reference's
	// its first children of these names
	id, system, kvnr           string
	hasID, hasSystem, hasValue bool
}

func (s *scan) Start(depth int, name, value string) fhir.Skip {
	if depth > 0 {
		p := &s.open[len(s.open)-1]
		switch {
		case name == "id" && !p.hasID:
			if p.id, p.hasID = value, true; p.rule == 'P' && value != "" {
				return fhir.SkipRest // a Patient with its id names itself alone
			}
		case name == "system" && !p.hasSystem:
			p.system, p.hasSystem = value, true
		case name == "value" && !p.hasValue:
			p.kvnr, p.hasValue = value, true
		}
	}
	e := scanned{mark: len(s.patients), name: name}
	switch {
	case s.set && depth < 3: // the search set's Bundle, its entries and their resources
		s.open = append(s.open, e)
		if depth == 1 && name != "entry" || depth == 2 && name != "resource" {
			return fhir.SkipChildren
		}
		return fhir.Descend
	case depth == 0 || s.set && depth == 3:
		e.resource = true
	}
	skip := fhir.Descend
	switch name {
	case "text", "div":
		skip = fhir.SkipChildren // the narrative names no one by reference
	case "reference":
		e.rule, e.value, skip = 'r', value, fhir.SkipChildren
	case "Patient":
		e.rule = 'P'
	case "identifier":
		e.rule = 'I'
	}
	s.open = append(s.open, e)
	return skip
}

func (s *scan) End(int) {
	e := s.open[len(s.open)-1]
	s.open = s.open[:len(s.open)-1]
	switch e.rule {
	case 'r':
		if strings.HasPrefix(e.value, "Patient/") && patientRef(e.value) != "" {
			s.patients = append(s.patients, strings.Clone(e.value))
		}
	case 'P':
		if e.id != "" {
			s.patients = append(s.patients[:e.mark], "Patient/"+e.id)
		}
	case 'I':
		if slices.Contains(kvnrSystems, ident.Canonical(e.system)) {
			if s.patients = s.patients[:e.mark]; e.kvnr != "" {
				s.patients = append(s.patients, kvnrPatient(e.kvnr))
			}
		}
	}
	if e.resource {
		s.resources = append(s.resources, Entity{Type: strings.Clone(e.name), ID: strings.Clone(e.id)})
	}
}

// patientsOfRecord are the patients of a prescription's record (red:erp, red:rx): those its
// KBV bundle names.
func patientsOfRecord(body []byte) []string {
	var r struct {
		Bundle []byte `json:"bundle"`
	}
	if json.Unmarshal(body, &r) != nil || len(r.Bundle) == 0 {
		return nil
	}
	b, err := fhir.Unmarshal(r.Bundle)
	if err != nil {
		return nil
	}
	return patientsIn(b)
}

// version reads a version number; 0 when it is none.
func version(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

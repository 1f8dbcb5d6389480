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
	var out []string
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		switch e.Tag {
		case "text", "div":
			return // the narrative names no one by reference
		case "Patient":
			if id := fhir.ChildValue(e, "id"); id != "" {
				out = append(out, "Patient/"+id)
				return
			}
		case "reference":
			if v := fhir.Value(e); strings.HasPrefix(v, "Patient/") && patientRef(v) != "" {
				out = append(out, v)
			}
			return
		case "identifier":
			if slices.Contains(kvnrSystems, ident.Canonical(fhir.ChildValue(e, "system"))) {
				if v := fhir.ChildValue(e, "value"); v != "" {
					out = append(out, kvnrPatient(v))
				}
				return
			}
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	if el != nil {
		walk(el)
	}
	return out
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

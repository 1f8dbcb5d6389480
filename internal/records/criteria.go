package records

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault"
)

// Criteria is a search — a resource type with red's search parameters, such as
// Encounter?patient=Patient/6006 — turned into a test of one resource as it is written: a
// subscription's criteria (package notify). It decides with the very search values records
// indexes a resource by (the terms the barrier turns into blind-index tokens), so that a written
// resource matches exactly when a search after the commit would find it; parameters the index
// cannot decide exactly are checked on the written body, as Search checks its candidates.
type Criteria struct {
	req searchRequest
}

// ParseCriteria checks a subscription's criteria "Type?name=value&…" as Search checks a search:
// the type must be searchable, the parameters known, their values well-formed; paging parameters
// (page, _count, _q) select no resources and are refused. expr locates the criteria in errors.
func ParseCriteria(criteria, expr string) (Criteria, error) {
	typ, rawQuery, _ := strings.Cut(criteria, "?")
	if !Supported(typ) {
		return Criteria{}, fhir.Fail(fhir.CodeNotSupported, expr, "criteria start with a resource type red searches (%s), then ?parameters", strings.Join(Types(), ", "))
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Criteria{}, fhir.Fail(fhir.CodeValue, expr, "the criteria's parameters are not a URL query")
	}
	for _, name := range control {
		if q.Has(name) {
			return Criteria{}, fhir.Fail(fhir.CodeValue, expr, "criteria select resources; %s shapes a search's answer and is not accepted here", name)
		}
	}
	if err := checkParams(typ, kinds[typ], q); err != nil {
		return Criteria{}, err
	}
	c := Criteria{req: searchRequest{typ: typ, k: kinds[typ], q: q}}
	if _, err := c.req.plan(time.Now()); err != nil {
		return Criteria{}, err
	}
	return c, nil
}

// Type is the resource type the criteria select.
func (c Criteria) Type() string { return c.req.typ }

// Matches reports whether w writes a resource the criteria select at time now: every token group
// of the search among the search values w is indexed by, and every exact filter true of w's body.
// Tombstones match nothing (a deleted resource is found by no search).
func (c Criteria) Matches(w vault.Write, now time.Time) bool {
	if w.Type != c.req.typ || w.Deleted {
		return false
	}
	pl, err := c.req.plan(now)
	if err != nil {
		return false
	}
	for _, g := range pl.groups {
		if !slices.ContainsFunc(g, func(t vault.Term) bool { return carries(w, t) }) {
			return false
		}
	}
	if len(pl.filters) == 0 {
		return true
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(w.Body); err != nil {
		return false
	}
	return pl.matches(doc.Root(), c.req.q, now)
}

// carries reports whether w is indexed by t.
func carries(w vault.Write, t vault.Term) bool {
	if t.Index == vault.IDIndex {
		return t.Value == w.ID
	}
	return slices.Contains(w.Index, t)
}

// PatientOf is the patient ("Patient/id") a written resource belongs to as records indexed it:
// a Patient itself, or the first patient its search values name; "" for none.
func PatientOf(w vault.Write) string {
	if w.Type == "Patient" {
		return "Patient/" + w.ID
	}
	for _, t := range w.Index {
		if t.Index == w.Type+".patient" {
			return t.Value
		}
	}
	return ""
}

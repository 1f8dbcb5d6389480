package records

import (
	"context"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault"
)

// maxCount caps _count.
const maxCount = 100

// control are the parameters that shape the answer rather than select resources.
var control = []string{"page", "_count", "_q"}

// lookupParam finds a search parameter of typ.
func lookupParam(k kind, name string) (param, bool) {
	if p, ok := k.params[name]; ok {
		return p, true
	}
	p, ok := commonParams[name]
	return p, ok
}

// Search answers GET /{tenant}/{Type}?… in RED's searchset shape. Blind-index tokens select the
// candidates in the database; parameters the index cannot decide exactly are then checked on the
// opened resources. Paging links carry the search's parameters sealed in _q, so no person data
// appears in a URL red writes. The steps: parse, plan, run, render.
func (s *Service) Search(ctx context.Context, typ string, query url.Values) (fhir.SearchSet, error) {
	now := s.now()
	req, err := s.parseSearch(typ, query)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	pl, err := req.plan(now)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	found, total, err := s.run(ctx, req, pl, now)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	return s.render(req, found, total, now)
}

// SearchDocument is Search's answer as fhir.Document writes it. Where the index decides the search
// exactly and no output parameter reshapes the resources, it is written from the stored bytes
// without trees (fhir.StoredSearchSet).
func (s *Service) SearchDocument(ctx context.Context, typ string, query url.Values) ([]byte, error) {
	now := s.now()
	req, err := s.parseSearch(typ, query)
	if err != nil {
		return nil, err
	}
	pl, err := req.plan(now)
	if err != nil {
		return nil, err
	}
	if len(pl.filters) > 0 || req.q.Get("_summary") == "true" || req.q.Get("_ExportObservationTables") == "true" {
		found, total, err := s.run(ctx, req, pl, now)
		return s.document(req, found, total, now, err)
	}
	res, err := s.Store.Find(ctx, req.query(pl))
	if err != nil {
		return nil, err
	}
	set := fhir.SearchSet{ID: newID(), Updated: now, Total: res.Total}
	if set.Links, err = PageLinks(s.Store, s.Tenant, req.typ, req.q, req.page, req.count, req.k.pageSize, res.Total); err != nil {
		return nil, err
	}
	stored := make([][]byte, len(res.Resources))
	for i, r := range res.Resources {
		stored[i] = r.Body
	}
	if doc, ok := fhir.StoredSearchSet(set, "/"+req.typ+"/", stored); ok {
		return doc, nil
	}
	found, err := parseAll(res.Resources)
	return s.document(req, found, res.Total, now, err)
}

// document renders found as Search does and writes it.
func (s *Service) document(req searchRequest, found []*etree.Element, total int, now time.Time, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	set, err := s.render(req, found, total, now)
	if err != nil {
		return nil, err
	}
	return fhir.Document(set.Element()), nil
}

// searchRequest is a search's parameters, checked.
type searchRequest struct {
	typ         string
	k           kind
	q           url.Values // with a sealed _q unfolded
	page, count int
}

// searchPlan is how a search runs: token groups the store selects by, and the exact predicates
// checked on the opened candidates.
type searchPlan struct {
	groups  [][]vault.Term
	filters []filter
}

// filter is a parameter the index cannot decide exactly, with its value (alternatives
// separated by commas).
type filter struct {
	p param
	v string
}

// parseSearch unfolds _q and checks the parameters, the page and the page size.
func (s *Service) parseSearch(typ string, query url.Values) (searchRequest, error) {
	req := searchRequest{typ: typ, k: kinds[typ]}
	var err error
	if req.q, err = Unfold(s.Store, typ, query); err != nil {
		return req, err
	}
	if err := checkParams(typ, req.k, req.q); err != nil {
		return req, err
	}
	req.page, req.count, err = Paging(req.q, req.k.pageSize)
	return req, err
}

// plan turns the parameters into token groups and exact filters.
func (req searchRequest) plan(now time.Time) (searchPlan, error) {
	var pl searchPlan
	names := make([]string, 0, len(req.q))
	for name := range req.q {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if contains(control, name) {
			continue
		}
		if name == "_id" {
			for _, v := range req.q[name] {
				var g []vault.Term
				for _, id := range strings.Split(v, ",") {
					g = append(g, vault.Term{Index: vault.IDIndex, Value: id})
				}
				pl.groups = append(pl.groups, g)
			}
			continue
		}
		p, _ := lookupParam(req.k, name)
		if p.lookup == nil { // a parameter that shapes the output
			continue
		}
		for _, v := range req.q[name] {
			g, narrowed, exact, err := p.terms(v, now)
			if err != nil {
				return pl, err
			}
			if narrowed {
				pl.groups = append(pl.groups, g)
			}
			if !exact {
				pl.filters = append(pl.filters, filter{p, v})
			}
		}
	}
	return pl, nil
}

// terms are the index values of one parameter value (alternatives separated by commas): narrowed
// is false when one alternative cannot be looked up in the index, exact false when the values
// only select candidates.
func (p param) terms(v string, now time.Time) (g []vault.Term, narrowed, exact bool, err error) {
	narrowed, exact = true, true
	for _, alt := range strings.Split(v, ",") {
		vals, ex, err := p.lookup(alt, now)
		if err != nil {
			return nil, false, false, err
		}
		if vals == nil {
			narrowed = false
		}
		exact = exact && ex
		for _, iv := range vals {
			g = append(g, vault.Term{Index: p.index, Value: iv})
		}
	}
	return g, narrowed, exact, nil
}

// run finds the page's resources and the total: the store pages when the tokens decide exactly;
// otherwise every candidate is opened and checked, then paged here.
func (s *Service) run(ctx context.Context, req searchRequest, pl searchPlan, now time.Time) ([]*etree.Element, int, error) {
	res, err := s.Store.Find(ctx, req.query(pl))
	if err != nil {
		return nil, 0, err
	}
	if len(pl.filters) == 0 {
		found, err := parseAll(res.Resources)
		return found, res.Total, err
	}
	var found []*etree.Element
	total, skip := 0, (req.page-1)*req.count
	for _, r := range res.Resources {
		el, err := parse(r)
		if err != nil {
			return nil, 0, err
		}
		if !pl.matches(el, req.q, now) {
			continue
		}
		total++
		if total > skip && len(found) < req.count {
			found = append(found, el)
		}
	}
	return found, total, nil
}

// query is what the store is asked: the plan's token groups, and the page when no filter checks
// the candidates here.
func (req searchRequest) query(pl searchPlan) vault.Query {
	q := vault.Query{Type: req.typ, All: pl.groups}
	if len(pl.filters) == 0 {
		q.Offset, q.Limit = (req.page-1)*req.count, req.count
	}
	return q
}

func parseAll(rs []vault.Resource) ([]*etree.Element, error) {
	out := make([]*etree.Element, 0, len(rs))
	for _, r := range rs {
		el, err := parse(r)
		if err != nil {
			return nil, err
		}
		out = append(out, el)
	}
	return out, nil
}

// matches applies the exact predicates: every filter, one of its alternatives.
func (pl searchPlan) matches(el *etree.Element, q url.Values, now time.Time) bool {
	for _, f := range pl.filters {
		ok := false
		for _, alt := range strings.Split(f.v, ",") {
			if f.p.match(el, alt, q, now) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// render builds RED's searchset: the output parameters applied, with paging links.
func (s *Service) render(req searchRequest, found []*etree.Element, total int, now time.Time) (fhir.SearchSet, error) {
	set := fhir.SearchSet{ID: newID(), Updated: now, Total: total}
	for _, el := range found {
		shape(el, req.q)
		set.Entries = append(set.Entries, fhir.Entry{FullURL: "/" + req.typ + "/" + fhir.ChildValue(el, "id"), Resource: el})
	}
	var err error
	set.Links, err = PageLinks(s.Store, s.Tenant, req.typ, req.q, req.page, req.count, req.k.pageSize, total)
	return set, err
}

// shape applies the output parameters: _summary=true leaves DocumentReference content out
// (metadata only); _ExportObservationTables=true renders an Observation's components as a table.
func shape(el *etree.Element, q url.Values) {
	if el.Tag == "DocumentReference" && q.Get("_summary") == "true" {
		for _, a := range findAll(el, "content/attachment") {
			for _, d := range a.SelectElements("data") {
				a.RemoveChild(d)
			}
		}
	}
	if el.Tag == "Observation" && q.Get("_ExportObservationTables") == "true" {
		observationTable(el)
	}
}

// observationTable appends a table of the components (code, value, unit) to the narrative.
func observationTable(el *etree.Element) {
	comps := el.SelectElements("component")
	div := find(el, "text/div")
	if len(comps) == 0 || div == nil {
		return
	}
	table := div.CreateElement("table")
	head := table.CreateElement("tr")
	for _, h := range []string{"Merkmal", "Wert", "Einheit"} {
		head.CreateElement("th").SetText(h)
	}
	for _, c := range comps {
		row := table.CreateElement("tr")
		row.CreateElement("td").SetText(display(c, "code"))
		val, unit := v(c, "valueQuantity/value"), v(c, "valueQuantity/unit")
		if val == "" {
			val = join(" ", v(c, "valueString"), display(c, "valueCodeableConcept"), v(c, "valueBoolean"), v(c, "valueInteger"), v(c, "valueDateTime"))
		}
		row.CreateElement("td").SetText(val)
		row.CreateElement("td").SetText(unit)
	}
}

// Sealer seals and opens the parameters paging links carry (the vault's barrier).
type Sealer interface {
	SealString(purpose, plaintext string) (string, error)
	OpenString(purpose, sealed string) (string, error)
}

// Unfold replaces the sealed _q of a paging link of a search of typ by the parameters it carries.
func Unfold(sealer Sealer, typ string, query url.Values) (url.Values, error) {
	sealed := query.Get("_q")
	if sealed == "" {
		return query, nil
	}
	plain, err := sealer.OpenString("search:"+typ, sealed)
	if err != nil {
		return nil, fhir.Fail(fhir.CodeValue, "_q", "_q is not a paging link this server wrote for %s", typ)
	}
	inner, err := url.ParseQuery(plain)
	if err != nil {
		return nil, fhir.Fail(fhir.CodeValue, "_q", "_q is not a paging link this server wrote for %s", typ)
	}
	for name, v := range query {
		if name != "_q" {
			inner[name] = v
		}
	}
	return inner, nil
}

func checkParams(typ string, k kind, q url.Values) error {
	var issues fhir.Issues
	for name, vals := range q {
		if _, ok := lookupParam(k, name); !ok && !contains(control, name) && name != "_id" {
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeNotSupported, Expression: echo(name),
				Diagnostics: "unknown search parameter " + fhir.Quote(name) + " for " + typ + "; supported: " + strings.Join(known(k), ", ")})
			continue
		}
		for _, v := range vals {
			if v == "" {
				issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeValue, Expression: name, Diagnostics: name + " needs a value"})
			}
		}
	}
	if from, to := q.Get("from"), q.Get("to"); from != "" && to != "" && len(from) == len(to) && from > to {
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeValue, Expression: "from", Diagnostics: "from lies after to"})
	}
	if len(k.required) > 0 {
		found := false
		for _, r := range k.required {
			found = found || q.Get(r) != ""
		}
		if !found {
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeRequired, Expression: k.required[0],
				Diagnostics: typ + " searches need the patient: " + k.required[0] + "=Patient/{id}"})
		}
	}
	if len(issues) > 0 {
		sort.Slice(issues, func(i, j int) bool { return issues[i].Expression < issues[j].Expression })
		return fhir.Reject(issues)
	}
	return nil
}

// echo is a parameter name the client sent, as the location of an issue: as it is when short and
// plain, else escaped and cut short (fhir.Quote).
func echo(name string) string {
	if len(name) <= fhir.MaxQuoted && strconv.Quote(name) == `"`+name+`"` {
		return name
	}
	return fhir.Quote(name)
}

func known(k kind) []string {
	out := []string{"_count", "_id", "page"}
	for name := range k.params {
		out = append(out, name)
	}
	for name := range commonParams {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Paging reads a search's page (from 1) and page size (_count, def when not given, at most
// maxCount).
func Paging(q url.Values, def int) (page, count int, err error) {
	if page, err = positive(q, "page", 1, 0); err != nil {
		return 0, 0, err
	}
	count, err = positive(q, "_count", def, maxCount)
	return page, count, err
}

// positive reads a whole-number parameter ≥ 1, capped at max when max > 0.
func positive(q url.Values, name string, def, max int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fhir.Fail(fhir.CodeValue, name, "%s must be a whole number from 1", name)
	}
	if max > 0 && n > max {
		n = max
	}
	return n, nil
}

// PageLinks are RED's relative paging links of a search of typ in tenant: page of total
// matches, count per page (def when not asked for); the parameters besides page and _count
// travel sealed in _q, so that no person data appears in a URL red writes.
func PageLinks(sealer Sealer, tenant, typ string, q url.Values, page, count, def, total int) ([]fhir.Link, error) {
	carry := url.Values{}
	for name, v := range q {
		if name != "page" && name != "_count" {
			carry[name] = v
		}
	}
	suffix := ""
	if count != def {
		suffix += "&_count=" + strconv.Itoa(count)
	}
	if len(carry) > 0 {
		sealed, err := sealer.SealString("search:"+typ, carry.Encode())
		if err != nil {
			return nil, err
		}
		suffix += "&_q=" + sealed
	}
	last := (total + count - 1) / count
	if last < 1 {
		last = 1
	}
	at := func(rel string, p int) fhir.Link {
		return fhir.Link{Relation: rel, URL: "/" + tenant + "/" + typ + "?page=" + strconv.Itoa(p) + suffix}
	}
	links := []fhir.Link{at("self", page), at("first", 1)}
	if page > 1 {
		links = append(links, at("previous", min(page-1, last)))
	}
	if page < last {
		links = append(links, at("next", page+1))
	}
	return append(links, at("last", last)), nil
}

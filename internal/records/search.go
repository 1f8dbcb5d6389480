package records

import (
	"context"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/storage"
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
// appears in a URL red writes.
func (s *Service) Search(ctx context.Context, typ string, query url.Values) (fhir.SearchSet, error) {
	k := kinds[typ]
	q, err := s.unfold(typ, query)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	if err := checkParams(typ, k, q); err != nil {
		return fhir.SearchSet{}, err
	}
	page, err := positive(q, "page", 1, 0)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	count, err := positive(q, "_count", k.pageSize, maxCount)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	now := s.now()
	var groups [][][]byte
	type filter struct {
		p param
		v string
	}
	var filters []filter
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if contains(control, name) {
			continue
		}
		if name == "_id" {
			for _, v := range q[name] {
				var g [][]byte
				for _, id := range strings.Split(v, ",") {
					t, err := s.Vault.IDToken(typ, id)
					if err != nil {
						return fhir.SearchSet{}, err
					}
					g = append(g, t)
				}
				groups = append(groups, g)
			}
			continue
		}
		p, _ := lookupParam(k, name)
		if p.lookup == nil { // a parameter that shapes the output
			continue
		}
		for _, v := range q[name] {
			var g [][]byte
			narrowed, exact := true, true
			for _, alt := range strings.Split(v, ",") {
				vals, ex, err := p.lookup(alt, now)
				if err != nil {
					return fhir.SearchSet{}, err
				}
				if vals == nil {
					narrowed = false
				}
				exact = exact && ex
				for _, iv := range vals {
					t, err := s.Vault.Token(p.index, iv)
					if err != nil {
						return fhir.SearchSet{}, err
					}
					g = append(g, t)
				}
			}
			if narrowed {
				groups = append(groups, g)
			}
			if !exact {
				filters = append(filters, filter{p, v})
			}
		}
	}

	set := fhir.SearchSet{ID: newID(), Updated: now}
	var recs []storage.Record
	var opened []*etree.Element
	if len(filters) == 0 {
		res, err := s.Store.Find(ctx, s.Tenant, storage.Query{Type: typ, All: groups, Offset: (page - 1) * count, Limit: count})
		if err != nil {
			return fhir.SearchSet{}, err
		}
		set.Total, recs = res.Total, res.Records
		for _, rec := range recs {
			el, err := s.open(rec)
			if err != nil {
				return fhir.SearchSet{}, err
			}
			opened = append(opened, el)
		}
	} else {
		// the exact predicates run on plaintext: open every candidate, then page
		res, err := s.Store.Find(ctx, s.Tenant, storage.Query{Type: typ, All: groups})
		if err != nil {
			return fhir.SearchSet{}, err
		}
		skip := (page - 1) * count
	candidates:
		for _, rec := range res.Records {
			el, err := s.open(rec)
			if err != nil {
				return fhir.SearchSet{}, err
			}
			for _, f := range filters {
				ok := false
				for _, alt := range strings.Split(f.v, ",") {
					if f.p.match(el, alt, q, now) {
						ok = true
						break
					}
				}
				if !ok {
					continue candidates
				}
			}
			set.Total++
			if set.Total > skip && len(opened) < count {
				opened = append(opened, el)
			}
		}
	}
	for _, el := range opened {
		shape(el, q)
		set.Entries = append(set.Entries, fhir.Entry{FullURL: "/" + typ + "/" + fhir.ChildValue(el, "id"), Resource: el})
	}
	set.Links, err = s.links(typ, q, page, count, k.pageSize, set.Total)
	return set, err
}

// shape applies the output parameters: _summary=true leaves DocumentReference content out
// (metadata only); _ExportObservationTables=true renders an Observation's components as a table.
func shape(el *etree.Element, q url.Values) {
	if el.Tag == "DocumentReference" && q.Get("_summary") == "true" {
		for _, a := range el.FindElements("content/attachment") {
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
	div := el.FindElement("text/div")
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

// unfold replaces a sealed _q by the parameters it carries.
func (s *Service) unfold(typ string, query url.Values) (url.Values, error) {
	sealed := query.Get("_q")
	if sealed == "" {
		return query, nil
	}
	plain, err := s.Vault.OpenString("search:"+typ, sealed)
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
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeNotSupported, Expression: name,
				Diagnostics: "unknown search parameter " + strconv.Quote(name) + " for " + typ + "; supported: " + strings.Join(known(k), ", ")})
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

// links builds RED's relative paging links.
func (s *Service) links(typ string, q url.Values, page, count, def, total int) ([]fhir.Link, error) {
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
		sealed, err := s.Vault.SealString("search:"+typ, carry.Encode())
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
		return fhir.Link{Relation: rel, URL: "/" + s.Tenant + "/" + typ + "?page=" + strconv.Itoa(p) + suffix}
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

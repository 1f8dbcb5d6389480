package records

import (
	"context"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/storage"
)

// maxCount caps _count.
const maxCount = 100

// common parameters every searchable type takes besides its own.
var common = []string{"page", "_count", "_id", "_q"}

// Search answers GET /{tenant}/{Type}?… in RED's searchset shape. Paging links carry the search's
// parameters sealed in _q, so no person data appears in a URL red writes.
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
	var groups [][][]byte
	for _, v := range q["_id"] {
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
	for name, p := range k.params {
		for _, v := range q[name] {
			var g [][]byte
			for _, alt := range strings.Split(v, ",") {
				for _, iv := range p.lookup(alt) {
					t, err := s.Vault.Token(p.index, iv)
					if err != nil {
						return fhir.SearchSet{}, err
					}
					g = append(g, t)
				}
			}
			groups = append(groups, g)
		}
	}
	res, err := s.Store.Find(ctx, s.Tenant, storage.Query{Type: typ, All: groups, Offset: (page - 1) * count, Limit: count})
	if err != nil {
		return fhir.SearchSet{}, err
	}
	set := fhir.SearchSet{ID: newID(), Updated: s.now(), Total: res.Total}
	for _, rec := range res.Records {
		el, err := s.open(rec)
		if err != nil {
			return fhir.SearchSet{}, err
		}
		set.Entries = append(set.Entries, fhir.Entry{FullURL: "/" + typ + "/" + fhir.ChildValue(el, "id"), Resource: el})
	}
	set.Links, err = s.links(typ, q, page, count, k.pageSize, res.Total)
	return set, err
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
	for name := range q {
		if _, ok := k.params[name]; ok || contains(common, name) {
			continue
		}
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeNotSupported, Expression: name,
			Diagnostics: "unknown search parameter " + strconv.Quote(name) + " for " + typ + "; supported: " + strings.Join(known(k), ", ")})
	}
	if len(issues) > 0 {
		sort.Slice(issues, func(i, j int) bool { return issues[i].Expression < issues[j].Expression })
		return fhir.Reject(issues)
	}
	return nil
}

func known(k kind) []string {
	out := append([]string(nil), common[:3]...)
	for name := range k.params {
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
		prev := page - 1
		if prev > last {
			prev = last
		}
		links = append(links, at("previous", prev))
	}
	if page < last {
		links = append(links, at("next", page+1))
	}
	return append(links, at("last", last)), nil
}

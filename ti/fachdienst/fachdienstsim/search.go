package fachdienstsim

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// defaultPageSize is the Fachdienst's page size for searches.
const defaultPageSize = 50

// today is the current date in Germany, YYYY-MM-DD.
func (s *Simulator) today() string { return s.cfg.Now().In(s.berlin).Format(time.DateOnly) }

// dayStart is midnight in Germany at the start of a YYYY-MM-DD date (the zero time if invalid).
func (s *Simulator) dayStart(date string) time.Time {
	d, err := time.ParseInLocation(time.DateOnly, date, s.berlin)
	if err != nil {
		return time.Time{}
	}
	return d
}

// germanDate writes YYYY-MM-DD as dd.mm.yyyy.
func germanDate(date string) string {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return date
	}
	return d.Format("02.01.2006")
}

// dateFilter reads a FHIR date search value with an optional prefix (eq, ne, gt, lt, ge, le, sa,
// eb) and returns a predicate on instants. A date covers its whole day in Germany; a dateTime
// covers its second.
func (s *Simulator) dateFilter(v string) (func(time.Time) bool, error) {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' && v[1] >= 'a' && v[1] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	var lo, hi time.Time
	switch {
	case len(v) == len(time.DateOnly):
		d, err := time.ParseInLocation(time.DateOnly, v, s.berlin)
		if err != nil {
			return nil, errors.New("expected YYYY-MM-DD or an instant")
		}
		lo, hi = d, d.AddDate(0, 0, 1)
	default:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			if t, err = time.ParseInLocation("2006-01-02T15:04:05", v, s.berlin); err != nil {
				return nil, errors.New("expected YYYY-MM-DD or an instant")
			}
		}
		lo, hi = t.Truncate(time.Second), t.Truncate(time.Second).Add(time.Second)
	}
	switch prefix {
	case "eq":
		return func(t time.Time) bool { return !t.Before(lo) && t.Before(hi) }, nil
	case "ne":
		return func(t time.Time) bool { return t.Before(lo) || !t.Before(hi) }, nil
	case "gt", "sa":
		return func(t time.Time) bool { return !t.Before(hi) }, nil
	case "ge":
		return func(t time.Time) bool { return !t.Before(lo) }, nil
	case "lt", "eb":
		return func(t time.Time) bool { return t.Before(lo) }, nil
	case "le":
		return func(t time.Time) bool { return t.Before(hi) }, nil
	}
	return nil, errors.New("unknown prefix " + prefix)
}

// paginate reads _count and __offset and returns the slice bounds and the paging links
// (relation, url) for n results.
func paginate(n int, q url.Values, self string) ([2]int, [][2]string, error) {
	count := defaultPageSize
	if c := q.Get("_count"); c != "" {
		v, err := strconv.Atoi(c)
		if err != nil || v < 1 {
			return [2]int{}, nil, failDiag(http.StatusBadRequest, "Invalid search parameter _count", "a positive number is expected")
		}
		count = min(v, defaultPageSize)
	}
	offset := 0
	if o := q.Get("__offset"); o != "" {
		v, err := strconv.Atoi(o)
		if err != nil || v < 0 {
			return [2]int{}, nil, failDiag(http.StatusBadRequest, "Invalid search parameter __offset", "a number ≥ 0 is expected")
		}
		offset = v
	}
	from := min(offset, n)
	to := min(from+count, n)
	pageURL := func(off int) string {
		p := url.Values{}
		for k, vs := range q {
			if k != "__offset" && k != "_count" {
				p[k] = vs
			}
		}
		p.Set("_count", strconv.Itoa(count))
		if off > 0 {
			p.Set("__offset", strconv.Itoa(off))
		}
		return self + "?" + strings.ReplaceAll(p.Encode(), "%2C", ",")
	}
	links := [][2]string{{"self", pageURL(offset)}}
	if from > 0 {
		links = append(links, [2]string{"first", pageURL(0)}, [2]string{"prev", pageURL(max(0, from-count))})
	}
	if to < n {
		links = append(links, [2]string{"next", pageURL(to)})
	}
	return [2]int{from, to}, links, nil
}

// sortResults orders search results by key, then by id, from the last when desc.
func sortResults[T any](results []T, desc bool, key func(a, b T) int, id func(T) string) {
	slices.SortFunc(results, func(a, b T) int {
		c := key(a, b)
		if c == 0 {
			c = strings.Compare(id(a), id(b))
		}
		if desc {
			return -c
		}
		return c
	})
}

// searchset starts the searchset Bundle of a search with n results at the instant at, with the
// paging links of paginate.
func (s *Simulator) searchset(n int, links [][2]string, at time.Time) (*etree.Element, error) {
	id, err := s.uuid()
	if err != nil {
		return nil, err
	}
	b := bundle(id, "searchset", at, "")
	for _, l := range links {
		link(b, l[0], l[1])
	}
	setTotal(b, n)
	return b, nil
}

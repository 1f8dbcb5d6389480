package erp

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/redclone/red/internal/vault"
)

// PageSize is how many Tasks one page of the polling holds (RED: at most 10).
const PageSize = 10

// The granularities of the time tokens an activated prescription is indexed by, coarsest first:
// a range of minutes is covered by few tokens (whole years, months, days and hours, and the
// minutes at its ends), so the store finds exactly the Tasks of a range, counted and paged,
// without opening any other.
var units = []struct {
	layout  string
	aligned func(t time.Time) bool
	next    func(t time.Time) time.Time
}{
	{"2006", func(t time.Time) bool { return t.Month() == 1 && t.Day() == 1 && t.Hour() == 0 && t.Minute() == 0 },
		func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
	{"200601", func(t time.Time) bool { return t.Day() == 1 && t.Hour() == 0 && t.Minute() == 0 },
		func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
	{"20060102", func(t time.Time) bool { return t.Hour() == 0 && t.Minute() == 0 },
		func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
	{"2006010215", func(t time.Time) bool { return t.Minute() == 0 },
		func(t time.Time) time.Time { return t.Add(time.Hour) }},
	{"200601021504", func(time.Time) bool { return true },
		func(t time.Time) time.Time { return t.Add(time.Minute) }},
}

// timeTokens are the tokens of the minute t (in Germany) at every granularity.
func timeTokens(t time.Time) []string {
	t = t.In(Berlin)
	out := make([]string, len(units))
	for i, u := range units {
		out[i] = t.Format(u.layout)
	}
	return out
}

// cover is the fewest tokens whose minutes are exactly from lo to hi, both included (in
// Germany, whole minutes). Days are calendar days: one that is 23 or 25 hours long (daylight
// saving) is one token all the same.
func cover(lo, hi time.Time) []string {
	lo = lo.In(Berlin).Truncate(time.Minute)
	hi = hi.In(Berlin).Truncate(time.Minute)
	var out []string
	for cur := lo; !cur.After(hi); {
		for _, u := range units {
			if end := u.next(cur); u.aligned(cur) && !end.After(hi.Add(time.Minute)) {
				out = append(out, cur.Format(u.layout))
				cur = end
				break
			}
		}
	}
	return out
}

// disjoint tells whether no Task carries two of the tokens of a cover: a Task's tokens are the
// prefixes of its minute's, so two tokens share Tasks when one is a prefix of the other. Only a
// cover over the hour that repeats when daylight saving time ends has such tokens (the hour's
// and its minutes', which name both of its passes).
func disjoint(toks []string) bool {
	sorted := slices.Sorted(slices.Values(toks))
	for i := 1; i < len(sorted); i++ {
		if strings.HasPrefix(sorted[i], sorted[i-1]) {
			return false
		}
	}
	return true
}

// earliest is where a polling range without lower bound starts: before red existed.
var earliest = time.Date(2020, 1, 1, 0, 0, 0, 0, Berlin)

// Tasks lists the activated (or since cancelled) prescriptions whose activation lies from from to to (both included,
// whole minutes; a zero bound is open), page by page (1-based, PageSize each), with their number
// in all. The order is the store's stable one.
func (s *Service) Tasks(ctx context.Context, from, to time.Time, page int) ([]Prescription, int, error) {
	if from.IsZero() {
		from = earliest
	}
	if to.IsZero() {
		to = s.now()
	}
	if page < 1 {
		page = 1
	}
	toks := cover(from, to)
	if len(toks) == 0 {
		return nil, 0, nil
	}
	terms := make([]vault.Term, len(toks))
	for i, tok := range toks {
		terms[i] = vault.Term{Index: "at", Value: tok}
	}
	res, err := s.Store.Find(ctx, vault.Query{Type: recordType, All: [][]vault.Term{terms}, Disjoint: disjoint(toks),
		Offset: (page - 1) * PageSize, Limit: PageSize})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Prescription, 0, len(res.Resources))
	for _, r := range res.Resources {
		p, err := decode(r)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, p)
	}
	return out, res.Total, nil
}

package records

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/beevik/etree"
	"golang.org/x/text/unicode/norm"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/fhir/kbv"
)

// param is one search parameter.
//   - values lists the blind-index values of a resource (nil for parameters that only filter);
//   - lookup turns one query value into the index values any of which a match carries; exact says
//     that carrying one is proof of a match, so no check on plaintext is needed. A nil list with
//     exact false means the index cannot narrow this query;
//   - match is the exact predicate on plaintext, used when lookup is not exact.
type param struct {
	kind   string // FHIR search parameter type: token, reference, string, date, special
	index  string
	values func(res *etree.Element) []string
	lookup func(q string, now time.Time) (vals []string, exact bool, err error)
	match  func(res *etree.Element, q string, query url.Values, now time.Time) bool
}

func badValue(name, format string, args ...any) error {
	return fhir.Fail(fhir.CodeValue, name, format, args...)
}

// identifierParam indexes system|value pairs so that `value`, `system|value`, `|value` and
// `system|` queries each need one token.
func identifierParam(index string, paths ...string) param {
	if len(paths) == 0 {
		paths = []string{"identifier"}
	}
	return param{
		kind:  "token",
		index: index,
		values: func(res *etree.Element) []string {
			var out []string
			for _, p := range paths {
				for _, id := range findAll(res, p) {
					sys, val := ident.Canonical(fhir.ChildValue(id, "system")), fhir.ChildValue(id, "value")
					if val == "" {
						continue
					}
					out = append(out, sys+"|"+val, "*|"+val)
					if sys != "" {
						out = append(out, sys+"|*")
					}
				}
			}
			return out
		},
		lookup: func(q string, _ time.Time) ([]string, bool, error) {
			if sys, val, ok := strings.Cut(q, "|"); ok {
				sys = ident.Canonical(sys)
				if val == "" {
					return []string{sys + "|*"}, true, nil
				}
				return []string{sys + "|" + val}, true, nil
			}
			return []string{"*|" + q}, true, nil
		},
	}
}

// codeParam indexes codes (system|code and code) found at the given CodeableConcept/Coding or
// code paths.
func codeParam(index string, paths ...string) param {
	p := identifierParam(index)
	p.values = func(res *etree.Element) []string {
		var out []string
		for _, path := range paths {
			for _, e := range findAll(res, path) {
				if v := fhir.Value(e); v != "" { // a plain code element
					out = append(out, "|"+v, "*|"+v)
					continue
				}
				for _, c := range append(e.SelectElements("coding"), e) {
					sys, code := fhir.ChildValue(c, "system"), fhir.ChildValue(c, "code")
					if code != "" {
						out = append(out, sys+"|"+code, "*|"+code)
					}
				}
			}
		}
		return out
	}
	return p
}

// refParam indexes references under paths; a query is "Type/id" or a bare id of target.
func refParam(index, target string, paths ...string) param {
	return param{
		kind:   "reference",
		index:  index,
		values: func(res *etree.Element) []string { return refValues(res, paths...) },
		lookup: func(q string, _ time.Time) ([]string, bool, error) {
			if !strings.Contains(q, "/") {
				q = target + "/" + q
			}
			typ, id, ok := localRef(q)
			if !ok {
				return nil, false, badValue(index, "a reference is written Type/id, e.g. %s/6006", target)
			}
			return []string{typ + "/" + id}, true, nil
		},
	}
}

// fold lower-cases s and strips accents, so that "Müller", "MULLER" and "muller" compare equal;
// ß becomes ss.
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == 'ß':
			b.WriteString("ss")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Prefix tokens cover word prefixes of minPrefix to maxPrefix characters; shorter queries cannot
// be narrowed by the index and longer ones are narrowed by their first maxPrefix characters.
const minPrefix, maxPrefix = 3, 12

func words(s string) []string {
	return strings.FieldsFunc(fold(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func prefix(w string, n int) string {
	r := []rune(w)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

// nameField is one part of a name that string searches look at, with the code that marks its
// words in the shared blind index (family "f", given "g", …).
type nameField struct {
	code    string
	extract func(res *etree.Element) []string
}

// nameParams are string searches (FHIR: case- and accent-insensitive prefix) over the words of
// a resource's name parts. All of them share one blind index that holds each word's prefixes once,
// marked with the part they come from: the first returned parameter searches every part (name),
// the others one part each (family, given, …).
func nameParams(index string, fields ...nameField) []param {
	all := make([]param, 0, len(fields)+1)
	all = append(all, nameSearch(index, fields, true))
	for _, f := range fields {
		all = append(all, nameSearch(index, []nameField{f}, false))
	}
	return all
}

func nameSearch(index string, fields []nameField, indexes bool) param {
	p := param{
		kind:  "string",
		index: index,
		lookup: func(q string, _ time.Time) ([]string, bool, error) {
			ws := words(q)
			if len(ws) != 1 {
				return nil, false, nil
			}
			n := len([]rune(ws[0]))
			if n < minPrefix {
				return nil, false, nil
			}
			var out []string
			for _, f := range fields {
				out = append(out, f.code+":"+prefix(ws[0], maxPrefix))
			}
			return out, n <= maxPrefix, nil
		},
		match: func(res *etree.Element, q string, _ url.Values, _ time.Time) bool {
			want := strings.Join(words(q), " ")
			for _, f := range fields {
				for _, t := range f.extract(res) {
					ws := words(t)
					for i := range ws {
						if strings.HasPrefix(strings.Join(ws[i:], " "), want) {
							return true
						}
					}
				}
			}
			return false
		},
	}
	if indexes { // only one parameter of the family writes the tokens
		p.values = func(res *etree.Element) []string {
			seen := map[string]bool{}
			var out []string
			for _, f := range fields {
				for _, t := range f.extract(res) {
					for _, w := range words(t) {
						r := []rune(w)
						for n := minPrefix; n <= len(r) && n <= maxPrefix; n++ {
							if v := f.code + ":" + string(r[:n]); !seen[v] {
								seen[v] = true
								out = append(out, v)
							}
						}
					}
				}
			}
			return out
		}
	}
	return p
}

func texts(paths ...string) func(res *etree.Element) []string {
	return func(res *etree.Element) []string {
		var out []string
		for _, p := range paths {
			for _, e := range findAll(res, p) {
				if v := fhir.Value(e); v != "" {
					out = append(out, v)
				}
			}
		}
		return out
	}
}

// dateParam is a FHIR date search with prefixes eq, ne, lt, gt, le, ge (and sa/eb as gt/lt) over
// the date found at path; the index holds the year and the full value.
func dateParam(index, path string) param {
	get := func(res *etree.Element) string { return fhir.Value(find(res, path)) }
	return param{
		kind:  "date",
		index: index,
		values: func(res *etree.Element) []string {
			v := get(res)
			if len(v) < 4 {
				return nil
			}
			return []string{"y:" + v[:4], "d:" + v}
		},
		lookup: func(q string, now time.Time) ([]string, bool, error) {
			op, lo, hi, err := dateQuery(index, q)
			if err != nil {
				return nil, false, err
			}
			switch op {
			case "eq":
				if raw := strings.TrimPrefix(q, "eq"); len(raw) == 4 || len(raw) == 10 {
					return []string{"y:" + raw[:4]}, len(raw) == 4, nil
				}
				return []string{"y:" + lo.Format("2006")}, false, nil
			case "ne":
				return nil, false, nil
			}
			from, to := 1850, now.Year()+1
			switch op {
			case "lt", "le", "eb":
				to = hi.Year()
			case "gt", "ge", "sa":
				from = lo.Year()
			}
			var out []string
			for y := from; y <= to && y-from < 400; y++ {
				out = append(out, "y:"+strconv.Itoa(y))
			}
			return out, false, nil
		},
		match: func(res *etree.Element, q string, _ url.Values, _ time.Time) bool {
			op, lo, hi, err := dateQuery(index, q)
			if err != nil {
				return false
			}
			rlo, rhi, ok := dateRange(get(res))
			if !ok {
				return false
			}
			return compareRanges(op, rlo, rhi, lo, hi)
		},
	}
}

// dateQuery splits a date search value into its prefix and the instant range it names.
func dateQuery(name, q string) (op string, lo, hi time.Time, err error) {
	op = "eq"
	if len(q) > 2 && q[0] >= 'a' && q[0] <= 'z' {
		op, q = q[:2], q[2:]
	}
	switch op {
	case "eq", "ne", "lt", "gt", "le", "ge", "sa", "eb":
	default:
		return "", lo, hi, badValue(name, "%s takes a prefix eq, ne, lt, gt, le, ge, sa or eb before the date", name)
	}
	lo, hi, ok := dateRange(q)
	if !ok {
		return "", lo, hi, badValue(name, "%s takes a date YYYY, YYYY-MM, YYYY-MM-DD or a date-time", name)
	}
	return op, lo, hi, nil
}

// dateRange is the half-open instant range a FHIR date or dateTime covers.
func dateRange(v string) (lo, hi time.Time, ok bool) {
	t, err := kbv.ParseDate(v)
	if err != nil {
		return lo, hi, false
	}
	switch len(v) {
	case 4:
		return t, t.AddDate(1, 0, 0), true
	case 7:
		return t, t.AddDate(0, 1, 0), true
	case 10:
		return t, t.AddDate(0, 0, 1), true
	}
	return t, t.Add(time.Second), true
}

// DateQuery is a FHIR date search value: its prefix and the instant range its date covers.
type DateQuery struct {
	Op     string    // eq, ne, lt, gt, le, ge, sa, eb
	Lo, Hi time.Time // [Lo, Hi)
}

// ParseDateQuery reads the value q of the date search parameter name.
func ParseDateQuery(name, q string) (DateQuery, error) {
	op, lo, hi, err := dateQuery(name, q)
	return DateQuery{Op: op, Lo: lo, Hi: hi}, err
}

// Matches reports whether the instant t satisfies d.
func (d DateQuery) Matches(t time.Time) bool {
	return compareRanges(d.Op, t, t.Add(time.Nanosecond), d.Lo, d.Hi)
}

// compareRanges applies a FHIR date prefix to a resource's range [rlo, rhi) and the query's [lo, hi).
func compareRanges(op string, rlo, rhi, lo, hi time.Time) bool {
	switch op {
	case "eq":
		return !rlo.Before(lo) && !rhi.After(hi)
	case "ne":
		return rlo.Before(lo) || rhi.After(hi)
	case "lt", "eb":
		return rlo.Before(lo)
	case "gt", "sa":
		return rhi.After(hi)
	case "le":
		return rlo.Before(hi)
	case "ge":
		return rhi.After(lo)
	}
	return false
}

// lastUpdatedParam filters on meta.lastUpdated.
func lastUpdatedParam() param {
	p := dateParam("_lastUpdated", "meta/lastUpdated")
	p.values = nil
	p.lookup = func(q string, _ time.Time) ([]string, bool, error) {
		_, _, _, err := dateQuery("_lastUpdated", q)
		return nil, false, err
	}
	return p
}

// compactDate reads RED's YYYYMMDD (and YYYYMMDDHHmm) parameter values as German local time.
func compactDate(name, v string) (time.Time, error) {
	for _, layout := range []string{"20060102", "200601021504"} {
		if len(v) == len(layout) {
			if t, err := time.ParseInLocation(layout, v, berlin); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, badValue(name, "%s is a date written YYYYMMDD", name)
}

// periodParam is RED's from/to pair over a Period at path: a resource matches when its period
// overlaps [from, to]. With quarters set, from and to widen to whole calendar quarters and from
// alone runs until today (RED's Coverage rule).
func periodParam(name, path string, quarters bool) param {
	bounds := func(query url.Values, now time.Time) (lo, hi time.Time, err error) {
		lo, hi = time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		if v := query.Get("from"); v != "" {
			if lo, err = compactDate("from", v); err != nil {
				return
			}
			if quarters {
				lo = time.Date(lo.Year(), time.Month((int(lo.Month())-1)/3*3+1), 1, 0, 0, 0, 0, lo.Location())
				if query.Get("to") == "" {
					hi = now
				}
			}
		}
		if v := query.Get("to"); v != "" {
			var t time.Time
			if t, err = compactDate("to", v); err != nil {
				return
			}
			hi = t.AddDate(0, 0, 1)
			if len(v) == 12 {
				hi = t.Add(time.Minute)
			}
			if quarters {
				hi = time.Date(t.Year(), time.Month((int(t.Month())-1)/3*3+4), 1, 0, 0, 0, 0, t.Location())
			}
		}
		return
	}
	return param{
		kind:  "date",
		index: name,
		lookup: func(q string, now time.Time) ([]string, bool, error) {
			_, err := compactDate(name, q)
			return nil, false, err
		},
		match: func(res *etree.Element, _ string, query url.Values, now time.Time) bool {
			lo, hi, err := bounds(query, now)
			if err != nil {
				return false
			}
			per := find(res, path)
			start, end := fhir.ChildValue(per, "start"), fhir.ChildValue(per, "end")
			if per != nil && per.SelectAttr("value") != nil { // a plain dateTime
				start, end = fhir.Value(per), fhir.Value(per)
			}
			rlo, rhi := time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			if s, _, ok := dateRange(start); ok {
				rlo = s
			}
			if _, e, ok := dateRange(end); ok {
				rhi = e
			}
			return rlo.Before(hi) && rhi.After(lo)
		},
	}
}

// flagParam is an output switch taking true or false; it selects nothing.
func flagParam(name string) param {
	return param{kind: "special", index: name, lookup: func(q string, _ time.Time) ([]string, bool, error) {
		if q != "true" && q != "false" {
			return nil, false, badValue(name, "%s is true or false", name)
		}
		return nil, true, nil
	}}
}

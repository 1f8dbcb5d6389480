package kbv

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// MaxLen reports a value longer than n characters (not bytes): a text limit of the KBV's forms
// (KBV_PR_FOR_*) and the KVDT. An error for a resource the profile tables did not check (the forms'
// profiles are not among them); plausibility for one they checked against its AWS profile, which
// states the limits it has itself.
func (c *Cursor) MaxLen(n int) {
	if v := c.Value(); utf8.RuneCountInString(v) > n {
		sev := fhir.SeverityError
		if c.rep.profiled {
			sev = c.rep.plausibility()
		}
		c.rep.add(fhir.CodeValue, sev, c.Path(), "at most %d characters are allowed, found %d", n, utf8.RuneCountInString(v))
	}
}

// NotEmpty reports a present element whose value is empty (FHIR core: a value is never empty) or
// only blanks (plausibility).
func (c *Cursor) NotEmpty() {
	switch {
	case !c.Exists():
	case c.Value() == "":
		c.Errorf(fhir.CodeRequired, "a value is required")
	case strings.TrimSpace(c.Value()) == "":
		c.Warnf(fhir.CodeRequired, "the value is only blanks")
	}
}

// CodeSet is a code system's allowed codes.
type CodeSet map[string]bool

func codes(list ...string) CodeSet {
	s := make(CodeSet, len(list))
	for _, c := range list {
		s[c] = true
	}
	return s
}

// Coding checks a Coding bound (required) to system with the allowed codes: system and code must be
// present and the code must be in the set.
func (c *Cursor) Coding(system string, allowed CodeSet) {
	if !c.Exists() {
		return
	}
	c.Require("system", "code")
	sys, code := c.One("system"), c.One("code")
	if sys.Exists() && sys.Value() != system {
		sys.Errorf(fhir.CodeValue, "the code system must be %s", system)
		return
	}
	if code.Exists() && allowed != nil && !allowed[code.Value()] {
		code.Errorf(fhir.CodeValue, "code %q is not in %s", code.Value(), system)
	}
}

// ValueCoding checks an extension's valueCoding against a code system.
func (c *Cursor) ValueCoding(system string, allowed CodeSet) {
	if !c.Exists() {
		return
	}
	v := c.One("valueCoding")
	if !v.Exists() {
		c.Errorf(fhir.CodeRequired, "valueCoding is required")
		return
	}
	v.Coding(system, allowed)
}

// Identifier checks an identifier's value with the check for its system (format and check digit).
func (c *Cursor) Identifier() {
	if !c.Exists() {
		return
	}
	sys, val := c.One("system"), c.One("value")
	if !val.Exists() {
		c.Require("value")
		return
	}
	if err := ident.Check(sys.Value(), val.Value()); err != nil {
		val.Number(err)
	}
}

// isDate reports whether v is written as a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, month 01–12,
// day 01–31 (without a regular expression: dates are checked on every resource).
func isDate(v string) bool {
	switch {
	case len(v) < 4 || !digits(v[:4]):
		return false
	case len(v) == 4:
		return true
	case len(v) < 7 || v[4] != '-' || !inRange(v[5:7], 1, 12):
		return false
	case len(v) == 7:
		return true
	}
	return len(v) == 10 && v[7] == '-' && inRange(v[8:10], 1, 31)
}

// isDateTime reports whether v is written as a FHIR dateTime (as RED sends it):
// a date, or YYYY-MM-DDThh:mm with optional :ss and fraction and an optional zone Z, ±hh:mm or
// ±hhmm up to 14:00.
func isDateTime(v string) bool {
	if len(v) <= 10 {
		return isDate(v)
	}
	if !isDate(v[:10]) || len(v) < 16 || v[10] != 'T' || !inRange(v[11:13], 0, 23) || v[13] != ':' || !inRange(v[14:16], 0, 59) {
		return false
	}
	rest := v[16:]
	if len(rest) >= 3 && rest[0] == ':' {
		if !inRange(rest[1:3], 0, 59) {
			return false
		}
		rest = rest[3:]
		if len(rest) > 0 && rest[0] == '.' {
			n := 1
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if n == 1 {
				return false
			}
			rest = rest[n:]
		}
	}
	switch {
	case rest == "" || rest == "Z":
		return true
	case rest[0] != '+' && rest[0] != '-':
		return false
	}
	hh, mm, ok := "", "", false
	switch len(rest) {
	case 6:
		hh, mm, ok = rest[1:3], rest[4:6], rest[3] == ':'
	case 5:
		hh, mm, ok = rest[1:3], rest[3:5], true
	}
	return ok && (inRange(hh, 0, 13) && inRange(mm, 0, 59) || hh == "14" && mm == "00")
}

// digits reports whether s is all ASCII digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// inRange reports whether s is two digits between lo and hi.
func inRange(s string, lo, hi int) bool {
	if len(s) != 2 || !digits(s) {
		return false
	}
	n := int(s[0]-'0')*10 + int(s[1]-'0')
	return n >= lo && n <= hi
}

// Date parses a FHIR date or dateTime (RED also sends offsets without a colon, "+0200"). It
// returns the earliest instant the value can mean and whether it parsed; a bad value is reported.
func (c *Cursor) Date(dateOnly bool) (time.Time, bool) {
	if !c.Exists() {
		return time.Time{}, false
	}
	v := c.Value()
	ok := isDate(v) || (!dateOnly && isDateTime(v))
	t, err := ParseDate(v)
	if !ok || err != nil {
		if dateOnly {
			c.Errorf(fhir.CodeValue, "a date is written YYYY, YYYY-MM or YYYY-MM-DD and must exist in the calendar")
		} else {
			c.Errorf(fhir.CodeValue, "a date-time is written YYYY-MM-DDThh:mm:ss with a time zone and must exist in the calendar")
		}
		return time.Time{}, false
	}
	return t, true
}

// NotFuture reports a date after now (plausibility: a warning, an error in strict mode). A date
// without time is compared with today's date in Germany; a date-time without zone gets the widest
// zone's slack.
func (c *Cursor) NotFuture(dateOnly bool) {
	t, ok := c.Date(dateOnly)
	if !ok {
		return
	}
	v := c.Value()
	switch {
	case !strings.Contains(v, "T"):
		today := c.rep.now.In(berlin).Format("2006-01-02")
		if v[:min(len(v), 10)] > today[:min(len(v), 10)] {
			c.Warnf(fhir.CodeValue, "the date lies in the future")
		}
	case !hasZone(v):
		if t.After(c.rep.now.Add(14 * time.Hour)) {
			c.Warnf(fhir.CodeValue, "the date lies in the future")
		}
	case t.After(c.rep.now):
		c.Warnf(fhir.CodeValue, "the date lies in the future")
	}
}

func hasZone(v string) bool {
	i := strings.IndexByte(v, 'T')
	return i >= 0 && strings.ContainsAny(v[i:], "Z+-")
}

var berlin = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Berlin"); err == nil {
		return l
	}
	return time.FixedZone("CET", 3600)
}()

// Period checks a Period: both ends well-formed and the start not after the end (the FHIR core
// invariant per-1; until the profile tables cover FHIR core). Where one end is a date without
// time, the calendar dates as written are compared.
func (c *Cursor) Period() {
	if !c.Exists() {
		return
	}
	start, end := c.One("start"), c.One("end")
	s, sok := start.Date(false)
	e, eok := end.Date(false)
	if !sok || !eok {
		return
	}
	sv, ev := start.Value(), end.Value()
	late := s.After(e)
	if !strings.Contains(sv, "T") || !strings.Contains(ev, "T") {
		n := min(len(sv), len(ev), 10)
		late = sv[:n] > ev[:n]
	}
	if late {
		c.Errorf(fhir.CodeInvariant, "the period starts after it ends")
	}
}

// dateTimeLayouts are the dateTime layouts ParseDate tries, the usual ones first.
var dateTimeLayouts = []string{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05",
	"2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04", "2006-01-02T15:04Z07:00",
	"2006-01-02T15:04Z0700"}

// ParseDate reads a FHIR date or dateTime value, tolerating "+0200" offsets.
func ParseDate(v string) (time.Time, error) {
	// A date has one layout; a value matches at most the layouts that read it alike, so the likely
	// ones go first.
	switch len(v) {
	case 4:
		return time.Parse("2006", v)
	case 7:
		return time.Parse("2006-01", v)
	case 10:
		return time.Parse("2006-01-02", v)
	}
	var err error
	for _, l := range dateTimeLayouts {
		var t time.Time
		if t, err = time.Parse(l, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

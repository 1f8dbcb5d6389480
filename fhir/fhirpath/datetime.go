package fhirpath

import (
	"regexp"
	"strconv"
	"time"
)

// Precision levels of a date/time value: how many of its fields are given.
const (
	precYear = iota + 1
	precMonth
	precDay
	precHour
	precMinute
	precSecond // seconds with or without a fraction
)

// dateTime is a FHIRPath Date, DateTime or Time with the precision it was written with.
type dateTime struct {
	isTime bool   // a Time (@T10:00): fields from the hour on
	f      [7]int // year, month, day, hour, minute, second, nanosecond
	prec   int    // last given field (precYear … precSecond)
	tz     bool   // an offset was given
	offset int    // seconds east of UTC
	text   string // as written, without @
}

var (
	dateTimeRe = regexp.MustCompile(`^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$`)
	timeRe     = regexp.MustCompile(`^(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?$`)
)

// parseDateTime reads a FHIR date or dateTime (or a FHIRPath literal without @; a
// trailing T as in @2015-02-04T is allowed).
func parseDateTime(s string) (*dateTime, bool) {
	m := dateTimeRe.FindStringSubmatch(trimT(s))
	if m == nil {
		return nil, false
	}
	d := &dateTime{text: s}
	for i, g := range m[1:7] {
		if g == "" {
			break
		}
		d.f[i], _ = strconv.Atoi(g)
		d.prec = i + 1
	}
	if m[7] != "" {
		d.f[6] = nanos(m[7])
	}
	if z := m[8]; z != "" {
		d.tz = true
		if z != "Z" {
			h, _ := strconv.Atoi(z[1:3])
			mi, _ := strconv.Atoi(z[4:6])
			d.offset = (h*60 + mi) * 60
			if z[0] == '-' {
				d.offset = -d.offset
			}
		}
	}
	if d.prec >= precMonth && (d.f[1] < 1 || d.f[1] > 12) || d.prec >= precDay && (d.f[2] < 1 || d.f[2] > 31) {
		return nil, false
	}
	return d, true
}

func trimT(s string) string {
	if len(s) > 0 && s[len(s)-1] == 'T' {
		return s[:len(s)-1]
	}
	return s
}

// parseTime reads a FHIR time or a FHIRPath time literal (without the @T).
func parseTime(s string) (*dateTime, bool) {
	m := timeRe.FindStringSubmatch(s)
	if m == nil {
		return nil, false
	}
	d := &dateTime{isTime: true, text: "T" + s}
	for i, g := range m[1:4] {
		if g == "" {
			break
		}
		d.f[precHour-1+i], _ = strconv.Atoi(g)
		d.prec = precHour + i
	}
	if m[4] != "" {
		d.f[6] = nanos(m[4])
	}
	return d, true
}

func nanos(frac string) int {
	for len(frac) < 9 {
		frac += "0"
	}
	n, _ := strconv.Atoi(frac[:9])
	return n
}

// utc returns the fields shifted to UTC when the value has a time and an offset.
func (d *dateTime) utc() [7]int {
	if !d.tz || d.isTime || d.prec < precHour {
		return d.f
	}
	t := time.Date(d.f[0], time.Month(d.f[1]), d.f[2], d.f[3], d.f[4], d.f[5], d.f[6], time.FixedZone("", d.offset)).UTC()
	return [7]int{t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()}
}

// compareDates orders a and b field by field down to the coarser precision. known is false
// when they agree that far but differ in precision: FHIRPath's empty result.
func compareDates(a, b *dateTime) (cmp int, known bool, ok bool) {
	if a.isTime != b.isTime {
		return 0, false, false
	}
	fa, fb := a.f, b.f
	if a.tz && b.tz {
		fa, fb = a.utc(), b.utc()
	}
	first := 0
	if a.isTime {
		first = precHour - 1
	}
	last := min(a.prec, b.prec)
	for i := first; i < last; i++ {
		if fa[i] != fb[i] {
			return sign(fa[i] - fb[i]), true, true
		}
		if i == precSecond-1 && fa[6] != fb[6] {
			return sign(fa[6] - fb[6]), true, true
		}
	}
	if a.prec != b.prec {
		return 0, false, true
	}
	return 0, true, true
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// dateOf and dateTimeOf turn the clock into today() and now() values.
func dateOf(t time.Time) *dateTime {
	return &dateTime{f: [7]int{t.Year(), int(t.Month()), t.Day()}, prec: precDay, text: t.Format(time.DateOnly)}
}

func dateTimeOf(t time.Time) *dateTime {
	_, off := t.Zone()
	return &dateTime{
		f:    [7]int{t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()},
		prec: precSecond, tz: true, offset: off, text: t.Format("2006-01-02T15:04:05.000Z07:00"),
	}
}

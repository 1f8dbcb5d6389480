package kbv

import "testing"

func TestDateShapesMatchPatterns(t *testing.T) {
	for _, v := range []string{"2025", "2025-01", "2025-13", "2025-00", "2025-01-01", "2025-02-31", "2025-01-32", "2025-01-00", "25", "2025-1-01", "abcd",
		"2025-01-01T10:00", "2025-01-01T10:00:00", "2025-01-01T10:00:00Z", "2025-01-01T10:00:00.123+02:00", "2025-01-01T10:00:00+0200", "2025-01-01T24:00:00",
		"2025-01-01T10:60", "2025-01-01T10:00:00.", "2025-01-01T10:00:00+14:00", "2025-01-01T10:00:00+14:30", "2025-01-01T10:00:00+13:59", "2025-01-01T10:00+02:00",
		"2025-01-01T10:00:00-0:00", "2025-01-01T10:00:00+02:0", "2025-01-01 10:00", "2025-01-01T10:00:00ZZ", "2025-01-01T10:00:61", "2025-01-01T1:00", "2025-01-01T10:00:00+0", "2025-01-01T10:00:00+02:00:00", "2025-01-01T", "2025-01-01T10"} {
		if isDate(v) != datePattern.MatchString(v) || isDateTime(v) != (datePattern.MatchString(v) || dateTimePattern.MatchString(v)) {
			t.Errorf("%q: isDate %v isDateTime %v, patterns %v %v", v, isDate(v), isDateTime(v), datePattern.MatchString(v), dateTimePattern.MatchString(v))
		}
	}
}

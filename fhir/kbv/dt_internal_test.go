package kbv

import "testing"

func TestDateShapes(t *testing.T) {
	for _, tc := range []struct {
		v              string
		date, dateTime bool
	}{
		{"2025", true, true},
		{"2025-01", true, true},
		{"2025-01-01", true, true},
		{"2025-02-31", true, true}, // the shape only: ParseDate refuses the day
		{"2025-13", false, false},
		{"2025-00", false, false},
		{"2025-01-32", false, false},
		{"2025-01-00", false, false},
		{"25", false, false},
		{"2025-1-01", false, false},
		{"abcd", false, false},
		{"2025-01-01T10:00", false, true},
		{"2025-01-01T10:00:00", false, true},
		{"2025-01-01T10:00:00Z", false, true},
		{"2025-01-01T10:00:00.123+02:00", false, true},
		{"2025-01-01T10:00:00+0200", false, true},
		{"2025-01-01T10:00+02:00", false, true},
		{"2025-01-01T10:00:00+14:00", false, true},
		{"2025-01-01T10:00:00+13:59", false, true},
		{"2025-01-01T24:00:00", false, false},
		{"2025-01-01T10:60", false, false},
		{"2025-01-01T10:00:61", false, false},
		{"2025-01-01T10:00:00.", false, false},
		{"2025-01-01T10:00:00+14:30", false, false},
		{"2025-01-01T10:00:00-0:00", false, false},
		{"2025-01-01T10:00:00+02:0", false, false},
		{"2025-01-01T10:00:00+0", false, false},
		{"2025-01-01T10:00:00+02:00:00", false, false},
		{"2025-01-01T10:00:00ZZ", false, false},
		{"2025-01-01 10:00", false, false},
		{"2025-01-01T1:00", false, false},
		{"2025-01-01T", false, false},
		{"2025-01-01T10", false, false},
	} {
		if got := isDate(tc.v); got != tc.date {
			t.Errorf("isDate(%q) = %v, want %v", tc.v, got, tc.date)
		}
		if got := isDateTime(tc.v); got != tc.dateTime {
			t.Errorf("isDateTime(%q) = %v, want %v", tc.v, got, tc.dateTime)
		}
	}
}

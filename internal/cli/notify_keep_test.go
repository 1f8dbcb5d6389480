package cli

import (
	"testing"
	"time"
)

// --notify-keep takes a positive duration, or whole days, and refuses anything else with a
// message that names what it takes.
func TestNotifyKeepFlag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration // 0: refused
		show string        // String after Set
	}{
		{"7d", 7 * 24 * time.Hour, "7d"},
		{"30d", 30 * 24 * time.Hour, "30d"},
		{"36h", 36 * time.Hour, "36h0m0s"},
		{"48h", 48 * time.Hour, "2d"},
		{"90m", 90 * time.Minute, "1h30m0s"},
		{"36600d", 36600 * 24 * time.Hour, "36600d"},
		{"36601d", 0, ""},
		{"2147483647d", 0, ""},
		{"0d", 0, ""},
		{"0", 0, ""},
		{"-1h", 0, ""},
		{"-3d", 0, ""},
		{"1.5d", 0, ""},
		{"d", 0, ""},
		{"7 d", 0, ""},
		{"7days", 0, ""},
		{"", 0, ""},
		{"abc", 0, ""},
	} {
		var k keepFlag
		err := k.Set(c.in)
		switch {
		case c.want == 0 && err == nil:
			t.Errorf("--notify-keep %q accepted as %s", c.in, time.Duration(k))
		case c.want == 0 && err.Error() != `--notify-keep is a duration such as 7d or 36h, not "`+c.in+`"`:
			t.Errorf("--notify-keep %q: %v", c.in, err)
		case c.want != 0 && (err != nil || time.Duration(k) != c.want || k.String() != c.show):
			t.Errorf("--notify-keep %q: %s (shown %s), %v; want %s (shown %s)", c.in, time.Duration(k), k.String(), err, c.want, c.show)
		}
	}
	var unset keepFlag
	if unset.String() != "7d" {
		t.Errorf("the default shows as %s, want 7d", unset.String())
	}
}

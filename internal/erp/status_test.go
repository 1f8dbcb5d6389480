package erp

import (
	"errors"
	"testing"

	"github.com/redclone/red/ti/fachdienst"
)

// TestNamedStatus: the Task status the Fachdienst's refusals name (texts of gematik's
// E-Rezept-Fachdienst, as the simulator answers them).
func TestNamedStatus(t *testing.T) {
	cases := []struct {
		err  error
		want fachdienst.Status
	}{
		{&fachdienst.Error{Status: 403, Text: "Task not in status draft but in status ready"}, fachdienst.StatusReady},
		{&fachdienst.Error{Status: 403, Text: "Task must not be in progress for users other than pharmacy, but is: in-progress"}, fachdienst.StatusInProgress},
		{&fachdienst.Error{Status: 403, Text: "Task must be ready for doctor, but is: completed"}, fachdienst.StatusCompleted},
		{&fachdienst.Error{Status: 403, Text: "Abort not expected for newly created Task"}, ""},
		{&fachdienst.Error{Status: 409, Text: "Task has invalid status in-progress"}, fachdienst.StatusInProgress},
		{errors.New("connection refused"), ""},
		{nil, ""},
	}
	for _, c := range cases {
		if got := namedStatus(c.err); got != c.want {
			t.Errorf("%v: %q, want %q", c.err, got, c.want)
		}
	}
}

package fachdienstsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/internal/guard/guardtest"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/fachdienst/fachdienstsim"
)

// hangTimeout is how long a client waits for a call that hangs.
const hangTimeout = 100 * time.Millisecond

func (e *env) inject(faults ...fachdienstsim.Fault) {
	e.t.Helper()
	for _, f := range faults {
		if err := e.sim.Inject(f); err != nil {
			e.t.Fatal(err)
		}
	}
}

// taskState is the status of the Task id in the simulator ("" when there is none).
func (e *env) taskState(id string) fachdienst.Status {
	for _, t := range e.sim.Tasks() {
		if t.ID == id {
			return t.Status
		}
	}
	return ""
}

// wantNoAnswer checks that a call got no answer: an error that is no *fachdienst.Error.
func wantNoAnswer(t *testing.T, err error) {
	t.Helper()
	var fe *fachdienst.Error
	if err == nil || errors.As(err, &fe) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a lost answer", err)
	}
}

func TestFaults(t *testing.T) {
	// each call is prepared on a Task of its own (none for $create) and repeatable
	type call func(ctx context.Context) error
	calls := map[fachdienstsim.Op]func(e *env) (fachdienst.Task, call){
		fachdienstsim.OpCreate: func(e *env) (fachdienst.Task, call) {
			return fachdienst.Task{}, func(ctx context.Context) error {
				_, err := e.doctor.Create(ctx, 160)
				return err
			}
		},
		fachdienstsim.OpActivate: func(e *env) (fachdienst.Task, call) {
			task := e.created(160)
			signed := e.sign(e.prescription(gkvPrescription, task.ID))
			return task, func(ctx context.Context) error {
				_, err := e.doctor.Activate(ctx, task.ID, task.AccessCode, signed)
				return err
			}
		},
		fachdienstsim.OpAbort: func(e *env) (fachdienst.Task, call) {
			task := e.ready()
			return task, func(ctx context.Context) error { return e.doctor.Abort(ctx, task.ID, task.AccessCode, "") }
		},
		fachdienstsim.OpGet: func(e *env) (fachdienst.Task, call) {
			task := e.ready()
			patient := e.insured(task.KVNR)
			// without kept-alive connections: Go's Transport repeats a GET whose answer is lost
			// on a reused one
			patient.HTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			return task, func(ctx context.Context) error {
				d, err := patient.GetTask(ctx, task.ID, "", "")
				if err == nil && d.Task.Status != fachdienst.StatusReady {
					return errors.New("GetTask shows " + string(d.Task.Status))
				}
				return err
			}
		},
	}
	tests := []struct {
		name  string
		fault fachdienstsim.Fault
		// the status of the called Task after the faulted call; for $create that of the one
		// Task it left behind, "" for none
		state fachdienst.Status
		// what the call answers when repeated without faults: 0 for success
		again     int
		againText string
	}{
		{name: "fail create", fault: fachdienstsim.Fault{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.Fail}},
		{name: "fail activate", fault: fachdienstsim.Fault{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.Fail}, state: fachdienst.StatusDraft},
		{name: "fail abort", fault: fachdienstsim.Fault{Op: fachdienstsim.OpAbort, Kind: fachdienstsim.Fail}, state: fachdienst.StatusReady},
		{name: "fail get", fault: fachdienstsim.Fault{Op: fachdienstsim.OpGet, Kind: fachdienstsim.Fail}, state: fachdienst.StatusReady},

		{name: "hang create", fault: fachdienstsim.Fault{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.Hang}},
		{name: "hang activate", fault: fachdienstsim.Fault{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.Hang}, state: fachdienst.StatusDraft},
		{name: "hang abort", fault: fachdienstsim.Fault{Op: fachdienstsim.OpAbort, Kind: fachdienstsim.Hang}, state: fachdienst.StatusReady},
		{name: "hang get", fault: fachdienstsim.Fault{Op: fachdienstsim.OpGet, Kind: fachdienstsim.Hang}, state: fachdienst.StatusReady},

		{name: "drop the answer of create", fault: fachdienstsim.Fault{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.DropAnswer},
			state: fachdienst.StatusDraft},
		{name: "drop the answer of activate", fault: fachdienstsim.Fault{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.DropAnswer},
			state: fachdienst.StatusReady, again: http.StatusForbidden, againText: "Task not in status draft but in status ready"},
		{name: "drop the answer of abort", fault: fachdienstsim.Fault{Op: fachdienstsim.OpAbort, Kind: fachdienstsim.DropAnswer},
			state: fachdienst.StatusCancelled, again: http.StatusGone, againText: "Task has already been deleted"},
		{name: "drop the answer of get", fault: fachdienstsim.Fault{Op: fachdienstsim.OpGet, Kind: fachdienstsim.DropAnswer},
			state: fachdienst.StatusReady},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			task, do := calls[tt.fault.Op](e)
			before := e.sim.Tasks()
			e.inject(tt.fault)

			ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
			defer cancel()
			err := do(ctx)
			switch tt.fault.Kind {
			case fachdienstsim.Fail:
				wantError(t, err, http.StatusServiceUnavailable, "Service Unavailable")
			case fachdienstsim.Hang:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want the client's deadline", err)
				}
			case fachdienstsim.DropAnswer:
				wantNoAnswer(t, err)
			}
			if f := e.sim.Faults(); len(f) != 0 {
				t.Errorf("faults left: %+v", f)
			}

			after := e.sim.Tasks()
			var got fachdienst.Status
			if task.ID != "" {
				got = e.taskState(task.ID)
				if len(after) != len(before) {
					t.Errorf("%d Tasks before, %d after", len(before), len(after))
				}
			} else if len(after) > len(before)+1 {
				t.Errorf("%d Tasks before, %d after", len(before), len(after))
			} else if len(after) == len(before)+1 {
				got = after[len(after)-1].Status // the client does not know it
			}
			if got != tt.state {
				t.Errorf("the Task is %q, want %q", got, tt.state)
			}

			e.sim.ClearFaults()
			err = do(context.Background())
			if tt.again == 0 && err != nil {
				t.Errorf("called again: %v", err)
			} else if tt.again != 0 {
				wantError(t, err, tt.again, tt.againText)
			}
		})
	}
}

// A retried $activate whose first answer was lost: the Fachdienst refuses the repetition, and
// the Task the prescriber reads is the one activated Task of the prescription.
func TestFaultsRetryActivate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.created(160)
	signed := e.sign(e.prescription(gkvPrescription, task.ID))
	e.inject(fachdienstsim.Fault{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.Fail},
		fachdienstsim.Fault{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.DropAnswer})

	if _, err := e.doctor.Create(ctx, 160); err != nil { // the faults are not for $create
		t.Fatal(err)
	}
	_, err := e.doctor.Activate(ctx, task.ID, task.AccessCode, signed)
	wantError(t, err, http.StatusServiceUnavailable, "Service Unavailable")
	if st := e.taskState(task.ID); st != fachdienst.StatusDraft {
		t.Fatalf("after the failed $activate the Task is %s", st)
	}
	_, err = e.doctor.Activate(ctx, task.ID, task.AccessCode, signed)
	wantNoAnswer(t, err)
	_, err = e.doctor.Activate(ctx, task.ID, task.AccessCode, signed)
	wantError(t, err, http.StatusForbidden, "Task not in status draft but in status ready")

	var activated []string
	for _, t := range e.sim.Tasks() {
		if t.Status == fachdienst.StatusReady {
			activated = append(activated, t.ID)
		}
	}
	if !slices.Equal(activated, []string{task.ID}) {
		t.Errorf("activated Tasks %v, want only %s", activated, task.ID)
	}
	d, err := e.insured("X234567891").GetTask(ctx, task.ID, "", "")
	if err != nil || d.Task.Status != fachdienst.StatusReady {
		t.Errorf("GetTask: %v, %s", err, d.Task.Status)
	}
}

func TestFaultsCount(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.inject(fachdienstsim.Fault{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.Fail, Count: 2, Status: http.StatusTooManyRequests})
	for left := 2; left > 0; left-- {
		if f := e.sim.Faults(); len(f) != 1 || f[0].Count != left {
			t.Fatalf("pending %+v, want a fault for %d calls", f, left)
		}
		_, err := e.doctor.Create(ctx, 160)
		wantError(t, err, http.StatusTooManyRequests, "Too Many Requests")
	}
	if f := e.sim.Faults(); len(f) != 0 {
		t.Fatalf("pending %+v", f)
	}
	if _, err := e.doctor.Create(ctx, 160); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Tasks()); n != 1 {
		t.Errorf("%d Tasks, want 1", n)
	}

	// a fault for every call until cleared
	task := e.ready()
	e.inject(fachdienstsim.Fault{Kind: fachdienstsim.Fail, Count: -7})
	for range 3 {
		_, err := e.doctor.Create(ctx, 160)
		wantError(t, err, http.StatusServiceUnavailable, "Service Unavailable")
		_, err = e.insured(task.KVNR).ListTasks(ctx, nil)
		wantError(t, err, http.StatusServiceUnavailable, "Service Unavailable")
	}
	if f := e.sim.Faults(); len(f) != 1 || f[0].Count != -1 {
		t.Fatalf("pending %+v", f)
	}
	e.sim.ClearFaults()
	if _, err := e.insured(task.KVNR).ListTasks(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestFaultsInjectRefusesUnknown(t *testing.T) {
	e := newEnv(t)
	for _, f := range []fachdienstsim.Fault{
		{Op: "delete", Kind: fachdienstsim.Fail},
		{Op: fachdienstsim.OpCreate, Kind: "slow"},
		{Op: fachdienstsim.OpCreate},
		{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.Fail, Status: 200},
		{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.Hang, Status: 503},
	} {
		if err := e.sim.Inject(f); err == nil {
			t.Errorf("Inject(%+v) took it", f)
		}
	}
	if f := e.sim.Faults(); len(f) != 0 {
		t.Errorf("pending %+v", f)
	}
}

// A hanging call ends with its client: the server closes without waiting for it.
func TestFaultsHangEndsWithItsClient(t *testing.T) {
	e := newEnv(t)
	task := e.created(160)
	signed := e.sign(e.prescription(gkvPrescription, task.ID))
	e.inject(fachdienstsim.Fault{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.Hang})
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	if _, err := e.doctor.Activate(ctx, task.ID, task.AccessCode, signed); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	closed := make(chan struct{})
	go func() {
		e.srv.Close() // waits for the requests in flight
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the hanging call outlives its client")
	}
}

// ClearFaults ends the calls that hang without doing their work.
func TestFaultsClearEndsHangingCall(t *testing.T) {
	e := newEnv(t)
	task := e.created(160)
	signed := e.sign(e.prescription(gkvPrescription, task.ID))
	e.inject(fachdienstsim.Fault{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.Hang})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := e.doctor.Activate(ctx, task.ID, task.AccessCode, signed)
		done <- err
	}()
	for len(e.sim.Faults()) != 0 { // the call took the fault
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the call did not hang: %v", err)
	default:
	}
	e.sim.ClearFaults()
	wantNoAnswer(t, <-done)
	if st := e.taskState(task.ID); st != fachdienst.StatusDraft {
		t.Fatalf("the Task is %s", st)
	}
	if _, err := e.doctor.Activate(context.Background(), task.ID, task.AccessCode, signed); err != nil {
		t.Fatal(err)
	}
}

func TestFaultsOverHTTP(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	endpoint := e.srv.URL + "/sim/faults"
	send := func(t *testing.T, method, contentType, body string, header map[string]string) (int, string) {
		t.Helper()
		req := guardtest.Request(t, method, endpoint, contentType, []byte(body), header)
		status, _, answer := guardtest.Do(t, e.srv.Client(), req)
		return status, answer
	}

	for _, tt := range []struct {
		name, method, contentType, body string
		header                          map[string]string
		status                          int
		want                            string
	}{
		{"injects a fault", http.MethodPost, "application/json", `{"op":"create","kind":"fail","count":2,"status":502}`, nil, 204, ""},
		{"injects another", http.MethodPost, "application/json", `{"kind":"drop-answer"}`, nil, 204, ""},
		{"lists them", http.MethodGet, "", "", nil, 200,
			`[{"op":"create","kind":"fail","count":2,"status":502},{"kind":"drop-answer","count":1}]`},
		{"refuses an unknown kind", http.MethodPost, "application/json", `{"op":"create","kind":"explode"}`, nil, 400, "unknown fault kind"},
		{"refuses an unknown operation", http.MethodPost, "application/json", `{"op":"delete","kind":"fail"}`, nil, 400, "unknown operation"},
		{"refuses unknown fields", http.MethodPost, "application/json", `{"kind":"fail","times":3}`, nil, 400, "unknown field"},
		{"refuses a text/plain body", http.MethodPost, "text/plain", `{"kind":"fail"}`, nil, 415, "application/json"},
		{"refuses a page of another origin", http.MethodPost, "application/json", `{"kind":"fail"}`,
			map[string]string{"Origin": "http://evil.example"}, 403, "cross-origin"},
		{"refuses another method", http.MethodPut, "application/json", `{"kind":"fail"}`, nil, 405, "method not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, answer := send(t, tt.method, tt.contentType, tt.body, tt.header)
			if status != tt.status || !strings.Contains(answer, tt.want) {
				t.Errorf("HTTP %d %q, want %d with %q", status, answer, tt.status, tt.want)
			}
		})
	}

	_, err := e.doctor.Create(ctx, 160)
	wantError(t, err, http.StatusBadGateway, "Bad Gateway")
	var pending []fachdienstsim.Fault
	_, answer := send(t, http.MethodGet, "", "", nil)
	if err := json.Unmarshal([]byte(answer), &pending); err != nil || len(pending) != 2 || pending[0].Count != 1 {
		t.Fatalf("pending %s (%v)", answer, err)
	}
	if status, answer := send(t, http.MethodDelete, "", "", nil); status != http.StatusNoContent {
		t.Fatalf("DELETE: HTTP %d %s", status, answer)
	}
	if f := e.sim.Faults(); len(f) != 0 {
		t.Fatalf("pending after DELETE %+v", f)
	}
	if _, err := e.doctor.Create(ctx, 160); err != nil {
		t.Fatal(err)
	}
}

package fachdienstsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redclone/red/internal/guard"
)

// Op names the calls a Fault applies to.
type Op string

// The calls of the Fachdienst, by what they do.
const (
	OpAny                Op = ""                   // every call
	OpCreate             Op = "create"             // POST /Task/$create
	OpActivate           Op = "activate"           // POST /Task/{id}/$activate
	OpAccept             Op = "accept"             // POST /Task/{id}/$accept
	OpReject             Op = "reject"             // POST /Task/{id}/$reject
	OpDispense           Op = "dispense"           // POST /Task/{id}/$dispense
	OpClose              Op = "close"              // POST /Task/{id}/$close
	OpAbort              Op = "abort"              // POST /Task/{id}/$abort
	OpGet                Op = "get"                // GET /Task/{id}
	OpList               Op = "list"               // GET /Task
	OpCommunication      Op = "communication"      // every request to /Communication
	OpMedicationDispense Op = "medicationdispense" // GET /MedicationDispense
)

var ops = []Op{OpAny, OpCreate, OpActivate, OpAccept, OpReject, OpDispense, OpClose, OpAbort,
	OpGet, OpList, OpCommunication, OpMedicationDispense}

// Kind is what a Fault does to a call.
type Kind string

// The kinds of faults.
const (
	// Fail answers the call with an error status (Fault.Status, 503 by default) and an
	// OperationOutcome, doing nothing.
	Fail Kind = "fail"
	// Hang holds the call without doing anything until its client gives up (the request's
	// context ends), until ClearFaults or at most for the simulator's request bound of 2
	// minutes; then the connection is closed without an answer. A call that hangs never does
	// its work.
	Hang Kind = "hang"
	// DropAnswer serves the call (a Task is really created, activated, aborted …) and then
	// closes the connection without sending a byte of the answer, as when the network fails
	// after the Fachdienst did the work. Go's http.Transport sends a GET again when this happens
	// on a kept-alive connection; the repetition is a call of its own.
	DropAnswer Kind = "drop-answer"
)

// maxHang bounds a Hang however long its client waits: the simulator's bound on a request.
var maxHang = guard.SimulatorBounds.Request

// Fault is a failure the simulator injects into the next calls of one kind.
type Fault struct {
	Op   Op   `json:"op,omitempty"` // the calls it applies to; OpAny: every call
	Kind Kind `json:"kind"`
	// Count is how many of the matching calls it applies to; 0 means 1, a negative count every
	// matching call until ClearFaults.
	Count int `json:"count,omitempty"`
	// Status is the answer of Fail (400–599); 0 means 503 Service Unavailable.
	Status int `json:"status,omitempty"`
}

func (f Fault) validate() error {
	switch {
	case !slices.Contains(ops, f.Op):
		return fmt.Errorf("fachdienstsim: unknown operation %q", f.Op)
	case f.Kind != Fail && f.Kind != Hang && f.Kind != DropAnswer:
		return fmt.Errorf("fachdienstsim: unknown fault kind %q (fail, hang, drop-answer)", f.Kind)
	case f.Status != 0 && (f.Kind != Fail || f.Status < 400 || f.Status > 599):
		return fmt.Errorf("fachdienstsim: status %d: only a fail fault has a status, 400 to 599", f.Status)
	}
	return nil
}

// faults are the pending faults, in the order they were injected.
type faults struct {
	mu      sync.Mutex
	pending []Fault       // Count is positive, or -1 for until cleared
	cleared chan struct{} // closed by ClearFaults, ending the hangs
}

// Inject adds a fault after those pending. A call takes the first pending fault that applies to
// it, counting it down; faults apply to the Fachdienst's calls only, not to the /sim endpoints
// nor to requests the loopback guard refuses.
func (s *Simulator) Inject(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.Count == 0 {
		f.Count = 1
	} else if f.Count < 0 {
		f.Count = -1
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.pending = append(s.faults.pending, f)
	return nil
}

// ClearFaults removes the pending faults and ends the calls that hang (without an answer).
func (s *Simulator) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.pending = nil
	if s.faults.cleared != nil {
		close(s.faults.cleared)
		s.faults.cleared = nil
	}
}

// Faults returns the pending faults, each with the count of calls it still applies to (-1: until
// cleared).
func (s *Simulator) Faults() []Fault {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return slices.Clone(s.faults.pending)
}

// takeFault takes the first pending fault for op; cleared is closed by the next ClearFaults.
func (s *Simulator) takeFault(op Op) (f Fault, cleared <-chan struct{}, ok bool) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	i := slices.IndexFunc(s.faults.pending, func(f Fault) bool { return f.Op == OpAny || f.Op == op })
	if i < 0 {
		return Fault{}, nil, false
	}
	f = s.faults.pending[i]
	if f.Count > 0 {
		s.faults.pending[i].Count--
		if s.faults.pending[i].Count == 0 {
			s.faults.pending = slices.Delete(s.faults.pending, i, i+1)
		}
	}
	if s.faults.cleared == nil {
		s.faults.cleared = make(chan struct{})
	}
	return f, s.faults.cleared, true
}

// opOf tells which call r is ("" for paths the Fachdienst does not serve).
func opOf(r *http.Request) Op {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case parts[0] == "Task" && len(parts) == 2 && parts[1] == "$create":
		return OpCreate
	case parts[0] == "Task" && len(parts) == 3:
		return Op(strings.TrimPrefix(parts[2], "$"))
	case parts[0] == "Task" && len(parts) == 2:
		return OpGet
	case parts[0] == "Task" && len(parts) == 1:
		return OpList
	case parts[0] == "Communication":
		return OpCommunication
	case parts[0] == "MedicationDispense":
		return OpMedicationDispense
	}
	return ""
}

// injure serves r under the fault f.
func (s *Simulator) injure(w http.ResponseWriter, r *http.Request, f Fault, cleared <-chan struct{}) {
	switch f.Kind {
	case Fail:
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		writeError(w, failDiag(status, http.StatusText(status), "fault injected by the simulator"))
	case Hang:
		// The server notices a client that gives up only once the body is read.
		io.Copy(io.Discard, r.Body) //nolint:errcheck // a broken body ends the call as well
		timer := time.NewTimer(maxHang)
		defer timer.Stop()
		select {
		case <-r.Context().Done():
		case <-cleared:
			dropConnection(w)
		case <-timer.C:
			dropConnection(w)
		}
	case DropAnswer:
		s.answer(discard{}, r)
		dropConnection(w)
	}
}

// dropConnection closes the connection of w without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2: the server resets the stream
	}
	conn.Close()
}

// discard is a ResponseWriter that forgets the answer.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// serveFaults is /sim/faults: GET lists the pending faults, POST injects one (a JSON Fault),
// DELETE clears them.
func (s *Simulator) serveFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(append([]Fault{}, s.Faults()...)) //nolint:errcheck // the client went away
	case http.MethodPost:
		var f Fault
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.Inject(f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

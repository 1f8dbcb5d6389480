package api

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/redclone/red/fhir"
)

// Admission by body size. Reading, parsing and checking a body costs memory in proportion to its
// size (the tree of a large bundle is several times its bytes), so requests are admitted only
// while the bytes of the bodies in flight stay within a budget: a request waits for room (at most
// admissionWait, and never after its client left), then is answered 503 with Retry-After. While
// large bodies are in flight the Go runtime's soft memory limit follows them, so that garbage is
// collected before the process grows beyond a small multiple of what it works on; after the last
// one, memory goes back to the operating system. A body without Content-Length is read ahead of
// its handler, and admitted as it arrives.

// admissionWait bounds how long a request waits for room (a variable for tests).
var admissionWait = 30 * time.Second

const (
	// retryAfter is what a refused client is told to wait, in seconds.
	retryAfter = 10
	// chunkStep is how much of a body without Content-Length is admitted at a time, as it is read.
	chunkStep int64 = 1 << 20
	// largeBody is the size from which a body steers the memory limit and the return of memory.
	largeBody = 1 << 20
	// memoryPerByte and memoryFloor make the soft memory limit while large bodies are in flight:
	// perByte × bytes in flight, at least floor. Parsed and checked, a bundle takes up to about
	// six times its bytes; the rest is room for garbage.
	memoryPerByte = 8
	memoryFloor   = 32 << 20
	// freeEvery spaces the returns of memory to the operating system.
	freeEvery = 2 * time.Second
)

// admissionBudget is the bytes of bodies in flight a server admits: two of the largest it
// accepts, and at least 64 MiB.
func admissionBudget(maxBody int64) int64 {
	if maxBody <= 0 {
		maxBody = fhir.DefaultLimits.MaxBytes
	}
	return max(2*maxBody, 64<<20)
}

// admit is the middleware that admits requests with a body by its size. It is built once per
// router, so the routes it guards share one budget.
func (s *Server) admit(next http.Handler) http.Handler {
	maxBody := s.Limits.MaxBytes
	if maxBody <= 0 {
		maxBody = fhir.DefaultLimits.MaxBytes
	}
	sem := semaphore.NewWeighted(admissionBudget(maxBody))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		// a body beyond maxBody is refused once maxBody+1 bytes are read, so no more is admitted
		var n int64
		var err error
		if r.ContentLength < 0 {
			r.Body, n, err = buffer(r.Context(), sem, r.Body, maxBody+1)
		} else {
			n = min(r.ContentLength, maxBody+1)
			err = acquire(r.Context(), sem, n)
		}
		if err != nil {
			if r.Context().Err() == nil {
				w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
				s.writeError(w, r, err)
			}
			return
		}
		defer sem.Release(n)
		if n >= largeBody {
			memory.admitted(n)
			defer memory.done(n)
		}
		next.ServeHTTP(w, r)
	})
}

// acquire waits for n bytes of room, at most admissionWait.
func acquire(ctx context.Context, sem *semaphore.Weighted, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, admissionWait)
	defer cancel()
	if err := sem.Acquire(ctx, n); err != nil {
		return fhir.Wrap(err, fhir.CodeThrottled, "the server is busy with other large requests; send this one again in a few seconds")
	}
	return nil
}

// buffer reads a body of unknown length (chunked) before its handler does, admitting it a step at
// a time as it arrives, up to limit bytes; it returns the body to hand on (what was read, then the
// rest or the error reading met, for the handler to meet in turn) and the bytes admitted, which
// are those read. When no room frees up, what was admitted is released again.
func buffer(ctx context.Context, sem *semaphore.Weighted, body io.ReadCloser, limit int64) (io.ReadCloser, int64, error) {
	var buf bytes.Buffer
	var admitted int64
	for admitted < limit {
		step := min(chunkStep, limit-admitted)
		if err := acquire(ctx, sem, step); err != nil {
			sem.Release(admitted)
			return body, 0, err
		}
		admitted += step
		n, err := io.CopyN(&buf, body, step)
		if err != nil {
			sem.Release(step - n) // admitted is what was read
			admitted -= step - n
			rest := io.Reader(eof{})
			if err != io.EOF {
				rest = failing{err}
			}
			return bufferedBody{io.MultiReader(&buf, rest), body}, admitted, nil
		}
	}
	return bufferedBody{io.MultiReader(&buf, body), body}, admitted, nil
}

// bufferedBody is a request body read ahead: reading gives what buffer read and then the rest,
// closing closes the request's body.
type bufferedBody struct {
	io.Reader
	body io.Closer
}

func (b bufferedBody) Close() error { return b.body.Close() }

type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

// memory steers the process's soft memory limit by the large bodies in flight, and returns memory
// to the operating system after them. It is the process's, as memory is.
var memory = &governor{}

type governor struct {
	mu       sync.Mutex
	inFlight int64 // bytes of large bodies admitted and not yet done
	original int64 // the limit before any was set; 0 until read
	resting  int64 // the limit while no large body is in flight: original, or KeepMemoryUnder's
	lastFree time.Time
	pending  bool
}

// KeepMemoryUnder makes n bytes the Go runtime's soft memory limit while no large body is in
// flight (math.MaxInt64: none), and the least limit while some are; it returns the one before. A
// limit set before red first touched it (GOMEMLIMIT) stays as it is. red serve keeps its memory
// down this way: its live heap is small, and GOGC's 400 % alone lets garbage grow to five times
// it.
func KeepMemoryUnder(n int64) (previous int64) {
	memory.mu.Lock()
	defer memory.mu.Unlock()
	memory.read()
	previous, memory.resting = memory.resting, n
	memory.setLimit()
	return previous
}

// read takes the limit set before red touched it, once.
func (g *governor) read() {
	if g.original == 0 {
		g.original = debug.SetMemoryLimit(-1)
		g.resting = g.original
	}
}

// admitted counts a large body in; done counts it out again.
func (g *governor) admitted(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight += n
	g.setLimit()
}

func (g *governor) done(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight -= n
	g.setLimit()
	if g.inFlight == 0 && !g.pending {
		g.pending = true
		wait := max(0, freeEvery-time.Since(g.lastFree))
		time.AfterFunc(wait, g.free)
	}
}

// setLimit sets the soft memory limit for the bytes in flight, never below the resting one, or
// restores the resting one; a limit someone set (GOMEMLIMIT) is left alone.
func (g *governor) setLimit() {
	g.read()
	if g.original != math.MaxInt64 {
		return
	}
	limit := g.resting
	if g.inFlight > 0 {
		limit = max(memoryFloor, memoryPerByte*g.inFlight)
		if g.resting != math.MaxInt64 {
			limit = max(limit, g.resting)
		}
	}
	debug.SetMemoryLimit(limit)
}

// free returns memory to the operating system once no large body is in flight.
func (g *governor) free() {
	g.mu.Lock()
	g.pending = false
	if g.inFlight > 0 {
		g.mu.Unlock()
		return
	}
	g.lastFree = time.Now()
	g.mu.Unlock()
	debug.FreeOSMemory()
}

package api

import (
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
// one, memory goes back to the operating system.
// admissionWait bounds how long a request waits for room (a variable for tests).
var admissionWait = 30 * time.Second

const (
	// retryAfter is what a refused client is told to wait, in seconds.
	retryAfter = 10
	// chunkStep is how much of a body without Content-Length is admitted at a time, as it is read.
	chunkStep = 1 << 20
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
		if r.ContentLength < 0 { // chunked: admitted as it is read
			body := &admittedBody{ReadCloser: r.Body, ctx: r.Context(), sem: sem, w: w, limit: maxBody + 1}
			defer body.release()
			r.Body = body
			next.ServeHTTP(w, r)
			return
		}
		n := min(r.ContentLength, maxBody+1) // a larger body is refused once maxBody+1 bytes are read
		if err := acquire(r.Context(), sem, n); err != nil {
			if r.Context().Err() == nil {
				busy(w)
				s.writeError(w, r, err)
			}
			return
		}
		memory.admitted(n)
		defer func() {
			sem.Release(n)
			memory.done(n)
		}()
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

func busy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
}

// admittedBody admits a body of unknown length step by step as it is read.
type admittedBody struct {
	io.ReadCloser
	ctx      context.Context
	sem      *semaphore.Weighted
	w        http.ResponseWriter
	limit    int64 // no more is admitted: the handler refuses a body beyond it
	admitted int64
	read     int64
}

func (b *admittedBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.read >= b.admitted && b.admitted < b.limit {
		step := min(int64(chunkStep), b.limit-b.admitted)
		if err := acquire(b.ctx, b.sem, step); err != nil {
			busy(b.w)
			return 0, err
		}
		b.admitted += step
		memory.admitted(step)
	}
	if room := b.admitted - b.read; room > 0 && int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	return n, err
}

func (b *admittedBody) release() {
	if b.admitted > 0 {
		b.sem.Release(b.admitted)
		memory.done(b.admitted)
	}
}

// memory steers the process's soft memory limit by the large bodies in flight, and returns memory
// to the operating system after them. It is the process's, as memory is.
var memory = &governor{}

type governor struct {
	mu       sync.Mutex
	inFlight int64 // bytes of large bodies admitted and not yet done
	original int64 // the limit before any was set; 0 until read
	lastFree time.Time
	pending  bool
}

func (g *governor) admitted(n int64) {
	if n < largeBody {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight += n
	g.setLimit()
}

func (g *governor) done(n int64) {
	if n < largeBody {
		return
	}
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

// setLimit sets the soft memory limit for the bytes in flight, or restores the one before; a limit
// someone set (GOMEMLIMIT) is left alone.
func (g *governor) setLimit() {
	if g.original == 0 {
		g.original = debug.SetMemoryLimit(-1)
	}
	if g.original != math.MaxInt64 {
		return
	}
	if g.inFlight > 0 {
		debug.SetMemoryLimit(max(memoryFloor, memoryPerByte*g.inFlight))
	} else {
		debug.SetMemoryLimit(g.original)
	}
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

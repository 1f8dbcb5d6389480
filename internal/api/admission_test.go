package api

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
)

// admissionHarness serves through the admission of a server that accepts bodies of up to 40 MiB
// (so 80 MiB may be in flight). Its handler reads the body, reports the bytes read on entered
// and then holds its admission until released.
type admissionHarness struct {
	h       http.Handler
	entered chan int64
	release chan struct{}
	once    sync.Once
	running sync.WaitGroup
}

func newAdmissionHarness(t *testing.T, wait time.Duration) *admissionHarness {
	t.Helper()
	was := admissionWait
	admissionWait = wait
	s := &Server{Limits: fhir.Limits{MaxBytes: 40 << 20}, Log: slog.New(slog.DiscardHandler)}
	a := &admissionHarness{entered: make(chan int64, 10), release: make(chan struct{})}
	a.h = s.admit(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		data, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		a.entered <- int64(len(data))
		<-a.release
		w.WriteHeader(http.StatusOK)
		return nil
	}))
	t.Cleanup(func() {
		a.releaseAll()
		a.running.Wait()
		admissionWait = was
	})
	return a
}

func (a *admissionHarness) releaseAll() { a.once.Do(func() { close(a.release) }) }

// serve runs r in the background; the recorder is complete once done is closed.
func (a *admissionHarness) serve(r *http.Request) (w *httptest.ResponseRecorder, done chan struct{}) {
	w, done = httptest.NewRecorder(), make(chan struct{})
	a.running.Add(1)
	go func() {
		defer a.running.Done()
		defer close(done)
		a.h.ServeHTTP(w, r)
	}()
	return w, done
}

// fill takes the whole budget with two bodies of 40 MiB that wait for release.
func (a *admissionHarness) fill() {
	a.serve(sized(40 << 20))
	a.serve(sized(40 << 20))
	<-a.entered
	<-a.entered
}

// sized is a POST whose Content-Length says n bytes (its body holds a few).
func sized(n int64) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/praxis/Bundle", strings.NewReader("<x/>"))
	r.ContentLength = n
	return r
}

// chunked is a POST of n bytes without Content-Length.
func chunked(n int) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/praxis/Bundle", bytes.NewReader(make([]byte, n)))
	r.ContentLength = -1
	return r
}

func refusedAsBusy(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), `<code value="throttled"/>`) || !strings.Contains(w.Body.String(), "busy") {
		t.Errorf("got %d Retry-After %q\n%s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

func TestAdmission(t *testing.T) {
	t.Run("admits requests while their bodies fit the budget", func(t *testing.T) {
		a := newAdmissionHarness(t, time.Second)
		a.fill()
	})

	for _, c := range []struct {
		name string
		r    *http.Request
	}{
		{"refuses with 503 and Retry-After when no room frees up in time", sized(1 << 10)},
		{"refuses a body without Content-Length with 503 when there is no room", chunked(10 << 20)},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newAdmissionHarness(t, 100*time.Millisecond)
			a.fill()
			w, done := a.serve(c.r)
			<-done
			refusedAsBusy(t, w)
		})
	}

	t.Run("admits a waiting request once room frees up", func(t *testing.T) {
		a := newAdmissionHarness(t, 10*time.Second)
		a.fill()
		w, done := a.serve(sized(30 << 20))
		select {
		case <-a.entered:
			t.Fatal("admitted beyond the budget")
		case <-time.After(50 * time.Millisecond):
		}
		a.releaseAll()
		<-a.entered
		<-done
		if w.Code != http.StatusOK {
			t.Errorf("got %d\n%s", w.Code, w.Body)
		}
	})

	t.Run("stops waiting without an answer when the client leaves", func(t *testing.T) {
		a := newAdmissionHarness(t, 10*time.Second)
		a.fill()
		ctx, cancel := context.WithCancel(context.Background())
		w, done := a.serve(sized(1 << 10).WithContext(ctx))
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("still waiting")
		}
		if w.Body.Len() > 0 {
			t.Errorf("answered a client that left: %d\n%s", w.Code, w.Body)
		}
	})

	t.Run("admits a body without Content-Length as it is read", func(t *testing.T) {
		a := newAdmissionHarness(t, time.Second)
		a.serve(chunked(3 << 20))
		if n := <-a.entered; n != 3<<20 {
			t.Fatalf("read %d bytes", n)
		}
	})

	t.Run("leaves a body without Content-Length beyond the limit to its handler, which refuses it", func(t *testing.T) {
		a := newAdmissionHarness(t, time.Second)
		w, done := a.serve(chunked(41 << 20))
		<-done
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "40 MiB") {
			t.Errorf("got %d\n%s", w.Code, w.Body)
		}
	})

	t.Run("lets requests without a body pass", func(t *testing.T) {
		a := newAdmissionHarness(t, 100*time.Millisecond)
		a.fill()
		a.serve(httptest.NewRequest(http.MethodGet, "/praxis/Patient", nil))
		if n := <-a.entered; n != 0 {
			t.Errorf("read %d bytes", n)
		}
	})
}

func TestMemoryFollowsLargeBodies(t *testing.T) {
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		t.Skipf("GOMEMLIMIT is set (%d): red leaves it alone", limit)
	}
	cases := []struct {
		name  string
		body  int64
		limit int64
	}{
		{"sets the soft memory limit to a multiple of the large bodies in flight", 20 << 20, memoryPerByte * 20 << 20},
		{"sets at least the floor", 2 << 20, memoryFloor},
		{"leaves the limit alone for small bodies", 100 << 10, math.MaxInt64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAdmissionHarness(t, time.Second)
			_, done := a.serve(sized(c.body))
			<-a.entered
			if got := debug.SetMemoryLimit(-1); got != c.limit {
				t.Errorf("limit %d, want %d", got, c.limit)
			}
			a.releaseAll()
			<-done
			if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
				t.Errorf("limit %d after the request, want none", got)
			}
		})
	}
	t.Run("keeps a resting limit, and never goes below it for large bodies", func(t *testing.T) {
		const resting = 48 << 20
		defer KeepMemoryUnder(KeepMemoryUnder(resting))
		if got := debug.SetMemoryLimit(-1); got != resting {
			t.Fatalf("resting limit %d, want %d", got, resting)
		}
		for _, c := range []struct{ body, limit int64 }{{2 << 20, resting}, {20 << 20, memoryPerByte * 20 << 20}} {
			a := newAdmissionHarness(t, time.Second)
			_, done := a.serve(sized(c.body))
			<-a.entered
			if got := debug.SetMemoryLimit(-1); got != c.limit {
				t.Errorf("body of %d bytes: limit %d, want %d", c.body, got, c.limit)
			}
			a.releaseAll()
			<-done
			if got := debug.SetMemoryLimit(-1); got != resting {
				t.Errorf("limit %d after the request, want the resting %d", got, resting)
			}
		}
	})
	t.Run("returns memory to the system after the last large body", func(t *testing.T) {
		memory.mu.Lock()
		memory.lastFree = time.Time{}
		memory.mu.Unlock()
		a := newAdmissionHarness(t, time.Second)
		_, done := a.serve(sized(2 << 20))
		<-a.entered
		a.releaseAll()
		<-done
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			memory.mu.Lock()
			freed := !memory.lastFree.IsZero()
			memory.mu.Unlock()
			if freed {
				return
			}
		}
		t.Error("no memory returned")
	})
}

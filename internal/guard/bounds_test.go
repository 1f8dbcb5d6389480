package guard_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redclone/red/internal/guard"
)

// boundedServer serves h on loopback with b's server and listener.
func boundedServer(t *testing.T, b guard.Bounds, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config = b.Server(h)
	srv.Listener = b.Listener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func dial(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// statusOf reads the status line of the answer on c within wait; 0 when none came.
func statusOf(c net.Conn, wait time.Duration) int {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0
	}
	var status int
	_, _ = fmt.Sscanf(line, "HTTP/1.1 %d", &status)
	return status
}

func TestBoundsCutOffATricklingBody(t *testing.T) {
	readErr := make(chan error, 1)
	srv := boundedServer(t, guard.Bounds{Header: 10 * time.Second, Request: 300 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			readErr <- err
			if guard.BodyBroken(err) {
				http.Error(w, "body broke off", http.StatusBadRequest)
			}
		}))
	c := dial(t, srv)
	const length = 1000
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", length)
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() { // one byte every 20 ms: the whole body would take 20 s
		n := 0
		defer func() { sent <- n }()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ; n < length; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	defer close(stop)

	t.Run("the handler's read fails at the deadline", func(t *testing.T) {
		select {
		case err := <-readErr:
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !guard.BodyBroken(err) {
				t.Errorf("read error %v, want a timeout", err)
			}
		case <-time.After(10 * time.Second): // a failure only: the deadline is 300 ms
			t.Fatal("the trickling body was not cut off")
		}
	})
	t.Run("the client is answered 400 and its connection closed", func(t *testing.T) {
		if status := statusOf(c, 10*time.Second); status != http.StatusBadRequest {
			t.Errorf("HTTP %d, want 400", status)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ne net.Error
		if _, err := io.ReadAll(c); errors.As(err, &ne) && ne.Timeout() { // EOF or reset: closed
			t.Error("connection still open")
		}
	})
}

func TestBoundsLimitConnections(t *testing.T) {
	srv := boundedServer(t, guard.Bounds{Header: 10 * time.Second, Conns: 2},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "served") }))
	get := "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	// two connections that send nothing hold both slots
	first := dial(t, srv)
	dial(t, srv)
	third := dial(t, srv)
	if _, err := io.WriteString(third, get); err != nil {
		t.Fatal(err)
	}
	t.Run("a connection beyond the bound waits", func(t *testing.T) {
		if status := statusOf(third, 300*time.Millisecond); status != 0 {
			t.Errorf("answered HTTP %d while both slots are held", status)
		}
	})
	t.Run("it is served once a slot is free", func(t *testing.T) {
		first.Close()
		if status := statusOf(third, 10*time.Second); status != http.StatusOK {
			t.Errorf("HTTP %d, want 200", status)
		}
	})
	t.Run("closing the listener ends a waiting Accept", func(t *testing.T) {
		fourth := dial(t, srv)
		_, _ = io.WriteString(fourth, get)
		done := make(chan struct{})
		go func() { srv.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Close hangs while Accept waits for a slot")
		}
	})
}

func TestBoundsServer(t *testing.T) {
	b := guard.Bounds{Header: 1 * time.Second, Request: 2 * time.Second, Idle: 3 * time.Second}
	srv := b.Server(http.NotFoundHandler())
	if srv.ReadHeaderTimeout != b.Header || srv.ReadTimeout != b.Request || srv.IdleTimeout != b.Idle {
		t.Errorf("server timeouts %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
	}
	for _, bb := range []guard.Bounds{guard.APIBounds, guard.SimulatorBounds} {
		if bb.Header <= 0 || bb.Request <= 0 || bb.Idle <= 0 || bb.Conns <= 0 {
			t.Errorf("bounds %+v leave something unbounded", bb)
		}
	}
	if guard.APIBounds.Request < 32*time.Second {
		t.Errorf("the API's request deadline %v does not let 32 MiB arrive at 1 MiB/s", guard.APIBounds.Request)
	}
}

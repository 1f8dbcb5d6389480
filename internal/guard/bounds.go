package guard

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Bounds bound one listener against slow and numerous clients. On loopback every client is
// 127.0.0.1, so a bound per client would bound nothing: Conns bounds the connections the
// listener has open in total.
type Bounds struct {
	Header  time.Duration // reading a request's headers (http.Server.ReadHeaderTimeout)
	Request time.Duration // reading a whole request, body included (ReadTimeout): a body trickling in is cut off
	Idle    time.Duration // a kept-alive connection waiting for its next request (IdleTimeout)
	Conns   int           // connections open at once; further ones wait in the listen backlog until one closes
}

var (
	// APIBounds are the API's: 2 minutes for a request lets a 32 MiB body (the default
	// --max-body) arrive at 270 KiB/s, where loopback carries GB/s.
	APIBounds = Bounds{Header: 10 * time.Second, Request: 2 * time.Minute, Idle: 2 * time.Minute, Conns: 256}
	// SimulatorBounds are each TI simulator's: their bodies are at most 64 MiB, their clients
	// red's TI clients and tests.
	SimulatorBounds = Bounds{Header: 10 * time.Second, Request: 2 * time.Minute, Idle: time.Minute, Conns: 64}
)

// Server returns an http.Server for h with the timeouts of b.
func (b Bounds) Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: b.Header, ReadTimeout: b.Request, IdleTimeout: b.Idle}
}

// Listener returns ln accepting at most b.Conns connections at once (ln itself when Conns is 0):
// Accept waits until an accepted connection closes.
func (b Bounds) Listener(ln net.Listener) net.Listener {
	if b.Conns <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, b.Conns), closed: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots     chan struct{} // one element per open connection
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

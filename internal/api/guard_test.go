package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/internal/guard"
	"github.com/redclone/red/internal/guard/guardtest"
	"github.com/redclone/red/internal/telematik"
)

// stubTI counts the TI actions that reach it; block makes an action wait for its request's end.
type stubTI struct {
	calls   atomic.Int32
	block   bool
	started chan struct{}
}

func (s *stubTI) Do(ctx context.Context, _ string, _ url.Values, _ *etree.Element) (telematik.Answer, error) {
	s.calls.Add(1)
	if s.block {
		close(s.started)
		<-ctx.Done()
		return telematik.Answer{}, ctx.Err()
	}
	return telematik.Answer{Status: http.StatusOK, Body: etree.NewElement("ConnectorResponse")}, nil
}

func (s *stubTI) SignPDF(context.Context, url.Values, []byte) (telematik.Answer, error) {
	s.calls.Add(1)
	return telematik.Answer{Status: http.StatusOK, Body: etree.NewElement("ConnectorResponse")}, nil
}

func (s *stubTI) CreateERP(context.Context, url.Values, *etree.Element) (telematik.Answer, error) {
	s.calls.Add(1)
	return telematik.Answer{Status: http.StatusOK, Body: etree.NewElement("Prescription")}, nil
}

func (s *stubTI) TaskAction(context.Context, string, url.Values) (telematik.Answer, error) {
	s.calls.Add(1)
	return telematik.Answer{Status: http.StatusOK, Body: etree.NewElement("OperationOutcome")}, nil
}

func (s *stubTI) Received(context.Context, url.Values) (telematik.Answer, error) {
	s.calls.Add(1)
	return telematik.Answer{Status: http.StatusOK, Body: etree.NewElement("Bundle")}, nil
}

func (s *stubTI) PharmacyTask(context.Context, string) (telematik.Answer, error) {
	s.calls.Add(1)
	return telematik.Answer{Status: http.StatusOK, Body: etree.NewElement("Bundle")}, nil
}

func (s *stubTI) Reply(context.Context, url.Values, *etree.Element) (telematik.Answer, error) {
	s.calls.Add(1)
	return telematik.Answer{Status: http.StatusCreated, Body: etree.NewElement("Communication")}, nil
}

func (s *stubTI) Dispense(context.Context, url.Values, *etree.Element) (telematik.Answer, error) {
	s.calls.Add(1)
	return telematik.Answer{Status: http.StatusOK, Body: etree.NewElement("Bundle")}, nil
}

func (s *stubTI) Tasks(context.Context, url.Values) (telematik.Answer, error) {
	s.calls.Add(1)
	return telematik.Answer{Status: http.StatusOK, Body: etree.NewElement("Bundle")}, nil
}

// waitFor waits until the log b holds want (a failure only when it never does).
func waitFor(t *testing.T, b *fixture.Buffer, want string) string {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if s := b.String(); strings.Contains(s, want) {
			return s
		}
	}
	t.Fatalf("the log never held %q:\n%s", want, b.String())
	return ""
}

// newServer serves the API for tenant praxis with ti, logging at DEBUG into the returned buffer,
// through a server and listener with bounds b.
func newServer(t *testing.T, ti api.Telematik, b guard.Bounds) (*httptest.Server, *fixture.Buffer) {
	t.Helper()
	log := &fixture.Buffer{}
	h := (&api.Server{
		Tenant: "praxis",
		TI:     ti,
		Limits: fhir.DefaultLimits,
		Log:    slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}).Handler()
	srv := httptest.NewUnstartedServer(h)
	srv.Config = b.Server(h)
	srv.Listener = b.Listener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, log
}

func TestPageRequestsReachNoAction(t *testing.T) {
	ti := &stubTI{}
	srv, _ := newServer(t, ti, guard.APIBounds)
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	const unblock = "/praxis/TI?action=$unblockpin&card=HBA-16&pintype=PIN.CH"
	tests := []struct {
		name   string
		header map[string]string
		status int
		want   string
	}{
		{"refuses an <img> of a page on another localhost port (same-site, no Origin)", map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "Sec-Fetch-Site"},
		{"refuses a cross-site request", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "Sec-Fetch-Site"},
		{"refuses a foreign Origin", map[string]string{"Origin": "http://evil.example"}, 403, "cross-origin"},
		{"refuses a page of another localhost port", map[string]string{"Origin": "http://localhost:8080", "Sec-Fetch-Site": "same-site"}, 403, "cross-origin"},
		{"refuses a rebound name", map[string]string{"Host": "evil.example:" + strings.Split(hostPort, ":")[1]}, 403, "127.0.0.1, localhost or [::1]"},
		{"serves practice software without fetch metadata", nil, 200, "ConnectorResponse"},
		{"serves what the user typed into the address bar", map[string]string{"Sec-Fetch-Site": "none"}, 200, "ConnectorResponse"},
		{"serves its own origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}, 200, "ConnectorResponse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ti.calls.Load()
			status, _, body := guardtest.Do(t, srv.Client(), guardtest.Request(t, http.MethodGet, srv.URL+unblock, "", nil, tt.header))
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("HTTP %d, want %d with %q:\n%s", status, tt.status, tt.want, body)
			}
			called := ti.calls.Load() != before
			if called != (tt.status == http.StatusOK) {
				t.Errorf("the action ran: %v", called)
			}
		})
	}
}

const bundleHead = "POST /praxis/Bundle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+xml\r\nContent-Length: 100000\r\n\r\n<Bundle xmlns=\"http://hl7.org/fhir\">"

func TestBrokenBodiesAreNoServerError(t *testing.T) {
	tests := []struct {
		name   string
		bounds guard.Bounds
		send   func(c net.Conn)
	}{
		{"a client that aborts mid-body gets 400, no ERROR", guard.APIBounds, func(c net.Conn) {
			_, _ = io.WriteString(c, bundleHead)
			_ = c.(*net.TCPConn).CloseWrite()
		}},
		{"a trickling client is cut off at the read deadline with 400, no ERROR",
			guard.Bounds{Header: 10 * time.Second, Request: 200 * time.Millisecond, Idle: time.Minute, Conns: 8},
			func(c net.Conn) {
				_, _ = io.WriteString(c, bundleHead)
				for range 5 { // a byte every 100 ms would take hours for the announced body
					time.Sleep(100 * time.Millisecond)
					if _, err := io.WriteString(c, " "); err != nil {
						return
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, log := newServer(t, &stubTI{}, tt.bounds)
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tt.send(c)
			lines := waitFor(t, log, "msg=request ")
			if strings.Contains(lines, "level=ERROR") || strings.Contains(lines, "status=500") {
				t.Errorf("logged as a server error:\n%s", lines)
			}
			if !strings.Contains(lines, "status=400") {
				t.Errorf("not answered 400:\n%s", lines)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if line, _ := bufio.NewReader(c).ReadString('\n'); line != "" && !strings.HasPrefix(line, "HTTP/1.1 400") {
				t.Errorf("answer %q", line)
			}
		})
	}
}

func TestClientGoneDuringAnActionIsNoServerError(t *testing.T) {
	ti := &stubTI{block: true, started: make(chan struct{})}
	srv, log := newServer(t, ti, guard.APIBounds)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /praxis/TI?action=$getcards HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	<-ti.started
	c.Close()
	lines := waitFor(t, log, "msg=request ")
	t.Run("logs no ERROR", func(t *testing.T) {
		if strings.Contains(lines, "level=ERROR") || !strings.Contains(lines, `msg="client went away"`) {
			t.Errorf("log:\n%s", lines)
		}
	})
	t.Run("answers no 500", func(t *testing.T) {
		if strings.Contains(lines, "status=500") {
			t.Errorf("log:\n%s", lines)
		}
	})
}

package api

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/storage"
)

// handle adapts a handler that returns an error.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

func notFound(http.ResponseWriter, *http.Request) error {
	return fhir.Fail(fhir.CodeNotFound, "", "no such endpoint; GET /metadata lists what this server offers")
}

func methodNotAllowed(_ http.ResponseWriter, r *http.Request) error {
	return fhir.Fail(fhir.CodeMethodNotAllowed, "", "%s is not allowed here; GET /metadata lists what this server offers", r.Method)
}

// recoverPanics turns a panic into a 500 OperationOutcome.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, errors.New("panic in handler"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// logRequests logs method, route pattern, status and duration — never the path's values, the
// query string or a body, which may all carry person data.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.Log.Info("request", "method", r.Method, "route", routePattern(r), "status", rec.status, "ms", time.Since(start).Milliseconds())
	})
}

func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return "(unmatched)"
}

// loopbackOnly refuses requests whose Host is not a loopback name (DNS rebinding) and browser
// requests from any other origin. No CORS headers are ever sent.
func (s *Server) loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.loopbackHost(r.Host) {
			s.writeError(w, r, fhir.Fail(fhir.CodeForbidden, "", "requests must name 127.0.0.1, localhost or [::1] as host"))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			s.writeError(w, r, fhir.Fail(fhir.CodeForbidden, "", "cross-origin requests are refused"))
			return
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			s.writeError(w, r, fhir.Fail(fhir.CodeForbidden, "", "cross-site requests are refused"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) loopbackHost(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), ""
	}
	switch strings.ToLower(host) {
	case "127.0.0.1", "localhost", "::1":
	default:
		return false
	}
	return port == "" || s.Port == 0 || port == strconv.Itoa(s.Port)
}

func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == "http" && strings.EqualFold(u.Host, host)
}

func (s *Server) touch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Touch != nil {
			s.Touch()
		}
		next.ServeHTTP(w, r)
	})
}

// unlockedTenant lets through requests for the tenant this server has unlocked: another existing
// tenant is 403, an unknown one 404.
func (s *Server) unlockedTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		alias := chi.URLParam(r, "tenant")
		if alias == s.Tenant {
			next.ServeHTTP(w, r)
			return
		}
		switch _, err := s.Tenants.Tenant(r.Context(), alias); {
		case err == nil:
			s.writeError(w, r, fhir.Fail(fhir.CodeForbidden, "", "this tenant is not unlocked on this server; log in to it with red serve"))
		case errors.Is(err, storage.ErrNotFound):
			s.writeError(w, r, fhir.Fail(fhir.CodeNotFound, "", "no such tenant"))
		default:
			s.writeError(w, r, err)
		}
	})
}

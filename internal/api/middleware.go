package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/guard"
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
		s.Log.LogAttrs(context.Background(), slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("route", routePattern(r)),
			slog.Int("status", rec.status), slog.Int64("ms", time.Since(start).Milliseconds()))
	})
}

func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return "(unmatched)"
}

// loopbackOnly applies guard's rules — loopback Host with this server's port, no foreign Origin,
// no request a browser makes for another site or origin — and bounds every body by the server's
// limit; refusals are OperationOutcomes. No CORS headers are ever sent.
func (s *Server) loopbackOnly(next http.Handler) http.Handler {
	return guard.Rules{Port: s.Port, MaxBytes: s.Limits.MaxBytes, Refuse: s.refuse}.Handler(next)
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, why guard.Refusal) {
	code := fhir.CodeForbidden
	if why.Status == http.StatusUnsupportedMediaType {
		code = fhir.CodeUnsupportedMediaType
	}
	s.writeError(w, r, fhir.Fail(code, "", "%s", why.Reason))
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

// acting attaches who acts to an API request's context (access.With): the logged-in user, and
// the API client its Authorization header names. A server that requires API tokens refuses a
// request without a valid one (401, with WWW-Authenticate). Without Access a request carries no
// principal, and what RED reserves to a role is refused.
func (s *Server) acting(next http.Handler) http.Handler {
	return s.attach(next, func(r *http.Request) (access.Principal, error) {
		return s.Access.Principal(r.Context(), r.Header.Get("Authorization"))
	})
}

// actingOnPage attaches the logged-in user to a request of red's own page, which guards itself
// with a session of its own (package ui) and needs no API token.
func (s *Server) actingOnPage(next http.Handler) http.Handler {
	return s.attach(next, func(r *http.Request) (access.Principal, error) { return s.Access.Page(r.Context()) })
}

func (s *Server) attach(next http.Handler, who func(r *http.Request) (access.Principal, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Access == nil {
			next.ServeHTTP(w, r)
			return
		}
		p, err := who(r)
		if err != nil {
			if fhir.CodeOf(err) == fhir.CodeUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="red"`)
			}
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(access.With(r.Context(), p)))
	})
}

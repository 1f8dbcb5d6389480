// Package guard keeps web pages and slow or numerous clients away from the HTTP listeners red
// opens on loopback — the API and the three TI simulators — with one set of rules, so that each
// listener only decides how a refusal reads:
//
//   - the Host header must name 127.0.0.1, localhost or [::1] with the listener's own port: a page
//     whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name;
//   - an Origin header must be the request's own origin: a page of another origin (a CSRF form,
//     a fetch) is refused, and so is a preflight, since no CORS headers are ever sent;
//   - Sec-Fetch-Site, when a browser sends it, must be same-origin or none (typed by the user):
//     same-site (an <img> on http://localhost:8080) and cross-site are refused for every method,
//     GET included, because RED's PIN and eGK actions are GETs. Clients that do not send it (curl,
//     practice software, Postman) are served;
//   - a body must carry one of the media types its route takes (Rules.MediaTypes), so that a page
//     cannot send a "simple" text/plain or form body to a SOAP or JSON endpoint;
//   - every body is bounded (http.MaxBytesReader); exceeding the bound is the handler's to answer.
//
// Bounds are the http.Server timeouts and the listener's bound on open connections, against
// clients that trickle their bodies or open connection after connection.
package guard

import (
	"context"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Refusal says why a request is refused.
type Refusal struct {
	Status int    // http.StatusForbidden, or http.StatusUnsupportedMediaType for a body's type
	Reason string // one English sentence for the caller; it never quotes the request
}

// The reasons of the refusals.
const (
	ReasonHost      = "requests must name 127.0.0.1, localhost or [::1] as host, with this server's port"
	ReasonOrigin    = "cross-origin requests are refused"
	ReasonFetchSite = "requests a browser makes for another site or origin are refused (Sec-Fetch-Site)"
)

// Rules are the checks of Handler.
type Rules struct {
	// Port is the only port a Host header may name. 0 means the port of the listener the request
	// came in on (any port for a request that did not come through a listener, as in a test).
	Port int
	// MediaTypes gives the media types (lower case, no parameters) a body of r may have; nil
	// means any. A request without a body passes.
	MediaTypes func(r *http.Request) []string
	// MaxBytes bounds every body; 0 means no bound.
	MaxBytes int64
	// Refuse answers a refused request in the listener's own style. Required.
	Refuse func(w http.ResponseWriter, r *http.Request, why Refusal)
}

// Handler serves requests that pass the rules with next, with their bodies bounded, and answers
// the others with Refuse.
func (ru Rules) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if why := ru.Check(r); why != nil {
			ru.Refuse(w, r, *why)
			return
		}
		if ru.MaxBytes > 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, ru.MaxBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// Check returns why r must be refused, or nil.
func (ru Rules) Check(r *http.Request) *Refusal {
	if !ru.loopbackHost(r) {
		return &Refusal{http.StatusForbidden, ReasonHost}
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		return &Refusal{http.StatusForbidden, ReasonOrigin}
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return &Refusal{http.StatusForbidden, ReasonFetchSite}
	}
	if ru.MediaTypes != nil && r.ContentLength != 0 { // -1: a body of unknown length
		if types := ru.MediaTypes(r); types != nil {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || !slices.Contains(types, mt) {
				return &Refusal{http.StatusUnsupportedMediaType, "send the body as " + strings.Join(types, " or ")}
			}
		}
	}
	return nil
}

func (ru Rules) loopbackHost(r *http.Request) bool {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = strings.Trim(r.Host, "[]"), ""
	}
	switch strings.ToLower(host) {
	case "127.0.0.1", "localhost", "::1":
	default:
		return false
	}
	want := ru.Port
	if want == 0 {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
			want = a.Port
		}
	}
	// without a port the Host names port 80, which a browser only sends to a listener on port 80
	return port == "" || want == 0 || port == strconv.Itoa(want)
}

func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == "http" && u.Path == "" && strings.EqualFold(u.Host, host)
}

// BodyBroken reports whether err, met while reading a request body, is the client's doing: it
// closed the connection before the body's end, sent it slower than the listener's read deadline
// (Bounds.Request) or framed it wrongly. Only a body over its bound (*http.MaxBytesError) is
// not. Such a request is no fault of the server: answer it with 400 (or not at all) and log it at
// INFO at most.
func BodyBroken(err error) bool {
	var mbe *http.MaxBytesError
	return err != nil && !errors.As(err, &mbe)
}

// ClientGone reports whether r's client went away while r was served: its connection closed,
// which cancels r's context. An error a handler meets then is no fault of the server either.
func ClientGone(r *http.Request) bool {
	return errors.Is(r.Context().Err(), context.Canceled)
}

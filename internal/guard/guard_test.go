package guard_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redclone/red/internal/guard"
	"github.com/redclone/red/internal/guard/guardtest"
)

// rulesServer serves rules in front of a handler that reads the body and answers 200 "served",
// or 413 when the body is over the bound; refusals answer "refused: reason".
func rulesServer(t *testing.T, rules guard.Rules) (*httptest.Server, string) {
	t.Helper()
	rules.Refuse = func(w http.ResponseWriter, _ *http.Request, why guard.Refusal) {
		http.Error(w, "refused: "+why.Reason, why.Status)
	}
	srv := httptest.NewServer(rules.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		_, _ = io.WriteString(w, "served")
	})))
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://127.0.0.1:")
}

func TestRules(t *testing.T) {
	srv, port := rulesServer(t, guard.Rules{
		MaxBytes: 16,
		MediaTypes: func(r *http.Request) []string {
			if r.URL.Path == "/json" {
				return []string{"application/json"}
			}
			return nil
		},
	})
	self := "http://127.0.0.1:" + port
	tests := []struct {
		name, method, path, contentType, body string
		header                                map[string]string
		status                                int
		want                                  string
	}{
		{"serves 127.0.0.1 with the listener's port", "GET", "/", "", "", map[string]string{"Host": "127.0.0.1:" + port}, 200, "served"},
		{"serves localhost", "GET", "/", "", "", map[string]string{"Host": "localhost:" + port}, 200, "served"},
		{"serves [::1]", "GET", "/", "", "", map[string]string{"Host": "[::1]:" + port}, 200, "served"},
		{"serves a loopback name without port", "GET", "/", "", "", map[string]string{"Host": "localhost"}, 200, "served"},
		{"refuses a foreign Host (DNS rebinding)", "GET", "/", "", "", map[string]string{"Host": "evil.example:" + port}, 403, guard.ReasonHost},
		{"refuses a loopback Host with another port", "GET", "/", "", "", map[string]string{"Host": "127.0.0.1:1"}, 403, guard.ReasonHost},
		{"refuses a name that only begins like localhost", "GET", "/", "", "", map[string]string{"Host": "localhost.evil.example:" + port}, 403, guard.ReasonHost},
		{"serves its own Origin", "POST", "/json", "application/json", "{}", map[string]string{"Origin": self}, 200, "served"},
		{"refuses a foreign Origin", "POST", "/json", "application/json", "{}", map[string]string{"Origin": "http://evil.example"}, 403, guard.ReasonOrigin},
		{"refuses the Origin of another loopback port", "GET", "/", "", "", map[string]string{"Origin": "http://localhost:8080"}, 403, guard.ReasonOrigin},
		{"refuses Origin null (sandboxed pages, files)", "GET", "/", "", "", map[string]string{"Origin": "null"}, 403, guard.ReasonOrigin},
		{"refuses its own host over https", "GET", "/", "", "", map[string]string{"Origin": "https://127.0.0.1:" + port}, 403, guard.ReasonOrigin},
		{"refuses a same-site GET without Origin (an <img> on localhost:8080)", "GET", "/", "", "", map[string]string{"Sec-Fetch-Site": "same-site"}, 403, guard.ReasonFetchSite},
		{"refuses a cross-site GET", "GET", "/", "", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, guard.ReasonFetchSite},
		{"refuses an unknown Sec-Fetch-Site", "GET", "/", "", "", map[string]string{"Sec-Fetch-Site": "elsewhere"}, 403, guard.ReasonFetchSite},
		{"serves a same-origin fetch", "GET", "/", "", "", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200, "served"},
		{"serves what the user typed (Sec-Fetch-Site none)", "GET", "/", "", "", map[string]string{"Sec-Fetch-Site": "none"}, 200, "served"},
		{"refuses a text/plain body where JSON is taken", "POST", "/json", "text/plain", `{"a":1}`, nil, 415, "application/json"},
		{"refuses a form where JSON is taken", "POST", "/json", "application/x-www-form-urlencoded", "a=1", nil, 415, "application/json"},
		{"refuses a body without Content-Type where JSON is taken", "POST", "/json", "", "{}", nil, 415, "application/json"},
		{"refuses an unparsable Content-Type", "POST", "/json", "application/json; charset", "{}", nil, 415, "application/json"},
		{"serves JSON with parameters", "POST", "/json", "Application/JSON; charset=UTF-8", "{}", nil, 200, "served"},
		{"serves a POST without body and Content-Type", "POST", "/json", "", "", nil, 200, "served"},
		{"serves any body where the route names no types", "POST", "/any", "text/plain", "x", nil, 200, "served"},
		{"bounds the body", "POST", "/any", "text/plain", strings.Repeat("x", 17), nil, 413, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			status, header, got := guardtest.Do(t, srv.Client(), guardtest.Request(t, tt.method, srv.URL+tt.path, tt.contentType, body, tt.header))
			if status != tt.status || !strings.Contains(got, tt.want) {
				t.Errorf("HTTP %d %q, want %d with %q", status, got, tt.status, tt.want)
			}
			if header.Get("Access-Control-Allow-Origin") != "" {
				t.Error("a CORS header")
			}
		})
	}
}

func TestRulesPort(t *testing.T) {
	// a configured port is the only one, whatever the listener's
	srv, _ := rulesServer(t, guard.Rules{Port: 29221})
	for _, tt := range []struct {
		name, host string
		status     int
	}{
		{"serves the configured port", "127.0.0.1:29221", 200},
		{"refuses the listener's port when another is configured", strings.TrimPrefix(srv.URL, "http://"), 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := guardtest.Request(t, http.MethodGet, srv.URL, "", nil, map[string]string{"Host": tt.host})
			if status, _, body := guardtest.Do(t, srv.Client(), req); status != tt.status {
				t.Errorf("HTTP %d, want %d: %s", status, tt.status, body)
			}
		})
	}
}

func TestBodyBroken(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"a complete body is not broken", nil, false},
		{"a body over its bound is not broken", &http.MaxBytesError{Limit: 1}, false},
		{"a body that ended early is broken", io.ErrUnexpectedEOF, true},
		{"a body that failed to arrive is broken", errors.New("read tcp: i/o timeout"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := guard.BodyBroken(tt.err); got != tt.want {
				t.Errorf("BodyBroken(%v) = %v", tt.err, got)
			}
		})
	}
}

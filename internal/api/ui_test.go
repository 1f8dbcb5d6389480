package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/guard/guardtest"
	"github.com/redclone/red/storage"
)

// stubUI counts what reaches the page's handlers.
type stubUI struct{ page, asset, state, sign atomic.Int32 }

func (u *stubUI) Page(w http.ResponseWriter, _ *http.Request)  { u.page.Add(1); w.WriteHeader(200) }
func (u *stubUI) Asset(w http.ResponseWriter, _ *http.Request) { u.asset.Add(1); w.WriteHeader(200) }
func (u *stubUI) State(w http.ResponseWriter, _ *http.Request) { u.state.Add(1); w.WriteHeader(200) }
func (u *stubUI) Sign(w http.ResponseWriter, _ *http.Request)  { u.sign.Add(1); w.WriteHeader(202) }

type oneOtherTenant struct{}

func (oneOtherTenant) Tenant(_ context.Context, alias string) (storage.Tenant, error) {
	if alias == "labor" {
		return storage.Tenant{Alias: alias}, nil
	}
	return storage.Tenant{}, storage.ErrNotFound
}

func uiServer(t *testing.T, u api.UI) *httptest.Server {
	t.Helper()
	s := &api.Server{Tenant: "praxis", TI: &stubTI{}, Tenants: oneOtherTenant{}, Limits: fhir.DefaultLimits, Log: slog.New(slog.DiscardHandler)}
	if u != nil {
		s.UI = u
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// The page is routed under the unlocked tenant only, behind the API's guards.
func TestUIRoutes(t *testing.T) {
	u := &stubUI{}
	srv := uiServer(t, u)
	noRedirect := *srv.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		reached            *atomic.Int32
	}{
		{"the page", "GET", "/praxis/ui/", nil, 200, &u.page},
		{"its script", "GET", "/praxis/ui/app.js", nil, 200, &u.asset},
		{"its style sheet", "GET", "/praxis/ui/app.css", nil, 200, &u.asset},
		{"its icon", "GET", "/praxis/ui/icon.svg", nil, 200, &u.asset},
		{"its state", "GET", "/praxis/ui/state", nil, 200, &u.state},
		{"signing", "POST", "/praxis/ui/sign", map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}, 202, &u.sign},
		{"another tenant's page is 403", "GET", "/labor/ui/", nil, 403, &u.page},
		{"an unknown tenant's page is 404", "GET", "/nobody/ui/", nil, 404, &u.page},
		{"signing from another origin is 403", "POST", "/praxis/ui/sign", map[string]string{"Origin": "http://evil.example"}, 403, &u.sign},
		{"signing cross-site is 403", "POST", "/praxis/ui/sign", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, &u.sign},
		{"the page for a rebound name is 403", "GET", "/praxis/ui/", map[string]string{"Host": "evil.example"}, 403, &u.page},
		{"the page by POST is 405", "POST", "/praxis/ui/", nil, 405, &u.page},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := c.reached.Load()
			status, _, body := guardtest.Do(t, srv.Client(), guardtest.Request(t, c.method, srv.URL+c.path, "application/json", []byte("{}"), c.header))
			if status != c.status {
				t.Errorf("%d, want %d\n%s", status, c.status, body)
			}
			if reached := c.reached.Load() != before; reached != (c.status < 300) {
				t.Errorf("reached the handler: %v", reached)
			}
		})
	}
	t.Run("/praxis/ui goes to /praxis/ui/", func(t *testing.T) {
		resp, err := noRedirect.Get(srv.URL + "/praxis/ui")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "/praxis/ui/" {
			t.Errorf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("without a page there is none", func(t *testing.T) {
		srv := uiServer(t, nil)
		if status, _, body := guardtest.Do(t, srv.Client(), guardtest.Request(t, "GET", srv.URL+"/praxis/ui/", "", nil, nil)); status != 404 {
			t.Errorf("%d\n%s", status, body)
		}
	})
}

package api_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/guard/guardtest"
	"github.com/redclone/red/internal/telematik"
)

// tokenAccess is an api.Access that requires the token "good" (named "kasse-pvs"), or fails
// as told.
type tokenAccess struct{ fail error }

var anna = access.Principal{Tenant: "praxis", User: "anna", Roles: []access.Role{access.Physician}, Workstation: "ws-1"}

func (a tokenAccess) Principal(_ context.Context, authorization string) (access.Principal, error) {
	switch {
	case a.fail != nil:
		return access.Principal{}, a.fail
	case authorization != "Bearer good":
		return access.Principal{}, fhir.Fail(fhir.CodeUnauthorized, "", "this server requires an API token")
	}
	p := anna
	p.Client = "kasse-pvs"
	return p, nil
}

func (a tokenAccess) Page(context.Context) (access.Principal, error) { return anna, a.fail }

// seen keeps who the last request that reached an action or the page acted as.
type seen struct {
	mu  sync.Mutex
	who *access.Principal
}

func (s *seen) note(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := access.From(ctx); ok {
		s.who = &p
	} else {
		s.who = &access.Principal{User: "(nobody)"}
	}
}

func (s *seen) take() *access.Principal {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.who
	s.who = nil
	return w
}

// seeingTI is a TI whose /TI actions note who acts.
type seeingTI struct {
	stubTI
	seen *seen
}

func (s *seeingTI) Do(ctx context.Context, action string, q url.Values, body *etree.Element) (telematik.Answer, error) {
	s.seen.note(ctx)
	return s.stubTI.Do(ctx, action, q, body)
}

// seeingUI is a page that notes who acts.
type seeingUI struct {
	stubUI
	seen *seen
}

func (u *seeingUI) Page(w http.ResponseWriter, r *http.Request) {
	u.seen.note(r.Context())
	u.stubUI.Page(w, r)
}

func accessServer(t *testing.T, a api.Access) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	h := (&api.Server{Tenant: "praxis", TI: &seeingTI{seen: s}, UI: &seeingUI{seen: s}, Tenants: oneOtherTenant{},
		Limits: fhir.DefaultLimits, Log: slog.New(slog.DiscardHandler), Access: a}).Handler()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, s
}

// Every request under the tenant carries who acts; a server that requires API tokens refuses a
// request without a valid one before it reaches anything, except for red's own page.
func TestEveryRequestCarriesWhoActs(t *testing.T) {
	requiring, _ := accessServer(t, tokenAccess{})
	for _, c := range []struct {
		name, path, authorization string
		a                         api.Access
		status                    int
		who                       *access.Principal // nil: nothing was reached
	}{
		{"an API request acts as the logged-in user through its client", "/praxis/TI?action=$getcards", "Bearer good", tokenAccess{}, 200,
			&access.Principal{Tenant: "praxis", User: "anna", Roles: anna.Roles, Workstation: "ws-1", Client: "kasse-pvs"}},
		{"a request without a valid token is 401", "/praxis/TI?action=$getcards", "Bearer bad", tokenAccess{}, 401, nil},
		{"the page needs no API token and acts as the logged-in user", "/praxis/ui/", "", tokenAccess{}, 200, &anna},
		{"a failure to tell who acts is 500", "/praxis/TI?action=$getcards", "Bearer good", tokenAccess{fail: errors.New("store gone")}, 500, nil},
		{"the page too", "/praxis/ui/", "", tokenAccess{fail: errors.New("store gone")}, 500, nil},
		{"without Access a request acts for nobody", "/praxis/TI?action=$getcards", "", nil, 200, &access.Principal{User: "(nobody)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, s := accessServer(t, c.a)
			status, header, body := guardtest.Do(t, srv.Client(), guardtest.Request(t, http.MethodGet, srv.URL+c.path, "", nil,
				map[string]string{"Authorization": c.authorization}))
			if status != c.status {
				t.Errorf("status %d, want %d\n%s", status, c.status, body)
			}
			got := s.take()
			if (got == nil) != (c.who == nil) || got != nil && (got.User != c.who.User || got.Client != c.who.Client || got.Workstation != c.who.Workstation || len(got.Roles) != len(c.who.Roles)) {
				t.Errorf("acted as %+v, want %+v", got, c.who)
			}
			if status == 401 {
				if header.Get("WWW-Authenticate") != `Bearer realm="red"` || !strings.Contains(body, `<code value="login"/>`) || !strings.Contains(body, "requires an API token") {
					t.Errorf("%v\n%s", header, body)
				}
			}
		})
	}
	t.Run("the CapabilityStatement needs no token", func(t *testing.T) {
		if status, _, body := guardtest.Do(t, requiring.Client(), guardtest.Request(t, http.MethodGet, requiring.URL+"/metadata", "", nil, nil)); status != 200 {
			t.Errorf("%d\n%s", status, body)
		}
	})
	t.Run("another tenant is 403 before the token is looked at", func(t *testing.T) {
		if status, _, body := guardtest.Do(t, requiring.Client(), guardtest.Request(t, http.MethodGet, requiring.URL+"/labor/Patient", "", nil, nil)); status != 403 {
			t.Errorf("%d\n%s", status, body)
		}
	})
}

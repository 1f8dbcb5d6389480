package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/internal/ui"
)

// fakeTI holds open prescriptions and signs them as told: SignPrescriptions reports the PIN and
// each step, waits for release (or its context), and activates all but those in fail.
type fakeTI struct {
	mu      sync.Mutex
	open    []erp.Prescription
	hbas    []telematik.HBA
	hbaErr  error
	fail    map[string]string // id → reason its activation failed
	signErr error             // the batch fails as a whole
	release chan struct{}     // nil: no wait
	started chan string       // the handle of each batch, when set
	ids     []string          // the ids of the last batch
	who     access.Principal  // who the last batch ran as
}

func (f *fakeTI) OpenPrescriptions(context.Context) ([]erp.Prescription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]erp.Prescription(nil), f.open...), nil
}

func (f *fakeTI) PrescribingHBAs(context.Context) ([]telematik.HBA, error) {
	return f.hbas, f.hbaErr
}

func (f *fakeTI) SignPrescriptions(ctx context.Context, handle string, ids []string, w telematik.Watch) ([]erp.Prescription, error) {
	f.mu.Lock()
	f.ids = ids
	f.who, _ = access.From(ctx)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- handle
	}
	w.PIN()
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, fhir.Fail(fhir.CodeTimeout, "", "the Konnektor did not answer")
		}
	}
	if f.signErr != nil {
		return nil, f.signErr
	}
	w.Signing()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out, still []erp.Prescription
	for _, p := range f.open {
		p.State = erp.Created
		w.Step(p)
		if reason, ok := f.fail[p.ID]; ok {
			p.State, p.Reason = erp.Signed, reason
			w.Step(p)
			still = append(still, p)
		} else {
			p.State = erp.Activated
			w.Step(p)
		}
		out = append(out, p)
	}
	f.open = still
	return out, nil
}

var hba = telematik.HBA{Handle: "HBA-16", Holder: "Dr. med. Hanna Berger", ICCSN: "80276883110000177001"}

func prescription(id, family string) erp.Prescription {
	return erp.Prescription{ID: id, State: erp.Pending, Patient: erp.Person{Family: family, Given: "Ludger", Birthday: "1935-06-22"},
		Medication: "Sumatriptan-1a Pharma 100 mg Tabletten", Queued: time.Date(2026, 12, 7, 14, 30, 0, 0, time.UTC)}
}

func newHandler(t *testing.T, ti *fakeTI, o ui.Options) *ui.Handler {
	t.Helper()
	o.TI = ti
	h, err := ui.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ti.release != nil {
			select {
			case <-ti.release:
			default:
				close(ti.release)
			}
		}
		_ = h.Close(context.Background())
	})
	return h
}

type answer struct {
	status int
	header http.Header
	body   string
}

// doctor is who the requests of the tests act as, unless they say otherwise (callAs).
var doctor = access.Principal{Tenant: "praxis", User: "anna", Roles: []access.Role{access.Physician}, Workstation: "ws-1"}

func call(handler http.HandlerFunc, method, target, contentType, body string, header ...string) answer {
	return callAs(doctor, handler, method, target, contentType, body, header...)
}

// callAs is call with the request acting as who.
func callAs(who access.Principal, handler http.HandlerFunc, method, target, contentType, body string, header ...string) answer {
	r := httptest.NewRequestWithContext(access.With(context.Background(), who), method, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if body == "" {
		r.ContentLength = 0
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	handler(w, r)
	return answer{w.Code, w.Header(), w.Body.String()}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// pageToken loads the page and reads its CSRF token.
func pageToken(t *testing.T, h *ui.Handler) string {
	t.Helper()
	a := call(h.Page, "GET", "/praxis/ui/", "", "")
	m := csrfField.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no token in the page:\n%s", a.body)
	}
	return m[1]
}

func state(t *testing.T, h *ui.Handler, token string) ui.State {
	t.Helper()
	a := call(h.State, "GET", "/praxis/ui/state", "", "", "X-CSRF-Token", token)
	if a.status != 200 {
		t.Fatalf("state: %d %s", a.status, a.body)
	}
	var s ui.State
	if err := json.Unmarshal([]byte(a.body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// finished waits for the batch to end.
func finished(t *testing.T, h *ui.Handler, token string) ui.Batch {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if s := state(t, h, token); s.Batch != nil && !s.Batch.Running {
			return *s.Batch
		}
	}
	t.Fatal("the batch did not end")
	return ui.Batch{}
}

func TestHeaders(t *testing.T) {
	h := newHandler(t, &fakeTI{hbas: []telematik.HBA{hba}}, ui.Options{Tenant: "praxis"})
	token := pageToken(t, h)
	for _, c := range []struct {
		name    string
		handler http.HandlerFunc
		target  string
		typ     string
		header  []string
	}{
		{"page", h.Page, "/praxis/ui/", "text/html; charset=utf-8", nil},
		{"script", h.Asset, "/praxis/ui/app.js", "text/javascript; charset=utf-8", nil},
		{"style sheet", h.Asset, "/praxis/ui/app.css", "text/css; charset=utf-8", nil},
		{"icon", h.Asset, "/praxis/ui/icon.svg", "image/svg+xml", nil},
		{"state", h.State, "/praxis/ui/state", "application/json; charset=utf-8", []string{"X-CSRF-Token", token}},
		{"a refusal", h.State, "/praxis/ui/state", "application/json; charset=utf-8", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := call(c.handler, "GET", c.target, "", "", c.header...)
			for k, want := range map[string]string{
				"Content-Type":            c.typ,
				"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-store",
			} {
				if got := a.header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
	t.Run("an unknown asset is 404", func(t *testing.T) {
		if a := call(h.Asset, "GET", "/praxis/ui/page.html", "", ""); a.status != 404 {
			t.Errorf("%d %s", a.status, a.body)
		}
	})
}

func TestPage(t *testing.T) {
	ti := &fakeTI{open: []erp.Prescription{prescription("mr-1", `<script>alert("x")</script>`)}, hbas: []telematik.HBA{hba}}
	h := newHandler(t, ti, ui.Options{Tenant: "praxis"})
	a := call(h.Page, "GET", "/praxis/ui/", "", "")
	if a.status != 200 {
		t.Fatalf("%d\n%s", a.status, a.body)
	}
	t.Run("escapes person data", func(t *testing.T) {
		if strings.Contains(a.body, "<script>alert") || !strings.Contains(a.body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;, Ludger") {
			t.Errorf("not escaped:\n%s", a.body)
		}
	})
	t.Run("shows patient, medication and date", func(t *testing.T) {
		for _, want := range []string{`data-id="mr-1"`, "born 1935-06-22", "Sumatriptan-1a Pharma 100 mg Tabletten", "2026-12-07 15:30", `data-state="pending"`} {
			if !strings.Contains(a.body, want) {
				t.Errorf("lacks %q", want)
			}
		}
	})
	t.Run("has no inline script or style and loads nothing from elsewhere", func(t *testing.T) {
		for _, bad := range []string{"<script>", "<style", "style=", "onclick", "http://", "https://", "javascript:"} {
			if strings.Contains(strings.ReplaceAll(a.body, "<script>alert", ""), bad) {
				t.Errorf("holds %q", bad)
			}
		}
		if !strings.Contains(a.body, `<script src="app.js" defer></script>`) {
			t.Error("no script")
		}
	})
	t.Run("names the only HBA", func(t *testing.T) {
		if !strings.Contains(a.body, `<input type="hidden" name="card" value="HBA-16">`) || !strings.Contains(a.body, "Dr. med. Hanna Berger") {
			t.Errorf("no HBA:\n%s", a.body)
		}
	})
	t.Run("offers several HBAs", func(t *testing.T) {
		ti.hbas = []telematik.HBA{hba, {Handle: "HBA-20", Holder: "Dr. Jonas Weber"}}
		defer func() { ti.hbas = []telematik.HBA{hba} }()
		a := call(h.Page, "GET", "/praxis/ui/", "", "")
		if !strings.Contains(a.body, `<option value="HBA-20">Dr. Jonas Weber (HBA-20)</option>`) {
			t.Errorf("no choice:\n%s", a.body)
		}
	})
	t.Run("says why the HBAs are unknown", func(t *testing.T) {
		ti.hbaErr = fhir.Fail(fhir.CodeTransient, "", "the Konnektor cannot be reached")
		defer func() { ti.hbaErr = nil }()
		a := call(h.Page, "GET", "/praxis/ui/", "", "")
		if a.status != 200 || !strings.Contains(a.body, "the Konnektor cannot be reached") {
			t.Errorf("%d\n%s", a.status, a.body)
		}
	})
	t.Run("the token is new for each handler", func(t *testing.T) {
		other := newHandler(t, ti, ui.Options{Tenant: "praxis"})
		if pageToken(t, h) == pageToken(t, other) {
			t.Error("the same token twice")
		}
	})
}

func TestTokens(t *testing.T) {
	h := newHandler(t, &fakeTI{hbas: []telematik.HBA{hba}}, ui.Options{Tenant: "praxis"})
	page := pageToken(t, h)
	wrong := "x" + page[1:] // one character off (the token is random: it may begin with x)
	if wrong == page {
		wrong = "y" + page[1:]
	}
	for _, c := range []struct {
		name   string
		header []string
		status int
	}{
		{"no token", nil, 403},
		{"a wrong token", []string{"X-CSRF-Token", wrong}, 403},
		{"the page's token", []string{"X-CSRF-Token", page}, 200},
		{"the client token", []string{"Authorization", "Bearer " + h.ClientToken()}, 200},
		{"the page's token as bearer", []string{"Authorization", "Bearer " + page}, 403},
		{"the client token as the page's", []string{"X-CSRF-Token", h.ClientToken()}, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			if a := call(h.State, "GET", "/praxis/ui/state", "", "", c.header...); a.status != c.status {
				t.Errorf("%d, want %d: %s", a.status, c.status, a.body)
			}
		})
	}
	t.Run("a POST without the token starts nothing", func(t *testing.T) {
		ti := &fakeTI{open: []erp.Prescription{prescription("mr-1", "Königsstein")}, hbas: []telematik.HBA{hba}}
		h := newHandler(t, ti, ui.Options{})
		for _, c := range []struct {
			name, typ, body string
			header          []string
		}{
			{"JSON", "application/json", "{}", nil},
			{"a form", "application/x-www-form-urlencoded", "card=HBA-16", nil},
			{"a form with a wrong token", "application/x-www-form-urlencoded", "csrf=wrong", nil},
			{"with the token but cross-site", "application/json", "{}", []string{"X-CSRF-Token", pageToken(t, h), "Sec-Fetch-Site", "cross-site"}},
			{"with the token but same-site", "application/json", "{}", []string{"X-CSRF-Token", pageToken(t, h), "Sec-Fetch-Site", "same-site"}},
		} {
			if a := call(h.Sign, "POST", "/praxis/ui/sign", c.typ, c.body, c.header...); a.status != 403 {
				t.Errorf("%s: %d %s", c.name, a.status, a.body)
			}
		}
		if s := state(t, h, pageToken(t, h)); s.Batch != nil {
			t.Errorf("a batch started: %+v", s.Batch)
		}
	})
}

func TestBatch(t *testing.T) {
	ti := &fakeTI{
		open:    []erp.Prescription{prescription("mr-1", "Königsstein"), prescription("mr-2", "Topp-Glücklich")},
		hbas:    []telematik.HBA{hba},
		fail:    map[string]string{"mr-2": "the E-Rezept-Fachdienst did not activate the Task: down"},
		release: make(chan struct{}),
		started: make(chan string, 1),
	}
	h := newHandler(t, ti, ui.Options{Tenant: "praxis"})
	token := pageToken(t, h)
	a := call(h.Sign, "POST", "/praxis/ui/sign", "application/json", `{"card":"HBA-16"}`, "X-CSRF-Token", token, "Sec-Fetch-Site", "same-origin")
	if a.status != 202 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if handle := <-ti.started; handle != "HBA-16" {
		t.Errorf("signed with %q", handle)
	}
	t.Run("runs as the user who started it", func(t *testing.T) {
		ti.mu.Lock()
		defer ti.mu.Unlock()
		if ti.who.User != "anna" || !ti.who.Has(access.Physician) {
			t.Errorf("the batch runs as %+v", ti.who)
		}
	})
	t.Run("shows the running batch, waiting for the PIN", func(t *testing.T) {
		var s ui.State
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if s = state(t, h, token); s.Batch != nil && s.Batch.Phase == ui.PhasePIN {
				break
			}
		}
		b := s.Batch
		if b == nil || !b.Running || b.Phase != ui.PhasePIN || !strings.Contains(b.Message, "card terminal") || b.Card != hba.Holder || len(b.Items) != 2 || b.Total != 6 || b.Done != 0 {
			t.Errorf("%+v", b)
		}
	})
	t.Run("a second batch meanwhile is 409", func(t *testing.T) {
		if a := call(h.Sign, "POST", "/praxis/ui/sign", "application/json", `{}`, "X-CSRF-Token", token); a.status != 409 || !strings.Contains(a.body, "running") {
			t.Errorf("%d %s", a.status, a.body)
		}
	})
	close(ti.release)
	b := finished(t, h, token)
	t.Run("tells each prescription's outcome", func(t *testing.T) {
		if b.Phase != ui.PhaseDone || b.Error != "" || b.Message != "Finished: 1 of 2 activated." || b.Done != 5 {
			t.Errorf("%+v", b)
		}
		if r := b.Items[0]; r.ID != "mr-1" || r.State != "activated" || r.Reason != "" || r.Patient != "Königsstein, Ludger" {
			t.Errorf("%+v", r)
		}
		if r := b.Items[1]; r.ID != "mr-2" || r.State != "signed" || !strings.Contains(r.Reason, "did not activate") {
			t.Errorf("%+v", r)
		}
	})
	t.Run("lists what is still open", func(t *testing.T) {
		if s := state(t, h, token); len(s.Pending) != 1 || s.Pending[0].ID != "mr-2" {
			t.Errorf("%+v", s.Pending)
		}
	})
	t.Run("signs exactly what was listed", func(t *testing.T) {
		if strings.Join(ti.ids, ",") != "mr-1,mr-2" {
			t.Errorf("%v", ti.ids)
		}
	})
	t.Run("a form's POST starts the next batch and goes back to the page", func(t *testing.T) {
		ti.release = nil
		ti.fail = nil
		form := url.Values{"csrf": {token}, "card": {"HBA-16"}}.Encode()
		a := call(h.Sign, "POST", "/praxis/ui/sign", "application/x-www-form-urlencoded", form)
		if a.status != 303 || a.header.Get("Location") != "/praxis/ui/" {
			t.Fatalf("%d %v %s", a.status, a.header, a.body)
		}
		<-ti.started
		if b := finished(t, h, token); b.Message != "Finished: 1 of 1 activated." {
			t.Errorf("%+v", b)
		}
	})
}

func TestBatchRefusals(t *testing.T) {
	for _, c := range []struct {
		name   string
		ti     *fakeTI
		body   string
		status int
		want   string
	}{
		{"nothing to sign", &fakeTI{hbas: []telematik.HBA{hba}}, `{}`, 409, "nothing to sign"},
		{"no HBA", &fakeTI{open: []erp.Prescription{prescription("mr-1", "A")}}, `{}`, 409, "no physician's or dentist's HBA is inserted"},
		{"several HBAs and no choice", &fakeTI{open: []erp.Prescription{prescription("mr-1", "A")}, hbas: []telematik.HBA{hba, {Handle: "HBA-20", Holder: "Dr. Weber"}}}, `{}`, 400, "HBA-16 (Dr. med. Hanna Berger), HBA-20 (Dr. Weber)"},
		{"an HBA that is not inserted", &fakeTI{open: []erp.Prescription{prescription("mr-1", "A")}, hbas: []telematik.HBA{hba}}, `{"card":"SMC-B-15"}`, 404, "no physician's or dentist's HBA with this handle"},
		{"the Konnektor down", &fakeTI{open: []erp.Prescription{prescription("mr-1", "A")}, hbaErr: fhir.Fail(fhir.CodeTransient, "", "the Konnektor cannot be reached")}, `{}`, 502, "cannot be reached"},
		{"a body that is no JSON", &fakeTI{open: []erp.Prescription{prescription("mr-1", "A")}, hbas: []telematik.HBA{hba}}, `card=1`, 400, "send"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHandler(t, c.ti, ui.Options{})
			a := call(h.Sign, "POST", "/praxis/ui/sign", "application/json", c.body, "X-CSRF-Token", pageToken(t, h))
			var e struct{ Error string }
			_ = json.Unmarshal([]byte(a.body), &e)
			if a.status != c.status || !strings.Contains(e.Error, c.want) {
				t.Errorf("%d %s, want %d with %q", a.status, a.body, c.status, c.want)
			}
		})
	}
	t.Run("a user who is no physician is 403 and nothing is signed", func(t *testing.T) {
		ti := &fakeTI{open: []erp.Prescription{prescription("mr-1", "A")}, hbas: []telematik.HBA{hba}, started: make(chan string, 1)}
		h := newHandler(t, ti, ui.Options{})
		mfa := access.Principal{Tenant: "praxis", User: "ben", Roles: []access.Role{access.Assistant, access.Admin}}
		a := callAs(mfa, h.Sign, "POST", "/praxis/ui/sign", "application/json", `{}`, "X-CSRF-Token", pageToken(t, h))
		if a.status != 403 || !strings.Contains(a.body, "signing e-prescriptions needs a user with the role physician; the logged-in user has: assistant, admin") {
			t.Errorf("%d %s", a.status, a.body)
		}
		if len(ti.started) != 0 {
			t.Error("a batch started")
		}
	})
	t.Run("another media type is 415", func(t *testing.T) {
		h := newHandler(t, &fakeTI{}, ui.Options{})
		if a := call(h.Sign, "POST", "/praxis/ui/sign", "text/plain", "{}", "X-CSRF-Token", pageToken(t, h)); a.status != 415 {
			t.Errorf("%d %s", a.status, a.body)
		}
	})
	t.Run("a form's refusal shows on the page", func(t *testing.T) {
		h := newHandler(t, &fakeTI{hbas: []telematik.HBA{hba}}, ui.Options{})
		a := call(h.Sign, "POST", "/praxis/ui/sign", "application/x-www-form-urlencoded", "csrf="+pageToken(t, h))
		if a.status != 409 || !strings.Contains(a.body, `<p id="notice" class="notice" role="alert">there is nothing to sign`) {
			t.Errorf("%d\n%s", a.status, a.body)
		}
	})
}

func TestBatchStops(t *testing.T) {
	open := []erp.Prescription{prescription("mr-1", "A")}
	t.Run("a batch that fails as a whole gives every prescription its reason", func(t *testing.T) {
		ti := &fakeTI{open: open, hbas: []telematik.HBA{hba}, signErr: fhir.Fail(fhir.CodeSecurity, "card", "the HBA's signature PIN was not entered right (REJECTED): nothing was signed")}
		h := newHandler(t, ti, ui.Options{})
		token := pageToken(t, h)
		if a := call(h.Sign, "POST", "/praxis/ui/sign", "application/json", `{}`, "X-CSRF-Token", token); a.status != 202 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		b := finished(t, h, token)
		if b.Phase != ui.PhaseFailed || !strings.Contains(b.Error, "PIN was not entered right") || b.Items[0].State != "pending" || b.Items[0].Reason != b.Error {
			t.Errorf("%+v", b)
		}
	})
	t.Run("an internal error is logged under a reference, not shown", func(t *testing.T) {
		ti := &fakeTI{open: open, hbas: []telematik.HBA{hba}, signErr: errors.New("disk on fire")}
		h := newHandler(t, ti, ui.Options{})
		token := pageToken(t, h)
		call(h.Sign, "POST", "/praxis/ui/sign", "application/json", `{}`, "X-CSRF-Token", token)
		if b := finished(t, h, token); strings.Contains(b.Error, "disk") || !strings.Contains(b.Error, "reference") {
			t.Errorf("%+v", b)
		}
	})
	t.Run("a batch is bounded in time", func(t *testing.T) {
		ti := &fakeTI{open: open, hbas: []telematik.HBA{hba}, release: make(chan struct{})}
		h := newHandler(t, ti, ui.Options{BatchTimeout: 50 * time.Millisecond})
		token := pageToken(t, h)
		call(h.Sign, "POST", "/praxis/ui/sign", "application/json", `{}`, "X-CSRF-Token", token)
		if b := finished(t, h, token); b.Phase != ui.PhaseFailed || !strings.Contains(b.Error, "took longer than 50ms") {
			t.Errorf("%+v", b)
		}
	})
	t.Run("Close cancels a running batch and refuses new ones", func(t *testing.T) {
		ti := &fakeTI{open: open, hbas: []telematik.HBA{hba}, release: make(chan struct{}), started: make(chan string, 1)}
		h := newHandler(t, ti, ui.Options{})
		token := pageToken(t, h)
		call(h.Sign, "POST", "/praxis/ui/sign", "application/json", `{}`, "X-CSRF-Token", token)
		<-ti.started
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if b := state(t, h, token).Batch; b.Running || !strings.Contains(b.Error, "red was stopped") {
			t.Errorf("%+v", b)
		}
		if a := call(h.Sign, "POST", "/praxis/ui/sign", "application/json", `{}`, "X-CSRF-Token", token); a.status != 503 {
			t.Errorf("after Close: %d %s", a.status, a.body)
		}
	})
}

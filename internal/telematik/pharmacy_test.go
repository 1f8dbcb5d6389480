package telematik_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/internal/vault/vaulttest"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/fachdienst/fachdienstsim"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
	"github.com/redclone/red/ti/simpki"
)

// gematik's End-to-End example (Apache-2.0, see the NOTICE in the testdata of package ident).
const endToEnd = "../../fhir/ident/testdata/gematik/eRezept-Examples/End-to-End-Examples/7_01.10.2025/PZN-Verordnung/PZN-Verordnung_1/"

const pharmacySMCB = "Apotheke am Markt TEST-ONLY"

// redServer is red's API for the tenant praxis over a sealed SQLite store, with its TI actions
// against a Konnektor simulator (cfg) and a Fachdienst simulator, all behind real HTTP on loopback.
type redServer struct {
	t   testing.TB
	url string
	fd  *fachdienstsim.Simulator
	log *fixture.Buffer
	ti  *telematik.Service
	who *actingAs // who the requests act as: a physician and pharmacist unless a test says otherwise
}

// actingAs is the test servers' api.Access: the user anna with the roles set last.
type actingAs struct {
	mu    sync.Mutex
	roles []access.Role
}

func (a *actingAs) set(roles ...access.Role) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roles = roles
}

func (a *actingAs) Principal(context.Context, string) (access.Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return access.Principal{Tenant: "praxis", User: "anna", Roles: slices.Clone(a.roles), Workstation: "ws-1"}, nil
}

func (a *actingAs) Page(ctx context.Context) (access.Principal, error) { return a.Principal(ctx, "") }

func newRed(t testing.TB, cfg konnektorsim.Config, timeout time.Duration) *redServer {
	t.Helper()
	pki, err := simpki.Load(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := konnektorsim.New(cfg, pki, filepath.Join(t.TempDir(), "konnektor"))
	if err != nil {
		t.Fatal(err)
	}
	ks := httptest.NewServer(k)
	t.Cleanup(ks.Close)
	fd, err := fachdienstsim.New(fachdienstsim.Config{StateDir: filepath.Join(t.TempDir(), "fachdienst"), Roots: pki.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	fs := httptest.NewServer(fd)
	t.Cleanup(fs.Close)
	store, _ := vaulttest.Barrier(t)
	recs := &records.Service{Tenant: "praxis", Store: store}
	ti := &telematik.Service{
		Konnektor:     &konnektor.Client{BaseURL: ks.URL, Context: konnektor.Context{MandantID: "Mandant1", ClientSystemID: "red", WorkplaceID: "AP1", UserID: "anna"}},
		Fachdienst:    &fachdienst.Client{BaseURL: fs.URL},
		Patients:      recs,
		Records:       recs,
		Prescriptions: store,
		Timeout:       timeout,
	}
	log := &fixture.Buffer{}
	who := &actingAs{roles: []access.Role{access.Physician, access.Pharmacist}}
	srv := httptest.NewServer((&api.Server{Tenant: "praxis", Records: recs, TI: ti, Limits: fhir.DefaultLimits,
		Log: slog.New(slog.NewTextHandler(log, nil)), Access: who}).Handler())
	t.Cleanup(srv.Close)
	return &redServer{t: t, url: srv.URL, fd: fd, log: log, ti: ti, who: who}
}

func (r *redServer) do(method, path, body string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.url+"/praxis/"+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+xml; charset=UTF-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// rx is an activated prescription: its PrescriptionId and AccessCode.
type rx struct{ id, ac string }

func (p rx) query() string { return "prescriptionid=" + p.id + "&accesscode=" + p.ac }

func (p rx) dataMatrix() string { return "Task/" + p.id + "/$accept?ac=" + p.ac }

// prescribe has the practice sign and send a prescription with red's $createerp (the physician's
// HBA, the practice's SMC-B), for the holder of the simulated eGK.
func (r *redServer) prescribe(request string) rx {
	r.t.Helper()
	b, err := fhir.Parse(fixture.Read(r.t, endToEnd+"PZN_Nr1_VerordnungArzt.xml"), fhir.DefaultLimits)
	if err != nil {
		r.t.Fatal(err)
	}
	old := fhir.ChildValue(b.FindElement("entry/resource/MedicationRequest"), "id")
	xml := strings.ReplaceAll(string(fhir.Marshal(b)), old, request)
	xml = regexp.MustCompile(`<value value="[A-Z][0-9]{9}"\s*/>`).ReplaceAllString(xml, `<value value="M123456785"/>`)
	status, body := r.do("POST", "Bundle?action=$createerp&cardname="+url.QueryEscape("Dr. med. Hanna Berger TEST-ONLY"), xml)
	if status != 200 {
		r.t.Fatalf("$createerp: %d\n%s", status, body)
	}
	m := regexp.MustCompile(`<taskid>([0-9.]+)</taskid>\s*<accesscode>([0-9a-f]{64})</accesscode>`).FindStringSubmatch(body)
	if m == nil {
		r.t.Fatalf("$createerp:\n%s", body)
	}
	return rx{m[1], m[2]}
}

// dispensation is gematik's $close input for p, handed over today by the simulated pharmacy.
func dispensation(t testing.TB, p rx) string {
	t.Helper()
	d, err := fhir.Parse(fixture.Read(t, endToEnd+"PZN_Nr1_MedicationDispense.xml"), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	md := d.FindElement(".//MedicationDispense")
	fhir.SetValue(md.FindElement("identifier/value"), p.id)
	fhir.SetValue(md.FindElement("subject/identifier/value"), "M123456785")
	fhir.SetValue(md.FindElement("performer/actor/identifier/value"), "3-SMC-B-Testkarte-883110000177003")
	fhir.SetValue(md.FindElement("whenHandedOver"), time.Now().Format(time.DateOnly))
	return string(fhir.Marshal(d))
}

func mustContain(t testing.TB, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

// The pharmacy's actions over HTTP against the simulators: accept (again from the store, by
// Data Matrix content), Get Task, reject, dispense without and with closing, the receipt again,
// several prescriptions of one Data Matrix code, abort by the pharmacy and by the practice,
// and $egkfetch's prescriptions handed back with $reject.
func TestPharmacyOverHTTP(t *testing.T) {
	red := newRed(t, konnektorsim.DefaultConfig(), 10*time.Second)
	p := red.prescribe("mr-1")
	dispenseAs := "Bundle?action=$dispense&cardname=" + url.QueryEscape(pharmacySMCB)

	status, body := red.do("GET", "Task?action=$accept&"+p.query(), "")
	if status != 200 {
		t.Fatalf("$accept: %d\n%s", status, body)
	}
	mustContain(t, "$accept", body, `<type value="document"/>`, "<Composition>", "<MedicationRequest>", "<Medication>", "<Patient>",
		"<Practitioner>", "<Organization>", "<Coverage>", "<signature>", telematik.ExtVerification, `<valueCode value="VALID"/>`,
		`<sigFormat value="application/pkcs7-mime"/>`, p.id)
	if again, body2 := red.do("GET", "Task?action=$accept&"+p.query(), ""); again != 200 || body2 != body {
		t.Errorf("the second $accept differs: %d\n%s", again, body2)
	}
	status, body = red.do("GET", "Task/"+p.id, "")
	if status != 200 {
		t.Fatalf("Task: %d\n%s", status, body)
	}
	mustContain(t, "Get Task", body, `<type value="collection"/>`, "<Task", `<status value="in-progress"/>`, "<Composition>")
	if strings.Contains(body, fachdienst.SystemSecret) {
		t.Errorf("the answer shows the Secret:\n%s", body)
	}

	status, body = red.do("GET", "Task?action=$reject&"+p.query(), "")
	if status != 204 || body != "" {
		t.Fatalf("$reject: %d %q", status, body)
	}
	if _, body = red.do("GET", "Task/"+p.id, ""); !strings.Contains(body, `<status value="ready"/>`) || !strings.Contains(body, "$reject") {
		t.Errorf("Get Task after $reject:\n%s", body)
	}
	status, body = red.do("GET", "Task?action=$accept&url="+url.QueryEscape(p.dataMatrix()), "")
	if status != 200 || !strings.Contains(body, "<Composition>") {
		t.Fatalf("$accept by Data Matrix content: %d\n%s", status, body)
	}

	status, body = red.do("POST", dispenseAs+"&close=false", dispensation(t, p))
	if status != 200 || !strings.Contains(body, "stays in progress") {
		t.Fatalf("$dispense without closing: %d\n%s", status, body)
	}
	status, receipt := red.do("POST", dispenseAs, dispensation(t, p))
	if status != 200 {
		t.Fatalf("$dispense: %d\n%s", status, receipt)
	}
	mustContain(t, "receipt", receipt, "<Bundle", fachdienst.SystemPrescriptionID, p.id, "GEM_ERP_PR_Bundle", "<signature>")
	if status, body := red.do("GET", "Task?action=$receipt&prescriptionid="+p.id, ""); status != 200 || body != receipt {
		t.Errorf("$receipt: %d\n%s", status, body)
	}
	if _, body := red.do("GET", "Task/"+p.id, ""); !strings.Contains(body, `<status value="completed"/>`) || !strings.Contains(body, "GEM_ERP_PR_Bundle") {
		t.Errorf("Get Task after closing:\n%s", body)
	}

	// several prescriptions in one Data Matrix code; one aborted by the pharmacy
	p2, p3 := red.prescribe("mr-2"), red.prescribe("mr-3")
	code := fmt.Sprintf(`{"urls":[%q,%q]}`, p2.dataMatrix(), p3.dataMatrix())
	status, body = red.do("GET", "Task?action=$accept&url="+url.QueryEscape(code), "")
	if status != 200 || strings.Count(body, "<Composition>") != 2 || !strings.Contains(body, `<type value="collection"/>`) {
		t.Fatalf("two prescriptions: %d\n%s", status, body)
	}
	if status, body := red.do("GET", "Task?action=$abort&prescriptionid="+p3.id, ""); status != 200 || !strings.Contains(body, "cancelled") {
		t.Errorf("$abort by the pharmacy: %d\n%s", status, body)
	}
	if st := red.status(p3.id); st != fachdienst.StatusCancelled {
		t.Errorf("after the pharmacy's $abort: %s", st)
	}
	// the practice's $abort of a prescription no pharmacy took keeps working
	p4 := red.prescribe("mr-4")
	if status, body := red.do("GET", "Task?action=$abort&prescriptionid="+p4.id, ""); status != 200 {
		t.Errorf("$abort by the practice: %d\n%s", status, body)
	}
	if st := red.status(p4.id); st != fachdienst.StatusCancelled {
		t.Errorf("after the practice's $abort: %s", st)
	}

	// $egkfetch keeps what it accepts: $reject hands it back
	p5 := red.prescribe("mr-5")
	if status, body := red.do("GET", "TI?action=$egkfetch", ""); status != 200 || !strings.Contains(body, p5.id) {
		t.Fatalf("$egkfetch: %d\n%s", status, body)
	}
	if status, body := red.do("GET", "Task?action=$reject&"+p5.query(), ""); status != 204 {
		t.Errorf("$reject after $egkfetch: %d\n%s", status, body)
	}
	if st := red.status(p5.id); st != fachdienst.StatusReady {
		t.Errorf("after $reject: %s", st)
	}
	for _, secret := range []string{p.ac, p2.ac, p5.ac, p.id, "Königsstein"} {
		if strings.Contains(red.log.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

func (r *redServer) status(id string) fachdienst.Status {
	for _, t := range r.fd.Tasks() {
		if t.ID == id {
			return t.Status
		}
	}
	return ""
}

// Requests red refuses, each with the status and a message naming the place.
func TestPharmacyRefusals(t *testing.T) {
	red := newRed(t, konnektorsim.DefaultConfig(), 10*time.Second)
	p := red.prescribe("mr-1")
	other := red.prescribe("mr-2")
	if status, body := red.do("GET", "Task?action=$accept&"+p.query(), ""); status != 200 {
		t.Fatalf("$accept: %d\n%s", status, body)
	}
	good := dispensation(t, p)
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		want                     []string
	}{
		{"$accept without AccessCode", "GET", "Task?action=$accept&prescriptionid=" + p.id, "", 400, []string{"<expression value=\"accesscode\"/>"}},
		{"$accept of a malformed PrescriptionId", "GET", "Task?action=$accept&prescriptionid=160.1&accesscode=" + p.ac, "", 400, []string{"<expression value=\"prescriptionid\"/>"}},
		{"$accept with a wrong AccessCode", "GET", "Task?action=$accept&prescriptionid=" + other.id + "&accesscode=" + p.ac, "", 403, []string{"AccessCode does not match"}},
		{"$accept of malicious Data Matrix content", "GET", "Task?action=$accept&url=" + url.QueryEscape(`{"urls":["Task/../$accept?ac=1"]}`), "", 400, []string{"url.urls[0]"}},
		{"$accept of Data Matrix content that is no JSON", "GET", "Task?action=$accept&url=" + url.QueryEscape(`{"urls":`), "", 400, []string{"<expression value=\"url\"/>"}},
		{"$reject with a wrong AccessCode", "GET", "Task?action=$reject&prescriptionid=" + p.id + "&accesscode=" + other.ac, "", 403, []string{"AccessCode does not match"}},
		{"an unknown action", "GET", "Task?action=$fly", "", 400, []string{"$accept", "$receipt"}},
		{"$receipt before closing", "GET", "Task?action=$receipt&prescriptionid=" + p.id, "", 404, []string{"no receipt"}},
		{"Get Task of a prescription red does not keep", "GET", "Task/" + other.id, "", 404, []string{"$accept it first"}},
		{"$dispense with the practice's SMC-B", "POST", "Bundle?action=$dispense&cardname=" + url.QueryEscape("Praxis Dr. Hanna Berger TEST-ONLY"), good, 403, []string{"not the SMC-B of a pharmacy"}},
		{"$dispense with the physician's HBA", "POST", "Bundle?action=$dispense&card=HBA-16", good, 403, []string{"HBA or a pharmacy"}},
		{"$dispense of a prescription red does not keep", "POST", "Bundle?action=$dispense", dispensation(t, other), 404, []string{"$accept it first"}},
		{"$dispense of a broken dispensation", "POST", "Bundle?action=$dispense", strings.Replace(good, `<status value="completed"/>`, `<status value="done"/>`, 1), 400,
			[]string{"Parameters.parameter[0].part[0].resource.status"}},
		{"$dispense with close=maybe", "POST", "Bundle?action=$dispense&close=maybe", good, 400, []string{"<expression value=\"close\"/>"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := red.do(c.method, c.path, c.body)
			if status != c.status {
				t.Errorf("status %d, want %d\n%s", status, c.status, body)
			}
			mustContain(t, "answer", body, append(c.want, "<OperationOutcome")...)
			if strings.Contains(body, p.ac) || strings.Contains(body, other.ac) {
				t.Errorf("the answer quotes an AccessCode:\n%s", body)
			}
		})
	}
}

// RED's role rules: without a pharmacy's SMC-B the pharmacy's actions are refused (403).
func TestPharmacyNeedsPharmacySMCB(t *testing.T) {
	cfg := konnektorsim.DefaultConfig()
	for i, c := range cfg.Cards {
		if c.Handle == "SMC-B-17" {
			cfg.Cards = append(cfg.Cards[:i], cfg.Cards[i+1:]...)
			break
		}
	}
	red := newRed(t, cfg, 10*time.Second)
	p := red.prescribe("mr-1")
	for _, path := range []string{"Task?action=$accept&" + p.query(), "Task?action=$reject&" + p.query(), "Task/" + p.id} {
		if status, body := red.do("GET", path, ""); status != 403 || !strings.Contains(body, "SMC-B of a pharmacy") {
			t.Errorf("%s: %d\n%s", path, status, body)
		}
	}
	if status, body := red.do("POST", "Bundle?action=$dispense", dispensation(t, p)); status != 403 {
		t.Errorf("$dispense: %d\n%s", status, body)
	}
}

// A Fachdienst that is down or hangs gives 502/504 naming it; the retry accepts.
func TestPharmacyFachdienstDown(t *testing.T) {
	red := newRed(t, konnektorsim.DefaultConfig(), 500*time.Millisecond)
	p := red.prescribe("mr-1")
	for _, c := range []struct {
		fault  fachdienstsim.Fault
		status int
		want   string
	}{
		{fachdienstsim.Fault{Kind: fachdienstsim.Fail, Count: -1}, 502, "E-Rezept-Fachdienst failed $accept (503"},
		{fachdienstsim.Fault{Op: fachdienstsim.OpAccept, Kind: fachdienstsim.Hang, Count: -1}, 504, "E-Rezept-Fachdienst did not answer $accept in time"},
		{fachdienstsim.Fault{Op: fachdienstsim.OpAccept, Kind: fachdienstsim.DropAnswer}, 200, "<Composition>"},
	} {
		if err := red.fd.Inject(c.fault); err != nil {
			t.Fatal(err)
		}
		status, body := red.do("GET", "Task?action=$accept&"+p.query(), "")
		red.fd.ClearFaults()
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d\n%s", c.fault.Op, c.fault.Kind, status, body)
		}
	}
	if status, body := red.do("GET", "Task?action=$accept&"+p.query(), ""); status != 200 {
		t.Errorf("afterwards: %d\n%s", status, body)
	}
	if st := red.status(p.id); st != fachdienst.StatusInProgress {
		t.Errorf("at the Fachdienst: %s", st)
	}
}

package fachdienstsim_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/fachdienst/fachdienstsim"
	"github.com/redclone/red/ti/simpki"
)

// gematik's example data (Apache-2.0, see testdata/gematik/NOTICE there): the End-to-End
// examples in the testdata of package ident, the API examples in those of package fachdienst.
const (
	endToEnd    = "../../../fhir/ident/testdata/gematik/eRezept-Examples/End-to-End-Examples/7_01.10.2025"
	apiExamples = "../testdata/gematik/eRezept-Examples/API-Examples/2025-01-15"

	gkvPrescription = "PZN-Verordnung/PZN-Verordnung_1/PZN_Nr1_VerordnungArzt.xml"
	gkvDispense     = "PZN-Verordnung/PZN-Verordnung_1/PZN_Nr1_MedicationDispense.xml"
	pkvPrescription = "PKV/PZN-Verordnung_Nr_1/PZN_Nr1_VerordnungArzt.xml"
)

var (
	doctorID    = fachdienst.Identity{ProfessionOID: fachdienst.OIDPraxisArzt, ID: "1-HBA-Testkarte-883110000129084"}
	pharmacyID  = fachdienst.Identity{ProfessionOID: fachdienst.OIDOeffentlicheApotheke, ID: "3-SMC-B-Testkarte-883110000129070"}
	pharmacy2ID = fachdienst.Identity{ProfessionOID: fachdienst.OIDOeffentlicheApotheke, ID: "3-07.2.1234560000.10.789"}
)

// clock is a settable clock that starts at the real time (certificates are issued for now).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a simulator behind a real HTTP server with clients for each role.
type env struct {
	t      testing.TB
	state  string
	pki    *simpki.PKI
	hba    *simpki.Identity
	clock  *clock
	berlin *time.Location
	cfg    fachdienstsim.Config
	sim    *fachdienstsim.Simulator
	srv    *httptest.Server

	doctor, pharmacy, pharmacy2 *fachdienst.Client
}

func newEnv(t testing.TB, opts ...func(*fachdienstsim.Config)) *env {
	t.Helper()
	pki, err := simpki.Load(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	hba, err := pki.Issue("Dr. med. Hans Topp-Glücklich",
		simpki.WithUsage(simpki.UsageQES), simpki.WithICCSN("80276883110000129084"),
		simpki.WithProfession("Ärztin/Arzt", simpki.ProfessionArzt), simpki.WithTelematikID(doctorID.ID))
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, state: filepath.Join(t.TempDir(), "state"), pki: pki, hba: hba, berlin: berlin,
		clock: &clock{t: time.Now().UTC().Truncate(time.Millisecond)}}
	e.cfg = fachdienstsim.Config{StateDir: e.state, Roots: pki.Pool(), Now: e.clock.Now}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.start()
	t.Cleanup(func() { e.srv.Close() })
	return e
}

// start (re)creates the simulator on the state directory and serves it.
func (e *env) start() {
	e.t.Helper()
	sim, err := fachdienstsim.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sim = sim
	e.srv = httptest.NewServer(sim)
	e.doctor, e.pharmacy, e.pharmacy2 = e.client(doctorID), e.client(pharmacyID), e.client(pharmacy2ID)
}

// restart stops the server and starts a new simulator on the same state directory.
func (e *env) restart() {
	e.t.Helper()
	e.srv.Close()
	e.start()
}

func (e *env) client(who fachdienst.Identity) *fachdienst.Client {
	return &fachdienst.Client{BaseURL: e.srv.URL, HTTP: e.srv.Client(), Identity: who}
}

func (e *env) insured(kvnr string) *fachdienst.Client {
	return e.client(fachdienst.Identity{ProfessionOID: fachdienst.OIDVersicherter, ID: kvnr})
}

func (e *env) today() string { return e.clock.Now().In(e.berlin).Format(time.DateOnly) }

// load reads an example file as FHIR.
func load(t testing.TB, path string) *etree.Element {
	t.Helper()
	root, err := fhir.Parse(fixture.Read(t, path), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// find returns the first element at path below root, failing the test when there is none.
func find(t testing.TB, root *etree.Element, path string) *etree.Element {
	t.Helper()
	e := root.FindElement(path)
	if e == nil {
		t.Fatalf("no %s in %s", path, root.Tag)
	}
	return e
}

// bundleEdit changes a KBV bundle before it is signed.
type bundleEdit func(t testing.TB, b *etree.Element)

func setValue(path, value string) bundleEdit {
	return func(t testing.TB, b *etree.Element) { fhir.SetValue(find(t, b, path), value) }
}

// prescription is an End-to-End example bundle for taskID, issued today.
func (e *env) prescription(file, taskID string, edits ...bundleEdit) []byte {
	e.t.Helper()
	b := load(e.t, filepath.Join(endToEnd, file))
	fhir.SetValue(find(e.t, b, "identifier/value"), taskID)
	fhir.SetValue(find(e.t, b, "entry/resource/MedicationRequest/authoredOn"), e.today())
	for _, edit := range edits {
		edit(e.t, b)
	}
	return fhir.Marshal(b)
}

// sign is the HBA's QES over content, made now.
func (e *env) sign(content []byte) []byte {
	e.t.Helper()
	der, err := cms.Sign(content, e.hba.Certificate, e.hba.Key, false, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return der
}

// created is a new draft Task.
func (e *env) created(flow int) fachdienst.Task {
	e.t.Helper()
	task, err := e.doctor.Create(context.Background(), flow)
	if err != nil {
		e.t.Fatal(err)
	}
	return task
}

// ready is an activated GKV Task.
func (e *env) ready() fachdienst.Task {
	e.t.Helper()
	task := e.created(160)
	task, err := e.doctor.Activate(context.Background(), task.ID, task.AccessCode, e.sign(e.prescription(gkvPrescription, task.ID)))
	if err != nil {
		e.t.Fatal(err)
	}
	return task
}

// accepted is a Task accepted by e.pharmacy.
func (e *env) accepted() (fachdienst.Task, fachdienst.Accepted) {
	e.t.Helper()
	task := e.ready()
	acc, err := e.pharmacy.Accept(context.Background(), task.ID, task.AccessCode)
	if err != nil {
		e.t.Fatal(err)
	}
	return task, acc
}

// dispensation rewrites an example $close/$dispense Parameters for a Task and a pharmacy:
// PrescriptionId, KVNR, Telematik-ID and the day of handing over.
func (e *env) dispensation(path string, task fachdienst.Task, who fachdienst.Identity) []byte {
	e.t.Helper()
	p := load(e.t, path)
	for _, md := range p.FindElements(".//MedicationDispense") {
		for _, id := range md.SelectElements("identifier") {
			if fhir.ChildValue(id, "system") == fachdienst.SystemPrescriptionID {
				fhir.SetValue(id.SelectElement("value"), task.ID)
			}
		}
		fhir.SetValue(find(e.t, md, "subject/identifier/value"), task.KVNR)
		fhir.SetValue(find(e.t, md, "performer/actor/identifier/value"), who.ID)
		fhir.SetValue(find(e.t, md, "whenHandedOver"), e.today())
	}
	return fhir.Marshal(p)
}

// wantError checks that err is a Fachdienst answer with status and a details text starting with text.
func wantError(t testing.TB, err error, status int, text string) *fachdienst.Error {
	t.Helper()
	var fe *fachdienst.Error
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want %d %q", err, status, text)
	}
	if fe.Status != status || !strings.HasPrefix(fe.Text, text) {
		t.Fatalf("got %d %q (%s), want %d %q", fe.Status, fe.Text, fe.Diagnostics, status, text)
	}
	return fe
}

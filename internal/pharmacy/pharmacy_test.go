package pharmacy_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/internal/pharmacy"
	"github.com/redclone/red/internal/vault/vaulttest"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/fachdienst/fachdienstsim"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/simpki"
)

// gematik's End-to-End example (Apache-2.0, see the NOTICE in the testdata of package ident).
const (
	endToEnd     = "../../fhir/ident/testdata/gematik/eRezept-Examples/End-to-End-Examples/7_01.10.2025/PZN-Verordnung/PZN-Verordnung_1/"
	prescription = endToEnd + "PZN_Nr1_VerordnungArzt.xml"
	dispensation = endToEnd + "PZN_Nr1_MedicationDispense.xml"
)

var (
	doctorID   = fachdienst.Identity{ProfessionOID: fachdienst.OIDPraxisArzt, ID: "1-SMC-B-Testkarte-883110000177002"}
	pharmacyID = fachdienst.Identity{ProfessionOID: fachdienst.OIDOeffentlicheApotheke, ID: "3-SMC-B-Testkarte-883110000177003"}
	otherID    = fachdienst.Identity{ProfessionOID: fachdienst.OIDOeffentlicheApotheke, ID: "3-07.2.1234560000.10.789"}
)

// env is the Fachdienst simulator behind real HTTP, a practice that activates prescriptions and
// the pharmacy's workflow over a sealed SQLite store.
type env struct {
	t      testing.TB
	pki    *simpki.PKI
	hba    *simpki.Identity
	sim    *fachdienstsim.Simulator
	url    string
	doctor *fachdienst.Client
	rx     *pharmacy.Service
	db     string
}

// verifier checks a signature as the Konnektor does: CMS and certificate against the PKI.
type verifier struct{ pki *simpki.PKI }

func (v verifier) VerifyDocument(_ context.Context, sig, _ []byte) (konnektor.Verification, error) {
	_, _, err := cms.Verify(sig, nil, v.pki.Pool(), time.Now())
	switch {
	case err == nil:
		return konnektor.Verification{HighLevelResult: konnektor.Valid}, nil
	case errors.Is(err, cms.ErrUntrusted):
		return konnektor.Verification{HighLevelResult: konnektor.Inconclusive}, nil
	}
	return konnektor.Verification{HighLevelResult: konnektor.Invalid}, nil
}

func newEnv(t testing.TB) *env {
	t.Helper()
	pki, err := simpki.Load(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	hba, err := pki.Issue("Dr. med. Hanna Berger", simpki.WithUsage(simpki.UsageQES), simpki.WithICCSN("80276883110000177001"),
		simpki.WithProfession("Ärztin/Arzt", simpki.ProfessionArzt), simpki.WithTelematikID("1-HBA-Testkarte-883110000177001"))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := fachdienstsim.New(fachdienstsim.Config{StateDir: filepath.Join(t.TempDir(), "fd"), Roots: pki.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	store, db := vaulttest.Barrier(t)
	e := &env{t: t, pki: pki, hba: hba, sim: sim, url: srv.URL, db: db,
		doctor: &fachdienst.Client{BaseURL: srv.URL, Identity: doctorID}}
	e.rx = &pharmacy.Service{Store: store, Fachdienst: e.client(pharmacyID), Verifier: verifier{pki}, Timeout: 2 * time.Second}
	return e
}

func (e *env) client(id fachdienst.Identity) *fachdienst.Client {
	return &fachdienst.Client{BaseURL: e.url, Identity: id}
}

// ready is a prescription the practice activated: its Task with PrescriptionId and AccessCode.
func (e *env) ready() fachdienst.Task {
	e.t.Helper()
	ctx := context.Background()
	task, err := e.doctor.Create(ctx, 160)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := fhir.Parse(fixture.Read(e.t, prescription), fhir.DefaultLimits)
	if err != nil {
		e.t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	fhir.SetValue(b.FindElement("identifier/value"), task.ID)
	fhir.SetValue(b.FindElement("entry/resource/MedicationRequest/authoredOn"), time.Now().In(berlin).Format(time.DateOnly))
	sig, err := cms.Sign(fhir.Marshal(b), e.hba.Certificate, e.hba.Key, false, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if task, err = e.doctor.Activate(ctx, task.ID, task.AccessCode, sig); err != nil {
		e.t.Fatal(err)
	}
	return task
}

// dispensation is gematik's $close input for task, handed over today by the pharmacy.
func (e *env) dispensation(task fachdienst.Task) *etree.Element {
	e.t.Helper()
	p, err := fhir.Parse(fixture.Read(e.t, dispensation), fhir.DefaultLimits)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, md := range p.FindElements(".//MedicationDispense") {
		fhir.SetValue(md.FindElement("identifier/value"), task.ID)
		fhir.SetValue(md.FindElement("subject/identifier/value"), task.KVNR)
		fhir.SetValue(md.FindElement("performer/actor/identifier/value"), pharmacyID.ID)
		fhir.SetValue(md.FindElement("whenHandedOver"), time.Now().Format(time.DateOnly))
	}
	return p
}

// atFachdienst is the Task as the simulator holds it.
func (e *env) atFachdienst(id string) fachdienst.Task {
	e.t.Helper()
	for _, t := range e.sim.Tasks() {
		if t.ID == id {
			return t
		}
	}
	e.t.Fatalf("no Task %s at the Fachdienst", id)
	return fachdienst.Task{}
}

func (e *env) inject(f fachdienstsim.Fault) {
	e.t.Helper()
	if err := e.sim.Inject(f); err != nil {
		e.t.Fatal(err)
	}
}

// wantCode checks that err is an error for the caller with code.
func wantCode(t testing.TB, err error, code fhir.IssueCode) {
	t.Helper()
	if got := fhir.CodeOf(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

// The pharmacy's whole life of a prescription: accept (again from the store), reject, accept
// again, record a dispensation, close with the receipt, read it again.
func TestPrescriptionLife(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.ready()

	p, err := e.rx.Accept(ctx, task.ID, task.AccessCode)
	if err != nil {
		t.Fatal(err)
	}
	fd := e.atFachdienst(task.ID)
	if p.State != pharmacy.Accepted || p.Secret != fd.Secret || fd.Status != fachdienst.StatusInProgress || fd.Owner != pharmacyID.ID {
		t.Fatalf("accepted: %s, secret kept %v, at the Fachdienst %s by %s", p.State, p.Secret == fd.Secret, fd.Status, fd.Owner)
	}
	if p.Verification.Result != konnektor.Valid || !bytes.Contains(p.Bundle, []byte("<Composition")) {
		t.Errorf("verification %+v; bundle kept: %v", p.Verification, len(p.Bundle))
	}
	// again: from the store, the same Secret, nothing new at the Fachdienst
	modified := fd.LastModified
	if again, err := e.rx.Accept(ctx, task.ID, task.AccessCode); err != nil || again.Secret != p.Secret {
		t.Fatalf("second accept: %v", err)
	}
	if !e.atFachdienst(task.ID).LastModified.Equal(modified) {
		t.Error("the second accept went to the Fachdienst")
	}
	_, err = e.rx.Accept(ctx, task.ID, strings.Repeat("0", 64))
	wantCode(t, err, fhir.CodeForbidden)

	if err := e.rx.Reject(ctx, task.ID, task.AccessCode); err != nil {
		t.Fatal(err)
	}
	if st := e.atFachdienst(task.ID).Status; st != fachdienst.StatusReady {
		t.Fatalf("after $reject: %s", st)
	}
	if p, err := e.rx.Get(ctx, task.ID); err != nil || p.State != pharmacy.Rejected || p.Secret != "" || p.Bundle != nil {
		t.Fatalf("red forgets a rejected prescription: %v %s", err, p.State)
	}
	_, err = e.rx.Dispense(ctx, task.ID, e.dispensation(task), true)
	wantCode(t, err, fhir.CodeConflict)

	if p, err = e.rx.Accept(ctx, task.ID, task.AccessCode); err != nil || p.State != pharmacy.Accepted {
		t.Fatalf("accept after reject: %v", err)
	}
	if p, err = e.rx.Dispense(ctx, task.ID, e.dispensation(task), false); err != nil || p.State != pharmacy.Dispensed {
		t.Fatalf("$dispense: %v", err)
	}
	if e.atFachdienst(task.ID).LastMedicationDispense.IsZero() {
		t.Error("no dispensation at the Fachdienst")
	}
	if p, err = e.rx.Dispense(ctx, task.ID, e.dispensation(task), true); err != nil || p.State != pharmacy.Closed {
		t.Fatalf("$close: %v", err)
	}
	if st := e.atFachdienst(task.ID).Status; st != fachdienst.StatusCompleted {
		t.Fatalf("after $close: %s", st)
	}
	receipt, err := e.rx.Receipt(ctx, task.ID)
	if err != nil || !bytes.Contains(receipt, []byte(task.ID)) || !bytes.Contains(receipt, []byte("<signature>")) {
		t.Fatalf("receipt: %v\n%s", err, receipt)
	}
	// a repeated close answers the kept receipt
	if again, err := e.rx.Dispense(ctx, task.ID, e.dispensation(task), true); err != nil || !bytes.Equal(again.Receipt, receipt) {
		t.Errorf("repeated close: %v", err)
	}
	st, err := e.rx.Task(ctx, task.ID)
	if err != nil || st.Task == nil || st.Task.Status != fachdienst.StatusCompleted {
		t.Fatalf("Task: %v %+v", err, st.Task)
	}
	wantCode(t, e.rx.Reject(ctx, task.ID, task.AccessCode), fhir.CodeConflict)
}

// $abort by the pharmacy: the Task is cancelled, red forgets the Secret.
func TestAbort(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.ready()
	wantCode(t, e.rx.Abort(ctx, task.ID), fhir.CodeNotFound)
	if _, err := e.rx.Accept(ctx, task.ID, task.AccessCode); err != nil {
		t.Fatal(err)
	}
	if keeps, err := e.rx.Keeps(ctx, task.ID); err != nil || !keeps {
		t.Fatalf("keeps: %v %v", keeps, err)
	}
	e.inject(fachdienstsim.Fault{Op: fachdienstsim.OpAbort, Kind: fachdienstsim.DropAnswer})
	wantCode(t, e.rx.Abort(ctx, task.ID), fhir.CodeTransient)
	if err := e.rx.Abort(ctx, task.ID); err != nil { // the Fachdienst cancelled it: 410, done
		t.Fatal(err)
	}
	if st := e.atFachdienst(task.ID).Status; st != fachdienst.StatusCancelled {
		t.Fatalf("at the Fachdienst: %s", st)
	}
	if p, _ := e.rx.Get(ctx, task.ID); p.State != pharmacy.Aborted || p.Secret != "" {
		t.Errorf("kept: %s", p.State)
	}
	_, err := e.rx.Accept(ctx, task.ID, task.AccessCode)
	wantCode(t, err, fhir.CodeDeleted)
}

// What the Fachdienst refuses reaches the caller as its meaning; nothing stays claimed.
func TestAcceptRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.ready()
	other := e.client(otherID)
	if _, err := other.Accept(ctx, task.ID, task.AccessCode); err != nil {
		t.Fatal(err)
	}
	_, err := e.rx.Accept(ctx, task.ID, task.AccessCode)
	wantCode(t, err, fhir.CodeConflict)
	if !strings.Contains(err.Error(), "another pharmacy") {
		t.Errorf("message: %v", err)
	}
	if _, err := e.rx.Get(ctx, task.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused claim is kept: %v", err)
	}
	wrong := e.ready()
	_, err = e.rx.Accept(ctx, wrong.ID, strings.Repeat("ab", 32))
	wantCode(t, err, fhir.CodeForbidden)
	unknown := "160.000.000.000.999.76"
	if pharmacy.CheckID(unknown, "prescriptionid") == nil {
		_, err = e.rx.Accept(ctx, unknown, wrong.AccessCode)
		wantCode(t, err, fhir.CodeNotFound)
	}
}

// Fault plans for $accept: whatever happens to the call, the Task is claimed at most once, red
// knows the Secret of every Task claimed for it, and a retry finishes the work.
func TestAcceptFaults(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults []fachdienstsim.Fault
		first  fhir.IssueCode // "" the first call succeeds
	}{
		{"the answer of $accept is lost", []fachdienstsim.Fault{{Op: fachdienstsim.OpAccept, Kind: fachdienstsim.DropAnswer}}, ""},
		{"the answer of $accept and the recovery are lost", []fachdienstsim.Fault{{Op: fachdienstsim.OpAccept, Kind: fachdienstsim.DropAnswer},
			{Op: fachdienstsim.OpGet, Kind: fachdienstsim.Fail}}, fhir.CodeTransient},
		{"the Fachdienst is down", []fachdienstsim.Fault{{Kind: fachdienstsim.Fail, Count: 2}}, fhir.CodeTransient},
		{"the Fachdienst hangs", []fachdienstsim.Fault{{Op: fachdienstsim.OpAccept, Kind: fachdienstsim.Hang}}, fhir.CodeTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.rx.Timeout = 300 * time.Millisecond
			ctx := context.Background()
			task := e.ready()
			for _, f := range c.faults {
				e.inject(f)
			}
			p, err := e.rx.Accept(ctx, task.ID, task.AccessCode)
			if c.first == "" && err != nil {
				t.Fatal(err)
			}
			if c.first != "" {
				wantCode(t, err, c.first)
				if strings.Contains(err.Error(), task.AccessCode) || strings.Contains(err.Error(), task.ID) {
					t.Errorf("the error names the prescription: %v", err)
				}
			}
			e.sim.ClearFaults()
			fd := e.atFachdienst(task.ID)
			if kept, err := e.rx.Get(ctx, task.ID); fd.Status == fachdienst.StatusInProgress && (err != nil || (kept.State != pharmacy.Claiming && kept.Secret != fd.Secret)) {
				t.Fatalf("claimed at the Fachdienst, but red does not know it: %v %s", err, kept.State)
			}
			if p, err = e.rx.Accept(ctx, task.ID, task.AccessCode); err != nil {
				t.Fatalf("retry: %v", err)
			}
			fd = e.atFachdienst(task.ID)
			if p.State != pharmacy.Accepted || p.Secret != fd.Secret || fd.Owner != pharmacyID.ID || fd.Status != fachdienst.StatusInProgress {
				t.Errorf("after the retry: red %s, Fachdienst %s by %s, same Secret %v", p.State, fd.Status, fd.Owner, p.Secret == fd.Secret)
			}
		})
	}
}

// Fault plans for $close: the Task is closed once and its receipt kept, whatever is lost.
func TestCloseFaults(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults []fachdienstsim.Fault
		first  fhir.IssueCode
		state  pharmacy.State // after the first call
	}{
		{"the answer of $close is lost", []fachdienstsim.Fault{{Op: fachdienstsim.OpClose, Kind: fachdienstsim.DropAnswer}}, "", pharmacy.Closed},
		{"the answer of $close and the Task's are lost", []fachdienstsim.Fault{{Op: fachdienstsim.OpClose, Kind: fachdienstsim.DropAnswer},
			{Op: fachdienstsim.OpGet, Kind: fachdienstsim.Fail, Count: 2}}, fhir.CodeTransient, pharmacy.Closing},
		{"the Fachdienst fails $close", []fachdienstsim.Fault{{Op: fachdienstsim.OpClose, Kind: fachdienstsim.Fail}}, fhir.CodeTransient, pharmacy.Accepted},
		{"the Fachdienst is down", []fachdienstsim.Fault{{Kind: fachdienstsim.Fail, Count: 2}}, fhir.CodeTransient, pharmacy.Closing},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			task := e.ready()
			if _, err := e.rx.Accept(ctx, task.ID, task.AccessCode); err != nil {
				t.Fatal(err)
			}
			for _, f := range c.faults {
				e.inject(f)
			}
			p, err := e.rx.Dispense(ctx, task.ID, e.dispensation(task), true)
			if c.first == "" && err != nil {
				t.Fatal(err)
			}
			if c.first != "" {
				wantCode(t, err, c.first)
			}
			if p, _ = e.rx.Get(ctx, task.ID); p.State != c.state {
				t.Errorf("after the first call: %s, want %s", p.State, c.state)
			}
			e.sim.ClearFaults()
			if p, err = e.rx.Dispense(ctx, task.ID, e.dispensation(task), true); err != nil || p.State != pharmacy.Closed {
				t.Fatalf("retry: %v", err)
			}
			fd := e.atFachdienst(task.ID)
			if fd.Status != fachdienst.StatusCompleted || len(p.Receipt) == 0 {
				t.Errorf("Fachdienst %s, receipt kept %v", fd.Status, len(p.Receipt) > 0)
			}
		})
	}
}

// The store holds no Secret, AccessCode, PrescriptionId, KVNR nor name in plaintext.
func TestConfidentiality(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.ready()
	p, err := e.rx.Accept(ctx, task.ID, task.AccessCode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.rx.Dispense(ctx, task.ID, e.dispensation(task), true); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, wal := range []string{e.db + "-wal", e.db + "-journal"} {
		if b, err := os.ReadFile(wal); err == nil {
			raw = append(raw, b...)
		}
	}
	for _, secret := range []string{p.Secret, task.AccessCode, task.ID, task.KVNR, "Königsstein", "Ludger", "SUMATRIPTAN"} {
		if bytes.Contains(raw, []byte(secret)) || bytes.Contains(bytes.ToUpper(raw), []byte(strings.ToUpper(secret))) {
			t.Errorf("the database holds %q in plaintext", secret)
		}
	}
}

// Dispensation checks the $close input's structure, naming every finding's place.
func TestDispensation(t *testing.T) {
	e := newEnv(t)
	task := fachdienst.Task{ID: "160.000.000.000.001.54", KVNR: "X234567891"}
	edit := func(f func(p *etree.Element)) *etree.Element {
		p := e.dispensation(task)
		f(p)
		return p
	}
	md := func(p *etree.Element) *etree.Element { return p.FindElement(".//MedicationDispense") }
	for _, c := range []struct {
		name string
		body *etree.Element
		want []string // expressions, in order
	}{
		{"gematik's example is fine", e.dispensation(task), nil},
		{"not Parameters", etree.NewElement("Bundle"), []string{"Parameters"}},
		{"no rxDispensation", edit(func(p *etree.Element) { p.RemoveChild(p.SelectElement("parameter")) }), []string{"Parameters.parameter"}},
		{"another parameter", edit(func(p *etree.Element) { fhir.SetValue(p.FindElement("parameter/name"), "dispensation") }), []string{"Parameters.parameter[0].name"}},
		{"no PrescriptionId", edit(func(p *etree.Element) { md(p).RemoveChild(md(p).SelectElement("identifier")) }),
			[]string{"Parameters.parameter[0].part[0].resource.identifier"}},
		{"a wrong check digit, status, day and no performer", edit(func(p *etree.Element) {
			fhir.SetValue(md(p).FindElement("identifier/value"), "160.000.000.000.001.55")
			fhir.SetValue(md(p).FindElement("status"), "in-progress")
			fhir.SetValue(md(p).FindElement("whenHandedOver"), "2025-10-30T10:00:00Z")
			md(p).RemoveChild(md(p).SelectElement("performer"))
		}), []string{"Parameters.parameter[0].part[0].resource.identifier.value", "Parameters.parameter[0].part[0].resource.status",
			"Parameters.parameter[0].part[0].resource.whenHandedOver", "Parameters.parameter[0].part[0].resource.performer.actor.identifier"}},
		{"no Medication", edit(func(p *etree.Element) { pm := p.FindElement("parameter"); pm.RemoveChild(pm.SelectElements("part")[1]) }),
			[]string{"Parameters.parameter[0].part"}},
		{"another pharmacy", edit(func(p *etree.Element) {
			fhir.SetValue(md(p).FindElement("performer/actor/identifier/value"), otherID.ID)
		}),
			[]string{"Parameters.parameter[0].part[0].resource.performer.actor.identifier.value"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, err := pharmacy.Dispensation(c.body, pharmacyID.ID)
			issues, _ := fhir.Explain(err)
			var got []string
			for _, i := range issues {
				got = append(got, i.Expression)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("findings at %q, want %q (%v)", got, c.want, err)
			}
			if err == nil && id != task.ID {
				t.Errorf("PrescriptionId %q", id)
			}
		})
	}
}

package erp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/internal/vault/vaulttest"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/fachdienst/fachdienstsim"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
	"github.com/redclone/red/ti/simpki"
)

// example is gematik's End-to-End PZN prescription (Apache-2.0, see testdata/gematik/NOTICE).
const example = "testdata/gematik/eRezept-Examples/End-to-End-Examples/7_01.10.2025/PZN-Verordnung/PZN-Verordnung_1/PZN_Nr1_VerordnungArzt.xml"

// hba is the simulated Konnektor's HBA of a physician.
const hba = "HBA-16"

// world is a tenant's store and the TI simulators, over real HTTP on loopback.
type world struct {
	db    string // the store's file
	sim   *fachdienstsim.Simulator
	ksim  *konnektorsim.Simulator
	store *vault.Barrier
	fd    *fachdienst.Client
	k     *konnektor.Client
}

func newWorld(t testing.TB) *world {
	t.Helper()
	store, db := vaulttest.Barrier(t)
	dir := t.TempDir()
	pki, err := simpki.Load(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := konnektorsim.New(konnektorsim.DefaultConfig(), pki, filepath.Join(dir, "konnektor"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fachdienstsim.New(fachdienstsim.Config{StateDir: filepath.Join(dir, "fachdienst"), Roots: pki.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	kSrv, fSrv := httptest.NewServer(ks), httptest.NewServer(fs)
	t.Cleanup(kSrv.Close)
	t.Cleanup(fSrv.Close)
	return &world{
		db:    db,
		sim:   fs,
		ksim:  ks,
		store: store,
		fd:    &fachdienst.Client{BaseURL: fSrv.URL, Identity: fachdienst.Identity{ProfessionOID: fachdienst.OIDPraxisArzt, ID: "1-SMC-B-Testkarte-883110000177002"}},
		k:     &konnektor.Client{BaseURL: kSrv.URL, Context: konnektor.Context{MandantID: "Mandant1", ClientSystemID: "red", WorkplaceID: "AP1", UserID: "anna"}},
	}
}

// prescription is the example with MedicationRequest id, for the eGK holder M123456785.
func prescription(t testing.TB, id string) Prescription {
	t.Helper()
	b, err := fhir.Parse(fixture.Read(t, example), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range b.FindElements("entry/resource/Patient/identifier/value") {
		fhir.SetValue(v, "M123456785") // a KVNR with a right check digit
	}
	fhir.SetValue(b.FindElement("entry/resource/MedicationRequest/id"), id)
	return Prescription{ID: id, FlowType: 160, Bundle: fhir.Marshal(b), Medication: "Sumatriptan-1a Pharma 100 mg Tabletten",
		Patient: Person{Family: "Königsstein", Given: "Ludger", Birthday: "1935-06-22"}}
}

// counting wraps the Fachdienst: it counts the Tasks created and the activations that succeeded
// at the Fachdienst (by Task), and can lose the answers of the next activations.
type counting struct {
	Fachdienst
	mu        sync.Mutex
	created   int
	activated map[string]int
	loseNext  int // activations whose answer is lost after the Fachdienst did the work
	failNext  int // creations that fail without reaching the Fachdienst
}

func (c *counting) Create(ctx context.Context, flow int) (fachdienst.Task, error) {
	c.mu.Lock()
	if c.failNext > 0 {
		c.failNext--
		c.mu.Unlock()
		return fachdienst.Task{}, errors.New("connection refused")
	}
	c.mu.Unlock()
	t, err := c.Fachdienst.Create(ctx, flow)
	if err == nil {
		c.mu.Lock()
		c.created++
		c.mu.Unlock()
	}
	return t, err
}

func (c *counting) Activate(ctx context.Context, id, ac string, signed []byte) (fachdienst.Task, error) {
	t, err := c.Fachdienst.Activate(ctx, id, ac, signed)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		if c.activated == nil {
			c.activated = map[string]int{}
		}
		c.activated[id]++
		if c.loseNext > 0 {
			c.loseNext--
			return fachdienst.Task{}, errors.New("connection reset by peer")
		}
	}
	return t, err
}

// failingSigner refuses like a wrong PIN.
type failingSigner struct{}

func (failingSigner) SignDocuments(context.Context, string, []konnektor.Document) ([]konnektor.Signature, error) {
	return nil, errors.New("PIN verification failed")
}

// wantActivatedOnce checks that every prescription is activated, each with its own Task that the
// Fachdienst activated exactly once, and that no other Task was activated.
func wantActivatedOnce(t *testing.T, s *Service, fd *counting, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range ids {
		p, err := s.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if p.State != Activated || p.Reason != "" || p.TaskID == "" || len(p.AccessCode) != 64 {
			t.Errorf("%s: state %s, reason %q, task %q", id, p.State, p.Reason, p.TaskID)
		}
		if n := fd.activated[p.TaskID]; n != 1 {
			t.Errorf("%s: Task %s activated %d times at the Fachdienst", id, p.TaskID, n)
		}
		seen[p.TaskID] = true
	}
	for task := range fd.activated {
		if !seen[task] {
			t.Errorf("Task %s was activated, but belongs to no prescription", task)
		}
	}
}

func TestProcessActivatesEveryPrescription(t *testing.T) {
	w := newWorld(t)
	fd := &counting{Fachdienst: w.fd}
	s := &Service{Store: w.store, Fachdienst: fd, Signer: w.k}
	ids := []string{"mr-1", "mr-2", "mr-3"}
	for _, id := range ids {
		if err := s.Queue(t.Context(), prescription(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Process(t.Context(), hba)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("processed %d prescriptions, want 3", len(got))
	}
	wantActivatedOnce(t, s, fd, ids)
	if fd.created != 3 {
		t.Errorf("%d Tasks created, want 3", fd.created)
	}
	p, _ := s.Get(t.Context(), "mr-1")
	today := time.Now().In(Berlin).Format(time.DateOnly)
	if b := string(p.Bundle); !strings.Contains(b, `<value value="`+p.TaskID+`"/>`) || !strings.Contains(b, `<authoredOn value="`+today+`"/>`) {
		t.Errorf("the signed bundle does not carry the PrescriptionId and the signing day")
	}
	// the store holds none of it in plaintext: not the patient, the KVNR, the medication, the
	// PrescriptionId or the AccessCode
	raw, err := os.ReadFile(w.db)
	if err != nil {
		t.Fatal(err)
	}
	if wal, err := os.ReadFile(w.db + "-wal"); err == nil {
		raw = append(raw, wal...)
	}
	for _, secret := range []string{"Königsstein", "M123456785", "Sumatriptan", p.TaskID, p.AccessCode, "mr-1"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the database holds %q in plaintext", secret)
		}
	}
	// nothing open any more: a second batch does nothing
	if again, err := s.Process(t.Context(), hba); err != nil || len(again) != 0 || fd.created != 3 {
		t.Errorf("second batch: %d open, %v, %d created", len(again), err, fd.created)
	}
}

func TestQueueReplacesPendingOnly(t *testing.T) {
	w := newWorld(t)
	s := &Service{Store: w.store, Fachdienst: w.fd, Signer: w.k}
	ctx := t.Context()
	p := prescription(t, "mr-1")
	if err := s.Queue(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Medication = "Ibuprofen 400 mg"
	if err := s.Queue(ctx, p); err != nil {
		t.Fatal(err)
	}
	open, err := s.Open(ctx)
	if err != nil || len(open) != 1 || open[0].Medication != "Ibuprofen 400 mg" {
		t.Fatalf("after queueing the same id twice: %v %+v", err, open)
	}
	if _, err := s.Process(ctx, hba); err != nil {
		t.Fatal(err)
	}
	err = s.Queue(ctx, p)
	if fhir.CodeOf(err) != fhir.CodeConflict {
		t.Errorf("queueing an activated prescription again: %v, want a conflict", err)
	}
	if err := s.Queue(ctx, Prescription{ID: "a/b"}); fhir.CodeOf(err) != fhir.CodeValue {
		t.Errorf("an id that is none: %v", err)
	}
}

// TestProcessResumes cuts batches at every step — the Fachdienst unreachable, a wrong PIN, the
// answer of an activation lost, the store failing after a step — and runs the next batch: every
// prescription ends activated, each by exactly one Task.
func TestProcessResumes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(fd *counting, s *Service)
		want  State // where the prescriptions stand after the faulty batch
	}{
		{"Fachdienst unreachable when creating", func(fd *counting, _ *Service) { fd.failNext = 10 }, Pending},
		{"wrong PIN", func(_ *counting, s *Service) { s.Signer = failingSigner{} }, Created},
		{"activation's answer lost", func(fd *counting, _ *Service) { fd.loseNext = 10 }, Signed},
		{"store fails after the Tasks were created", func(_ *counting, s *Service) { s.Store = &failAfter{Store: s.Store, n: 3} }, Created},
		{"store fails after the signatures", func(_ *counting, s *Service) { s.Store = &failAfter{Store: s.Store, n: 6} }, Signed},
		{"store fails after the first activation", func(_ *counting, s *Service) { s.Store = &failAfter{Store: s.Store, n: 7} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			fd := &counting{Fachdienst: w.fd}
			s := &Service{Store: w.store, Fachdienst: fd, Signer: w.k}
			ids := []string{"mr-1", "mr-2", "mr-3"}
			for _, id := range ids {
				if err := s.Queue(t.Context(), prescription(t, id)); err != nil {
					t.Fatal(err)
				}
			}
			faulty := *s
			tc.fault(fd, &faulty)
			faulty.Process(t.Context(), hba) // may fail: the fault's point
			if tc.want != "" {
				for _, id := range ids {
					if p, _ := s.Get(t.Context(), id); p.State != tc.want {
						t.Errorf("after the fault %s is %s, want %s (%s)", id, p.State, tc.want, p.Reason)
					}
				}
			}
			fd.failNext, fd.loseNext = 0, 0
			if _, err := s.Process(t.Context(), hba); err != nil {
				t.Fatal(err)
			}
			wantActivatedOnce(t, s, fd, ids)
		})
	}
}

// failAfter is a store whose commits fail after the first n, like a process killed there.
type failAfter struct {
	Store
	n int
}

func (f *failAfter) Commit(ctx context.Context, w []vault.Write) error {
	if f.n == 0 {
		return errors.New("killed")
	}
	f.n--
	return f.Store.Commit(ctx, w)
}

func TestCover(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("200601021504", s, Berlin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		lo, hi string
		want   []string
	}{
		{"202612071530", "202612071530", []string{"202612071530"}},
		{"202612071558", "202612071602", []string{"202612071558", "202612071559", "202612071600", "202612071601", "202612071602"}},
		{"202612070000", "202612072359", []string{"20261207"}},
		{"202612010000", "202612312359", []string{"202612"}},
		{"202601010000", "202612312359", []string{"2026"}},
		{"202612062200", "202612080159", []string{"2026120622", "2026120623", "20261207", "2026120800", "2026120801"}},
		{"202612071600", "202612071559", nil},
	} {
		if got := cover(at(tc.lo), at(tc.hi)); !slices.Equal(got, tc.want) {
			t.Errorf("cover(%s, %s) = %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
	}
	// Every minute of a long, ragged range is covered exactly once.
	lo, hi := at("202510261437"), at("202612071012")
	toks := cover(lo, hi)
	inside := map[string]bool{}
	for _, tok := range toks {
		inside[tok] = true
	}
	for _, m := range []time.Time{lo, hi, lo.Add(-time.Minute), hi.Add(time.Minute), at("202603290230"), at("202611150000")} {
		n := 0
		for _, tok := range timeTokens(m) {
			if inside[tok] {
				n++
			}
		}
		want := 1
		if m.Before(lo) || m.After(hi) {
			want = 0
		}
		if n != want {
			t.Errorf("%s is covered %d times, want %d", m.Format("200601021504"), n, want)
		}
	}
	if len(toks) > 200 {
		t.Errorf("%d tokens for a year's range", len(toks))
	}
}

func TestTasksPollsByActivationTime(t *testing.T) {
	w := newWorld(t)
	var now time.Time
	s := &Service{Store: w.store, Now: func() time.Time { return now }}
	ctx := t.Context()
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, Berlin)
	for i := range 25 { // one activated Task every 10 minutes from 09:00
		now = start.Add(time.Duration(i) * 10 * time.Minute)
		p := Prescription{ID: fmt.Sprintf("mr-%02d", i), State: Activated, TaskID: fmt.Sprintf("160.000.000.000.%03d.00", i), Activated: now}
		if err := s.save(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	now = start.Add(24 * time.Hour)
	for _, tc := range []struct {
		from, to  time.Time
		page      int
		total, on int
	}{
		{time.Time{}, time.Time{}, 1, 25, 10},
		{time.Time{}, time.Time{}, 3, 25, 5},
		{time.Time{}, time.Time{}, 4, 25, 0},
		{start, start.Add(59 * time.Minute), 1, 6, 6},
		{start.Add(time.Minute), start.Add(10 * time.Minute), 1, 1, 1},
		{start.Add(4 * time.Hour), time.Time{}, 1, 1, 1},
		{time.Time{}, start.Add(-time.Minute), 1, 0, 0},
	} {
		got, total, err := s.Tasks(ctx, tc.from, tc.to, tc.page)
		if err != nil {
			t.Fatal(err)
		}
		if total != tc.total || len(got) != tc.on {
			t.Errorf("Tasks(%v, %v, page %d): %d on the page of %d, want %d of %d", tc.from, tc.to, tc.page, len(got), total, tc.on, tc.total)
		}
	}
}

// TestTasksCountsTheRepeatedHourOnce polls over the night daylight saving time ends, whose hour
// from 02:00 passes twice: a range over both passes is covered by the hour's token and by minute
// tokens that name both passes, and still lists each Task once.
func TestTasksCountsTheRepeatedHourOnce(t *testing.T) {
	w := newWorld(t)
	s := &Service{Store: w.store}
	ctx := t.Context()
	first := time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC) // 02:00 CEST
	for i, at := range []time.Time{first.Add(-time.Hour), first.Add(15 * time.Minute), first.Add(75 * time.Minute), first.Add(2 * time.Hour)} {
		p := Prescription{ID: fmt.Sprintf("mr-%02d", i), State: Activated, TaskID: fmt.Sprintf("160.000.000.000.%03d.00", i), Activated: at}
		if err := s.save(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		total    int
	}{
		{"both passes of the hour", first, first.Add(119 * time.Minute), 2},
		{"the first pass and part of the second", first, first.Add(90 * time.Minute), 2},
		{"the night", first.Add(-2 * time.Hour), first.Add(3 * time.Hour), 4},
	} {
		got, total, err := s.Tasks(ctx, tc.from, tc.to, 1)
		if err != nil {
			t.Fatal(err)
		}
		if total != tc.total || len(got) != tc.total {
			t.Errorf("%s: Tasks = %d of %d, want %d", tc.name, len(got), total, tc.total)
		}
	}
}

// TestProcessSurvivesFachdienstFaults runs batches against a Fachdienst that fails, hangs or
// loses its answers (the simulator's fault injection), then a batch against a healthy one: after
// every fault plan the simulator holds exactly one activated Task per prescription, and red's
// Task polling lists each of them.
func TestProcessSurvivesFachdienstFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		plan []fachdienstsim.Fault
	}{
		{"creating fails twice", []fachdienstsim.Fault{{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.Fail, Count: 2}}},
		{"a creation's answer is lost", []fachdienstsim.Fault{{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.DropAnswer}}},
		{"creating hangs", []fachdienstsim.Fault{{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.Hang}}},
		{"activating fails", []fachdienstsim.Fault{{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.Fail, Status: 500}}},
		{"two activations' answers are lost", []fachdienstsim.Fault{{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.DropAnswer, Count: 2}}},
		{"activating hangs", []fachdienstsim.Fault{{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.Hang}}},
		{"everything fails", []fachdienstsim.Fault{{Kind: fachdienstsim.Fail, Count: -1}}},
		{"mixed", []fachdienstsim.Fault{{Op: fachdienstsim.OpCreate, Kind: fachdienstsim.DropAnswer}, {Op: fachdienstsim.OpActivate, Kind: fachdienstsim.Fail},
			{Op: fachdienstsim.OpActivate, Kind: fachdienstsim.DropAnswer}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.fd.HTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			s := &Service{Store: w.store, Fachdienst: w.fd, Signer: w.k, Timeout: 300 * time.Millisecond}
			ids := []string{"mr-1", "mr-2", "mr-3"}
			for _, id := range ids {
				if err := s.Queue(t.Context(), prescription(t, id)); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.plan {
				if err := w.sim.Inject(f); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Process(t.Context(), hba); err != nil {
				t.Fatal(err)
			}
			w.sim.ClearFaults()
			if _, err := s.Process(t.Context(), hba); err != nil {
				t.Fatal(err)
			}
			ready := map[string]int{}
			for _, task := range w.sim.Tasks() {
				if task.Status == fachdienst.StatusReady {
					ready[task.ID]++
				}
			}
			if len(ready) != len(ids) {
				t.Errorf("%d Tasks are activated at the Fachdienst, want %d", len(ready), len(ids))
			}
			for _, id := range ids {
				p, err := s.Get(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				if p.State != Activated || ready[p.TaskID] != 1 {
					t.Errorf("%s: %s (%s), its Task %s ready %d times", id, p.State, p.Reason, p.TaskID, ready[p.TaskID])
				}
			}
			listed, total, err := s.Tasks(t.Context(), time.Time{}, time.Time{}, 1)
			if err != nil || total != len(ids) || len(listed) != len(ids) {
				t.Errorf("Task polling: %d of %d, %v", len(listed), total, err)
			}
		})
	}
}

func TestProgressReportsEveryStep(t *testing.T) {
	w := newWorld(t)
	var steps []State
	s := &Service{Store: w.store, Fachdienst: w.fd, Signer: w.k, Progress: func(p Prescription) { steps = append(steps, p.State) }}
	if err := s.Queue(t.Context(), prescription(t, "mr-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(t.Context(), hba); err != nil {
		t.Fatal(err)
	}
	if want := []State{Pending, Created, Signed, Activated}; !slices.Equal(steps, want) {
		t.Errorf("progress %v, want %v", steps, want)
	}
}

// TestFlowTypes: a direct assignment (169) is created, signed and activated as such.
func TestFlowTypes(t *testing.T) {
	w := newWorld(t)
	s := &Service{Store: w.store, Fachdienst: w.fd, Signer: w.k}
	p := prescription(t, "mr-169")
	p.FlowType = 169
	if err := s.Queue(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(t.Context(), hba); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), "mr-169")
	if err != nil || got.State != Activated || !strings.HasPrefix(got.TaskID, "169.") {
		t.Fatalf("%+v %v (%s)", got.State, err, got.Reason)
	}
}

// TestAbort: the practice cancels an activated prescription; a lost answer is recognised on the
// retry (the Fachdienst answers that the Task is gone); the polling lists it as cancelled.
func TestAbort(t *testing.T) {
	w := newWorld(t)
	w.fd.HTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	s := &Service{Store: w.store, Fachdienst: w.fd, Signer: w.k, Timeout: time.Second}
	ctx := t.Context()
	for _, id := range []string{"mr-1", "mr-2"} {
		if err := s.Queue(ctx, prescription(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Queue(ctx, prescription(t, "mr-3")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(ctx, hba, "mr-1", "mr-2"); err != nil {
		t.Fatal(err)
	}
	one, _ := s.Get(ctx, "mr-1")
	two, _ := s.Get(ctx, "mr-2")
	if p, _ := s.Get(ctx, "mr-3"); p.State != Pending {
		t.Errorf("a batch of named prescriptions took mr-3 too: %s", p.State)
	}
	if p, err := s.Abort(ctx, one.TaskID); err != nil || p.State != Cancelled {
		t.Fatalf("abort: %v %s", err, p.State)
	}
	if p, err := s.Abort(ctx, one.TaskID); err != nil || p.State != Cancelled {
		t.Errorf("aborting twice: %v %s", err, p.State)
	}
	if err := w.sim.Inject(fachdienstsim.Fault{Op: fachdienstsim.OpAbort, Kind: fachdienstsim.DropAnswer}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Abort(ctx, two.TaskID); err == nil {
		t.Fatal("a lost answer: want an error")
	}
	if p, err := s.Abort(ctx, two.TaskID); err != nil || p.State != Cancelled {
		t.Errorf("retry after a lost answer: %v %s", err, p.State)
	}
	if _, err := s.Abort(ctx, "160.000.000.000.999.00"); fhir.CodeOf(err) != fhir.CodeNotFound {
		t.Errorf("an unknown PrescriptionId: %v", err)
	}
	for _, task := range w.sim.Tasks() {
		if (task.ID == one.TaskID || task.ID == two.TaskID) && task.Status != fachdienst.StatusCancelled {
			t.Errorf("Task %s is %s at the Fachdienst", task.ID, task.Status)
		}
	}
	listed, total, err := s.Tasks(ctx, time.Time{}, time.Time{}, 1)
	if err != nil || total != 2 || listed[0].State != Cancelled || listed[1].State != Cancelled {
		t.Errorf("polling after the aborts: %d %v %+v", total, err, listed)
	}
}

// TestOnePINEntryPerBatch: a batch is one signature request — one PIN entry at the terminal for
// all its prescriptions (Stapelsignatur), none while Komfortsignatur is on.
func TestOnePINEntryPerBatch(t *testing.T) {
	w := newWorld(t)
	s := &Service{Store: w.store, Fachdienst: w.fd, Signer: w.k}
	ctx := t.Context()
	batch := func(ids ...string) int {
		for _, id := range ids {
			if err := s.Queue(ctx, prescription(t, id)); err != nil {
				t.Fatal(err)
			}
		}
		before := w.ksim.PinPrompts(hba)
		ps, err := s.Process(ctx, hba)
		if err != nil || len(ps) != len(ids) {
			t.Fatalf("%v, %d", err, len(ps))
		}
		for _, p := range ps {
			if p.State != Activated {
				t.Fatalf("%s: %s (%s)", p.ID, p.State, p.Reason)
			}
		}
		return w.ksim.PinPrompts(hba) - before
	}
	if n := batch("mr-1", "mr-2", "mr-3"); n != 1 {
		t.Errorf("a batch of 3 asked for the PIN %d times, want once", n)
	}
	if _, err := w.k.ActivateComfortSignature(ctx, hba); err != nil {
		t.Fatal(err)
	}
	m, err := w.k.GetSignatureMode(ctx, hba)
	if err != nil || m.Session == nil || m.Session.Mode != konnektor.ModeComfort {
		t.Fatalf("Komfortsignatur: %+v %v", m, err)
	}
	left := m.Session.CountRemaining
	if n := batch("mr-4", "mr-5"); n != 0 {
		t.Errorf("with Komfortsignatur the batch asked for the PIN %d times", n)
	}
	if m, err := w.k.GetSignatureMode(ctx, hba); err != nil || m.Session.CountRemaining != left-2 {
		t.Errorf("Komfortsignatur count: %+v %v, want %d left", m.Session, err, left-2)
	}
}

// TestPrescriptionsOfAGroupsPatient: a prescription of a patient in a user group is that
// group's: others neither see it queued nor poll its Task nor abort it.
func TestPrescriptionsOfAGroupsPatient(t *testing.T) {
	w := newWorld(t)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, Berlin)
	s := &Service{Store: w.store, Fachdienst: w.fd, Now: func() time.Time { return now }}
	kardio := access.With(t.Context(), access.Principal{User: "anna", Groups: []string{"kardio"}})
	ortho := access.With(t.Context(), access.Principal{User: "bert", Groups: []string{"ortho"}})
	queued := prescription(t, "mr-k")
	queued.Group = "kardio"
	if err := s.Queue(kardio, queued); err != nil {
		t.Fatal(err)
	}
	active := Prescription{ID: "mr-a", State: Activated, TaskID: "160.000.000.000.001.54", Activated: now, Group: "kardio"}
	if err := s.save(kardio, &active); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		sees bool
	}{{"a member", kardio, true}, {"a member of another group", ortho, false}, {"red's own work", t.Context(), true}} {
		t.Run(tc.name, func(t *testing.T) {
			open, err := s.Open(tc.ctx)
			if err != nil || (len(open) == 1) != tc.sees {
				t.Errorf("Open = %d prescriptions, %v; want seen %v", len(open), err, tc.sees)
			}
			if p, err := s.Get(tc.ctx, "mr-k"); (err == nil) != tc.sees || tc.sees && p.Group != "kardio" {
				t.Errorf("Get = group %q, %v; want seen %v", p.Group, err, tc.sees)
			}
			tasks, total, err := s.Tasks(tc.ctx, time.Time{}, time.Time{}, 1)
			if err != nil || (total == 1) != tc.sees || len(tasks) != total {
				t.Errorf("Tasks = %d of %d, %v; want seen %v", len(tasks), total, err, tc.sees)
			}
		})
	}
	if _, err := s.Abort(ortho, active.TaskID); fhir.CodeOf(err) != fhir.CodeNotFound {
		t.Errorf("another group's member aborts: %v, want not found", err)
	}
}

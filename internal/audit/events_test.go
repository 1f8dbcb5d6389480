package audit_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/audit"
	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/internal/vault/vaulttest"
)

// stubTI answers TI actions as the Konnektor and the ePA would, without them.
type stubTI struct{}

func (stubTI) Do(_ context.Context, action string, q url.Values, _ *etree.Element) (telematik.Answer, error) {
	switch action {
	case "$getepastatus":
		return telematik.Answer{Status: 201, Body: etree.NewElement("result")}, nil
	case "$openpatient":
		return telematik.Answer{Status: 404, Body: fhir.OperationOutcome(fhir.Issues{{Severity: fhir.SeverityError, Code: fhir.CodeNotFound, Diagnostics: "no such patient"}})}, nil
	}
	return telematik.Answer{}, fhir.Fail(fhir.CodeTransient, "", "the Konnektor does not answer")
}
func (stubTI) SignPDF(context.Context, url.Values, []byte) (telematik.Answer, error) {
	return telematik.Answer{}, errors.New("not here")
}
func (stubTI) CreateERP(context.Context, url.Values, *etree.Element) (telematik.Answer, error) {
	return telematik.Answer{}, errors.New("not here")
}

// Tasks answers one Task for the insured person with the KVNR X110614233.
func (stubTI) Tasks(context.Context, url.Values) (telematik.Answer, error) {
	b, err := fhir.Unmarshal([]byte(`<Bundle><entry><Task><for><identifier><system value="http://fhir.de/sid/gkv/kvid-10"/><value value="X110614233"/></identifier></for></Task></entry></Bundle>`))
	return telematik.Answer{Status: 200, Body: b}, err
}
func (stubTI) Received(context.Context, url.Values) (telematik.Answer, error) {
	return telematik.Answer{}, errors.New("not here")
}
func (stubTI) Reply(context.Context, url.Values, *etree.Element) (telematik.Answer, error) {
	return telematik.Answer{}, errors.New("not here")
}
func (stubTI) TaskAction(context.Context, string, url.Values) (telematik.Answer, error) {
	return telematik.Answer{}, errors.New("not here")
}
func (stubTI) PharmacyTask(context.Context, string) (telematik.Answer, error) {
	return telematik.Answer{}, errors.New("not here")
}
func (stubTI) Dispense(context.Context, url.Values, *etree.Element) (telematik.Answer, error) {
	return telematik.Answer{}, errors.New("not here")
}

// stubPage has one prescription open, for Patient/60151.
type stubPage struct{}

func (stubPage) OpenPrescriptions(context.Context) ([]erp.Prescription, error) {
	return []erp.Prescription{{ID: "MR-1", Bundle: []byte(`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Patient><id value="60151"/></Patient></resource></entry></Bundle>`)}}, nil
}
func (stubPage) PrescribingHBAs(context.Context) ([]telematik.HBA, error) { return nil, nil }
func (stubPage) SignPrescriptions(_ context.Context, _ string, ids []string, _ telematik.Watch) ([]erp.Prescription, error) {
	return nil, fhir.Fail(fhir.CodeConflict, "card", "no HBA inserted")
}

func TestEveryRequestIsRecorded(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	tr := start(t, b, "anna", "ws-1")
	r := service(tr, b)
	ti := tr.Telematik(stubTI{})
	page := tr.UI(stubPage{})
	ben := acting("ben", "ws-2")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	post(t, ben, r, "patients.xml")
	must(r.Read(ben, "Patient", "60151"))
	if _, err := r.Read(ben, "Patient", "60999"); fhir.CodeOf(err) != fhir.CodeNotFound {
		t.Fatalf("read of an unknown patient: %v", err)
	}
	must(r.Search(ben, "Patient", url.Values{"identifier": {"X110614233"}}))
	must(r.Search(ben, "Condition", url.Values{"patient": {"Patient/60152"}}))
	must(r.ReadVersion(ben, "Patient", "60151", "1"))
	bad := bundle(t, "patients.xml")
	bad.FindElement("entry/resource/Patient/birthDate").CreateAttr("value", "1957-13-45")
	if _, err := r.PostBundle(ben, bad); err == nil {
		t.Fatal("a bundle with a wrong birth date was stored")
	}
	must(ti.Do(ben, "$getepastatus", url.Values{"patient": {"X110614233"}}, nil))
	must(ti.Do(ben, "$openpatient", url.Values{"id": {"60151"}}, nil))
	if _, err := ti.Do(ben, "$getcards", url.Values{}, nil); err == nil {
		t.Fatal("the stub answered $getcards")
	}
	must(ti.Tasks(ben, url.Values{}))
	must(page.OpenPrescriptions(ben))
	must(page.OpenPrescriptions(ben)) // the page polls: shown once a minute
	if _, err := page.SignPrescriptions(ben, "HBA-1", []string{"MR-1"}, telematik.Watch{}); err == nil {
		t.Fatal("the stub signed")
	} // recorded, but without the patient: nothing was signed
	must(r.DeleteBundle(ben, "10000"))
	closeTrail(t, tr)

	tr = start(t, b, "anna", "ws-1")
	defer closeTrail(t, tr)
	found, err := tr.Query(acting("anna", "ws-1", access.Admin), audit.Filter{Patient: "60151"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		got = append(got, line(f))
	}
	want := []string{
		"ben ws-2 create [Bundle history] success 200 Patient/60151,Patient/60152",
		"ben ws-2 read Patient success 200 Patient/60151",
		"ben ws-2 search Patient success 200 Patient/60151",
		"ben ws-2 vread Patient success 200 Patient/60151",
		"ben ws-2 write Bundle [Bundle history] value 400 Patient/60151,Patient/60152",
		"ben ws-2 operation [$getepastatus] success 201 kvnr:X110614233",
		"ben ws-2 operation [$openpatient] not-found 404 Patient/60151",
		"ben ws-2 operation [Task polling] success 200 kvnr:X110614233",
		"ben ws-2 search MedicationRequest [signing page] success 200 Patient/60151",
		"ben ws-2 delete [Bundle deletion] success 200 Patient/60151,Patient/60152",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the events concerning Patient/60151 (-want +got):\n%s", diff)
	}
	for _, f := range found {
		for _, en := range f.Entities {
			if len(en.Token) != 16 || en.ID != "" {
				t.Errorf("%s names %s by %x %q, want only its 16-byte id token", line(f), en.Type, en.Token, en.ID)
			}
		}
	}

	t.Run("the user filter keeps one user's events", func(t *testing.T) {
		mine, err := tr.Query(acting("anna", "ws-1", access.Admin), audit.Filter{Patient: "60151", User: "anna"})
		if err != nil || len(mine) != 0 {
			t.Fatalf("%d events of anna, want none: %v", len(mine), err)
		}
	})
	t.Run("the since filter keeps later events", func(t *testing.T) {
		later, err := tr.Query(acting("anna", "ws-1", access.Admin), audit.Filter{Patient: "60151", Since: found[3].At})
		if err != nil || len(later) == 0 || slices.ContainsFunc(later, func(f audit.Found) bool { return f.At.Before(found[3].At) }) {
			t.Fatalf("events since %s: %d, %v", found[3].At, len(later), err)
		}
	})
	t.Run("reading the trail is recorded", func(t *testing.T) {
		closeTrail(t, tr)
		tr = start(t, b, "anna", "ws-1")
		reads, err := tr.Query(acting("anna", "ws-1", access.Admin), audit.Filter{Patient: "60151", User: "anna"})
		if err != nil || len(reads) != 3 {
			t.Fatalf("want the 3 queries of anna, got %d: %v", len(reads), err)
		}
		for _, f := range reads {
			if l := line(f); !strings.HasPrefix(l, "anna ws-1 search AuditEvent success") {
				t.Errorf("%s, want anna's search of the audit trail", l)
			}
		}
	})
}

// TestAPatientsEventsOfSeveralDays reads a patient before and after midnight, among reads of
// others: a record is found by a patient only when it is its chain's first of the day with the
// patient, and the patient's other events are found in that chain's records of that day.
func TestAPatientsEventsOfSeveralDays(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	now := time.Date(2026, 5, 1, 23, 59, 59, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(100 * time.Millisecond)
		return now
	}
	tr, err := audit.Start(context.Background(), b, audit.Options{Tenant: "praxis", User: "anna", Workstation: "ws-1", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	r := service(tr, b)
	ctx := acting("ben", "ws-2")
	post(t, ctx, r, "patients.xml")
	for range 20 { // across midnight, in several records
		for _, id := range []string{"60151", "60152"} {
			if _, err := r.Read(ctx, "Patient", id); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(audit.Linger / 4)
	}
	closeTrail(t, tr)
	tr = start(t, b, "anna", "ws-1")
	defer closeTrail(t, tr)
	midnight := time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)
	reads := func(t *testing.T, f audit.Filter) (before, after int) {
		found, err := tr.Query(acting("anna", "ws-1", access.Admin), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			if f.Action != audit.Read {
				continue
			}
			if !slices.Equal(f.Patients, []string{"Patient/60152"}) {
				t.Errorf("a read of %v", f.Patients)
			}
			if f.At.Before(midnight) {
				before++
			} else {
				after++
			}
		}
		return before, after
	}
	before, after := reads(t, audit.Filter{Patient: "60152"})
	if before+after != 20 || before == 0 || after == 0 {
		t.Fatalf("%d reads before midnight and %d after, want 20 on both days", before, after)
	}
	t.Run("finds the reads after midnight", func(t *testing.T) {
		if b, a := reads(t, audit.Filter{Patient: "60152", Since: midnight}); b != 0 || a != after {
			t.Errorf("%d reads before and %d after midnight, want 0 and %d", b, a, after)
		}
	})
}

// refusing is an Access that knows no API token.
type refusing struct{}

func (refusing) Principal(context.Context, string) (access.Principal, error) {
	return access.Principal{}, fhir.Fail(fhir.CodeUnauthorized, "", "the API token is not valid for this tenant")
}
func (refusing) Page(context.Context) (access.Principal, error) { return access.Principal{}, nil }

// A client refused for its API token is recorded as a failed login in the server's session.
func TestRefusedClientsAreRecorded(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	tr := start(t, b, "anna", "ws-1")
	if _, err := tr.Access(refusing{}).Principal(context.Background(), "Bearer red_wrong"); fhir.CodeOf(err) != fhir.CodeUnauthorized {
		t.Fatalf("the wrapper answered %v", err)
	}
	if _, err := tr.Access(refusing{}).Page(context.Background()); err != nil {
		t.Fatal(err)
	}
	closeTrail(t, tr)
	tr = start(t, b, "anna", "ws-1")
	defer closeTrail(t, tr)
	found, err := tr.Query(acting("anna", "ws-1", access.Admin), audit.Filter{User: "anna"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		got = append(got, line(f))
	}
	want := []string{"anna ws-1 login [test] success ", "anna ws-1 login [API token] unauthorized 401 ", "anna ws-1 logout [stopped] success ", "anna ws-1 login [test] success "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("anna's events (-want +got):\n%s", diff)
	}
}

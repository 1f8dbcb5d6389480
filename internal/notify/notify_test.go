package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/notify"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/internal/vault/vaulttest"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/sqlite"
)

// fast delivery settings for tests
var fast = notify.Delivery{Poll: 20 * time.Millisecond, Lease: 2 * time.Second, Timeout: time.Second, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxFailures: 4}

// env is one tenant with records writing through the outbox and a running deliverer.
type env struct {
	notes *notify.Service
	recs  *records.Service
	store records.Store
}

func newEnv(t testing.TB, b store, d notify.Delivery, hosts ...string) *env {
	t.Helper()
	n := &notify.Service{Tenant: "praxis", Store: b, Delivery: d, Hosts: hosts}
	e := &env{notes: n, store: n.Wrap(b)}
	e.recs = &records.Service{Tenant: "praxis", Store: e.store}
	return e
}

// store is a tenant's barrier, or a test's wrapper of it.
type store interface {
	notify.Store
	records.Store
}

// run starts the deliverer until the test ends.
func (e *env) run(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.notes.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func xml(t testing.TB, s string) *etree.Element {
	t.Helper()
	el, err := fhir.Parse([]byte(s), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func subscriptionXML(status, criteria, endpoint, payload string) string {
	return fmt.Sprintf(`<Subscription xmlns="http://hl7.org/fhir"><status value="%s"/><reason value="test"/><criteria value="%s"/>`+
		`<channel><type value="rest-hook"/><endpoint value="%s"/><payload value="application/fhir+xml">`+
		`<extension url="http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"><valueCode value="%s"/></extension>`+
		`</payload></channel></Subscription>`, status, strings.ReplaceAll(criteria, "&", "&amp;"), endpoint, payload)
}

// subscribe creates a subscription and returns its id and secret.
func (e *env) subscribe(t testing.TB, criteria, endpoint, payload string) (id, secret string) {
	t.Helper()
	res, err := e.notes.Create(context.Background(), xml(t, subscriptionXML("requested", criteria, endpoint, payload)))
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range res.FindElements("channel/extension") {
		if ext.SelectAttrValue("url", "") == notify.SecretExtension {
			secret = fhir.ChildValue(ext, "valueString")
		}
	}
	if secret == "" {
		t.Fatal("the created Subscription shows no secret")
	}
	return fhir.ChildValue(res, "id"), secret
}

func (e *env) post(t testing.TB, entries ...string) {
	t.Helper()
	if err := e.postErr(t, entries...); err != nil {
		t.Fatal(err)
	}
}

func (e *env) postErr(t testing.TB, entries ...string) error {
	t.Helper()
	_, err := e.recs.PostBundle(context.Background(), xml(t, `<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`+strings.Join(entries, "")+`</Bundle>`))
	return err
}

var patientTemplate = func() string {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bundles", "patient.tmpl.xml"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// kvnr is a valid KVNR made from n.
func kvnr(n int) string {
	for d := 0; d < 10; d++ {
		if k := fmt.Sprintf("T%08d%d", n, d); ident.KVNR(k) == nil {
			return k
		}
	}
	panic("no KVNR")
}

// patient is a valid Patient entry with the KVNR made from n.
func patient(id string, n int, family string) string {
	return strings.NewReplacer("{{ID}}", id, "{{KVNR}}", kvnr(n), "{{FAMILY}}", family, "{{GIVEN}}", "Erika", "{{GENDER}}", "female", "{{BIRTH}}", "1970-01-01").Replace(patientTemplate)
}

// delivery is one request a receiver got.
type delivery struct {
	id, timestamp, signature string
	seq                      int
	body                     string
}

// receiver is a webhook endpoint on loopback; fail makes it answer 503, slow answer late.
type receiver struct {
	mu   sync.Mutex
	got  []delivery
	fail bool
	slow time.Duration
	url  string
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		time.Sleep(r.slow)
		if r.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		seq, _ := strconv.Atoi(req.Header.Get("X-Red-Sequence"))
		r.got = append(r.got, delivery{req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), seq, string(body)})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	return r
}

func (r *receiver) setFail(f bool) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// wait waits until the receiver has n deliveries (5 s at most).
func (r *receiver) wait(t testing.TB, n int) []delivery {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.deliveries(); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := r.deliveries()
	t.Fatalf("%d deliveries, want %d", len(got), n)
	return got
}

// quiet asserts that the receiver gets nothing more than n within a while.
func (r *receiver) quiet(t testing.TB, n int) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	if got := r.deliveries(); len(got) != n {
		t.Errorf("%d deliveries, want %d", len(got), n)
	}
}

// verify checks a delivery's signature independently of notify's code (Standard Webhooks).
func verify(t testing.TB, secret string, d delivery) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(d.id + "." + d.timestamp + "." + d.body))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(d.signature)) {
		t.Errorf("signature %q, want %q", d.signature, want)
	}
	ts, err := strconv.ParseInt(d.timestamp, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not now", d.timestamp)
	}
	if !strings.HasPrefix(d.id, "msg_") {
		t.Errorf("webhook-id %q", d.id)
	}
}

func TestCriteriaFireExactlyWhenTheyShould(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	cases := []struct {
		name, criteria string
		want           []string // focus references per delivery, in order
	}{
		{"a type alone selects every resource of it", "Patient", []string{"Patient/a/_history/1", "Patient/b/_history/1", "Patient/a/_history/2"}},
		{"an exact token selects one patient", "Patient?_id=a", []string{"Patient/a/_history/1", "Patient/a/_history/2"}},
		{"an identifier token selects by KVNR", "Patient?identifier=http://fhir.de/sid/gkv/kvid-10|" + kvnr(2), []string{"Patient/b/_history/1"}},
		{"a name is checked on the written body", "Patient?family=Zweitname", []string{"Patient/a/_history/2"}},
		{"another type selects nothing here", "Observation?patient=Patient/a", nil},
	}
	recv := map[string]*receiver{}
	for _, c := range cases {
		recv[c.name] = newReceiver(t)
		e.subscribe(t, c.criteria, recv[c.name].url, notify.IDOnly)
	}
	e.run(t)
	e.post(t, patient("a", 1, "Muster"))
	e.post(t, patient("b", 2, "Muster"))
	if err := e.postErr(t, patient("x", 3, "Muster"), `<entry><resource><Patient><id value="y"/><birthDate value="morgen"/></Patient></resource></entry>`); err == nil {
		t.Fatal("an invalid bundle was stored")
	}
	e.post(t, patient("a", 1, "Zweitname"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := recv[c.name]
			got := r.wait(t, len(c.want))
			r.quiet(t, len(c.want))
			for i, d := range got {
				if i >= len(c.want) {
					break
				}
				mustContain(t, d.body, `<reference value="`+c.want[i]+`"/>`, `<valueCanonical value="urn:red:event:resource-changed"/>`)
				if d.seq != i+1 {
					t.Errorf("delivery %d has sequence number %d", i, d.seq)
				}
			}
		})
	}
}

func mustContain(t testing.TB, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("lacks %s:\n%s", w, body)
		}
	}
}

func TestPayloadsAreSignedIDOnlyOrFull(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	light, full := newReceiver(t), newReceiver(t)
	_, lightSecret := e.subscribe(t, "Patient", light.url, notify.IDOnly)
	fullID, fullSecret := e.subscribe(t, "Patient", full.url, notify.FullResource)
	e.run(t)
	e.post(t, patient("p1", 7, "Muster"))
	d := light.wait(t, 1)[0]
	verify(t, lightSecret, d)
	mustContain(t, d.body, `<type value="history"/>`, `<valueCode value="event-notification"/>`, `<name value="events-since-subscription-start"/>`,
		`<reference value="Patient/p1/_history/1"/>`, `<value value="`+kvnr(7)+`"/>`, `<fullUrl value="Patient/p1"/>`, `<method value="POST"/>`)
	if strings.Contains(d.body, "<Patient") || strings.Contains(d.body, "Muster") {
		t.Errorf("an id-only notification carries the resource:\n%s", d.body)
	}
	f := full.wait(t, 1)[0]
	verify(t, fullSecret, f)
	mustContain(t, f.body, `<Patient xmlns="http://hl7.org/fhir">`, `<family value="Muster"/>`, `<reference value="Subscription/`+fullID+`"/>`)
	if f.id == d.id {
		t.Error("two subscriptions' notifications share a webhook-id")
	}
	// a signature with another secret does not verify
	other := d
	other.body += " "
	if s, _ := notify.Sign(lightSecret, other.id, other.timestamp, []byte(other.body)); s == d.signature {
		t.Error("a changed body signs the same")
	}
}

func TestBacklogIsDeliveredInOrderWhenTheReceiverReturns(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	d := fast
	d.MaxFailures = 1000
	e := newEnv(t, b, d)
	r := newReceiver(t)
	r.setFail(true)
	id, _ := e.subscribe(t, "Patient", r.url, notify.IDOnly)
	e.run(t)
	for i := range 6 {
		e.post(t, patient(fmt.Sprintf("p%d", i), 10+i, "Muster"))
	}
	time.Sleep(100 * time.Millisecond)
	r.setFail(false)
	got := r.wait(t, 6)
	r.quiet(t, 6)
	for i, d := range got {
		if d.seq != i+1 {
			t.Errorf("delivery %d has sequence number %d", i, d.seq)
		}
		mustContain(t, d.body, fmt.Sprintf(`<reference value="Patient/p%d/_history/1"/>`, i))
	}
	// the receiver asks for what it had from 3 on again
	set, err := e.notes.Events(context.Background(), id, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if set.Total != 3 || len(set.Entries) != 3 {
		t.Fatalf("$events?since=3: total %d, %d entries", set.Total, len(set.Entries))
	}
	for i, en := range set.Entries {
		if want := fmt.Sprintf(`<reference value="Patient/p%d/_history/1"/>`, i+3); !strings.Contains(string(fhir.Document(en.Resource)), want) {
			t.Errorf("$events entry %d lacks %s", i, want)
		}
	}
}

func TestFailingSubscriptionIsInErrorUntilReactivated(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	r := newReceiver(t)
	r.setFail(true)
	id, _ := e.subscribe(t, "Patient", r.url, notify.IDOnly)
	e.run(t)
	e.post(t, patient("p1", 21, "Muster"))
	ctx := context.Background()
	res := waitForStatus(t, e, id, "error")
	if !strings.Contains(fhir.ChildValue(res, "error"), "HTTP 503") {
		t.Fatalf("the failing subscription reads:\n%s", fhir.Document(res))
	}
	// in error, changes still go into the outbox; nothing is sent
	e.post(t, patient("p2", 22, "Muster"))
	r.setFail(false)
	r.quiet(t, 0)
	// set active again: the backlog follows, in order
	if _, _, err := e.notes.Update(ctx, id, xml(t, subscriptionXML("active", "Patient", r.url, notify.IDOnly))); err != nil {
		t.Fatal(err)
	}
	got := r.wait(t, 2)
	mustContain(t, got[0].body, `<reference value="Patient/p1/_history/1"/>`)
	mustContain(t, got[1].body, `<reference value="Patient/p2/_history/1"/>`)
	if res, _ = e.notes.Read(ctx, id); fhir.ChildValue(res, "status") != "active" {
		t.Errorf("reactivated subscription reads:\n%s", fhir.Document(res))
	}
}

func TestPausedSubscriptionCollectsNothing(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	r := newReceiver(t)
	id, _ := e.subscribe(t, "Patient", r.url, notify.IDOnly)
	e.run(t)
	ctx := context.Background()
	if _, _, err := e.notes.Update(ctx, id, xml(t, subscriptionXML("off", "Patient", r.url, notify.IDOnly))); err != nil {
		t.Fatal(err)
	}
	e.post(t, patient("p1", 31, "Muster"))
	r.quiet(t, 0)
	if _, _, err := e.notes.Update(ctx, id, xml(t, subscriptionXML("active", "Patient", r.url, notify.IDOnly))); err != nil {
		t.Fatal(err)
	}
	e.post(t, patient("p2", 32, "Muster"))
	got := r.wait(t, 1)
	mustContain(t, got[0].body, `<reference value="Patient/p2/_history/1"/>`)
	r.quiet(t, 1)
	if err := e.notes.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.post(t, patient("p3", 33, "Muster"))
	r.quiet(t, 1)
	if _, err := e.notes.Read(ctx, id); fhir.CodeOf(err) != fhir.CodeDeleted {
		t.Errorf("a deleted subscription reads: %v", err)
	}
}

func TestEndpointsOutsideThisMachineAreRefused(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast, "pvs.praxis.example")
	cases := []struct {
		name, endpoint string
		code           fhir.IssueCode
	}{
		{"accepts 127.0.0.1", "http://127.0.0.1:8080/hook", ""},
		{"accepts localhost", "http://localhost:8080/hook", ""},
		{"accepts ::1", "http://[::1]:8080/hook", ""},
		{"accepts an allowed host over https", "https://pvs.praxis.example/hook", ""},
		{"refuses an allowed host over http", "http://pvs.praxis.example/hook", fhir.CodeForbidden},
		{"refuses another host", "https://example.com/hook", fhir.CodeForbidden},
		{"refuses a private address", "http://10.0.0.8/hook", fhir.CodeForbidden},
		{"refuses user information", "http://user:pw@127.0.0.1/hook", fhir.CodeValue},
		{"refuses another scheme", "ftp://127.0.0.1/hook", fhir.CodeValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.notes.Create(context.Background(), xml(t, subscriptionXML("requested", "Patient", c.endpoint, notify.IDOnly)))
			if got := fhir.CodeOf(err); (err == nil) != (c.code == "") || (err != nil && got != c.code) {
				t.Errorf("got %v (%s), want %q", err, got, c.code)
			}
			if is, _ := fhir.Explain(err); err != nil && (len(is) != 1 || is[0].Expression != "Subscription.channel.endpoint") {
				t.Errorf("issues %v", is)
			}
		})
	}
}

func TestSubscriptionsAreChecked(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	cases := []struct {
		name, criteria, at string
	}{
		{"refuses an unknown type", "Unicorn?x=1", "Subscription.criteria"},
		{"refuses an unknown parameter", "Patient?shoe=42", "shoe"},
		{"refuses paging", "Patient?_count=5", "Subscription.criteria"},
		{"refuses an unknown event", "urn:red:event:moon-rise", "Subscription.criteria"},
		{"needs criteria", "", "Subscription.criteria"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.notes.Create(context.Background(), xml(t, subscriptionXML("requested", c.criteria, "http://127.0.0.1/hook", notify.IDOnly)))
			is, _ := fhir.Explain(err)
			if len(is) == 0 || is[0].Expression != c.at {
				t.Errorf("got %v", is)
			}
		})
	}
}

func TestBundleDeletedEvent(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	r := newReceiver(t)
	e.subscribe(t, notify.TopicPrefix+notify.BundleDeleted, r.url, notify.FullResource)
	e.run(t)
	res, err := e.recs.PostBundle(context.Background(), xml(t, `<Bundle xmlns="http://hl7.org/fhir"><id value="b1"/><type value="history"/>`+patient("p1", 41, "Muster")+`</Bundle>`))
	if err != nil {
		t.Fatal(err)
	}
	_ = res
	r.quiet(t, 0)
	if _, err := e.recs.DeleteBundle(context.Background(), "b1"); err != nil {
		t.Fatal(err)
	}
	d := r.wait(t, 1)[0]
	mustContain(t, d.body, `<valueCanonical value="urn:red:event:bundle-deleted"/>`, `<reference value="Bundle/b1/_history/2"/>`,
		`<reference value="Patient/p1/_history/2"/>`, `<method value="DELETE"/>`)
}

// prescription is a practice's prescription record as package erp stores it (red:erp).
func prescription(state, taskStatus string) []byte {
	return []byte(fmt.Sprintf(`{"id":"mr1","state":%q,"taskId":"160.000.000.000.000.01","taskStatus":%q,"flowType":160}`, state, taskStatus))
}

func TestTaskEvents(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	avail, status := newReceiver(t), newReceiver(t)
	e.subscribe(t, notify.TopicPrefix+notify.TaskAvailable, avail.url, notify.FullResource)
	e.subscribe(t, notify.TopicPrefix+notify.TaskStatus, status.url, notify.IDOnly)
	e.run(t)
	ctx := context.Background()
	steps := []struct{ state, taskStatus string }{{"pending", ""}, {"signed", ""}, {"activated", "ready"}, {"activated", "ready"}, {"cancelled", "cancelled"}}
	for i, s := range steps {
		w := vault.Write{Type: "red:erp", ID: "mr1", Expect: int64(i), Updated: time.Now().UTC(), Body: prescription(s.state, s.taskStatus)}
		if err := e.store.Commit(ctx, []vault.Write{w}); err != nil {
			t.Fatal(err)
		}
	}
	a := avail.wait(t, 1)
	mustContain(t, a[0].body, `<valueCanonical value="urn:red:event:task-available"/>`, `<Task xmlns="http://hl7.org/fhir">`, `<status value="ready"/>`,
		`<reference value="MedicationRequest/mr1"/>`)
	st := status.wait(t, 2)
	mustContain(t, st[0].body, `<reference value="Task/160.000.000.000.000.01"/>`)
	mustContain(t, st[1].body, `<reference value="Task/160.000.000.000.000.01"/>`)
	avail.quiet(t, 1)
	status.quiet(t, 2)
}

// A pharmacy's prescription record (package pharmacy) notifies task-status when the Task's
// status at the Fachdienst changes: accepted (in-progress), closed (completed) — not for the
// steps in between.
func TestPharmacyTaskStatusEvents(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	r := newReceiver(t)
	e.subscribe(t, notify.TopicPrefix+notify.TaskStatus, r.url, notify.FullResource)
	e.run(t)
	for i, state := range []string{"claiming", "accepted", "dispensed", "closing", "closed"} {
		w := vault.Write{Type: "red:rx", ID: "160.000.000.000.000.02", Expect: int64(i), Updated: time.Now().UTC(),
			Body: []byte(fmt.Sprintf(`{"id":"160.000.000.000.000.02","state":%q,"accessCode":"x"}`, state))}
		if err := e.store.Commit(context.Background(), []vault.Write{w}); err != nil {
			t.Fatal(err)
		}
	}
	got := r.wait(t, 2)
	r.quiet(t, 2)
	for i, status := range []string{"in-progress", "completed"} {
		mustContain(t, got[i].body, `<reference value="Task/160.000.000.000.000.02"/>`, `<status value="`+status+`"/>`)
	}
}

func TestMessageReceivedEvent(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	r := newReceiver(t)
	e.subscribe(t, notify.TopicPrefix+notify.MessageReceived, r.url, notify.IDOnly)
	e.run(t)
	msg := xml(t, `<Communication xmlns="http://hl7.org/fhir"><id value="c1"/><status value="unknown"/></Communication>`)
	if err := e.notes.Announce(context.Background(), notify.MessageReceived, []*etree.Element{msg}); err != nil {
		t.Fatal(err)
	}
	d := r.wait(t, 1)[0]
	mustContain(t, d.body, `<reference value="Communication/c1"/>`)
}

// a second tenant in the same store never learns of the first one's changes
func TestOtherTenantsChangesDoNotNotify(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "red.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := vaulttest.On(t, st)
	if err := st.CreateTenant(ctx, storage.Tenant{Alias: "zweite", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	blob, err := vault.NewCredential(rand.Reader, "zweite", "bert", []byte("pw"), vault.TestKDF)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New("zweite", rand.Reader)
	if err := v.Unseal("bert", blob, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	e1, e2 := newEnv(t, b, fast), newEnv(t, v.Barrier(st), fast)
	r1, r2 := newReceiver(t), newReceiver(t)
	e1.subscribe(t, "Patient", r1.url, notify.IDOnly)
	e2.subscribe(t, "Patient", r2.url, notify.IDOnly)
	e1.run(t)
	e2.run(t)
	e1.post(t, patient("p1", 51, "Muster"))
	r1.wait(t, 1)
	r2.quiet(t, 0)
}

// Two deliverers (two workstations) over one store: each notification goes out once, in order.
func TestTwoDeliverersDeliverEachNotificationOnce(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	// two services over one database are two workstations: each has its own lease holder
	e1, e2 := newEnv(t, b, fast), newEnv(t, b, fast)
	r := newReceiver(t)
	e1.subscribe(t, "Patient", r.url, notify.IDOnly)
	e1.run(t)
	e2.run(t)
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := e1
			if i%2 == 1 {
				e = e2
			}
			e.post(t, patient(fmt.Sprintf("p%d", i), 100+i, "Muster"))
		}()
	}
	wg.Wait()
	got := r.wait(t, n)
	r.quiet(t, n)
	seen := map[string]bool{}
	for i, d := range got {
		if seen[d.id] {
			t.Errorf("webhook-id %s delivered twice", d.id)
		}
		seen[d.id] = true
		if d.seq != i+1 {
			t.Errorf("delivery %d has sequence number %d", i, d.seq)
		}
	}
}

// countingStore counts the records written per type.
type countingStore struct {
	*vault.Barrier
	mu      sync.Mutex
	written map[string]int
	changes []map[string]int // per commit that wrote a Patient: its writes by type (and "new "+type)
}

func (c *countingStore) Commit(ctx context.Context, writes []vault.Write) error {
	if err := c.Barrier.Commit(ctx, writes); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	byType := map[string]int{}
	for _, w := range writes {
		byType[w.Type]++
		if w.Expect == 0 {
			byType["new "+w.Type]++
		}
	}
	if c.written == nil {
		c.written = map[string]int{}
	}
	for typ, n := range byType {
		c.written[typ] += n
	}
	if byType["Patient"] > 0 {
		c.changes = append(c.changes, byType)
	}
	return nil
}

// The outbox costs one record per commit, however many subscriptions its change notifies: one
// entry for all of them, which the deliverer numbers into a segment of the log (one per round,
// for all the commits it finds) and forgets, in a commit of a change that carries it or its own.
// Each subscription still gets every notification once, numbered 1, 2, 3 … with a webhook-id of
// its own.
func TestOneOutboxEntryPerCommitForAllSubscriptions(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	st := &countingStore{Barrier: b}
	e := newEnv(t, st, fast)
	r := newReceiver(t)
	const subs, bundles = 10, 6
	for range subs {
		e.subscribe(t, "Patient", r.url, notify.IDOnly)
	}
	e.run(t)
	for i := range bundles {
		e.post(t, patient(fmt.Sprintf("p%d", i), 300+i, "Muster"), patient(fmt.Sprintf("q%d", i), 400+i, "Muster"))
	}
	got := r.wait(t, subs*bundles)
	r.quiet(t, subs*bundles)
	st.mu.Lock()
	for i, c := range st.changes {
		if c["new red:outbox"] != 1 || c["red:notify-log"] > 1 {
			t.Errorf("commit %d wrote %v, want its changes, one outbox record and, carried, at most one round of the deliverer's", i, c)
		}
	}
	if w := st.written["red:outbox"]; w != 2*bundles {
		t.Errorf("%d outbox writes for %d commits: want one write and one forgetting each", w, bundles)
	}
	if w := st.written["red:notify-log"]; w < 1 || w > bundles {
		t.Errorf("%d segments of the log for %d commits", w, bundles)
	}
	st.mu.Unlock()
	seqs, ids := map[string][]int{}, map[string]bool{}
	for _, d := range got {
		sub := between(d.body, `<reference value="Subscription/`, `"`)
		seqs[sub] = append(seqs[sub], d.seq)
		if ids[d.id] {
			t.Errorf("webhook-id %s came twice", d.id)
		}
		ids[d.id] = true
		mustContain(t, d.body, fmt.Sprintf(`<reference value="Patient/p%d/_history/1"/>`, d.seq-1), fmt.Sprintf(`<reference value="Patient/q%d/_history/1"/>`, d.seq-1))
	}
	if len(seqs) != subs {
		t.Fatalf("notifications for %d subscriptions, want %d", len(seqs), subs)
	}
	for sub, s := range seqs {
		for i, seq := range s {
			if seq != i+1 {
				t.Errorf("subscription %s: delivery %d has sequence number %d", sub, i, seq)
			}
		}
	}
}

func between(s, from, to string) string {
	_, s, _ = strings.Cut(s, from)
	s, _, _ = strings.Cut(s, to)
	return s
}

// A Subscription deleted and created again under its id starts afresh: at sequence number 1,
// without what the deleted one had not delivered.
func TestSubscriptionCreatedAgainStartsAfresh(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	d := fast
	d.MaxFailures = 1000
	e := newEnv(t, b, d)
	r := newReceiver(t)
	r.setFail(true)
	id, _ := e.subscribe(t, "Patient", r.url, notify.IDOnly)
	e.run(t)
	e.post(t, patient("p1", 61, "Muster"))
	e.post(t, patient("p2", 62, "Muster"))
	time.Sleep(100 * time.Millisecond)
	ctx := context.Background()
	if err := e.notes.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, created, err := e.notes.Update(ctx, id, xml(t, subscriptionXML("active", "Patient", r.url, notify.IDOnly))); err != nil || !created {
		t.Fatalf("created %v, %v", created, err)
	}
	r.setFail(false)
	e.post(t, patient("p3", 63, "Muster"))
	got := r.wait(t, 1)
	r.quiet(t, 1)
	if got[0].seq != 1 {
		t.Errorf("the new subscription's first notification has sequence number %d", got[0].seq)
	}
	mustContain(t, got[0].body, `<reference value="Patient/p3/_history/1"/>`)
	set, err := e.notes.Events(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if set.Total != 1 || len(set.Entries) != 1 {
		t.Errorf("$events?since=0: total %d, %d entries", set.Total, len(set.Entries))
	}
}

// A backlog that takes longer to send than the lease lasts is sent on at once when the lease
// runs short, not only at the next poll.
func TestBacklogLongerThanTheLease(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	d := fast
	d.Poll, d.Lease, d.Timeout = time.Minute, 400*time.Millisecond, 150*time.Millisecond
	e := newEnv(t, b, d)
	r := newReceiver(t)
	r.slow = 50 * time.Millisecond
	e.subscribe(t, "Patient", r.url, notify.IDOnly)
	const n = 12 // 600 ms of answers
	for i := range n {
		e.post(t, patient(fmt.Sprintf("p%d", i), 600+i, "Muster"))
	}
	e.run(t)
	got := r.wait(t, n)
	for i, d := range got {
		if d.seq != i+1 {
			t.Errorf("delivery %d has sequence number %d", i, d.seq)
		}
	}
}

// A deliverer keeps delivering for longer than its lease: it renews the lease as it goes.
func TestDeliveriesOutlastTheLease(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	d := fast
	d.Lease, d.Timeout = 200*time.Millisecond, 50*time.Millisecond
	e := newEnv(t, b, d)
	r := newReceiver(t)
	e.subscribe(t, "Patient", r.url, notify.IDOnly)
	e.run(t)
	const n = 12 // over three leases
	for i := range n {
		e.post(t, patient(fmt.Sprintf("p%d", i), 700+i, "Muster"))
		time.Sleep(d.Lease / 4)
	}
	got := r.wait(t, n)
	for i, d := range got {
		if d.seq != i+1 {
			t.Errorf("delivery %d has sequence number %d", i, d.seq)
		}
	}
}

// resolver answers every name with the addresses given.
type resolver []string

func (r resolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	out := make([]netip.Addr, len(r))
	for i, s := range r {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

// An endpoint's host name is resolved by the deliverer itself and connected to at the address it
// checked: localhost answering with this machine is delivered to; answering with another machine
// (DNS rebinding) is refused before anything is sent, and the Subscription says why.
func TestEndpointNamesArePinnedToCheckedAddresses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  resolver
		refused string
	}{
		{"delivers to localhost resolved to loopback", resolver{"127.0.0.1"}, ""},
		{"refuses localhost resolved to another machine", resolver{"127.0.0.1", "10.0.0.8"}, "resolves to 10.0.0.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := vaulttest.Barrier(t)
			e := newEnv(t, b, fast)
			e.notes.Resolver = tc.answer
			r := newReceiver(t)
			id, _ := e.subscribe(t, "Patient", strings.Replace(r.url, "127.0.0.1", "localhost", 1), notify.IDOnly)
			e.run(t)
			e.post(t, patient("p1", 81, "Muster"))
			if tc.refused == "" {
				mustContain(t, r.wait(t, 1)[0].body, `<reference value="Patient/p1/_history/1"/>`)
				return
			}
			res := waitForStatus(t, e, id, "error")
			if !strings.Contains(fhir.ChildValue(res, "error"), tc.refused) {
				t.Errorf("the refused subscription reads:\n%s", fhir.Document(res))
			}
			r.quiet(t, 0)
		})
	}
}

// waitForStatus reads the subscription until it has the status (5 s at most).
func waitForStatus(t testing.TB, e *env, id, status string) *etree.Element {
	t.Helper()
	var res *etree.Element
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if res, err = e.notes.Read(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if fhir.ChildValue(res, "status") == status {
			return res
		}
	}
	t.Fatalf("the subscription never reached %s:\n%s", status, fhir.Document(res))
	return nil
}

// clock is a test's time, moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// retained is a tenant whose deliverer keeps delivered notifications an hour, on clock.
func retained(t *testing.T) (*env, *vault.Barrier, *clock) {
	b, _ := vaulttest.Barrier(t)
	d := fast
	d.Keep, d.Prune, d.MaxFailures = time.Hour, time.Second, 1000
	e := newEnv(t, b, d)
	c := &clock{now: time.Now()}
	e.notes.Now = c.Now
	return e, b, c
}

// eventsSince waits until $events?since=since answers with the code want ("" for success),
// moving the clock on a second at a time so that the pruner runs, and returns the answer.
func eventsSince(t *testing.T, e *env, c *clock, id string, since int64, want fhir.IssueCode) (fhir.SearchSet, error) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		set, err := e.notes.Events(context.Background(), id, since, 0)
		if fhir.CodeOf(err) == want && (want != "" || err == nil) {
			return set, err
		}
		if time.Now().After(deadline) {
			t.Fatalf("$events?since=%d: %v, want %q", since, err, want)
		}
		c.add(time.Second)
	}
}

// Delivered notifications are kept Delivery.Keep for $events, then pruned in the background:
// the log keeps only what is younger, $events answers 410 for the rest, and the ledger keeps no
// history of itself.
func TestRetentionPrunesDeliveredNotifications(t *testing.T) {
	e, b, c := retained(t)
	r := newReceiver(t)
	id, _ := e.subscribe(t, "Patient", r.url, notify.IDOnly)
	e.run(t)
	for i := range 3 {
		e.post(t, patient(fmt.Sprintf("p%d", i), 90+i, "Muster"))
		r.wait(t, i+1) // one segment each
	}
	if set, err := e.notes.Events(context.Background(), id, 0, 0); err != nil || len(set.Entries) != 3 {
		t.Fatalf("before the hour is over, $events?since=0: %d entries, %v", len(set.Entries), err)
	}
	c.add(2 * time.Hour)
	e.post(t, patient("p3", 93, "Muster"))
	r.wait(t, 4)
	eventsSince(t, e, c, id, 2, fhir.CodeDeleted) // the third is gone: so are the first two
	_, err := e.notes.Events(context.Background(), id, 0, 0)
	if is, _ := fhir.Explain(err); !strings.Contains(is[0].Diagnostics, "the first kept is 4") || is[0].Expression != "since" {
		t.Errorf("$events?since=0 of pruned notifications: %v", is)
	}
	set, err := e.notes.Events(context.Background(), id, 3, 0)
	if err != nil || len(set.Entries) != 1 || !strings.Contains(string(fhir.Document(set.Entries[0].Resource)), `<reference value="Patient/p3/_history/1"/>`) {
		t.Errorf("$events?since=3 after pruning: %d entries, %v", len(set.Entries), err)
	}
	ctx := context.Background()
	for _, seg := range []string{"1", "2", "3"} {
		if _, err := b.Current(ctx, "red:notify-log", seg); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("segment %s of the log: %v, want it gone", seg, err)
		}
	}
	led, err := b.Current(ctx, "red:notify-ledger", "all")
	if err != nil || led.Version < 3 {
		t.Fatalf("ledger version %d, %v", led.Version, err)
	}
	for v := int64(1); v < led.Version; v++ {
		if _, err := b.Version(ctx, "red:notify-ledger", "all", v); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("version %d of the ledger: %v, want it forgotten", v, err)
		}
	}
}

// A notification not yet delivered is kept however old, and everything after it, until it is
// delivered or its subscription deleted.
func TestRetentionKeepsWhatIsNotDelivered(t *testing.T) {
	e, _, c := retained(t)
	ok, down := newReceiver(t), newReceiver(t)
	down.setFail(true)
	id, _ := e.subscribe(t, "Patient", ok.url, notify.IDOnly)
	idDown, _ := e.subscribe(t, "Patient", down.url, notify.IDOnly)
	e.run(t)
	e.post(t, patient("p1", 95, "Muster"))
	ok.wait(t, 1)
	c.add(2 * time.Hour)
	e.post(t, patient("p2", 96, "Muster"))
	ok.wait(t, 2)
	for range 10 { // rounds in which the pruner runs and finds p1 undelivered
		c.add(time.Second)
		time.Sleep(30 * time.Millisecond)
	}
	if set, err := e.notes.Events(context.Background(), id, 0, 0); err != nil || len(set.Entries) != 2 {
		t.Fatalf("with a notification undelivered, $events?since=0: %d entries, %v", len(set.Entries), err)
	}
	if err := e.notes.Delete(context.Background(), idDown); err != nil {
		t.Fatal(err)
	}
	eventsSince(t, e, c, id, 0, fhir.CodeDeleted)
	down.quiet(t, 0)
}

// Outbox records of red's former layout (numbered in place) are removed by the pruner.
func TestRetentionRemovesTheFormerLayout(t *testing.T) {
	e, b, c := retained(t)
	ctx := context.Background()
	for _, id := range []string{"old1", "old2"} {
		w := vault.Write{Type: "red:notification", ID: id, Updated: c.Now(), Body: []byte(`{"id":"` + id + `","events":[]}`),
			Index: []vault.Term{{Index: "notify.queue", Value: "queued"}}}
		if err := b.Commit(ctx, []vault.Write{w}); err != nil {
			t.Fatal(err)
		}
	}
	e.run(t)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		page, err := b.Find(ctx, vault.Query{Type: "red:notification"})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records of the former layout remain", page.Total)
		}
		c.add(time.Second)
	}
	if _, err := b.Version(ctx, "red:notification", "old1", 1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a former record's version: %v, want it forgotten", err)
	}
}

// TestNotificationsFollowTheSubscribersView: a subscription hears only of what who saved it
// sees — a member of another user group hears nothing of a group's data, not even its id.
func TestNotificationsFollowTheSubscribersView(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	kardio := access.Principal{Tenant: "praxis", User: "anna", Groups: []string{"kardio"}}
	ortho := access.Principal{Tenant: "praxis", User: "bert", Groups: []string{"ortho"}}
	recv := map[string]*receiver{}
	for name, p := range map[string]access.Principal{"kardio": kardio, "ortho": ortho} {
		recv[name] = newReceiver(t)
		if _, err := e.notes.Create(access.With(context.Background(), p), xml(t, subscriptionXML("requested", "Patient", recv[name].url, notify.FullResource))); err != nil {
			t.Fatal(err)
		}
	}
	e.run(t)
	at := time.Now().UTC()
	write := func(id, group string) vault.Write {
		return vault.Write{Type: "Patient", ID: id, Updated: at, Group: group, Body: []byte(`<Patient xmlns="http://hl7.org/fhir"><id value="` + id + `"/><gender value="female"/></Patient>`)}
	}
	if err := e.store.Commit(access.With(context.Background(), kardio), []vault.Write{write("secret-k", "kardio"), write("public-1", "")}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Commit(access.With(context.Background(), kardio), []vault.Write{write("secret-k2", "kardio")}); err != nil {
		t.Fatal(err)
	}
	k := recv["kardio"].wait(t, 2)
	mustContain(t, k[0].body, `<reference value="Patient/secret-k/_history/1"/>`, `<reference value="Patient/public-1/_history/1"/>`, `<id value="secret-k"/>`)
	mustContain(t, k[1].body, `<id value="secret-k2"/>`)
	o := recv["ortho"].wait(t, 1)
	recv["ortho"].quiet(t, 1)
	mustContain(t, o[0].body, `<reference value="Patient/public-1/_history/1"/>`)
	if strings.Contains(o[0].body, "secret-k") {
		t.Errorf("ortho's endpoint hears of kardio's patient:\n%s", o[0].body)
	}
}

// $events shows a caller of its subscription's notifications only what the subscription's
// audience and the caller both see, even when the deliverer has just written the same
// notification, in full, for the endpoint.
func TestEventsShowTheCallerOnlyWhatTheySee(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	e := newEnv(t, b, fast)
	kardio := access.With(context.Background(), access.Principal{Tenant: "praxis", User: "anna", Groups: []string{"kardio"}})
	ortho := access.With(context.Background(), access.Principal{Tenant: "praxis", User: "bert", Groups: []string{"ortho"}})
	r := newReceiver(t)
	res, err := e.notes.Create(kardio, xml(t, subscriptionXML("requested", "Patient", r.url, notify.FullResource)))
	if err != nil {
		t.Fatal(err)
	}
	id := fhir.ChildValue(res, "id")
	e.run(t)
	body := `<Patient xmlns="http://hl7.org/fhir"><id value="secret-k"/><gender value="female"/></Patient>`
	if err := e.store.Commit(kardio, []vault.Write{{Type: "Patient", ID: "secret-k", Updated: time.Now().UTC(), Group: "kardio", Body: []byte(body)}}); err != nil {
		t.Fatal(err)
	}
	mustContain(t, r.wait(t, 1)[0].body, `<id value="secret-k"/>`)
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		shown bool
	}{
		{"the subscriber sees the resource", kardio, true},
		{"a member of another group does not", ortho, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := e.notes.Events(tc.ctx, id, 0, 0)
			if err != nil || len(set.Entries) != 1 {
				t.Fatalf("$events: %d entries, %v", len(set.Entries), err)
			}
			doc := string(fhir.Document(set.Entries[0].Resource))
			if got := strings.Contains(doc, `<id value="secret-k"/>`); got != tc.shown {
				t.Errorf("the resource shown: %v, want %v\n%s", got, tc.shown, doc)
			}
		})
	}
}

// headsStore counts the store's Heads calls.
type headsStore struct {
	*vault.Barrier
	heads atomic.Int64
}

func (h *headsStore) Heads(ctx context.Context, refs []vault.Ref) ([]vault.Resource, error) {
	h.heads.Add(1)
	return h.Barrier.Heads(ctx, refs)
}

// A request that reads what it writes (records reads the current versions of a bundle's
// resources) reads the subscriptions' generation in the same round trip, and its commit takes
// the subscriptions as they were then: a subscription another workstation made before is heard
// of, and the commit reads no generation of its own.
func TestARequestReadsTheSubscriptionsWithWhatItWrites(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	st := &headsStore{Barrier: b}
	e2 := newEnv(t, st, fast)
	e1 := newEnv(t, b, fast) // another workstation
	r := newReceiver(t)
	post := func(ctx context.Context, id string, n int) {
		t.Helper()
		if _, err := e2.recs.PostBundle(ctx, xml(t, `<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`+patient(id, n, "Muster")+`</Bundle>`)); err != nil {
			t.Fatal(err)
		}
	}
	request := func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }

	ctx, cancel := request()
	post(ctx, "p0", 500) // no subscription yet
	cancel()
	if got := st.heads.Load(); got != 1 {
		t.Errorf("a post read heads %d times, want once", got)
	}
	e1.subscribe(t, "Patient", r.url, notify.IDOnly)
	e1.run(t) // the other workstation delivers: the counts are the posts' alone
	st.heads.Store(0)
	ctx, cancel = request()
	post(ctx, "p1", 501)
	cancel()
	if got := st.heads.Load(); got != 1 {
		t.Errorf("a post read heads %d times, want once", got)
	}
	got := r.wait(t, 1)
	mustContain(t, got[0].body, `<reference value="Patient/p1/_history/1"/>`)

	st.heads.Store(0)
	post(context.Background(), "p2", 502) // a context that never ends: the commit reads the generation itself
	if got := st.heads.Load(); got != 2 {
		t.Errorf("a post without end read heads %d times, want twice", got)
	}
	r.wait(t, 2)
	r.quiet(t, 2)
}

//go:build linux

package cli_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/storage/postgres/pgtest"
)

func patientBundle(t testing.TB, id string, n int) []byte {
	return []byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>` + patientEntry(t, id, 'N', n) + `</Bundle>`)
}

// red killed (SIGKILL) while a notification is on its way loses nothing: the next red sends it
// again with the same webhook-id and sequence number, then the rest in order — on either store.
func TestNotificationsSurviveKillDuringDelivery(t *testing.T) {
	onEachBackend(t, testKillDuringDelivery)
}

func testKillDuringDelivery(t *testing.T, in *instance) {
	args := []string{"serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--notify-lease", "1s", "--notify-poll", "100ms"}
	h := newHook(t)
	h.hold = 2
	a := startProcess(t, in, args...)
	status, body := request(t, a.base, "POST", "/praxis/Subscription", subscriptionBody("Patient", h.url))
	if status != http.StatusCreated || !secretValue.MatchString(body) {
		t.Fatalf("%d\n%s", status, body)
	}
	const n = 5
	for i := 1; i <= n; i++ {
		if status, body := request(t, a.base, "POST", "/praxis/Bundle", patientBundle(t, fmt.Sprintf("k%d", i), i)); status != http.StatusOK {
			t.Fatalf("%d\n%s", status, body)
		}
	}
	select {
	case <-h.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the second notification never arrived")
	}
	a.kill(t) // kill -9 while the POST waits for its answer
	close(h.release)

	startProcess(t, in, args...)
	got := h.waitFor(t, n)
	// before the kill, 1 and 2 in order; after it, in order again from the first notification whose
	// acknowledgement had not been written (acknowledgements are written with the next commit)
	ids := map[int]string{}
	last, restarts := 0, 0
	for _, r := range got {
		if id, ok := ids[r.seq]; ok && id != r.id {
			t.Errorf("sequence number %d came with webhook-ids %s and %s", r.seq, id, r.id)
		}
		ids[r.seq] = r.id
		if r.seq <= last {
			restarts++
		}
		if r.seq > last+1 {
			t.Errorf("sequence number %d after %d", r.seq, last)
		}
		last = r.seq
		if !strings.Contains(r.body, fmt.Sprintf(`<reference value="Patient/k%d/_history/1"/>`, r.seq)) {
			t.Errorf("notification %d is about another change:\n%s", r.seq, r.body)
		}
	}
	if restarts > 1 {
		t.Errorf("the sequence started over %d times", restarts)
	}
	if len(ids) != n {
		t.Errorf("sequence numbers %v, want 1 to %d", ids, n)
	}
	t.Logf("%d requests for %d notifications (the repeat after the kill included)", len(got), n)
}

// Two red serve on one PostgreSQL database: each notification is delivered once, in order, however
// many workstations wrote the changes and run a deliverer.
func TestTwoWorkstationsDeliverEachNotificationOnce(t *testing.T) {
	in := newInstance(t, pgtest.URL(t))
	in.initTenant("praxis", "anna", "pw")
	args := []string{"serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--notify-poll", "50ms"}
	a, b := in.serve(args...), in.serve(args...)
	h := newHook(t)
	if status, body := a.do(t, "POST", "/praxis/Subscription", fhirXML, subscriptionBody("Patient", h.url)); status != http.StatusCreated {
		t.Fatalf("%d\n%s", status, body)
	}
	const n = 40
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func(srv *server) {
			defer wg.Done()
			if status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, patientBundle(t, fmt.Sprintf("w%d", i), 200+i)); status != http.StatusOK {
				t.Errorf("%d\n%s", status, body)
			}
		}([]*server{a, b}[i%2])
	}
	wg.Wait()
	h.waitFor(t, n)
	time.Sleep(300 * time.Millisecond) // a second delivery would come now
	got := h.received()
	if len(got) != n {
		t.Errorf("%d requests for %d notifications", len(got), n)
	}
	for i, r := range got {
		if r.seq != i+1 {
			t.Errorf("request %d carries sequence number %d", i, r.seq)
		}
	}
}

package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/internal/vault/vaulttest"
)

// A ledger of red's former layout, whose subscription had numbers given but not delivered that
// the log does not hold: the numbers continue after the last one given, and those missing are
// passed over (asked for with $events, they are gone).
func TestFormerLedgerContinuesItsNumbers(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	s := &Service{Tenant: "praxis", Store: b, Delivery: Delivery{Poll: 20 * time.Millisecond, Lease: 2 * time.Second, Timeout: time.Second}}
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("X-Red-Sequence"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	body, err := fhir.Parse([]byte(`<Subscription xmlns="http://hl7.org/fhir"><status value="active"/><criteria value="urn:red:event:message-received"/>`+
		`<channel><type value="rest-hook"/><endpoint value="`+srv.URL+`"/></channel></Subscription>`), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Create(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := s.current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	former, _ := json.Marshal(map[string]any{"holder": "gone", "log": 7, "cursors": map[string]any{subs[0].key(): map[string]int{"seq": 5, "delivered": 3}}})
	if err := b.Commit(ctx, []vault.Write{{Type: ledgerType, ID: ledgerID, Updated: s.now(), Body: former}}); err != nil {
		t.Fatal(err)
	}
	go func() { s.Run(ctx); close(done) }()
	if err := s.Announce(ctx, MessageReceived, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing was delivered")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "6" {
		t.Errorf("sequence numbers sent %v, want [6]", got)
	}
	id := fhir.ChildValue(res, "id")
	if set, err := s.Events(ctx, id, 5, 0); err != nil || len(set.Entries) != 1 {
		t.Errorf("$events?since=5: %d entries, %v", len(set.Entries), err)
	}
	if _, err := s.Events(ctx, id, 3, 0); fhir.CodeOf(err) != fhir.CodeDeleted {
		t.Errorf("$events?since=3: %v, want them gone", err)
	}
}

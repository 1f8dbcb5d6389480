package notify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault/vaulttest"
)

// A change committed to the queue (the deliverer held the ledger at that moment) is numbered
// before a later change that its commit numbers at once: the later one never overtakes it.
func TestQueuedEntryIsNotOvertaken(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	s := &Service{Tenant: "praxis", Store: b, Delivery: Delivery{Poll: 20 * time.Millisecond, Lease: 2 * time.Second, Timeout: time.Second}}
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("X-Red-Sequence")+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	body, err := fhir.Parse([]byte(`<Subscription xmlns="http://hl7.org/fhir"><status value="active"/><criteria value="urn:red:event:message-received"/>`+
		`<channel><type value="rest-hook"/><endpoint value="`+srv.URL+`"/></channel></Subscription>`), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	if _, err := s.Create(ctx, body); err != nil {
		t.Fatal(err)
	}
	go func() { s.Run(ctx); close(done) }()
	// wait until the deliverer holds the ledger: from then on commits are numbered at once
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.desk.mu.Lock()
		ready := s.desk.led != nil && s.desk.led.Holder == s.holder && len(s.desk.led.Cursors) == 1
		s.desk.mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deliverer never took the ledger")
		}
	}
	subs, err := s.current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	change := func(id string) *entry {
		return &entry{ID: newID(), At: s.now(), Events: []event{{Event: MessageReceived, Focus: []focus{{Type: "Communication", ID: id}}, Subs: []string{subs[0].key()}}}}
	}
	s.desk.mu.Lock() // the deliverer is busy with the ledger: the first change is queued
	if err := s.commitEntry(ctx, b, nil, change("first")); err != nil {
		t.Fatal(err)
	}
	s.desk.mu.Unlock()
	if err := s.commitEntry(ctx, b, nil, change("second")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries, want 2", n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(got[0], "1 ") || !strings.Contains(got[0], "Communication/first") ||
		!strings.HasPrefix(got[1], "2 ") || !strings.Contains(got[1], "Communication/second") {
		t.Errorf("deliveries out of order:\n%s\n%s", got[0], got[1])
	}
}

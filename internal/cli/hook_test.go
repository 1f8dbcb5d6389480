package cli_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// hook is a webhook receiver on loopback that records every request; hold, when set, keeps a
// request of that sequence number unanswered until release is closed.
type hook struct {
	mu      sync.Mutex
	got     []received
	hold    int
	held    chan struct{} // closed when the held request arrived
	release chan struct{}
	url     string
}

type received struct {
	id   string
	seq  int
	body string
}

func newHook(t testing.TB) *hook {
	h := &hook{held: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seq, _ := strconv.Atoi(r.Header.Get("X-Red-Sequence"))
		h.mu.Lock()
		h.got = append(h.got, received{r.Header.Get("webhook-id"), seq, string(body)})
		hold := h.hold == seq
		if hold {
			h.hold = 0
		}
		h.mu.Unlock()
		if hold {
			close(h.held)
			<-h.release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
		srv.Close()
	})
	h.url = srv.URL + "/hook"
	return h
}

func (h *hook) received() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.got...)
}

// waitFor waits until the receiver has seen sequence numbers 1 to n (30 s at most).
func (h *hook) waitFor(t testing.TB, n int) []received {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got := h.received()
		seen := map[int]bool{}
		for _, r := range got {
			seen[r.seq] = true
		}
		if len(seen) >= n {
			return got
		}
	}
	t.Fatalf("the receiver saw %d requests, not all of 1 to %d", len(h.received()), n)
	return nil
}

func subscriptionBody(criteria, endpoint string) []byte {
	return []byte(`<Subscription xmlns="http://hl7.org/fhir"><status value="requested"/><reason value="PVS"/><criteria value="` + criteria + `"/>` +
		`<channel><type value="rest-hook"/><endpoint value="` + endpoint + `"/><payload value="application/fhir+xml"/></channel></Subscription>`)
}

var secretValue = regexp.MustCompile(`<valueString value="(whsec_[^"]+)"/>`)

// request sends one request to a red process.
func request(t testing.TB, base, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", fhirXML)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

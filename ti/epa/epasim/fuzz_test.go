package epasim_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/epa/epasim"
)

// FuzzEntitlement: whatever a client posts to the entitlement endpoint, the simulator neither
// panics nor answers with a server error.
func FuzzEntitlement(f *testing.F) {
	for _, seed := range []string{`{"jwt":"proof"}`, `{"jwt":""}`, `{"jwt":1}`, `{}`, `[]`, `{`, ``, `{"jwt":"a","x":[1,2]}`} {
		f.Add([]byte(seed))
	}
	sim, err := epasim.New(epasim.Config{Records: testRecords(), Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+epa.PathEntitlements, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(epa.HeaderTelematikID, stranger)
		req.Header.Set(epa.HeaderInsurantID, epa2Replace)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("HTTP %d: %s", rec.Code, rec.Body)
		}
	})
}

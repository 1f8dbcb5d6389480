package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/redclone/red/internal/guard/guardtest"
)

// Every listener red serve opens — the API and its three simulators — refuses pages of other
// origins and sites and names other than loopback's.
func TestListenersRefusePages(t *testing.T) {
	srv, konnektor := tiServer(t)
	sim := func(name string) string {
		m := regexp.MustCompile(name + ` simulator at (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.output.String())
		if m == nil {
			t.Fatalf("no %s simulator in the output:\n%s", name, srv.output)
		}
		return m[1]
	}
	listeners := []struct{ name, base, path string }{
		{"API", srv.base, "/praxis/TI?action=$getpinstatus&card=HBA-16"},
		{"Konnektor simulator", konnektor, "/sim/pinpad"},
		{"Fachdienst simulator", sim("E-Rezept-Fachdienst"), "/Task"},
		{"ePA simulator", sim("ePA"), "/information/api/v1/ehr"},
	}
	attacks := []struct {
		name   string
		header map[string]string
	}{
		{"a rebound name", map[string]string{"Host": "evil.example"}},
		{"a foreign Origin", map[string]string{"Origin": "http://evil.example"}},
		{"a same-site page without Origin", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"a cross-site page", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, l := range listeners {
		for _, a := range attacks {
			t.Run(l.name+" refuses "+a.name, func(t *testing.T) {
				if status, _, body := guardtest.Do(t, nil, guardtest.Request(t, http.MethodGet, l.base+l.path, "", nil, a.header)); status != http.StatusForbidden {
					t.Errorf("HTTP %d, want 403: %s", status, body)
				}
			})
		}
	}

	// an <img src="http://127.0.0.1:29221/praxis/TI?action=$unblockpin…"> on http://localhost:8080
	prompts := func(t *testing.T) int {
		resp, err := http.Get(konnektor + "/sim/pinpad")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var cards []struct {
			CardHandle string `json:"cardHandle"`
			Prompts    int    `json:"prompts"`
		}
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &cards); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		n := 0
		for _, c := range cards {
			n += c.Prompts
		}
		return n
	}
	for _, action := range []string{"$unblockpin", "$changepin", "$verifypin"} {
		t.Run("a same-site page cannot "+strings.TrimPrefix(action, "$"), func(t *testing.T) {
			before := prompts(t)
			status, body := srv.do(t, "GET", "/praxis/TI?action="+action+"&card=HBA-16&pintype=PIN.CH", "", nil, "Sec-Fetch-Site", "same-site")
			if status != http.StatusForbidden || !strings.Contains(body, "<OperationOutcome") {
				t.Errorf("HTTP %d:\n%s", status, body)
			}
			if after := prompts(t); after != before {
				t.Errorf("the card terminal prompted %d times", after-before)
			}
		})
	}
	t.Run("practice software can still change a PIN", func(t *testing.T) {
		before := prompts(t)
		if status, body := srv.do(t, "GET", "/praxis/TI?action=$changepin&card=HBA-16&pintype=PIN.CH", "", nil); !strings.Contains(body, "<PinResult>OK</PinResult>") {
			t.Errorf("HTTP %d:\n%s", status, body)
		}
		if prompts(t) == before {
			t.Error("the card terminal did not prompt")
		}
	})
}

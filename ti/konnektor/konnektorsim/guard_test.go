package konnektorsim_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/internal/guard/guardtest"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
)

// simState is what the simulator shows of its PIN states, Komfortsignatur sessions, PIN pad
// queues and prompts.
func simState(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/sim/state", "/sim/pinpad"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d", path, resp.StatusCode)
		}
		b.Write(data)
	}
	return b.String()
}

func TestGuardRefusesPagesAndOtherHosts(t *testing.T) {
	p := sharedPKI(t)
	verifyPin := string(fixture.Read(t, filepath.Join(examples, "api-ePA/samples/ePA 1 Beispielnachrichten PS - Konnektor/Requests/verifypin.xml")))
	changePin := strings.NewReplacer("VerifyPin", "ChangePin", "4da0a984-8124-475f-ab29-c4b78d4710b1", "HBA-16", "PIN.SMC", "PIN.CH").Replace(verifyPin)
	signDocument := string(fixture.Read(t, filepath.Join(examples, "eRezept-Examples/API-Examples/2025-01-15/erp_bereitstellen/03_request_SignDocument.xml")))
	// three wrong entries block the HBA's PIN at its next three prompts
	const block = `{"cardHandle":"HBA-16","entries":["999999","999999","999999"]}`
	const evil = "http://evil.example"
	tests := []struct {
		name, method, path, contentType, body string
		header                                map[string]string // Host sets the request's Host
		status                                int
		want                                  string
		changes                               bool
	}{
		{"refuses a page queueing PIN pad entries as text/plain", "POST", "/sim/pinpad", "text/plain", block, map[string]string{"Origin": evil}, 403, "cross-origin", false},
		{"refuses PIN pad entries as text/plain without Origin", "POST", "/sim/pinpad", "text/plain", block, nil, 415, "application/json", false},
		{"refuses PIN pad entries as a form", "POST", "/sim/pinpad", "application/x-www-form-urlencoded", block, nil, 415, "application/json", false},
		{"refuses PIN pad entries from a same-site page", "POST", "/sim/pinpad", "application/json", block, map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "Sec-Fetch-Site", false},
		{"refuses PIN pad entries to a rebound name", "POST", "/sim/pinpad", "application/json", block, map[string]string{"Host": "evil.example"}, 403, "localhost", false},
		{"refuses emptying the PIN pad from a page", "DELETE", "/sim/pinpad", "", "", map[string]string{"Origin": evil}, 403, "cross-origin", false},
		{"refuses a same-site read of the PIN pad", "GET", "/sim/pinpad", "", "", map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "Sec-Fetch-Site", false},
		{"refuses a page changing a PIN as text/plain", "POST", "/webservices/cardservice", "text/plain", changePin, map[string]string{"Origin": evil}, 403, "Fault", false},
		{"refuses ChangePin as text/plain without Origin", "POST", "/webservices/cardservice", "text/plain", changePin, nil, 415, "Fault", false},
		{"refuses ChangePin to a rebound name", "POST", "/webservices/cardservice", "text/xml", changePin, map[string]string{"Host": "evil.example:80"}, 403, "Fault", false},
		{"refuses a page signing a document as text/plain", "POST", "/webservices/signatureservice", "text/plain", signDocument, map[string]string{"Origin": evil}, 403, "Fault", false},
		{"refuses SignDocument from a cross-site page", "POST", "/webservices/signatureservice", "text/xml", signDocument, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "Fault", false},
		{"refuses SignDocument as a form", "POST", "/webservices/signatureservice", "application/x-www-form-urlencoded", signDocument, nil, 415, "Fault", false},
		{"refuses the service directory to a rebound name", "GET", "/connector.sds", "", "", map[string]string{"Host": "evil.example"}, 403, "localhost", false},
		{"serves PIN pad entries to a test as JSON", "POST", "/sim/pinpad", "application/json", block, nil, 204, "", true},
		{"serves ChangePin to practice software as text/xml", "POST", "/webservices/cardservice", "text/xml; charset=UTF-8", changePin, nil, 200, "ChangePinResponse", true},
		{"serves ChangePin as application/soap+xml", "POST", "/webservices/cardservice", "application/soap+xml", changePin, nil, 200, "ChangePinResponse", true},
		{"serves SignDocument from its own origin", "POST", "/webservices/signatureservice", "text/xml", signDocument, map[string]string{"Origin": "self", "Sec-Fetch-Site": "same-origin"}, 200, "SignDocumentResponse", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newServer(t, p, t.TempDir(), konnektorsim.DefaultConfig())
			before := simState(t, srv)
			header := map[string]string{}
			for k, v := range tt.header {
				if v == "self" {
					v = srv.URL
				}
				header[k] = v
			}
			status, _, body := guardtest.Do(t, nil, guardtest.Request(t, tt.method, srv.URL+tt.path, tt.contentType, []byte(tt.body), header))
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("HTTP %d, want %d with %q:\n%s", status, tt.status, tt.want, body)
			}
			if changed := simState(t, srv) != before; changed != tt.changes {
				t.Errorf("state changed: %v, want %v", changed, tt.changes)
			}
		})
	}
}

func TestBrokenBodyIsNoServerFault(t *testing.T) {
	_, srv := newServer(t, sharedPKI(t), t.TempDir(), konnektorsim.DefaultConfig())
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /webservices/cardservice HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: 10000\r\n\r\n<s:Envelope")
	_ = c.(*net.TCPConn).CloseWrite() // the client goes away mid-body
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	t.Run("answers 400, not a server fault", func(t *testing.T) {
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "soap:Client") {
			t.Errorf("HTTP %d:\n%s", resp.StatusCode, body)
		}
	})
}

package konnektorsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
)

func TestDefaultConfig(t *testing.T) {
	cfg := konnektorsim.DefaultConfig()
	types := map[konnektor.CardType]int{}
	for _, c := range cfg.Cards {
		types[c.Type]++
	}
	if types[konnektor.CardHBA] != 1 || types[konnektor.CardSMCB] != 2 || types[konnektor.CardEGK] != 1 {
		t.Errorf("cards by type %v", types)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*konnektorsim.Config)
		want   string
	}{
		{"rejects a KVNR with wrong check digit", func(c *konnektorsim.Config) { c.Cards[3].Insured.Personal.KVNR = "M123456784" }, "kvnr"},
		{"rejects a LANR with wrong check digit", func(c *konnektorsim.Config) { c.Cards[0].LANR = "123456701" }, "lanr"},
		{"rejects a handle used twice", func(c *konnektorsim.Config) { c.Cards[1].Aliases = append(c.Cards[1].Aliases, "HBA-16") }, "used twice"},
		{"rejects a card in an unknown terminal", func(c *konnektorsim.Config) { c.Cards[0].CtID = "Terminal9" }, "not configured"},
		{"rejects two cards in one slot", func(c *konnektorsim.Config) { c.Cards[2].Slot = 1 }, "holds another card"},
		{"rejects a PIN the card type has not", func(c *konnektorsim.Config) {
			c.Cards[1].PINs[konnektor.PinQES] = konnektorsim.PinConfig{PIN: "123456", PUK: "12345678"}
		}, "not a PIN of"},
		{"rejects a short PIN", func(c *konnektorsim.Config) {
			c.Cards[3].PINs[konnektor.PinCH] = konnektorsim.PinConfig{PIN: "123", PUK: "12345678"}
		}, "6..8 digits"},
		{"rejects an eGK without insured data", func(c *konnektorsim.Config) { c.Cards[3].Insured = nil }, "insured data"},
		{"rejects names ISO-8859-15 cannot hold", func(c *konnektorsim.Config) { c.Cards[3].Insured.Personal.City = "Łódź" }, "ISO-8859-15"},
		{"rejects more than 250 comfort signatures", func(c *konnektorsim.Config) { c.ComfortSignature.Max = 251 }, "comfortSignature.max"},
		{"rejects an ICCSN that is not 20 digits", func(c *konnektorsim.Config) { c.Cards[0].ICCSN = "123" }, "iccsn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := konnektorsim.DefaultConfig() // a fresh copy: maps and pointers are new
			tc.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("rejects unknown fields", func(t *testing.T) {
		if _, err := konnektorsim.ParseConfig([]byte(`{"cards": [], "colour": "red"}`)); err == nil {
			t.Error("no error")
		}
	})
	t.Run("reads a configuration file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "konnektor.json")
		data, _ := json.Marshal(konnektorsim.DefaultConfig())
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := konnektorsim.LoadConfig(path)
		if err != nil || len(cfg.Cards) != 4 {
			t.Errorf("%d cards, %v", len(cfg.Cards), err)
		}
	})
}

func TestControlEndpoints(t *testing.T) {
	stateDir := t.TempDir()
	_, srv := newServer(t, sharedPKI(t), stateDir, konnektorsim.DefaultConfig())
	post := func(body string) int {
		resp, err := http.Post(srv.URL+"/sim/pinpad", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	queued := func(t *testing.T) (string, string) {
		resp, err := http.Get(srv.URL + "/sim/pinpad")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var cards []struct {
			CardHandle string   `json:"cardHandle"`
			Queued     []string `json:"queued"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&cards); err != nil {
			t.Fatal(err)
		}
		return cards[0].CardHandle, strings.Join(cards[0].Queued, ",")
	}
	t.Run("queues PIN pad entries", func(t *testing.T) {
		if got := post(`{"cardHandle": "HBA-5", "entries": ["111111", "CANCEL"]}`); got != http.StatusNoContent {
			t.Fatalf("HTTP %d", got)
		}
		if handle, q := queued(t); handle != "HBA-16" || q != "******,CANCEL" {
			t.Errorf("queue of %s: %s (digits must be hidden)", handle, q)
		}
	})
	for body, want := range map[string]int{
		`{"cardHandle": "nope", "entries": ["1"]}`:   http.StatusBadRequest,
		`{"cardHandle": "HBA-16", "entries": ["x"]}`: http.StatusBadRequest,
		`{"cardHandle": "HBA-16", "pin": "1"}`:       http.StatusBadRequest,
	} {
		t.Run("refuses "+body, func(t *testing.T) {
			if got := post(body); got != want {
				t.Errorf("HTTP %d, want %d", got, want)
			}
		})
	}
	t.Run("empties the queues", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/sim/pinpad", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, q := queued(t); resp.StatusCode != http.StatusNoContent || q != "" {
			t.Errorf("HTTP %d, queue %q", resp.StatusCode, q)
		}
	})
	t.Run("shows PIN states without PINs", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/sim/state")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `"TRANSPORT_PIN"`) || strings.Contains(string(body), "123456") {
			t.Errorf("state %s", body)
		}
	})
	t.Run("keeps the state file private", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(stateDir, "konnektor-state.json"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %o", fi.Mode().Perm())
		}
	})
}

func TestSOAPErrors(t *testing.T) {
	_, srv := newServer(t, sharedPKI(t), t.TempDir(), konnektorsim.DefaultConfig())
	envelope := func(body string) string {
		return `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>` + body + `</s:Body></s:Envelope>`
	}
	const ctx = `<c:Context xmlns:c="http://ws.gematik.de/conn/ConnectorContext/v2.0" xmlns:m="http://ws.gematik.de/conn/ConnectorCommon/v5.0"><m:MandantId>M</m:MandantId><m:ClientSystemId>C</m:ClientSystemId><m:WorkplaceId>W</m:WorkplaceId></c:Context>`
	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"refuses XML that is not well-formed", "/webservices/eventservice", "<s:Envelope", 500, "4000"},
		{"refuses DOCTYPE declarations", "/webservices/eventservice", `<!DOCTYPE x [<!ENTITY a "b">]>` + envelope(""), 500, "4000"},
		{"refuses an operation on another service's endpoint", "/webservices/cardservice", envelope(`<e:GetCards xmlns:e="http://ws.gematik.de/conn/EventService/v7.2">` + ctx + `</e:GetCards>`), 500, "4000"},
		{"refuses an unknown namespace", "/webservices/eventservice", envelope(`<e:GetCards xmlns:e="urn:other">` + ctx + `</e:GetCards>`), 500, "4000"},
		{"refuses a call without Context", "/webservices/eventservice", envelope(`<e:GetCards xmlns:e="http://ws.gematik.de/conn/EventService/v7.2"/>`), 500, "4000"},
		{"answers a well-formed call", "/webservices/eventservice", envelope(`<e:GetCards xmlns:e="http://ws.gematik.de/conn/EventService/v7.2">` + ctx + `</e:GetCards>`), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+tc.path, "text/xml", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || tc.code != "" && !strings.Contains(string(body), "<GERROR:Code>"+tc.code+"</GERROR:Code>") {
				t.Errorf("HTTP %d:\n%s", resp.StatusCode, body)
			}
		})
	}
	t.Run("answers GET on a service with 405", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/webservices/cardservice")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("HTTP %d", resp.StatusCode)
		}
	})
}

func TestServiceDirectory(t *testing.T) {
	_, srv := newServer(t, sharedPKI(t), t.TempDir(), konnektorsim.DefaultConfig())
	resp, err := http.Get(srv.URL + "/connector.sds")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	dir, err := konnektor.ParseServiceDirectory(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ service, version string }{
		{konnektor.ServiceEvent, "7.2"}, {konnektor.ServiceCard, "8.1"}, {konnektor.ServiceSignature, "7.5"},
		{konnektor.ServiceSignature, "7.4"}, {konnektor.ServiceAuthSignature, "7.4"}, {konnektor.ServiceCertificate, "6.0"}, {konnektor.ServiceVSD, "5.2"},
	} {
		v, ok := dir.Find(tc.service, tc.version)
		if !ok || !strings.HasPrefix(v.Endpoint, srv.URL+"/") {
			t.Errorf("%s %s: %+v", tc.service, tc.version, v)
		}
	}
}

// Package konnektorsim simulates a TI Konnektor over real HTTP: the service directory
// (connector.sds) and the SOAP 1.1 services EventService 7.2, CardService 8.1, SignatureService
// 7.4/7.5 (with Komfortsignatur), AuthSignatureService 7.4, CertificateService 6.0 and
// VSDService 5.2, with gematik namespaces, SOAPActions and error codes.
//
// Cards and terminals come from a JSON configuration (DefaultConfig). Every card holds
// certificates from a simpki CA, so signatures are real CMS that verify. PIN and Komfortsignatur
// state persist in a state directory.
//
// # The simulated PIN pad
//
// A real Konnektor asks the card holder to type the PIN at the card terminal. The simulator's
// holder types what is queued for the card, one entry per prompt:
//
//	POST /sim/pinpad {"cardHandle": "HBA-16", "entries": ["111111", "123456"]}
//
// (or Simulator.QueuePinEntries). An entry is the digits typed, or CANCEL (the holder presses
// cancel: fault 4049) or TIMEOUT (nobody types: PinResult ERROR with warning 4043). With nothing
// queued the holder types the right value: the current PIN (or the transport PIN when changing
// it), the configured personal PIN as a new PIN, the PUK when unblocking. VerifyPin prompts
// once; ChangePin twice (old, new); UnblockPin once for the PUK and, with SetNewPin, once more
// for the new PIN; SignDocument with an HBA prompts once for PIN.QES per call (the whole batch),
// unless PIN.QES was verified just before or a Komfortsignatur is active; ActivateComfortSignature
// prompts once. GET /sim/pinpad shows what is queued and how many prompts each card had;
// DELETE /sim/pinpad empties the queues.
package konnektorsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redclone/red/internal/guard"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/simpki"
)

// Simulator is an http.Handler serving one simulated Konnektor. It is safe for concurrent use;
// calls are served one at a time, like a card terminal does.
type Simulator struct {
	cfg     Config
	pki     *simpki.PKI
	state   *store
	now     func() time.Time
	started time.Time

	handler http.Handler // ServeHTTP's routes behind the loopback guard

	mu      sync.Mutex
	cards   []*card
	handles map[string]*card
	queue   map[string][]string // PIN pad entries by primary handle
	prompts map[string]int      // PIN pad prompts so far by primary handle
}

// card is a configured card with its certificates.
type card struct {
	cfg    CardConfig
	certs  map[string]*simpki.Identity // by certificate reference (C.AUT, ...)
	insert time.Time
}

// New builds a simulator for cfg, issuing the cards' certificates from pki and keeping PIN and
// Komfortsignatur state in stateDir (created if missing; state from an earlier run is kept).
func New(cfg Config, pki *simpki.PKI, stateDir string) (*Simulator, error) {
	if pki == nil {
		return nil, errors.New("konnektorsim: no PKI")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	st, err := openStore(stateDir)
	if err != nil {
		return nil, err
	}
	s := &Simulator{
		cfg:     cfg,
		pki:     pki,
		state:   st,
		now:     now,
		started: now(),
		handles: map[string]*card{},
		queue:   map[string][]string{},
		prompts: map[string]int{},
	}
	for _, cc := range cfg.Cards {
		c := &card{cfg: cc, certs: map[string]*simpki.Identity{}, insert: s.started}
		if cc.InsertTime != nil {
			c.insert = *cc.InsertTime
		}
		if err := s.issueCertificates(c); err != nil {
			return nil, err
		}
		s.cards = append(s.cards, c)
		for _, h := range append([]string{cc.Handle}, cc.Aliases...) {
			s.handles[h] = c
		}
		for pt, pc := range cc.PINs {
			st.initPin(cc.Handle, pt, pc)
		}
	}
	if err := st.save(); err != nil {
		return nil, err
	}
	s.handler = guard.Rules{MediaTypes: mediaTypes, MaxBytes: maxRequestBytes, Refuse: s.refuse}.Handler(http.HandlerFunc(s.route))
	return s, nil
}

// certRefsByType lists the certificates each card type holds.
var certRefsByType = map[konnektor.CardType][]simpki.Usage{
	konnektor.CardHBA:  {simpki.UsageAUT, simpki.UsageENC, simpki.UsageQES},
	konnektor.CardSMCB: {simpki.UsageAUT, simpki.UsageENC, simpki.UsageSIG},
	konnektor.CardEGK:  {simpki.UsageAUT, simpki.UsageENC},
}

func (s *Simulator) issueCertificates(c *card) error {
	cc := c.cfg
	prof := cc.profession()
	for _, u := range certRefsByType[cc.Type] {
		opts := []simpki.Option{
			simpki.WithUsage(u),
			simpki.WithICCSN(cc.ICCSN),
			simpki.WithProfession(prof.Item, prof.OID),
		}
		if cc.TelematikID != "" {
			opts = append(opts, simpki.WithTelematikID(cc.TelematikID))
		}
		if cc.Organization != "" {
			opts = append(opts, simpki.WithOrganization(cc.Organization))
		}
		if cc.GivenName != "" || cc.FamilyName != "" {
			opts = append(opts, simpki.WithName(cc.Title, cc.GivenName, cc.FamilyName))
		}
		if cc.Insured != nil {
			opts = append(opts, simpki.WithName(cc.Insured.Personal.Title, cc.Insured.Personal.GivenName, cc.Insured.Personal.FamilyName),
				simpki.WithInsurance(cc.Insured.Personal.KVNR, cc.Insured.Insurance.PayerIK))
		}
		id, err := s.pki.Issue(cc.HolderName, opts...)
		if err != nil {
			return fmt.Errorf("konnektorsim: card %s: %w", cc.Handle, err)
		}
		c.certs[string(u)] = id
	}
	return nil
}

// Service endpoint paths (as a RISE Konnektor names them).
const (
	pathEvent         = "/webservices/eventservice"
	pathCard          = "/webservices/cardservice"
	pathSignature     = "/webservices/signatureservice"
	pathAuthSignature = "/webservices/authsignatureservice"
	pathCertificate   = "/webservices/certificateservice"
	pathVSD           = "/fm/vsdservice"
)

// ServeHTTP serves connector.sds, the SOAP services and the /sim control endpoints to clients on
// loopback (see package guard): requests naming another host, from a browser page of another
// origin or site, and bodies of other media types than SOAP's (text/xml, application/soap+xml)
// or, for /sim/pinpad, application/json are refused.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// soapEndpoint tells whether path is one of the SOAP services.
func soapEndpoint(path string) bool {
	switch path {
	case pathEvent, pathCard, pathSignature, pathAuthSignature, pathCertificate, pathVSD:
		return true
	}
	return false
}

// mediaTypes are the media types a request body may have.
func mediaTypes(r *http.Request) []string {
	switch {
	case soapEndpoint(r.URL.Path):
		return []string{"text/xml", "application/soap+xml"}
	case r.URL.Path == "/sim/pinpad":
		return []string{"application/json"}
	}
	return nil
}

// refuse answers a request the guard refuses: a SOAP fault on the SOAP services, plain text on
// the others.
func (s *Simulator) refuse(w http.ResponseWriter, r *http.Request, why guard.Refusal) {
	if !soapEndpoint(r.URL.Path) {
		http.Error(w, why.Reason, why.Status)
		return
	}
	f := syntaxf("%s", why.Reason)
	if why.Status == http.StatusForbidden {
		f.code = konnektor.CodeAccessDenied
	}
	s.writeFaultStatus(w, why.Status, f)
}

func (s *Simulator) route(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/connector.sds":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.serveDirectory(w, r)
	case soapEndpoint(p):
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.serveSOAP(w, r)
	case p == "/sim/pinpad":
		s.servePinpad(w, r)
	case p == "/sim/state":
		s.serveState(w, r)
	default:
		http.NotFound(w, r)
	}
}

// QueuePinEntries queues what the simulated holder types at the next PIN prompts for the card
// (any of its handles): digits, CANCEL or TIMEOUT.
func (s *Simulator) QueuePinEntries(cardHandle string, entries ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.handles[cardHandle]
	if !ok {
		return fmt.Errorf("konnektorsim: unknown card handle %q", cardHandle)
	}
	for _, e := range entries {
		if e != entryCancel && e != entryTimeout && !digits(e) {
			return fmt.Errorf("konnektorsim: PIN pad entry %q: digits, CANCEL or TIMEOUT", e)
		}
	}
	s.queue[c.cfg.Handle] = append(s.queue[c.cfg.Handle], entries...)
	return nil
}

// PinPrompts returns how many times the simulated terminal asked for a PIN or PUK of the card
// since the simulator started.
func (s *Simulator) PinPrompts(cardHandle string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.handles[cardHandle]; ok {
		return s.prompts[c.cfg.Handle]
	}
	return 0
}

// PKI returns the CA the cards' certificates come from; its Pool verifies the simulator's
// signatures.
func (s *Simulator) PKI() *simpki.PKI { return s.pki }

// Special PIN pad entries.
const (
	entryCancel  = "CANCEL"
	entryTimeout = "TIMEOUT"
)

// enter is one PIN pad prompt for the card: the next queued entry, or def. Called with s.mu held.
func (s *Simulator) enter(c *card, def string) string {
	h := c.cfg.Handle
	s.prompts[h]++
	if q := s.queue[h]; len(q) > 0 {
		s.queue[h] = q[1:]
		return q[0]
	}
	return def
}

type pinpadRequest struct {
	CardHandle string   `json:"cardHandle"`
	Entries    []string `json:"entries"`
}

type pinpadCard struct {
	CardHandle string   `json:"cardHandle"`
	Queued     []string `json:"queued"`
	Prompts    int      `json:"prompts"`
}

func (s *Simulator) servePinpad(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		var req pinpadRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.QueuePinEntries(req.CardHandle, req.Entries...); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		s.mu.Lock()
		s.queue = map[string][]string{}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		s.mu.Lock()
		out := []pinpadCard{}
		for _, c := range s.cards {
			q := append([]string{}, s.queue[c.cfg.Handle]...)
			for i := range q {
				if q[i] != entryCancel && q[i] != entryTimeout {
					q[i] = strings.Repeat("*", len(q[i]))
				}
			}
			out = append(out, pinpadCard{CardHandle: c.cfg.Handle, Queued: q, Prompts: s.prompts[c.cfg.Handle]})
		}
		s.mu.Unlock()
		writeJSON(w, out)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

type stateCard struct {
	CardHandle string               `json:"cardHandle"`
	Type       konnektor.CardType   `json:"type"`
	PINs       map[string]statePin  `json:"pins"`
	Comfort    []stateComfortStatus `json:"comfort,omitempty"`
}

type statePin struct {
	Status      konnektor.PinState `json:"status"`
	LeftTries   int                `json:"leftTries"`
	PUKLeftUses int                `json:"pukLeftUses"`
}

type stateComfortStatus struct {
	UserID         string    `json:"userId"`
	CountRemaining int       `json:"countRemaining"`
	Expires        time.Time `json:"expires"`
}

// serveState shows PIN states and Komfortsignatur sessions (never PINs).
func (s *Simulator) serveState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	out := []stateCard{}
	for _, c := range s.cards {
		sc := stateCard{CardHandle: c.cfg.Handle, Type: c.cfg.Type, PINs: map[string]statePin{}}
		for pt := range c.cfg.PINs {
			ps := s.state.pin(c.cfg.Handle, pt)
			st, left := ps.status()
			sc.PINs[string(pt)] = statePin{Status: st, LeftTries: left, PUKLeftUses: ps.PUKUses}
		}
		for _, cs := range s.state.comfortOf(c.cfg.Handle) {
			sc.Comfort = append(sc.Comfort, stateComfortStatus{UserID: cs.UserID, CountRemaining: cs.Remaining, Expires: cs.Expires})
		}
		out = append(out, sc)
	}
	s.mu.Unlock()
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

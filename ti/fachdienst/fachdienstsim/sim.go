// Package fachdienstsim simulates the E-Rezept-Fachdienst on localhost: the Task workflow
// ($create, $activate, $accept, $reject, $dispense, $close, $abort) with the reference
// implementation's state machine, status codes and messages, QES checks of the signed KBV
// bundle, signed receipts, Communications and MedicationDispenses, kept in a state directory
// that survives restarts.
//
// It serves the inner FHIR API without VAU tunnel and IDP: the caller's profession OID and
// Telematik-ID (or KVNR) come in the headers fachdienst.HeaderProfessionOID and
// fachdienst.HeaderIDNumber instead of the access token.
//
// # Fault injection
//
// To test how clients live through outages, the simulator fails, hangs or loses the answer of
// the next calls on demand ([Simulator.Inject], [Simulator.ClearFaults], [Simulator.Faults]), or
// over HTTP on its own listener, without identity headers:
//
//	POST /sim/faults {"op": "activate", "kind": "drop-answer", "count": 1}
//	POST /sim/faults {"kind": "fail", "status": 503, "count": -1}
//	GET /sim/faults     the pending faults with the calls each still applies to
//	DELETE /sim/faults  clears them and ends the calls that hang (without an answer)
//
// op is one of the [Op] values (absent: every call), kind one of [Fail], [Hang] and
// [DropAnswer], count the number of matching calls (absent: 1; negative: until cleared) and
// status the answer of fail (absent: 503). A call takes the first pending fault that applies to
// it. Faults live in memory only, not in the state directory. [Simulator.Tasks] shows every
// Task, for checking what a call did although its answer was lost.
package fachdienstsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the signing day is a day in Germany, also where the system has no zoneinfo

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/guard"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/simpki"
	"github.com/redclone/red/ti/wire"
)

// Config configures a Simulator.
type Config struct {
	// StateDir holds Tasks, Communications, the running number and the generated receipt
	// signing key. Required.
	StateDir string
	// Roots are the trust anchors for the QES of prescriptions (for example simpki's Pool).
	// Without roots every signature is untrusted and $activate fails.
	Roots *x509.CertPool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of AccessCodes, Secrets and UUIDs; nil means crypto/rand.
	Rand io.Reader
	// Signer and Certificate sign receipts (ID.FD.SIG). When nil, a P-256 key with a self-signed
	// certificate is generated on first start and kept in StateDir.
	Signer      crypto.Signer
	Certificate *x509.Certificate
	// RejectInvalidANR makes a LANR/ZANR with a wrong check digit fail $activate with 400
	// instead of the production default, a 252 warning.
	RejectInvalidANR bool
}

// maxBody is the Fachdienst's request size limit.
const maxBody = 1 << 20

// Simulator is the simulated Fachdienst, an http.Handler. It is safe for concurrent use.
type Simulator struct {
	cfg    Config
	store  *store
	berlin *time.Location

	mu      sync.Mutex // guards the maps, the counter and the files of the state directory
	tasks   map[string]*taskRecord
	comms   map[string]*commRecord
	counter counter

	randMu sync.Mutex // Config.Rand need not be safe for concurrent use
	rand   io.Reader

	faults faults // injected by tests and tools

	handler http.Handler // route behind the loopback guard
}

// New opens (or creates) the state in cfg.StateDir and returns the simulator.
func New(cfg Config) (*Simulator, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("fachdienstsim: no state directory given")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	st, err := openStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	tasks, comms, cnt, err := st.load()
	if err != nil {
		return nil, err
	}
	if cnt.Next == 0 {
		cnt.Next = 1
	}
	s := &Simulator{cfg: cfg, store: st, berlin: berlin, tasks: tasks, comms: comms, counter: cnt, rand: cfg.Rand}
	if (cfg.Signer == nil) != (cfg.Certificate == nil) {
		return nil, errors.New("fachdienstsim: Signer and Certificate go together")
	}
	if cfg.Signer == nil {
		if s.cfg.Signer, s.cfg.Certificate, err = loadOrCreateSigner(cfg.StateDir, cfg.Now()); err != nil {
			return nil, err
		}
	}
	s.handler = guard.Rules{MediaTypes: fhirTypes, MaxBytes: maxBody, Refuse: refuse}.Handler(http.HandlerFunc(s.serve))
	return s, nil
}

// fhirTypes are the media types of request bodies: FHIR XML, JSON for /sim/faults.
func fhirTypes(r *http.Request) []string {
	if r.URL.Path == pathFaults {
		return []string{"application/json"}
	}
	return []string{"application/fhir+xml", "application/xml+fhir"}
}

// refuse answers a request the guard refuses with an OperationOutcome.
func refuse(w http.ResponseWriter, _ *http.Request, why guard.Refusal) {
	text := "Request refused"
	if why.Status == http.StatusUnsupportedMediaType {
		text = "Unsupported Content-Type"
	}
	writeError(w, failDiag(why.Status, text, why.Reason))
}

// Certificate is the certificate receipts are signed with.
func (s *Simulator) Certificate() *x509.Certificate { return s.cfg.Certificate }

// Tasks returns every Task the simulator holds, oldest first, as the Fachdienst renders it
// with AccessCode and Secret: for tests that check what the calls (and faults) left behind.
func (s *Simulator) Tasks() []fachdienst.Task {
	s.mu.Lock()
	recs := make([]*taskRecord, 0, len(s.tasks))
	for _, t := range s.tasks {
		recs = append(recs, t) // records are replaced on change, never changed in place
	}
	s.mu.Unlock()
	sortResults(recs, false, func(a, b *taskRecord) int { return a.AuthoredOn.Compare(b.AuthoredOn) }, func(t *taskRecord) string { return t.ID })
	out := make([]fachdienst.Task, 0, len(recs))
	for _, rec := range recs {
		view := taskView{accessCode: true, secret: true, confirmation: true, receipt: true}
		if t, err := fachdienst.ParseTask(renderTask(rec, view)); err == nil { // it always has its id
			out = append(out, t)
		}
	}
	return out
}

// ServeHTTP routes the Fachdienst's endpoints for clients on loopback (see package guard):
// requests naming another host, from a browser page of another origin or site, and bodies that
// are not FHIR XML (JSON for /sim/faults) are refused; bodies are bounded to 1 MB.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// pathFaults is the endpoint of fault injection.
const pathFaults = "/sim/faults"

func (s *Simulator) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pathFaults {
		s.serveFaults(w, r)
		return
	}
	if f, cleared, ok := s.takeFault(opOf(r)); ok {
		s.injure(w, r, f, cleared)
		return
	}
	s.answer(w, r)
}

// answer serves a call of the Fachdienst.
func (s *Simulator) answer(w http.ResponseWriter, r *http.Request) {
	if err := s.route(w, r); err != nil {
		writeError(w, err)
	}
}

func (s *Simulator) route(w http.ResponseWriter, r *http.Request) error {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	who := fachdienst.IdentityFrom(r.Header)
	if who.ProfessionOID == "" || who.ID == "" {
		return &fdError{status: http.StatusUnauthorized, text: "Missing or invalid access token",
			diag: "the identity headers " + fachdienst.HeaderProfessionOID + " and " + fachdienst.HeaderIDNumber + " are required"}
	}
	method := r.Method
	switch {
	case len(parts) == 2 && parts[0] == "Task" && parts[1] == "$create":
		return s.allow(method, http.MethodPost, func() error { return s.create(w, r, who) })
	case len(parts) == 3 && parts[0] == "Task" && strings.HasPrefix(parts[2], "$"):
		if _, ok := transitions[parts[2]]; !ok {
			return fail(http.StatusNotFound, "Unknown operation")
		}
		return s.allow(method, http.MethodPost, func() error { return s.transit(w, r, who, parts[1], parts[2]) })
	case len(parts) == 2 && parts[0] == "Task":
		return s.allow(method, http.MethodGet, func() error { return s.getTask(w, r, who, parts[1]) })
	case len(parts) == 1 && parts[0] == "Task":
		return s.allow(method, http.MethodGet, func() error { return s.listTasks(w, r, who) })
	case len(parts) == 1 && parts[0] == "Communication":
		switch method {
		case http.MethodGet:
			return s.listCommunications(w, r, who, "")
		case http.MethodPost:
			return s.postCommunication(w, r, who)
		}
		return methodNotAllowed(w, "GET, POST")
	case len(parts) == 2 && parts[0] == "Communication":
		switch method {
		case http.MethodGet:
			return s.listCommunications(w, r, who, parts[1])
		case http.MethodDelete:
			return s.deleteCommunication(w, who, parts[1])
		}
		return methodNotAllowed(w, "GET, DELETE")
	case len(parts) <= 2 && parts[0] == "MedicationDispense":
		id := ""
		if len(parts) == 2 {
			id = parts[1]
		}
		return s.allow(method, http.MethodGet, func() error { return s.listDispenses(w, r, who, id) })
	}
	return fail(http.StatusNotFound, "Unknown resource path")
}

func (s *Simulator) allow(method, want string, fn func() error) error {
	if method != want {
		return &fdError{status: http.StatusMethodNotAllowed, text: "Method not allowed", header: http.Header{"Allow": {want}}}
	}
	return fn()
}

func methodNotAllowed(_ http.ResponseWriter, allow string) error {
	return &fdError{status: http.StatusMethodNotAllowed, text: "Method not allowed", header: http.Header{"Allow": {allow}}}
}

// fdError is an answer outside 2xx: an OperationOutcome with one issue.
type fdError struct {
	status int
	text   string // details.text
	diag   string // diagnostics
	vau    string // VAU-Error-Code header
	header http.Header
}

func (e *fdError) Error() string { return fmt.Sprintf("%d %s", e.status, e.text) }

func fail(status int, text string) *fdError { return &fdError{status: status, text: text} }

func failDiag(status int, text, diag string) *fdError {
	return &fdError{status: status, text: text, diag: diag}
}

// issueCode maps an HTTP status to the OperationOutcome issue code the Fachdienst uses.
func issueCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusUnauthorized:
		return "login"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not-found"
	case http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusUnsupportedMediaType:
		return "not-supported"
	case http.StatusConflict:
		return "conflict"
	case http.StatusGone, http.StatusPreconditionFailed:
		return "processing"
	case http.StatusRequestEntityTooLarge:
		return "too-costly"
	}
	if status >= 500 {
		return "exception"
	}
	return "invalid"
}

func writeError(w http.ResponseWriter, err error) {
	var fe *fdError
	if !errors.As(err, &fe) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fe = fail(http.StatusRequestEntityTooLarge, "Request body too large")
		} else {
			fe = failDiag(http.StatusInternalServerError, "Internal server error", err.Error())
		}
	}
	oo := etree.NewElement("OperationOutcome")
	oo.CreateAttr("xmlns", fhir.Namespace)
	issue := oo.CreateElement("issue")
	fhir.SetValue(issue.CreateElement("severity"), "error")
	fhir.SetValue(issue.CreateElement("code"), issueCode(fe.status))
	fhir.SetValue(issue.CreateElement("details").CreateElement("text"), fe.text)
	if fe.diag != "" {
		fhir.SetValue(issue.CreateElement("diagnostics"), fe.diag)
	}
	for k, vs := range fe.header {
		w.Header()[k] = vs
	}
	if fe.vau != "" {
		w.Header().Set(fachdienst.HeaderVAUErrorCode, fe.vau)
	}
	writeXML(w, fe.status, oo)
}

func writeXML(w http.ResponseWriter, status int, e *etree.Element) {
	body := fhir.Document(e)
	w.Header().Set("Content-Type", fachdienst.ContentType)
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client went away
}

// readBody reads a FHIR XML request body (the guard checked its Content-Type and bounds it);
// empty bodies give nil.
func readBody(r *http.Request) (*etree.Element, error) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fail(http.StatusRequestEntityTooLarge, "Request body too large")
		}
		return nil, failDiag(http.StatusBadRequest, "Could not read the request body", err.Error())
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	root, err := fhir.Parse(data, fhir.Limits{MaxBytes: maxBody, MaxDepth: 64, MaxElements: 100_000})
	if err != nil {
		return nil, failDiag(http.StatusBadRequest, "Error during request parsing.", err.Error())
	}
	return root, nil
}

// now is the simulator's clock, truncated to milliseconds as the Fachdienst writes instants.
func (s *Simulator) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// hex32 returns 256 random bits as 64 lowercase hex digits (AccessCode, Secret).
func (s *Simulator) hex32() (string, error) {
	b := make([]byte, 32)
	if err := s.random(b); err != nil {
		return "", fmt.Errorf("fachdienstsim: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (s *Simulator) random(b []byte) error {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	_, err := io.ReadFull(s.rand, b)
	return err
}

// uuid returns a random (version 4) UUID.
func (s *Simulator) uuid() (string, error) {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", fmt.Errorf("fachdienstsim: random: %w", err)
	}
	return u.String(), nil
}

// baseURL is the base of fullUrls and links: the address the caller used.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// loadOrCreateSigner returns the receipt signing key kept in dir, creating a self-signed one.
func loadOrCreateSigner(dir string, now time.Time) (crypto.Signer, *x509.Certificate, error) {
	path := filepath.Join(dir, signerFile)
	if data, err := os.ReadFile(path); err == nil {
		id, err := simpki.ParseIdentity(data)
		if err != nil {
			return nil, nil, fmt.Errorf("fachdienstsim: %s: %w", signerFile, err)
		}
		return id.Key, id.Certificate, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject: pkix.Name{Country: []string{"DE"}, Organization: []string{"red simulator NOT-VALID"},
			CommonName: "erezept ID.FD.SIG (simulated)"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	pemData, err := (&simpki.Identity{Certificate: cert, Key: key}).MarshalPEM()
	if err != nil {
		return nil, nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	if err := wire.WriteFile(path, pemData, 0o600); err != nil {
		return nil, nil, fmt.Errorf("fachdienstsim: %w", err)
	}
	return key, cert, nil
}

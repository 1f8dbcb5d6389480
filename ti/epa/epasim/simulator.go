package epasim

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/guard"
	"github.com/redclone/red/ti/epa"
)

// The fictional people and institutions of DefaultRecords.
const (
	// DefaultTelematikID is the practice the default records entitle (the institution of the
	// ePA 1 sample request in gematik's api-ePA).
	DefaultTelematikID = "1-SMC-B-Testkarte-883110000092397"
	// SampleDiGATelematikID is the DiGA of the ePA 2 sample requests in gematik's api-ePA.
	SampleDiGATelematikID = "9-SMC-B-Testkarte-883110000119267"
	// OtherPracticeTelematikID is a practice that is not the default one.
	OtherPracticeTelematikID = "1-2-REDSIM-ANDERE-PRAXIS"

	// KVNRAuthorized has a record that entitles DefaultTelematikID.
	KVNRAuthorized = "K123456781"
	// KVNRNotAuthorized has a record that entitles only OtherPracticeTelematikID.
	KVNRNotAuthorized = "R300000001"
	// KVNRWithoutRecord has no record.
	KVNRWithoutRecord = "T400000006"

	// HomeCommunityA and HomeCommunityB are the home communities of the default records (those
	// of the ePA 1 and ePA 2 samples).
	HomeCommunityA = "urn:oid:1.2.276.0.76.3.1.315.3.2.1.1"
	HomeCommunityB = "urn:oid:1.2.276.0.76.3.1.466.2.1.6.90.1"
)

// PracticeEntitlementDays is how long an entitlement set by a practice lasts.
const PracticeEntitlementDays = 90

// Config configures a Simulator.
type Config struct {
	// StateDir keeps the uploaded documents and granted entitlements; empty keeps them in memory
	// only.
	StateDir string
	// Records are the health records that exist. nil means DefaultRecords(Now()); an empty,
	// non-nil slice means none.
	Records []Record
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Random feeds generated ids; nil means crypto/rand.
	Random io.Reader
	// MaxBodyBytes bounds a request body; 0 means 64 MiB.
	MaxBodyBytes int64
}

// Record is one insured person's health record.
type Record struct {
	KVNR            string        // 10-character KVNR, the record identifier
	HomeCommunityID string        // urn:oid:… of the Aktensystem holding the record
	Entitlements    []Entitlement // institutions the insured person has entitled
}

// Entitlement (Befugnis) lets one institution use a record until ValidTo; a zero ValidTo never
// expires (like the "temporary unlimited" entitlements of ePA 3).
type Entitlement struct {
	TelematikID string
	ValidTo     time.Time
}

// lasts is the end of an entitlement, a zero ValidTo being the latest.
func (e Entitlement) lasts() time.Time {
	if e.ValidTo.IsZero() {
		return time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	return e.ValidTo
}

// DefaultRecords are the fictional records of a simulator without configured records:
//
//   - KVNRAuthorized (HomeCommunityA) entitles DefaultTelematikID;
//   - KVNRNotAuthorized (HomeCommunityB) entitles only OtherPracticeTelematikID;
//   - KVNRWithoutRecord has no record;
//   - X110411319 (HomeCommunityA), the patient of the ePA 1 sample, entitles DefaultTelematikID;
//   - X110474970 and X110425360 (HomeCommunityB), the patients of the ePA 2 DiGA samples, entitle
//     SampleDiGATelematikID and DefaultTelematikID.
//
// Entitlements last PracticeEntitlementDays from now.
func DefaultRecords(now time.Time) []Record {
	until := now.Add(PracticeEntitlementDays * 24 * time.Hour).UTC().Truncate(time.Second)
	practice := []Entitlement{{TelematikID: DefaultTelematikID, ValidTo: until}}
	diga := []Entitlement{
		{TelematikID: SampleDiGATelematikID, ValidTo: until},
		{TelematikID: DefaultTelematikID, ValidTo: until},
	}
	return []Record{
		{KVNR: KVNRAuthorized, HomeCommunityID: HomeCommunityA, Entitlements: practice},
		{KVNR: KVNRNotAuthorized, HomeCommunityID: HomeCommunityB,
			Entitlements: []Entitlement{{TelematikID: OtherPracticeTelematikID, ValidTo: until}}},
		{KVNR: "X110411319", HomeCommunityID: HomeCommunityA, Entitlements: practice},
		{KVNR: "X110474970", HomeCommunityID: HomeCommunityB, Entitlements: diga},
		{KVNR: "X110425360", HomeCommunityID: HomeCommunityB, Entitlements: diga},
	}
}

// DefaultConfig is a simulator with DefaultRecords keeping its state in stateDir.
func DefaultConfig(stateDir string) Config {
	return Config{StateDir: stateDir}
}

// Simulator is an http.Handler playing the Aktensystem.
type Simulator struct {
	now     func() time.Time
	random  io.Reader
	maxBody int64
	records map[string]Record

	mu    sync.Mutex
	store *store

	handler http.Handler // route behind the loopback guard
}

// New checks cfg, loads the state kept in cfg.StateDir and returns the simulator.
func New(cfg Config) (*Simulator, error) {
	s := &Simulator{now: cfg.Now, random: cfg.Random, maxBody: cfg.MaxBodyBytes, records: map[string]Record{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.random == nil {
		s.random = rand.Reader
	}
	if s.maxBody <= 0 {
		s.maxBody = 64 << 20
	}
	records := cfg.Records
	if records == nil {
		records = DefaultRecords(s.now())
	}
	for i, r := range records {
		if err := ident.KVNR(r.KVNR); err != nil {
			return nil, fmt.Errorf("epasim: record %d: %w", i, err)
		}
		if !strings.HasPrefix(r.HomeCommunityID, "urn:oid:") || !isOID(strings.TrimPrefix(r.HomeCommunityID, "urn:oid:")) {
			return nil, fmt.Errorf("epasim: record %d: the home community id must be urn:oid: followed by an OID", i)
		}
		if _, dup := s.records[r.KVNR]; dup {
			return nil, fmt.Errorf("epasim: record %d: a second record for the same KVNR", i)
		}
		r.Entitlements = append([]Entitlement(nil), r.Entitlements...)
		s.records[r.KVNR] = r
	}
	st, err := openStore(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("epasim: %w", err)
	}
	s.store = st
	s.handler = guard.Rules{MediaTypes: mediaTypes, MaxBytes: s.maxBody, Refuse: refuse}.Handler(http.HandlerFunc(s.route))
	return s, nil
}

// mediaTypes are the media types a request body may have: JSON for the entitlement, SOAP 1.2 or
// MTOM/XOP for the document service.
func mediaTypes(r *http.Request) []string {
	switch r.URL.Path {
	case epa.PathEntitlements:
		return []string{"application/json"}
	case epa.PathDocumentService:
		return []string{"application/soap+xml", "multipart/related"}
	}
	return nil
}

// refuse answers a request the guard refuses with an ErrorType.
func refuse(w http.ResponseWriter, _ *http.Request, why guard.Refusal) {
	writeError(w, why.Status, codeMalformedRequest, why.Reason)
}

// ServeHTTP routes a request to the Information Service, the entitlement endpoint or the XDS
// Document Service, for clients on loopback (see package guard): requests naming another host,
// from a browser page of another origin or site, and bodies of other media types are refused.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Simulator) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case epa.PathRecordStatus:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		s.serveRecordStatus(w, r)
	case epa.PathEntitlements:
		switch r.Method {
		case http.MethodGet:
			s.serveGetEntitlement(w, r)
		case http.MethodPost:
			s.serveSetEntitlement(w, r)
		default:
			methodNotAllowed(w, http.MethodGet+", "+http.MethodPost)
		}
	case epa.PathDocumentService:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		s.serveDocumentService(w, r)
	default:
		writeError(w, http.StatusNotFound, "notFound", "no such endpoint")
	}
}

// Error codes of the ePA 3 REST interfaces (ErrorType.errorCode).
const (
	codeMalformedRequest = "malformedRequest"
	codeNoHealthRecord   = "noHealthRecord"
	codeNotEntitled      = "notEntitled"
	codeInvalAuth        = "invalAuth"
	codeInternalError    = "internalError"
)

type apiError struct {
	ErrorCode   string `json:"errorCode"`
	ErrorDetail string `json:"errorDetail,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, detail string) {
	writeJSON(w, status, apiError{ErrorCode: code, ErrorDetail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"errorCode":"internalError"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, codeMalformedRequest, "method not allowed")
}

// insurantID reads x-insurantid: "" when absent, an error when it is not a valid KVNR.
func insurantID(r *http.Request) (string, error) {
	v := strings.TrimSpace(r.Header.Get(epa.HeaderInsurantID))
	if v == "" {
		return "", nil
	}
	if err := ident.KVNR(v); err != nil {
		return "", fmt.Errorf("%s: %w", epa.HeaderInsurantID, err)
	}
	return v, nil
}

// accessProblem is why a caller may not use a record.
type accessProblem int

const (
	accessOK accessProblem = iota
	accessNoRecord
	accessNotEntitled
)

// access decides whether caller may use the record of kvnr; it returns the record when it exists.
func (s *Simulator) access(kvnr, caller string) (Record, accessProblem) {
	rec, ok := s.records[kvnr]
	if !ok {
		return Record{}, accessNoRecord
	}
	if _, ok := s.entitlement(rec, caller); !ok {
		return rec, accessNotEntitled
	}
	return rec, accessOK
}

// entitlement finds the caller's entitlement that lasts longest and tells whether it is valid now.
func (s *Simulator) entitlement(rec Record, caller string) (Entitlement, bool) {
	if caller == "" {
		return Entitlement{}, false
	}
	var best Entitlement
	found := false
	consider := func(e Entitlement) {
		if e.TelematikID == caller && (!found || e.lasts().After(best.lasts())) {
			best, found = e, true
		}
	}
	for _, e := range rec.Entitlements {
		consider(e)
	}
	s.mu.Lock()
	for _, e := range s.store.entitlements(rec.KVNR) {
		consider(e)
	}
	s.mu.Unlock()
	return best, found && !s.now().After(best.lasts())
}

func (s *Simulator) serveRecordStatus(w http.ResponseWriter, r *http.Request) {
	kvnr, err := insurantID(r)
	if err != nil || kvnr == "" {
		writeError(w, http.StatusBadRequest, codeMalformedRequest, "x-insurantid must carry a valid KVNR")
		return
	}
	rec, ok := s.records[kvnr]
	if !ok {
		writeError(w, http.StatusNotFound, codeNoHealthRecord, "")
		return
	}
	w.Header().Set(epa.HeaderHomeCommunityID, rec.HomeCommunityID)
	w.WriteHeader(http.StatusNoContent)
}

type entitlementAnswer struct {
	ActorID string `json:"actorId,omitempty"`
	ValidTo string `json:"validTo"`
}

func (s *Simulator) serveGetEntitlement(w http.ResponseWriter, r *http.Request) {
	rec, caller, ok := s.recordAndCaller(w, r)
	if !ok {
		return
	}
	e, valid := s.entitlement(rec, caller)
	if !valid {
		writeError(w, http.StatusForbidden, codeNotEntitled, "")
		return
	}
	writeJSON(w, http.StatusOK, entitlementAnswer{ActorID: e.TelematikID, ValidTo: e.lasts().UTC().Format(time.RFC3339)})
}

func (s *Simulator) serveSetEntitlement(w http.ResponseWriter, r *http.Request) {
	rec, caller, ok := s.recordAndCaller(w, r)
	if !ok {
		return
	}
	var req struct {
		JWT string `json:"jwt"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.JWT) == "" {
		writeError(w, http.StatusBadRequest, codeMalformedRequest, "the body must be {\"jwt\": \"…\"}")
		return
	}
	validTo := s.now().Add(PracticeEntitlementDays * 24 * time.Hour).UTC().Truncate(time.Second)
	if cur, valid := s.entitlement(rec, caller); valid && cur.lasts().After(validTo) {
		validTo = cur.lasts() // an existing longer entitlement is kept
	} else {
		s.mu.Lock()
		err := s.store.grant(rec.KVNR, Entitlement{TelematikID: caller, ValidTo: validTo})
		s.mu.Unlock()
		if err != nil {
			writeError(w, http.StatusInternalServerError, codeInternalError, "the entitlement could not be stored")
			return
		}
	}
	writeJSON(w, http.StatusCreated, entitlementAnswer{ValidTo: validTo.Format(time.RFC3339)})
}

// recordAndCaller reads x-insurantid and x-telematik-id and answers the error itself when either
// is missing or the record does not exist.
func (s *Simulator) recordAndCaller(w http.ResponseWriter, r *http.Request) (Record, string, bool) {
	kvnr, err := insurantID(r)
	if err != nil || kvnr == "" {
		writeError(w, http.StatusBadRequest, codeMalformedRequest, "x-insurantid must carry a valid KVNR")
		return Record{}, "", false
	}
	caller := strings.TrimSpace(r.Header.Get(epa.HeaderTelematikID))
	if caller == "" {
		writeError(w, http.StatusForbidden, codeInvalAuth, "x-telematik-id is missing")
		return Record{}, "", false
	}
	rec, ok := s.records[kvnr]
	if !ok {
		writeError(w, http.StatusNotFound, codeNoHealthRecord, "")
		return Record{}, "", false
	}
	return rec, caller, true
}

// newUUID returns a random (version 4) UUID as urn:uuid:….
func (s *Simulator) newUUID() (string, error) {
	u, err := uuid.NewRandomFromReader(s.random)
	if err != nil {
		return "", errors.New("no randomness for a new id")
	}
	return u.URN(), nil
}

// isOID tells whether s is a dotted numeric object identifier.
func isOID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, arc := range strings.Split(s, ".") {
		if arc == "" || (len(arc) > 1 && arc[0] == '0') {
			return false
		}
		for _, c := range arc {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

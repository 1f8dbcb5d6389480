package epa

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/redclone/red/fhir/ident"
)

// Paths of the Aktensystem's services (shared with the simulator in package epasim).
const (
	PathRecordStatus    = "/information/api/v1/ehr"                     // Information Service getRecordStatus
	PathEntitlements    = "/epa/basic/api/v1/ps/entitlements"           // entitlement of the caller
	PathDocumentService = "/epa/xds-document/api/I_Document_Management" // XDS Document Service (SOAP)
)

// Headers of the requests and answers (shared with the simulator in package epasim).
const (
	HeaderInsurantID      = "x-insurantid"      // KVNR naming the health record (ePA 3)
	HeaderUserAgent       = "x-useragent"       // ClientId/Version of the calling software (ePA 3)
	HeaderTelematikID     = "x-telematik-id"    // Telematik-ID of the caller's SMC-B, standing in for the ID-Token
	HeaderHomeCommunityID = "x-homecommunityid" // urn:oid of the record's home community (record status answer)
)

// Defaults of a Client.
const (
	DefaultTimeout   = 60 * time.Second
	DefaultUserAgent = "REDCLONE/1.0"
	// MaxResponseBytes bounds an answer (retrieved documents included).
	MaxResponseBytes = 128 << 20
)

// Client talks to one Aktensystem on behalf of one institution.
type Client struct {
	// BaseURL is the Aktensystem, e.g. http://127.0.0.1:8090 (no trailing path).
	BaseURL string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// TelematikID is the Telematik-ID of the institution's SMC-B.
	TelematikID string
	// InstitutionName is the institution in the author metadata; empty means TelematikID.
	InstitutionName string
	// UserAgent is x-useragent (ClientId/Version); empty means DefaultUserAgent.
	UserAgent string
	// Timeout bounds a call whose context has no deadline; 0 means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock for submission and creation times; nil means time.Now.
	Now func() time.Time
	// Rand feeds generated ids; nil means crypto/rand.
	Rand io.Reader
}

// Status is what the Aktensystem says about an insured person's record.
type Status struct {
	HomeCommunityID string    // urn:oid:… of the Aktensystem holding the record
	RecordExists    bool      // the record exists and is usable
	Authorized      bool      // the institution holds a valid entitlement
	AuthorizedUntil time.Time // end of the entitlement when Authorized
}

// Status asks whether kvnr has a record and whether the institution is entitled to it. A
// missing record is no error: RecordExists is false.
func (c *Client) Status(ctx context.Context, kvnr string) (Status, error) {
	if err := c.check(kvnr); err != nil {
		return Status{}, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.send(ctx, http.MethodGet, PathRecordStatus, kvnr, "", nil)
	if err != nil {
		return Status{}, err
	}
	switch resp.status {
	case http.StatusNoContent, http.StatusOK:
	default:
		apiErr := resp.apiError()
		if errors.Is(apiErr, ErrNoRecord) {
			return Status{}, nil
		}
		return Status{}, apiErr
	}
	st := Status{RecordExists: true, HomeCommunityID: resp.header.Get(HeaderHomeCommunityID)}

	resp, err = c.send(ctx, http.MethodGet, PathEntitlements, kvnr, "", nil)
	if err != nil {
		return Status{}, err
	}
	if resp.status != http.StatusOK {
		apiErr := resp.apiError()
		switch {
		case apiErr.Code == "notEntitled":
			return st, nil
		case errors.Is(apiErr, ErrNoRecord):
			return Status{}, nil
		}
		return Status{}, apiErr
	}
	var ent struct {
		ValidTo string `json:"validTo"`
	}
	if err := json.Unmarshal(resp.body, &ent); err != nil {
		return Status{}, errors.New("epa: the entitlement answer is not JSON")
	}
	until, err := time.Parse(time.RFC3339, ent.ValidTo)
	if err != nil {
		return Status{}, errors.New("epa: the entitlement answer has no valid validTo")
	}
	st.Authorized, st.AuthorizedUntil = true, until
	return st, nil
}

// Entitle sets the institution's entitlement for kvnr with proof, the signed proof of patient
// presence (a JWT), and returns its end.
func (c *Client) Entitle(ctx context.Context, kvnr, proof string) (time.Time, error) {
	if err := c.check(kvnr); err != nil {
		return time.Time{}, err
	}
	if proof == "" {
		return time.Time{}, errors.New("epa: an entitlement needs a proof of patient presence")
	}
	body, err := json.Marshal(map[string]string{"jwt": proof})
	if err != nil {
		return time.Time{}, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.send(ctx, http.MethodPost, PathEntitlements, kvnr, "application/json", body)
	if err != nil {
		return time.Time{}, err
	}
	if resp.status != http.StatusCreated && resp.status != http.StatusOK {
		return time.Time{}, resp.apiError()
	}
	var ent struct {
		ValidTo string `json:"validTo"`
	}
	if err := json.Unmarshal(resp.body, &ent); err != nil {
		return time.Time{}, errors.New("epa: the entitlement answer is not JSON")
	}
	until, err := time.Parse(time.RFC3339, ent.ValidTo)
	if err != nil {
		return time.Time{}, errors.New("epa: the entitlement answer has no valid validTo")
	}
	return until, nil
}

// check validates what every call needs.
func (c *Client) check(kvnr string) error {
	if err := ident.KVNR(kvnr); err != nil {
		return fmt.Errorf("epa: %w", err)
	}
	if c.BaseURL == "" {
		return errors.New("epa: Client.BaseURL is empty")
	}
	if c.TelematikID == "" {
		return errors.New("epa: Client.TelematikID is empty")
	}
	return nil
}

// bound gives ctx a deadline when it has none.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	t := c.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	return context.WithTimeout(ctx, t)
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) random() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

// response is a read answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// apiError reads the ErrorType body of an error answer.
func (r *response) apiError() *APIError {
	e := &APIError{StatusCode: r.status}
	var body struct {
		ErrorCode   string `json:"errorCode"`
		ErrorDetail string `json:"errorDetail"`
	}
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt == "application/json" && json.Unmarshal(r.body, &body) == nil {
		e.Code, e.Detail = body.ErrorCode, body.ErrorDetail
	}
	return e
}

// send makes one request and reads the whole answer (at most MaxResponseBytes).
func (c *Client) send(ctx context.Context, method, path, kvnr, contentType string, body []byte) (*response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("epa: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if kvnr != "" {
		req.Header.Set(HeaderInsurantID, kvnr)
	}
	req.Header.Set(HeaderTelematikID, c.TelematikID)
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set(HeaderUserAgent, ua)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("epa: %s %s: %w", method, path, ctxErr)
		}
		return nil, fmt.Errorf("epa: %s %s: the Aktensystem did not answer", method, path)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("epa: %s %s: %w", method, path, ctxErr)
		}
		return nil, fmt.Errorf("epa: %s %s: the answer broke off", method, path)
	}
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("epa: %s %s: the answer is larger than %d bytes", method, path, MaxResponseBytes)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

package konnektor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/wire"
)

// DefaultTimeout bounds a call whose context has no deadline. PIN entry at a real terminal can
// take a while, so it is generous; callers that want less pass a context with a deadline.
const DefaultTimeout = 2 * time.Minute

// maxResponseBytes bounds a response body (signature batches and VSD are the largest).
const maxResponseBytes = 64 << 20

// ErrUnsupported reports an operation the Konnektor's service directory does not offer in a
// version this client speaks (e.g. Komfortsignatur on a SignatureService 7.4).
var ErrUnsupported = errors.New("konnektor: operation not offered by this Konnektor")

// Client calls one Konnektor. Set BaseURL (scheme, host, port; connector.sds is read from
// BaseURL + "/connector.sds"), HTTP (nil: http.DefaultClient) and the Context sent with every
// call. Endpoints are discovered through the service directory, which the client reads once
// and keeps for DirectoryTTL (again when BaseURL or HTTP change). A Client is safe for
// concurrent use and must not be copied: For gives one that calls with another Context and
// shares the directory.
type Client struct {
	BaseURL string
	HTTP    *http.Client
	Context Context

	mu  sync.Mutex // guards dir
	dir *directoryCache
}

// DirectoryTTL is how long a Konnektor's service directory is reused before it is read again.
const DirectoryTTL = 10 * time.Minute

// For returns a client for the same Konnektor that sends ctx with every call. It shares c's
// service directory.
func (c *Client) For(ctx Context) *Client {
	return &Client{BaseURL: c.BaseURL, HTTP: c.HTTP, Context: ctx, dir: c.directory()}
}

// directory returns the client's directory cache, made on first use.
func (c *Client) directory() *directoryCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == nil {
		c.dir = &directoryCache{}
	}
	return c.dir
}

// directoryCache is a service directory with where and when it was read.
type directoryCache struct {
	mu      sync.Mutex
	from    string // BaseURL and HTTP client
	dir     *ServiceDirectory
	fetched time.Time
}

// get returns the directory read from from less than DirectoryTTL ago, or nil.
func (d *directoryCache) get(from string) *ServiceDirectory {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dir == nil || d.from != from || time.Since(d.fetched) >= DirectoryTTL {
		return nil
	}
	return d.dir
}

func (d *directoryCache) put(from string, dir *ServiceDirectory) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.from, d.dir, d.fetched = from, dir, time.Now()
}

// ServiceDirectory is the content of connector.sds.
type ServiceDirectory struct {
	ProductType        string // e.g. Konnektor
	ProductTypeVersion string
	VendorID           string
	ProductCode        string
	ProductName        string
	HWVersion          string
	FWVersion          string
	TLSMandatory       bool
	ClientAutMandatory bool
	Services           []Service
}

// Service is one service of the directory with the versions it is offered in.
type Service struct {
	Name     string
	Versions []ServiceVersion
}

// ServiceVersion is one offered version of a service.
type ServiceVersion struct {
	TargetNamespace string
	Version         string // e.g. 7.5.5
	Endpoint        string // http location
	EndpointTLS     string // https location
}

// majorMinor returns "7.5" for "7.5.5".
func (v ServiceVersion) majorMinor() string {
	parts := strings.SplitN(v.Version, ".", 3)
	if len(parts) < 2 {
		return v.Version
	}
	return parts[0] + "." + parts[1]
}

// ParseServiceDirectory reads a connector.sds document.
func ParseServiceDirectory(data []byte) (*ServiceDirectory, error) {
	root, err := wire.ReadXML(data)
	if err != nil {
		return nil, fmt.Errorf("konnektor: connector.sds: %w", err)
	}
	if root.Tag != "ConnectorServices" {
		return nil, fmt.Errorf("konnektor: connector.sds: root element is %s, not ConnectorServices", root.Tag)
	}
	pi := root.FindElement("ProductInformation")
	d := &ServiceDirectory{
		ProductType:        text(pi, "ProductTypeInformation/ProductType"),
		ProductTypeVersion: text(pi, "ProductTypeInformation/ProductTypeVersion"),
		VendorID:           text(pi, "ProductIdentification/ProductVendorID"),
		ProductCode:        text(pi, "ProductIdentification/ProductCode"),
		HWVersion:          text(pi, "ProductIdentification/ProductVersion/Local/HWVersion"),
		FWVersion:          text(pi, "ProductIdentification/ProductVersion/Local/FWVersion"),
		ProductName:        text(pi, "ProductMiscellaneous/ProductName"),
		TLSMandatory:       boolText(root, "TLSMandatory"),
		ClientAutMandatory: boolText(root, "ClientAutMandatory"),
	}
	for _, s := range root.FindElements("ServiceInformation/Service") {
		svc := Service{Name: s.SelectAttrValue("Name", "")}
		for _, v := range s.FindElements("Versions/Version") {
			svc.Versions = append(svc.Versions, ServiceVersion{
				TargetNamespace: v.SelectAttrValue("TargetNamespace", ""),
				Version:         v.SelectAttrValue("Version", ""),
				Endpoint:        attr(v, "Endpoint", "Location"),
				EndpointTLS:     attr(v, "EndpointTLS", "Location"),
			})
		}
		d.Services = append(d.Services, svc)
	}
	return d, nil
}

// Find returns the highest offered version of service whose major.minor is one of accept
// (tried in order), or false.
func (d *ServiceDirectory) Find(service string, accept ...string) (ServiceVersion, bool) {
	for _, want := range accept {
		var best ServiceVersion
		found := false
		for _, s := range d.Services {
			if s.Name != service {
				continue
			}
			for _, v := range s.Versions {
				if v.majorMinor() == want && (!found || versionLess(best.Version, v.Version)) {
					best, found = v, true
				}
			}
		}
		if found {
			return best, true
		}
	}
	return ServiceVersion{}, false
}

func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

// withDeadline makes sure a call cannot hang.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Services returns the Konnektor's service directory, reading connector.sds when it is not
// cached (or older than DirectoryTTL).
func (c *Client) Services(ctx context.Context) (*ServiceDirectory, error) {
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		return nil, errors.New("konnektor: Client.BaseURL is empty")
	}
	from := fmt.Sprintf("%s %p", base, c.HTTP)
	cache := c.directory()
	if dir := cache.get(from); dir != nil {
		return dir, nil
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/connector.sds", nil)
	if err != nil {
		return nil, fmt.Errorf("konnektor: %w", err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("konnektor: connector.sds: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("konnektor: connector.sds: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("konnektor: connector.sds: HTTP %d", resp.StatusCode)
	}
	dir, err := ParseServiceDirectory(data)
	if err != nil {
		return nil, err
	}
	cache.put(from, dir)
	return dir, nil
}

// endpoint picks the location of service in one of the accepted versions, matching the
// scheme of BaseURL.
func (c *Client) endpoint(ctx context.Context, service string, accept ...string) (string, ServiceVersion, error) {
	dir, err := c.Services(ctx)
	if err != nil {
		return "", ServiceVersion{}, err
	}
	v, ok := dir.Find(service, accept...)
	if !ok {
		return "", ServiceVersion{}, fmt.Errorf("%w: %s in version %s", ErrUnsupported, service, strings.Join(accept, " or "))
	}
	loc := v.Endpoint
	if strings.HasPrefix(strings.ToLower(c.BaseURL), "https:") && v.EndpointTLS != "" || loc == "" {
		loc = v.EndpointTLS
	}
	if loc == "" {
		return "", v, fmt.Errorf("konnektor: %s %s has no endpoint", service, v.Version)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", v, fmt.Errorf("konnektor: %s endpoint %q: %w", service, loc, err)
	}
	if !u.IsAbs() { // relative locations are resolved against BaseURL
		base, err := url.Parse(c.BaseURL)
		if err != nil {
			return "", v, fmt.Errorf("konnektor: BaseURL: %w", err)
		}
		u = base.ResolveReference(u)
	}
	return u.String(), v, nil
}

// request is a SOAP request under construction.
type request struct {
	doc *etree.Document
	op  *etree.Element
}

// requestNamespaces are declared on every request envelope with these prefixes.
var requestNamespaces = []wire.Namespace{
	{Prefix: "CONN", URI: NSConnectorCommon},
	{Prefix: "CCTX", URI: NSConnectorContext},
	{Prefix: "CARDCMN", URI: NSCardServiceCommon},
	{Prefix: "CERTCMN", URI: NSCertificateCommon},
	{Prefix: "dss", URI: NSDSS},
	{Prefix: "vr", URI: NSVerificationReport},
}

// newRequest starts an envelope whose body holds the operation element m:op in namespace ns.
func newRequest(ns, op string) *request {
	doc, el := wire.NewMessage(NSSOAP, ns, op, requestNamespaces...)
	return &request{doc: doc, op: el}
}

// add appends a child with text to parent (prefix:name).
func add(parent *etree.Element, name, value string) *etree.Element {
	e := parent.CreateElement(name)
	if value != "" {
		e.SetText(value)
	}
	return e
}

// addContext appends the call context.
func (c *Client) addContext(parent *etree.Element) {
	ctx := parent.CreateElement("CCTX:Context")
	add(ctx, "CONN:MandantId", c.Context.MandantID)
	add(ctx, "CONN:ClientSystemId", c.Context.ClientSystemID)
	add(ctx, "CONN:WorkplaceId", c.Context.WorkplaceID)
	if c.Context.UserID != "" {
		add(ctx, "CONN:UserId", c.Context.UserID)
	}
}

// call posts the request with SOAPAction ns#op and returns the response element, which must
// be named op+"Response". SOAP faults come back as *Fault.
func (c *Client) call(ctx context.Context, endpoint, ns, op string, r *request) (*etree.Element, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	body, err := r.doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("konnektor: %s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("konnektor: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=UTF-8")
	req.Header.Set("SOAPAction", `"`+ns+"#"+op+`"`)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("konnektor: %s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("konnektor: %s: reading response: %w", op, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("konnektor: %s: response larger than %d bytes", op, maxResponseBytes)
	}
	el, err := parseResponse(data, resp.StatusCode, op+"Response")
	if err != nil {
		var f *Fault
		if errors.As(err, &f) {
			return nil, err
		}
		return nil, fmt.Errorf("konnektor: %s: %w", op, err)
	}
	return el, nil
}

// parseResponse finds the response element (inside a SOAP envelope or, as some samples show,
// bare) or turns a SOAP fault into *Fault.
func parseResponse(data []byte, httpStatus int, want string) (*etree.Element, error) {
	el, err := wire.ReadXML(data)
	if err != nil {
		if httpStatus != http.StatusOK {
			return nil, fmt.Errorf("HTTP %d", httpStatus)
		}
		return nil, err
	}
	if el.Tag == "Envelope" {
		env, err := wire.OpenEnvelope(el, "")
		if err != nil {
			return nil, err
		}
		el = env.Payload
	}
	if f, ok := wire.ReadFault(el); ok {
		fault := &Fault{HTTPStatus: httpStatus, FaultCode: f.Code, FaultString: f.Reason}
		if f.Detail != nil {
			if e := f.Detail.FindElement(".//Error"); e != nil {
				fillError(fault, e)
			}
		}
		return nil, fault
	}
	if httpStatus != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d with %s", httpStatus, el.Tag)
	}
	if el.Tag != want {
		return nil, fmt.Errorf("expected %s, got %s", want, el.Tag)
	}
	return el, nil
}

// fillError copies a tel/error/v2.0 Error element into f.
func fillError(f *Fault, e *etree.Element) {
	f.MessageID = text(e, "MessageID")
	if t, err := parseTime(text(e, "Timestamp")); err == nil {
		f.Timestamp = t
	}
	for _, t := range e.FindElements("Trace") {
		code, _ := intText(t, "Code", 0)
		f.Traces = append(f.Traces, Trace{
			EventID:      text(t, "EventID"),
			Instance:     text(t, "Instance"),
			LogReference: text(t, "LogReference"),
			CompType:     text(t, "CompType"),
			Code:         code,
			Severity:     text(t, "Severity"),
			ErrorType:    text(t, "ErrorType"),
			ErrorText:    text(t, "ErrorText"),
			Detail:       text(t, "Detail"),
		})
	}
}

// parseStatus reads the ConnectorCommon Status of a response element.
func parseStatus(resp *etree.Element) Status {
	s := Status{Result: text(resp, "Status/Result")}
	if e := resp.FindElement("Status/Error"); e != nil {
		s.Error = &Fault{}
		fillError(s.Error, e)
	}
	return s
}

// statusError turns an ERROR status into an error.
func statusError(op string, s Status) error {
	if !strings.EqualFold(s.Result, ResultError) {
		return nil
	}
	if s.Error != nil {
		return s.Error
	}
	return fmt.Errorf("konnektor: %s: status ERROR", op)
}

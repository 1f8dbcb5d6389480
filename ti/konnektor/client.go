package konnektor

import (
	"bytes"
	"context"
	"encoding/base64"
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
)

var stdBase64 = base64.StdEncoding

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
// call. Endpoints are discovered through the service directory, which is cached per BaseURL
// and HTTP client for DirectoryTTL. A Client is a plain value: copy it to call with another Context; it is
// safe for concurrent use.
type Client struct {
	BaseURL string
	HTTP    *http.Client
	Context Context
}

// DirectoryTTL is how long a Konnektor's service directory is reused before it is read again.
const DirectoryTTL = 10 * time.Minute

// directories caches service directories by BaseURL and HTTP client (maxDirectories at most).
var directories = struct {
	sync.Mutex
	m map[string]cachedDirectory
}{m: map[string]cachedDirectory{}}

const maxDirectories = 256

type cachedDirectory struct {
	dir     *ServiceDirectory
	fetched time.Time
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
	doc, err := parseXML(data)
	if err != nil {
		return nil, fmt.Errorf("konnektor: connector.sds: %w", err)
	}
	root := doc.Root()
	if root.Tag != "ConnectorServices" {
		return nil, fmt.Errorf("konnektor: connector.sds: root element is %s, not ConnectorServices", root.Tag)
	}
	pi := child(root, "ProductInformation")
	d := &ServiceDirectory{
		ProductType:        text(walk(pi, "ProductTypeInformation", "ProductType")),
		ProductTypeVersion: text(walk(pi, "ProductTypeInformation", "ProductTypeVersion")),
		VendorID:           text(walk(pi, "ProductIdentification", "ProductVendorID")),
		ProductCode:        text(walk(pi, "ProductIdentification", "ProductCode")),
		HWVersion:          text(walk(pi, "ProductIdentification", "ProductVersion", "Local", "HWVersion")),
		FWVersion:          text(walk(pi, "ProductIdentification", "ProductVersion", "Local", "FWVersion")),
		ProductName:        text(walk(pi, "ProductMiscellaneous", "ProductName")),
		TLSMandatory:       boolText(child(root, "TLSMandatory")),
		ClientAutMandatory: boolText(child(root, "ClientAutMandatory")),
	}
	for _, s := range childrenNamed(child(root, "ServiceInformation"), "Service") {
		svc := Service{Name: attr(s, "Name")}
		for _, v := range childrenNamed(child(s, "Versions"), "Version") {
			svc.Versions = append(svc.Versions, ServiceVersion{
				TargetNamespace: attr(v, "TargetNamespace"),
				Version:         attr(v, "Version"),
				Endpoint:        attr(child(v, "Endpoint"), "Location"),
				EndpointTLS:     attr(child(v, "EndpointTLS"), "Location"),
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
	key := fmt.Sprintf("%s %p", base, c.HTTP)
	directories.Lock()
	cached, ok := directories.m[key]
	directories.Unlock()
	if ok && time.Since(cached.fetched) < DirectoryTTL {
		return cached.dir, nil
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
	directories.Lock()
	if len(directories.m) >= maxDirectories {
		directories.m = map[string]cachedDirectory{}
	}
	directories.m[key] = cachedDirectory{dir: dir, fetched: time.Now()}
	directories.Unlock()
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

// newRequest starts an envelope whose body holds the operation element op in namespace ns.
// The common namespaces are declared on the envelope with fixed prefixes.
func newRequest(ns, op string) *request {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", NSSOAP)
	env.CreateAttr("xmlns:CONN", NSConnectorCommon)
	env.CreateAttr("xmlns:CCTX", NSConnectorContext)
	env.CreateAttr("xmlns:CARDCMN", NSCardServiceCommon)
	env.CreateAttr("xmlns:CERTCMN", NSCertificateCommon)
	env.CreateAttr("xmlns:dss", NSDSS)
	env.CreateAttr("xmlns:vr", NSVerificationReport)
	body := env.CreateElement("soap:Body")
	el := body.CreateElement("m:" + op)
	el.CreateAttr("xmlns:m", ns)
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
	body, err := xmlBytes(r.doc)
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
	doc, err := parseXML(data)
	if err != nil {
		if httpStatus != http.StatusOK {
			return nil, fmt.Errorf("HTTP %d", httpStatus)
		}
		return nil, err
	}
	el := doc.Root()
	if el.Tag == "Envelope" {
		body := child(el, "Body")
		if body == nil {
			return nil, errors.New("SOAP envelope without body")
		}
		el = nil
		if elems := body.ChildElements(); len(elems) > 0 {
			el = elems[0]
		}
		if el == nil {
			return nil, errors.New("empty SOAP body")
		}
	}
	if el.Tag == "Fault" {
		f := parseFault(el)
		f.HTTPStatus = httpStatus
		return nil, f
	}
	if httpStatus != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d with %s", httpStatus, el.Tag)
	}
	if el.Tag != want {
		return nil, fmt.Errorf("expected %s, got %s", want, el.Tag)
	}
	return el, nil
}

// parseFault reads a SOAP 1.1 fault with a gematik Error in its detail.
func parseFault(el *etree.Element) *Fault {
	f := &Fault{FaultCode: text(child(el, "faultcode")), FaultString: text(child(el, "faultstring"))}
	if e := descendant(child(el, "detail"), "Error"); e != nil {
		fillError(f, e)
	}
	return f
}

// fillError copies a tel/error/v2.0 Error element into f.
func fillError(f *Fault, e *etree.Element) {
	f.MessageID = text(child(e, "MessageID"))
	if t, err := parseTime(text(child(e, "Timestamp"))); err == nil {
		f.Timestamp = t
	}
	for _, t := range childrenNamed(e, "Trace") {
		code, _ := intText(child(t, "Code"), 0)
		f.Traces = append(f.Traces, Trace{
			EventID:      text(child(t, "EventID")),
			Instance:     text(child(t, "Instance")),
			LogReference: text(child(t, "LogReference")),
			CompType:     text(child(t, "CompType")),
			Code:         code,
			Severity:     text(child(t, "Severity")),
			ErrorType:    text(child(t, "ErrorType")),
			ErrorText:    text(child(t, "ErrorText")),
			Detail:       text(child(t, "Detail")),
		})
	}
}

// parseStatus reads a ConnectorCommon Status element.
func parseStatus(el *etree.Element) Status {
	s := Status{Result: text(child(el, "Result"))}
	if e := child(el, "Error"); e != nil {
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

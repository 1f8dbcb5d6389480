package fachdienst

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// maxResponseBytes bounds what the client reads of an answer (a list of Tasks with their bundles
// stays far below it).
const maxResponseBytes = 32 << 20

// Client calls the E-Rezept-Fachdienst (or its simulator) as one identity.
//
// Every call is bounded by its context; a context without deadline gets [DefaultTimeout].
// Answers outside 2xx come back as *[Error].
type Client struct {
	BaseURL  string       // e.g. http://127.0.0.1:29230, without the FHIR paths
	HTTP     *http.Client // nil means a client without its own timeout (the context bounds each call)
	Identity Identity     // sent with every request
}

// Create asks for a new Task of a flow type (POST /Task/$create). The answer is a draft Task
// with its PrescriptionId and AccessCode.
func (c *Client) Create(ctx context.Context, flowType int) (Task, error) {
	p := parameters()
	param := p.CreateElement("parameter")
	fhir.SetValue(param.CreateElement("name"), "workflowType")
	coding := param.CreateElement("valueCoding")
	fhir.SetValue(coding.CreateElement("system"), SystemFlowType)
	fhir.SetValue(coding.CreateElement("code"), FlowType(flowType).Code())
	resp, err := c.do(ctx, http.MethodPost, "/Task/$create", nil, nil, fhir.Marshal(p), http.StatusCreated)
	if err != nil {
		return Task{}, err
	}
	return resp.task()
}

// Activate hands the QES-signed KBV bundle (CMS, DER) to a draft Task (POST /Task/{id}/$activate
// with X-AccessCode). The answer is the ready Task; a LANR/ZANR with a wrong check digit gives
// status 252 and the warning in Task.Warning.
func (c *Client) Activate(ctx context.Context, taskID, accessCode string, signedBundle []byte) (Task, error) {
	p := parameters()
	param := p.CreateElement("parameter")
	fhir.SetValue(param.CreateElement("name"), "ePrescription")
	bin := param.CreateElement("resource").CreateElement("Binary")
	fhir.SetValue(bin.CreateElement("contentType"), "application/pkcs7-mime")
	fhir.SetValue(bin.CreateElement("data"), base64.StdEncoding.EncodeToString(signedBundle))
	h := http.Header{}
	h.Set(HeaderAccessCode, accessCode)
	resp, err := c.do(ctx, http.MethodPost, taskPath(taskID, "$activate"), nil, h, fhir.Marshal(p),
		http.StatusOK, http.StatusAccepted, 252)
	if err != nil {
		return Task{}, err
	}
	t, err := resp.task()
	if err != nil {
		return Task{}, err
	}
	if resp.status == 252 {
		t.Warning = resp.header.Get("Warning")
	}
	return t, nil
}

// Accept claims a ready Task for the calling pharmacy (POST /Task/{id}/$accept?ac=). The answer
// carries the Secret and the signed prescription.
func (c *Client) Accept(ctx context.Context, taskID, accessCode string) (Accepted, error) {
	resp, err := c.do(ctx, http.MethodPost, taskPath(taskID, "$accept"), url.Values{"ac": {accessCode}}, nil, nil, http.StatusOK)
	if err != nil {
		return Accepted{}, err
	}
	return resp.accepted()
}

// RecoverSecret fetches the Secret and prescription of a Task the calling pharmacy accepted
// earlier but whose answer it lost (GET /Task/{id}?ac=).
func (c *Client) RecoverSecret(ctx context.Context, taskID, accessCode string) (Accepted, error) {
	resp, err := c.do(ctx, http.MethodGet, taskPath(taskID, ""), url.Values{"ac": {accessCode}}, nil, nil, http.StatusOK)
	if err != nil {
		return Accepted{}, err
	}
	return resp.accepted()
}

// Reject hands an accepted Task back (POST /Task/{id}/$reject?secret=): it is ready again for
// other pharmacies. Without secret, the Secret is first recovered with the AccessCode, so a
// pharmacy that only kept prescription id and AccessCode (as RED's $reject action does) can
// reject too.
func (c *Client) Reject(ctx context.Context, taskID, accessCode, secret string) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	if secret == "" {
		if accessCode == "" {
			return errors.New("fachdienst: $reject needs the Secret or the AccessCode")
		}
		acc, err := c.RecoverSecret(ctx, taskID, accessCode)
		if err != nil {
			return err
		}
		secret = acc.Secret
	}
	_, err := c.do(ctx, http.MethodPost, taskPath(taskID, "$reject"), url.Values{"secret": {secret}}, nil, nil, http.StatusNoContent)
	return err
}

// Dispense records what was handed over without closing the Task (POST /Task/{id}/$dispense).
// dispense is a Parameters resource (GEM_ERP_PR_PAR_DispenseOperation_Input) with one or more
// rxDispensation parameters.
func (c *Client) Dispense(ctx context.Context, taskID, secret string, dispense []byte) error {
	_, err := c.do(ctx, http.MethodPost, taskPath(taskID, "$dispense"), url.Values{"secret": {secret}}, nil, dispense,
		http.StatusOK, http.StatusNoContent)
	return err
}

// Close completes an accepted Task (POST /Task/{id}/$close) and returns the Fachdienst's signed
// receipt. dispense is a Parameters resource (GEM_ERP_PR_PAR_CloseOperation_Input); it may be
// nil when $dispense was called before.
func (c *Client) Close(ctx context.Context, taskID, secret string, dispense []byte) (Receipt, error) {
	resp, err := c.do(ctx, http.MethodPost, taskPath(taskID, "$close"), url.Values{"secret": {secret}}, nil, dispense, http.StatusOK)
	if err != nil {
		return Receipt{}, err
	}
	root, err := resp.root("Bundle")
	if err != nil {
		return Receipt{}, err
	}
	return ParseReceipt(root)
}

// Abort cancels a Task (POST /Task/{id}/$abort): a prescriber passes the AccessCode, a pharmacy
// that accepted it the Secret, an insured person neither (or the AccessCode as representative).
func (c *Client) Abort(ctx context.Context, taskID, accessCode, secret string) error {
	h := http.Header{}
	if accessCode != "" {
		h.Set(HeaderAccessCode, accessCode)
	}
	var q url.Values
	if secret != "" {
		q = url.Values{"secret": {secret}}
	}
	_, err := c.do(ctx, http.MethodPost, taskPath(taskID, "$abort"), q, h, nil, http.StatusNoContent)
	return err
}

// GetTask reads one Task (GET /Task/{id}). A pharmacy passes the Secret (and gets the receipt of
// a completed Task) or the AccessCode (secret recovery); an insured person passes neither, or the
// AccessCode when acting as representative.
func (c *Client) GetTask(ctx context.Context, taskID, accessCode, secret string) (TaskDetails, error) {
	q := url.Values{}
	h := http.Header{}
	switch {
	case secret != "":
		q.Set("secret", secret)
	case accessCode != "" && c.Identity.Insured():
		h.Set(HeaderAccessCode, accessCode)
	case accessCode != "":
		q.Set("ac", accessCode)
	}
	resp, err := c.do(ctx, http.MethodGet, taskPath(taskID, ""), q, h, nil, http.StatusOK)
	if err != nil {
		return TaskDetails{}, err
	}
	root, err := resp.root("Bundle")
	if err != nil {
		return TaskDetails{}, err
	}
	var d TaskDetails
	found := false
	for _, res := range bundleResources(root) {
		switch res.Tag {
		case "Task":
			if d.Task, err = ParseTask(res); err != nil {
				return TaskDetails{}, err
			}
			found = true
		case "Binary":
			if d.Prescription, err = binaryData(res); err != nil {
				return TaskDetails{}, err
			}
		case "Bundle":
			if fhir.ChildValue(res, "type") == "document" && isReceipt(res) {
				r, err := ParseReceipt(res)
				if err != nil {
					return TaskDetails{}, err
				}
				d.Receipt = &r
			} else {
				d.PatientConfirmation = fhir.Marshal(res)
			}
		}
	}
	if !found {
		return TaskDetails{}, errors.New("fachdienst: the answer holds no Task")
	}
	return d, nil
}

// ListTasks searches Tasks (GET /Task): an insured person gets their own, a pharmacy those of the
// KVNR in query ("kvnr", with "pnw"/"hcv" from the eGK). query may also carry status,
// authored-on, modified, expiry-date, accept-date, _sort and _count.
func (c *Client) ListTasks(ctx context.Context, query url.Values) ([]Task, error) {
	resp, err := c.do(ctx, http.MethodGet, "/Task", query, nil, nil, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	root, err := resp.root("Bundle")
	if err != nil {
		return nil, err
	}
	var out []Task
	for _, res := range bundleResources(root) {
		if res.Tag != "Task" {
			continue
		}
		t, err := ParseTask(res)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Communications lists the messages sent to or by the caller (GET /Communication); query may carry
// received=NULL (unread), sent/received ranges like gt2025-01-14, recipient, sender and _sort.
func (c *Client) Communications(ctx context.Context, query url.Values) ([]Communication, error) {
	resp, err := c.do(ctx, http.MethodGet, "/Communication", query, nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	root, err := resp.root("Bundle")
	if err != nil {
		return nil, err
	}
	var out []Communication
	for _, res := range bundleResources(root) {
		if res.Tag != "Communication" {
			continue
		}
		cm, err := ParseCommunication(res)
		if err != nil {
			return nil, err
		}
		out = append(out, cm)
	}
	return out, nil
}

// SendCommunication posts a Communication (POST /Communication), for example a pharmacy's reply
// (GEM_ERP_PR_Communication_Reply), and returns it as stored.
func (c *Client) SendCommunication(ctx context.Context, communication []byte) (Communication, error) {
	resp, err := c.do(ctx, http.MethodPost, "/Communication", nil, nil, communication, http.StatusCreated)
	if err != nil {
		return Communication{}, err
	}
	root, err := resp.root("Communication")
	if err != nil {
		return Communication{}, err
	}
	return ParseCommunication(root)
}

// MedicationDispenses lists the insured caller's dispensations (GET /MedicationDispense); query
// may carry identifier=<SystemPrescriptionID>|<id> and whenhandedover ranges like gt2025-01-01.
func (c *Client) MedicationDispenses(ctx context.Context, query url.Values) ([]MedicationDispense, error) {
	resp, err := c.do(ctx, http.MethodGet, "/MedicationDispense", query, nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	root, err := resp.root("Bundle")
	if err != nil {
		return nil, err
	}
	medications := map[string][]byte{}
	var out []MedicationDispense
	for _, entry := range root.SelectElements("entry") {
		res := fhir.ResourceOf(entry.SelectElement("resource"))
		switch {
		case res == nil:
		case res.Tag == "MedicationDispense":
			md, err := ParseMedicationDispense(res)
			if err != nil {
				return nil, err
			}
			out = append(out, md)
		case res.Tag == "Medication":
			xml := fhir.Marshal(res)
			id := fhir.ChildValue(res, "id")
			medications["Medication/"+id] = xml
			medications["urn:uuid:"+id] = xml
			if full := fhir.ChildValue(entry, "fullUrl"); full != "" {
				medications[full] = xml
			}
		}
	}
	for i := range out {
		ref := out[i].MedicationReference
		if m, ok := medications[ref]; ok {
			out[i].Medication = m
			continue
		}
		for full, m := range medications { // absolute fullUrl vs relative reference
			if ref != "" && strings.HasSuffix(full, "/"+ref) {
				out[i].Medication = m
				break
			}
		}
	}
	return out, nil
}

// response is a 2xx answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) root(tag string) (*etree.Element, error) {
	root, err := fhir.Parse(r.body, fhir.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("fachdienst: the answer is not FHIR XML: %w", err)
	}
	if root.Tag != tag {
		return nil, fmt.Errorf("fachdienst: expected a %s, got a %s", tag, root.Tag)
	}
	return root, nil
}

func (r response) task() (Task, error) {
	root, err := r.root("Task")
	if err != nil {
		return Task{}, err
	}
	return ParseTask(root)
}

// accepted reads the collection Bundle of $accept and of secret recovery.
func (r response) accepted() (Accepted, error) {
	root, err := r.root("Bundle")
	if err != nil {
		return Accepted{}, err
	}
	var a Accepted
	found := false
	for _, res := range bundleResources(root) {
		switch res.Tag {
		case "Task":
			if a.Task, err = ParseTask(res); err != nil {
				return Accepted{}, err
			}
			found = true
		case "Binary":
			if a.Bundle, err = binaryData(res); err != nil {
				return Accepted{}, err
			}
		}
	}
	if !found {
		return Accepted{}, errors.New("fachdienst: the answer holds no Task")
	}
	if a.Bundle == nil {
		return Accepted{}, errors.New("fachdienst: the answer holds no prescription")
	}
	a.Secret = a.Task.Secret
	return a, nil
}

// do sends one request and reads the whole answer; statuses outside ok become *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, h http.Header, body []byte, ok ...int) (response, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return response{}, fmt.Errorf("fachdienst: %w", err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	c.Identity.Set(req.Header)
	req.Header.Set("Accept", "application/fhir+xml")
	if body != nil {
		req.Header.Set("Content-Type", ContentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("fachdienst: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes+1))
	if err != nil {
		return response{}, fmt.Errorf("fachdienst: %s %s: reading the answer: %w", method, path, err)
	}
	if len(data) > maxResponseBytes {
		return response{}, fmt.Errorf("fachdienst: %s %s: the answer exceeds %d bytes", method, path, maxResponseBytes)
	}
	for _, s := range ok {
		if res.StatusCode == s {
			return response{status: res.StatusCode, header: res.Header, body: data}, nil
		}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return response{}, fmt.Errorf("fachdienst: %s %s: unexpected status %d", method, path, res.StatusCode)
	}
	return response{}, errorFrom(res.StatusCode, res.Header, data)
}

// bounded gives ctx the default deadline when it has none.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// taskPath is /Task/{id} or /Task/{id}/{operation}.
func taskPath(taskID, operation string) string {
	p := "/Task/" + url.PathEscape(taskID)
	if operation != "" {
		p += "/" + operation
	}
	return p
}

func parameters() *etree.Element {
	p := etree.NewElement("Parameters")
	p.CreateAttr("xmlns", fhir.Namespace)
	return p
}

// binaryData decodes a Binary's data.
func binaryData(bin *etree.Element) ([]byte, error) {
	d, err := base64.StdEncoding.DecodeString(fhir.ChildValue(bin, "data"))
	if err != nil {
		return nil, errors.New("fachdienst: a Binary's data is not base64")
	}
	return d, nil
}

// isReceipt reports whether a document Bundle is a receipt (its Composition has document type 3).
func isReceipt(b *etree.Element) bool {
	for _, res := range bundleResources(b) {
		if res.Tag == "Composition" {
			return fhir.ChildValue(res, "type", "coding", "code") == DocumentReceipt &&
				fhir.ChildValue(res, "type", "coding", "system") == SystemDocumentType
		}
	}
	return false
}

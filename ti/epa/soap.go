package epa

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// XML namespaces of SOAP, WS-Addressing, IHE XDS.b and ebXML RegRep 3.0.
const (
	nsSOAP  = "http://www.w3.org/2003/05/soap-envelope"
	nsWSA   = "http://www.w3.org/2005/08/addressing"
	nsXDS   = "urn:ihe:iti:xds-b:2007"
	nsLCM   = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
	nsRIM   = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
	nsRS    = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
	nsQuery = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
	nsXOP   = "http://www.w3.org/2004/08/xop/include"
)

// newEnvelope starts a SOAP 1.2 request envelope with the WS-Addressing header for action and
// every namespace prefix the XDS bodies use declared on the root.
func (c *Client) newEnvelope(action string) (*etree.Document, *etree.Element, error) {
	msgID, err := newUUID(c.random())
	if err != nil {
		return nil, nil, err
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	for prefix, ns := range map[string]string{"soap": nsSOAP, "wsa": nsWSA, "xds": nsXDS, "lcm": nsLCM,
		"rim": nsRIM, "rs": nsRS, "query": nsQuery} {
		env.CreateAttr("xmlns:"+prefix, ns)
	}
	env.SortAttrs()
	hdr := env.CreateElement("soap:Header")
	a := hdr.CreateElement("wsa:Action")
	a.CreateAttr("soap:mustUnderstand", "true")
	a.SetText(action)
	hdr.CreateElement("wsa:MessageID").SetText(msgID)
	hdr.CreateElement("wsa:ReplyTo").CreateElement("wsa:Address").SetText("http://www.w3.org/2005/08/addressing/anonymous")
	to := hdr.CreateElement("wsa:To")
	to.CreateAttr("soap:mustUnderstand", "true")
	to.SetText(strings.TrimRight(c.BaseURL, "/") + PathDocumentService)
	body := env.CreateElement("soap:Body")
	return doc, body, nil
}

// part is a document sent or received as an MTOM attachment.
type part struct {
	id       string // Content-ID without angle brackets
	mimeType string
	data     []byte
}

// soapAnswer is the body element of an answer envelope and the answer's attachments.
type soapAnswer struct {
	op          *etree.Element
	attachments map[string][]byte
}

// call posts the envelope to the document service, as MTOM/XOP with the parts when mtom is set
// (ITI-41 and ITI-43, so the repository answers ITI-43 with MTOM too), and reads the answer: a
// JSON error becomes *APIError, a SOAP Fault *SOAPFaultError.
func (c *Client) call(ctx context.Context, kvnr, action string, doc *etree.Document, mtom bool, parts ...part) (*soapAnswer, error) {
	envelope, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("epa: %w", err)
	}
	body, contentType := envelope, `application/soap+xml; charset=UTF-8; action="`+action+`"`
	if mtom {
		if body, contentType, err = c.mtom(envelope, action, parts); err != nil {
			return nil, err
		}
	}
	resp, err := c.send(ctx, http.MethodPost, PathDocumentService, kvnr, contentType, body)
	if err != nil {
		return nil, err
	}
	mt, params, _ := mime.ParseMediaType(resp.header.Get("Content-Type"))
	if mt == "application/json" || (resp.status >= 400 && !strings.Contains(mt, "xml") && mt != "multipart/related") {
		return nil, resp.apiError()
	}
	ans := &soapAnswer{attachments: map[string][]byte{}}
	root := resp.body
	if mt == "multipart/related" {
		if root, err = readMultipart(resp.body, params, ans.attachments); err != nil {
			return nil, err
		}
	}
	env, err := parseXML(root)
	if err != nil {
		return nil, err
	}
	if !is(env, nsSOAP, "Envelope") {
		return nil, errors.New("epa: the answer is not a SOAP 1.2 envelope")
	}
	b := child(env, nsSOAP, "Body")
	if b == nil || len(b.ChildElements()) == 0 {
		return nil, errors.New("epa: the answer has an empty SOAP body")
	}
	ans.op = b.ChildElements()[0]
	if is(ans.op, nsSOAP, "Fault") {
		return nil, &SOAPFaultError{
			Code:   text(child(child(ans.op, nsSOAP, "Code"), nsSOAP, "Value")),
			Reason: text(child(child(ans.op, nsSOAP, "Reason"), nsSOAP, "Text")),
		}
	}
	if resp.status != http.StatusOK {
		return nil, &APIError{StatusCode: resp.status}
	}
	return ans, nil
}

// mtom packs the envelope and the parts as multipart/related (MTOM/XOP).
func (c *Client) mtom(envelope []byte, action string, parts []part) ([]byte, string, error) {
	var b [12]byte
	if _, err := io.ReadFull(c.random(), b[:]); err != nil {
		return nil, "", errors.New("epa: no randomness for a MIME boundary")
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.SetBoundary("MIMEBoundary_" + hex.EncodeToString(b[:])); err != nil {
		return nil, "", fmt.Errorf("epa: %w", err)
	}
	const rootID = "root.message@redclone"
	root, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {`application/xop+xml; charset=UTF-8; type="application/soap+xml; action=\"` + action + `\""`},
		"Content-Transfer-Encoding": {"binary"},
		"Content-Id":                {"<" + rootID + ">"},
	})
	if err != nil {
		return nil, "", fmt.Errorf("epa: %w", err)
	}
	_, _ = root.Write(envelope)
	for _, p := range parts {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.mimeType},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Id":                {"<" + p.id + ">"},
		})
		if err != nil {
			return nil, "", fmt.Errorf("epa: %w", err)
		}
		_, _ = w.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("epa: %w", err)
	}
	ct := mime.FormatMediaType("multipart/related", map[string]string{
		"type":       "application/xop+xml",
		"boundary":   mw.Boundary(),
		"start":      "<" + rootID + ">",
		"start-info": `application/soap+xml; action="` + action + `"`,
	})
	return buf.Bytes(), ct, nil
}

// readMultipart splits an MTOM answer into its root part and attachments.
func readMultipart(body []byte, params map[string]string, attachments map[string][]byte) ([]byte, error) {
	if params["boundary"] == "" {
		return nil, errors.New("epa: the multipart answer has no boundary")
	}
	start := strings.Trim(params["start"], "<>")
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var root []byte
	first := true
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("epa: the multipart answer is malformed")
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, errors.New("epa: the multipart answer is malformed")
		}
		if strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")), "base64") {
			if data, err = decodeBase64(string(data)); err != nil {
				return nil, errors.New("epa: a base64 MIME part of the answer is malformed")
			}
		}
		id := strings.Trim(strings.TrimSpace(p.Header.Get("Content-ID")), "<>")
		if (start != "" && id == start) || (start == "" && first) {
			root = data
		} else {
			attachments[id] = data
		}
		first = false
	}
	if root == nil {
		return nil, errors.New("epa: the multipart answer has no root part")
	}
	return root, nil
}

// documentContent reads an xds:Document: an xop:Include naming an attachment, or base64 text.
func documentContent(doc *etree.Element, attachments map[string][]byte) ([]byte, error) {
	if inc := child(doc, nsXOP, "Include"); inc != nil {
		cid, ok := strings.CutPrefix(inc.SelectAttrValue("href", ""), "cid:")
		if ok {
			if d, found := attachments[cid]; found {
				return d, nil
			}
			if u, err := url.PathUnescape(cid); err == nil {
				if d, found := attachments[u]; found {
					return d, nil
				}
			}
		}
		return nil, errors.New("epa: the answer references a document part it does not contain")
	}
	data, err := decodeBase64(doc.Text())
	if err != nil {
		return nil, errors.New("epa: the answer's document is not valid base64")
	}
	return data, nil
}

func decodeBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(clean)
}

// envelopeLimits bound what an envelope may cost to read: ebRIM nests about ten levels deep.
var envelopeLimits = fhir.Limits{MaxDepth: 64, MaxElements: 1_000_000}

// parseXML reads one XML document within envelopeLimits, refusing DOCTYPE and entity
// declarations (fhir.ReadXML).
func parseXML(data []byte) (*etree.Element, error) {
	root, err := fhir.ReadXML(data, envelopeLimits)
	if err != nil {
		return nil, errors.New("epa: the answer cannot be read: " + err.Error())
	}
	return root, nil
}

func is(e *etree.Element, ns, local string) bool {
	return e != nil && e.Tag == local && e.NamespaceURI() == ns
}

func children(e *etree.Element, ns, local string) []*etree.Element {
	if e == nil {
		return nil
	}
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

func child(e *etree.Element, ns, local string) *etree.Element {
	if cs := children(e, ns, local); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

func text(e *etree.Element) string {
	if e == nil {
		return ""
	}
	return strings.TrimSpace(e.Text())
}

package epasim

import (
	"bytes"
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
	nsXDR   = "urn:ihe:iti:xdr:2014"
	nsLCM   = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
	nsRIM   = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
	nsRS    = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
	nsQuery = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
	nsXOP   = "http://www.w3.org/2004/08/xop/include"
)

// WS-Addressing actions of the three transactions and their responses.
const (
	actionITI41         = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
	actionITI41Response = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
	actionITI18         = "urn:ihe:iti:2007:RegistryStoredQuery"
	actionITI18Response = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
	actionITI43         = "urn:ihe:iti:2007:RetrieveDocumentSet"
	actionITI43Response = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
)

// envelopeLimits bound what an envelope may cost to read: ebRIM nests about ten levels deep.
var envelopeLimits = fhir.Limits{MaxDepth: 64, MaxElements: 500_000}

// parseXML reads one XML document within envelopeLimits, refusing DOCTYPE and entity
// declarations (fhir.ReadXML).
func parseXML(data []byte) (*etree.Element, error) {
	root, err := fhir.ReadXML(data, envelopeLimits)
	if err != nil {
		return nil, errors.New("" + err.Error())
	}
	return root, nil
}

// is tells whether e is the element local in namespace ns.
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

// soapRequest is a received envelope with its MTOM attachments.
type soapRequest struct {
	header      *etree.Element
	op          *etree.Element // the first element of the Body
	messageID   string
	attachments map[string][]byte // by Content-ID without angle brackets
	mtom        bool
}

// readSOAP reads the envelope from an application/soap+xml body or from the root part of an
// MTOM/XOP package.
func readSOAP(r *http.Request, limit int64) (*soapRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("the request is larger than %d bytes", limit)
		}
		return nil, errors.New("the request body could not be read")
	}
	req := &soapRequest{attachments: map[string][]byte{}}
	envelope := body
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/related" {
		req.mtom = true
		envelope, err = readMultipart(body, params, req.attachments)
		if err != nil {
			return nil, err
		}
	}
	env, err := parseXML(envelope)
	if err != nil {
		return nil, err
	}
	if !is(env, nsSOAP, "Envelope") {
		return nil, errors.New("the body is not a SOAP 1.2 envelope")
	}
	req.header = child(env, nsSOAP, "Header")
	b := child(env, nsSOAP, "Body")
	if b == nil || len(b.ChildElements()) == 0 {
		return nil, errors.New("the SOAP envelope has an empty body")
	}
	req.op = b.ChildElements()[0]
	req.messageID = text(child(req.header, nsWSA, "MessageID"))
	return req, nil
}

// readMultipart splits an MTOM package: it returns the root part (the one named by start, or the
// first) and fills attachments with the others.
func readMultipart(body []byte, params map[string]string, attachments map[string][]byte) ([]byte, error) {
	boundary := params["boundary"]
	if boundary == "" {
		return nil, errors.New("the multipart/related body has no boundary")
	}
	start := strings.Trim(params["start"], "<>")
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var root []byte
	first := true
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("the multipart/related body is malformed")
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, errors.New("the multipart/related body is malformed")
		}
		if strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")), "base64") {
			if data, err = decodeBase64(string(data)); err != nil {
				return nil, errors.New("a base64 MIME part is malformed")
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
		return nil, errors.New("the multipart/related body has no root part")
	}
	return root, nil
}

// content reads the content of an xds:Document (or xds:Document of a response): an xop:Include
// naming an attachment, or base64 text. ok is false when an include names no attachment.
func content(doc *etree.Element, attachments map[string][]byte) (data []byte, ok bool, err error) {
	if inc := child(doc, nsXOP, "Include"); inc != nil {
		href := inc.SelectAttrValue("href", "")
		cid, found := strings.CutPrefix(href, "cid:")
		if !found {
			return nil, false, nil
		}
		if d, ok := attachments[cid]; ok {
			return d, true, nil
		}
		if unescaped, err := url.PathUnescape(cid); err == nil {
			if d, ok := attachments[unescaped]; ok {
				return d, true, nil
			}
		}
		return nil, false, nil
	}
	data, err = decodeBase64(doc.Text())
	return data, true, err
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

// attachment is a document sent as an MTOM part.
type attachment struct {
	id       string
	mimeType string
	data     []byte
}

// soapResponse is an answer envelope.
type soapResponse struct {
	action string
	body   *etree.Element
	parts  []attachment
	mtom   bool
}

// writeSOAP sends the answer envelope as application/soap+xml, or as MTOM/XOP with the parts when
// resp.mtom is set.
func (s *Simulator) writeSOAP(w http.ResponseWriter, req *soapRequest, resp soapResponse) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", nsSOAP)
	env.CreateAttr("xmlns:wsa", nsWSA)
	hdr := env.CreateElement("soap:Header")
	hdr.CreateElement("wsa:Action").SetText(resp.action)
	if id, err := s.newUUID(); err == nil {
		hdr.CreateElement("wsa:MessageID").SetText(id)
	}
	hdr.CreateElement("wsa:To").SetText("http://www.w3.org/2005/08/addressing/anonymous")
	if req != nil && req.messageID != "" {
		hdr.CreateElement("wsa:RelatesTo").SetText(req.messageID)
	}
	env.CreateElement("soap:Body").AddChild(resp.body)
	envelope, err := doc.WriteToBytes()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	soapType := `application/soap+xml; charset=UTF-8; action="` + resp.action + `"`
	if !resp.mtom {
		w.Header().Set("Content-Type", soapType)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(envelope)
		return
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	const rootID = "root.message@epasim"
	root, _ := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {`application/xop+xml; charset=UTF-8; type="application/soap+xml"`},
		"Content-Transfer-Encoding": {"binary"},
		"Content-Id":                {"<" + rootID + ">"},
	})
	_, _ = root.Write(envelope)
	for _, a := range resp.parts {
		p, _ := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {a.mimeType},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Id":                {"<" + a.id + ">"},
		})
		_, _ = p.Write(a.data)
	}
	_ = mw.Close()
	w.Header().Set("Content-Type", mime.FormatMediaType("multipart/related", map[string]string{
		"type":       "application/xop+xml",
		"boundary":   mw.Boundary(),
		"start":      "<" + rootID + ">",
		"start-info": "application/soap+xml",
	}))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// writeFault answers a SOAP 1.2 Fault: code Sender with HTTP 400, Receiver with HTTP 500.
func (s *Simulator) writeFault(w http.ResponseWriter, sender bool, reason string) {
	code, status := "soap:Receiver", http.StatusInternalServerError
	if sender {
		code, status = "soap:Sender", http.StatusBadRequest
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", nsSOAP)
	f := env.CreateElement("soap:Body").CreateElement("soap:Fault")
	f.CreateElement("soap:Code").CreateElement("soap:Value").SetText(code)
	t := f.CreateElement("soap:Reason").CreateElement("soap:Text")
	t.CreateAttr("xml:lang", "en")
	t.SetText(reason)
	out, _ := doc.WriteToBytes()
	w.Header().Set("Content-Type", "application/soap+xml; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// contentID makes a Content-ID for an attachment.
func (s *Simulator) contentID() string {
	var b [12]byte
	_, _ = io.ReadFull(s.random, b[:])
	return hex.EncodeToString(b[:]) + "@urn:ihe:iti:xds-b:2007"
}

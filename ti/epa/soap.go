package epa

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/epa/xds"
	"github.com/redclone/red/ti/wire"
)

// requestNamespaces are declared on every request envelope with these prefixes.
var requestNamespaces = []wire.Namespace{
	{Prefix: "wsa", URI: xds.NSWSA}, {Prefix: "xds", URI: xds.NSXDS}, {Prefix: "lcm", URI: xds.NSLCM},
	{Prefix: "rim", URI: xds.NSRIM}, {Prefix: "rs", URI: xds.NSRS}, {Prefix: "query", URI: xds.NSQuery},
}

// newEnvelope starts a SOAP 1.2 request envelope with the WS-Addressing header for action and
// every namespace prefix the XDS bodies use declared on the root.
func (c *Client) newEnvelope(action string) (*etree.Document, *etree.Element, error) {
	msgID, err := newUUID(c.random())
	if err != nil {
		return nil, nil, err
	}
	doc, env := wire.NewEnvelope(wire.NSSOAP12, requestNamespaces...)
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

// soapAnswer is the body element of an answer envelope and the answer's attachments.
type soapAnswer struct {
	op          *etree.Element
	attachments map[string][]byte
}

// call posts the envelope to the document service, as MTOM/XOP with the parts when mtom is set
// (ITI-41 and ITI-43, so the repository answers ITI-43 with MTOM too), and reads the answer: a
// JSON error becomes *APIError, a SOAP Fault *SOAPFaultError.
func (c *Client) call(ctx context.Context, kvnr, action string, doc *etree.Document, mtom bool, parts ...wire.Part) (*soapAnswer, error) {
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
	ans := &soapAnswer{}
	root := resp.body
	if mt == "multipart/related" {
		if root, ans.attachments, err = wire.UnpackMTOM(resp.body, params); err != nil {
			return nil, errors.New("epa: the answer: " + err.Error())
		}
	}
	top, err := wire.ReadXML(root)
	if err != nil {
		return nil, errors.New("epa: the answer cannot be read: " + err.Error())
	}
	env, err := wire.OpenEnvelope(top, wire.NSSOAP12)
	if err != nil {
		return nil, errors.New("epa: the answer: " + err.Error())
	}
	ans.op = env.Payload
	if f, ok := wire.ReadFault(ans.op); ok {
		return nil, &SOAPFaultError{Code: f.Code, Reason: f.Reason}
	}
	if resp.status != http.StatusOK {
		return nil, &APIError{StatusCode: resp.status}
	}
	return ans, nil
}

// mtom packs the envelope and the parts as multipart/related (MTOM/XOP).
func (c *Client) mtom(envelope []byte, action string, parts []wire.Part) ([]byte, string, error) {
	var b [12]byte
	if _, err := io.ReadFull(c.random(), b[:]); err != nil {
		return nil, "", errors.New("epa: no randomness for a MIME boundary")
	}
	m := wire.MTOM{RootID: "root.message@redclone", Action: action, Boundary: "MIMEBoundary_" + hex.EncodeToString(b[:])}
	body, ct, err := m.Pack(envelope, parts)
	if err != nil {
		return nil, "", fmt.Errorf("epa: %w", err)
	}
	return body, ct, nil
}

// documentContent reads an xds:Document: an xop:Include naming an attachment, or base64 text.
func documentContent(doc *etree.Element, attachments map[string][]byte) ([]byte, error) {
	data, found, err := wire.Content(doc, attachments)
	switch {
	case !found:
		return nil, errors.New("epa: the answer references a document part it does not contain")
	case err != nil:
		return nil, errors.New("epa: the answer's document is not valid base64")
	}
	return data, nil
}

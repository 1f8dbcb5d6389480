package epasim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/epa/xds"
	"github.com/redclone/red/ti/wire"
)

// nsXDR is the namespace of the home community block in the header of XDR requests.
const nsXDR = "urn:ihe:iti:xdr:2014"

// WS-Addressing actions of the answers to the three transactions.
const (
	actionITI41Response = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
	actionITI18Response = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
	actionITI43Response = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
)

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
	req := &soapRequest{}
	envelope := body
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/related" {
		req.mtom = true
		if envelope, req.attachments, err = wire.UnpackMTOM(body, params); err != nil {
			return nil, err
		}
	}
	root, err := wire.ReadXML(envelope)
	if err != nil {
		return nil, err
	}
	env, err := wire.OpenEnvelope(root, wire.NSSOAP12)
	if err != nil {
		return nil, err
	}
	req.header, req.op = env.Header, env.Payload
	req.messageID = wire.Text(wire.Child(req.header, xds.NSWSA, "MessageID"))
	return req, nil
}

// soapResponse is an answer envelope.
type soapResponse struct {
	action string
	body   *etree.Element
	parts  []wire.Part
	mtom   bool
}

// writeSOAP sends the answer envelope as application/soap+xml, or as MTOM/XOP with the parts when
// resp.mtom is set.
func (s *Simulator) writeSOAP(w http.ResponseWriter, req *soapRequest, resp soapResponse) {
	doc, env := wire.NewEnvelope(wire.NSSOAP12, wire.Namespace{Prefix: "wsa", URI: xds.NSWSA})
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
	body, err := doc.WriteToBytes()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	contentType := `application/soap+xml; charset=UTF-8; action="` + resp.action + `"`
	if resp.mtom {
		if body, contentType, err = (wire.MTOM{RootID: "root.message@epasim"}).Pack(body, resp.parts); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeFault answers a SOAP 1.2 Fault: code Sender with HTTP 400, Receiver with HTTP 500.
func (s *Simulator) writeFault(w http.ResponseWriter, sender bool, reason string) {
	status := http.StatusInternalServerError
	if sender {
		status = http.StatusBadRequest
	}
	doc, _ := wire.NewFault(wire.NSSOAP12, sender, reason)
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

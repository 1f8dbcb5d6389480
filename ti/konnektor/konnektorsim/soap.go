package konnektorsim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/redclone/red/internal/guard"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/wire"
)

// maxRequestBytes bounds a SOAP request (batches of prescriptions are a few MB at most).
const maxRequestBytes = 64 << 20

// soapRequest is a parsed SOAP call.
type soapRequest struct {
	op  *etree.Element // the operation element in the body
	ns  string         // its namespace
	ctx konnektor.Context
}

// operation is one SOAP operation of the simulator.
type operation struct {
	path    string   // endpoint it is served on
	ns      []string // namespaces the request element may have
	context bool     // the request carries a Context
	handle  func(*Simulator, *soapRequest) (*response, error)
}

var operations = map[string]operation{
	"GetCards":                   {pathEvent, []string{konnektor.NSEventService}, true, (*Simulator).getCards},
	"GetCardTerminals":           {pathEvent, []string{konnektor.NSEventService}, true, (*Simulator).getCardTerminals},
	"GetPinStatus":               {pathCard, []string{konnektor.NSCardService}, true, (*Simulator).getPinStatus},
	"VerifyPin":                  {pathCard, []string{konnektor.NSCardService}, true, (*Simulator).verifyPin},
	"ChangePin":                  {pathCard, []string{konnektor.NSCardService}, true, (*Simulator).changePin},
	"UnblockPin":                 {pathCard, []string{konnektor.NSCardService}, true, (*Simulator).unblockPin},
	"SignDocument":               {pathSignature, []string{konnektor.NSSignatureService75, konnektor.NSSignatureService74}, true, (*Simulator).signDocument},
	"VerifyDocument":             {pathSignature, []string{konnektor.NSSignatureService75, konnektor.NSSignatureService74}, true, (*Simulator).verifyDocument},
	"ActivateComfortSignature":   {pathSignature, []string{konnektor.NSSignatureService75}, true, (*Simulator).activateComfortSignature},
	"DeactivateComfortSignature": {pathSignature, []string{konnektor.NSSignatureService75}, false, (*Simulator).deactivateComfortSignature},
	"GetSignatureMode":           {pathSignature, []string{konnektor.NSSignatureService75}, true, (*Simulator).getSignatureMode},
	"ExternalAuthenticate":       {pathAuthSignature, []string{konnektor.NSSignatureService74}, true, (*Simulator).externalAuthenticate},
	"ReadCardCertificate":        {pathCertificate, []string{konnektor.NSCertificateService}, true, (*Simulator).readCardCertificate},
	"VerifyCertificate":          {pathCertificate, []string{konnektor.NSCertificateService}, true, (*Simulator).verifyCertificate},
	"ReadVSD":                    {pathVSD, []string{konnektor.NSVSDService}, true, (*Simulator).readVSD},
}

// fault is a gematik error answered as SOAP fault.
type fault struct {
	code   int
	detail string
	client bool // caused by the request (soap:Client)
}

func (f *fault) Error() string { return fmt.Sprintf("%d %s: %s", f.code, errorTexts[f.code], f.detail) }

func faultf(code int, format string, a ...any) *fault {
	return &fault{code: code, detail: fmt.Sprintf(format, a...)}
}

func syntaxf(format string, a ...any) *fault {
	return &fault{code: konnektor.CodeSyntax, detail: fmt.Sprintf(format, a...), client: true}
}

// errorTexts are the ErrorText of each code.
var errorTexts = map[int]string{
	konnektor.CodeSyntax:           "Syntaxfehler",
	konnektor.CodeInternal:         "Interner Fehler",
	konnektor.CodePinTimeout:       "Timeout bei der PIN-Eingabe",
	konnektor.CodeUserCancelled:    "Abbruch durch den Benutzer",
	konnektor.CodeWrongCardType:    "Karte ist nicht vom erwarteten Typ",
	konnektor.CodeResourceInUse:    "Ressource belegt",
	konnektor.CodePinBlocked:       "PIN bereits gesperrt (BLOCKED)",
	konnektor.CodeTransportPin:     "PIN ist transportgeschützt, Änderung erforderlich",
	konnektor.CodeInvalidPinRef:    "Ungültige PIN-Referenz PinRef",
	konnektor.CodeAccessDenied:     "Zugriffsbedingungen nicht erfüllt",
	konnektor.CodeInvalidHandle:    "Kartenhandle ungültig",
	konnektor.CodeBadDocument:      "ungültiges Dokumentformat",
	konnektor.CodeBadSignatureType: "ungültiger Signaturtyp oder Signaturvariante",
	konnektor.CodeNoSignatureCard:  "Kartentyp nicht zulässig für Signatur",
	konnektor.CodeNoCertificate:    "Zertifikat nicht vorhanden",
	konnektor.CodeComfortDisabled:  "Komfortsignatur ist nicht freigeschaltet",
	konnektor.CodeComfortCount:     "Der Komfortsignatur-Zähler hat den Wert SAK_COMFORT_SIGNATURE_MAX erreicht",
	konnektor.CodeComfortTimer:     "Die Zeit SAK_COMFORT_SIGNATURE_TIMER der Komfortsignatur ist abgelaufen",
}

// errorTypes are Security where the gematik tables say so; the rest is Technical.
var errorTypes = map[int]string{
	konnektor.CodePinBlocked:      "Security",
	konnektor.CodeAccessDenied:    "Security",
	konnektor.CodeNoSignatureCard: "Security",
	konnektor.CodeComfortCount:    "Security",
	konnektor.CodeComfortTimer:    "Security",
}

// warnings are codes with severity Warning.
var warnings = map[int]bool{konnektor.CodePinTimeout: true, konnektor.CodeTransportPin: true}

// serveSOAP parses the envelope, dispatches and answers.
func (s *Simulator) serveSOAP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if guard.BodyBroken(err) { // the client went away or was too slow: no fault of the Konnektor
		s.writeFaultStatus(w, http.StatusBadRequest, syntaxf("the request body ended before its end or arrived too slowly"))
		return
	}
	if err != nil {
		s.writeFault(w, syntaxf("request body: %v", err))
		return
	}
	req, name, err := parseRequest(body)
	if err != nil {
		s.writeFault(w, syntaxf("%v", err))
		return
	}
	op, ok := operations[name]
	if !ok || op.path != r.URL.Path {
		s.writeFault(w, syntaxf("operation %s is not offered at %s", name, r.URL.Path))
		return
	}
	if !contains(op.ns, req.ns) {
		s.writeFault(w, syntaxf("%s in namespace %q; expected %s", name, req.ns, strings.Join(op.ns, " or ")))
		return
	}
	if op.context {
		if err := parseContext(req); err != nil {
			s.writeFault(w, err)
			return
		}
	}
	s.mu.Lock()
	resp, err := op.handle(s, req)
	s.mu.Unlock()
	if err != nil {
		var f *fault
		if !errors.As(err, &f) {
			f = faultf(konnektor.CodeInternal, "%v", err)
		}
		s.writeFault(w, f)
		return
	}
	s.writeXML(w, http.StatusOK, resp.doc)
}

// parseRequest finds the operation element inside the envelope.
func parseRequest(body []byte) (*soapRequest, string, error) {
	root, err := wire.ReadXML(body)
	if err != nil {
		return nil, "", err
	}
	env, err := wire.OpenEnvelope(root, konnektor.NSSOAP)
	if err != nil {
		return nil, "", err
	}
	return &soapRequest{op: env.Payload, ns: env.Payload.NamespaceURI()}, env.Payload.Tag, nil
}

// parseContext reads and checks the Context of a request.
func parseContext(req *soapRequest) *fault {
	c := req.op.FindElement("Context")
	if c == nil {
		return syntaxf("Context missing")
	}
	req.ctx = konnektor.Context{
		MandantID:      wire.Text(c.FindElement("MandantId")),
		ClientSystemID: wire.Text(c.FindElement("ClientSystemId")),
		WorkplaceID:    wire.Text(c.FindElement("WorkplaceId")),
		UserID:         wire.Text(c.FindElement("UserId")),
	}
	if req.ctx.MandantID == "" || req.ctx.ClientSystemID == "" || req.ctx.WorkplaceID == "" {
		return syntaxf("Context needs MandantId, ClientSystemId and WorkplaceId")
	}
	if len(req.ctx.WorkplaceID) > 64 {
		return syntaxf("WorkplaceId longer than 64 characters")
	}
	return nil
}

// cardArg resolves the card named by the child element local of the request.
func (s *Simulator) cardArg(req *soapRequest, local string) (*card, error) {
	h := wire.Text(req.op.FindElement(local))
	if h == "" {
		return nil, syntaxf("%s missing", local)
	}
	c, ok := s.handles[h]
	if !ok {
		return nil, faultf(konnektor.CodeInvalidHandle, "%s %q ist keiner gesteckten Karte zugeordnet", local, h)
	}
	return c, nil
}

// response is a SOAP response under construction.
type response struct {
	doc *etree.Document
	op  *etree.Element
}

// responseNamespaces are declared on every response envelope with the prefixes used below.
var responseNamespaces = []wire.Namespace{
	{Prefix: "CONN", URI: konnektor.NSConnectorCommon},
	{Prefix: "CARDCMN", URI: konnektor.NSCardServiceCommon},
	{Prefix: "CARD", URI: konnektor.NSCardService},
	{Prefix: "CT", URI: konnektor.NSCardTerminalInfo},
	{Prefix: "PI", URI: konnektor.NSProductInformation},
	{Prefix: "CERTCMN", URI: konnektor.NSCertificateCommon},
	{Prefix: "GERROR", URI: konnektor.NSError},
	{Prefix: "dss", URI: konnektor.NSDSS},
	{Prefix: "vr", URI: konnektor.NSVerificationReport},
	{Prefix: "xades", URI: konnektor.NSXAdES},
	{Prefix: "ds", URI: konnektor.NSXMLDSig},
}

// newResponse starts an envelope with the response element ns:name (prefix m).
func newResponse(ns, name string) *response {
	doc, op := wire.NewMessage(konnektor.NSSOAP, ns, name, responseNamespaces...)
	return &response{doc: doc, op: op}
}

// add appends a child with text.
func add(parent *etree.Element, name, value string) *etree.Element {
	e := parent.CreateElement(name)
	if value != "" {
		e.SetText(value)
	}
	return e
}

// addStatus appends CONN:Status with Result (and an Error for warnings).
func (s *Simulator) addStatus(parent *etree.Element, warning *fault) {
	st := parent.CreateElement("CONN:Status")
	if warning == nil {
		add(st, "CONN:Result", konnektor.ResultOK)
		return
	}
	add(st, "CONN:Result", konnektor.ResultWarning)
	s.addError(st, "CONN:Error", warning)
}

// addError appends a tel/error/v2.0 Error.
func (s *Simulator) addError(parent *etree.Element, name string, f *fault) {
	e := parent.CreateElement(name)
	add(e, "GERROR:MessageID", uuid.NewString())
	add(e, "GERROR:Timestamp", s.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	t := e.CreateElement("GERROR:Trace")
	add(t, "GERROR:EventID", uuid.NewString())
	add(t, "GERROR:Instance", "red-konnektorsim")
	add(t, "GERROR:LogReference", fmt.Sprintf("SIM-%d", f.code))
	add(t, "GERROR:CompType", "KON")
	add(t, "GERROR:Code", fmt.Sprint(f.code))
	severity := "Error"
	if warnings[f.code] {
		severity = "Warning"
	}
	add(t, "GERROR:Severity", severity)
	et := errorTypes[f.code]
	if et == "" {
		et = "Technical"
	}
	add(t, "GERROR:ErrorType", et)
	add(t, "GERROR:ErrorText", errorTexts[f.code])
	if f.detail != "" {
		d := add(t, "GERROR:Detail", f.detail)
		d.CreateAttr("Encoding", "UTF-8")
	}
}

// writeFault answers a SOAP fault with HTTP 500, as SOAP 1.1 wants.
func (s *Simulator) writeFault(w http.ResponseWriter, f *fault) {
	s.writeFaultStatus(w, http.StatusInternalServerError, f)
}

// writeFaultStatus answers a SOAP fault with another HTTP status, for requests refused before
// SOAP was spoken.
func (s *Simulator) writeFaultStatus(w http.ResponseWriter, status int, f *fault) {
	doc, fe := wire.NewFault(konnektor.NSSOAP, f.client, errorTexts[f.code], wire.Namespace{Prefix: "GERROR", URI: konnektor.NSError})
	s.addError(fe.CreateElement("detail"), "GERROR:Error", f)
	s.writeXML(w, status, doc)
}

func (s *Simulator) writeXML(w http.ResponseWriter, status int, doc *etree.Document) {
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// boolArg reads the optional xs:boolean at the path at below e.
func boolArg(e *etree.Element, at string, def bool) (bool, error) {
	switch wire.Text(e.FindElement(at)) {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, syntaxf("%s must be true or false", path.Base(at))
}

// xsDateTime formats an instant as the Konnektors do.
func xsDateTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

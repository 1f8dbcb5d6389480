package konnektorsim

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/redclone/red/ti/konnektor"
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
	doc, err := parseXML(body)
	if err != nil {
		return nil, "", err
	}
	env := doc.Root()
	if env.Tag != "Envelope" || env.NamespaceURI() != konnektor.NSSOAP {
		return nil, "", errors.New("not a SOAP 1.1 envelope")
	}
	b := child(env, "Body")
	if b == nil || len(b.ChildElements()) == 0 {
		return nil, "", errors.New("empty SOAP body")
	}
	op := b.ChildElements()[0]
	return &soapRequest{op: op, ns: op.NamespaceURI()}, op.Tag, nil
}

// parseContext reads and checks the Context of a request.
func parseContext(req *soapRequest) *fault {
	c := child(req.op, "Context")
	if c == nil {
		return syntaxf("Context missing")
	}
	req.ctx = konnektor.Context{
		MandantID:      text(child(c, "MandantId")),
		ClientSystemID: text(child(c, "ClientSystemId")),
		WorkplaceID:    text(child(c, "WorkplaceId")),
		UserID:         text(child(c, "UserId")),
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
	h := text(child(req.op, local))
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

// newResponse starts an envelope with the response element ns:name (prefix m); the other
// namespaces are declared on the envelope with the prefixes used below.
func newResponse(ns, name string) *response {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	for _, p := range [][2]string{
		{"soap", konnektor.NSSOAP},
		{"CONN", konnektor.NSConnectorCommon},
		{"CARDCMN", konnektor.NSCardServiceCommon},
		{"CARD", konnektor.NSCardService},
		{"CT", konnektor.NSCardTerminalInfo},
		{"PI", konnektor.NSProductInformation},
		{"CERTCMN", konnektor.NSCertificateCommon},
		{"GERROR", konnektor.NSError},
		{"dss", konnektor.NSDSS},
		{"vr", konnektor.NSVerificationReport},
		{"xades", konnektor.NSXAdES},
		{"ds", konnektor.NSXMLDSig},
	} {
		env.CreateAttr("xmlns:"+p[0], p[1])
	}
	body := env.CreateElement("soap:Body")
	op := body.CreateElement("m:" + name)
	op.CreateAttr("xmlns:m", ns)
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
	add(e, "GERROR:MessageID", newID())
	add(e, "GERROR:Timestamp", s.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	t := e.CreateElement("GERROR:Trace")
	add(t, "GERROR:EventID", newID())
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

func (s *Simulator) writeFault(w http.ResponseWriter, f *fault) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", konnektor.NSSOAP)
	env.CreateAttr("xmlns:GERROR", konnektor.NSError)
	fe := env.CreateElement("soap:Body").CreateElement("soap:Fault")
	code := "soap:Server"
	if f.client {
		code = "soap:Client"
	}
	add(fe, "faultcode", code)
	add(fe, "faultstring", errorTexts[f.code])
	s.addError(fe.CreateElement("detail"), "GERROR:Error", f)
	s.writeXML(w, http.StatusInternalServerError, doc)
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

// XML reading, by local name (vendors differ in prefixes).

func parseXML(data []byte) (*etree.Document, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = 128
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("not well-formed XML: %v", err)
	}
	for _, t := range doc.Child {
		if d, ok := t.(*etree.Directive); ok && strings.HasPrefix(strings.TrimSpace(d.Data), "DOCTYPE") {
			return nil, errors.New("DOCTYPE declarations are not accepted")
		}
	}
	if doc.Root() == nil {
		return nil, errors.New("no XML element")
	}
	return doc, nil
}

func child(e *etree.Element, local string) *etree.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

func childrenNamed(e *etree.Element, local string) []*etree.Element {
	if e == nil {
		return nil
	}
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if c.Tag == local {
			out = append(out, c)
		}
	}
	return out
}

func text(e *etree.Element) string {
	if e == nil {
		return ""
	}
	return strings.TrimSpace(e.Text())
}

func attr(e *etree.Element, name string) string {
	if e == nil {
		return ""
	}
	return e.SelectAttrValue(name, "")
}

// boolArg reads an optional xs:boolean child.
func boolArg(e *etree.Element, local string, def bool) (bool, error) {
	switch text(child(e, local)) {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, syntaxf("%s must be true or false", local)
}

// decodeBase64 decodes base64 that may be wrapped over lines.
func decodeBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(clean)
}

// xsDateTime formats an instant as the Konnektors do.
func xsDateTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

package wire

import (
	"errors"
	"fmt"

	"github.com/beevik/etree"
)

// The namespaces of the two SOAP versions: the Konnektor speaks 1.1, the ePA's XDS services 1.2.
const (
	NSSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NSSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
)

// Namespace is a prefix declared on an envelope.
type Namespace struct{ Prefix, URI string }

// NewEnvelope starts a UTF-8 document holding a soap:Envelope of the SOAP version whose
// namespace is soapNS, declaring soap and then decls in order. The caller adds soap:Header and
// soap:Body.
func NewEnvelope(soapNS string, decls ...Namespace) (*etree.Document, *etree.Element) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", soapNS)
	for _, d := range decls {
		env.CreateAttr("xmlns:"+d.Prefix, d.URI)
	}
	return doc, env
}

// NewMessage is an envelope (NewEnvelope) whose Body holds the element m:name in namespace ns,
// which it returns with the document.
func NewMessage(soapNS, ns, name string, decls ...Namespace) (*etree.Document, *etree.Element) {
	doc, env := NewEnvelope(soapNS, decls...)
	op := env.CreateElement("soap:Body").CreateElement("m:" + name)
	op.CreateAttr("xmlns:m", ns)
	return doc, op
}

// NewFault is an envelope whose Body holds a Fault of the SOAP version soapNS, caused by the
// sender (soap:Client in 1.1, soap:Sender in 1.2) or else by the receiver (soap:Server,
// soap:Receiver), with reason. It returns the document and the Fault, to which the caller may
// add a detail (1.1: detail, 1.2: soap:Detail).
func NewFault(soapNS string, sender bool, reason string, decls ...Namespace) (*etree.Document, *etree.Element) {
	doc, env := NewEnvelope(soapNS, decls...)
	f := env.CreateElement("soap:Body").CreateElement("soap:Fault")
	if soapNS == NSSOAP12 {
		code := "soap:Receiver"
		if sender {
			code = "soap:Sender"
		}
		f.CreateElement("soap:Code").CreateElement("soap:Value").SetText(code)
		t := f.CreateElement("soap:Reason").CreateElement("soap:Text")
		t.CreateAttr("xml:lang", "en")
		t.SetText(reason)
		return doc, f
	}
	code := "soap:Server"
	if sender {
		code = "soap:Client"
	}
	f.CreateElement("faultcode").SetText(code)
	f.CreateElement("faultstring").SetText(reason)
	return doc, f
}

// Envelope is a received SOAP envelope.
type Envelope struct {
	Version string         // the namespace of the Envelope element: NSSOAP11 or NSSOAP12 for SOAP
	Header  *etree.Element // nil without a header
	Payload *etree.Element // the first element in the Body
}

// Errors of OpenEnvelope.
var (
	ErrNotEnvelope = errors.New("not a SOAP envelope")
	ErrEmptyBody   = errors.New("empty SOAP body")
)

// OpenEnvelope finds the header and the payload of the envelope root, which must be of the SOAP
// version whose namespace is soapNS; "" takes any namespace (Konnektors differ). Header and Body
// are looked up in the Envelope's own namespace.
func OpenEnvelope(root *etree.Element, soapNS string) (Envelope, error) {
	if root == nil || root.Tag != "Envelope" {
		return Envelope{}, ErrNotEnvelope
	}
	env := Envelope{Version: root.NamespaceURI()}
	if soapNS != "" && env.Version != soapNS {
		version := map[string]string{NSSOAP11: "1.1", NSSOAP12: "1.2"}[soapNS]
		return Envelope{}, fmt.Errorf("%w: SOAP %s expected", ErrNotEnvelope, version)
	}
	env.Header = Child(root, env.Version, "Header")
	if body := Child(root, env.Version, "Body"); body != nil {
		if elems := body.ChildElements(); len(elems) > 0 {
			env.Payload = elems[0]
		}
	}
	if env.Payload == nil {
		return env, ErrEmptyBody
	}
	return env, nil
}

// Fault is a received SOAP fault.
type Fault struct {
	Code   string         // faultcode (1.1) or Code/Value (1.2), e.g. soap:Server
	Reason string         // faultstring (1.1) or Reason/Text (1.2)
	Detail *etree.Element // detail (1.1) or Detail (1.2); nil without
}

// ReadFault reads e as a SOAP fault: a Fault in the SOAP 1.2 namespace as 1.2, any other Fault
// as 1.1 (Konnektors differ in prefixes and namespaces). ok is false when e is no Fault.
func ReadFault(e *etree.Element) (f Fault, ok bool) {
	if e == nil || e.Tag != "Fault" {
		return Fault{}, false
	}
	if e.NamespaceURI() == NSSOAP12 {
		return Fault{Code: Text(e.FindElement("Code/Value")), Reason: Text(e.FindElement("Reason/Text")), Detail: e.FindElement("Detail")}, true
	}
	return Fault{Code: Text(e.FindElement("faultcode")), Reason: Text(e.FindElement("faultstring")), Detail: e.FindElement("detail")}, true
}

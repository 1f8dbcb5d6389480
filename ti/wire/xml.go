// Package wire is what the TI clients and simulators (konnektor, epa and their simulators,
// fachdienstsim, simpki) share on the wire and on disk: reading XML within one set of limits,
// SOAP 1.1 and 1.2 envelopes and faults, MTOM/XOP packages, the ISO-8859-15 of the VSD
// documents and the atomic replacement of state files.
//
// Elements are found with etree's own paths (FindElement, FindElements); the helpers here are
// for what paths do not do: namespace-qualified lookups (Child, Children, Is) and the trimmed
// text of an element that may be missing (Text).
package wire

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/beevik/etree"
	"golang.org/x/text/encoding/charmap"

	"github.com/redclone/red/fhir"
)

// limits bound what one message may cost to read: SOAP bodies nest a few dozen levels at most
// (ebRIM about ten, verification reports about fifteen). The size of a message is bounded where
// it is received.
var limits = fhir.Limits{MaxDepth: 64, MaxElements: 1_000_000}

// ReadXML reads one XML document within the TI limits with fhir.ReadXML, refusing DOCTYPE and
// entity declarations, and returns its root element. A document declared in ISO-8859-15 or
// ISO-8859-1 (VSD documents) is decoded first; other charsets than these and UTF-8 are refused.
func ReadXML(data []byte) (*etree.Element, error) {
	data, err := utf8Document(data)
	if err != nil {
		return nil, err
	}
	return fhir.ReadXML(data, limits)
}

// declaredEncoding finds the encoding of an XML declaration.
var declaredEncoding = regexp.MustCompile(`^<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']`)

// charsets are the single-byte charsets TI documents are declared in besides UTF-8; nil needs
// no decoding.
var charsets = map[string]*charmap.Charmap{
	"utf8":        nil,
	"iso-8859-15": charmap.ISO8859_15, "iso8859-15": charmap.ISO8859_15, "latin-9": charmap.ISO8859_15, "latin9": charmap.ISO8859_15,
	"iso-8859-1": charmap.ISO8859_1, "iso8859-1": charmap.ISO8859_1, "latin-1": charmap.ISO8859_1, "latin1": charmap.ISO8859_1,
}

// utf8Document turns a document declared in one of the charsets into UTF-8 without its XML
// declaration, whose encoding would no longer hold.
func utf8Document(data []byte) ([]byte, error) {
	m := declaredEncoding.FindSubmatch(data)
	if m == nil || strings.EqualFold(string(m[1]), "utf-8") {
		return data, nil
	}
	cm, ok := charsets[strings.ToLower(string(m[1]))]
	if !ok {
		return nil, fmt.Errorf("the charset %q is not supported", m[1])
	}
	rest := data[bytes.Index(data, []byte("?>"))+2:]
	if cm == nil {
		return rest, nil
	}
	return cm.NewDecoder().Bytes(rest)
}

// EncodeLatin9 converts s to ISO-8859-15, the charset of the VSD documents; a character it
// cannot hold is an error naming the character.
func EncodeLatin9(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		b, ok := charmap.ISO8859_15.EncodeRune(r)
		if !ok {
			return nil, fmt.Errorf("character %q has no ISO-8859-15 code", r)
		}
		out = append(out, b)
	}
	return out, nil
}

// Text is the trimmed text of e, "" for nil.
func Text(e *etree.Element) string {
	if e == nil {
		return ""
	}
	return strings.TrimSpace(e.Text())
}

// Is tells whether e is the element local in namespace ns.
func Is(e *etree.Element, ns, local string) bool {
	return e != nil && e.Tag == local && e.NamespaceURI() == ns
}

// Children are the child elements of e that are local in namespace ns (none for a nil e).
func Children(e *etree.Element, ns, local string) []*etree.Element {
	if e == nil {
		return nil
	}
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if Is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// Child is the first of Children, or nil.
func Child(e *etree.Element, ns, local string) *etree.Element {
	if cs := Children(e, ns, local); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

// DecodeBase64 decodes standard base64 that may be wrapped over lines.
func DecodeBase64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
}

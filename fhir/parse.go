package fhir

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/beevik/etree"
)

// Namespace is the FHIR XML namespace.
const Namespace = "http://hl7.org/fhir"

// XHTMLNamespace is the namespace of narrative divs.
const XHTMLNamespace = "http://www.w3.org/1999/xhtml"

// Limits bound what a request body may cost to parse.
type Limits struct {
	MaxBytes    int64 // body size (documents carry base64 PDFs)
	MaxDepth    int   // element nesting
	MaxElements int   // elements in all
}

// DefaultLimits are generous for real bundles and stop pathological ones.
var DefaultLimits = Limits{MaxBytes: 32 << 20, MaxDepth: 64, MaxElements: 1_000_000}

// Parse reads one XML document, refusing DOCTYPE and entity declarations and anything beyond
// lim, and returns its root element with FHIR-namespace prefixes normalised away and
// whitespace-only text between elements removed (narrative XHTML is kept as it was). The tree is
// built in the same single pass that checks the limits.
func Parse(data []byte, lim Limits) (*etree.Element, error) {
	root, err := ReadXML(data, lim)
	if err != nil {
		return nil, err
	}
	if ns := root.NamespaceURI(); ns != "" && ns != Namespace {
		return nil, Fail(CodeStructure, root.Tag, "the root element is in namespace %q; FHIR XML uses %q", ns, Namespace)
	}
	normalize(root)
	return root, nil
}

// ReadXML reads any XML document (a SOAP envelope, say) within lim, refusing DOCTYPE and entity
// declarations, and returns its root as written: no namespace check, nothing normalised.
func ReadXML(data []byte, lim Limits) (*etree.Element, error) {
	if lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes {
		return nil, Fail(CodeTooCostly, "", "the body has %d bytes; at most %d are accepted", len(data), lim.MaxBytes)
	}
	return build(data, lim)
}

// build turns the token stream into an etree tree, checking well-formedness (with line numbers),
// DOCTYPE, depth and element count as it goes.
func build(data []byte, lim Limits) (*etree.Element, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var (
		root  *etree.Element
		stack []*etree.Element
		count int
	)
	malformed := func(msg string) error {
		line, _ := dec.InputPos()
		return Fail(CodeStructure, "", "the body is not well-formed XML: line %d: %s", line, msg)
	}
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			switch {
			case root == nil:
				return nil, Fail(CodeStructure, "", "the body holds no XML element")
			case len(stack) > 0:
				return nil, malformed("unexpected end of input inside <" + stack[len(stack)-1].FullTag() + ">")
			}
			return root, nil
		}
		if err != nil {
			return nil, Fail(CodeStructure, "", "the body is not well-formed XML: %s", xmlReason(err))
		}
		switch t := tok.(type) {
		case xml.Directive:
			kind := strings.Fields(string(t))
			name := "directive"
			if len(kind) > 0 {
				name = kind[0]
			}
			return nil, Fail(CodeSecurity, "", "XML %s declarations are not accepted", name)
		case xml.StartElement:
			count++
			if lim.MaxDepth > 0 && len(stack) >= lim.MaxDepth {
				return nil, Fail(CodeTooCostly, "", "elements are nested more than %d levels deep", lim.MaxDepth)
			}
			if lim.MaxElements > 0 && count > lim.MaxElements {
				return nil, Fail(CodeTooCostly, "", "the body has more than %d elements", lim.MaxElements)
			}
			var e *etree.Element
			switch {
			case len(stack) > 0:
				e = stack[len(stack)-1].CreateElement(rawName(t.Name))
			case root == nil:
				e = etree.NewElement(rawName(t.Name))
				root = e
			default:
				return nil, malformed("a second root element")
			}
			for _, a := range t.Attr {
				e.CreateAttr(rawName(a.Name), a.Value)
			}
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].FullTag() != rawName(t.Name) {
				return nil, malformed("unexpected end element </" + rawName(t.Name) + ">")
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].CreateText(string(t))
			} else if len(bytes.TrimSpace(t)) > 0 {
				if root == nil {
					return nil, Fail(CodeStructure, "", "the body holds no XML element")
				}
				return nil, malformed("text outside the root element")
			}
		}
	}
}

func rawName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// xmlReason keeps the decoder's message (line number and what was wrong) without input text.
func xmlReason(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("line %d: %s", se.Line, se.Msg)
	}
	return "malformed input"
}

// normalize drops prefixes and declarations bound to the FHIR namespace (the writer declares it
// once on the root), comments, and whitespace-only text outside narrative.
func normalize(e *etree.Element) {
	ns := e.NamespaceURI()
	if ns == XHTMLNamespace {
		return
	}
	for i := len(e.Child) - 1; i >= 0; i-- {
		switch c := e.Child[i].(type) {
		case *etree.CharData:
			if strings.TrimSpace(c.Data) == "" {
				e.RemoveChildAt(i)
			}
		case *etree.Element:
			normalize(c)
		case *etree.Comment, *etree.ProcInst:
			e.RemoveChildAt(i)
		}
	}
	if ns == Namespace {
		e.Space = ""
	}
	attrs := e.Attr[:0]
	for _, a := range e.Attr {
		if (a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")) && a.Value == Namespace {
			continue
		}
		attrs = append(attrs, a)
	}
	e.Attr = attrs
}

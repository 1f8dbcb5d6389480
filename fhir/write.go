package fhir

import (
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// The writer below produces the bytes etree's Document.WriteTo would write for a copy of the tree
// (indented by indent where asked), without the copy, the indentation tokens or a second tree:
// answers are written straight from the tree the use case built. Text and attribute values that
// need escaping (or hold characters XML cannot carry) are written by etree itself, so the two
// cannot drift apart; plain ones, the common case, are copied as they are.

// declaration opens every document red answers with.
const declaration = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// writeSettings are etree's defaults, which Document.WriteTo uses.
var writeSettings = etree.WriteSettings{}

// xmlBuffer collects the output; it is an etree.Writer for the tokens etree writes itself.
type xmlBuffer struct{ b []byte }

func (w *xmlBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func (w *xmlBuffer) WriteByte(c byte) error { w.b = append(w.b, c); return nil }

func (w *xmlBuffer) WriteString(s string) (int, error) { w.b = append(w.b, s...); return len(s), nil }

// xmlWriter writes one tree.
type xmlWriter struct {
	xmlBuffer
	// open are the elements being written, outermost first: the scope in which a prefixed
	// element's namespace is looked up, as etree's NamespaceURI does on a copy of the tree.
	open []*etree.Element
}

// writeXML writes e (declaring FHIR's namespace on it when addNS), indented as indent does with
// depth 1 when indented, else compact.
func writeXML(b []byte, e *etree.Element, addNS, indented bool) []byte {
	w := xmlWriter{xmlBuffer: xmlBuffer{b: b}}
	w.element(e, addNS, indented, 1, "")
	return w.b
}

// element writes e and what it holds. defaultNS is the default namespace in scope at e's parent
// (within the written tree); depth is indent's depth for e when indented.
func (w *xmlWriter) element(e *etree.Element, addNS, indented bool, depth int, defaultNS string) {
	w.b = append(w.b, '<')
	w.fullName(e.Space, e.Tag)
	ownDefault, hasDefault := "", false
	for i := range e.Attr {
		a := &e.Attr[i]
		if a.Space == "" && a.Key == "xmlns" && !hasDefault {
			ownDefault, hasDefault = a.Value, true
		}
		w.b = append(w.b, ' ')
		if needsEscape(a.Value) {
			a.WriteTo(w, &writeSettings)
			continue
		}
		w.fullName(a.Space, a.Key)
		w.b = append(w.b, '=', '"')
		w.b = append(w.b, a.Value...)
		w.b = append(w.b, '"')
	}
	if addNS {
		w.b = append(w.b, ` xmlns="`+Namespace+`"`...)
		if !hasDefault {
			ownDefault, hasDefault = Namespace, true
		}
	}
	if hasDefault {
		defaultNS = ownDefault
	}
	if len(e.Child) == 0 {
		w.b = append(w.b, '/', '>')
		return
	}
	w.b = append(w.b, '>')
	w.open = append(w.open, e)
	if indented && hasChildElement(e) && w.namespaceOf(e, defaultNS) != XHTMLNamespace {
		for _, c := range e.Child {
			if cd, ok := c.(*etree.CharData); ok && strings.TrimSpace(cd.Data) == "" {
				continue
			}
			w.pad(depth)
			w.token(c, true, depth+1, defaultNS)
		}
		w.pad(depth - 1)
	} else {
		for _, c := range e.Child {
			w.token(c, false, 0, defaultNS)
		}
	}
	w.open = w.open[:len(w.open)-1]
	w.b = append(w.b, '<', '/')
	w.fullName(e.Space, e.Tag)
	w.b = append(w.b, '>')
}

func (w *xmlWriter) token(t etree.Token, indented bool, depth int, defaultNS string) {
	switch t := t.(type) {
	case *etree.Element:
		w.element(t, false, indented, depth, defaultNS)
	case *etree.CharData:
		if t.IsCData() || needsEscape(t.Data) {
			t.WriteTo(w, &writeSettings)
			return
		}
		w.b = append(w.b, t.Data...)
	default:
		t.WriteTo(w, &writeSettings)
	}
}

func (w *xmlWriter) fullName(space, local string) {
	if space != "" {
		w.b = append(w.b, space...)
		w.b = append(w.b, ':')
	}
	w.b = append(w.b, local...)
}

// pad is indent's line break and indentation for depth.
func (w *xmlWriter) pad(depth int) {
	w.b = append(w.b, '\n')
	for range depth {
		w.b = append(w.b, ' ', ' ')
	}
}

// namespaceOf is e.NamespaceURI() within the written tree: e's default namespace (defaultNS,
// already including e's own declaration), or the namespace its prefix is declared for on e or an
// element around it ("" when none).
func (w *xmlWriter) namespaceOf(e *etree.Element, defaultNS string) string {
	if e.Space == "" {
		return defaultNS
	}
	for i := len(w.open) - 1; i >= 0; i-- {
		for _, a := range w.open[i].Attr {
			if a.Space == "xmlns" && a.Key == e.Space {
				return a.Value
			}
		}
	}
	return ""
}

func hasChildElement(e *etree.Element) bool {
	for _, c := range e.Child {
		if _, ok := c.(*etree.Element); ok {
			return true
		}
	}
	return false
}

// needsEscape reports whether etree writes s other than as it is: it holds a character it escapes
// (& < > ' ") or one XML cannot carry, which it replaces.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&', c == '<', c == '>', c == '\'', c == '"':
				return true
			case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
				return true
			}
			i++
			continue
		}
		r, width := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && width == 1 || r > 0xD7FF && r < 0xE000 || r == 0xFFFE || r == 0xFFFF {
			return true
		}
		i += width
	}
	return false
}

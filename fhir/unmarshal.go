package fhir

import (
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Unmarshal reads back what Marshal wrote — a stored resource — and returns its root element: the
// tree etree's Document.ReadFromBytes builds from data, with the same error when it fails, and
// nil when data holds no element. Marshal's output (compact, escaped the way etree escapes) is
// read in one pass without a tokenizer, its names and plain values shared with one copy of data;
// anything else Marshal does not write (declarations, comments, CDATA, other spacing or
// character references) is left to etree. Unlike Parse, it checks nothing of FHIR: it is for
// bytes red wrote itself.
func Unmarshal(data []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	if r := (&unmarshaler{s: string(data), doc: doc}); r.read() {
		return doc.Root(), nil
	}
	doc = etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, err
	}
	return doc.Root(), nil
}

// maxUnmarshalDepth stays below etree's limit on nesting (1024), whose error etree gives.
const maxUnmarshalDepth = 1000

// unmarshaler reads the form Marshal writes: <name attr="value" …> or <name …/>, </name>, and
// text between elements, with the entities etree writes.
type unmarshaler struct {
	s     string
	p     int
	doc   *etree.Document
	stack []*etree.Element
	names []string // the name each open element was written with
}

// read builds the tree; false when data is not in Marshal's form (the tree is then discarded).
func (r *unmarshaler) read() bool {
	if len(r.s) == 0 || r.s[0] != '<' {
		return false
	}
	for r.p < len(r.s) {
		if r.s[r.p] != '<' {
			if len(r.stack) == 0 || !r.text() {
				return false
			}
			continue
		}
		r.p++
		if r.p < len(r.s) && r.s[r.p] == '/' {
			if !r.end() {
				return false
			}
			continue
		}
		if !r.start() {
			return false
		}
	}
	return len(r.stack) == 0 && r.doc.Root() != nil
}

// start reads a start tag after its '<'.
func (r *unmarshaler) start() bool {
	if len(r.stack) == 0 && r.doc.Root() != nil || len(r.stack) >= maxUnmarshalDepth {
		return false
	}
	name, ok := r.name()
	if !ok {
		return false
	}
	var e *etree.Element
	if len(r.stack) == 0 {
		e = r.doc.CreateElement(name)
	} else {
		e = r.stack[len(r.stack)-1].CreateElement(name)
	}
	for r.p < len(r.s) && r.s[r.p] == ' ' {
		r.p++
		key, ok := r.name()
		if !ok || !strings.HasPrefix(r.s[r.p:], `="`) {
			return false
		}
		r.p += 2
		end := strings.IndexByte(r.s[r.p:], '"')
		if end < 0 {
			return false
		}
		val, ok := unescape(r.s[r.p : r.p+end])
		if !ok {
			return false
		}
		r.p += end + 1
		e.CreateAttr(key, val)
	}
	switch {
	case strings.HasPrefix(r.s[r.p:], "/>"):
		r.p += 2
	case strings.HasPrefix(r.s[r.p:], ">"):
		r.p++
		r.stack = append(r.stack, e)
		r.names = append(r.names, name)
	default:
		return false
	}
	return true
}

// end reads an end tag after its '<'.
func (r *unmarshaler) end() bool {
	r.p++ // '/'
	name, ok := r.name()
	if !ok || len(r.stack) == 0 || name != r.names[len(r.names)-1] || !strings.HasPrefix(r.s[r.p:], ">") {
		return false
	}
	r.p++
	r.stack = r.stack[:len(r.stack)-1]
	r.names = r.names[:len(r.names)-1]
	return true
}

// text reads character data up to the next '<'.
func (r *unmarshaler) text() bool {
	end := strings.IndexByte(r.s[r.p:], '<')
	if end < 0 {
		return false // text after the root, or an element never closed
	}
	t, ok := unescape(r.s[r.p : r.p+end])
	if !ok {
		return false
	}
	r.p += end
	c := r.stack[len(r.stack)-1].CreateText(t)
	if isWhitespace(t) {
		c.SetData(t) // marks it whitespace, as etree's reader does
	}
	return true
}

// name reads an XML name of ASCII letters, digits, '_', '-', '.' and at most one ':' between two
// non-empty parts (prefix:local), the names etree and encoding/xml split alike.
func (r *unmarshaler) name() (string, bool) {
	start, colon := r.p, -1
	for ; r.p < len(r.s); r.p++ {
		c := r.s[r.p]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9', c == '-', c == '.':
			if r.p == start {
				return "", false
			}
		case c == ':':
			if colon >= 0 || r.p == start {
				return "", false
			}
			colon = r.p
		default:
			name := r.s[start:r.p]
			return name, name != "" && colon != r.p-1
		}
	}
	return "", false
}

// unescape decodes the entities etree writes (&amp; &lt; &gt; &quot; &apos;); ok is false for
// anything else etree's reader would treat otherwise: another reference, '<', '>' (etree writes
// &gt;; a raw one may end "]]>", which the reader refuses), a carriage return (which the reader
// turns into a line break), a character XML cannot carry or bytes that are not UTF-8.
func unescape(s string) (string, bool) {
	amp := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				amp = true
			case c == '<', c == '>', c == '\r', c < 0x20 && c != '\t' && c != '\n':
				return "", false
			}
			i++
			continue
		}
		r, width := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && width == 1 || r == 0xFFFE || r == 0xFFFF {
			return "", false
		}
		i += width
	}
	if !amp {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "&amp;"):
			b.WriteByte('&')
			s = s[5:]
		case strings.HasPrefix(s, "&lt;"):
			b.WriteByte('<')
			s = s[4:]
		case strings.HasPrefix(s, "&gt;"):
			b.WriteByte('>')
			s = s[4:]
		case strings.HasPrefix(s, "&quot;"):
			b.WriteByte('"')
			s = s[6:]
		case strings.HasPrefix(s, "&apos;"):
			b.WriteByte('\'')
			s = s[6:]
		default:
			return "", false
		}
	}
}

func isWhitespace(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

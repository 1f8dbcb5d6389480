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
// text between elements, with the entities etree writes. Elements, attributes and child lists
// are cut from a few slabs sized by counting the markup first; an element's children are
// collected until it closes and then added to it, so each list is allocated once at its size.
type unmarshaler struct {
	s     string
	p     int
	doc   *etree.Document
	root  *etree.Element
	stack []openElement
	kids  []etree.Token // children of the open elements, innermost last
	pairs []string      // the key and value of each attribute of the start tag being read

	elems []etree.Element
	attrs []etree.Attr
	lists []etree.Token
}

// openElement is an open element: its name as written and where its children start in kids.
type openElement struct {
	el   *etree.Element
	name string
	kids int
}

// read builds the tree; false when data is not in Marshal's form (the tree is then discarded).
func (r *unmarshaler) read() bool {
	if len(r.s) == 0 || r.s[0] != '<' {
		return false
	}
	tags := strings.Count(r.s, "<")
	elems := tags - strings.Count(r.s, "</")
	r.elems = make([]etree.Element, elems)
	r.attrs = make([]etree.Attr, strings.Count(r.s, `="`))
	r.lists = make([]etree.Token, 0, elems+elems/4)
	r.kids = make([]etree.Token, 0, elems)
	r.stack = make([]openElement, 0, 16)
	r.pairs = make([]string, 0, 8)
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
	if len(r.stack) > 0 || r.root == nil {
		return false
	}
	r.doc.AddChild(r.root)
	return true
}

// start reads a start tag after its '<'.
func (r *unmarshaler) start() bool {
	if len(r.stack) == 0 && r.root != nil || len(r.stack) >= maxUnmarshalDepth || len(r.elems) == 0 {
		return false
	}
	name, ok := r.name()
	if !ok {
		return false
	}
	r.pairs = r.pairs[:0]
	for r.p < len(r.s) && r.s[r.p] == ' ' {
		key, raw, ok := r.attr()
		if !ok {
			return false
		}
		val, ok := unescape(raw)
		if !ok {
			return false
		}
		r.pairs = append(r.pairs, key, val)
	}
	closed := false
	switch {
	case strings.HasPrefix(r.s[r.p:], "/>"):
		r.p += 2
		closed = true
	case strings.HasPrefix(r.s[r.p:], ">"):
		r.p++
	default:
		return false
	}
	n := len(r.pairs) / 2
	if n > len(r.attrs) {
		return false
	}
	e := &r.elems[0]
	r.elems = r.elems[1:]
	e.Space, e.Tag = splitName(name)
	e.Attr = r.attrs[:0:n]
	r.attrs = r.attrs[n:]
	for i := 0; i < len(r.pairs); i += 2 {
		e.CreateAttr(r.pairs[i], r.pairs[i+1])
	}
	if len(r.stack) == 0 {
		r.root = e
	} else {
		r.kids = append(r.kids, e)
	}
	if closed {
		e.Child = r.lists[len(r.lists):len(r.lists):len(r.lists)]
		return true
	}
	r.stack = append(r.stack, openElement{el: e, name: name, kids: len(r.kids)})
	return true
}

// attr reads an attribute, ` key="raw"`, of a start tag: its name and its value as written.
func (r *unmarshaler) attr() (key, raw string, ok bool) {
	r.p++ // ' '
	key, ok = r.name()
	if !ok || !strings.HasPrefix(r.s[r.p:], `="`) {
		return "", "", false
	}
	r.p += 2
	end := strings.IndexByte(r.s[r.p:], '"')
	if end < 0 {
		return "", "", false
	}
	raw = r.s[r.p : r.p+end]
	r.p += end + 1
	return key, raw, true
}

// splitName is etree's split of a name into prefix and local part.
func splitName(name string) (space, local string) {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// end reads an end tag after its '<'.
func (r *unmarshaler) end() bool {
	r.p++ // '/'
	name, ok := r.name()
	if !ok || len(r.stack) == 0 || name != r.stack[len(r.stack)-1].name || !strings.HasPrefix(r.s[r.p:], ">") {
		return false
	}
	r.p++
	f := r.stack[len(r.stack)-1]
	r.stack = r.stack[:len(r.stack)-1]
	kids := r.kids[f.kids:]
	if n := len(kids); cap(r.lists)-len(r.lists) >= n {
		f.el.Child = r.lists[len(r.lists) : len(r.lists) : len(r.lists)+n]
		r.lists = r.lists[:len(r.lists)+n]
	} else {
		f.el.Child = make([]etree.Token, 0, n)
	}
	for _, k := range kids {
		f.el.AddChild(k)
	}
	clear(kids)
	r.kids = r.kids[:f.kids]
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
	c := etree.NewText(t)
	if isWhitespace(t) {
		c.SetData(t) // marks it whitespace, as etree's reader does
	}
	r.kids = append(r.kids, c)
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

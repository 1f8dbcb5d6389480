package fhir

import (
	"encoding/xml"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// errUnusual is scan's answer for input it leaves to encoding/xml's decoder: anything it does not
// read itself (directives, names beyond ASCII, other XML declarations) and every error but the
// context's end, so that the decoder reports it as ever, with its line.
var errUnusual = errors.New("fhir: input left to the decoder")

// scan builds the tree from s — the document after its byte order mark — as build does from
// encoding/xml's tokens, reading the XML red receives (elements, attributes, text, the five
// predefined entities and character references, CDATA sections, comments, processing
// instructions and a UTF-8 XML declaration) straight from the bytes: names, values and text are
// parts of s. It accepts only what the decoder accepts and yields the same tokens for it, so the
// tree is the same; it refuses nothing itself: for anything else it returns errUnusual, and the
// decoder reads the document again. Besides a tree its only other answer is the context's end.
func (b *builder) scan(s string) (*etree.Element, error) {
	// the slabs, sized by counting single bytes (which is fast, unlike counting "</"): no more
	// elements than '<' (the root is made on its own), no more attributes than '=', child
	// lists for the elements and some text
	if n := strings.Count(s, "<") - 1; n > 0 {
		b.elems = make([]etree.Element, n)
		b.lists = make([]etree.Token, 0, n)
	}
	if n := strings.Count(s, "="); n > 0 {
		b.attrs = make([]etree.Attr, n)
	}
	var attrs []xml.Attr
	p := 0
	for {
		if err := b.next(); err != nil {
			return nil, err
		}
		if p >= len(s) {
			if b.root == nil || len(b.stack) > 0 {
				return nil, errUnusual
			}
			return b.root, nil
		}
		var err error
		if s[p] != '<' {
			end := strings.IndexByte(s[p:], '<')
			if end < 0 {
				end = len(s) - p
			}
			t, ok := b.chars(s[p:p+end], inText)
			if !ok {
				return nil, errUnusual
			}
			p += end
			if err := b.text(t); err != nil {
				return nil, errUnusual
			}
			continue
		}
		p++
		if p >= len(s) {
			return nil, errUnusual
		}
		switch s[p] {
		case '/':
			name, q, ok := scanName(s, p+1)
			q = skipSpace(s, q)
			if !ok || q >= len(s) || s[q] != '>' {
				return nil, errUnusual
			}
			p = q + 1
			err = b.end(name)
		case '?':
			if p, err = b.instruction(s, p+1); err != nil {
				return nil, err
			}
		case '!':
			switch {
			case strings.HasPrefix(s[p:], "!--"):
				end := strings.Index(s[p+3:], "--")
				if end < 0 || !strings.HasPrefix(s[p+3+end:], "-->") {
					return nil, errUnusual
				}
				p += 3 + end + 3
			case strings.HasPrefix(s[p:], "![CDATA["):
				p += len("![CDATA[")
				end := strings.Index(s[p:], "]]>")
				if end < 0 {
					return nil, errUnusual
				}
				t, ok := b.chars(s[p:p+end], inCDATA)
				if !ok {
					return nil, errUnusual
				}
				p += end + 3
				err = b.text(t)
			default:
				return nil, errUnusual // a directive: DOCTYPE and its kind, refused by build
			}
		default:
			var name xml.Name
			var empty bool
			if name, attrs, empty, p, err = b.startTag(s, p, attrs[:0]); err != nil {
				return nil, err
			}
			if err = b.start(xml.StartElement{Name: name, Attr: attrs}); err == nil && empty {
				if err = b.next(); err == nil {
					err = b.end(name)
				}
			}
		}
		if err != nil {
			if err != errUnusual && CodeOf(err) == "" {
				return nil, errUnusual
			}
			return nil, err
		}
	}
}

// startTag reads a start tag from s[p:], after its '<': its name, attributes (into attrs) and
// whether it closes itself (<a/>), and the position after it.
func (b *builder) startTag(s string, p int, attrs []xml.Attr) (name xml.Name, _ []xml.Attr, empty bool, _ int, _ error) {
	name, p, ok := scanName(s, p)
	if !ok {
		return name, nil, false, 0, errUnusual
	}
	for {
		p = skipSpace(s, p)
		if p >= len(s) {
			return name, nil, false, 0, errUnusual
		}
		switch s[p] {
		case '>':
			return name, attrs, false, p + 1, nil
		case '/':
			if !strings.HasPrefix(s[p:], "/>") {
				return name, nil, false, 0, errUnusual
			}
			return name, attrs, true, p + 2, nil
		}
		if len(attrs) >= b.lim.MaxAttributes {
			return name, nil, false, 0, errUnusual // build says how many there are
		}
		var a xml.Attr
		if a.Name, p, ok = scanName(s, p); !ok {
			return name, nil, false, 0, errUnusual
		}
		if p = skipSpace(s, p); p >= len(s) || s[p] != '=' {
			return name, nil, false, 0, errUnusual
		}
		if p = skipSpace(s, p+1); p >= len(s) || s[p] != '"' && s[p] != '\'' {
			return name, nil, false, 0, errUnusual
		}
		end := strings.IndexByte(s[p+1:], s[p])
		if end < 0 {
			return name, nil, false, 0, errUnusual
		}
		if a.Value, ok = b.chars(s[p+1:p+1+end], inValue); !ok {
			return name, nil, false, 0, errUnusual
		}
		p += 1 + end + 1
		attrs = append(attrs, a)
	}
}

// instruction reads a processing instruction from s[p:], after its "<?", and returns the position
// after it. An XML declaration must declare version 1.0 and UTF-8, if anything.
func (b *builder) instruction(s string, p int) (int, error) {
	name, q, ok := scanName(s, p)
	if !ok || name.Space != "" || q >= len(s) || !isSpace(s[q]) && s[q] != '?' {
		return 0, errUnusual
	}
	q = skipSpace(s, q)
	end := strings.Index(s[q:], "?>")
	if end < 0 || name.Local == "xml" && !plainDeclaration(s[q:q+end]) {
		return 0, errUnusual
	}
	return q + end + 2, nil
}

// plainDeclaration reports whether the content of an XML declaration holds only version="1.0",
// encoding="UTF-8" (in any case) and standalone="yes" or "no", each quoted with ' or ", separated
// by whitespace: what the decoder reads as it is.
func plainDeclaration(c string) bool {
	for {
		c = strings.TrimLeft(c, " \t\r\n")
		if c == "" {
			return true
		}
		key, rest, ok := strings.Cut(c, "=")
		if !ok || rest == "" || rest[0] != '"' && rest[0] != '\'' {
			return false
		}
		end := strings.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return false
		}
		switch value := rest[1 : 1+end]; key {
		case "version":
			ok = value == "1.0"
		case "encoding":
			ok = strings.EqualFold(value, "utf-8")
		case "standalone":
			ok = value == "yes" || value == "no"
		default:
			ok = false
		}
		c = rest[1+end+1:]
		if !ok || c != "" && !isSpace(c[0]) {
			return false
		}
	}
}

// The kinds of character data chars reads.
const (
	inText  = iota // text between markup: entities, no "]]>"
	inValue        // an attribute value: entities, no '<'
	inCDATA        // a CDATA section: taken as it stands
)

// special marks the bytes chars looks at more closely: control characters but tab and line
// feed, '&', '<', ']' and the bytes of multi-byte UTF-8 sequences.
var special = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = c != '\t' && c != '\n'
	}
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = true
	}
	t['&'], t['<'], t[']'] = true, true, true
	return t
}()

// chars is character data as the decoder gives it: entities and character references replaced
// (not in CDATA), a carriage return, alone or before a line feed, made a line feed; ok is false
// where the decoder reports an error or answers otherwise: bytes that are not UTF-8, characters
// XML cannot carry, '<' in a value, "]]>" in text, another entity, a character reference to a
// character XML cannot carry.
func (b *builder) chars(raw string, kind int) (string, bool) {
	plain := true
	for i := 0; i < len(raw); {
		c := raw[i]
		if !special[c] {
			i++
			continue
		}
		switch {
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(raw[i:])
			if r == utf8.RuneError && n == 1 || !xmlChar(r) {
				return "", false
			}
			i += n
			continue
		case c == '\r':
			plain = false
		case c == '&':
			plain = plain && kind == inCDATA
		case c == '<':
			if kind == inValue {
				return "", false
			}
		case c == ']':
			if kind == inText && strings.HasPrefix(raw[i:], "]]>") {
				return "", false
			}
		default:
			return "", false // a control character
		}
		i++
	}
	if plain {
		return raw, true
	}
	buf := b.buf[:0]
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '\r':
			buf = append(buf, '\n')
			if i++; i < len(raw) && raw[i] == '\n' {
				i++
			}
		case c == '&' && kind != inCDATA:
			r, n := entity(raw[i:])
			if n == 0 {
				return "", false
			}
			buf = utf8.AppendRune(buf, r)
			i += n
		default:
			buf = append(buf, c)
			i++
		}
	}
	b.buf = buf
	return string(buf), true
}

// entity reads the predefined entity or character reference s starts with: the character and
// the bytes it takes, 0 when it is neither or names a character XML cannot carry.
func entity(s string) (rune, int) {
	for _, e := range predefined {
		if strings.HasPrefix(s, e.name) {
			return e.r, len(e.name)
		}
	}
	if !strings.HasPrefix(s, "&#") {
		return 0, 0
	}
	i, base := 2, rune(10)
	if i < len(s) && s[i] == 'x' {
		i, base = 3, 16
	}
	var r rune
	for start := i; i < len(s); i++ {
		d := rune(hexDigit(s[i]))
		if d < 0 || d >= base {
			if i == start || s[i] != ';' || !xmlChar(r) {
				return 0, 0
			}
			return r, i + 1
		}
		if r = r*base + d; r > utf8.MaxRune {
			return 0, 0
		}
	}
	return 0, 0
}

// predefined are the entities XML defines without a declaration.
var predefined = []struct {
	name string
	r    rune
}{{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&apos;", '\''}, {"&quot;", '"'}}

// hexDigit is the value of a hexadecimal digit, -1 for another byte.
func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// xmlChar reports whether XML 1.0 can carry r (its production Char).
func xmlChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || 0x20 <= r && r <= 0xD7FF || 0xE000 <= r && r <= 0xFFFD || 0x10000 <= r && r <= utf8.MaxRune
}

// scanName reads a name at s[p:] — ASCII letters, digits, '_', '-' and '.', not starting with a
// digit, '-' or '.', and at most one ':' between two such parts — as the decoder splits it into
// prefix and local part; ok is false for anything else, and when a byte the decoder would read
// as part of the name follows.
func scanName(s string, p int) (name xml.Name, end int, ok bool) {
	start, colon := p, -1
	for ; p < len(s); p++ {
		c := s[p]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9', c == '-', c == '.':
			if p == start || p == colon+1 {
				return name, 0, false
			}
		case c == ':':
			if colon >= 0 || p == start {
				return name, 0, false
			}
			colon = p
		case c >= utf8.RuneSelf:
			return name, 0, false
		default:
			if p == start || p == colon+1 {
				return name, 0, false
			}
			if colon < 0 {
				return xml.Name{Local: s[start:p]}, p, true
			}
			return xml.Name{Space: s[start:colon], Local: s[colon+1 : p]}, p, true
		}
	}
	return name, 0, false // the input ends inside the name
}

// isSpace reports whether c is whitespace between markup as the decoder skips it.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(s string, p int) int {
	for p < len(s) && isSpace(s[p]) {
		p++
	}
	return p
}

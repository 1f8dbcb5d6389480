package konnektor

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Vendors differ in namespace prefixes (ns2, m0, CONN, none at all) and sometimes in the
// namespace version of an element, so responses are read by local name.

// maxXMLDepth bounds element nesting of responses.
const maxXMLDepth = 128

// parseXML reads a document, refusing DOCTYPE declarations and decoding ISO-8859-1/-15.
func parseXML(data []byte) (*etree.Document, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = charsetReader
	doc.ReadSettings.MaxDepth = maxXMLDepth
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("not well-formed XML: %w", err)
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

// charsetReader decodes the single-byte charsets VSD documents use.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8", "":
		return input, nil
	case "iso-8859-15", "iso8859-15", "latin-9", "latin9":
		return decodeSingleByte(input, latin9)
	case "iso-8859-1", "iso8859-1", "latin-1", "latin1":
		return decodeSingleByte(input, nil)
	}
	return nil, fmt.Errorf("charset %q not supported", charset)
}

// latin9 lists where ISO-8859-15 differs from ISO-8859-1.
var latin9 = map[byte]rune{0xA4: '€', 0xA6: 'Š', 0xA8: 'š', 0xB4: 'Ž', 0xB8: 'ž', 0xBC: 'Œ', 0xBD: 'œ', 0xBE: 'Ÿ'}

func decodeSingleByte(input io.Reader, differences map[byte]rune) (io.Reader, error) {
	raw, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.Grow(len(raw) + len(raw)/8)
	for _, c := range raw {
		if r, ok := differences[c]; ok {
			b.WriteRune(r)
			continue
		}
		b.WriteRune(rune(c))
	}
	return strings.NewReader(b.String()), nil
}

// encodeLatin9 converts s to ISO-8859-15; characters it cannot hold are an error.
func encodeLatin9(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r < 0x100 && !isLatin9Replaced(byte(r)):
			out = append(out, byte(r))
		default:
			found := false
			for b, lr := range latin9 {
				if lr == r {
					out = append(out, b)
					found = true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("character %q has no ISO-8859-15 code", r)
			}
		}
	}
	return out, nil
}

func isLatin9Replaced(b byte) bool {
	_, ok := latin9[b]
	return ok
}

// child returns the first child element with the local name, or nil.
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

// childrenNamed returns the child elements with the local name.
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

// walk follows a path of local names through first matches.
func walk(e *etree.Element, locals ...string) *etree.Element {
	for _, l := range locals {
		e = child(e, l)
	}
	return e
}

// descendant returns the first element below e (depth first) with the local name.
func descendant(e *etree.Element, local string) *etree.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.ChildElements() {
		if c.Tag == local {
			return c
		}
		if d := descendant(c, local); d != nil {
			return d
		}
	}
	return nil
}

// text returns the trimmed text of e, "" for nil.
func text(e *etree.Element) string {
	if e == nil {
		return ""
	}
	return strings.TrimSpace(e.Text())
}

// intText parses the text of e; absent or empty gives def.
func intText(e *etree.Element, def int) (int, error) {
	s := text(e)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", e.Tag, s)
	}
	return n, nil
}

// boolText parses xs:boolean.
func boolText(e *etree.Element) bool {
	s := text(e)
	return s == "true" || s == "1"
}

// parseTime reads xs:dateTime and xs:date forms vendors use ("2021-01-22T17:42:00.983Z",
// "2022-11-30Z", "2024-08-13").
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02Z07:00", "2006-01-02Z", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date or time", s)
}

// decodeBase64 decodes base64 that may be wrapped over lines.
func decodeBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if b, err := stdBase64.DecodeString(clean); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "="))
}

// attr returns the attribute value of e ("" for nil or absent).
func attr(e *etree.Element, name string) string {
	if e == nil {
		return ""
	}
	return e.SelectAttrValue(name, "")
}

// xmlBytes serialises a document.
func xmlBytes(doc *etree.Document) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

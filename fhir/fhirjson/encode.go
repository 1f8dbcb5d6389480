// Package fhirjson converts FHIR R4 resources between red's XML trees (etree, as fhir.Parse reads
// them) and FHIR JSON, following the R4 JSON rules: elements that may repeat are arrays, primitives
// are JSON strings, numbers (integer, decimal, positiveInt, unsignedInt — written exactly as in the
// XML) or booleans, with their id and extensions in a sibling _name, resources carry resourceType,
// contained resources are objects, a narrative's div is its XHTML as a string. The type
// information is generated from the official R4 StructureDefinitions (tables_gen.go, go generate).
//
// Plain converts RED's own XML answers that are not FHIR (ConnectorResponse, Prescriptions) the
// simple way: an element is an object of its children, text is a string, a name that repeats is
// an array.
package fhirjson

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// Marshal writes the resource res as FHIR JSON. An element the R4 definitions do not know there,
// a second one where only one is allowed, a number or boolean that is not one are errors
// (structure) naming where.
func Marshal(res *etree.Element) ([]byte, error) {
	e := encoder{buf: make([]byte, 0, 4096)}
	if err := e.resource(res, res.Tag); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type encoder struct {
	buf []byte
}

func (e *encoder) resource(res *etree.Element, path string) error {
	if !IsResource(res.Tag) {
		return fhir.Fail(fhir.CodeStructure, path, "%s is not a FHIR R4 resource type", fhir.Quote(res.Tag))
	}
	e.buf = append(e.buf, `{"resourceType":`...)
	e.buf = appendString(e.buf, res.Tag)
	if err := e.object(res, res.Tag, path, true); err != nil {
		return err
	}
	e.buf = append(e.buf, '}')
	return nil
}

// object writes the members of el (of type typ) without braces; comma says one was written.
func (e *encoder) object(el *etree.Element, typ, path string, comma bool) error {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == "xmlns" || a.Space == "xmlns" {
			continue
		}
		d := lookup(typ, a.Key)
		if d == nil || !d.Attr || a.Space != "" {
			return fhir.Fail(fhir.CodeStructure, path, "the attribute %s is not part of %s", fhir.Quote(a.FullKey()), typ)
		}
		e.key(a.Key, &comma)
		e.buf = appendString(e.buf, a.Value)
	}
	kids := el.Child
	var seen []string // tags written; a name's elements are consecutive in valid FHIR, gathered if not
	for i, t := range kids {
		c, ok := t.(*etree.Element)
		if !ok {
			if cd, ok := t.(*etree.CharData); ok && !cd.IsWhitespace() {
				return fhir.Fail(fhir.CodeStructure, path, "%s holds text; FHIR elements carry values in value attributes", typ)
			}
			continue
		}
		if slices.Contains(seen, c.Tag) {
			continue
		}
		seen = append(seen, c.Tag)
		group := []*etree.Element{c}
		for _, u := range kids[i+1:] {
			if o, ok := u.(*etree.Element); ok && o.Tag == c.Tag {
				group = append(group, o)
			}
		}
		d := lookup(typ, c.Tag)
		if d == nil || d.Attr || c.Space != "" {
			return fhir.Fail(fhir.CodeStructure, path+"."+c.Tag, "%s is not an element of %s in FHIR R4", fhir.Quote(c.Tag), typ)
		}
		if len(group) > 1 && !d.Array {
			return fhir.Fail(fhir.CodeStructure, path+"."+c.Tag, "%s.%s appears %d times; FHIR allows it once", typ, c.Tag, len(group))
		}
		var err error
		switch d.Kind {
		case Complex, Resource, XHTML:
			err = e.complex(d, group, path+"."+c.Tag, &comma)
		default:
			err = e.primitive(d, group, path+"."+c.Tag, &comma)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *encoder) key(name string, comma *bool) {
	if *comma {
		e.buf = append(e.buf, ',')
	}
	*comma = true
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, '"', ':')
}

func indexed(path string, i int, array bool) string {
	if !array {
		return path
	}
	return path + "[" + strconv.Itoa(i) + "]"
}

func (e *encoder) complex(d *Elem, group []*etree.Element, path string, comma *bool) error {
	e.key(d.Name, comma)
	if d.Array {
		e.buf = append(e.buf, '[')
	}
	for i, c := range group {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		at := indexed(path, i, d.Array)
		switch d.Kind {
		case Resource:
			res := fhir.ResourceOf(c)
			if res == nil {
				return fhir.Fail(fhir.CodeStructure, at, "%s holds one resource", d.Name)
			}
			if err := e.resource(res, at); err != nil {
				return err
			}
		case XHTML:
			if c.NamespaceURI() != fhir.XHTMLNamespace {
				return fhir.Fail(fhir.CodeStructure, at, "a narrative's div is XHTML (%s)", fhir.XHTMLNamespace)
			}
			doc := etree.NewDocumentWithRoot(c.Copy())
			doc.WriteSettings.CanonicalEndTags = false
			s, err := doc.WriteToString()
			if err != nil {
				return fhir.Wrap(err, fhir.CodeStructure, "the narrative at %s cannot be written", at)
			}
			e.buf = appendString(e.buf, s)
		default:
			e.buf = append(e.buf, '{')
			if err := e.object(c, d.Type, at, false); err != nil {
				return err
			}
			e.buf = append(e.buf, '}')
		}
	}
	if d.Array {
		e.buf = append(e.buf, ']')
	}
	return nil
}

// primitive writes the values as name and, where an element has an id or extensions, those as _name.
func (e *encoder) primitive(d *Elem, group []*etree.Element, path string, comma *bool) error {
	values, extras := false, false
	for _, c := range group {
		for _, a := range c.Attr {
			switch {
			case a.Space == "" && a.Key == "value":
				values = true
			case a.Space == "" && a.Key == "id":
				extras = true
			case a.Space == "" && a.Key == "xmlns" || a.Space == "xmlns":
			default:
				return fhir.Fail(fhir.CodeStructure, path, "the attribute %s is not part of %s", fhir.Quote(a.FullKey()), d.Name)
			}
		}
		if len(c.ChildElements()) > 0 {
			extras = true
		}
	}
	if values {
		e.key(d.Name, comma)
		if d.Array {
			e.buf = append(e.buf, '[')
		}
		for i, c := range group {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			a := c.SelectAttr("value")
			if a == nil {
				e.buf = append(e.buf, "null"...)
				continue
			}
			if err := e.value(d, a.Value, indexed(path, i, d.Array)); err != nil {
				return err
			}
		}
		if d.Array {
			e.buf = append(e.buf, ']')
		}
	}
	if !extras {
		return nil
	}
	e.key("_"+d.Name, comma)
	if d.Array {
		e.buf = append(e.buf, '[')
	}
	for i, c := range group {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if c.SelectAttr("id") == nil && len(c.ChildElements()) == 0 {
			e.buf = append(e.buf, "null"...)
			continue
		}
		e.buf = append(e.buf, '{')
		if err := e.object(withoutValue(c), "Element", indexed(path, i, d.Array), false); err != nil {
			return err
		}
		e.buf = append(e.buf, '}')
	}
	if d.Array {
		e.buf = append(e.buf, ']')
	}
	return nil
}

// withoutValue is c as Element sees it: its id and extensions.
func withoutValue(c *etree.Element) *etree.Element {
	if c.SelectAttr("value") == nil {
		return c
	}
	v := *c
	v.Attr = make([]etree.Attr, 0, len(c.Attr))
	for _, a := range c.Attr {
		if a.Key != "value" || a.Space != "" {
			v.Attr = append(v.Attr, a)
		}
	}
	return &v
}

func (e *encoder) value(d *Elem, v, path string) error {
	switch d.Kind {
	case Number:
		if !isNumber(v) {
			return fhir.Fail(fhir.CodeValue, path, "%s is a %s: a number, not %s", d.Name, d.Type, fhir.Quote(v))
		}
		e.buf = append(e.buf, v...)
	case Bool:
		if v != "true" && v != "false" {
			return fhir.Fail(fhir.CodeValue, path, "%s is a boolean: true or false, not %s", d.Name, fhir.Quote(v))
		}
		e.buf = append(e.buf, v...)
	default:
		e.buf = appendString(e.buf, v)
	}
	return nil
}

// isNumber reports whether s is a JSON number (the lexical forms of FHIR's integer and decimal).
func isNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	if n := digits(); n == 0 || n > 1 && s[start] == '0' {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			if r == utf8.RuneError {
				buf = append(buf, `\ufffd`...)
			} else {
				buf = append(buf, `\u202`...)
				buf = append(buf, hexDigits[r&0xF])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// Plain writes RED's non-FHIR XML (ConnectorResponse, Prescriptions) as JSON: {"Root": {…}}, an
// element with children an object of them, one with only text a string, a name that repeats
// among its siblings an array, attributes as members named @name.
func Plain(el *etree.Element) []byte {
	buf := []byte{'{'}
	buf = appendString(buf, el.Tag)
	buf = append(buf, ':')
	buf = plain(buf, el)
	return append(buf, '}')
}

func plain(buf []byte, el *etree.Element) []byte {
	kids := el.ChildElements()
	var attrs []etree.Attr
	for _, a := range el.Attr {
		if a.Key != "xmlns" && a.Space != "xmlns" {
			attrs = append(attrs, a)
		}
	}
	if len(kids) == 0 && len(attrs) == 0 {
		return appendString(buf, strings.TrimSpace(el.Text()))
	}
	buf = append(buf, '{')
	comma := false
	sep := func() {
		if comma {
			buf = append(buf, ',')
		}
		comma = true
	}
	for _, a := range attrs {
		sep()
		buf = appendString(buf, "@"+a.Key)
		buf = append(buf, ':')
		buf = appendString(buf, a.Value)
	}
	if len(kids) == 0 {
		if t := strings.TrimSpace(el.Text()); t != "" {
			sep()
			buf = append(buf, `"#text":`...)
			buf = appendString(buf, t)
		}
	}
	written := map[string]bool{}
	for _, k := range kids {
		if written[k.Tag] {
			continue
		}
		written[k.Tag] = true
		var same []*etree.Element
		for _, o := range kids {
			if o.Tag == k.Tag {
				same = append(same, o)
			}
		}
		sep()
		buf = appendString(buf, k.Tag)
		buf = append(buf, ':')
		if len(same) == 1 {
			buf = plain(buf, k)
			continue
		}
		buf = append(buf, '[')
		for i, o := range same {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = plain(buf, o)
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

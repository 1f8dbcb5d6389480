package fhir

import (
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// StoredDocument is Document(Unmarshal(data)) — a stored resource as red answers with it — written
// straight from data in Marshal's form, without building the tree: ok is false for data in any
// other form (Unmarshal's one-pass reader would hand it to etree), which the caller reads with
// Unmarshal instead. Values that need escaping are decoded and written by etree, as Document
// writes them.
func StoredDocument(data []byte) (doc []byte, ok bool) {
	s := storedReader{s: string(data)}
	if !s.scan() {
		return nil, false
	}
	w := storedWriter{s: &s, xmlWriter: xmlWriter{xmlBuffer: xmlBuffer{b: make([]byte, 0, len(data)+len(data)/2+len(declaration)+1)}}}
	w.b = append(w.b, declaration...)
	if _, ok := w.element(0, true, 1, ""); !ok {
		return nil, false
	}
	return append(w.b, '\n'), true
}

// StoredSearchSet is Document(set.Element()) for a set whose entries are stored resources in
// Marshal's form, written without their trees: stored[i] is entry i's resource (set.Entries is
// not read), whose fullUrl is base followed by its id (ChildValue(resource, "id")). ok is false
// when a resource is in another form.
func StoredSearchSet(set SearchSet, base string, stored [][]byte) (doc []byte, ok bool) {
	const end = "\n</Bundle>\n"
	size := 300 + 150*len(set.Links) + len(end)
	for _, data := range stored {
		size += len(data) + len(data)/2 + 100 // indented, with the entry around it
	}
	doc = appendSearchSetHead(make([]byte, 0, size), set)
	for _, data := range stored {
		s := storedReader{s: string(data)}
		if !s.scan() {
			return nil, false
		}
		w := storedWriter{s: &s, entry: true}
		w.b = append(doc, "\n  <entry>\n    "...)
		fullURL := etree.NewElement("fullUrl")
		SetValue(fullURL, base+s.childValue("id"))
		w.b = writeXML(w.b, fullURL, false, false)
		w.b = append(w.b, "\n    <resource>\n      "...)
		// Bundle, entry and resource declare no prefix: the resource's default namespace is FHIR's
		if _, ok := w.element(0, true, 4, Namespace); !ok {
			return nil, false
		}
		doc = append(w.b, "\n    </resource>\n  </entry>"...)
	}
	return append(doc, end...), true
}

// appendSearchSetHead appends what Document(set.Element()) writes before the entries — the
// declaration, the Bundle's start and its elements up to the links — without building the tree.
func appendSearchSetHead(b []byte, set SearchSet) []byte {
	b = append(b, declaration...)
	b = append(b, `<Bundle xmlns="`+Namespace+`">`...)
	b = appendValueElement(b, "\n  ", "id", set.ID)
	b = append(b, "\n  <meta>"...)
	b = appendValueElement(b, "\n    ", "lastUpdated", Instant(set.Updated))
	b = append(b, "\n  </meta>\n  <type value=\"searchset\"/>"...)
	b = appendValueElement(b, "\n  ", "total", strconv.Itoa(set.Total))
	for _, l := range set.Links {
		b = append(append(append(b, "\n  <"...), l.Relation...), '>')
		b = appendValueElement(b, "\n    ", "relation", l.Relation)
		b = appendValueElement(b, "\n    ", "url", l.URL)
		b = append(append(append(b, "\n  </"...), l.Relation...), '>')
	}
	return b
}

// appendValueElement appends indent and <name value="v"/>, v escaped as etree escapes it.
func appendValueElement(b []byte, indent, name, v string) []byte {
	b = append(append(append(b, indent...), '<'), name...)
	if needsEscape(v) {
		w := xmlBuffer{b: append(b, ' ')}
		a := etree.Attr{Key: "value", Value: v}
		a.WriteTo(&w, &writeSettings)
		return append(w.b, '/', '>')
	}
	b = append(append(append(b, ` value="`...), v...), `"/>`...)
	return b
}

// storedToken is a start tag, an end tag or text of data in Marshal's form.
type storedToken struct {
	raw          string // start: the name; end: the name; text: as written, escaped
	attrs, nattr int32  // start: its attributes, storedReader.attrs[attrs:attrs+nattr]
	end          int32  // start: the index of its end tag (itself when closed)
	kind         byte   // '<' start, '/' end, 't' text
	closed       bool   // a start tag written <name …/>
	element      bool   // start: it holds an element
}

// storedAttr is an attribute as written: its name and its escaped value.
type storedAttr struct{ name, raw string }

// storedReader cuts data into tokens, accepting what unmarshaler.read accepts.
type storedReader struct {
	s      string
	tokens []storedToken
	attrs  []storedAttr
}

func (r *storedReader) scan() bool {
	u := unmarshaler{s: r.s}
	if len(r.s) == 0 || r.s[0] != '<' {
		return false
	}
	tags := strings.Count(r.s, "<")
	r.tokens = make([]storedToken, 0, tags+tags/4) // and the texts, few in FHIR
	r.attrs = make([]storedAttr, 0, strings.Count(r.s, `="`))
	var open []int
	for u.p < len(u.s) {
		if u.s[u.p] != '<' {
			end := strings.IndexByte(u.s[u.p:], '<')
			if len(open) == 0 || end < 0 {
				return false
			}
			r.tokens = append(r.tokens, storedToken{kind: 't', raw: u.s[u.p : u.p+end]}) // unescaped when written
			u.p += end
			continue
		}
		u.p++
		if u.p < len(u.s) && u.s[u.p] == '/' {
			u.p++
			name, ok := u.name()
			if !ok || len(open) == 0 || name != r.tokens[open[len(open)-1]].raw || !strings.HasPrefix(u.s[u.p:], ">") {
				return false
			}
			u.p++
			r.tokens[open[len(open)-1]].end = int32(len(r.tokens))
			open = open[:len(open)-1]
			r.tokens = append(r.tokens, storedToken{kind: '/', raw: name})
			continue
		}
		if len(open) == 0 && len(r.tokens) > 0 || len(open) >= maxUnmarshalDepth {
			return false
		}
		name, ok := u.name()
		if !ok {
			return false
		}
		first := len(r.attrs)
		for u.p < len(u.s) && u.s[u.p] == ' ' {
			key, raw, ok := u.attr()
			if !ok {
				return false
			}
			for _, a := range r.attrs[first:] {
				if a.name == key {
					return false // etree keeps the last value, at the first one's place
				}
			}
			r.attrs = append(r.attrs, storedAttr{key, raw}) // unescaped when written
		}
		t := storedToken{kind: '<', raw: name, attrs: int32(first), nattr: int32(len(r.attrs) - first)}
		switch {
		case strings.HasPrefix(u.s[u.p:], "/>"):
			u.p += 2
			t.closed = true
		case strings.HasPrefix(u.s[u.p:], ">"):
			u.p++
		default:
			return false
		}
		if len(open) > 0 {
			r.tokens[open[len(open)-1]].element = true
		}
		if t.closed {
			t.end = int32(len(r.tokens))
		} else {
			open = append(open, len(r.tokens))
		}
		r.tokens = append(r.tokens, t)
	}
	return len(open) == 0 && len(r.tokens) > 0
}

// childValue is ChildValue(root, tag) of the tree Unmarshal would build: the value attribute of
// the root's first child element named tag, whatever their prefixes.
func (r *storedReader) childValue(tag string) string {
	for j := 1; j < len(r.tokens); j++ {
		t := &r.tokens[j]
		if t.kind == '/' {
			return "" // the root's end
		}
		if t.kind != '<' {
			continue
		}
		if _, local := splitName(t.raw); local == tag {
			for _, a := range r.attrs[t.attrs : t.attrs+t.nattr] {
				if _, key := splitName(a.name); key == "value" {
					v, _ := unescape(a.raw)
					return v
				}
			}
			return ""
		}
		j = int(t.end)
	}
	return ""
}

// storedWriter writes the tokens as xmlWriter.element writes the tree Unmarshal would build.
type storedWriter struct {
	xmlWriter
	s     *storedReader
	open  []int // the start tags being written, outermost first
	entry bool  // the root is a search set entry's: SearchSet.Element declares FHIR's namespace on it
}

// element writes the element starting at token i and returns the index after its end; see
// xmlWriter.element.
func (w *storedWriter) element(i int, indented bool, depth int, defaultNS string) (int, bool) {
	t := &w.s.tokens[i]
	w.b = append(w.b, '<')
	w.b = append(w.b, t.raw...)
	ownDefault, hasDefault, anyXMLNS := "", false, false
	for _, a := range w.s.attrs[t.attrs : t.attrs+t.nattr] {
		v, ok := unescape(a.raw)
		if !ok {
			return 0, false
		}
		space, key := splitName(a.name)
		if space == "" && key == "xmlns" && !hasDefault {
			if w.entry && len(w.open) == 0 {
				v = Namespace // CreateAttr("xmlns", Namespace) sets it in place
			}
			ownDefault, hasDefault = v, true
		}
		anyXMLNS = anyXMLNS || key == "xmlns"
		w.b = append(w.b, ' ')
		if needsEscape(v) {
			attr := etree.Attr{Space: space, Key: key, Value: v}
			attr.WriteTo(&w.xmlBuffer, &writeSettings)
			continue
		}
		w.b = append(w.b, a.name...)
		w.b = append(w.b, '=', '"')
		w.b = append(w.b, v...)
		w.b = append(w.b, '"')
	}
	// Document declares FHIR's namespace on a root without one (SelectAttr("xmlns")), a search
	// set on an entry's resource without a default one (CreateAttr adds it last)
	if len(w.open) == 0 && (w.entry && !hasDefault || !w.entry && !anyXMLNS) {
		w.b = append(w.b, ` xmlns="`+Namespace+`"`...)
		if !hasDefault {
			ownDefault, hasDefault = Namespace, true
		}
	}
	if hasDefault {
		defaultNS = ownDefault
	}
	end := int(t.end)
	if end == i+1 || t.closed {
		w.b = append(w.b, '/', '>')
		return end + 1, true
	}
	w.b = append(w.b, '>')
	w.open = append(w.open, i)
	indent := indented && t.element && w.namespaceOf(t, defaultNS) != XHTMLNamespace
	for j := i + 1; j < end; {
		c := &w.s.tokens[j]
		if c.kind == 't' {
			j++
			text, ok := unescape(c.raw)
			if !ok {
				return 0, false
			}
			if indent && strings.TrimSpace(text) == "" {
				continue
			}
			if indent {
				w.pad(depth)
			}
			if needsEscape(text) {
				cd := etree.NewText(text)
				cd.WriteTo(&w.xmlBuffer, &writeSettings)
			} else {
				w.b = append(w.b, text...)
			}
			continue
		}
		if indent {
			w.pad(depth)
		}
		var ok bool
		if j, ok = w.element(j, indent, depth+1, defaultNS); !ok {
			return 0, false
		}
	}
	if indent {
		w.pad(depth - 1)
	}
	w.open = w.open[:len(w.open)-1]
	w.b = append(w.b, '<', '/')
	w.b = append(w.b, t.raw...)
	w.b = append(w.b, '>')
	return end + 1, true
}

// namespaceOf is xmlWriter.namespaceOf for a start tag.
func (w *storedWriter) namespaceOf(t *storedToken, defaultNS string) string {
	space, _ := splitName(t.raw)
	if space == "" {
		return defaultNS
	}
	for i := len(w.open) - 1; i >= 0; i-- {
		t := &w.s.tokens[w.open[i]]
		for _, a := range w.s.attrs[t.attrs : t.attrs+t.nattr] {
			if as, key := splitName(a.name); as == "xmlns" && key == space {
				v, _ := unescape(a.raw)
				return v
			}
		}
	}
	return ""
}

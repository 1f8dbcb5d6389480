package fhir

import (
	"slices"
	"strings"

	"github.com/beevik/etree"
)

// Value is the value attribute of a primitive element, "" when e is nil: e.SelectAttrValue("value",
// ""), without splitting the name on every call.
func Value(e *etree.Element) string {
	if e == nil {
		return ""
	}
	for i := range e.Attr {
		if e.Attr[i].Key == "value" { // in any namespace, as etree matches a name without prefix
			return e.Attr[i].Value
		}
	}
	return ""
}

// SetValue sets the value attribute of a primitive element.
func SetValue(e *etree.Element, v string) {
	e.CreateAttr("value", v)
}

// Child returns the first child element named tag, or nil: e.SelectElement(tag), without
// splitting the name on every call.
func Child(e *etree.Element, tag string) *etree.Element {
	if e == nil {
		return nil
	}
	if strings.IndexByte(tag, ':') >= 0 {
		return e.SelectElement(tag)
	}
	for _, t := range e.Child {
		if c, ok := t.(*etree.Element); ok && c.Tag == tag { // in any namespace, as etree matches
			return c
		}
	}
	return nil
}

// ChildValue is Value(Child(Child(e, path[0]), path[1])…).
func ChildValue(e *etree.Element, path ...string) string {
	for _, p := range path {
		e = Child(e, p)
	}
	return Value(e)
}

// ResourceOf returns the single element inside a resource container (entry.resource,
// contained, …); nil when there is not exactly one. It allocates nothing.
func ResourceOf(container *etree.Element) *etree.Element {
	if container == nil {
		return nil
	}
	var only *etree.Element
	for _, t := range container.Child {
		if k, ok := t.(*etree.Element); ok {
			if only != nil {
				return nil
			}
			only = k
		}
	}
	return only
}

// IndexAfter is the position in el's children after the last one named one of tags (0: none): where
// an element that follows them in FHIR order goes.
func IndexAfter(el *etree.Element, tags ...string) int {
	at := 0
	for i, t := range el.Child {
		if c, ok := t.(*etree.Element); ok && slices.Contains(tags, c.Tag) {
			at = i + 1
		}
	}
	return at
}

// SetMeta writes meta.versionId and meta.lastUpdated, keeping meta's other children in FHIR order
// and meta itself right after id.
func SetMeta(res *etree.Element, versionID, lastUpdated string) {
	meta := res.SelectElement("meta")
	if meta == nil {
		meta = etree.NewElement("meta")
		if id := res.SelectElement("id"); id != nil {
			res.InsertChildAt(id.Index()+1, meta)
		} else {
			res.InsertChildAt(0, meta)
		}
	}
	for _, tag := range []string{"versionId", "lastUpdated"} {
		for _, old := range meta.SelectElements(tag) {
			meta.RemoveChild(old)
		}
	}
	// versionId and lastUpdated follow meta's id and extensions and precede source/profile/….
	at := 0
	for i, c := range meta.Child {
		if el, ok := c.(*etree.Element); ok && (el.Tag == "id" || el.Tag == "extension") {
			at = i + 1
		}
	}
	lu := etree.NewElement("lastUpdated")
	SetValue(lu, lastUpdated)
	meta.InsertChildAt(at, lu)
	vid := etree.NewElement("versionId")
	SetValue(vid, versionID)
	meta.InsertChildAt(at, vid)
}

// Marshal writes e as a compact standalone XML fragment declaring the FHIR namespace.
func Marshal(e *etree.Element) []byte {
	return writeXML(make([]byte, 0, 1024), e, e.SelectAttr("xmlns") == nil, false)
}

// Document writes e as an indented XML document with declaration, the form red answers in.
// Narrative XHTML keeps its own whitespace.
func Document(e *etree.Element) []byte {
	return document(e, e.SelectAttr("xmlns") == nil)
}

// PlainDocument writes e as an indented XML document without adding a namespace: for RED's
// non-FHIR answers such as ConnectorResponse.
func PlainDocument(e *etree.Element) []byte {
	return document(e, false)
}

func document(e *etree.Element, addNS bool) []byte {
	b := make([]byte, 0, 4096)
	b = append(b, declaration...)
	b = writeXML(b, e, addNS, true)
	return append(b, '\n')
}

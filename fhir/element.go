package fhir

import (
	"bytes"
	"slices"
	"strings"

	"github.com/beevik/etree"
)

// Value is the value attribute of a primitive element, "" when e is nil.
func Value(e *etree.Element) string {
	if e == nil {
		return ""
	}
	return e.SelectAttrValue("value", "")
}

// SetValue sets the value attribute of a primitive element.
func SetValue(e *etree.Element, v string) {
	e.CreateAttr("value", v)
}

// Child returns the first child element named tag, or nil.
func Child(e *etree.Element, tag string) *etree.Element {
	if e == nil {
		return nil
	}
	return e.SelectElement(tag)
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
	c := e.Copy()
	if c.SelectAttr("xmlns") == nil {
		c.CreateAttr("xmlns", Namespace)
	}
	doc := etree.NewDocumentWithRoot(c)
	var buf bytes.Buffer
	doc.WriteTo(&buf)
	return buf.Bytes()
}

// Document writes e as an indented XML document with declaration, the form red answers in.
// Narrative XHTML keeps its own whitespace.
func Document(e *etree.Element) []byte {
	c := e.Copy()
	if c.SelectAttr("xmlns") == nil {
		c.CreateAttr("xmlns", Namespace)
	}
	return PlainDocument(c)
}

// PlainDocument writes e as an indented XML document without adding a namespace: for RED's
// non-FHIR answers such as ConnectorResponse.
func PlainDocument(e *etree.Element) []byte {
	c := e.Copy()
	indent(c, 1)
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	doc.AddChild(etree.NewText("\n"))
	doc.AddChild(c)
	doc.AddChild(etree.NewText("\n"))
	var buf bytes.Buffer
	doc.WriteTo(&buf)
	return buf.Bytes()
}

func indent(e *etree.Element, depth int) {
	if e.NamespaceURI() == XHTMLNamespace || len(e.ChildElements()) == 0 {
		return
	}
	pad := "\n" + strings.Repeat("  ", depth)
	kids := make([]etree.Token, 0, 2*len(e.Child)+1)
	for _, c := range e.Child {
		if cd, ok := c.(*etree.CharData); ok && strings.TrimSpace(cd.Data) == "" {
			continue
		}
		kids = append(kids, etree.NewText(pad), c)
		if el, ok := c.(*etree.Element); ok {
			indent(el, depth+1)
		}
	}
	kids = append(kids, etree.NewText("\n"+strings.Repeat("  ", depth-1)))
	for len(e.Child) > 0 {
		e.RemoveChildAt(len(e.Child) - 1)
	}
	for _, k := range kids {
		e.AddChild(k)
	}
}

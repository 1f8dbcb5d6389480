package fhir

import (
	"regexp"

	"github.com/beevik/etree"
)

// preamble is the order of the DomainResource elements that start every resource.
var preamble = []string{"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"}

// compactOffset matches date-times whose zone offset lacks its colon ("+0200"), which RED's own
// examples send.
var compactOffset = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?[+-]\d\d)(\d\d)$`)

// Canonicalize repairs what RED tolerates in input so that red answers with well-formed FHIR:
// the resource's id, meta, text, contained and extensions move to the front in FHIR order, every
// element's extensions move before its other children, and zone offsets get their colon.
// Everything else keeps its order; narrative XHTML is left alone.
func Canonicalize(res *etree.Element) {
	ns := ""
	if p := res.Parent(); p != nil {
		ns = defaultNamespace(p, "")
	}
	canonicalResource(res, defaultNamespace(res, ns))
}

// canonicalResource is Canonicalize of res, whose default namespace is ns.
func canonicalResource(res *etree.Element, ns string) {
	reorder(res, preamble)
	for _, t := range res.Child {
		if c, ok := t.(*etree.Element); ok {
			canonicalElement(c, defaultNamespace(c, ns))
		}
	}
}

// canonicalElement repairs e, whose default namespace is ns, and what it holds.
func canonicalElement(e *etree.Element, ns string) {
	if e.Space == "" && ns == XHTMLNamespace || e.Space != "" && e.NamespaceURI() == XHTMLNamespace {
		return
	}
	if v := e.SelectAttr("value"); v != nil && compactOffsetLike(v.Value) {
		if m := compactOffset.FindStringSubmatch(v.Value); m != nil {
			v.Value = m[1] + ":" + m[2]
		}
	}
	if e.Tag == "resource" || e.Tag == "contained" { // a nested resource
		for _, t := range e.Child {
			if c, ok := t.(*etree.Element); ok {
				canonicalResource(c, defaultNamespace(c, ns))
			}
		}
		return
	}
	reorder(e, []string{"extension", "modifierExtension"})
	for _, t := range e.Child {
		if c, ok := t.(*etree.Element); ok {
			canonicalElement(c, defaultNamespace(c, ns))
		}
	}
}

// defaultNamespace is e's default namespace, as etree's NamespaceURI finds it for an element
// without prefix, when its parent's is parent: the one e declares, else its parent's.
func defaultNamespace(e *etree.Element, parent string) string {
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == "xmlns" {
			return a.Value
		}
	}
	return parent
}

// compactOffsetLike reports whether v could be a date-time compactOffset matches — one that is
// long enough, has its T and ends in a sign and four characters — so that the expression is
// tried only on such values.
func compactOffsetLike(v string) bool {
	return len(v) >= 21 && v[10] == 'T' && (v[len(v)-5] == '+' || v[len(v)-5] == '-')
}

// reorder moves the children named in front (in that order) before all others, keeping each
// group's own order. Children already in order are left as they are, without allocating.
func reorder(e *etree.Element, front []string) {
	rankOf := func(c etree.Token) int {
		if el, ok := c.(*etree.Element); ok {
			for i, t := range front {
				if el.Tag == t {
					return i
				}
			}
		}
		return len(front)
	}
	last, moved := -1, false
	for _, c := range e.Child {
		g := rankOf(c)
		if g < last {
			moved = true
			break
		}
		last = g
	}
	if !moved {
		return
	}
	groups := make([][]etree.Token, len(front)+1)
	for _, c := range e.Child {
		g := rankOf(c)
		groups[g] = append(groups[g], c)
	}
	for len(e.Child) > 0 {
		e.RemoveChildAt(len(e.Child) - 1)
	}
	for _, g := range groups {
		for _, c := range g {
			e.AddChild(c)
		}
	}
}

package fhir

import "github.com/beevik/etree"

// copyTree is e.Copy() — a deep copy without a parent — cut from three slabs (elements,
// attributes, child lists) instead of allocating each element and list on its own. (The copy's
// Index is 0 until it is added to an element, where etree's keeps the original's.)
func copyTree(e *etree.Element) *etree.Element {
	var elems, attrs, tokens int
	known := true
	var count func(e *etree.Element)
	count = func(e *etree.Element) {
		elems++
		attrs += len(e.Attr)
		tokens += len(e.Child)
		for _, c := range e.Child {
			switch c := c.(type) {
			case *etree.Element:
				count(c)
			case *etree.CharData, *etree.Comment, *etree.Directive, *etree.ProcInst:
			default:
				known = false
			}
		}
	}
	count(e)
	if !known {
		return e.Copy()
	}
	s := slabs{elems: make([]etree.Element, elems), attrs: make([]etree.Attr, attrs), tokens: make([]etree.Token, tokens)}
	return s.copy(e)
}

type slabs struct {
	elems  []etree.Element
	attrs  []etree.Attr
	tokens []etree.Token
}

func (s *slabs) copy(e *etree.Element) *etree.Element {
	n := &s.elems[0]
	s.elems = s.elems[1:]
	n.Space, n.Tag = e.Space, e.Tag
	n.Attr = append(s.attrs[:0:len(e.Attr)], e.Attr...) // as etree copies them
	s.attrs = s.attrs[len(e.Attr):]
	n.Child = s.tokens[:0:len(e.Child)]
	s.tokens = s.tokens[len(e.Child):]
	for _, c := range e.Child {
		switch c := c.(type) {
		case *etree.Element:
			n.AddChild(s.copy(c))
		case *etree.CharData:
			t := etree.NewText(c.Data)
			if c.IsCData() {
				t = etree.NewCData(c.Data)
			}
			if c.IsWhitespace() {
				t.SetData(c.Data)
			}
			n.AddChild(t)
		case *etree.Comment:
			n.AddChild(etree.NewComment(c.Data))
		case *etree.Directive:
			n.AddChild(etree.NewDirective(c.Data))
		case *etree.ProcInst:
			n.AddChild(etree.NewProcInst(c.Target, c.Inst))
		}
	}
	return n
}

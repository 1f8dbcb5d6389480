package vos

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// origins remembers, for the elements of the converted bundle, the element of the posted VOS
// bundle each one was taken from.
type origins map[*etree.Element]*etree.Element

// copyFrom copies src, remembering each copied element's origin.
func (o origins) copyFrom(src *etree.Element) *etree.Element {
	c := src.Copy()
	o.pair(c, src)
	return c
}

// pair records the origins of copy's elements, copy being an unchanged copy of src.
func (o origins) pair(copy, src *etree.Element) {
	o[copy] = src
	cs, ss := copy.ChildElements(), src.ChildElements()
	for i := range cs {
		if i < len(ss) {
			o.pair(cs[i], ss[i])
		}
	}
}

// segment is one step of a location: an element name and its index (-1: none written).
type segment struct {
	name  string
	index int
}

var segmentPattern = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*)(?:\[(\d+)\])?$`)

// splitLocation splits a location at its dots, outside parentheses and quotes.
func splitLocation(expr string) []string {
	var parts []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '.' && depth == 0:
			parts = append(parts, expr[start:i])
			start = i + 1
		}
	}
	return append(parts, expr[start:])
}

// locate turns a location in the converted bundle (root) into one in the posted VOS bundle: the
// deepest element it names that was taken from the VOS bundle is named by its place there,
// followed by the rest of the location as written. A location above every element taken over
// (or not in the bundle at all) is left as it is.
func (o origins) locate(root *etree.Element, expr string) string {
	parts := splitLocation(expr)
	if len(parts) == 0 || parts[0] != root.Tag {
		return expr
	}
	el := root
	var segs []segment
	bestEl, bestAt := (*etree.Element)(nil), 0
	var bestSegs []segment
	if o[root] != nil {
		bestEl, bestAt, bestSegs = root, 1, nil
	}
	for k := 1; k < len(parts); k++ {
		m := segmentPattern.FindStringSubmatch(parts[k])
		if m == nil {
			break
		}
		idx := -1
		if m[2] != "" {
			idx, _ = strconv.Atoi(m[2])
		}
		next := nth(el, m[1], max(idx, 0))
		if next == nil {
			break
		}
		if m[1] == "resource" { // the path leaves out the resource's type
			if r := fhir.ResourceOf(next); r != nil {
				next = r
			}
		}
		el = next
		segs = append(segs, segment{m[1], idx})
		if o[el] != nil {
			bestEl, bestAt, bestSegs = el, k+1, append([]segment(nil), segs...)
		}
	}
	if bestEl == nil {
		return expr
	}
	out := pathOf(o[bestEl], bestSegs)
	if rest := parts[bestAt:]; len(rest) > 0 {
		out += "." + strings.Join(rest, ".")
	}
	return out
}

// nth is the i-th child element of e named tag.
func nth(e *etree.Element, tag string, i int) *etree.Element {
	for _, c := range e.ChildElements() {
		if c.Tag == tag {
			if i == 0 {
				return c
			}
			i--
		}
	}
	return nil
}

// pathOf is the location of el in its document, in red's style: Bundle.entry[2].resource.code.
// An element gets an index when it is an entry, when the converted location wrote one at the
// same depth (segs), or when its parent has more than one of its name.
func pathOf(el *etree.Element, segs []segment) string {
	var chain []*etree.Element
	for e := el; e != nil; e = e.Parent() {
		if e.Tag == "" { // the document
			break
		}
		chain = append(chain, e)
	}
	var b strings.Builder
	depth := 0
	for i := len(chain) - 1; i >= 0; i-- {
		e := chain[i]
		if p := e.Parent(); p != nil && p.Tag == "resource" && i < len(chain)-1 {
			continue // a resource's type is not part of the path
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.Tag)
		if depth > 0 {
			n, pos := 0, 0
			for _, s := range e.Parent().ChildElements() {
				if s.Tag == e.Tag {
					if s == e {
						pos = n
					}
					n++
				}
			}
			indexed := e.Tag == "entry" || n > 1
			if k := depth - 1; k < len(segs) && segs[k].name == e.Tag {
				indexed = indexed || segs[k].index >= 0
			}
			if indexed {
				b.WriteString("[" + strconv.Itoa(pos) + "]")
			}
		}
		depth++
	}
	return b.String()
}

package records

import (
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// localRef reads a reference to a resource red could hold: "Type/id", "Type/id/_history/n", or an
// absolute URL ending in one of those. ok is false for urn:, contained (#) and other references.
func localRef(ref string) (typ, id string, ok bool) {
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "urn:") {
		return "", "", false
	}
	parts := strings.Split(strings.TrimRight(ref, "/"), "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 {
		return "", "", false
	}
	typ, id = parts[n-2], parts[n-1]
	// . and .. are no ids, but a reference naming one is local all the same: it is refused for
	// naming nothing, as a reference to any other id red does not have
	if typ == "" || typ[0] < 'A' || typ[0] > 'Z' || !fhir.ValidID(id) && id != "." && id != ".." {
		return "", "", false
	}
	return typ, id, true
}

// refSite is one reference element inside a resource.
type refSite struct {
	el  *etree.Element // the <reference> element
	res *etree.Element // the resource it is in
	at  string         // where res is
}

// path locates the reference like Bundle.entry[2].resource.subject.reference.
func (s refSite) path() string {
	var chain []*etree.Element // the elements from below res down to el
	for e := s.el; e != nil && e != s.res; e = e.Parent() {
		chain = append(chain, e)
	}
	slices.Reverse(chain)
	return location(s.at, s.res, chain)
}

// references lists every Reference.reference in res (contained resources and narrative excluded),
// located at at.
func references(res *etree.Element, at string) []refSite {
	var out []refSite
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, t := range e.Child {
			k, ok := t.(*etree.Element)
			if !ok || k.Tag == "contained" || k.Tag == "text" {
				continue
			}
			if k.Tag == "reference" && k.SelectAttr("value") != nil && !hasChildElement(k) {
				out = append(out, refSite{el: k, res: res, at: at})
			} else {
				walk(k)
			}
		}
	}
	walk(res)
	return out
}

// location is the path of chain's last element: at, then each element's tag with its index
// among its same-named siblings when it has any ([i]).
func location(at string, res *etree.Element, chain []*etree.Element) string {
	var b strings.Builder
	b.WriteString(at)
	parent := res
	for _, e := range chain {
		b.WriteString(".")
		b.WriteString(e.Tag)
		n, i := 0, 0
		for _, t := range parent.Child {
			if s, ok := t.(*etree.Element); ok && s.Tag == e.Tag {
				if s == e {
					i = n
				}
				n++
			}
		}
		if n > 1 {
			b.WriteString("[" + strconv.Itoa(i) + "]")
		}
		parent = e
	}
	return b.String()
}

func hasChildElement(e *etree.Element) bool {
	for _, t := range e.Child {
		if _, ok := t.(*etree.Element); ok {
			return true
		}
	}
	return false
}

// refValues returns the Type/id keys that the reference elements under the given child paths point
// to, e.g. refValues(res, "subject") → ["Patient/6006"]. Stored references are already resolved.
func refValues(res *etree.Element, paths ...string) []string {
	var out []string
	for _, p := range paths {
		for _, e := range findAll(res, p+"/reference") {
			if typ, id, ok := localRef(e.SelectAttrValue("value", "")); ok {
				out = append(out, typ+"/"+id)
			}
		}
	}
	return out
}

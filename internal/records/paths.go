package records

import (
	"strings"
	"sync"

	"github.com/beevik/etree"
)

// paths holds the compiled form of each element path records looks up (all written in this
// package's code), so that no lookup compiles its path again.
var paths sync.Map // string → *elementPath

// elementPath is a path compiled: a path of child steps by tag ("name/given") as its steps, which
// a lookup walks without etree's path machinery; any other as etree compiles it.
type elementPath struct {
	steps []string
	path  etree.Path
}

func compiled(path string) *elementPath {
	if p, ok := paths.Load(path); ok {
		return p.(*elementPath)
	}
	p := &elementPath{}
	if strings.Trim(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/") == "" &&
		!strings.Contains(path, "//") && !strings.HasPrefix(path, "/") && !strings.HasSuffix(path, "/") {
		p.steps = strings.Split(path, "/")
	} else {
		p.path = etree.MustCompilePath(path)
	}
	paths.Store(path, p)
	return p
}

// find is e.FindElement(path) with the path compiled once.
func find(e *etree.Element, path string) *etree.Element {
	p := compiled(path)
	if p.steps == nil {
		return e.FindElementPath(p.path)
	}
	var first [1]*etree.Element
	if found := children(first[:0], e, p.steps, 1); len(found) > 0 {
		return found[0]
	}
	return nil
}

// findAll is e.FindElements(path) with the path compiled once.
func findAll(e *etree.Element, path string) []*etree.Element {
	p := compiled(path)
	if p.steps == nil {
		return e.FindElementsPath(p.path)
	}
	return children(nil, e, p.steps, -1)
}

// children appends to dst the elements below e along steps, each a child tag in any namespace,
// in the order etree's path lookup gives them (document order), until dst holds limit (-1: all).
func children(dst []*etree.Element, e *etree.Element, steps []string, limit int) []*etree.Element {
	for _, t := range e.Child {
		c, ok := t.(*etree.Element)
		if !ok || c.Tag != steps[0] {
			continue
		}
		if len(steps) == 1 {
			dst = append(dst, c)
		} else {
			dst = children(dst, c, steps[1:], limit)
		}
		if len(dst) == limit {
			break
		}
	}
	return dst
}

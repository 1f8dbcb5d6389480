package records

import (
	"sync"

	"github.com/beevik/etree"
)

// paths holds the compiled form of each element path records looks up (all written in this
// package's code), so that no lookup compiles its path again.
var paths sync.Map // string → etree.Path

func compiled(path string) etree.Path {
	if p, ok := paths.Load(path); ok {
		return p.(etree.Path)
	}
	p := etree.MustCompilePath(path)
	paths.Store(path, p)
	return p
}

// find is e.FindElement(path) with the path compiled once.
func find(e *etree.Element, path string) *etree.Element {
	return e.FindElementPath(compiled(path))
}

// findAll is e.FindElements(path) with the path compiled once.
func findAll(e *etree.Element, path string) []*etree.Element {
	return e.FindElementsPath(compiled(path))
}

package fhir_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// walked writes down what Walk tells, passing over the children of elements named as in
// skipChildren and the rest of the parent of those named as in skipRest.
type walked []string

var skipChildren = map[string]bool{"b": true, "text": true, "name": true, "entry": true}
var skipRest = map[string]bool{"c": true, "id": true, "given": true}

func skip(depth int, name string) fhir.Skip {
	switch {
	case skipChildren[name]:
		return fhir.SkipChildren
	case skipRest[name] && depth > 0:
		return fhir.SkipRest
	}
	return fhir.Descend
}

func (w *walked) Start(depth int, name, value string) fhir.Skip {
	*w = append(*w, fmt.Sprintf("%d <%s %q>", depth, name, value))
	return skip(depth, name)
}
func (w *walked) End(depth int) { *w = append(*w, fmt.Sprintf("%d </>", depth)) }

// treeWalked is what Walk tells of e, read from the tree; false when it passes over the rest of
// e's parent.
func treeWalked(e *etree.Element, depth int, w *walked) bool {
	switch w.Start(depth, e.Tag, fhir.Value(e)) {
	case fhir.SkipRest:
		return false
	case fhir.Descend:
		for _, c := range e.ChildElements() {
			if !treeWalked(c, depth+1, w) {
				break
			}
		}
	}
	w.End(depth)
	return true
}

// checkWalk compares Walk over data with the tree etree's reader builds of it (the reference
// for Unmarshal); false when Walk leaves data to the tree.
func checkWalk(t *testing.T, name string, data []byte) bool {
	t.Helper()
	var got walked
	if !fhir.Walk(data, &got) {
		return false
	}
	e, err := etreeRead(data)
	if err != nil || e == nil {
		return true // not a document red writes: nothing to compare with
	}
	var want walked
	treeWalked(e, 0, &want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: Walk tells\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var tree walked
	if fhir.WalkTree(e, &tree); strings.Join(tree, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: WalkTree tells\n%s\nwant\n%s", name, strings.Join(tree, "\n"), strings.Join(want, "\n"))
	}
	return true
}

func TestWalkMatchesTree(t *testing.T) {
	for i, s := range unmarshalCases {
		checkWalk(t, fmt.Sprintf("case %d", i), []byte(s))
	}
	for i, s := range []string{`<a value="1" value="2"/>`, `<a b:value="1" value="2"/>`, `<a xmlns:value="urn:v" value="2"/>`,
		`<a><b><c/><d x="/"/><e>t</e></b><f><c><g/></c><h/></f><i><c/></i><j/></a>`, `<a><f><c x="1>2"/></f></a>`, `<a><b><!-- x --></b></a>`,
		`<a><f><g/><c/><h value="&amp;"><b/></h></f><j/></a>`} {
		checkWalk(t, fmt.Sprintf("extra case %d", i), []byte(s))
	}
	for name, e := range trees(t) {
		if !checkWalk(t, name+" marshaled", fhir.Marshal(e)) && strings.HasSuffix(name, "(fhir)") {
			if _, ok := fhir.StoredDocument(fhir.Marshal(e)); ok {
				t.Errorf("%s: Walk leaves to the tree what StoredDocument writes", name)
			}
		}
		if !checkWalk(t, name+" as a document", fhir.Document(e)) && strings.HasSuffix(name, "(fhir)") {
			if _, ok := fhir.StoredDocument(fhir.Marshal(e)); ok {
				t.Errorf("%s: Walk leaves the document to the tree", name)
			}
		}
	}
}

func FuzzWalkMatchesTree(f *testing.F) {
	addStoredSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkWalk(t, "input", data)
	})
}

// BenchmarkWalk walks a Patient (of testdata/bundles/patients.xml) as red answers a read of it.
func BenchmarkWalk(b *testing.B) {
	doc := fhir.Document(benchPatient(b))
	b.ReportAllocs()
	var w counter
	for b.Loop() {
		if !fhir.Walk(doc, &w) {
			b.Fatal("left to the tree")
		}
	}
}

type counter int

func (c *counter) Start(int, string, string) fhir.Skip { *c++; return fhir.Descend }
func (c *counter) End(int)                             {}

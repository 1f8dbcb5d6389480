package fhir_test

import (
	"bytes"
	"testing"

	"github.com/redclone/red/fhir"
)

func TestCopyTreeMatchesEtree(t *testing.T) {
	for name, e := range trees(t) {
		got, want := fhir.CopyTree(e), e.Copy()
		if got.Parent() != nil {
			t.Errorf("%s: the copy has a parent", name)
		}
		if d := sameElement(got, want, name); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		before := fhir.Marshal(e)
		for _, k := range got.ChildElements() {
			k.CreateElement("added")
			k.CreateAttr("z", "3")
		}
		got.CreateText("more")
		if !bytes.Equal(fhir.Marshal(e), before) {
			t.Errorf("%s: changing the copy changed the original", name)
		}
	}
}

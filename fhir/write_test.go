package fhir_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// The writers are checked against what etree writes for a copy of the tree (the way red wrote
// its answers before it wrote them itself), on hand-made trees and on every XML file under the
// module's testdata folders, read both as FHIR and as plain XML.

// etreeMarshal, etreeDocument and etreePlainDocument are the reference: etree's writer on a copy.
func etreeMarshal(e *etree.Element) []byte {
	c := e.Copy()
	if c.SelectAttr("xmlns") == nil {
		c.CreateAttr("xmlns", fhir.Namespace)
	}
	var buf bytes.Buffer
	_, _ = etree.NewDocumentWithRoot(c).WriteTo(&buf)
	return buf.Bytes()
}

func etreeDocument(e *etree.Element) []byte {
	c := e.Copy()
	if c.SelectAttr("xmlns") == nil {
		c.CreateAttr("xmlns", fhir.Namespace)
	}
	return etreePlainDocument(c)
}

func etreePlainDocument(e *etree.Element) []byte {
	c := e.Copy()
	etreeIndent(c, 1)
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	doc.AddChild(etree.NewText("\n"))
	doc.AddChild(c)
	doc.AddChild(etree.NewText("\n"))
	var buf bytes.Buffer
	_, _ = doc.WriteTo(&buf)
	return buf.Bytes()
}

func etreeIndent(e *etree.Element, depth int) {
	if e.NamespaceURI() == fhir.XHTMLNamespace || len(e.ChildElements()) == 0 {
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
			etreeIndent(el, depth+1)
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

// handMade are trees with what the writers must get right: escaping, characters XML cannot
// carry, CDATA, comments, processing instructions, mixed content, prefixes and the XHTML of
// narratives, declared by default or by prefix, on the element or above it.
var handMade = []string{
	`<Patient><id value="a&amp;b&lt;c&gt;d&quot;e&apos;f"/><name><text value="Jörg Müller-Lüdenscheidt 🙂"/></name></Patient>`,
	`<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">
  <p>Erika <b>Mustermann</b></p>
  <table><tr><td>1</td></tr></table>
</div></text><id value="x"/></Patient>`,
	`<Patient><text><div xmlns="http://www.w3.org/1999/xhtml"><p>  </p><p>a</p></div></text></Patient>`,
	`<h:Patient xmlns:h="http://hl7.org/fhir"><h:id value="1"/><h:text><x:div xmlns:x="http://www.w3.org/1999/xhtml"><x:p>t</x:p></x:div></h:text></h:Patient>`,
	`<x:div xmlns:x="http://www.w3.org/1999/xhtml"><x:p><x:b>t</x:b></x:p></x:div>`,
	`<a xmlns:x="http://www.w3.org/1999/xhtml"><b><x:c><d/></x:c></b><y:e xmlns:y="urn:y"><f/></y:e><z:g><h/></z:g></a>`,
	`<a xmlns="urn:other"><b><c/></b></a>`,
	`<a xmlns="http://www.w3.org/1999/xhtml"><b><c/></b></a>`,
	`<a foo:xmlns="urn:f"><b><c/></b></a>`,
	`<a><b>text before<c/>text after</b><d>   </d><e>
</e></a>`,
	`<a><!--a comment--><b/><?pi some data?><![CDATA[x < y]]><c><![CDATA[   ]]><d/></c></a>`,
	`<a v="tab	nl&#10;cr&#13;end" w="&#x1F600;"><b>line&#13;
next</b></a>`,
	`<ConnectorResponse><Status><Result value="OK"/></Status><Message>a &gt; b</Message></ConnectorResponse>`,
	`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Patient xmlns="http://hl7.org/fhir"><id value="p"/></Patient></resource></entry></Bundle>`,
	`<empty/>`,
	`<a><b/></a>`,
}

// trees are the hand-made trees with a few built in code (text no parser yields), and every XML
// file under testdata folders of the module, each as etree reads it and, where it is FHIR, as
// fhir.Parse reads it.
func trees(t *testing.T) map[string]*etree.Element {
	t.Helper()
	out := map[string]*etree.Element{}
	add := func(name string, data []byte) {
		doc := etree.NewDocument()
		doc.ReadSettings.PreserveCData = true
		if err := doc.ReadFromBytes(data); err == nil && doc.Root() != nil {
			out[name+" (etree)"] = doc.Root()
		}
		if e, err := fhir.Parse(data, fhir.DefaultLimits); err == nil {
			out[name+" (fhir)"] = e
		}
	}
	for i, s := range handMade {
		add("hand-made "+string(rune('a'+i)), []byte(s))
	}
	odd := etree.NewElement("Patient")
	odd.CreateElement("id").CreateAttr("value", "nul\x00 bad\xff utf8 \uFFFE\uFFFD ok")
	odd.CreateText("\x01control\ttab")
	odd.CreateElement("name").CreateText("")
	out["built in code"] = odd
	sub := etree.NewElement("outer")
	sub.CreateAttr("xmlns", fhir.XHTMLNamespace)
	inner := sub.CreateElement("inner")
	inner.CreateElement("deeper").CreateElement("deepest")
	out["a subtree whose parent is XHTML"] = inner

	for path, data := range testdataFiles(t) {
		if filepath.Ext(path) == ".xml" {
			add(path, data)
		}
	}
	return out
}

func TestWritersMatchEtree(t *testing.T) {
	all := trees(t)
	if len(all) < 300 {
		t.Fatalf("only %d trees: the testdata folders were not found", len(all))
	}
	writers := []struct {
		name      string
		got, want func(*etree.Element) []byte
	}{
		{"Marshal", fhir.Marshal, etreeMarshal},
		{"Document", fhir.Document, etreeDocument},
		{"PlainDocument", fhir.PlainDocument, etreePlainDocument},
	}
	for name, e := range all {
		for _, w := range writers {
			before := etreeMarshal(e)
			got, want := w.got(e), w.want(e)
			if !bytes.Equal(got, want) {
				t.Errorf("%s of %s differs from etree's:\n got %q\nwant %q", w.name, name, got, want)
			}
			if !bytes.Equal(etreeMarshal(e), before) {
				t.Errorf("%s changed the tree of %s", w.name, name)
			}
		}
	}
}

func FuzzWritersMatchEtree(f *testing.F) {
	for _, s := range handMade {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc := etree.NewDocument()
		doc.ReadSettings.PreserveCData = true
		if err := doc.ReadFromBytes(data); err != nil || doc.Root() == nil {
			return
		}
		e := doc.Root()
		if got, want := fhir.Marshal(e), etreeMarshal(e); !bytes.Equal(got, want) {
			t.Errorf("Marshal:\n got %q\nwant %q", got, want)
		}
		if got, want := fhir.Document(e), etreeDocument(e); !bytes.Equal(got, want) {
			t.Errorf("Document:\n got %q\nwant %q", got, want)
		}
		if got, want := fhir.PlainDocument(e), etreePlainDocument(e); !bytes.Equal(got, want) {
			t.Errorf("PlainDocument:\n got %q\nwant %q", got, want)
		}
	})
}

package fhir_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// etreeRead is the reference for Unmarshal: etree's reader.
func etreeRead(data []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, err
	}
	return doc.Root(), nil
}

// sameTree describes the first difference between two trees, "" when there is none: tokens,
// names, attributes, text and its flags, parents and indexes.
func sameTree(a, b *etree.Element) string {
	if (a == nil) != (b == nil) {
		return fmt.Sprintf("root %v, want %v", a, b)
	}
	if a == nil {
		return ""
	}
	if (a.Parent() == nil) != (b.Parent() == nil) || a.Index() != b.Index() {
		return "the root's parent or index differs"
	}
	return sameElement(a, b, a.FullTag())
}

func sameElement(a, b *etree.Element, at string) string {
	if a.Space != b.Space || a.Tag != b.Tag {
		return fmt.Sprintf("%s: element %q:%q, want %q:%q", at, a.Space, a.Tag, b.Space, b.Tag)
	}
	if len(a.Attr) != len(b.Attr) {
		return fmt.Sprintf("%s: attributes %v, want %v", at, a.Attr, b.Attr)
	}
	for i := range a.Attr {
		x, y := a.Attr[i], b.Attr[i]
		if x.Space != y.Space || x.Key != y.Key || x.Value != y.Value || (x.Element() != a) != (y.Element() != b) {
			return fmt.Sprintf("%s: attribute %d %q:%q=%q, want %q:%q=%q", at, i, x.Space, x.Key, x.Value, y.Space, y.Key, y.Value)
		}
	}
	if len(a.Child) != len(b.Child) {
		return fmt.Sprintf("%s: %d children, want %d", at, len(a.Child), len(b.Child))
	}
	for i := range a.Child {
		x, y := a.Child[i], b.Child[i]
		if x.Parent() != a || x.Index() != i {
			return fmt.Sprintf("%s: child %d has the wrong parent or index", at, i)
		}
		switch x := x.(type) {
		case *etree.Element:
			y, ok := y.(*etree.Element)
			if !ok {
				return fmt.Sprintf("%s: child %d is an element, want %T", at, i, b.Child[i])
			}
			if d := sameElement(x, y, at+"/"+x.FullTag()); d != "" {
				return d
			}
		case *etree.CharData:
			y, ok := y.(*etree.CharData)
			if !ok || x.Data != y.Data || x.IsCData() != y.IsCData() || x.IsWhitespace() != y.IsWhitespace() {
				return fmt.Sprintf("%s: text %d %#v, want %#v", at, i, x, b.Child[i])
			}
		default:
			var bx, by bytes.Buffer
			x.WriteTo(&bx, &etree.WriteSettings{})
			b.Child[i].WriteTo(&by, &etree.WriteSettings{})
			if fmt.Sprintf("%T", x) != fmt.Sprintf("%T", b.Child[i]) || bx.String() != by.String() {
				return fmt.Sprintf("%s: token %d %q, want %q", at, i, bx.String(), by.String())
			}
		}
	}
	return ""
}

// checkUnmarshal compares Unmarshal with etree's reader on data.
func checkUnmarshal(t *testing.T, name string, data []byte) {
	t.Helper()
	got, gerr := fhir.Unmarshal(data)
	want, werr := etreeRead(data)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Errorf("%s: error %v, want %v", name, gerr, werr)
		return
	}
	if d := sameTree(got, want); d != "" {
		t.Errorf("%s: %s\ninput %q", name, d, data)
	}
}

// unmarshalCases are inputs in Marshal's form and near it: Unmarshal reads the first itself and
// must leave the others to etree (or give etree's answer).
var unmarshalCases = []string{
	`<Patient xmlns="http://hl7.org/fhir"><id value="a&amp;b&lt;c&gt;d&quot;e&apos;f"/><name><text value="Jörg 🙂"/></name></Patient>`,
	`<a><b>x</b><c>  </c><d>
	</d></a>`,
	`<a x="1" x="2" y="3"/>`,
	`<a x="1" x="2"/>`,
	`<h:a xmlns:h="urn:h"><h:b h:c="1"/></h:a>`,
	`<a:b:c/>`, `<:a/>`, `<a:/>`, `<a :b="1"/>`, `<a b:="1"/>`, `<1a/>`, `<-a/>`, `<a.b-c_d1/>`,
	`<a b="]]>"/>`, `<a>]]></a>`, `<a>x > y</a>`, `<a b="x > y"/>`, `<a b="<"/>`,
	`<a>&#13;&#x41;</a>`, `<a>&nbsp;</a>`, `<a>&amp</a>`, `<a>&;</a>`,
	"<a>cr\r\nlf</a>", "<a b=\"cr\r\"/>", "<a>\x01</a>", "<a>\xff</a>", "<a>\uFFFE</a>", "<a>\uFFFD</a>",
	`<a></b>`, `<a>`, `<a/><b/>`, `<a/>text`, ` <a/>`, `<a/> `, `text<a/>`, ``, `<a`, `<a b="1`, `<a b=1/>`,
	`<a  b="1"/>`, `<a b="1" />`, `<a b='1'/>`, `<a
b="1"/>`, `</a>`, `<a></a >`, `<a><!--c--></a>`, `<?xml version="1.0"?><a/>`, `<!DOCTYPE a><a/>`,
	`<a><![CDATA[x]]></a>`, `<a></a>`, `<a>x<b/>y</a>`,
	strings.Repeat("<a>", 999) + strings.Repeat("</a>", 999),
	strings.Repeat("<a>", 1000) + strings.Repeat("</a>", 1000),
	strings.Repeat("<a>", 1030) + strings.Repeat("</a>", 1030),
}

func TestUnmarshalMatchesEtree(t *testing.T) {
	for i, s := range unmarshalCases {
		checkUnmarshal(t, fmt.Sprintf("case %d", i), []byte(s))
	}
	all := trees(t)
	for name, e := range all {
		data := fhir.Marshal(e)
		checkUnmarshal(t, name+" marshaled", data)
		checkUnmarshal(t, name+" as a document", fhir.Document(e))
		if strings.HasSuffix(name, "(fhir)") && !bytes.Contains(data, []byte("\r")) && !fhir.ReadsItself(data) {
			t.Errorf("%s: Unmarshal leaves what Marshal wrote to etree", name)
		}
	}
	if !fhir.ReadsItself([]byte(unmarshalCases[0])) {
		t.Error("Unmarshal leaves Marshal's form to etree")
	}
}

// addStoredSeeds seeds a fuzz target with the cases and the hand-made trees as Marshal writes
// them.
func addStoredSeeds(f *testing.F) {
	for _, s := range unmarshalCases {
		f.Add([]byte(s))
	}
	for _, s := range handMade {
		if e, err := etreeRead([]byte(s)); err == nil && e != nil {
			f.Add(fhir.Marshal(e))
		}
	}
}

func FuzzUnmarshalMatchesEtree(f *testing.F) {
	addStoredSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkUnmarshal(t, "input", data)
	})
}

func TestUnmarshaledTreesGrowOnTheirOwn(t *testing.T) {
	e, err := fhir.Unmarshal([]byte(`<a><b/><c><d/></c><e x="1"/><f>t</f></a>`))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range e.ChildElements() {
		k.CreateElement("added").CreateAttr("y", "2")
		k.CreateAttr("z", "3")
	}
	want := `<a><b z="3"><added y="2"/></b><c z="3"><d/><added y="2"/></c><e x="1" z="3"><added y="2"/></e><f z="3">t<added y="2"/></f></a>`
	if got, _ := etree.NewDocumentWithRoot(e.Copy()).WriteToString(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// checkStoredDocument compares StoredDocument with Document of what Unmarshal reads; it
// reports whether StoredDocument wrote data itself.
func checkStoredDocument(t *testing.T, name string, data []byte) bool {
	t.Helper()
	got, ok := fhir.StoredDocument(data)
	e, err := fhir.Unmarshal(data)
	switch {
	case !ok:
		return false
	case err != nil || e == nil:
		t.Errorf("%s: StoredDocument wrote what Unmarshal refuses (%v)\ninput %q", name, err, data)
	default:
		if want := fhir.Document(e); !bytes.Equal(got, want) {
			t.Errorf("%s: StoredDocument\n%s\nwant\n%s", name, got, want)
		}
	}
	return true
}

func TestStoredDocumentMatchesDocument(t *testing.T) {
	for i, s := range unmarshalCases {
		checkStoredDocument(t, fmt.Sprintf("case %d", i), []byte(s))
	}
	for i, s := range []string{
		`<a xmlns="urn:a">x<b/>y</a>`, `<a xmlns="urn:a"> <b/>` + "\u00a0" + `<c>t</c></a>`, `<a xmlns="urn:a"><b></b></a>`,
		`<Patient xmlns="http://hl7.org/fhir"><text><div xmlns="http://www.w3.org/1999/xhtml"><p>a <b>b</b></p></div></text></Patient>`,
		`<a xmlns="urn:a" xmlns:h="http://www.w3.org/1999/xhtml"><h:div><h:p/> </h:div><h:x h:y="&lt;"/></a>`,
		`<a xmlns="urn:a"><b c="&quot;q&apos; &amp; tab	"/>&amp;&gt;</a>`, `<a xmlns="urn:a" xmlns="urn:b"/>`, `<a/>`, `<a x="1"><b/></a>`,
	} {
		if !checkStoredDocument(t, fmt.Sprintf("extra case %d", i), []byte(s)) && i < 5 {
			t.Errorf("extra case %d: StoredDocument leaves Marshal's form to the tree: %s", i, s)
		}
	}
	for name, e := range trees(t) {
		data := fhir.Marshal(e)
		if !checkStoredDocument(t, name+" marshaled", data) && strings.HasSuffix(name, "(fhir)") && !bytes.Contains(data, []byte("\r")) {
			t.Errorf("%s: StoredDocument leaves what Marshal wrote to the tree", name)
		}
		checkStoredDocument(t, name+" as a document", fhir.Document(e))
	}
}

func FuzzStoredDocumentMatchesDocument(f *testing.F) {
	addStoredSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStoredDocument(t, "input", data)
	})
}

// BenchmarkStoredDocument writes a stored Patient (of testdata/bundles/patients.xml) as red
// answers a read, from the stored bytes and through the tree.
func BenchmarkStoredDocument(b *testing.B) {
	stored := fhir.Marshal(benchPatient(b))
	b.Run("StoredDocument", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := fhir.StoredDocument(stored); !ok {
				b.Fatal("left to the tree")
			}
		}
	})
	b.Run("Document(Unmarshal)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := fhir.Unmarshal(stored)
			if err != nil {
				b.Fatal(err)
			}
			fhir.Document(e)
		}
	})
}

// benchPatient is the first Patient of testdata/bundles/patients.xml.
func benchPatient(b *testing.B) *etree.Element {
	akte, err := os.ReadFile(filepath.Join("..", "testdata", "bundles", "patients.xml"))
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := fhir.Parse(akte, fhir.DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	return bundle.FindElement("entry/resource/Patient")
}

// StoredSearchSet writes what SearchSet.Element and Document write for the same resources read
// with Unmarshal.
func TestStoredSearchSetMatchesDocument(t *testing.T) {
	var stored [][]byte
	for _, s := range unmarshalCases {
		stored = append(stored, []byte(s))
	}
	for _, e := range trees(t) {
		stored = append(stored, fhir.Marshal(e))
	}
	stored = append(stored, []byte(`<Patient xmlns="urn:other"><x:id xmlns:x="urn:x" x:value="a&amp;b"/><id value="second"/></Patient>`),
		[]byte(`<Patient><meta/><id value="p&lt;1"/></Patient>`), []byte(`<Patient foo:xmlns="urn:f" a="1"><id/></Patient>`))
	set := fhir.SearchSet{ID: "s1", Updated: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Total: 3,
		Links: []fhir.Link{{Relation: "self", URL: "/t/Patient?page=1&_q=x"}, {Relation: "next", URL: "/t/Patient?page=2&_q=x"}}}
	check := func(name string, stored ...[]byte) bool {
		t.Helper()
		got, ok := fhir.StoredSearchSet(set, "/Patient/", stored)
		if !ok {
			return false
		}
		want := set
		for _, data := range stored {
			e, err := fhir.Unmarshal(data)
			if err != nil || e == nil {
				t.Fatalf("%s: StoredSearchSet wrote what Unmarshal refuses (%v)", name, err)
			}
			want.Entries = append(want.Entries, fhir.Entry{FullURL: "/Patient/" + fhir.ChildValue(e, "id"), Resource: e})
		}
		if w := fhir.Document(want.Element()); !bytes.Equal(got, w) {
			t.Errorf("%s: StoredSearchSet\n%s\nwant\n%s", name, got, w)
		}
		return true
	}
	if !check("no entries") {
		t.Error("no entries: left to the tree")
	}
	written := 0
	for i, data := range stored {
		if check(fmt.Sprintf("entry %d", i), data) {
			written++
		}
	}
	if written < len(stored)/2 || !check("three entries", stored[len(stored)-3:]...) {
		t.Errorf("StoredSearchSet wrote %d of %d sets itself", written, len(stored))
	}
	// the Bundle's own elements, written without the tree
	for i, other := range []fhir.SearchSet{
		{ID: "s2", Updated: time.Date(2026, 12, 1, 8, 0, 0, 123456789, time.FixedZone("CET", 3600))},
		{ID: `a"b<c>&'d`, Total: 12345, Links: []fhir.Link{{Relation: "last", URL: "/t/Obs?code=a|b&x=<\"'>\t\u00e4"}}},
	} {
		set = other
		if !check(fmt.Sprintf("set %d", i), stored[0]) {
			t.Errorf("set %d: left to the tree", i)
		}
	}
}

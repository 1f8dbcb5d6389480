package fhir_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// scanCases are inputs at the edges of what Parse's scanner reads itself: each must give the
// decoder's answer, read by the scanner or left to the decoder.
var scanCases = []string{
	`<?xml version="1.0" encoding="UTF-8"?><a/>`, `<?xml version='1.0' encoding='utf-8' standalone='yes'?><a/>`,
	`<?xml version="1.1"?><a/>`, `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, `<?xml encoding=""?><a/>`,
	`<?xml version="1.0"encoding="UTF-8"?><a/>`, `<?xml?><a/>`, `<?xml ?><a/>`, `<?xmlx data?><a/>`, `<?pi?><a/>`,
	`<a/><?xml version="1.0"?>`, `<?x:y?><a/>`, `<?xml version="1.0"`, `<?1?><a/>`, `<a><?pi data ? > ?></a>`,
	`<a>&#0;</a>`, `<a>&#xD800;</a>`, `<a>&#x10FFFF;</a>`, `<a>&#x110000;</a>`, `<a>&#99999999999999999999;</a>`,
	`<a>&#X41;</a>`, `<a>&#x;</a>`, `<a>&#;</a>`, `<a>&#00000000000065;</a>`, `<a>&#xfFfD;</a>`, `<a>&#xFFFE;</a>`,
	`<a>&lt;&gt;&amp;&apos;&quot;</a>`, `<a b="&lt;&gt;&amp;&apos;&quot;&#9;&#10;&#13;"/>`, `<a>&LT;</a>`, `<a>&amp </a>`,
	"<a>\r</a>", "<a>\r\r\n\n</a>", "<a b='\r\n'/>", "<a>&#13;\n</a>", "<a><![CDATA[\r\n]]></a>", "<a>\t\n</a>",
	`<a><![CDATA[]]></a>`, `<a><![CDATA[a]]]></a>`, `<a><![CDATA[<&>]]></a>`, `<a><![CDATA[x]]>y<![CDATA[z]]></a>`,
	`<a><![CDATA[x</a>`, `<a><![cdata[x]]></a>`, `<a><![CDATA[` + "\x01" + `]]></a>`,
	`<a><!----></a>`, `<a><!-- - --></a>`, `<a><!-- -- --></a>`, `<a><!---></a>`, `<a><!-x--></a>`, `<a><!--x</a>`,
	"<a><!--\xff--></a>", `<!-- before --><a/><!-- after -->`, `<a>x<!--c-->y</a>`,
	`<a b="1"c="2"/>`, `<a b = "1" />`, `<a b="1' c='2"/>`, `<a b="x"/ >`, `<a/ >`, `<a b/>`, `<a b=/>`, `<a "b"/>`,
	`<a b="&#x3C;"/>`, `<a b="]]>"/>`, `<a xmlns:="urn:x"/>`, `<a:b xmlns:a="urn:a"></a:b >`, `<a></a\t>`, `</ a>`, `< a/>`,
	"<a\xc3\xa4/>", "<\xc3\xa4/>", "<a b\xc3\xa4=\"1\"/>", "<a>\xc3</a>", "<a>\xed\xa0\x80</a>", "<a>\xef\xbf\xbf</a>",
	"<a>\x7f\u0085\u00a0\u2028</a>", "<Patient><text><div xmlns=\"http://www.w3.org/1999/xhtml\">\u00a0</div></text>\u00a0<id value=\"1\"/></Patient>",
	`<!DOCTYPE a><a/>`, `<!ENTITY a "b"><a/>`, `<a><!ELEMENT b></a>`, `<a>`, `<a></b>`, `<a/><b/>`, ` `, ``, `<`, `<a`,
	"\uFEFF<a/>", "\uFEFF\uFEFF<a/>", `text<a/>`, `<a/>text`, " \n<a/>\n ", `<a.b/>`, `<a-b/>`, `<_a/>`, `<a:b:c/>`,
	`<Patient xmlns="http://hl7.org/fhir"><id value="1" value="2"/><name xmlns:x="urn:x" x:a="1"/></Patient>`,
	`<Patient xmlns="http://hl7.org/fhir" xmlns:f="http://hl7.org/fhir"><f:id value="1"/></Patient>`,
	`<Patient xmlns="http://hl7.org/fhir"><id xml:lang="de" value="1"/></Patient>`,
	`<Patient><x:id xmlns:x="urn:x"/></Patient>`, `<x:Patient xmlns:x="urn:evil"/>`,
	`<a>` + strings.Repeat(`<b c="d">e</b>`, 300) + `</a>`,
	strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70),
}

// checkScan compares what the scanner answers for data, in FHIR's mode and ReadXML's, with what
// the decoder answers, unless the scanner leaves data to it; scanned says whether it read data
// in FHIR's mode.
func checkScan(t *testing.T, name string, data []byte, lim fhir.Limits) (scanned bool) {
	t.Helper()
	for _, fhirMode := range []bool{true, false} {
		got, gerr, unusual := fhir.Scan(data, lim, fhirMode)
		if fhirMode {
			scanned = !unusual
		}
		if unusual {
			continue
		}
		want, werr := fhir.Decode(data, lim, fhirMode)
		gis, gstatus := fhir.Explain(gerr)
		wis, wstatus := fhir.Explain(werr)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || fmt.Sprint(gis) != fmt.Sprint(wis) || gstatus != wstatus {
			t.Errorf("%s (FHIR %v): error %v %v, want %v %v\ninput %q", name, fhirMode, gerr, gis, werr, wis, data)
			continue
		}
		if d := sameTree(got, want); d != "" {
			t.Errorf("%s (FHIR %v): %s\ninput %q", name, fhirMode, d, data)
		}
	}
	return scanned
}

// scanLimits are the limits the comparisons run with: the defaults, and tight ones the inputs
// reach.
var scanLimits = []fhir.Limits{fhir.DefaultLimits, {MaxDepth: 8, MaxElements: 40, MaxAttributes: 2}}

func TestScanMatchesDecoder(t *testing.T) {
	inputs := map[string][]byte{}
	for i, s := range scanCases {
		inputs[fmt.Sprintf("scan case %d", i)] = []byte(s)
	}
	for i, s := range unmarshalCases {
		inputs[fmt.Sprintf("unmarshal case %d", i)] = []byte(s)
	}
	for i, s := range handMade {
		inputs[fmt.Sprintf("hand-made %d", i)] = []byte(s)
	}
	files := testdataFiles(t)
	for path, data := range files {
		inputs[path] = data
		// the same with Windows line ends, and with a comment and a CDATA section in the root
		inputs[path+" (CRLF)"] = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
		if i := bytes.Index(data, []byte("><")); i > 0 {
			inputs[path+" (comment)"] = append(append(bytes.Clone(data[:i+1]), "<!-- c --><![CDATA[ ]]>"...), data[i+1:]...)
		}
	}
	for name, data := range inputs {
		for _, lim := range scanLimits {
			checkScan(t, name, data, lim)
		}
	}

	// the scanner reads every FHIR document of the module's testdata itself
	for path, data := range files {
		if _, err := fhir.Decode(data, fhir.DefaultLimits, true); err == nil && !checkScan(t, path, data, fhir.DefaultLimits) {
			t.Errorf("%s: Parse leaves it to the decoder", path)
		}
	}
}

// testdataFiles are the files under the module's testdata folders (fuzz corpora too), up to
// 4 MiB each.
func testdataFiles(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.Contains(filepath.ToSlash(path), "testdata/") {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > 4<<20 {
			return err
		}
		data, err := os.ReadFile(path)
		out[path] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 300 {
		t.Fatalf("only %d files: the testdata folders were not found", len(out))
	}
	return out
}

// FuzzScanMatchesDecoder: whatever the scanner reads itself, it reads as the decoder does.
func FuzzScanMatchesDecoder(f *testing.F) {
	for _, s := range scanCases {
		f.Add([]byte(s))
	}
	for _, s := range unmarshalCases {
		f.Add([]byte(s))
	}
	for _, s := range handMade {
		f.Add([]byte(s))
	}
	for _, data := range testdataFiles(f) {
		if len(data) < 16<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range scanLimits {
			checkScan(t, "input", data, lim)
		}
	})
}

// BenchmarkParse reads a Patientenakte (testdata/bundles/patientenakte.xml) as Parse does, with
// the scanner, and with encoding/xml's decoder alone, as Parse did before the scanner.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "testdata", "bundles", "patientenakte.xml"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		parse func() (*etree.Element, error)
	}{
		{"scan", func() (*etree.Element, error) { return fhir.Parse(data, fhir.DefaultLimits) }},
		{"decoder", func() (*etree.Element, error) { return fhir.Decode(data, fhir.DefaultLimits, true) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.parse(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

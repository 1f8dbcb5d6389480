package fhir_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
)

// manyAttributes is a Patient whose id element carries n attributes.
func manyAttributes(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Patient><id value="p"/></Patient></resource></entry><entry><resource><Patient><id`)
	for i := range n {
		sb.WriteString(" a" + strconv.Itoa(i) + `="x"`)
	}
	sb.WriteString(`/></Patient></resource></entry></Bundle>`)
	return []byte(sb.String())
}

func TestParseBoundsAttributes(t *testing.T) {
	cases := []struct {
		name  string
		n     int
		lim   fhir.Limits
		error bool
	}{
		{"refuses 80,000 attributes on one element", 80_000, fhir.DefaultLimits, true},
		{"refuses one more than the limit", 11, fhir.Limits{MaxAttributes: 10}, true},
		{"accepts as many as the limit", 10, fhir.Limits{MaxAttributes: 10}, false},
		{"accepts the default number", fhir.DefaultMaxAttributes, fhir.DefaultLimits, false},
		{"refuses beyond the default when the limits name none", fhir.DefaultMaxAttributes + 1, fhir.Limits{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := fhir.Parse(manyAttributes(c.n), c.lim)
			if !c.error {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("parsed")
			}
			is, status := fhir.Explain(err)
			if len(is) != 1 || is[0].Code != fhir.CodeTooCostly || status != http.StatusRequestEntityTooLarge ||
				is[0].Expression != "Bundle.entry[1].resource.id[0]" || !strings.Contains(is[0].Diagnostics, strconv.Itoa(c.n)+" attributes") {
				t.Errorf("got %d %+v", status, is)
			}
		})
	}
	t.Run("refuses as ReadXML too", func(t *testing.T) {
		if _, err := fhir.ReadXML(manyAttributes(1000), fhir.Limits{}); fhir.CodeOf(err) != fhir.CodeTooCostly {
			t.Errorf("err = %v", err)
		}
	})
}

// BenchmarkParseManyAttributes measures the refusal of 80,000 attributes on one element, which
// took the parser 57 s while it compared each attribute with all earlier ones.
func BenchmarkParseManyAttributes(b *testing.B) {
	data := manyAttributes(80_000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := fhir.Parse(data, fhir.DefaultLimits); fhir.CodeOf(err) != fhir.CodeTooCostly {
			b.Fatal(err)
		}
	}
}

// endsAfter is a context whose Err reports cancellation from its n-th call on.
type endsAfter struct {
	context.Context
	n int
}

func (c *endsAfter) Err() error {
	if c.n--; c.n <= 0 {
		return context.Canceled
	}
	return nil
}

func TestParseContext(t *testing.T) {
	big := []byte(`<Bundle xmlns="http://hl7.org/fhir">` + strings.Repeat(`<entry><resource><Patient><id value="p"/></Patient></resource></entry>`, 10_000) + `</Bundle>`)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
	}{
		{"stops before reading for a context that has ended", cancelled},
		{"stops while reading when the context ends", &endsAfter{Context: context.Background(), n: 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := fhir.ParseContext(c.ctx, big, fhir.DefaultLimits)
			if !errors.Is(err, context.Canceled) || fhir.CodeOf(err) == "" {
				t.Errorf("err = %v, want a coded error wrapping context.Canceled", err)
			}
		})
	}
	t.Run("parses while the context lasts", func(t *testing.T) {
		if _, err := fhir.ParseContext(context.Background(), big, fhir.DefaultLimits); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParseNamespaces(t *testing.T) {
	const (
		fhirNS  = `xmlns="http://hl7.org/fhir"`
		xhtmlNS = `xmlns="http://www.w3.org/1999/xhtml"`
	)
	// bundle puts res into the third entry of a Patientenakte
	bundle := func(res string) string {
		entry := `<entry><resource><Patient><id value="p1"/></Patient></resource></entry>`
		return `<Bundle ` + fhirNS + `><type value="history"/>` + entry + entry + `<entry><resource>` + res + `</resource></entry></Bundle>`
	}
	refused := []struct {
		name, body, expression, msg string
	}{
		{"refuses a root in a foreign default namespace", `<Patient xmlns="urn:evil"/>`, "Patient", `namespace "urn:evil"`},
		{"refuses a prefixed root in a foreign namespace", `<x:Patient xmlns:x="urn:evil"><x:id value="1"/></x:Patient>`, "Patient", `namespace "urn:evil"`},
		{"refuses a root in the XHTML namespace", `<Patient ` + xhtmlNS + `/>`, "Patient", "namespace"},
		{"refuses a resource in a foreign namespace inside a bundle entry", bundle(`<Patient xmlns="urn:evil"><id value="p3"/></Patient>`), "Bundle.entry[2].resource", `"urn:evil"`},
		{"refuses a prefixed resource in a foreign namespace inside a bundle entry", bundle(`<x:Patient xmlns:x="urn:evil"><x:id value="p3"/></x:Patient>`), "Bundle.entry[2].resource", `"urn:evil"`},
		{"refuses a resource in the XHTML namespace outside a narrative", bundle(`<Patient ` + xhtmlNS + `><id value="p3"/></Patient>`), "Bundle.entry[2].resource", "XHTML only in a narrative"},
		{"refuses an element in a foreign namespace", bundle(`<Patient><id value="p3"/><name/><name><x:family xmlns:x="urn:evil" value="a"/></name></Patient>`), "Bundle.entry[2].resource.name[1].family[0]", `"x:family"`},
		{"refuses an element in no namespace", bundle(`<Patient><id value="p3"/><gender xmlns="" value="male"/></Patient>`), "Bundle.entry[2].resource.gender[0]", "in no namespace"},
		{"refuses an undeclared prefix", bundle(`<Patient><y:id value="p3"/></Patient>`), "Bundle.entry[2].resource.id[0]", `prefix "y"`},
		{"refuses a narrative div outside the XHTML namespace", bundle(`<Patient><text><status value="generated"/><div>x</div></text></Patient>`), "Bundle.entry[2].resource.text[0].div[0]", "XHTML namespace"},
		{"refuses a FHIR element inside a narrative", bundle(`<Patient><text><div ` + xhtmlNS + `><p><id ` + fhirNS + ` value="1"/></p></div></text></Patient>`), "Bundle.entry[2].resource.text[0].div[0].p[0].id[0]", "inside a narrative"},
		{"refuses a foreign element inside a narrative", bundle(`<Patient><text><div ` + xhtmlNS + `><svg xmlns="http://www.w3.org/2000/svg"/></div></text></Patient>`), "Bundle.entry[2].resource.text[0].div[0].svg[0]", "narrative XHTML"},
		{"refuses an end tag with another prefix for the same namespace", `<f:Patient xmlns:f="http://hl7.org/fhir" xmlns:g="http://hl7.org/fhir"></g:Patient>`, "", "unexpected end element"},
		{"refuses a name that is no qualified name", bundle(`<Patient><x: value="1"/></Patient>`), "Bundle.entry[2].resource.x:[0]", "qualified name"},
		{"cuts a long foreign namespace short", `<Patient xmlns="urn:` + strings.Repeat("e", 10_000) + `"/>`, "Patient", `"urn:eeee`},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := fhir.Parse([]byte(c.body), fhir.DefaultLimits)
			is, status := fhir.Explain(err)
			if len(is) != 1 || status != http.StatusBadRequest || is[0].Code != fhir.CodeStructure || is[0].Expression != c.expression || !strings.Contains(is[0].Diagnostics, c.msg) {
				t.Fatalf("got %d %+v, want structure at %q saying %q", status, is, c.expression, c.msg)
			}
			if len(is[0].Diagnostics) > 300 {
				t.Errorf("the message echoes the input at length: %d bytes", len(is[0].Diagnostics))
			}
		})
	}

	accepted := []struct {
		name, body, want string
	}{
		{"accepts FHIR with a prefix, which is normalised away", `<f:Patient xmlns:f="http://hl7.org/fhir"><f:id value="1"/></f:Patient>`,
			`<Patient xmlns="http://hl7.org/fhir"><id value="1"/></Patient>`},
		{"accepts a narrative in XHTML with nested elements", `<Patient ` + fhirNS + `><text><status value="generated"/><div ` + xhtmlNS + `><p>a <b>b</b></p></div></text></Patient>`,
			`<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>a <b>b</b></p></div></text></Patient>`},
		{"accepts a prefixed XHTML narrative", `<Patient ` + fhirNS + `><text><h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:p>a</h:p></h:div></text></Patient>`,
			`<Patient xmlns="http://hl7.org/fhir"><text><h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:p>a</h:p></h:div></text></Patient>`},
		{"accepts a document without namespace, as some clients write it", `<Patient><id value="1"/></Patient>`,
			`<Patient xmlns="http://hl7.org/fhir"><id value="1"/></Patient>`},
		{"accepts resources that declare the FHIR namespace again", `<Bundle ` + fhirNS + `><entry><resource><Patient ` + fhirNS + `><id value="1"/></Patient></resource></entry></Bundle>`,
			`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Patient><id value="1"/></Patient></resource></entry></Bundle>`},
		{"accepts a UTF-8 byte order mark", "\uFEFF<Patient " + fhirNS + `><id value="1"/></Patient>`,
			`<Patient xmlns="http://hl7.org/fhir"><id value="1"/></Patient>`},
		{"accepts a byte order mark before the XML declaration", "\uFEFF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Patient " + fhirNS + `><id value="1"/></Patient>`,
			`<Patient xmlns="http://hl7.org/fhir"><id value="1"/></Patient>`},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			root, err := fhir.Parse([]byte(c.body), fhir.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(fhir.Marshal(root)); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
	t.Run("ReadXML keeps any namespace", func(t *testing.T) {
		if _, err := fhir.ReadXML([]byte(`<x:Envelope xmlns:x="urn:any"><y:Body xmlns:y="urn:other"/></x:Envelope>`), fhir.DefaultLimits); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkParseBundle parses a Patientenakte of 27 MiB of indented Patient entries (about the
// largest body red accepts by default) and reports, besides time and allocations, the memory its
// tree holds (tree-x: as a multiple of the body's bytes). go test -memprofile shows where it goes.
func BenchmarkParseBundle(b *testing.B) {
	akte, err := os.ReadFile(filepath.Join("..", "testdata", "bundles", "patients.xml"))
	if err != nil {
		b.Fatal(err)
	}
	s := string(akte)
	entry := s[strings.Index(s, "<entry>") : strings.Index(s, "</entry>")+len("</entry>")]
	var sb strings.Builder
	sb.WriteString(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`)
	for sb.Len() < 27<<20 {
		sb.WriteString(entry)
	}
	sb.WriteString(`</Bundle>`)
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var tree uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		root, err := fhir.Parse(data, fhir.DefaultLimits)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		tree = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(root)
	}
	b.ReportMetric(float64(tree)/(1<<20), "MB-tree")
	b.ReportMetric(float64(tree)/float64(len(data)), "tree-x")
}

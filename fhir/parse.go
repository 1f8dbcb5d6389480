package fhir

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Namespace is the FHIR XML namespace.
const Namespace = "http://hl7.org/fhir"

// XHTMLNamespace is the namespace of narrative divs.
const XHTMLNamespace = "http://www.w3.org/1999/xhtml"

// xmlNamespace is the namespace the prefix xml is bound to without a declaration.
const xmlNamespace = "http://www.w3.org/XML/1998/namespace"

// Limits bound what a request body may cost to parse. A zero MaxBytes, MaxDepth or MaxElements
// sets no bound; a zero MaxAttributes means DefaultMaxAttributes, since no XML red reads needs
// more and each one is compared with the others.
type Limits struct {
	MaxBytes      int64 // body size (documents carry base64 PDFs)
	MaxDepth      int   // element nesting
	MaxElements   int   // elements in all
	MaxAttributes int   // attributes of one element, namespace declarations included
}

// DefaultMaxAttributes bounds the attributes of one element: FHIR elements carry one or two, a
// narrative's XHTML or a SOAP envelope's namespace declarations a handful.
const DefaultMaxAttributes = 64

// DefaultLimits are generous for real bundles and stop pathological ones.
var DefaultLimits = Limits{MaxBytes: 32 << 20, MaxDepth: 64, MaxElements: 1_000_000, MaxAttributes: DefaultMaxAttributes}

// checkEvery is how many tokens the parser reads between two looks at its context.
const checkEvery = 1024

// declarations are the markup declarations named in messages; others are called directives.
var declarations = map[string]bool{"DOCTYPE": true, "ENTITY": true, "ELEMENT": true, "ATTLIST": true, "NOTATION": true}

// utf8BOM may open a body; it is not part of the document.
var utf8BOM = []byte("\xEF\xBB\xBF")

// Parse is ParseContext without a context to stop it.
func Parse(data []byte, lim Limits) (*etree.Element, error) {
	return ParseContext(context.Background(), data, lim)
}

// ParseContext reads one FHIR XML document, refusing DOCTYPE and entity declarations, anything
// beyond lim and elements outside the FHIR namespace (except a narrative's XHTML div and what it
// holds, which must be XHTML), and returns its root element with FHIR-namespace prefixes and
// declarations normalised away and whitespace-only text between FHIR elements left out (narrative
// XHTML is kept as it was). The tree is built in the same single pass that checks; the pass stops
// when ctx ends. A UTF-8 byte order mark before the document is accepted.
func ParseContext(ctx context.Context, data []byte, lim Limits) (*etree.Element, error) {
	return read(ctx, data, lim, true)
}

// ReadXML reads any XML document (a SOAP envelope, say) within lim, refusing DOCTYPE and entity
// declarations, and returns its root as written: no namespace check, nothing normalised.
func ReadXML(data []byte, lim Limits) (*etree.Element, error) {
	return read(context.Background(), data, lim, false)
}

func read(ctx context.Context, data []byte, lim Limits, fhir bool) (*etree.Element, error) {
	if lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes {
		return nil, Fail(CodeTooCostly, "", "the body has %d bytes; at most %d are accepted", len(data), lim.MaxBytes)
	}
	if lim.MaxAttributes <= 0 {
		lim.MaxAttributes = DefaultMaxAttributes
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if root, err := (&builder{ctx: ctx, lim: lim, fhir: fhir}).scan(string(data)); err != errUnusual {
		return root, err
	}
	return decode(ctx, data, lim, fhir)
}

// decode builds the tree from encoding/xml's tokens: for what scan leaves to the decoder.
func decode(ctx context.Context, data []byte, lim Limits, fhir bool) (*etree.Element, error) {
	b := &builder{ctx: ctx, lim: lim, fhir: fhir, dec: xml.NewDecoder(bytes.NewReader(data)), names: make(map[string]string, 128)}
	b.dec.Strict = true
	return b.build()
}

// builder turns the token stream into an etree tree, checking well-formedness (with line numbers),
// DOCTYPE, the limits and — for FHIR — namespaces as it goes. Its tokens come from encoding/xml's
// decoder (build) or from scan, which reads the common form of XML itself.
type builder struct {
	ctx  context.Context
	lim  Limits
	fhir bool         // check and normalise FHIR namespaces
	dec  *xml.Decoder // nil while scan reads

	root   *etree.Element
	stack  []frame
	binds  []binding // namespace declarations in scope, innermost last
	rootNS string    // the namespace FHIR elements are in: FHIR's, or none for a document without
	count  int
	tokens int
	names  map[string]string // tag and attribute names, each kept once
	elems  []etree.Element   // a slab new elements are cut from
	attrs  []etree.Attr      // a slab new attribute lists are cut from
	lists  []etree.Token     // a slab child lists are cut from
	kids   []etree.Token     // the children of the open elements so far, innermost last
	buf    []byte            // scan's text with references replaced
}

// frame is an open element. Its children are collected in builder.kids until it closes and
// then added to it, so that each child list is allocated once, at its size.
type frame struct {
	el    *etree.Element
	name  xml.Name // as written, for the end tag
	ns    string
	xhtml bool // a narrative's div or inside one
	binds int  // len(builder.binds) before the element's own declarations
	kids  int  // where its children start in builder.kids
}

type binding struct{ prefix, uri string }

func (b *builder) build() (*etree.Element, error) {
	for {
		if err := b.next(); err != nil {
			return nil, err
		}
		tok, err := b.dec.RawToken()
		if err == io.EOF {
			return b.finish()
		}
		if err != nil {
			return nil, Fail(CodeStructure, "", "the body is not well-formed XML: %s", xmlReason(err))
		}
		switch t := tok.(type) {
		case xml.Directive:
			name := "directive"
			if kind := strings.Fields(string(t[:min(len(t), 16)])); len(kind) > 0 && declarations[kind[0]] {
				name = kind[0]
			}
			return nil, Fail(CodeSecurity, "", "XML %s declarations are not accepted", name)
		case xml.StartElement:
			err = b.start(t)
		case xml.EndElement:
			err = b.end(t.Name)
		case xml.CharData:
			err = b.text(string(t))
		}
		if err != nil {
			return nil, err
		}
	}
}

// next counts a token and looks at the context every checkEvery tokens.
func (b *builder) next() error {
	if b.tokens%checkEvery == 0 {
		if err := b.ctx.Err(); err != nil {
			return Wrap(err, CodeTimeout, "reading the body stopped: the request ended")
		}
	}
	b.tokens++
	return nil
}

// finish is the end of the input: the tree, if it is whole.
func (b *builder) finish() (*etree.Element, error) {
	switch {
	case b.root == nil:
		return nil, Fail(CodeStructure, "", "the body holds no XML element")
	case len(b.stack) > 0:
		return nil, b.malformed("unexpected end of input inside <" + b.stack[len(b.stack)-1].el.FullTag() + ">")
	}
	return b.root, nil
}

// end closes the innermost open element, which must be the one named.
func (b *builder) end(name xml.Name) error {
	if len(b.stack) == 0 || b.stack[len(b.stack)-1].name != name {
		return b.malformed("unexpected end element </" + rawName(name) + ">")
	}
	top := b.stack[len(b.stack)-1]
	b.binds = b.binds[:top.binds]
	b.stack = b.stack[:len(b.stack)-1]
	kids := b.kids[top.kids:]
	if n := len(kids); n > cap(b.lists)-len(b.lists) {
		top.el.Child = make([]etree.Token, 0, n)
	} else {
		top.el.Child = b.lists[len(b.lists) : len(b.lists) : len(b.lists)+n]
		b.lists = b.lists[:len(b.lists)+n]
	}
	for _, k := range kids {
		top.el.AddChild(k)
	}
	clear(kids)
	b.kids = b.kids[:top.kids]
	return nil
}

// text adds character data to the open element: outside the root only whitespace may stand,
// and whitespace between FHIR elements is indentation, left out.
func (b *builder) text(t string) error {
	if len(b.stack) == 0 {
		if len(strings.TrimSpace(t)) > 0 {
			if b.root == nil {
				return Fail(CodeStructure, "", "the body holds no XML element")
			}
			return b.malformed("text outside the root element")
		}
		return nil
	}
	top := b.stack[len(b.stack)-1]
	if b.fhir && !top.xhtml && len(strings.TrimSpace(t)) == 0 {
		return nil // indentation between FHIR elements
	}
	b.kids = append(b.kids, etree.NewText(t))
	return nil
}

// malformed is a well-formedness error at the decoder's line; scan leaves such input to the
// decoder.
func (b *builder) malformed(msg string) error {
	if b.dec == nil {
		return errUnusual
	}
	line, _ := b.dec.InputPos()
	return Fail(CodeStructure, "", "the body is not well-formed XML: line %d: %s", line, msg)
}

// start opens an element: limits, namespace, attributes.
func (b *builder) start(t xml.StartElement) error {
	b.count++
	if b.lim.MaxDepth > 0 && len(b.stack) >= b.lim.MaxDepth {
		return Fail(CodeTooCostly, "", "elements are nested more than %d levels deep", b.lim.MaxDepth)
	}
	if b.lim.MaxElements > 0 && b.count > b.lim.MaxElements {
		return Fail(CodeTooCostly, "", "the body has more than %d elements", b.lim.MaxElements)
	}
	if len(b.stack) == 0 && b.root != nil {
		return b.malformed("a second root element")
	}
	if len(t.Attr) > b.lim.MaxAttributes {
		return Fail(CodeTooCostly, b.path(t.Name.Local), "the element %s has %d attributes; at most %d are accepted", Quote(rawName(t.Name)), len(t.Attr), b.lim.MaxAttributes)
	}
	f := frame{binds: len(b.binds)}
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "xmlns":
			b.binds = append(b.binds, binding{a.Name.Local, a.Value})
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			b.binds = append(b.binds, binding{"", a.Value})
		}
	}
	space, local := t.Name.Space, t.Name.Local
	if b.fhir {
		var err error
		if f.ns, f.xhtml, err = b.namespace(t.Name); err != nil {
			return err
		}
		if !f.xhtml {
			space = "" // FHIR's prefix, normalised away
		}
		local = b.intern(local)
	}
	tag := rawName(t.Name) // as written; etree splits off the prefix
	if b.fhir {
		tag = local
	}
	var e *etree.Element
	if len(b.stack) > 0 {
		e = b.element(tag)
		b.kids = append(b.kids, e)
	} else {
		e = etree.NewElement(tag)
		b.root = e
	}
	if b.fhir {
		e.Space, e.Tag = space, local
	}
	e.Attr = b.attrList(len(t.Attr))
	for _, a := range t.Attr {
		if b.fhir && !f.xhtml && isDeclaration(a.Name) && (a.Value == Namespace || a.Value == "" && b.rootNS == "") {
			continue // the writer declares FHIR's namespace once on the root
		}
		key := b.intern(a.Name.Local)
		if a.Name.Space != "" {
			key = a.Name.Space + ":" + key
		}
		e.CreateAttr(key, b.internValue(a.Value))
	}
	f.el, f.name, f.kids = e, t.Name, len(b.kids)
	b.stack = append(b.stack, f)
	return nil
}

// slabSize is how many elements, or attributes, the builder allocates at a time.
const slabSize = 128

// noTokens is the empty child list of a new element, as etree.NewElement gives it.
var noTokens = make([]etree.Token, 0)

// element is etree.NewElement(tag) cut from the builder's slab of elements.
func (b *builder) element(tag string) *etree.Element {
	if len(b.elems) == 0 {
		b.elems = make([]etree.Element, slabSize)
	}
	e := &b.elems[0]
	b.elems = b.elems[1:]
	e.Space, e.Tag = splitName(tag)
	e.Child = noTokens
	return e
}

// attrList is an empty attribute list with room for n, cut from the builder's slab.
func (b *builder) attrList(n int) []etree.Attr {
	if n > slabSize/4 {
		return make([]etree.Attr, 0, n)
	}
	if len(b.attrs) < n {
		b.attrs = make([]etree.Attr, slabSize)
	}
	list := b.attrs[:0:n]
	b.attrs = b.attrs[n:]
	return list
}

func isDeclaration(n xml.Name) bool {
	return n.Space == "xmlns" || (n.Space == "" && n.Local == "xmlns")
}

// namespace resolves an element's namespace and checks it: the root is FHIR's (or in none, as
// some clients write it) and so is every element after it, except the div of a narrative (text)
// and what it holds, which are XHTML.
func (b *builder) namespace(n xml.Name) (ns string, xhtml bool, err error) {
	if strings.Contains(n.Local, ":") {
		return "", false, Fail(CodeStructure, b.path(n.Local), "the element name %s is not a qualified name (prefix:name)", Quote(rawName(n)))
	}
	ns = b.lookup(n.Space)
	if n.Space != "" && ns == "" {
		return "", false, Fail(CodeStructure, b.path(n.Local), "the element %s uses the prefix %s, which is not declared", Quote(rawName(n)), Quote(n.Space))
	}
	if len(b.stack) == 0 {
		if ns != "" && ns != Namespace {
			return "", false, Fail(CodeStructure, shortName(n.Local), "the root element is in namespace %s; FHIR XML uses %q", Quote(ns), Namespace)
		}
		b.rootNS = ns
		return ns, false, nil
	}
	parent := b.stack[len(b.stack)-1]
	narrative := !parent.xhtml && parent.el.Tag == "text" && n.Local == "div"
	switch {
	case parent.xhtml && ns == XHTMLNamespace, narrative && ns == XHTMLNamespace:
		return ns, true, nil
	case parent.xhtml:
		return "", false, Fail(CodeStructure, b.path(n.Local), "the element %s inside a narrative is %s; narrative XHTML is in %q", Quote(rawName(n)), inNamespace(ns), XHTMLNamespace)
	case narrative:
		return "", false, Fail(CodeStructure, b.path(n.Local), "a narrative's div is %s; it is in the XHTML namespace %q", inNamespace(ns), XHTMLNamespace)
	case ns == Namespace, ns == "" && b.rootNS == "":
		return ns, false, nil
	}
	return "", false, Fail(CodeStructure, b.path(n.Local), "the element %s is %s; FHIR elements are in %q, and XHTML only in a narrative's div (text/div)", Quote(rawName(n)), inNamespace(ns), Namespace)
}

func inNamespace(ns string) string {
	if ns == "" {
		return "in no namespace"
	}
	return "in namespace " + Quote(ns)
}

// lookup is the namespace a prefix ("" for the default) is bound to, "" when none.
func (b *builder) lookup(prefix string) string {
	if prefix == "xml" {
		return xmlNamespace
	}
	for i := len(b.binds) - 1; i >= 0; i-- {
		if b.binds[i].prefix == prefix {
			return b.binds[i].uri
		}
	}
	return ""
}

// intern keeps one copy of each tag and attribute name, which repeat throughout a document. Names
// scan reads are parts of one copy of the document already: it has no table.
func (b *builder) intern(s string) string {
	if b.names == nil {
		return s
	}
	if v, ok := b.names[s]; ok {
		return v
	}
	if len(b.names) < 4096 {
		b.names[s] = s
	}
	return s
}

// internValue keeps one copy of short attribute values, which repeat (codes, systems, profiles).
func (b *builder) internValue(s string) string {
	if len(s) > 64 {
		return s
	}
	return b.intern(s)
}

// path locates the element named local that is about to open, FHIRPath-like: tags with their
// index among same-named siblings, resource elements (Bundle.entry[2].resource) standing for
// themselves, as in Bundle.entry[2].resource.name[0].
func (b *builder) path(local string) string {
	if len(b.stack) == 0 {
		return shortName(local)
	}
	var sb strings.Builder
	sb.WriteString(shortName(b.stack[0].el.Tag))
	for i := 1; i <= len(b.stack); i++ {
		var tag string
		var self *etree.Element
		if i < len(b.stack) {
			self = b.stack[i].el
			tag = self.Tag
		} else {
			tag = local
		}
		if b.fhir && isResourceName(tag) && !b.stack[i-1].xhtml {
			continue // Bundle.entry[2].resource is the resource itself
		}
		sb.WriteString(".")
		sb.WriteString(shortName(tag))
		if tag == "resource" {
			continue
		}
		n := 0
		for _, c := range b.kids[b.stack[i-1].kids:] { // the parent's children so far
			if el, ok := c.(*etree.Element); ok && el != self && el.Tag == tag {
				n++
			} else if ok && el == self {
				break
			}
		}
		sb.WriteString("[" + strconv.Itoa(n) + "]")
	}
	return sb.String()
}

// shortName is an XML name for a location: cut to MaxQuoted bytes with an ellipsis when longer.
func shortName(s string) string {
	if len(s) <= MaxQuoted {
		return s
	}
	cut := MaxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// isResourceName reports whether a tag names a resource type rather than an element: resource
// types start upper-case, FHIR elements lower-case.
func isResourceName(tag string) bool {
	return tag != "" && tag[0] >= 'A' && tag[0] <= 'Z'
}

func rawName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// xmlReason keeps the decoder's message (line number and what was wrong) without input text.
func xmlReason(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("line %d: %s", se.Line, se.Msg)
	}
	return "malformed input"
}

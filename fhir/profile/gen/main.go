// Command gen reads FHIR StructureDefinitions (profiles and extensions), ValueSets and CodeSystems
// in XML from one or more folders and writes the Go tables of package profile: per profile its
// elements (merged over the ancestors present), slicing with per-slice discriminator values,
// bindings with required value sets expanded over the code systems present, and invariants.
//
//	go run ./fhir/profile/gen -defs DIR [-defs DIR2] -out fhir/profile/tables_gen.go
//
// The definitions carry differentials only; FHIR core is not read, so core cardinalities and core
// invariants are not part of the tables.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir/profile"
)

type dirs []string

func (d *dirs) String() string     { return strings.Join(*d, ",") }
func (d *dirs) Set(v string) error { *d = append(*d, v); return nil }

func main() {
	var defs dirs
	flag.Var(&defs, "defs", "folder of definitions (XML), searched recursively; may be given more than once")
	out := flag.String("out", "fhir/profile/tables_gen.go", "Go file to write")
	source := flag.String("source", "", "source description for the header comment (default: the package names found)")
	flag.Parse()
	if len(defs) == 0 {
		log.Fatal("gen: -defs DIR is required")
	}
	g := newGen()
	for _, d := range defs {
		if err := g.readDir(d); err != nil {
			log.Fatal(err)
		}
	}
	t := g.build()
	if *source != "" {
		t.Source = *source
	}
	src, err := emit(t)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
	st := stats(t)
	log.Printf("gen: %s", st)
}

// rawSD is a StructureDefinition as read.
type rawSD struct {
	sd   *profile.StructureDef
	diff []*profile.ElementDef
	file string
}

type codeSystem struct {
	url      string
	complete bool
	codes    []string
}

type gen struct {
	sds      map[string]*rawSD // by url
	order    []string
	vsRaw    map[string]*etree.Element
	vsMeta   map[string][2]string // url → version, name
	cs       map[string]*codeSystem
	publish  map[string]bool // publishers / package hints for the header
	warnings []string
}

func newGen() *gen {
	return &gen{sds: map[string]*rawSD{}, vsRaw: map[string]*etree.Element{}, vsMeta: map[string][2]string{},
		cs: map[string]*codeSystem{}, publish: map[string]bool{}}
}

func (g *gen) readDir(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.EqualFold(filepath.Ext(p), ".xml") {
			return nil
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromFile(p); err != nil {
			g.warnings = append(g.warnings, fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		root := doc.Root()
		if root == nil {
			return nil
		}
		switch root.Tag {
		case "StructureDefinition":
			g.readSD(root, p)
		case "ValueSet":
			u := val(root, "url")
			if _, dup := g.vsRaw[u]; !dup {
				g.vsRaw[u] = root
				g.vsMeta[u] = [2]string{val(root, "version"), val(root, "name")}
			}
		case "CodeSystem":
			g.readCS(root)
		}
		return nil
	})
}

func val(e *etree.Element, tag string) string {
	if c := e.SelectElement(tag); c != nil {
		return c.SelectAttrValue("value", "")
	}
	return ""
}

func vals(e *etree.Element, tag string) []string {
	var out []string
	for _, c := range e.SelectElements(tag) {
		out = append(out, c.SelectAttrValue("value", ""))
	}
	return out
}

func (g *gen) readCS(root *etree.Element) {
	cs := &codeSystem{url: val(root, "url"), complete: val(root, "content") == "complete"}
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, c := range e.SelectElements("concept") {
			cs.codes = append(cs.codes, val(c, "code"))
			walk(c)
		}
	}
	walk(root)
	if _, dup := g.cs[cs.url]; !dup {
		g.cs[cs.url] = cs
	}
}

func (g *gen) readSD(root *etree.Element, file string) {
	sd := &profile.StructureDef{
		URL: val(root, "url"), Version: val(root, "version"), Name: val(root, "name"),
		Kind: val(root, "kind"), Type: val(root, "type"), Base: val(root, "baseDefinition"),
	}
	if val(root, "derivation") != "constraint" {
		return // logical models and specialisations are not profiles of an instance
	}
	for _, c := range root.SelectElements("context") {
		sd.Contexts = append(sd.Contexts, profile.Context{Type: val(c, "type"), Expression: val(c, "expression")})
	}
	r := &rawSD{sd: sd, file: file}
	if d := root.SelectElement("differential"); d != nil {
		for _, e := range d.SelectElements("element") {
			r.diff = append(r.diff, readElement(e))
		}
	}
	if _, dup := g.sds[sd.URL]; dup {
		g.warnings = append(g.warnings, "duplicate "+sd.URL+" in "+file)
		return
	}
	g.sds[sd.URL] = r
	g.order = append(g.order, sd.URL)
}

func readElement(e *etree.Element) *profile.ElementDef {
	el := &profile.ElementDef{ID: e.SelectAttrValue("id", ""), Path: val(e, "path"), SliceName: val(e, "sliceName"), Min: -1}
	if el.ID == "" {
		el.ID = el.Path
	}
	if m := e.SelectElement("min"); m != nil {
		n, err := strconv.Atoi(m.SelectAttrValue("value", ""))
		if err == nil {
			el.Min = n
		}
	}
	el.Max = val(e, "max")
	if m := val(e, "maxLength"); m != "" {
		el.MaxLength, _ = strconv.Atoi(m)
	}
	for _, c := range e.ChildElements() {
		switch {
		case strings.HasPrefix(c.Tag, "fixed"):
			el.Fixed = &profile.Value{Type: strings.TrimPrefix(c.Tag, "fixed"), Node: node(c, "")}
		case strings.HasPrefix(c.Tag, "pattern"):
			el.Pattern = &profile.Value{Type: strings.TrimPrefix(c.Tag, "pattern"), Node: node(c, "")}
		}
	}
	if b := e.SelectElement("binding"); b != nil {
		el.Binding = &profile.Binding{Strength: val(b, "strength"), ValueSet: val(b, "valueSet")}
	}
	if s := e.SelectElement("slicing"); s != nil {
		sl := &profile.Slicing{Rules: val(s, "rules"), Ordered: val(s, "ordered") == "true"}
		for _, d := range s.SelectElements("discriminator") {
			sl.Discriminators = append(sl.Discriminators, profile.Discriminator{Type: val(d, "type"), Path: val(d, "path")})
		}
		el.Slicing = sl
	}
	for _, t := range e.SelectElements("type") {
		el.Types = append(el.Types, profile.TypeRef{Code: val(t, "code"), Profiles: vals(t, "profile"), TargetProfile: vals(t, "targetProfile")})
	}
	for _, c := range e.SelectElements("constraint") {
		el.Constraints = append(el.Constraints, profile.Constraint{Key: val(c, "key"), Severity: val(c, "severity"),
			Human: val(c, "human"), Expression: val(c, "expression")})
	}
	return el
}

// node turns a fixed/pattern element into a value tree (the root has no name).
func node(e *etree.Element, name string) profile.Node {
	n := profile.Node{Name: name, Value: e.SelectAttrValue("value", "")}
	if u := e.SelectAttrValue("url", ""); u != "" {
		n.Children = append(n.Children, profile.Node{Name: "@url", Value: u})
	}
	for _, c := range e.ChildElements() {
		n.Children = append(n.Children, node(c, c.Tag))
	}
	return n
}

func stripVersion(u string) string {
	if i := strings.IndexByte(u, '|'); i >= 0 {
		return u[:i]
	}
	return u
}

// merged returns the profile's elements merged over its ancestors present.
func (g *gen) merged(url string, seen map[string]bool) ([]*profile.ElementDef, []string) {
	r := g.sds[url]
	if r == nil || seen[url] {
		return nil, nil
	}
	seen[url] = true
	base, chain := g.merged(stripVersion(r.sd.Base), seen)
	if g.sds[stripVersion(r.sd.Base)] != nil {
		chain = append([]string{stripVersion(r.sd.Base)}, chain...)
	}
	out := make([]*profile.ElementDef, 0, len(base)+len(r.diff))
	byID := map[string]*profile.ElementDef{}
	for _, b := range base {
		c := *b
		c.Constraints = slices.Clone(b.Constraints)
		out = append(out, &c)
		byID[c.ID] = &c
	}
	for _, d := range r.diff {
		if b, ok := byID[d.ID]; ok {
			overlay(b, d)
			continue
		}
		c := *d
		out = append(out, &c)
		byID[c.ID] = &c
	}
	return out, chain
}

func overlay(b, d *profile.ElementDef) {
	if d.Min >= 0 {
		b.Min = d.Min
	}
	if d.Max != "" {
		b.Max = d.Max
	}
	if d.Fixed != nil {
		b.Fixed = d.Fixed
	}
	if d.Pattern != nil {
		b.Pattern = d.Pattern
	}
	if d.MaxLength > 0 {
		b.MaxLength = d.MaxLength
	}
	if d.Binding != nil {
		b.Binding = d.Binding
	}
	if d.Slicing != nil {
		b.Slicing = d.Slicing
	}
	if len(d.Types) > 0 {
		b.Types = d.Types
	}
	for _, c := range d.Constraints {
		if !slices.ContainsFunc(b.Constraints, func(x profile.Constraint) bool { return x.Key == c.Key }) {
			b.Constraints = append(b.Constraints, c)
		}
	}
}

// idSegments splits an element id into its segments ("name" or "name:slice").
func idSegments(id string) []string { return strings.Split(id, ".") }

// complete adds the intermediate elements a differential leaves out (without constraints), so that
// every element's parent is in the table.
func complete(els []*profile.ElementDef) []*profile.ElementDef {
	have := map[string]bool{}
	for _, e := range els {
		have[e.ID] = true
	}
	var out []*profile.ElementDef
	for _, e := range els {
		segs := idSegments(e.ID)
		for i := 1; i < len(segs); i++ {
			pid := strings.Join(segs[:i], ".")
			if have[pid] {
				continue
			}
			have[pid] = true
			out = append(out, &profile.ElementDef{ID: pid, Path: pathOf(pid), SliceName: sliceOf(segs[i-1]), Min: -1})
		}
		out = append(out, e)
	}
	return out
}

func pathOf(id string) string {
	segs := idSegments(id)
	for i, s := range segs {
		if j := strings.IndexByte(s, ':'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, ".")
}

func sliceOf(seg string) string {
	if j := strings.IndexByte(seg, ':'); j >= 0 {
		return seg[j+1:]
	}
	return ""
}

func (g *gen) build() *profile.Tables {
	t := &profile.Tables{}
	sort.Strings(g.order)
	merged := map[string][]*profile.ElementDef{}
	for _, u := range g.order {
		els, chain := g.merged(u, map[string]bool{})
		r := g.sds[u]
		r.sd.Chain = chain
		root := u
		for _, c := range chain {
			root = c
		}
		r.sd.CoreBased = strings.HasPrefix(g.sds[root].sd.Base, "http://hl7.org/fhir/StructureDefinition/")
		r.sd.Elements = complete(els)
		merged[u] = r.sd.Elements
		t.Profiles = append(t.Profiles, r.sd)
	}
	for _, p := range t.Profiles {
		g.resolveSlices(p)
	}
	t.ValueSets = g.expandAll()
	pubs := map[string]bool{}
	for _, p := range t.Profiles {
		if name := publication(p.URL); name != "" && p.Version != "" {
			pubs[name+" "+p.Version] = true
		}
	}
	var ps []string
	for p := range pubs {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	t.Source = strings.Join(ps, ", ")
	for _, w := range g.warnings {
		log.Print("gen: warning: ", w)
	}
	return t
}

// publication names the package a profile belongs to, by its canonical URL.
func publication(url string) string {
	kbv := "https://fhir.kbv.de/StructureDefinition/"
	for _, p := range []struct{ prefix, name string }{
		{kbv + "KBV_PR_AW", "KBV AWS"}, {kbv + "KBV_EX_AW", "KBV AWS"},
		{kbv + "KBV_PR_ERP", "KBV ERP"}, {kbv + "KBV_EX_ERP", "KBV ERP"},
		{kbv + "KBV_PR_FOR", "KBV FOR"}, {kbv + "KBV_EX_FOR", "KBV FOR"},
		{kbv + "KBV_PR_Base", "KBV Basis"}, {kbv + "KBV_EX_Base", "KBV Basis"},
		{kbv + "KBV_EX_MIO_Vaccination", "KBV MIO Impfpass"},
		{"http://fhir.de/", "HL7 Deutschland de.basisprofil.r4"},
	} {
		if strings.HasPrefix(url, p.prefix) {
			return p.name
		}
	}
	return ""
}

// elementIndex finds elements of a profile by id.
func elementIndex(p *profile.StructureDef) map[string]*profile.ElementDef {
	m := make(map[string]*profile.ElementDef, len(p.Elements))
	for _, e := range p.Elements {
		m[e.ID] = e
	}
	return m
}

// resolveSlices works out, for every slice, what its discriminators expect.
func (g *gen) resolveSlices(p *profile.StructureDef) {
	idx := elementIndex(p)
	for _, e := range p.Elements {
		if e.SliceName == "" || !strings.HasSuffix(e.ID, ":"+e.SliceName) {
			continue
		}
		baseID := strings.TrimSuffix(e.ID, ":"+e.SliceName)
		if i := strings.LastIndexByte(e.SliceName, '/'); i >= 0 { // reslice: slicing of the parent slice
			baseID = strings.TrimSuffix(e.ID, "/"+e.SliceName[i+1:])
		}
		base := idx[baseID]
		var sl *profile.Slicing
		if base != nil {
			sl = base.Slicing
		}
		last := idSegments(baseID)
		name := last[len(last)-1]
		if j := strings.IndexByte(name, ':'); j >= 0 {
			name = name[:j]
		}
		if sl == nil && (name == "extension" || name == "modifierExtension") {
			sl = &profile.Slicing{Discriminators: []profile.Discriminator{{Type: "value", Path: "url"}}, Rules: "open", Implicit: true}
			if base != nil {
				base.Slicing = sl
			}
		}
		if sl == nil && strings.HasSuffix(name, "[x]") {
			sl = &profile.Slicing{Discriminators: []profile.Discriminator{{Type: "type", Path: "$this"}}, Rules: "open", Implicit: true}
			if base != nil {
				base.Slicing = sl
			}
		}
		m := &profile.SliceMatch{}
		e.Match = m
		if sl == nil {
			m.Unresolved = "no slicing stated for " + baseID
			continue
		}
		for _, d := range sl.Discriminators {
			dv := profile.DiscValue{Type: d.Type, Path: d.Path}
			switch d.Type {
			case "value", "pattern":
				dv.Values = g.discValues(p, idx, e, d.Path)
				if len(dv.Values) == 0 {
					dv.Patterns = nodesUnder(idx, e.ID, d.Path)
				}
				if len(dv.Values) == 0 && len(dv.Patterns) == 0 {
					m.Unresolved = "no fixed or pattern value at " + d.Path
				}
			case "type":
				for _, ty := range discTarget(idx, e, d.Path).Types {
					dv.Types = append(dv.Types, ty.Code)
				}
				if len(dv.Types) == 0 && d.Path == "$this" && strings.HasSuffix(name, "[x]") {
					if s := strings.TrimPrefix(e.SliceName, strings.TrimSuffix(name, "[x]")); s != e.SliceName && s != "" {
						dv.Types = []string{typeCode(s)}
					}
				}
				if len(dv.Types) == 0 {
					m.Unresolved = "no type at " + d.Path
				}
			case "profile":
				for _, ty := range discTarget(idx, e, d.Path).Types {
					dv.Profiles = append(dv.Profiles, ty.Profiles...)
				}
				if len(dv.Profiles) == 0 {
					m.Unresolved = "no profile at " + d.Path
				}
			case "exists":
				t := idx[e.ID+"."+d.Path]
				switch {
				case t != nil && t.Min >= 1:
					dv.Exists = true
				case t != nil && t.Max == "0":
					dv.Exists = false
				default:
					m.Unresolved = "no cardinality at " + d.Path
				}
			default:
				m.Unresolved = "discriminator type " + d.Type
			}
			m.Discriminators = append(m.Discriminators, dv)
		}
	}
}

// discTarget is the element a type or profile discriminator looks at: the slice itself ($this) or
// the element at path below it; an empty definition when the profile does not have it.
func discTarget(idx map[string]*profile.ElementDef, e *profile.ElementDef, path string) *profile.ElementDef {
	if path == "$this" {
		return e
	}
	if t := idx[e.ID+"."+path]; t != nil {
		return t
	}
	return &profile.ElementDef{}
}

// typeCode turns the type suffix of a choice element name into the type code (Quantity,
// dateTime, string, …).
func typeCode(s string) string {
	switch s {
	case "Boolean", "Integer", "String", "Decimal", "Uri", "Url", "Canonical", "Base64Binary", "Instant",
		"Date", "DateTime", "Time", "Code", "Oid", "Id", "Markdown", "UnsignedInt", "PositiveInt", "Uuid":
		return strings.ToLower(s[:1]) + s[1:]
	}
	return s
}

// discValues finds the fixed or pattern values at path (relative to the slice e): in the slice's
// own elements, in a pattern higher up, or in the slice's type profile.
func (g *gen) discValues(p *profile.StructureDef, idx map[string]*profile.ElementDef, e *profile.ElementDef, path string) []string {
	segs := strings.Split(path, ".")
	if path == "$this" {
		segs = nil
	}
	if v := valuesUnder(idx, e.ID, segs); len(v) > 0 {
		return v
	}
	// an extension slice's url is its profile
	if len(segs) == 1 && segs[0] == "url" {
		for _, t := range e.Types {
			if t.Code == "Extension" && len(t.Profiles) > 0 {
				return []string{stripVersion(t.Profiles[0])}
			}
		}
	}
	// a slice inside an element whose type profile defines it (a sub-extension re-constrained in
	// the profile that uses the extension)
	segs2 := idSegments(e.ID)
	for k := len(segs2) - 1; k >= 1; k-- {
		anc := idx[strings.Join(segs2[:k], ".")]
		if anc == nil {
			continue
		}
		for _, t := range anc.Types {
			for _, tp := range t.Profiles {
				r := g.sds[stripVersion(tp)]
				if r == nil || r.sd.Elements == nil {
					continue
				}
				ridx := elementIndex(r.sd)
				if re := ridx[r.sd.Type+"."+strings.Join(segs2[k:], ".")]; re != nil {
					if v := g.discValues(r.sd, ridx, re, path); len(v) > 0 {
						return v
					}
				}
			}
		}
	}
	// the slice's type profile
	for _, t := range e.Types {
		for _, tp := range t.Profiles {
			r := g.sds[stripVersion(tp)]
			if r == nil {
				continue
			}
			if r.sd.Elements == nil {
				continue
			}
			if v := valuesUnder(elementIndex(r.sd), r.sd.Type, segs); len(v) > 0 {
				return v
			}
		}
	}
	return nil
}

// valuesUnder looks for fixed/pattern values at base+segs: at every element below base (slices
// of the elements on the way included) whose path is base+segs or a prefix of it carrying a
// fixed/pattern value, descending into the value tree.
func valuesUnder(idx map[string]*profile.ElementDef, base string, segs []string) []string {
	var out []string
	for id, el := range idx {
		v := el.Fixed
		if v == nil {
			v = el.Pattern
		}
		if v == nil {
			continue
		}
		var rel []string
		switch {
		case id == base:
		case strings.HasPrefix(id, base+"."):
			rel = strings.Split(pathOf(strings.TrimPrefix(id, base+".")), ".")
		default:
			continue
		}
		if len(rel) > len(segs) || !slices.Equal(rel, segs[:len(rel)]) {
			continue
		}
		collect(v.Node, segs[len(rel):], &out)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// nodesUnder finds the complex fixed or pattern values (a Coding, a CodeableConcept) at path below
// the slice base: the value stated at base+path itself, at a slice of it, or inside a value stated
// higher up (base.code's pattern for path code.coding).
func nodesUnder(idx map[string]*profile.ElementDef, base, path string) []profile.Node {
	var segs []string
	if path != "$this" {
		segs = strings.Split(path, ".")
	}
	var out []profile.Node
	for id, el := range idx {
		v := el.Fixed
		if v == nil {
			v = el.Pattern
		}
		if v == nil || len(v.Node.Children) == 0 {
			continue
		}
		var rel []string
		switch {
		case id == base:
		case strings.HasPrefix(id, base+"."):
			rel = strings.Split(strings.TrimPrefix(id, base+"."), ".")
		default:
			continue
		}
		if len(rel) > len(segs) {
			continue
		}
		ok := true
		for i, r := range rel {
			name, slice, _ := strings.Cut(r, ":")
			// a slice of the element at the path's end stands for it; slices on the way do not
			if name != segs[i] || (slice != "" && i < len(segs)-1) {
				ok = false
				break
			}
		}
		if ok {
			collectNodes(v.Node, segs[len(rel):], &out)
		}
	}
	sort.Slice(out, func(i, j int) bool { return nodeKey(out[i]) < nodeKey(out[j]) })
	return slices.CompactFunc(out, func(a, b profile.Node) bool { return nodeKey(a) == nodeKey(b) })
}

func collectNodes(n profile.Node, segs []string, out *[]profile.Node) {
	if len(segs) == 0 {
		if len(n.Children) > 0 {
			n.Name = ""
			*out = append(*out, n)
		}
		return
	}
	for _, c := range n.Children {
		if c.Name == segs[0] {
			collectNodes(c, segs[1:], out)
		}
	}
}

func nodeKey(n profile.Node) string { return nodeLit(n) }

func collect(n profile.Node, segs []string, out *[]string) {
	if len(segs) == 0 {
		if n.Value != "" {
			*out = append(*out, n.Value)
		}
		return
	}
	for _, c := range n.Children {
		if c.Name == segs[0] {
			collect(c, segs[1:], out)
		}
	}
}

// expandAll expands every value set read.
func (g *gen) expandAll() []*profile.ValueSet {
	var urls []string
	for u := range g.vsRaw {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	var out []*profile.ValueSet
	for _, u := range urls {
		m := g.vsMeta[u]
		vs := &profile.ValueSet{URL: u, Version: m[0], Name: m[1]}
		codes, why := g.expand(u, map[string]bool{})
		if why != "" {
			vs.NotExpanded = why
		} else {
			vs.Expanded = true
			vs.Codes = codes
		}
		out = append(out, vs)
	}
	return out
}

func (g *gen) expand(u string, seen map[string]bool) ([]profile.Code, string) {
	root := g.vsRaw[stripVersion(u)]
	if root == nil {
		return nil, "value set " + u + " not present"
	}
	if seen[u] {
		return nil, "value set " + u + " includes itself"
	}
	seen[u] = true
	compose := root.SelectElement("compose")
	if compose == nil {
		return nil, "no compose"
	}
	set := map[profile.Code]bool{}
	var order []profile.Code
	add := func(c profile.Code) {
		if !set[c] {
			set[c] = true
			order = append(order, c)
		}
	}
	part := func(inc *etree.Element) ([]profile.Code, string) {
		var out []profile.Code
		if len(inc.SelectElements("filter")) > 0 {
			return nil, "a filter on " + val(inc, "system")
		}
		var fromVS []profile.Code
		vsRefs := vals(inc, "valueSet")
		for i, ref := range vsRefs {
			c, why := g.expand(ref, seen)
			if why != "" {
				return nil, why
			}
			if i == 0 {
				fromVS = c
			} else {
				fromVS = intersect(fromVS, c)
			}
		}
		sys := val(inc, "system")
		if sys == "" {
			return fromVS, ""
		}
		concepts := inc.SelectElements("concept")
		if len(concepts) > 0 {
			for _, c := range concepts {
				out = append(out, profile.Code{System: sys, Code: val(c, "code")})
			}
		} else {
			cs := g.cs[sys]
			if cs == nil {
				return nil, "code system " + sys + " not present"
			}
			if !cs.complete {
				return nil, "code system " + sys + " present without its codes"
			}
			for _, c := range cs.codes {
				out = append(out, profile.Code{System: sys, Code: c})
			}
		}
		if len(vsRefs) > 0 {
			out = intersect(out, fromVS)
		}
		return out, ""
	}
	for _, inc := range compose.SelectElements("include") {
		c, why := part(inc)
		if why != "" {
			return nil, why
		}
		for _, x := range c {
			add(x)
		}
	}
	for _, exc := range compose.SelectElements("exclude") {
		c, why := part(exc)
		if why != "" {
			return nil, why
		}
		for _, x := range c {
			delete(set, x)
		}
	}
	var out []profile.Code
	for _, c := range order {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, ""
}

func intersect(a, b []profile.Code) []profile.Code {
	in := map[profile.Code]bool{}
	for _, c := range b {
		in[c] = true
	}
	var out []profile.Code
	for _, c := range a {
		if in[c] {
			out = append(out, c)
		}
	}
	return out
}

// stats summarises the tables (also written into the header comment).
func stats(t *profile.Tables) string {
	var els, slices, bindings, required, constraints, exp, notExp, unresolved int
	var checking, absent, unexpandable int
	vsByURL := map[string]*profile.ValueSet{}
	for _, v := range t.ValueSets {
		vsByURL[v.URL] = v
	}
	for _, p := range t.Profiles {
		for _, e := range p.Elements {
			els++
			if e.SliceName != "" && e.Match != nil {
				slices++
				if e.Match.Unresolved != "" {
					unresolved++
				}
			}
			if e.Binding != nil {
				bindings++
				if e.Binding.Strength == "required" {
					required++
					switch v := vsByURL[stripVersion(e.Binding.ValueSet)]; {
					case v == nil:
						absent++
					case v.Expanded:
						checking++
					default:
						unexpandable++
					}
				}
			}
			constraints += len(e.Constraints)
		}
	}
	for _, v := range t.ValueSets {
		if v.Expanded {
			exp++
		} else {
			notExp++
		}
	}
	return fmt.Sprintf("%d profiles, %d elements, %d slices (%d without a resolvable discriminator), %d bindings (%d required: %d check codes, %d to a value set not read, %d to one not expandable), %d constraints, %d value sets expanded, %d not expandable",
		len(t.Profiles), els, slices, unresolved, bindings, required, checking, absent, unexpandable, constraints, exp, notExp)
}

// emit writes the tables as Go source.
func emit(t *profile.Tables) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by fhir/profile/gen from the published FHIR definitions; DO NOT EDIT.\n")
	fmt.Fprintf(&b, "//\n// Source: %s\n// (StructureDefinitions, ValueSets and CodeSystems as published by the KBV and HL7 Deutschland;\n", t.Source)
	fmt.Fprintf(&b, "// regenerate with `make profiles DEFS=folder`).\n// Contents: %s.\n\n", stats(t))
	b.WriteString("package profile\n\n")
	fmt.Fprintf(&b, "var generated = &Tables{\nSource: %q,\nProfiles: []*StructureDef{\n", t.Source)
	for _, p := range t.Profiles {
		fmt.Fprintf(&b, "{URL: %q, Version: %q, Name: %q, Kind: %q, Type: %q, Base: %q, CoreBased: %v,\n", p.URL, p.Version, p.Name, p.Kind, p.Type, p.Base, p.CoreBased)
		if len(p.Chain) > 0 {
			fmt.Fprintf(&b, "Chain: %s,\n", strs(p.Chain))
		}
		list(&b, p.Contexts, "Contexts: []Context{", "},\n", func(c profile.Context) string {
			return fmt.Sprintf("{Type: %q, Expression: %q},", c.Type, c.Expression)
		})
		b.WriteString("Elements: []*ElementDef{\n")
		for _, e := range p.Elements {
			emitElement(&b, e)
		}
		b.WriteString("}},\n")
	}
	b.WriteString("},\nValueSets: []*ValueSet{\n")
	for _, v := range t.ValueSets {
		fmt.Fprintf(&b, "{URL: %q, Version: %q, Name: %q, Expanded: %v", v.URL, v.Version, v.Name, v.Expanded)
		if v.NotExpanded != "" {
			fmt.Fprintf(&b, ", NotExpanded: %q", v.NotExpanded)
		}
		list(&b, v.Codes, ", Codes: []Code{", "}", func(c profile.Code) string {
			return fmt.Sprintf("{%q, %q},", c.System, c.Code)
		})
		b.WriteString("},\n")
	}
	b.WriteString("},\n}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		_ = os.WriteFile(os.TempDir()+"/tables_gen.unformatted.go", b.Bytes(), 0o644)
		return nil, fmt.Errorf("gen: formatting: %w", err)
	}
	return src, nil
}

// list writes prefix, each item as f formats it, and suffix; nothing when there are no items.
func list[T any](b *bytes.Buffer, items []T, prefix, suffix string, f func(T) string) {
	if len(items) == 0 {
		return
	}
	b.WriteString(prefix)
	for _, it := range items {
		b.WriteString(f(it))
	}
	b.WriteString(suffix)
}

func strs(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return "[]string{" + strings.Join(q, ", ") + "}"
}

func emitElement(b *bytes.Buffer, e *profile.ElementDef) {
	fmt.Fprintf(b, "{ID: %q, Path: %q", e.ID, e.Path)
	if e.SliceName != "" {
		fmt.Fprintf(b, ", SliceName: %q", e.SliceName)
	}
	fmt.Fprintf(b, ", Min: %d", e.Min)
	if e.Max != "" {
		fmt.Fprintf(b, ", Max: %q", e.Max)
	}
	if e.Fixed != nil {
		fmt.Fprintf(b, ", Fixed: &Value{Type: %q, Node: %s}", e.Fixed.Type, nodeLit(e.Fixed.Node))
	}
	if e.Pattern != nil {
		fmt.Fprintf(b, ", Pattern: &Value{Type: %q, Node: %s}", e.Pattern.Type, nodeLit(e.Pattern.Node))
	}
	if e.MaxLength > 0 {
		fmt.Fprintf(b, ", MaxLength: %d", e.MaxLength)
	}
	if e.Binding != nil {
		fmt.Fprintf(b, ", Binding: &Binding{Strength: %q, ValueSet: %q}", e.Binding.Strength, e.Binding.ValueSet)
	}
	if s := e.Slicing; s != nil {
		b.WriteString(", Slicing: &Slicing{Discriminators: []Discriminator{")
		for _, d := range s.Discriminators {
			fmt.Fprintf(b, "{Type: %q, Path: %q},", d.Type, d.Path)
		}
		fmt.Fprintf(b, "}, Rules: %q", s.Rules)
		if s.Ordered {
			b.WriteString(", Ordered: true")
		}
		if s.Implicit {
			b.WriteString(", Implicit: true")
		}
		b.WriteString("}")
	}
	if len(e.Types) > 0 {
		b.WriteString(", Types: []TypeRef{")
		for _, t := range e.Types {
			fmt.Fprintf(b, "{Code: %q", t.Code)
			if len(t.Profiles) > 0 {
				fmt.Fprintf(b, ", Profiles: %s", strs(t.Profiles))
			}
			if len(t.TargetProfile) > 0 {
				fmt.Fprintf(b, ", TargetProfile: %s", strs(t.TargetProfile))
			}
			b.WriteString("},")
		}
		b.WriteString("}")
	}
	if len(e.Constraints) > 0 {
		b.WriteString(", Constraints: []Constraint{")
		for _, c := range e.Constraints {
			fmt.Fprintf(b, "{Key: %q, Severity: %q, Human: %q, Expression: %q},", c.Key, c.Severity, c.Human, c.Expression)
		}
		b.WriteString("}")
	}
	if m := e.Match; m != nil {
		b.WriteString(", Match: &SliceMatch{")
		if len(m.Discriminators) > 0 {
			b.WriteString("Discriminators: []DiscValue{")
			for _, d := range m.Discriminators {
				fmt.Fprintf(b, "{Type: %q, Path: %q", d.Type, d.Path)
				if len(d.Values) > 0 {
					fmt.Fprintf(b, ", Values: %s", strs(d.Values))
				}
				if len(d.Patterns) > 0 {
					b.WriteString(", Patterns: []Node{")
					for _, n := range d.Patterns {
						b.WriteString(nodeLit(n) + ", ")
					}
					b.WriteString("}")
				}
				if len(d.Types) > 0 {
					fmt.Fprintf(b, ", Types: %s", strs(d.Types))
				}
				if len(d.Profiles) > 0 {
					fmt.Fprintf(b, ", Profiles: %s", strs(d.Profiles))
				}
				if d.Exists {
					b.WriteString(", Exists: true")
				}
				b.WriteString("},")
			}
			b.WriteString("}")
		}
		if m.Unresolved != "" {
			if len(m.Discriminators) > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "Unresolved: %q", m.Unresolved)
		}
		b.WriteString("}")
	}
	b.WriteString("},\n")
}

func nodeLit(n profile.Node) string {
	var s strings.Builder
	s.WriteString("Node{")
	var parts []string
	if n.Name != "" {
		parts = append(parts, "Name: "+strconv.Quote(n.Name))
	}
	if n.Value != "" {
		parts = append(parts, "Value: "+strconv.Quote(n.Value))
	}
	if len(n.Children) > 0 {
		var cs []string
		for _, c := range n.Children {
			cs = append(cs, nodeLit(c))
		}
		parts = append(parts, "Children: []Node{"+strings.Join(cs, ", ")+"}")
	}
	s.WriteString(strings.Join(parts, ", "))
	s.WriteString("}")
	return s.String()
}

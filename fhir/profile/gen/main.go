// Command gen reads FHIR StructureDefinitions (profiles and extensions), ValueSets and CodeSystems
// from one or more folders and writes the Go tables of package profile: per profile its elements
// (merged over the ancestors present), slicing with per-slice discriminator values, bindings with
// required value sets expanded over the code systems present, and invariants.
//
//	go run ./fhir/profile/gen -defs DIR [-defs DIR2] -out fhir/profile/tables_gen.go
//
// A folder is read for its XML files (as the KBV publishes its validation packages); a FHIR
// package below it (a folder with a package.json, as published on the FHIR package registries)
// is read for its JSON files too, its examples aside. Every version of a canonical read is kept:
// a reference naming a version resolves to it (or to the highest of its major.minor), an
// unversioned one to the version of the referring package's dependencies, else to the version
// read first (so the folders given first win for definitions outside packages).
//
// The definitions carry differentials only; FHIR core is not read, so core cardinalities and core
// invariants are not part of the tables.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
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
	flag.Var(&defs, "defs", "folder of definitions (XML; FHIR packages in JSON), searched recursively; may be given more than once")
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
	from origin
}

// rawVS is a ValueSet as read.
type rawVS struct {
	root               *etree.Element
	url, version, name string
	from               origin
}

type codeSystem struct {
	version  string
	complete bool
	codes    []string
	from     origin
}

func (r *rawSD) ver() string      { return r.sd.Version }
func (r *rawSD) src() origin      { return r.from }
func (v *rawVS) ver() string      { return v.version }
func (v *rawVS) src() origin      { return v.from }
func (c *codeSystem) ver() string { return c.version }
func (c *codeSystem) src() origin { return c.from }

// gen holds the definitions read. Several versions of a canonical are kept (e.g. KBV Basis 1.1.3
// for AWS next to 1.7.0 for the e-prescription), each list in reading order.
type gen struct {
	sds      map[string][]*rawSD // by url
	vss      map[string][]*rawVS
	css      map[string][]*codeSystem
	pkgs     []*pkgInfo
	seq      int
	warnings []string
}

func newGen() *gen {
	return &gen{sds: map[string][]*rawSD{}, vss: map[string][]*rawVS{}, css: map[string][]*codeSystem{}}
}

// readResource keeps a StructureDefinition, ValueSet or CodeSystem; a second copy of a canonical
// in the same version is left out.
func (g *gen) readResource(root *etree.Element, file string, from origin) {
	u, v := val(root, "url"), val(root, "version")
	switch root.Tag {
	case "StructureDefinition":
		if r := g.readSD(root, file, from); r != nil {
			if dup(g.sds[u], v) {
				g.warnings = append(g.warnings, "duplicate "+u+"|"+v+" in "+file)
			} else {
				g.sds[u] = append(g.sds[u], r)
			}
		}
	case "ValueSet":
		if !dup(g.vss[u], v) {
			g.vss[u] = append(g.vss[u], &rawVS{root: root, url: u, version: v, name: val(root, "name"), from: from})
		}
	case "CodeSystem":
		if !dup(g.css[u], v) {
			g.css[u] = append(g.css[u], readCS(root, from))
		}
	}
}

// dup reports whether a canonical was read in that version already.
func dup[T versioned](have []T, version string) bool {
	for _, h := range have {
		if h.ver() == version {
			return true
		}
	}
	return false
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

func readCS(root *etree.Element, from origin) *codeSystem {
	cs := &codeSystem{version: val(root, "version"), complete: val(root, "content") == "complete", from: from}
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, c := range e.SelectElements("concept") {
			cs.codes = append(cs.codes, val(c, "code"))
			walk(c)
		}
	}
	walk(root)
	return cs
}

// readSD reads a profile or extension definition; nil for logical models and specialisations
// (they are not profiles of an instance).
func (g *gen) readSD(root *etree.Element, file string, from origin) *rawSD {
	sd := &profile.StructureDef{
		URL: val(root, "url"), Version: val(root, "version"), Name: val(root, "name"),
		Kind: val(root, "kind"), Type: val(root, "type"), Base: val(root, "baseDefinition"),
	}
	if val(root, "derivation") != "constraint" {
		return nil
	}
	for _, c := range root.SelectElements("context") {
		sd.Contexts = append(sd.Contexts, profile.Context{Type: val(c, "type"), Expression: val(c, "expression")})
	}
	r := &rawSD{sd: sd, file: file, from: from}
	if d := root.SelectElement("differential"); d != nil {
		for _, e := range d.SelectElements("element") {
			r.diff = append(r.diff, readElement(e))
		}
	}
	return r
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
	url, _ := profile.SplitCanonical(u)
	return url
}

// merged returns the profile's elements merged over its ancestors present, and the ancestors.
func (g *gen) merged(r *rawSD, seen map[*rawSD]bool) ([]*profile.ElementDef, []*rawSD) {
	if r == nil || seen[r] {
		return nil, nil
	}
	seen[r] = true
	var base []*profile.ElementDef
	var chain []*rawSD
	if br := g.sd(r.sd.Base, r.from.pkg); br != nil {
		base, chain = g.merged(br, seen)
		chain = append([]*rawSD{br}, chain...)
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
	g.linkPackages()
	g.pinReferences()
	var all []*rawSD
	for _, rs := range g.sds {
		all = append(all, rs...)
	}
	// by URL, the versions of one in reading order: the first is what an unversioned canonical
	// outside a package means
	sort.Slice(all, func(i, j int) bool {
		if all[i].sd.URL != all[j].sd.URL {
			return all[i].sd.URL < all[j].sd.URL
		}
		return all[i].from.seq < all[j].from.seq
	})
	for _, r := range all {
		els, chain := g.merged(r, map[*rawSD]bool{})
		root := r
		for _, c := range chain {
			r.sd.Chain = append(r.sd.Chain, g.key(c))
			root = c
		}
		r.sd.CoreBased = strings.HasPrefix(root.sd.Base, "http://hl7.org/fhir/StructureDefinition/")
		r.sd.Elements = complete(els)
		if r.from.pkg != nil {
			r.sd.Package = r.from.pkg.String()
		}
		t.Profiles = append(t.Profiles, r.sd)
	}
	t.Packages = g.packages()
	for _, r := range all {
		g.resolveSlices(r.sd, r.from.pkg)
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
func (g *gen) resolveSlices(p *profile.StructureDef, from *pkgInfo) {
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
				dv.Values = g.discValues(idx, e, d.Path, from)
				segs := pathSegs(d.Path)
				if len(dv.Values) == 0 {
					dv.Patterns = nodesUnder(idx, e.ID, segs)
				}
				if len(dv.Values) == 0 && len(dv.Patterns) == 0 {
					g.typeProfilesOnPath(idx, e, segs, from, func(ridx map[string]*profile.ElementDef, root string, rest []string) bool {
						dv.Patterns = nodesUnder(ridx, root, rest)
						return len(dv.Patterns) > 0
					})
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
func (g *gen) discValues(idx map[string]*profile.ElementDef, e *profile.ElementDef, path string, from *pkgInfo) []string {
	segs := pathSegs(path)
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
				r := g.sd(tp, from)
				if r == nil || r.sd.Elements == nil {
					continue
				}
				ridx := elementIndex(r.sd)
				if re := ridx[r.sd.Type+"."+strings.Join(segs2[k:], ".")]; re != nil {
					if v := g.discValues(ridx, re, path, from); len(v) > 0 {
						return v
					}
				}
			}
		}
	}
	// the type profile of the slice or of an element on the path below it
	var out []string
	g.typeProfilesOnPath(idx, e, segs, from, func(ridx map[string]*profile.ElementDef, root string, rest []string) bool {
		out = valuesUnder(ridx, root, rest)
		return len(out) > 0
	})
	return out
}

// pathSegs splits a discriminator path (none for $this).
func pathSegs(path string) []string {
	if path == "$this" {
		return nil
	}
	return strings.Split(path, ".")
}

// typeProfilesOnPath offers f, until it reports a find, the type profiles of the slice e and of
// the elements on the discriminator path segs below it (entry.resource for the path
// resource.meta.profile), each with its element index, its root and the rest of the path.
func (g *gen) typeProfilesOnPath(idx map[string]*profile.ElementDef, e *profile.ElementDef, segs []string, from *pkgInfo,
	f func(ridx map[string]*profile.ElementDef, root string, rest []string) bool) {
	for k := 0; k <= len(segs); k++ {
		el := e
		if k > 0 {
			if el = idx[e.ID+"."+strings.Join(segs[:k], ".")]; el == nil {
				continue
			}
		}
		for _, t := range el.Types {
			for _, tp := range t.Profiles {
				if r := g.sd(tp, from); r != nil && r.sd.Elements != nil && f(elementIndex(r.sd), r.sd.Type, segs[k:]) {
					return
				}
			}
		}
	}
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

// nodesUnder finds the complex fixed or pattern values (a Coding, a CodeableConcept) at the path
// segs below the slice base: the value stated at base+path itself, at a slice of it, or inside a
// value stated higher up (base.code's pattern for path code.coding).
func nodesUnder(idx map[string]*profile.ElementDef, base string, segs []string) []profile.Node {
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
	var all []*rawVS
	for _, vs := range g.vss {
		all = append(all, vs...)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].url != all[j].url {
			return all[i].url < all[j].url
		}
		return all[i].from.seq < all[j].from.seq
	})
	var out []*profile.ValueSet
	for _, v := range all {
		vs := &profile.ValueSet{URL: v.url, Version: v.version, Name: v.name}
		if v.from.pkg != nil {
			vs.Package = v.from.pkg.String()
		}
		codes, why := g.expand(v, map[*rawVS]bool{})
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

// valueSet is the value set a reference resolves to from package from (nil when none read
// matches).
func (g *gen) valueSet(ref string, from *pkgInfo) *rawVS {
	url, version := profile.SplitCanonical(ref)
	v, _ := pick(g.vss[url], version, from)
	return v
}

func (g *gen) expand(v *rawVS, seen map[*rawVS]bool) ([]profile.Code, string) {
	if seen[v] {
		return nil, "value set " + v.url + " includes itself"
	}
	seen[v] = true
	root := v.root
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
			inner := g.valueSet(ref, v.from.pkg)
			if inner == nil {
				return nil, "value set " + ref + " not present"
			}
			c, why := g.expand(inner, seen)
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
			cs, _ := pick(g.css[sys], val(inc, "version"), v.from.pkg)
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
	var checking, absent, outside, unexpandable int
	vsByURL := map[string][]*profile.ValueSet{}
	for _, v := range t.ValueSets {
		vsByURL[v.URL] = append(vsByURL[v.URL], v)
	}
	for _, p := range t.Profiles {
		inScope := t.Scope(p.Package)
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
					url, version := profile.SplitCanonical(e.Binding.ValueSet)
					v, _ := profile.PickVersion(vsByURL[url], version, func(v *profile.ValueSet) string { return v.Version },
						func(v *profile.ValueSet) bool { return inScope(v.Package) })
					switch {
					case v == nil && len(vsByURL[url]) > 0:
						outside++
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
	return fmt.Sprintf("%d profiles, %d elements, %d slices (%d without a resolvable discriminator), %d bindings (%d required: %d check codes, %d to a value set not read, %d to one read only outside the profile's scope, %d to one not expandable), %d constraints, %d value sets expanded, %d not expandable",
		len(t.Profiles), els, slices, unresolved, bindings, required, checking, absent, outside, unexpandable, constraints, exp, notExp)
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
		if p.Package != "" {
			fmt.Fprintf(&b, "Package: %q,\n", p.Package)
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
		if v.Package != "" {
			fmt.Fprintf(&b, ", Package: %q", v.Package)
		}
		if v.NotExpanded != "" {
			fmt.Fprintf(&b, ", NotExpanded: %q", v.NotExpanded)
		}
		list(&b, v.Codes, ", Codes: []Code{", "}", func(c profile.Code) string {
			return fmt.Sprintf("{%q, %q},", c.System, c.Code)
		})
		b.WriteString("},\n")
	}
	b.WriteString("},\n")
	list(&b, t.Packages, "Packages: []Package{\n", "},\n", func(p profile.Package) string {
		return fmt.Sprintf("{ID: %q, Closure: %s},\n", p.ID, strs(p.Closure))
	})
	b.WriteString("}\n")
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

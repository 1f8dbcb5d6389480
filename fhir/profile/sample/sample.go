// Package sample builds minimal instances of the profiles in fhir/profile's tables: a resource
// that carries what its profile requires and little else. That is every element whose minimum
// cardinality is one or more (required slices included, carrying the values their discriminators
// look for), fixed and pattern values, a code of the bound value set, an allowed type for a choice
// element, a reference Type/id to an allowed target, what the definitions of its extensions and
// data type profiles require, meta.profile naming the profile with its version, and an id.
//
// FHIR core is not in the tables: what they leave unsaid comes from small tables of FHIR R4
// (core.go: element types, the elements core requires, the content a data type needs, codes of
// core's required bindings, element order), with example values by type (values.go). Invariants
// are met where Options.Invariants is given and adding an optional element the invariant names,
// or gives a value, makes it hold (invariants.go; a value an invariant matches with a simple
// regular expression is written to match). Options.Include and Options.Contents add what cannot
// be told from the tables. The instances serve tests: they show that what a profile allows is
// accepted.
package sample

import (
	"fmt"
	"slices"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/profile"
)

// Options of a generation.
type Options struct {
	// Invariants evaluates the profiles' invariants. When set, an element that violates one (of
	// severity error) gets the optional child elements the invariant's expression names, one at a
	// time, until it holds; nil leaves invariants unchecked.
	Invariants profile.Invariants
	// Include names elements to generate although the profile does not require them, by element
	// id as in the tables (Condition.clinicalStatus, Patient.identifier:versichertenId_GKV).
	Include []string
	// Contents gives, for a resource container the profile does not type (Bundle.entry.resource),
	// by element id, the profile whose minimal instance goes into it.
	Contents map[string]string
}

// Minimal builds a minimal instance of the profile canonical (a URL with or without |version)
// from the tables of v: a resource for a resource profile, else an element of the profile's
// type (an extension, an Identifier, …).
func Minimal(v *profile.Validator, canonical string, opts Options) (*etree.Element, error) {
	sd := v.Profile(canonical)
	if sd == nil {
		return nil, fmt.Errorf("sample: profile %s is not in the tables", canonical)
	}
	g := &gen{v: v, opts: opts, trees: map[*profile.StructureDef]*node{}, include: map[string]bool{}}
	for _, id := range opts.Include {
		g.include[id] = true
	}
	if sd.Kind == "resource" {
		return g.resource(sd), nil
	}
	el := etree.NewElement(lowerFirst(sd.Type))
	g.pkg = sd.Package
	g.fill(el, []*node{g.tree(sd)}, sd.Type, "")
	return el, nil
}

// maxDepth bounds the nesting of generated elements (required elements could refer in a circle).
const maxDepth = 24

type gen struct {
	v       *profile.Validator
	opts    Options
	trees   map[*profile.StructureDef]*node
	include map[string]bool
	pkg     string // the package of the resource profile being built: its extensions resolve there
	depth   int
}

// node is an element definition with its children and slices (the tables list them flat).
type node struct {
	def      *profile.ElementDef
	name     string // last segment of the element id, without the slice name
	pkg      string // the package of the profile it belongs to
	children []*node
	slices   []*node
}

// tree is the tree of a profile's element definitions.
func (g *gen) tree(sd *profile.StructureDef) *node {
	if t := g.trees[sd]; t != nil {
		return t
	}
	byID := map[string]*node{}
	// at is the node of an element id, made and linked to its parent (or, for a slice, to the
	// element it slices) when it is not there yet: a differential need not define the elements
	// between the ones it constrains.
	var at func(id string) *node
	at = func(id string) *node {
		if n := byID[id]; n != nil {
			return n
		}
		n := &node{name: id, pkg: sd.Package}
		byID[id] = n
		i := strings.LastIndexByte(id, '.')
		if i < 0 {
			return n
		}
		parent, last := id[:i], id[i+1:]
		name, slice, isSlice := strings.Cut(last, ":")
		n.name = name
		if !isSlice {
			p := at(parent)
			p.children = append(p.children, n)
			return n
		}
		base := parent + "." + name
		if j := strings.LastIndexByte(slice, '/'); j >= 0 { // a reslice
			base += ":" + slice[:j]
		}
		b := at(base)
		b.slices = append(b.slices, n)
		return n
	}
	root := at(sd.Type)
	for _, e := range sd.Elements {
		at(e.ID).def = e
	}
	g.trees[sd] = root
	return root
}

// resource builds a resource of the resource profile sd: its id, meta.profile and what the
// profile requires.
func (g *gen) resource(sd *profile.StructureDef) *etree.Element {
	res := etree.NewElement(sd.Type)
	fhir.SetValue(res.CreateElement("id"), resourceID(sd.Type))
	fhir.SetValue(res.CreateElement("meta").CreateElement("profile"), sd.URL+"|"+sd.Version)
	pkg := g.pkg
	g.pkg = sd.Package
	g.fill(res, []*node{g.tree(sd)}, sd.Type, "")
	g.pkg = pkg
	return res
}

// resourceID is the id of generated resources of type typ, which references to that type name.
func resourceID(typ string) string { return "sample-" + strings.ToLower(typ) }

// fill completes el, an instance of what the definitions ns say (an element of a profile, the
// slice it is an instance of, the root of its type's profile), of FHIR type typ, inside an
// element whose type key (see coreTypes) is parentKey.
func (g *gen) fill(el *etree.Element, ns []*node, typ, parentKey string) {
	if g.depth >= maxDepth {
		return
	}
	g.depth++
	defer func() { g.depth-- }()
	ns = g.withTypeProfiles(el, ns, typ)
	for _, n := range ns {
		if d := n.def; d != nil {
			if d.Fixed != nil {
				write(el, d.Fixed.Node, true)
			}
			if d.Pattern != nil {
				write(el, d.Pattern.Node, false)
			}
		}
	}
	key := typeKey(ns, typ)
	switch {
	case primitiveTypes[typ]:
		if _, ok := attrOK(el, "value"); !ok {
			fhir.SetValue(el, g.primitive(parentKey, el.Tag, ns, typ))
		}
	case typ == "xhtml":
		if el.SelectAttr("xmlns") == nil {
			el.CreateAttr("xmlns", fhir.XHTMLNamespace)
			el.SetText("Beispiel")
		}
	case typ == "Reference":
		g.reference(el, ns)
	case typ == "CodeableConcept" || typ == "Coding" || isQuantity(typ):
		g.code(el, ns, typ, parentKey)
	case isContainer(el.Tag, typ):
		g.contents(el, ns)
	}
	for _, gr := range childGroups(ns) {
		g.group(el, key, typ, gr.name, gr.nodes, 0)
	}
	for _, name := range coreRequired[key] {
		g.group(el, key, typ, name, groupOf(ns, name), 1)
	}
	if typ == "Extension" && child(el, "extension") == nil && !hasChoice(el, "value") {
		g.group(el, key, typ, "value[x]", groupOf(ns, "value[x]"), 1)
	}
	if lacksContent(el, key) {
		for _, alt := range content[key] {
			if allowed(ns, alt) {
				for _, name := range alt {
					g.group(el, key, typ, name, groupOf(ns, name), 1)
				}
				break
			}
		}
	}
	if key == "Bundle.entry" {
		entryURLs(el)
	}
	g.invariants(el, ns, key)
	if !isEmpty(el) {
		kids := el.ChildElements()
		slices.SortStableFunc(kids, func(a, b *etree.Element) int { return rank(key, a.Tag) - rank(key, b.Tag) })
		for _, k := range kids {
			el.RemoveChild(k)
		}
		for _, k := range kids {
			el.AddChild(k)
		}
	}
}

// withTypeProfiles adds to ns the roots of the profiles el's type is constrained by: the type
// profiles the definitions name for typ and, for an extension, its definition by url.
func (g *gen) withTypeProfiles(el *etree.Element, ns []*node, typ string) []*node {
	add := func(sd *profile.StructureDef) {
		if sd == nil || sd.Kind == "resource" {
			return
		}
		t := g.tree(sd)
		if !slices.Contains(ns, t) {
			ns = append(ns, t)
		}
	}
	for _, n := range slices.Clone(ns) {
		if n.def == nil {
			continue
		}
		for _, t := range n.def.Types {
			if !strings.EqualFold(t.Code, typ) {
				continue
			}
			for _, p := range t.Profiles {
				if sd := g.v.ProfileIn(p, n.pkg); sd != nil {
					add(sd)
					break
				}
			}
		}
	}
	if typ == "Extension" {
		if u, ok := attrOK(el, "url"); ok {
			if sd := g.v.ProfileIn(u, g.pkg); sd != nil && sd.Type == "Extension" {
				add(sd)
			}
		}
	}
	return ns
}

// group is the definitions of one child element name across the definitions of its parent.
type group struct {
	name  string
	nodes []*node
}

// childGroups gathers the children of ns by name, in the order they are first defined.
func childGroups(ns []*node) []group {
	var gs []group
	for _, n := range ns {
		for _, c := range n.children {
			i := slices.IndexFunc(gs, func(g group) bool { return g.name == c.name })
			if i < 0 {
				gs = append(gs, group{name: c.name})
				i = len(gs) - 1
			}
			gs[i].nodes = append(gs[i].nodes, c)
		}
	}
	return gs
}

// groupOf is the definitions of the child name across ns.
func groupOf(ns []*node, name string) []*node {
	var out []*node
	for _, n := range ns {
		for _, c := range n.children {
			if c.name == name {
				out = append(out, c)
			}
		}
	}
	return out
}

// group completes the instances of the child element name of el (of type typ, key as in
// coreTypes): the ones there are, the required slices and, up to the minimum cardinality (at
// least atLeast), further instances.
func (g *gen) group(el *etree.Element, key, typ, name string, nodes []*node, atLeast int) {
	lo, hi := bounds(nodes)
	for _, n := range nodes {
		lo = max(lo, g.min(n))
	}
	lo = max(lo, atLeast)
	if hi == 0 {
		return
	}
	if name == "url" && typ == "Extension" || name == "id" && !isResource(el) { // XML attributes
		if _, ok := attrOK(el, name); !ok && (lo > 0 || name == "url") {
			v := fixedAt(nodes, nil)
			if v == "" {
				v = g.primitive(key, name, nodes, "string")
			}
			el.CreateAttr(name, v)
		}
		return
	}
	var sls []*node
	for _, n := range nodes {
		for _, s := range n.slices {
			if s.def != nil && s.def.Match != nil && s.def.Match.Unresolved == "" && s.def.Max != "0" {
				sls = append(sls, s)
			}
		}
	}
	count := map[*node]int{}
	n := 0
	for _, k := range children(el, name) {
		s := sliceOf(k, name, sls)
		ds := withSlice(nodes, s)
		g.fill(k, ds, g.typeOf(k.Tag, name, ds, key), key)
		count[s]++
		n++
	}
	for _, s := range sls {
		for i := count[s]; i < g.min(s); i++ {
			g.add(el, key, name, nodes, s)
			n++
		}
	}
	for ; n < lo; n++ {
		var s *node
		if closed(nodes) && len(sls) > 0 {
			s = sls[0] // a closed slicing allows only its slices
		}
		g.add(el, key, name, nodes, s)
	}
}

// add appends a new instance of the child element name to el, as an instance of slice s (nil
// for none).
func (g *gen) add(el *etree.Element, key, name string, nodes []*node, s *node) *etree.Element {
	ds := withSlice(nodes, s)
	typ := g.typeOf("", name, ds, key)
	tag := name
	if prefix, ok := strings.CutSuffix(name, "[x]"); ok {
		tag = prefix + upperFirst(typ)
	}
	k := el.CreateElement(tag)
	if s != nil {
		discriminate(k, s.def.Match)
	}
	g.fill(k, ds, typ, key)
	return k
}

// min is the minimum cardinality of the element n defines: as it states, or as the root of the
// profile of its type states (an extension definition may require itself), or 1 when
// Options.Include names it.
func (g *gen) min(n *node) int {
	d := n.def
	if d == nil {
		return 0
	}
	m := d.Min
	if g.include[d.ID] {
		m = max(m, 1)
	}
	for _, t := range d.Types {
		for _, p := range t.Profiles {
			if sd := g.v.ProfileIn(p, n.pkg); sd != nil && len(sd.Elements) > 0 && sd.Elements[0].ID == sd.Type {
				m = max(m, sd.Elements[0].Min)
			}
		}
	}
	return m
}

func withSlice(nodes []*node, s *node) []*node {
	ds := slices.Clone(nodes)
	if s != nil {
		ds = append(ds, s)
	}
	return ds
}

// bounds are the cardinality the definitions state together: the highest minimum and the
// lowest maximum (-1 for unbounded).
func bounds(nodes []*node) (lo, hi int) {
	hi = -1
	for _, n := range nodes {
		d := n.def
		if d == nil {
			continue
		}
		lo = max(lo, d.Min)
		if m, err := atoi(d.Max); err == nil && (hi < 0 || m < hi) {
			hi = m
		}
	}
	return lo, hi
}

// lacksContent reports whether el, of type key, has none of the elements content names for its
// type (an Identifier without system and value, with a type only) or, for other types, nothing.
func lacksContent(el *etree.Element, key string) bool {
	if isEmpty(el) {
		return true
	}
	for _, alt := range content[key] {
		for _, name := range alt {
			if len(children(el, name)) > 0 {
				return false
			}
		}
	}
	return content[key] != nil
}

// allowed reports whether the definitions ns allow each of the child elements names.
func allowed(ns []*node, names []string) bool {
	for _, name := range names {
		if _, hi := bounds(groupOf(ns, name)); hi == 0 {
			return false
		}
	}
	return true
}

func closed(nodes []*node) bool {
	for _, n := range nodes {
		if n.def != nil && n.def.Slicing != nil && n.def.Slicing.Rules == "closed" {
			return true
		}
	}
	return false
}

// typeOf is the FHIR type of an instance (tagged tag, "" for one yet to be made) of the child
// element name of an element whose coreTypes key is key, defined by ds: the type the definitions
// allow (a fixed or pattern value's type first; the most specific definition's types), else what
// FHIR core gives it.
func (g *gen) typeOf(tag, name string, ds []*node, key string) string {
	prefix, choice := strings.CutSuffix(name, "[x]")
	if choice && tag != "" && len(tag) > len(prefix) {
		return typeName(tag[len(prefix):])
	}
	var allowed []string
	for i := len(ds) - 1; i >= 0 && allowed == nil; i-- {
		d := ds[i].def
		if d == nil {
			continue
		}
		for _, t := range d.Types {
			allowed = append(allowed, typeName(t.Code))
		}
		if m := d.Match; allowed == nil && m != nil {
			for _, dv := range m.Discriminators {
				if dv.Type == "type" && dv.Path == "$this" {
					for _, t := range dv.Types {
						allowed = append(allowed, typeName(t))
					}
				}
			}
		}
	}
	for _, n := range ds {
		if d := n.def; d != nil {
			for _, v := range []*profile.Value{d.Fixed, d.Pattern} {
				if v != nil && (allowed == nil || slices.Contains(allowed, typeName(v.Type))) {
					return typeName(v.Type)
				}
			}
		}
	}
	if len(allowed) > 0 {
		return allowed[0]
	}
	if t := coreType(key, name); t != "" {
		return t
	}
	if t := shapeType(ds); t != "" {
		return t
	}
	for _, n := range ds {
		if len(n.children) > 0 {
			return key + "." + name
		}
	}
	return "string"
}

// typeName is a type code as the tables and tags write it, as FHIR names it: String → string,
// CodeableConcept stays, System.String → string.
func typeName(code string) string {
	if i := strings.LastIndex(code, "System."); i >= 0 {
		return strings.ToLower(code[i+len("System."):])
	}
	if l := lowerFirst(code); primitiveTypes[l] {
		return l
	}
	return code
}

// typeKey names el's type for coreTypes: a data type by its name, a resource or backbone element
// by its path (Bundle.entry.request).
func typeKey(ns []*node, typ string) string {
	if typ != "BackboneElement" && typ != "Element" {
		return typ
	}
	for _, n := range ns {
		if n.def != nil {
			return strings.ReplaceAll(n.def.Path, "[x]", "")
		}
	}
	return typ
}

// sliceOf is the slice an instance of the element name matches (the first), nil for none.
func sliceOf(k *etree.Element, name string, sls []*node) *node {
	for _, s := range sls {
		if matches(k, name, s.def.Match) {
			return s
		}
	}
	return nil
}

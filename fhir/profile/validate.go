package profile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// Invariants evaluates a FHIRPath invariant (a profile constraint's expression) with el as the
// context element. The FHIRPath evaluator is wired in by the caller; without one (nil in
// Options) invariants are not evaluated.
type Invariants interface {
	Check(expr string, el *etree.Element) (bool, error)
}

// Options of a validation.
type Options struct {
	// Invariants evaluates the profiles' constraints; nil leaves them unchecked.
	Invariants Invariants
	// Resolve finds the resource a reference (as written, e.g. "urn:uuid:…" or "Patient/1")
	// points to, so that its type can be checked against the allowed target profiles; nil
	// checks only references that name their type ("Type/id"). Within a Bundle the entries'
	// fullUrls are resolved without it.
	Resolve func(ref string) *etree.Element
	// TopOnly validates only res itself, not the resources inside it (Bundle entries, contained).
	TopOnly bool
	// Supplied names the elements of a resource, by path below it ("text", "meta.versionId"),
	// whose absence is no error because the caller writes them itself.
	Supplied []string
}

// Validator checks resources against a set of generated tables.
type Validator struct {
	t         *Tables
	profiles  map[string][]*compiled  // by canonical URL, its versions in the tables' order
	valueSets map[string][]*codeIndex // likewise
	closures  map[string]map[string]bool
}

// scope is what the references of a package's definitions may resolve to (see Tables.Scope).
type scope struct {
	closure map[string]bool // nil: outside packages
}

func (v *Validator) scope(pkg string) scope { return scope{v.closures[pkg]} }

func (s scope) has(pkg string) bool {
	if s.closure == nil {
		return pkg == ""
	}
	return s.closure[pkg]
}

// compiled is a profile prepared for validation. Its tree of nodes is built and linked on first
// use (tree): preparing the tables costs little, and only the profiles in use are built.
type compiled struct {
	sd   *StructureDef
	v    *Validator
	once sync.Once
	root *node
}

// tree is the profile's root node, built on first use.
func (c *compiled) tree() *node {
	c.once.Do(func() {
		c.root = buildTree(c.sd)
		c.v.link(c.root, c.v.scope(c.sd.Package))
	})
	return c.root
}

// node is an element of a profile with its children and slices, and what validating an instance
// of it needs, worked out once, when the profile is first used.
type node struct {
	def      *ElementDef
	name     string // last path segment: identifier, value[x], valueQuantity
	choice   string // for a choice element (value[x]) the tag prefix "value", else ""
	children []*node
	slices   []*node
	repeats  bool // instances are written with an index (see repeating)
	absent   bool // something to report when there is no instance: the element or a slice is required
	sliced   bool // the element has slices or a slicing
	unres    bool // one of its slices cannot be matched
	closed   bool // closed slicing (and every slice can be matched)
	slicesIn string

	// for checkElement
	checks     bool // anything at all to check on an instance
	typeCodes  []string
	vs         *codeIndex // required binding whose codes are checked
	vsName     string
	ref        *refCheck
	typeCands  []typeCand
	multiTyped bool

	// for a slice: its discriminators with their paths split
	match []discMatch
}

type refCheck struct {
	types []string // allowed resource types
	names string   // what the message lists
}

type typeCand struct {
	code string
	c    *compiled
}

type discMatch struct {
	DiscValue
	segs []string // Path split; nil for $this
}

// codeIndex is a value set's expansion, indexed on first use.
type codeIndex struct {
	vs       *ValueSet
	once     sync.Once
	pairs    map[Code]bool
	codeOnly map[string]bool
}

// has reports whether the expansion holds code in system sys (in any system when sys is "").
func (ci *codeIndex) has(sys, code string) bool {
	ci.once.Do(func() {
		ci.pairs, ci.codeOnly = make(map[Code]bool, len(ci.vs.Codes)), make(map[string]bool, len(ci.vs.Codes))
		for _, c := range ci.vs.Codes {
			ci.pairs[c] = true
			ci.codeOnly[c.Code] = true
		}
	})
	if sys == "" {
		return ci.codeOnly[code]
	}
	return ci.pairs[Code{System: sys, Code: code}]
}

var (
	defaultOnce sync.Once
	defaultV    *Validator
)

// Default is the validator over the generated tables (built once, on first use).
func Default() *Validator {
	defaultOnce.Do(func() { defaultV = New(generated) })
	return defaultV
}

// Validate checks res against the profiles in its meta.profile with the generated tables; see
// Validator.Validate.
func Validate(res *etree.Element, at string, opts Options) fhir.Issues {
	return Default().Validate(res, at, opts)
}

// New prepares tables for validation (each profile and value set is made ready on first use).
func New(t *Tables) *Validator {
	v := &Validator{t: t, profiles: map[string][]*compiled{}, valueSets: map[string][]*codeIndex{},
		closures: map[string]map[string]bool{}}
	for _, vs := range t.ValueSets {
		v.valueSets[vs.URL] = append(v.valueSets[vs.URL], &codeIndex{vs: vs})
	}
	for _, p := range t.Packages {
		m := map[string]bool{}
		for _, id := range p.Closure {
			m[id] = true
		}
		v.closures[p.ID] = m
	}
	for _, sd := range t.Profiles {
		v.profiles[sd.URL] = append(v.profiles[sd.URL], &compiled{sd: sd, v: v})
	}
	return v
}

// Profile returns the table of a profile by canonical URL, with or without |version (see
// PickVersion; unversioned: the first version in the tables).
func (v *Validator) Profile(canonical string) *StructureDef {
	if c := v.profile(canonical, nil); c != nil {
		return c.sd
	}
	return nil
}

// profile finds the profile a canonical means (see PickVersion): within sc when given (a
// reference of the tables, an extension of an instance), else any (an instance's meta.profile).
func (v *Validator) profile(canonical string, sc *scope) *compiled {
	url, version := SplitCanonical(canonical)
	cands := v.profiles[url]
	if len(cands) == 1 && version == "" { // the common case, without a function value
		if sc != nil && !sc.has(cands[0].sd.Package) {
			return nil
		}
		return cands[0]
	}
	var inScope func(*compiled) bool
	if sc != nil {
		inScope = func(c *compiled) bool { return sc.has(c.sd.Package) }
	}
	c, _ := PickVersion(cands, version, func(c *compiled) string { return c.sd.Version }, inScope)
	return c
}

// valueSet finds the value set a binding of the tables names, within sc (see PickVersion).
func (v *Validator) valueSet(canonical string, sc scope) *codeIndex {
	url, version := SplitCanonical(canonical)
	ci, _ := PickVersion(v.valueSets[url], version, func(ci *codeIndex) string { return ci.vs.Version },
		func(ci *codeIndex) bool { return sc.has(ci.vs.Package) })
	return ci
}

// buildTree builds a profile's tree of nodes from its elements.
func buildTree(sd *StructureDef) *node {
	nodes := make(map[string]*node, len(sd.Elements))
	get := func(id string) *node {
		n := nodes[id]
		if n == nil {
			n = &node{}
			nodes[id] = n
		}
		return n
	}
	var root *node
	for _, e := range sd.Elements {
		n := get(e.ID)
		n.def = e
		segs := strings.Split(e.ID, ".")
		last := segs[len(segs)-1]
		name, slice, isSlice := strings.Cut(last, ":")
		n.name = name
		if len(segs) == 1 {
			root = n
			continue
		}
		parent := strings.Join(segs[:len(segs)-1], ".")
		if isSlice {
			base := parent + "." + name
			if i := strings.LastIndexByte(slice, '/'); i >= 0 {
				base += ":" + slice[:i]
			}
			b := get(base)
			b.slices = append(b.slices, n)
			continue
		}
		p := get(parent)
		p.children = append(p.children, n)
	}
	if root == nil {
		root = &node{def: &ElementDef{ID: sd.Type, Path: sd.Type, Min: -1}, name: sd.Type}
	}
	return root
}

// link works out, for n and the nodes below it, what validation needs from the other tables:
// value sets, reference target types, type profiles, slice discriminators, resolving references
// within sc, the scope of the profile's package.
func (v *Validator) link(n *node, sc scope) {
	if prefix, ok := strings.CutSuffix(n.name, "[x]"); ok {
		n.choice = prefix
	}
	d := n.def
	n.repeats = repeating[n.name] || (d != nil && d.Max != "" && d.Max != "1" && d.Max != "0")
	n.sliced = len(n.slices) > 0 || (d != nil && d.Slicing != nil)
	var names []string
	for _, s := range n.slices {
		if s.def == nil || s.def.Match == nil || s.def.Match.Unresolved != "" {
			n.unres = true
		}
		if s.def != nil {
			names = append(names, s.def.SliceName)
			if m := s.def.Match; m != nil && m.Unresolved == "" {
				for _, dv := range m.Discriminators {
					dm := discMatch{DiscValue: dv}
					if dv.Path != "$this" {
						dm.segs = strings.Split(dv.Path, ".")
					}
					s.match = append(s.match, dm)
				}
			}
		}
	}
	n.closed = !n.unres && d != nil && d.Slicing != nil && d.Slicing.Rules == "closed"
	n.absent = d != nil && d.Min > 0
	for _, s := range n.slices {
		n.absent = n.absent || s.def != nil && s.def.Min > 0
	}
	if len(n.slices) == 0 {
		n.slicesIn = ", no slices defined"
	} else {
		n.slicesIn = ": " + strings.Join(names, ", ")
	}
	if d != nil {
		v.linkChecks(n, d, sc)
	}
	for _, c := range n.children {
		v.link(c, sc)
	}
	for _, s := range n.slices {
		v.link(s, sc)
	}
}

func (v *Validator) linkChecks(n *node, d *ElementDef, sc scope) {
	if strings.HasSuffix(d.Path, "[x]") && len(d.Types) > 0 {
		for _, t := range d.Types {
			n.typeCodes = append(n.typeCodes, t.Code)
		}
		// A profile may narrow a choice element's types and slice it by type into another one
		// as well (KBV Basis Diagnosis: onset[x] Period, slice onsetDateTime dateTime): the
		// slices' types are allowed too.
		for _, sl := range n.slices {
			if sl.def == nil {
				continue
			}
			for _, t := range sl.def.Types {
				if !slices.Contains(n.typeCodes, t.Code) {
					n.typeCodes = append(n.typeCodes, t.Code)
				}
			}
		}
	}
	n.multiTyped = len(d.Types) > 1
	if b := d.Binding; b != nil && b.Strength == "required" && b.ValueSet != "" {
		if ci := v.valueSet(b.ValueSet, sc); ci != nil && ci.vs.Expanded {
			n.vs, n.vsName = ci, stripVersion(b.ValueSet)
		}
	}
	n.ref = v.refTargets(d, &sc)
	for _, t := range d.Types {
		for _, p := range t.Profiles {
			if c := v.profile(p, &sc); c != nil {
				n.typeCands = append(n.typeCands, typeCand{code: t.Code, c: c})
			}
		}
	}
	n.checks = n.typeCodes != nil || d.Fixed != nil || d.Pattern != nil || d.MaxLength > 0 || n.vs != nil ||
		n.ref != nil || n.typeCands != nil || len(d.Constraints) > 0
}

// refTargets are the resource types a Reference element may point to; nil when the element is no
// Reference, allows any resource, or names a target profile not in the tables (its type is
// unknown: nothing is checked).
func (v *Validator) refTargets(d *ElementDef, sc *scope) *refCheck {
	var targets []string
	for _, t := range d.Types {
		if t.Code == "Reference" {
			targets = append(targets, t.TargetProfile...)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	rc := &refCheck{}
	var names []string
	for _, tp := range targets {
		typ, ok := strings.CutPrefix(stripVersion(tp), "http://hl7.org/fhir/StructureDefinition/")
		if ok {
			names = append(names, typ)
		} else {
			c := v.profile(tp, sc)
			if c == nil {
				return nil
			}
			typ = c.sd.Type
			names = append(names, typ+" ("+c.sd.Name+")")
		}
		if typ == "Resource" || typ == "DomainResource" {
			return nil
		}
		if !slices.Contains(rc.types, typ) {
			rc.types = append(rc.types, typ)
		}
	}
	rc.names = strings.Join(names, ", ")
	return rc
}

func stripVersion(u string) string {
	url, _ := SplitCanonical(u)
	return url
}

// run is one validation: its issues, what was validated already and where the walk is.
type run struct {
	v       *Validator
	opts    Options
	issues  fhir.Issues
	seen    []seenKey
	seenM   map[seenKey]bool
	resolve func(ref string) *etree.Element

	// The location of the element being checked is base followed by path; its string is only
	// written when an issue is reported.
	base    string
	path    []seg
	pathBuf [24]seg
	// The resource (or data type instance) being walked starts at path[rootDepth:] and is of
	// type rootTyp: an element's definition path (Patient.address.line) is told from it.
	rootDepth int
	rootTyp   string
}

// seg is one step of a location: an element name and, for an instance, the element itself, whose
// index among its parent's children of the same tag is written when it repeats.
type seg struct {
	name   string
	parent *etree.Element
	el     *etree.Element
	force  bool // write the index even when it is the only one of its tag
}

type seenKey struct {
	el *etree.Element
	c  *compiled
}

// runs keeps runs for reuse: a validation is short, and a run with its path buffer is most of
// what it would allocate.
var runs = sync.Pool{New: func() any { return new(run) }}

func newRun(v *Validator, at string, opts Options) *run {
	r := runs.Get().(*run)
	*r = run{v: v, opts: opts, resolve: opts.Resolve, base: at, seen: r.seen[:0]}
	r.path = r.pathBuf[:0]
	return r
}

// done returns r's issues (each reported once) and puts r back for reuse, holding on to nothing
// of the document.
func (r *run) done() fhir.Issues {
	is := r.issues.Unique() // a slice and its base may state the same rule
	clear(r.seen)
	*r = run{seen: r.seen[:0]}
	runs.Put(r)
	return is
}

func (r *run) push(s seg) { r.path = append(r.path, s) }
func (r *run) pop()       { r.path = r.path[:len(r.path)-1] }

// location writes where the walk is, in red's style (Bundle.entry[3].resource.identifier[1]),
// followed by extra.
func (r *run) location(extra string) string {
	var b strings.Builder
	b.WriteString(r.base)
	for _, s := range r.path {
		b.WriteByte('.')
		b.WriteString(s.name)
		if s.el == nil {
			continue
		}
		i, n := tagIndex(s.parent, s.el)
		if s.force || n > 1 || repeating[s.name] {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(i))
			b.WriteByte(']')
		}
	}
	b.WriteString(extra)
	return b.String()
}

// tagIndex is el's index among parent's child elements of its tag, and how many there are.
func tagIndex(parent, el *etree.Element) (int, int) {
	if parent == nil {
		return 0, 1
	}
	i, n := 0, 0
	for _, t := range parent.Child {
		k, ok := t.(*etree.Element)
		if !ok || k.Tag != el.Tag {
			continue
		}
		if k == el {
			i = n
		}
		n++
	}
	return i, n
}

// once reports whether el is validated against the profile c for the first time in this run.
func (r *run) once(el *etree.Element, c *compiled) bool {
	k := seenKey{el, c}
	if r.seenM != nil {
		if r.seenM[k] {
			return false
		}
		r.seenM[k] = true
		return true
	}
	for _, s := range r.seen {
		if s == k {
			return false
		}
	}
	r.seen = append(r.seen, k)
	if len(r.seen) > 32 {
		r.seenM = make(map[seenKey]bool, 64)
		for _, s := range r.seen {
			r.seenM[s] = true
		}
	}
	return true
}

// Validate checks res against every profile its meta.profile names (canonical URL with an
// optional |version) and reports each violation located under at (e.g. "Bundle.entry[3].resource"
// or, for a top-level resource, its type). A profile not in the tables (or in another version) is
// an information issue; without meta.profile there is nothing to check against. Unless
// opts.TopOnly, the resources inside res (Bundle entries, contained resources) are validated by
// their own meta.profile too.
func (v *Validator) Validate(res *etree.Element, at string, opts Options) fhir.Issues {
	if res == nil {
		return nil
	}
	if at == "" {
		at = res.Tag
	}
	r := newRun(v, at, opts)
	if res.Tag == "Bundle" {
		r.resolve = bundleResolver(res, opts.Resolve)
	}
	r.resource(res)
	return r.done()
}

// ValidateAgainst checks el against one profile of the tables regardless of its meta.profile: a
// resource against a resource profile, or a data type instance (an Identifier, a Coding, an
// extension) against a profile of that type. An unknown profile is an information issue.
func (v *Validator) ValidateAgainst(el *etree.Element, canonical, at string, opts Options) fhir.Issues {
	if el == nil {
		return nil
	}
	if at == "" {
		at = el.Tag
	}
	r := newRun(v, at, opts)
	c := v.profile(canonical, nil)
	switch {
	case c == nil:
		r.add(fhir.SeverityInformation, fhir.CodeInformational, "", "profile %s is not known here; not checked against it", canonical)
	case c.sd.Kind == "resource":
		r.against(el, c)
	default:
		r.rootDepth, r.rootTyp = 0, c.sd.Type
		r.walk(el, c.tree())
	}
	return r.done()
}

// bundleResolver resolves references by the entries' fullUrl (and Type/id), then by next.
func bundleResolver(b *etree.Element, next func(string) *etree.Element) func(string) *etree.Element {
	m := map[string]*etree.Element{}
	for _, e := range b.SelectElements("entry") {
		res := fhir.ResourceOf(child(e, "resource"))
		if res == nil {
			continue
		}
		if u := childValue(e, "fullUrl"); u != "" {
			m[u] = res
		}
		if id := childValue(res, "id"); id != "" {
			m[res.Tag+"/"+id] = res
		}
	}
	return func(ref string) *etree.Element {
		if res := m[ref]; res != nil {
			return res
		}
		if next != nil {
			return next(ref)
		}
		return nil
	}
}

// add reports an issue at the current location followed by extra.
func (r *run) add(sev fhir.Severity, code fhir.IssueCode, extra, format string, args ...any) {
	r.issues = append(r.issues, fhir.Issue{Severity: sev, Code: code, Expression: r.location(extra), Diagnostics: fmt.Sprintf(format, args...)})
}

// resource validates res (at the current location) by its meta.profile, then the resources
// inside it.
func (r *run) resource(res *etree.Element) {
	checked, pkg := false, "" // pkg: the FHIR package of the first profile checked against
	for _, t := range tokens(child(res, "meta")) {
		p, ok := t.(*etree.Element)
		if !ok || p.Tag != "profile" {
			continue
		}
		canon := attr(p, "value")
		c := r.v.profile(canon, nil)
		switch cands := r.v.profiles[stripVersion(canon)]; {
		case len(cands) == 0:
			r.add(fhir.SeverityInformation, fhir.CodeInformational, ".meta.profile",
				"profile %s is not known here; the resource is not checked against it", canon)
			continue
		case c == nil:
			var vs []string
			for _, c := range cands {
				vs = append(vs, c.sd.Version)
			}
			r.add(fhir.SeverityInformation, fhir.CodeInformational, ".meta.profile",
				"profile %s is known here only in version %s; the resource is not checked against it", canon, strings.Join(vs, ", "))
			continue
		case c.sd.Type != res.Tag:
			r.add(fhir.SeverityError, fhir.CodeStructure, "",
				"profile %s constrains %s, not %s", canon, c.sd.Type, res.Tag)
			continue
		}
		r.against(res, c)
		if !checked {
			checked, pkg = true, c.sd.Package
		}
	}
	if checked {
		depth, typ := r.rootDepth, r.rootTyp
		r.rootDepth, r.rootTyp = len(r.path), res.Tag
		sc := r.v.scope(pkg)
		r.extensions(res, &sc)
		r.rootDepth, r.rootTyp = depth, typ
	}
	if r.opts.TopOnly {
		return
	}
	for _, t := range res.Child {
		e, ok := t.(*etree.Element)
		if !ok {
			continue
		}
		var inner *etree.Element
		switch e.Tag {
		case "entry":
			inner = fhir.ResourceOf(child(e, "resource"))
			if inner == nil {
				continue
			}
			r.push(seg{name: "entry", parent: res, el: e, force: true})
			r.push(seg{name: "resource"})
			r.resource(inner)
			r.pop()
			r.pop()
		case "contained":
			if inner = fhir.ResourceOf(e); inner == nil {
				continue
			}
			r.push(seg{name: "contained", parent: res, el: e, force: true})
			r.resource(inner)
			r.pop()
		}
	}
}

// against validates el (a resource or a data type instance, at the current location) against one
// profile, once.
func (r *run) against(el *etree.Element, c *compiled) {
	if !r.once(el, c) {
		return
	}
	depth, typ := r.rootDepth, r.rootTyp
	r.rootDepth, r.rootTyp = len(r.path), el.Tag
	r.walk(el, c.tree())
	r.rootDepth, r.rootTyp = depth, typ
}

// walk checks el against the element definition n and descends into n's children.
func (r *run) walk(el *etree.Element, n *node) {
	if n.checks {
		r.checkElement(el, n)
	}
	var tbuf [32]string
	tags := tbuf[:0]
	for _, t := range el.Child {
		if k, ok := t.(*etree.Element); ok {
			tags = append(tags, k.Tag)
		}
	}
	for _, c := range n.children {
		if c.absent || present(tags, c) {
			r.walkChild(el, c)
		}
	}
}

// present reports whether an instance of c is among the element names tags.
func present(tags []string, c *node) bool {
	for _, t := range tags {
		if c.choice == "" && t == c.name || c.choice != "" && len(t) > len(c.choice) && strings.HasPrefix(t, c.choice) && isUpper(t[len(c.choice)]) {
			return true
		}
	}
	return false
}

// instances appends to dst the children of parent that the element definition c stands for.
func instances(dst []*etree.Element, parent *etree.Element, c *node) []*etree.Element {
	for _, t := range parent.Child {
		k, ok := t.(*etree.Element)
		if !ok {
			continue
		}
		if c.choice != "" {
			if len(k.Tag) > len(c.choice) && strings.HasPrefix(k.Tag, c.choice) && isUpper(k.Tag[len(c.choice)]) {
				dst = append(dst, k)
			}
		} else if k.Tag == c.name {
			dst = append(dst, k)
		}
	}
	return dst
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// isAttribute reports whether the element named name is written as an XML attribute of parent:
// the id of every element but a resource, the url of an extension.
func isAttribute(parent *etree.Element, name string) bool {
	return (name == "id" || name == "url") && parent.SelectAttr(name) != nil
}

// repeating are element names that repeat wherever they occur in FHIR R4 (used to write
// locations with an index when the profile does not state the element's maximum).
var repeating = map[string]bool{
	"extension": true, "modifierExtension": true, "identifier": true, "coding": true, "entry": true,
	"contained": true, "profile": true, "given": true, "prefix": true, "suffix": true, "line": true,
	"telecom": true, "address": true, "name": true, "contact": true, "category": true, "component": true,
	"performer": true, "link": true, "note": true, "reasonCode": true, "reasonReference": true,
	"qualification": true, "item": true, "diagnosis": true, "insurance": true, "content": true,
	"tag": true, "security": true, "partOf": true, "basedOn": true, "supportingInfo": true,
}

func (r *run) walkChild(parent *etree.Element, c *node) {
	var kbuf [8]*etree.Element
	kids := instances(kbuf[:0], parent, c)
	def := c.def
	if def != nil && (def.Min > 0 || (def.Max != "" && def.Max != "*")) {
		n := len(kids)
		if n == 0 && def.Min > 0 && (isAttribute(parent, c.name) || r.supplied(def.Path)) {
			n = 1 // Element.id and Extension.url are XML attributes; the caller writes the supplied
		}
		r.cardinality(n, def.Min, def.Max, c.name, "")
	}
	var mbuf [8]*node
	var matched []*node
	if c.sliced && len(kids) > 0 {
		if len(kids) <= len(mbuf) {
			matched = mbuf[:len(kids)]
		} else {
			matched = make([]*node, len(kids))
		}
		for i, k := range kids {
			for _, s := range c.slices {
				if s.def != nil && s.def.Match != nil && s.def.Match.Unresolved == "" && r.matches(k, c.name, s.match) {
					matched[i] = s
					break
				}
			}
			// A choice of a type the profile does not allow is reported once, by checkElement.
			if matched[i] == nil && c.closed && (c.typeCodes == nil || hasType(k, c.choice, c.typeCodes)) {
				r.push(seg{name: k.Tag, parent: parent, el: k, force: c.repeats})
				r.add(fhir.SeverityError, fhir.CodeStructure, "",
					"%s matches none of the slices the profile allows here (closed slicing%s)", k.Tag, c.slicesIn)
				r.pop()
			}
		}
	}
	for _, s := range c.slices {
		if s.def == nil || s.def.Match == nil || s.def.Match.Unresolved != "" {
			continue
		}
		n := 0
		for _, m := range matched {
			if m == s {
				n++
			}
		}
		r.cardinality(n, s.def.Min, s.def.Max, c.name, s.def.SliceName)
	}
	for i, k := range kids {
		r.push(seg{name: k.Tag, parent: parent, el: k, force: c.repeats})
		r.walk(k, c)
		if matched != nil && matched[i] != nil {
			r.walkSlice(k, matched[i])
		}
		r.pop()
	}
}

// walkSlice checks an instance against the slice it matched (and a reslice of it, if any).
func (r *run) walkSlice(k *etree.Element, s *node) {
	r.walk(k, s)
	for _, rs := range s.slices {
		if rs.def != nil && rs.def.Match != nil && rs.def.Match.Unresolved == "" && r.matches(k, s.name, rs.match) {
			r.walk(k, rs)
			break
		}
	}
}

// supplied reports whether the element at the definition path (Patient.meta.versionId) is one
// of Options.Supplied below a resource (not below a data type: CodeableConcept.text is no
// resource's text).
func (r *run) supplied(path string) bool {
	if len(r.opts.Supplied) == 0 {
		return false
	}
	typ, below, ok := strings.Cut(path, ".")
	return ok && resourceTypes[typ] && slices.Contains(r.opts.Supplied, below)
}

// cardinality checks the number of instances of the element name (a slice of it when slice is
// set) below the current location.
func (r *run) cardinality(n, min int, max, name, slice string) {
	if min > 0 && n < min {
		r.add(fhir.SeverityError, fhir.CodeRequired, "."+name, "%s is required at least %d time(s) by the profile, found %d", what(name, slice), min, n)
	}
	if max == "" || max == "*" {
		return
	}
	m, err := strconv.Atoi(max)
	if err != nil || n <= m {
		return
	}
	if m == 0 {
		r.add(fhir.SeverityError, fhir.CodeStructure, "."+name, "%s is not allowed by the profile (max 0), found %d", what(name, slice), n)
		return
	}
	r.add(fhir.SeverityError, fhir.CodeStructure, "."+name, "%s may occur at most %d time(s), found %d", what(name, slice), m, n)
}

func what(name, slice string) string {
	if slice != "" {
		return name + " (slice " + slice + ")"
	}
	return name
}

// matches reports whether el fulfils every discriminator of a slice.
func (r *run) matches(el *etree.Element, name string, ds []discMatch) bool {
	for i := range ds {
		d := &ds[i]
		switch d.Type {
		case "value", "pattern":
			if len(d.Patterns) > 0 {
				if !patternAt(el, d.segs, d.Patterns) {
					return false
				}
			} else if !hasValue(el, d.segs, d.Values) {
				return false
			}
		case "type":
			target, choice := el, choiceOf(name)
			if d.segs != nil {
				target, choice = firstAt(el, d.segs), choiceOf(d.segs[len(d.segs)-1])
			}
			if target == nil || !hasType(target, choice, d.Types) {
				return false
			}
		case "profile":
			target := firstAt(el, d.segs)
			if target == nil {
				return false
			}
			if inner := fhir.ResourceOf(target); inner != nil && child(inner, "meta") != nil {
				target = inner
			}
			ok := false
			for _, t := range tokens(child(target, "meta")) {
				p, isEl := t.(*etree.Element)
				if !isEl || p.Tag != "profile" {
					continue
				}
				for _, w := range d.Profiles {
					if stripVersion(attr(p, "value")) == stripVersion(w) {
						ok = true
					}
				}
			}
			if !ok {
				return false
			}
		case "exists":
			if (firstAt(el, d.segs) != nil) != d.Exists {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// choiceOf is the tag prefix of a choice element's name (value[x] → value), "" for others.
func choiceOf(name string) string {
	if prefix, ok := strings.CutSuffix(name, "[x]"); ok {
		return prefix
	}
	return ""
}

// hasType reports whether el, an instance of an element whose choice prefix is choice ("" when it
// is no choice element), is of one of the types: for a choice element by its tag's suffix, for a
// resource container by the resource inside.
func hasType(el *etree.Element, choice string, types []string) bool {
	t := typeOf(el, choice)
	for _, w := range types {
		if strings.EqualFold(t, w) {
			return true
		}
	}
	return false
}

// typeOf is the type the tag of a choice element shows (valueQuantity → Quantity) or, for a
// resource container, the resource type; "" when not to be told from the instance.
func typeOf(el *etree.Element, choice string) string {
	if inner := fhir.ResourceOf(el); inner != nil && inner.Tag != "" && isUpper(inner.Tag[0]) {
		return inner.Tag
	}
	if choice != "" && strings.HasPrefix(el.Tag, choice) {
		return el.Tag[len(choice):]
	}
	return ""
}

// matchesName reports whether a child tagged tag is what the path segment s stands for (a choice
// name value[x] stands for valueQuantity, valueString, …).
func matchesName(tag, s string) bool {
	if prefix, ok := strings.CutSuffix(s, "[x]"); ok {
		return len(tag) > len(prefix) && strings.HasPrefix(tag, prefix) && isUpper(tag[len(prefix)])
	}
	return tag == s
}

// hasValue reports whether a primitive value at the path segs below el is one of want ("url" at
// the end is the attribute of an extension; no segs: el's own value).
func hasValue(el *etree.Element, segs []string, want []string) bool {
	if len(segs) == 0 {
		v, ok := attrOK(el, "value")
		return ok && slices.Contains(want, v)
	}
	if len(segs) == 1 && segs[0] == "url" {
		if u, ok := attrOK(el, "url"); ok {
			return slices.Contains(want, u)
		}
	}
	for _, t := range el.Child {
		if k, ok := t.(*etree.Element); ok && matchesName(k.Tag, segs[0]) && hasValue(inside(k), segs[1:], want) {
			return true
		}
	}
	return false
}

// inside is the resource in a resource container (entry.resource, contained), which a path
// steps into as FHIRPath does (entry.resource.meta is the resource's meta); other elements are
// themselves.
func inside(el *etree.Element) *etree.Element {
	switch el.Tag {
	case "resource", "contained", "outcome": // the resource containers of FHIR R4
		if inner := fhir.ResourceOf(el); inner != nil && inner.Tag != "" && isUpper(inner.Tag[0]) {
			return inner
		}
	}
	return el
}

// patternAt reports whether an element at the path segs below el contains one of the patterns.
func patternAt(el *etree.Element, segs []string, patterns []Node) bool {
	if len(segs) == 0 {
		for _, p := range patterns {
			if matchPattern(p, el) {
				return true
			}
		}
		return false
	}
	for _, t := range el.Child {
		if k, ok := t.(*etree.Element); ok && matchesName(k.Tag, segs[0]) && patternAt(inside(k), segs[1:], patterns) {
			return true
		}
	}
	return false
}

// firstAt is the first element at the path segs below el (el itself for no segs), stepping into
// resource containers on the way.
func firstAt(el *etree.Element, segs []string) *etree.Element {
	cur := el
	for _, s := range segs {
		if s == "$this" {
			continue
		}
		var next *etree.Element
		for _, t := range inside(cur).Child {
			if k, ok := t.(*etree.Element); ok && matchesName(k.Tag, s) {
				next = k
				break
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// checkElement checks what a definition says of one instance: allowed types, fixed and pattern
// values, maximum length, required bindings, reference targets, type profiles, invariants.
func (r *run) checkElement(el *etree.Element, n *node) {
	def := n.def
	if n.typeCodes != nil && !strings.HasSuffix(el.Tag, "[x]") && !hasType(el, n.choice, n.typeCodes) {
		r.add(fhir.SeverityError, fhir.CodeStructure, "", "type %s is not allowed here; the profile allows %s", typeOf(el, n.choice), strings.Join(n.typeCodes, ", "))
		return
	}
	if def.Fixed != nil && !matchFixed(def.Fixed.Node, el) {
		r.add(fhir.SeverityError, fhir.CodeValue, "", "value must be exactly %s (fixed%s in the profile)", showNode(def.Fixed.Node), def.Fixed.Type)
	}
	if def.Pattern != nil && !matchPattern(def.Pattern.Node, el) {
		r.add(fhir.SeverityError, fhir.CodeValue, "", "value must contain %s (pattern%s in the profile)", showNode(def.Pattern.Node), def.Pattern.Type)
	}
	if def.MaxLength > 0 {
		if v, ok := attrOK(el, "value"); ok && len(v) > def.MaxLength && utf8.RuneCountInString(v) > def.MaxLength {
			r.add(fhir.SeverityError, fhir.CodeValue, "", "value is longer than %d characters (%d)", def.MaxLength, utf8.RuneCountInString(v))
		}
	}
	if n.vs != nil {
		r.binding(el, n)
	}
	if n.ref != nil {
		r.references(el, n.ref)
	}
	if n.typeCands != nil {
		r.typeProfiles(el, n)
	}
	if r.opts.Invariants != nil {
		for _, c := range def.Constraints {
			ok, err := r.opts.Invariants.Check(c.Expression, el)
			switch {
			case err != nil:
				r.add(fhir.SeverityWarning, fhir.CodeInvariant, "", "invariant %s could not be evaluated: %v", c.Key, err)
			case !ok:
				sev := fhir.SeverityError
				if c.Severity == "warning" {
					sev = fhir.SeverityWarning
				}
				r.add(sev, fhir.CodeInvariant, "", "invariant %s violated: %s", c.Key, c.Human)
			}
		}
	}
}

// matchPattern reports whether el contains everything the pattern says.
func matchPattern(p Node, el *etree.Element) bool {
	if p.Value != "" && attr(el, "value") != p.Value {
		return false
	}
	for _, c := range p.Children {
		if c.Name == "@url" {
			if attr(el, "url") != c.Value {
				return false
			}
			continue
		}
		found := false
		for _, t := range el.Child {
			if k, ok := t.(*etree.Element); ok && k.Tag == c.Name && matchPattern(c, k) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// matchFixed reports whether el is exactly the fixed value (extensions and ids aside).
func matchFixed(p Node, el *etree.Element) bool {
	if attr(el, "value") != p.Value {
		return false
	}
	if !matchPattern(p, el) {
		return false
	}
	n := 0
	for _, t := range el.Child {
		if k, ok := t.(*etree.Element); ok && k.Tag != "extension" && k.Tag != "id" {
			n++
		}
	}
	kids := 0
	for _, c := range p.Children {
		if c.Name != "@url" && c.Name != "extension" && c.Name != "id" {
			kids++
		}
	}
	return n == kids
}

func showNode(n Node) string {
	var parts []string
	if n.Value != "" {
		if n.Name == "" {
			return strconv.Quote(n.Value)
		}
		parts = append(parts, n.Name+"="+strconv.Quote(n.Value))
	}
	for _, c := range n.Children {
		parts = append(parts, showNode(c))
	}
	s := strings.Join(parts, ", ")
	if n.Name != "" && n.Value == "" {
		return n.Name + "{" + s + "}"
	}
	return s
}

// binding checks the codes of el against the required value set's expansion.
func (r *run) binding(el *etree.Element, n *node) {
	ci := n.vs
	if v, ok := attrOK(el, "value"); ok { // code
		if !ci.has("", v) {
			r.add(fhir.SeverityError, fhir.CodeInvalid, "", "code %q is not in the required value set %s", v, n.vsName)
		}
		return
	}
	codings := false
	for _, t := range el.Child { // CodeableConcept
		if c, ok := t.(*etree.Element); ok && c.Tag == "coding" {
			if codeIn(ci, c) {
				return
			}
			codings = true
		}
	}
	if codings {
		r.add(fhir.SeverityError, fhir.CodeInvalid, "", "none of the codings is in the required value set %s", n.vsName)
		return
	}
	if child(el, "code") != nil && !codeIn(ci, el) { // Coding, Quantity
		r.add(fhir.SeverityError, fhir.CodeInvalid, "", "code %s|%s is not in the required value set %s",
			childValue(el, "system"), childValue(el, "code"), n.vsName)
	}
}

func codeIn(ci *codeIndex, c *etree.Element) bool {
	return ci.has(childValue(c, "system"), childValue(c, "code"))
}

// references checks a Reference's target type against the allowed target profiles' types. A
// reference that cannot be resolved but names its type (Practitioner/3153) is checked by that
// type: the profile forbids it whether or not the resource is at hand.
func (r *run) references(el *etree.Element, rc *refCheck) {
	ref := childValue(el, "reference")
	if ref == "" || ref[0] == '#' {
		return
	}
	typ := ""
	if r.resolve != nil {
		if res := r.resolve(ref); res != nil {
			typ = res.Tag
		}
	}
	if typ == "" && !strings.HasPrefix(ref, "urn:") {
		typ = refType(ref)
	}
	if typ == "" || slices.Contains(rc.types, typ) {
		return
	}
	r.add(fhir.SeverityError, fhir.CodeStructure, ".reference", "reference to a resource of type %s is not allowed here; the profile allows only %s", typ, rc.names)
}

// refType is the resource type named by a literal reference (Type/id, Type/id/_history/v, or an
// absolute URL ending so).
func refType(ref string) string {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	i := strings.LastIndexByte(ref, '/')
	if i <= 0 {
		return ""
	}
	t := ref[:i]
	if j := strings.LastIndexByte(t, '/'); j >= 0 {
		t = t[j+1:]
	}
	if t == "" || !isUpper(t[0]) {
		return ""
	}
	return t
}

// typeProfiles validates el against the profiles its definition's type names (extensions,
// data type profiles, resources in a Bundle entry): against the first that it fulfils, else the
// issues of the first candidate are reported.
func (r *run) typeProfiles(el *etree.Element, n *node) {
	typ := ""
	if n.multiTyped {
		typ = typeOf(el, n.choice)
	}
	saved := len(r.issues)
	var first fhir.Issues
	tried := false
	for _, tc := range n.typeCands {
		if n.multiTyped && !strings.EqualFold(typ, tc.code) {
			continue
		}
		c := tc.c
		if c.sd.Kind == "resource" {
			target := fhir.ResourceOf(el)
			if target == nil || target.Tag != c.sd.Type {
				r.add(fhir.SeverityError, fhir.CodeStructure, "", "expected a resource of type %s (profile %s)", c.sd.Type, c.sd.URL)
			} else {
				r.against(target, c)
			}
		} else {
			r.dataType(el, c)
		}
		if !hasErrors(r.issues[saved:]) {
			return
		}
		if !tried {
			first = append(fhir.Issues(nil), r.issues[saved:]...)
			tried = true
		}
		r.issues = r.issues[:saved]
	}
	r.issues = append(r.issues, first...)
}

// dataType validates a data type instance (an extension included) against a profile of it, once.
func (r *run) dataType(el *etree.Element, c *compiled) {
	if !r.once(el, c) {
		return
	}
	if c.sd.Type == "Extension" && len(c.sd.Contexts) > 0 {
		r.extensionContext(c.sd)
	}
	r.walk(el, c.tree())
}

// extensions finds the extensions anywhere in el (not in the resources inside it) whose url is an
// extension definition in the tables within sc (the scope of the resource profile's package), and
// validates them against it, their context included. Extensions a profile slice already matched
// were validated then.
func (r *run) extensions(el *etree.Element, sc *scope) {
	for _, t := range el.Child {
		k, ok := t.(*etree.Element)
		if !ok || k.Tag == "resource" || k.Tag == "contained" || k.Tag == "div" {
			continue
		}
		r.push(seg{name: k.Tag, parent: el, el: k})
		if k.Tag == "extension" || k.Tag == "modifierExtension" {
			if c := r.v.profile(attr(k, "url"), sc); c != nil && c.sd.Type == "Extension" {
				r.dataType(k, c)
			}
		}
		r.extensions(k, sc)
		r.pop()
	}
}

func hasErrors(is fhir.Issues) bool {
	for _, i := range is {
		if i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal {
			return true
		}
	}
	return false
}

// extensionContext checks that the extension at the current location is used where its
// definition allows it.
func (r *run) extensionContext(sd *StructureDef) {
	if len(r.path) <= r.rootDepth {
		return // the extension is what is validated: it has no parent here
	}
	var b strings.Builder
	b.WriteString(r.rootTyp)
	for _, s := range r.path[r.rootDepth : len(r.path)-1] {
		b.WriteByte('.')
		b.WriteString(s.name)
	}
	parent := b.String() // Patient.address
	var ctx []string
	for _, c := range sd.Contexts {
		if c.Type != "element" {
			return // fhirpath and extension contexts are not checked
		}
		e := c.Expression
		ctx = append(ctx, e)
		if e == parent || e == "Element" || e == "Resource" || e == "DomainResource" || e == "BackboneElement" {
			return
		}
		head, tail, _ := strings.Cut(e, ".")
		if !resourceTypes[head] {
			// a data type context (Coding, CodeableConcept.coding): without the core model the
			// parent's type is unknown; only a stated path tail can be compared
			if tail == "" || strings.HasSuffix(parent, "."+tail) {
				return
			}
			continue
		}
		if base, ok := strings.CutSuffix(e, "[x]"); ok && strings.HasPrefix(parent, base) && len(parent) > len(base) && isUpper(parent[len(base)]) {
			return
		}
	}
	r.add(fhir.SeverityError, fhir.CodeStructure, "", "extension %s is not allowed at %s; its contexts: %s", sd.URL, parent, strings.Join(ctx, ", "))
}

// attr is the value of el's attribute key ("" when absent or el is nil).
func attr(el *etree.Element, key string) string {
	v, _ := attrOK(el, key)
	return v
}

func attrOK(el *etree.Element, key string) (string, bool) {
	if el == nil {
		return "", false
	}
	for i := range el.Attr {
		if a := &el.Attr[i]; a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// child is el's first child element named tag (nil when there is none or el is nil).
func child(el *etree.Element, tag string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, t := range el.Child {
		if k, ok := t.(*etree.Element); ok && k.Tag == tag {
			return k
		}
	}
	return nil
}

// tokens are el's child tokens (none for nil).
func tokens(el *etree.Element) []etree.Token {
	if el == nil {
		return nil
	}
	return el.Child
}

func childValue(el *etree.Element, tag string) string { return attr(child(el, tag), "value") }

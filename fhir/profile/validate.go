package profile

import (
	"fmt"
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
}

// Validator checks resources against a set of generated tables.
type Validator struct {
	t         *Tables
	profiles  map[string]*compiled // by canonical URL without version
	valueSets map[string]*codeIndex
}

type compiled struct {
	sd   *StructureDef
	root *node
}

// node is an element of a profile with its children and slices.
type node struct {
	def      *ElementDef
	name     string // last path segment: identifier, value[x], valueQuantity
	children []*node
	slices   []*node
}

type codeIndex struct {
	vs       *ValueSet
	pairs    map[Code]bool
	codeOnly map[string]bool
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

// New prepares tables for validation.
func New(t *Tables) *Validator {
	v := &Validator{t: t, profiles: map[string]*compiled{}, valueSets: map[string]*codeIndex{}}
	for _, sd := range t.Profiles {
		v.profiles[sd.URL] = compile(sd)
	}
	for _, vs := range t.ValueSets {
		ci := &codeIndex{vs: vs, pairs: map[Code]bool{}, codeOnly: map[string]bool{}}
		for _, c := range vs.Codes {
			ci.pairs[c] = true
			ci.codeOnly[c.Code] = true
		}
		v.valueSets[vs.URL] = ci
	}
	return v
}

// Profile returns the table of a profile by canonical URL (with or without |version).
func (v *Validator) Profile(canonical string) *StructureDef {
	if c := v.profiles[stripVersion(canonical)]; c != nil {
		return c.sd
	}
	return nil
}

func compile(sd *StructureDef) *compiled {
	nodes := make(map[string]*node, len(sd.Elements))
	get := func(id string) *node {
		n := nodes[id]
		if n == nil {
			n = &node{}
			nodes[id] = n
		}
		return n
	}
	c := &compiled{sd: sd}
	for _, e := range sd.Elements {
		n := get(e.ID)
		n.def = e
		segs := strings.Split(e.ID, ".")
		last := segs[len(segs)-1]
		name, slice, isSlice := strings.Cut(last, ":")
		n.name = name
		if len(segs) == 1 {
			c.root = n
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
	if c.root == nil {
		c.root = &node{def: &ElementDef{ID: sd.Type, Path: sd.Type, Min: -1}, name: sd.Type}
	}
	return c
}

func stripVersion(u string) string {
	if i := strings.IndexByte(u, '|'); i >= 0 {
		return u[:i]
	}
	return u
}

// run is one validation: its issues and what was validated already.
type run struct {
	v       *Validator
	opts    Options
	issues  fhir.Issues
	seen    map[seenKey]bool
	resolve func(ref string) *etree.Element
	root    rootOf // the resource (or data type instance) being walked
}

// rootOf locates the resource being walked, to tell an element's definition path
// (Patient.address.line) from its location (Bundle.entry[2].resource.address[0].line[1]).
type rootOf struct{ at, typ string }

// definitionPath is the path of the element at location at, without indices, from its resource.
func (r *run) definitionPath(at string) string {
	rel, ok := strings.CutPrefix(at, r.root.at)
	if !ok {
		return ""
	}
	var b strings.Builder
	b.WriteString(r.root.typ)
	depth := 0
	for i := 0; i < len(rel); i++ {
		switch c := rel[i]; {
		case c == '[':
			depth++
		case c == ']':
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

type seenKey struct {
	el  *etree.Element
	url string
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
	r := &run{v: v, opts: opts, seen: map[seenKey]bool{}, resolve: opts.Resolve}
	if res.Tag == "Bundle" {
		r.resolve = bundleResolver(res, opts.Resolve)
	}
	r.resource(res, at)
	return dedupe(r.issues)
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
	r := &run{v: v, opts: opts, seen: map[seenKey]bool{}, resolve: opts.Resolve}
	c := v.profiles[stripVersion(canonical)]
	if c == nil {
		r.add(fhir.SeverityInformation, fhir.CodeInformational, at, "profile %s is not known here; not checked against it", canonical)
		return r.issues
	}
	if c.sd.Kind == "resource" {
		r.against(el, c, at)
	} else {
		r.root = rootOf{at: at, typ: c.sd.Type}
		r.walk(el, c.root, at)
	}
	return dedupe(r.issues)
}

// bundleResolver resolves references by the entries' fullUrl (and Type/id), then by next.
func bundleResolver(b *etree.Element, next func(string) *etree.Element) func(string) *etree.Element {
	m := map[string]*etree.Element{}
	for _, e := range b.SelectElements("entry") {
		res := fhir.ResourceOf(e.SelectElement("resource"))
		if res == nil {
			continue
		}
		if u := fhir.ChildValue(e, "fullUrl"); u != "" {
			m[u] = res
		}
		if id := fhir.ChildValue(res, "id"); id != "" {
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

func (r *run) add(sev fhir.Severity, code fhir.IssueCode, at, format string, args ...any) {
	r.issues = append(r.issues, fhir.Issue{Severity: sev, Code: code, Expression: at, Diagnostics: fmt.Sprintf(format, args...)})
}

// resource validates res by its meta.profile, then the resources inside it.
func (r *run) resource(res *etree.Element, at string) {
	checked := false
	for _, p := range res.FindElements("meta/profile") {
		canon := fhir.Value(p)
		url, version, _ := strings.Cut(canon, "|")
		c := r.v.profiles[url]
		switch {
		case c == nil:
			r.add(fhir.SeverityInformation, fhir.CodeInformational, at+".meta.profile",
				"profile %s is not known here; the resource is not checked against it", canon)
			continue
		case version != "" && c.sd.Version != "" && version != c.sd.Version:
			r.add(fhir.SeverityInformation, fhir.CodeInformational, at+".meta.profile",
				"profile %s is known here only in version %s; the resource is not checked against it", canon, c.sd.Version)
			continue
		case c.sd.Type != res.Tag:
			r.add(fhir.SeverityError, fhir.CodeStructure, at,
				"profile %s constrains %s, not %s", canon, c.sd.Type, res.Tag)
			continue
		}
		r.against(res, c, at)
		checked = true
	}
	if checked {
		saved := r.root
		r.root = rootOf{at: at, typ: res.Tag}
		r.extensions(res, at)
		r.root = saved
	}
	if r.opts.TopOnly {
		return
	}
	for i, e := range res.SelectElements("entry") {
		if inner := fhir.ResourceOf(e.SelectElement("resource")); inner != nil {
			r.resource(inner, at+".entry["+strconv.Itoa(i)+"].resource")
		}
	}
	for i, c := range res.SelectElements("contained") {
		if inner := fhir.ResourceOf(c); inner != nil {
			r.resource(inner, at+".contained["+strconv.Itoa(i)+"]")
		}
	}
}

// against validates el (a resource or a data type instance) against one profile, once.
func (r *run) against(el *etree.Element, c *compiled, at string) {
	k := seenKey{el, c.sd.URL}
	if r.seen[k] {
		return
	}
	r.seen[k] = true
	saved := r.root
	r.root = rootOf{at: at, typ: el.Tag}
	r.walk(el, c.root, at)
	r.root = saved
}

// walk checks el against the element definition n and descends into n's children.
func (r *run) walk(el *etree.Element, n *node, at string) {
	if n.def != nil {
		r.checkElement(el, n.def, at)
	}
	for _, c := range n.children {
		r.walkChild(el, c, at)
	}
}

// instances are the children of parent that the element definition named name stands for.
func instances(parent *etree.Element, name string) []*etree.Element {
	if prefix, ok := strings.CutSuffix(name, "[x]"); ok {
		var out []*etree.Element
		for _, k := range parent.ChildElements() {
			if len(k.Tag) > len(prefix) && strings.HasPrefix(k.Tag, prefix) && isUpper(k.Tag[len(prefix)]) {
				out = append(out, k)
			}
		}
		return out
	}
	return parent.SelectElements(name)
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

func (r *run) walkChild(parent *etree.Element, c *node, at string) {
	kids := instances(parent, c.name)
	def := c.def
	indexed := repeating[c.name] || len(kids) > 1 || (def != nil && def.Max != "" && def.Max != "1" && def.Max != "0")
	paths := make([]string, len(kids))
	perTag := map[string]int{}
	for i, k := range kids {
		p := at + "." + k.Tag
		if indexed {
			p += "[" + strconv.Itoa(perTag[k.Tag]) + "]"
		}
		perTag[k.Tag]++
		paths[i] = p
	}
	where := at + "." + c.name
	if def != nil {
		n := len(kids)
		if n == 0 && isAttribute(parent, c.name) {
			n = 1 // Element.id and Extension.url are XML attributes
		}
		r.cardinality(n, def.Min, def.Max, where, c.name, "")
	}
	// slicing
	var matched []*node
	if len(c.slices) > 0 && len(kids) > 0 || (def != nil && def.Slicing != nil && len(kids) > 0) {
		matched = make([]*node, len(kids))
		unresolved := false
		for _, s := range c.slices {
			if s.def == nil || s.def.Match == nil || s.def.Match.Unresolved != "" {
				unresolved = true
			}
		}
		for i, k := range kids {
			for _, s := range c.slices {
				if s.def != nil && s.def.Match != nil && s.def.Match.Unresolved == "" && r.matches(k, c.name, s.def.Match) {
					matched[i] = s
					break
				}
			}
			if matched[i] == nil && !unresolved && def != nil && def.Slicing != nil && def.Slicing.Rules == "closed" {
				r.add(fhir.SeverityError, fhir.CodeStructure, paths[i],
					"%s matches none of the slices the profile allows here (closed slicing%s)", k.Tag, describeSlices(c))
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
		r.cardinality(n, s.def.Min, s.def.Max, where, c.name, s.def.SliceName)
	}
	for i, k := range kids {
		r.walk(k, c, paths[i])
		if matched != nil && matched[i] != nil {
			r.walkSlice(k, matched[i], paths[i])
		}
	}
}

// walkSlice checks an instance against the slice it matched (and a reslice of it, if any).
func (r *run) walkSlice(k *etree.Element, s *node, at string) {
	r.walk(k, s, at)
	for _, rs := range s.slices {
		if rs.def != nil && rs.def.Match != nil && rs.def.Match.Unresolved == "" && r.matches(k, s.name, rs.def.Match) {
			r.walk(k, rs, at)
			break
		}
	}
}

func describeSlices(c *node) string {
	if len(c.slices) == 0 {
		return ", no slices defined"
	}
	names := make([]string, 0, len(c.slices))
	for _, s := range c.slices {
		if s.def != nil {
			names = append(names, s.def.SliceName)
		}
	}
	return ": " + strings.Join(names, ", ")
}

func (r *run) cardinality(n, min int, max, where, name, slice string) {
	what := name
	if slice != "" {
		what = name + " (slice " + slice + ")"
	}
	if min > 0 && n < min {
		r.add(fhir.SeverityError, fhir.CodeRequired, where, "%s is required at least %d time(s) by the profile, found %d", what, min, n)
	}
	if max == "" || max == "*" {
		return
	}
	m, err := strconv.Atoi(max)
	if err != nil || n <= m {
		return
	}
	if m == 0 {
		r.add(fhir.SeverityError, fhir.CodeStructure, where, "%s is not allowed by the profile (max 0), found %d", what, n)
		return
	}
	r.add(fhir.SeverityError, fhir.CodeStructure, where, "%s may occur at most %d time(s), found %d", what, m, n)
}

// matches reports whether el fulfils every discriminator of a slice.
func (r *run) matches(el *etree.Element, name string, m *SliceMatch) bool {
	for _, d := range m.Discriminators {
		switch d.Type {
		case "value", "pattern":
			if len(d.Patterns) > 0 {
				if !patternAt(el, d.Path, d.Patterns) {
					return false
				}
				continue
			}
			got := valuesAt(el, d.Path)
			ok := false
			for _, g := range got {
				for _, w := range d.Values {
					if g == w {
						ok = true
					}
				}
			}
			if !ok {
				return false
			}
		case "type":
			target, tname := el, name
			if d.Path != "$this" {
				target, tname = firstAt(el, d.Path), lastSegment(d.Path)
			}
			if target == nil || !hasType(target, tname, d.Types) {
				return false
			}
		case "profile":
			target := el
			if d.Path != "$this" {
				target = firstAt(el, d.Path)
			}
			if target == nil {
				return false
			}
			if inner := fhir.ResourceOf(target); inner != nil && inner.SelectElement("meta") != nil {
				target = inner
			}
			ok := false
			for _, p := range target.FindElements("meta/profile") {
				for _, w := range d.Profiles {
					if stripVersion(fhir.Value(p)) == stripVersion(w) {
						ok = true
					}
				}
			}
			if !ok {
				return false
			}
		case "exists":
			if (firstAt(el, d.Path) != nil) != d.Exists {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// hasType reports whether el, the instance of the element named name, is of one of the types:
// for a choice element (value[x]) by its tag's suffix, for a resource container by the resource
// inside.
func hasType(el *etree.Element, name string, types []string) bool {
	t := typeOf(el, name)
	for _, w := range types {
		if strings.EqualFold(t, w) {
			return true
		}
	}
	return false
}

// typeOf is the type the tag of a choice element shows (valueQuantity → Quantity) or, for a
// resource container, the resource type; "" when not to be told from the instance.
func typeOf(el *etree.Element, name string) string {
	if inner := fhir.ResourceOf(el); inner != nil && inner.Tag != "" && isUpper(inner.Tag[0]) {
		return inner.Tag
	}
	if prefix, ok := strings.CutSuffix(name, "[x]"); ok && strings.HasPrefix(el.Tag, prefix) {
		return el.Tag[len(prefix):]
	}
	return ""
}

// lastSegment is the last name of a dotted path.
func lastSegment(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// valuesAt collects the primitive values at a dotted path below el ("url" is the attribute of an
// extension).
func valuesAt(el *etree.Element, path string) []string {
	if path == "$this" {
		if v := el.SelectAttr("value"); v != nil {
			return []string{v.Value}
		}
		return nil
	}
	segs := strings.Split(path, ".")
	cur := []*etree.Element{el}
	for i, s := range segs {
		if i == len(segs)-1 && s == "url" {
			var out []string
			for _, c := range cur {
				if a := c.SelectAttr("url"); a != nil {
					out = append(out, a.Value)
				}
			}
			if len(out) > 0 {
				return out
			}
		}
		var next []*etree.Element
		for _, c := range cur {
			next = append(next, instances(c, s)...)
		}
		cur = next
	}
	var out []string
	for _, c := range cur {
		if v := c.SelectAttr("value"); v != nil {
			out = append(out, v.Value)
		}
	}
	return out
}

// patternAt reports whether an element at the dotted path below el contains one of the patterns.
func patternAt(el *etree.Element, path string, patterns []Node) bool {
	cur := []*etree.Element{el}
	if path != "$this" {
		for _, s := range strings.Split(path, ".") {
			var next []*etree.Element
			for _, c := range cur {
				next = append(next, instances(c, s)...)
			}
			cur = next
		}
	}
	for _, c := range cur {
		for _, p := range patterns {
			if matchPattern(p, c) {
				return true
			}
		}
	}
	return false
}

func firstAt(el *etree.Element, path string) *etree.Element {
	cur := el
	for _, s := range strings.Split(path, ".") {
		if s == "$this" {
			continue
		}
		kids := instances(cur, s)
		if len(kids) == 0 {
			return nil
		}
		cur = kids[0]
	}
	return cur
}

// checkElement checks what a definition says of one instance: allowed types, fixed and pattern
// values, maximum length, required bindings, reference targets, type profiles, invariants.
func (r *run) checkElement(el *etree.Element, def *ElementDef, at string) {
	if strings.HasSuffix(def.Path, "[x]") && len(def.Types) > 0 && !strings.HasSuffix(el.Tag, "[x]") {
		codes := make([]string, len(def.Types))
		for i, t := range def.Types {
			codes[i] = t.Code
		}
		if name := lastSegment(def.Path); !hasType(el, name, codes) {
			r.add(fhir.SeverityError, fhir.CodeStructure, at, "type %s is not allowed here; the profile allows %s", typeOf(el, name), strings.Join(codes, ", "))
			return
		}
	}
	if def.Fixed != nil && !matchFixed(def.Fixed.Node, el) {
		r.add(fhir.SeverityError, fhir.CodeValue, at, "value must be exactly %s (fixed%s in the profile)", showNode(def.Fixed.Node), def.Fixed.Type)
	}
	if def.Pattern != nil && !matchPattern(def.Pattern.Node, el) {
		r.add(fhir.SeverityError, fhir.CodeValue, at, "value must contain %s (pattern%s in the profile)", showNode(def.Pattern.Node), def.Pattern.Type)
	}
	if def.MaxLength > 0 {
		if v := el.SelectAttr("value"); v != nil && utf8.RuneCountInString(v.Value) > def.MaxLength {
			r.add(fhir.SeverityError, fhir.CodeValue, at, "value is longer than %d characters (%d)", def.MaxLength, utf8.RuneCountInString(v.Value))
		}
	}
	if b := def.Binding; b != nil && b.Strength == "required" && b.ValueSet != "" {
		r.binding(el, b, at)
	}
	r.references(el, def, at)
	r.typeProfiles(el, def, at)
	if r.opts.Invariants != nil {
		for _, c := range def.Constraints {
			ok, err := r.opts.Invariants.Check(c.Expression, el)
			switch {
			case err != nil:
				r.add(fhir.SeverityWarning, fhir.CodeInvariant, at, "invariant %s could not be evaluated: %v", c.Key, err)
			case !ok:
				sev := fhir.SeverityError
				if c.Severity == "warning" {
					sev = fhir.SeverityWarning
				}
				r.add(sev, fhir.CodeInvariant, at, "invariant %s violated: %s", c.Key, c.Human)
			}
		}
	}
}

// matchPattern reports whether el contains everything the pattern says.
func matchPattern(p Node, el *etree.Element) bool {
	if p.Value != "" && el.SelectAttrValue("value", "") != p.Value {
		return false
	}
	for _, c := range p.Children {
		if c.Name == "@url" {
			if el.SelectAttrValue("url", "") != c.Value {
				return false
			}
			continue
		}
		found := false
		for _, k := range el.SelectElements(c.Name) {
			if matchPattern(c, k) {
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
	if el.SelectAttrValue("value", "") != p.Value {
		return false
	}
	if !matchPattern(p, el) {
		return false
	}
	n := 0
	for _, k := range el.ChildElements() {
		if k.Tag != "extension" && k.Tag != "id" {
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

// binding checks the codes of el against a required value set's expansion.
func (r *run) binding(el *etree.Element, b *Binding, at string) {
	ci := r.v.valueSets[stripVersion(b.ValueSet)]
	if ci == nil || !ci.vs.Expanded {
		return // value set absent or not expandable (e.g. ICD-10-GM): codes are not checked
	}
	vsName := stripVersion(b.ValueSet)
	if v := el.SelectAttr("value"); v != nil { // code
		if !ci.codeOnly[v.Value] {
			r.add(fhir.SeverityError, fhir.CodeInvalid, at, "code %q is not in the required value set %s", v.Value, vsName)
		}
		return
	}
	if codings := el.SelectElements("coding"); len(codings) > 0 { // CodeableConcept
		for _, c := range codings {
			if r.codeIn(ci, c) {
				return
			}
		}
		r.add(fhir.SeverityError, fhir.CodeInvalid, at, "none of the codings is in the required value set %s", vsName)
		return
	}
	if el.SelectElement("code") != nil { // Coding, Quantity
		if !r.codeIn(ci, el) {
			r.add(fhir.SeverityError, fhir.CodeInvalid, at, "code %s|%s is not in the required value set %s",
				fhir.ChildValue(el, "system"), fhir.ChildValue(el, "code"), vsName)
		}
	}
}

func (r *run) codeIn(ci *codeIndex, c *etree.Element) bool {
	code := fhir.ChildValue(c, "code")
	sys := fhir.ChildValue(c, "system")
	if sys == "" {
		return ci.codeOnly[code]
	}
	return ci.pairs[Code{System: sys, Code: code}]
}

// references checks a Reference's target type against the allowed target profiles.
func (r *run) references(el *etree.Element, def *ElementDef, at string) {
	var targets []string
	for _, t := range def.Types {
		if t.Code == "Reference" {
			targets = append(targets, t.TargetProfile...)
		}
	}
	if len(targets) == 0 {
		return
	}
	ref := fhir.ChildValue(el, "reference")
	if ref == "" || strings.HasPrefix(ref, "#") {
		return
	}
	allowed := map[string]bool{}
	for _, tp := range targets {
		tp = stripVersion(tp)
		if t, ok := strings.CutPrefix(tp, "http://hl7.org/fhir/StructureDefinition/"); ok {
			allowed[t] = true
			continue
		}
		c := r.v.profiles[tp]
		if c == nil {
			return // a target profile not in the tables: its type is unknown, nothing to check
		}
		allowed[c.sd.Type] = true
	}
	if allowed["Resource"] || allowed["DomainResource"] {
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
	if typ == "" || allowed[typ] {
		return
	}
	names := make([]string, 0, len(allowed))
	for _, tp := range targets {
		names = append(names, stripVersion(tp))
	}
	r.add(fhir.SeverityError, fhir.CodeStructure, at+".reference", "reference to a %s is not allowed here; allowed targets: %s", typ, strings.Join(names, ", "))
}

// refType is the resource type named by a literal reference (Type/id, Type/id/_history/v, or an
// absolute URL ending so).
func refType(ref string) string {
	segs := strings.Split(ref, "/")
	if len(segs) >= 4 && segs[len(segs)-2] == "_history" {
		segs = segs[:len(segs)-2]
	}
	if len(segs) < 2 {
		return ""
	}
	t := segs[len(segs)-2]
	if t == "" || !isUpper(t[0]) {
		return ""
	}
	return t
}

// typeProfiles validates el against the profiles its definition's type names (extensions,
// data type profiles, resources in a Bundle entry).
func (r *run) typeProfiles(el *etree.Element, def *ElementDef, at string) {
	var cands []*compiled
	for _, t := range def.Types {
		if len(def.Types) > 1 && !strings.EqualFold(typeOf(el, lastSegment(def.Path)), t.Code) {
			continue
		}
		for _, p := range t.Profiles {
			if c := r.v.profiles[stripVersion(p)]; c != nil {
				cands = append(cands, c)
			}
		}
	}
	if len(cands) == 0 {
		return
	}
	saved := r.issues
	var firstIssues fhir.Issues
	for i, c := range cands {
		r.issues = nil
		target := el
		if c.sd.Kind == "resource" {
			target = fhir.ResourceOf(el)
			if target == nil || target.Tag != c.sd.Type {
				r.issues = fhir.Issues{{Severity: fhir.SeverityError, Code: fhir.CodeStructure, Expression: at,
					Diagnostics: "expected a resource of type " + c.sd.Type + " (profile " + c.sd.URL + ")"}}
			} else {
				r.against(target, c, at)
			}
		} else {
			r.dataType(target, c, at)
		}
		if !hasErrors(r.issues) {
			r.issues = append(saved, r.issues...)
			return
		}
		if i == 0 {
			firstIssues = r.issues
		}
	}
	r.issues = append(saved, firstIssues...)
}

// dataType validates a data type instance (an extension included) against a profile of it, once.
func (r *run) dataType(el *etree.Element, c *compiled, at string) {
	k := seenKey{el, c.sd.URL}
	if r.seen[k] {
		return
	}
	r.seen[k] = true
	if c.sd.Type == "Extension" {
		r.extensionContext(c.sd, at)
	}
	r.walk(el, c.root, at)
}

// extensions finds the extensions anywhere in a resource (not in the resources inside it) whose
// url is an extension definition in the tables, and validates them against it, their context
// included. Extensions a profile slice already matched were validated then.
func (r *run) extensions(el *etree.Element, at string) {
	perTag := map[string]int{}
	counts := map[string]int{}
	for _, k := range el.ChildElements() {
		counts[k.Tag]++
	}
	for _, k := range el.ChildElements() {
		if k.Tag == "resource" || k.Tag == "contained" || k.Tag == "div" {
			perTag[k.Tag]++
			continue
		}
		p := at + "." + k.Tag
		if repeating[k.Tag] || counts[k.Tag] > 1 {
			p += "[" + strconv.Itoa(perTag[k.Tag]) + "]"
		}
		perTag[k.Tag]++
		if k.Tag == "extension" || k.Tag == "modifierExtension" {
			if c := r.v.profiles[k.SelectAttrValue("url", "")]; c != nil && c.sd.Type == "Extension" {
				r.dataType(k, c, p)
			}
		}
		r.extensions(k, p)
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

// extensionContext checks that the extension at location at is used where its definition allows it.
func (r *run) extensionContext(sd *StructureDef, at string) {
	if len(sd.Contexts) == 0 {
		return
	}
	dp := r.definitionPath(at) // Patient.address.extension
	parent := dp
	if i := strings.LastIndexByte(dp, '.'); i >= 0 {
		parent = dp[:i]
	} else {
		return
	}
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
	r.add(fhir.SeverityError, fhir.CodeStructure, at, "extension %s is not allowed at %s; its contexts: %s", sd.URL, parent, strings.Join(ctx, ", "))
}

// dedupe drops repeated issues (a slice and its base may state the same rule).
func dedupe(is fhir.Issues) fhir.Issues {
	seen := map[fhir.Issue]bool{}
	out := is[:0]
	for _, i := range is {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

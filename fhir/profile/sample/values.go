package sample

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/profile"
)

// Example values of primitive types. Dates lie in January 2025 (birth dates in 1980): before the
// clock tests run with, after any date a profile might expect to have passed.

// examples are values by element name, where the name says more than the type.
var examples = map[string]string{
	"birthDate": "1980-01-15", "family": "Mustermann", "given": "Erika", "city": "Berlin",
	"postalCode": "10115", "country": "D", "line": "Musterstraße 1", "versionId": "1",
	"contentType": "application/pdf", "currency": "EUR", "periodUnit": "d",
}

// byType are values by primitive type.
var byType = map[string]string{
	"boolean":      "true",
	"integer":      "1",
	"unsignedInt":  "1",
	"positiveInt":  "1",
	"decimal":      "1",
	"string":       "Beispiel",
	"markdown":     "Beispiel",
	"code":         "sample",
	"id":           "sample",
	"uri":          "http://example.org/fhir/sample",
	"url":          "https://example.org/sample",
	"canonical":    "http://example.org/fhir/StructureDefinition/sample",
	"oid":          "urn:oid:1.2.276.0.76.4.8",
	"uuid":         "urn:uuid:3b0c1f2e-7e0a-4c8e-9d7b-1b2f6f0e5a41",
	"base64Binary": "QmVpc3BpZWw=",
	"date":         "2025-01-15",
	"dateTime":     "2025-01-15T10:00:00+01:00",
	"instant":      "2025-01-15T10:00:00+01:00",
	"time":         "10:00:00",
}

// example is a value for a primitive element named name of type typ.
func example(name, typ string) string {
	if v, ok := examples[name]; ok && (typ == "string" || typ == "code" || typ == "date" || typ == "id") {
		return v
	}
	return byType[typ]
}

// reference gives a Reference without reference one to an allowed target type, Type/id, when the
// profile requires the reference or nothing else of the Reference.
func (g *gen) reference(el *etree.Element, ns []*node) {
	if child(el, "reference") != nil {
		return
	}
	lo, hi := bounds(groupOf(ns, "reference"))
	if hi == 0 {
		return
	}
	if lo == 0 {
		for _, name := range []string{"identifier", "display"} {
			if l, _ := bounds(groupOf(ns, name)); l > 0 {
				return
			}
		}
	}
	typ := g.target(ns)
	ref := typ + "/" + resourceID(typ)
	if c := containedOf(el, typ); c != nil {
		ref = "#" + childValue(c, "id")
	}
	fhir.SetValue(el.CreateElement("reference"), ref)
}

// containedOf is a resource of type typ contained in the resource el is part of, nil for none.
func containedOf(el *etree.Element, typ string) *etree.Element {
	for p := el.Parent(); p != nil; p = p.Parent() {
		if !isResource(p) {
			continue
		}
		for _, c := range children(p, "contained") {
			if r := fhir.ResourceOf(c); r != nil && r.Tag == typ {
				return r
			}
		}
		return nil
	}
	return nil
}

// target is the resource type a reference defined by ns points to: the type of its first target
// profile (Patient when none is stated).
func (g *gen) target(ns []*node) string {
	for i := len(ns) - 1; i >= 0; i-- {
		d := ns[i].def
		if d == nil {
			continue
		}
		for _, t := range d.Types {
			for _, tp := range t.TargetProfile {
				url, _ := profile.SplitCanonical(tp)
				if typ, ok := strings.CutPrefix(url, "http://hl7.org/fhir/StructureDefinition/"); ok {
					if typ != "Resource" && typ != "DomainResource" {
						return typ
					}
					continue
				}
				if sd := g.v.ProfileIn(tp, ns[i].pkg); sd != nil {
					return sd.Type
				}
			}
		}
	}
	return "Patient"
}

// entryURLs names a Bundle entry's resource in its fullUrl and request.url.
func entryURLs(entry *etree.Element) {
	res := fhir.ResourceOf(child(entry, "resource"))
	if res == nil {
		return
	}
	ref := res.Tag + "/" + childValue(res, "id")
	if u := child(entry, "fullUrl"); u != nil {
		fhir.SetValue(u, "https://example.org/fhir/"+ref)
	}
	if u := child(child(entry, "request"), "url"); u != nil {
		fhir.SetValue(u, ref)
	}
}

// contents puts a resource into a resource container (Bundle.entry.resource): a minimal instance
// of the resource profile its definition names or Options.Contents gives.
func (g *gen) contents(el *etree.Element, ns []*node) {
	if fhir.ResourceOf(el) != nil {
		return
	}
	var sd *profile.StructureDef
	for _, n := range ns {
		if n.def == nil {
			continue
		}
		if c := g.opts.Contents[n.def.ID]; c != "" && sd == nil {
			sd = g.v.Profile(c)
		}
		for _, t := range n.def.Types {
			for _, p := range t.Profiles {
				if p := g.v.ProfileIn(p, n.pkg); p != nil && p.Kind == "resource" && sd == nil {
					sd = p
				}
			}
		}
	}
	if sd != nil {
		el.AddChild(g.resource(sd))
	}
}

// code gives a coded element (CodeableConcept, Coding, Quantity; named name inside an element
// whose type key is parentKey) without a code one of the value set its definitions bind it to, in
// the code system a fixed or pattern value there asks for, else one of the value set FHIR core
// binds it to. A code without system gets the system of that core binding.
func (g *gen) code(el *etree.Element, ns []*node, typ, parentKey string) {
	c := el
	if typ == "CodeableConcept" {
		if k := child(el, "coding"); k != nil {
			c = k
		}
	}
	core, isCore := coreBindings[parentKey+"."+el.Tag]
	if k := child(c, "code"); k != nil {
		if child(c, "system") == nil && isCore && c != el {
			s := etree.NewElement("system")
			fhir.SetValue(s, core.System)
			c.InsertChildAt(k.Index(), s)
		}
		return
	}
	sys := childValue(c, "system")
	if sys == "" {
		path := []string{"system"}
		if typ == "CodeableConcept" {
			path = []string{"coding", "system"}
		}
		sys = fixedAt(ns, path)
	}
	code, ok := g.bound(ns, sys)
	if !ok && isCore && (sys == "" || sys == core.System) {
		code, ok = core, true
	}
	if !ok {
		return
	}
	if c == el && typ == "CodeableConcept" {
		if _, hi := bounds(groupOf(ns, "coding")); hi == 0 {
			return
		}
		c = el.CreateElement("coding")
	}
	if child(c, "system") == nil {
		fhir.SetValue(c.CreateElement("system"), code.System)
	}
	fhir.SetValue(c.CreateElement("code"), code.Code)
	if isQuantity(typ) && child(c, "unit") == nil {
		fhir.SetValue(c.CreateElement("unit"), code.Code)
	}
}

// bound is a code of the value set the definitions bind their element to (a required binding
// first), in system sys when it is not "".
func (g *gen) bound(ns []*node, sys string) (profile.Code, bool) {
	for _, strength := range []string{"required", "extensible", "preferred", "example"} {
		for _, n := range ns {
			if n.def == nil {
				continue
			}
			b := n.def.Binding
			if b == nil || b.Strength != strength || b.ValueSet == "" {
				continue
			}
			vs := g.v.ValueSetIn(b.ValueSet, n.pkg)
			if vs == nil {
				continue
			}
			for _, c := range vs.Codes {
				if sys == "" || c.System == sys {
					return c, true
				}
			}
		}
	}
	return profile.Code{}, false
}

// fixedAt is the value a fixed or pattern value of the definitions ns, or of their children,
// gives at path below them.
func fixedAt(ns []*node, path []string) string {
	for _, n := range ns {
		if d := n.def; d != nil {
			for _, v := range []*profile.Value{d.Fixed, d.Pattern} {
				if v == nil {
					continue
				}
				if s := valueAt(v.Node, path); s != "" {
					return s
				}
			}
		}
	}
	if len(path) == 0 {
		return ""
	}
	return fixedAt(groupOf(ns, path[0]), path[1:])
}

func valueAt(n profile.Node, path []string) string {
	if len(path) == 0 {
		return n.Value
	}
	for _, c := range n.Children {
		if c.Name == path[0] {
			if s := valueAt(c, path[1:]); s != "" {
				return s
			}
		}
	}
	return ""
}

// primitive is the value of a primitive element named name of type typ: a code of a bound value
// set, else an example value of its type (values.go), no longer than the definitions allow.
func (g *gen) primitive(key, name string, ns []*node, typ string) string {
	if c, ok := g.bound(ns, ""); ok {
		return c.Code
	}
	if v := patterned(ns); v != "" {
		return v
	}
	if c := coreCode(key, name); c != "" && typ == "code" {
		return c
	}
	v := example(name, typ)
	for _, n := range ns {
		if d := n.def; d != nil && d.MaxLength > 0 && len([]rune(v)) > d.MaxLength {
			v = string([]rune(v)[:d.MaxLength])
		}
	}
	return v
}

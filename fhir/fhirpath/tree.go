package fhirpath

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// FHIR R4 data types: the names is/as/ofType accept besides resource types, and the
// suffixes of choice elements (valueQuantity, effectiveDateTime).
var dataTypes = map[string]bool{}

// supertypes holds the FHIR and System types a type also is (code is a string, Age a
// Quantity).
var supertypes = map[string][]string{
	"code": {"string"}, "id": {"string"}, "markdown": {"string"},
	"url": {"uri"}, "canonical": {"uri"}, "oid": {"uri"}, "uuid": {"uri"},
	"unsignedInt": {"integer"}, "positiveInt": {"integer"},
	"Age": {"Quantity"}, "Count": {"Quantity"}, "Distance": {"Quantity"}, "Duration": {"Quantity"},
	"SimpleQuantity": {"Quantity"}, "MoneyQuantity": {"Quantity"},
}

func init() {
	for _, t := range strings.Fields(`boolean integer string decimal uri url canonical base64Binary
		instant date dateTime time code oid id markdown unsignedInt positiveInt uuid xhtml
		Address Age Annotation Attachment CodeableConcept Coding ContactPoint Count Distance
		Duration HumanName Identifier Money MoneyQuantity Period Quantity Range Ratio Reference
		SampledData Signature SimpleQuantity Timing ContactDetail Contributor DataRequirement
		Expression ParameterDefinition RelatedArtifact TriggerDefinition UsageContext Dosage Meta
		Extension Narrative Element BackboneElement ElementDefinition MarketingStatus Population
		ProdCharacteristic ProductShelfLife SubstanceAmount`) {
		dataTypes[t] = true
	}
}

// choiceType maps the suffix of a choice element (Quantity, DateTime, Boolean) to its type
// (Quantity, dateTime, boolean), or "" when the suffix names no data type.
func choiceType(suffix string) string {
	if suffix == "" || suffix[0] < 'A' || suffix[0] > 'Z' {
		return ""
	}
	if dataTypes[suffix] {
		return suffix
	}
	if p := strings.ToLower(suffix[:1]) + suffix[1:]; dataTypes[p] && p != suffix {
		return p
	}
	return ""
}

// knownType reports whether name is a type is/as/ofType can test: a FHIR data type, a
// resource type, Resource, DomainResource or a System type (also written FHIR.x, System.x).
func knownType(name string) bool {
	if s, ok := strings.CutPrefix(name, "System."); ok {
		return systemTypes[s] != 0
	}
	name = strings.TrimPrefix(name, "FHIR.")
	return dataTypes[name] || fhir.IsResourceType(name) || name == "Resource" || name == "DomainResource"
}

var systemTypes = map[string]kind{
	"String": kString, "Boolean": kBool, "Integer": kInt, "Decimal": kDecimal, "Date": kDate, "DateTime": kDate, "Time": kTime,
}

// isA reports whether a value of FHIR type typ is also of type want.
func isA(typ, want string) bool {
	if typ == "" {
		return false
	}
	if typ == want {
		return true
	}
	if fhir.IsResourceType(typ) {
		return want == "Resource" || want == "DomainResource" && typ != "Bundle" && typ != "Binary" && typ != "Parameters"
	}
	for _, s := range supertypes[typ] {
		if isA(s, want) {
			return true
		}
	}
	return false
}

func isXHTML(el *etree.Element) bool { return el.NamespaceURI() == fhir.XHTMLNamespace }

func isResource(el *etree.Element) bool { return fhir.IsResourceType(el.Tag) && !isXHTML(el) }

// child turns a child element into an item: a resource container (Bundle.entry.resource,
// contained) gives the resource inside it.
func child(el *etree.Element, typ string) Item {
	if !isResource(el) {
		if inner := fhir.ResourceOf(el); inner != nil && isResource(inner) {
			el = inner
		}
	}
	if isResource(el) {
		typ = el.Tag
	}
	return Item{kind: kNode, el: el, typ: typ}
}

// attrItem gives the XML attribute id or url of el as a string, if it is there.
func attrItem(el *etree.Element, name string) (Item, bool) {
	if name != "id" && name != "url" {
		return Item{}, false
	}
	a := el.SelectAttr(name)
	if a == nil || a.Space != "" {
		return Item{}, false
	}
	typ := "string"
	if name == "url" {
		typ = "uri"
	}
	return Item{kind: kString, s: a.Value, typ: typ}, true
}

// navigate is a path step: the children of it named name, or its choice element name[x].
func navigate(it Item, name string, out Collection) Collection {
	if it.kind != kNode || isXHTML(it.el) {
		return out
	}
	if a, ok := attrItem(it.el, name); ok {
		return append(out, a)
	}
	n := len(out)
	for _, t := range it.el.Child {
		if c, ok := t.(*etree.Element); ok && c.Tag == name {
			out = append(out, child(c, ""))
		}
	}
	if len(out) > n {
		return out
	}
	for _, t := range it.el.Child {
		if c, ok := t.(*etree.Element); ok && len(c.Tag) > len(name) && c.Tag[:len(name)] == name {
			if typ := choiceType(c.Tag[len(name):]); typ != "" {
				out = append(out, child(c, typ))
			}
		}
	}
	return out
}

// children is FHIRPath's children(): the attributes id and url, then every child element.
func children(it Item, out Collection) Collection {
	if it.kind != kNode || isXHTML(it.el) {
		return out
	}
	for _, name := range []string{"id", "url"} {
		if a, ok := attrItem(it.el, name); ok {
			out = append(out, a)
		}
	}
	for _, c := range it.el.ChildElements() {
		out = append(out, child(c, ""))
	}
	return out
}

func descendants(it Item, out Collection) Collection {
	start := len(out)
	out = children(it, out)
	for i := start; i < len(out); i++ {
		out = children(out[i], out)
	}
	return out
}

// top is the outermost element of the tree el is in.
func top(el *etree.Element) *etree.Element {
	for {
		p := el.Parent()
		if p == nil || p.Tag == "" {
			return el
		}
		el = p
	}
}

// resourceOf is the nearest resource at or above el (nil when el is in none).
func resourceOf(el *etree.Element) *etree.Element {
	for e := el; e != nil && e.Tag != ""; e = e.Parent() {
		if isResource(e) {
			return e
		}
	}
	return nil
}

// rootResourceOf is the resource that contains res when res is a contained one, else res.
func rootResourceOf(res *etree.Element) *etree.Element {
	if res == nil {
		return nil
	}
	if p := res.Parent(); p != nil && p.Tag == "contained" {
		if outer := resourceOf(p); outer != nil {
			return outer
		}
	}
	return res
}

// resolveRef finds the target of reference ref from the point of view of el: a contained
// resource of el's resource ('#id'), or an entry of the Bundle el is in, by fullUrl or by
// type and id. It returns nil for anything outside the tree.
func resolveRef(el *etree.Element, ref string) *etree.Element {
	if id, ok := strings.CutPrefix(ref, "#"); ok {
		res := resourceOf(el)
		if res == nil || id == "" {
			return res
		}
		for _, c := range res.SelectElements("contained") {
			if r := child(c, "").el; isResource(r) && fhir.ChildValue(r, "id") == id {
				return r
			}
		}
		return nil
	}
	bundle := top(el)
	if bundle.Tag != "Bundle" {
		return nil
	}
	typ, id := refTypeID(ref)
	var byID *etree.Element
	for _, e := range bundle.SelectElements("entry") {
		res := fhir.ResourceOf(fhir.Child(e, "resource"))
		if res == nil {
			continue
		}
		if fhir.ChildValue(e, "fullUrl") == ref {
			return res
		}
		if byID == nil && typ != "" && res.Tag == typ && fhir.ChildValue(res, "id") == id {
			byID = res
		}
	}
	return byID
}

// refTypeID splits [base/]Type/id[/_history/v] into type and id ("" when ref is no such URL).
func refTypeID(ref string) (typ, id string) {
	parts := strings.Split(ref, "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 || !fhir.IsResourceType(parts[n-2]) || parts[n-1] == "" {
		return "", ""
	}
	return parts[n-2], parts[n-1]
}

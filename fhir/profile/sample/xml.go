package sample

import (
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/profile"
)

// write puts the value tree n (a fixed or pattern value, a discriminator's pattern) into el: its
// value, replacing one there when fixed, and each child it has that el does not contain yet,
// merged into a child of that name whose values do not contradict it.
func write(el *etree.Element, n profile.Node, fixed bool) {
	if n.Value != "" {
		if _, ok := attrOK(el, "value"); fixed || !ok {
			fhir.SetValue(el, n.Value)
		}
	}
	for _, c := range n.Children {
		if c.Name == "@url" || c.Name == "url" && isExtension(el) {
			el.CreateAttr("url", c.Value)
			continue
		}
		kids := children(el, c.Name)
		if slices.ContainsFunc(kids, func(k *etree.Element) bool { return contains(k, c) }) {
			continue
		}
		i := slices.IndexFunc(kids, func(k *etree.Element) bool { return compatible(k, c) })
		var k *etree.Element
		if i >= 0 {
			k = kids[i]
		} else {
			k = el.CreateElement(c.Name)
		}
		write(k, c, true)
	}
}

// contains reports whether el holds everything the value tree n says.
func contains(el *etree.Element, n profile.Node) bool {
	if n.Value != "" && attr(el, "value") != n.Value {
		return false
	}
	for _, c := range n.Children {
		if c.Name == "@url" || c.Name == "url" && isExtension(el) {
			if attr(el, "url") != c.Value {
				return false
			}
			continue
		}
		if !slices.ContainsFunc(children(el, c.Name), func(k *etree.Element) bool { return contains(k, c) }) {
			return false
		}
	}
	return true
}

// compatible reports whether n can be written into el without changing a value el has.
func compatible(el *etree.Element, n profile.Node) bool {
	if v, ok := attrOK(el, "value"); ok && n.Value != "" && v != n.Value {
		return false
	}
	for _, c := range n.Children {
		for _, k := range children(el, c.Name) {
			if v, ok := attrOK(k, "value"); ok && len(c.Children) == 0 && v != c.Value {
				return false
			}
		}
	}
	return true
}

// discriminate gives a new slice instance k what the slice's discriminators look for: the value
// or pattern at their path, the element that must exist. A type discriminator is met by the type
// chosen for k (see typeOf).
func discriminate(k *etree.Element, m *profile.SliceMatch) {
	for _, dv := range m.Discriminators {
		segs := split(dv.Path)
		switch dv.Type {
		case "value", "pattern":
			switch {
			case len(dv.Patterns) > 0:
				write(ensure(k, segs), dv.Patterns[0], false)
			case len(dv.Values) > 0:
				setAt(k, segs, dv.Values[0])
			}
		case "exists":
			if dv.Exists {
				ensure(k, segs)
			}
		}
	}
}

// split is a discriminator path's steps (none for $this).
func split(path string) []string {
	if path == "$this" || path == "" {
		return nil
	}
	return strings.Split(strings.TrimPrefix(path, "$this."), ".")
}

// ensure is the element at the path segs below el, made where it is missing.
func ensure(el *etree.Element, segs []string) *etree.Element {
	for _, s := range segs {
		k := child(el, s)
		if k == nil {
			k = el.CreateElement(s)
		}
		el = k
	}
	return el
}

// setAt gives the element at the path segs below el the value v (an extension's url is its
// attribute).
func setAt(el *etree.Element, segs []string, v string) {
	if len(segs) == 0 {
		fhir.SetValue(el, v)
		return
	}
	parent, last := ensure(el, segs[:len(segs)-1]), segs[len(segs)-1]
	if last == "url" && isExtension(parent) {
		parent.CreateAttr("url", v)
		return
	}
	k := child(parent, last)
	if k == nil || attr(k, "value") != "" {
		k = parent.CreateElement(last)
	}
	fhir.SetValue(k, v)
}

// matches reports whether k, an instance of the element name, is what a slice's discriminators
// look for.
func matches(k *etree.Element, name string, m *profile.SliceMatch) bool {
	for _, dv := range m.Discriminators {
		segs := split(dv.Path)
		switch dv.Type {
		case "value", "pattern":
			found := false
			for _, t := range at(k, segs) {
				if len(dv.Patterns) > 0 {
					found = found || slices.ContainsFunc(dv.Patterns, func(p profile.Node) bool { return contains(t, p) })
				} else {
					found = found || slices.Contains(dv.Values, valueOf(t, segs))
				}
			}
			if !found {
				return false
			}
		case "type":
			tag := k.Tag
			if len(segs) > 0 {
				ts := at(k, segs)
				if len(ts) == 0 {
					return false
				}
				tag, name = ts[0].Tag, segs[len(segs)-1]
			}
			prefix, _ := strings.CutSuffix(name, "[x]")
			typ := typeName(strings.TrimPrefix(tag, prefix))
			if !slices.ContainsFunc(dv.Types, func(t string) bool { return strings.EqualFold(typeName(t), typ) }) {
				return false
			}
		case "exists":
			if (len(at(k, segs)) > 0) != dv.Exists {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// at is the elements at the path segs below el (el for none); an extension's url is el itself
// (see valueOf).
func at(el *etree.Element, segs []string) []*etree.Element {
	cur := []*etree.Element{el}
	for i, s := range segs {
		if i == len(segs)-1 && s == "url" {
			break
		}
		var next []*etree.Element
		for _, c := range cur {
			next = append(next, children(c, s)...)
		}
		cur = next
	}
	return cur
}

// valueOf is the primitive value of el, found at the path segs by at: an extension's url
// attribute where the path ends in url.
func valueOf(el *etree.Element, segs []string) string {
	if len(segs) > 0 && segs[len(segs)-1] == "url" {
		return attr(el, "url")
	}
	return attr(el, "value")
}

// children are el's child elements named name (a choice name value[x] stands for valueString,
// valueQuantity, …).
func children(el *etree.Element, name string) []*etree.Element {
	prefix, choice := strings.CutSuffix(name, "[x]")
	var out []*etree.Element
	for _, k := range el.ChildElements() {
		if k.Tag == name || choice && len(k.Tag) > len(prefix) && strings.HasPrefix(k.Tag, prefix) && isUpper(k.Tag[len(prefix)]) {
			out = append(out, k)
		}
	}
	return out
}

func child(el *etree.Element, name string) *etree.Element {
	if el == nil {
		return nil
	}
	return el.SelectElement(name)
}

func childValue(el *etree.Element, name string) string { return attr(child(el, name), "value") }

// hasChoice reports whether el has an instance of the choice element prefix[x].
func hasChoice(el *etree.Element, prefix string) bool { return len(children(el, prefix+"[x]")) > 0 }

func attr(el *etree.Element, key string) string {
	v, _ := attrOK(el, key)
	return v
}

func attrOK(el *etree.Element, key string) (string, bool) {
	if el == nil {
		return "", false
	}
	if a := el.SelectAttr(key); a != nil {
		return a.Value, true
	}
	return "", false
}

// isEmpty reports whether el has neither a value nor content (FHIR wants one of them).
func isEmpty(el *etree.Element) bool {
	return len(el.ChildElements()) == 0 && el.SelectAttr("value") == nil && el.SelectAttr("url") == nil
}

func isExtension(el *etree.Element) bool {
	return el.Tag == "extension" || el.Tag == "modifierExtension"
}

// isResource reports whether el is a resource (its tag is its type), not an element of one.
func isResource(el *etree.Element) bool { return el.Tag != "" && isUpper(el.Tag[0]) }

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// atoi reads a maximum cardinality ("*" and "" are no number).
func atoi(s string) (int, error) { return strconv.Atoi(s) }

package fhirjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// Unmarshal reads one FHIR JSON resource within lim into the tree fhir.ParseContext would have
// read from its XML form: elements in definition order, primitives with value attributes (numbers
// as written), ids and extension urls as attributes, a narrative's div parsed as XHTML. A member
// the R4 definitions do not know, a value of the wrong JSON type, two types of one choice element
// and anything beyond lim are errors naming where. The pass stops when ctx ends.
func Unmarshal(ctx context.Context, data []byte, lim fhir.Limits) (*etree.Element, error) {
	if lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes {
		return nil, fhir.Fail(fhir.CodeTooCostly, "", "the body has %d bytes; at most %d are accepted", len(data), lim.MaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fhir.Fail(fhir.CodeStructure, "", "the body is not one JSON value: more follows the resource")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fhir.Fail(fhir.CodeStructure, "", "the body is not a JSON object with a resourceType")
	}
	d := decoder{ctx: ctx, lim: lim}
	return d.resource(obj, "")
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fhir.Fail(fhir.CodeStructure, "", "the body is not valid JSON: at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		return fhir.Fail(fhir.CodeStructure, "", "the body is not valid JSON: at byte %d", te.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fhir.Fail(fhir.CodeStructure, "", "the body ends before its JSON value does")
	}
	return fhir.Wrap(err, fhir.CodeStructure, "the body is not valid JSON")
}

type decoder struct {
	ctx   context.Context
	lim   fhir.Limits
	count int // elements made
	depth int
}

// member is one element of an object: its definition, value and _name sibling.
type member struct {
	def        *Elem
	value, ext any
	hasValue   bool
	hasExt     bool
}

func (d *decoder) resource(obj map[string]any, path string) (*etree.Element, error) {
	rt, _ := obj["resourceType"].(string)
	if rt == "" {
		return nil, fhir.Fail(fhir.CodeStructure, join(path, "resourceType"), "a resource names its type in resourceType")
	}
	if !IsResource(rt) {
		return nil, fhir.Fail(fhir.CodeStructure, join(path, "resourceType"), "%s is not a FHIR R4 resource type", fhir.Quote(rt))
	}
	if path == "" {
		path = rt
	}
	el := etree.NewElement(rt)
	if err := d.open(path); err != nil {
		return nil, err
	}
	err := d.fill(el, obj, rt, path, true)
	d.depth--
	return el, err
}

// open counts an element against the limits.
func (d *decoder) open(path string) error {
	d.count++
	d.depth++
	if d.lim.MaxDepth > 0 && d.depth > d.lim.MaxDepth {
		return fhir.Fail(fhir.CodeTooCostly, path, "elements are nested more than %d levels deep", d.lim.MaxDepth)
	}
	if d.lim.MaxElements > 0 && d.count > d.lim.MaxElements {
		return fhir.Fail(fhir.CodeTooCostly, "", "the body has more than %d elements", d.lim.MaxElements)
	}
	if d.count%1024 == 0 {
		if err := d.ctx.Err(); err != nil {
			return fhir.Wrap(err, fhir.CodeTimeout, "reading the body stopped: the request ended")
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fill makes el's attributes and children of type typ from the JSON object.
func (d *decoder) fill(el *etree.Element, obj map[string]any, typ, path string, isResource bool) error {
	members := make([]member, 0, len(obj))
	for k, v := range obj {
		if isResource && k == "resourceType" {
			continue
		}
		name, ext := strings.CutPrefix(k, "_")
		def := lookup(typ, name)
		if def == nil || ext && (def.Kind > Bool || def.Attr) {
			return fhir.Fail(fhir.CodeStructure, join(path, k), "%s is not an element of %s in FHIR R4", fhir.Quote(k), typ)
		}
		i := slices.IndexFunc(members, func(m member) bool { return m.def == def })
		if i < 0 {
			members = append(members, member{def: def})
			i = len(members) - 1
		}
		if ext {
			members[i].ext, members[i].hasExt = v, true
		} else {
			members[i].value, members[i].hasValue = v, true
		}
	}
	slices.SortFunc(members, func(a, b member) int { return a.def.Order - b.def.Order })
	for i := 1; i < len(members); i++ {
		if a, b := members[i-1].def, members[i].def; a.Order == b.Order {
			return fhir.Fail(fhir.CodeStructure, join(path, b.Name), "%s and %s are types of one choice element: give one", a.Name, b.Name)
		}
	}
	for _, m := range members {
		at := join(path, m.def.Name)
		var err error
		switch {
		case m.def.Attr:
			s, ok := m.value.(string)
			if !ok {
				return fhir.Fail(fhir.CodeStructure, at, "%s is a string", m.def.Name)
			}
			el.CreateAttr(m.def.Name, s)
		case m.def.Kind <= Bool:
			err = d.primitives(el, m, at)
		default:
			err = d.complex(el, m, at)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// items is v as the list of values of an element: the array itself where the element repeats.
func items(def *Elem, v any, at string) ([]any, error) {
	if !def.Array {
		if _, ok := v.([]any); ok {
			return nil, fhir.Fail(fhir.CodeStructure, at, "%s is a single value, not an array", def.Name)
		}
		return []any{v}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fhir.Fail(fhir.CodeStructure, at, "%s repeats: it is an array", def.Name)
	}
	if len(list) == 0 {
		return nil, fhir.Fail(fhir.CodeStructure, at, "%s is an empty array; leave it out", def.Name)
	}
	return list, nil
}

func (d *decoder) complex(el *etree.Element, m member, path string) error {
	list, err := items(m.def, m.value, path)
	if err != nil {
		return err
	}
	for i, v := range list {
		at := indexed(path, i, m.def.Array)
		if m.def.Kind == XHTML {
			if err := d.xhtml(el, v, at); err != nil {
				return err
			}
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return fhir.Fail(fhir.CodeStructure, at, "%s is a JSON object", m.def.Name)
		}
		if err := d.open(at); err != nil {
			return err
		}
		c := el.CreateElement(m.def.Name)
		if m.def.Kind == Resource {
			res, err := d.resource(obj, at)
			if err != nil {
				return err
			}
			c.AddChild(res)
		} else if err := d.fill(c, obj, m.def.Type, at, false); err != nil {
			return err
		}
		d.depth--
	}
	return nil
}

// xhtml parses a narrative's div.
func (d *decoder) xhtml(el *etree.Element, v any, at string) error {
	s, ok := v.(string)
	if !ok {
		return fhir.Fail(fhir.CodeStructure, at, "a narrative's div is a string of XHTML")
	}
	lim := d.lim
	if lim.MaxDepth > 0 {
		lim.MaxDepth -= d.depth
	}
	div, err := fhir.ReadXML([]byte(s), lim)
	if err != nil {
		why := "it cannot be read"
		if is, _ := fhir.Explain(err); len(is) > 0 {
			why = is[0].Diagnostics
		}
		return fhir.Fail(fhir.CodeStructure, at, "the narrative's div: %s", why)
	}
	bad := ""
	var check func(e *etree.Element)
	check = func(e *etree.Element) {
		d.count++
		if e.NamespaceURI() != fhir.XHTMLNamespace && bad == "" {
			bad = e.FullTag()
		}
		for _, c := range e.ChildElements() {
			check(c)
		}
	}
	check(div)
	switch {
	case div.Tag != "div":
		return fhir.Fail(fhir.CodeStructure, at, "a narrative is a div, not %s", fhir.Quote(div.FullTag()))
	case bad != "":
		return fhir.Fail(fhir.CodeStructure, at, "the element %s inside a narrative is not in the XHTML namespace %q", fhir.Quote(bad), fhir.XHTMLNamespace)
	case d.lim.MaxElements > 0 && d.count > d.lim.MaxElements:
		return fhir.Fail(fhir.CodeTooCostly, "", "the body has more than %d elements", d.lim.MaxElements)
	}
	el.AddChild(div)
	return nil
}

// primitives makes the elements of a primitive from its values and _name siblings.
func (d *decoder) primitives(el *etree.Element, m member, path string) error {
	var values, exts []any
	var err error
	if m.hasValue {
		if values, err = items(m.def, m.value, path); err != nil {
			return err
		}
	}
	if m.hasExt {
		if exts, err = items(m.def, m.ext, "_"+path); err != nil {
			return err
		}
		if values != nil && len(exts) != len(values) {
			return fhir.Fail(fhir.CodeStructure, path, "%s and _%s have different lengths", m.def.Name, m.def.Name)
		}
	}
	n := max(len(values), len(exts))
	for i := range n {
		at := indexed(path, i, m.def.Array)
		var v, x any
		if values != nil {
			v = values[i]
		}
		if exts != nil {
			x = exts[i]
		}
		if v == nil && x == nil {
			return fhir.Fail(fhir.CodeStructure, at, "%s has neither a value nor an id or extension", m.def.Name)
		}
		if err := d.open(at); err != nil {
			return err
		}
		c := el.CreateElement(m.def.Name)
		if x != nil {
			obj, ok := x.(map[string]any)
			if !ok {
				return fhir.Fail(fhir.CodeStructure, "_"+at, "_%s is a JSON object with id and extension", m.def.Name)
			}
			if err := d.fill(c, obj, "Element", at, false); err != nil {
				return err
			}
		}
		if v != nil {
			s, err := lexical(m.def, v, at)
			if err != nil {
				return err
			}
			c.CreateAttr("value", s)
		}
		d.depth--
	}
	return nil
}

// lexical is a primitive's value as XML writes it; numbers keep the form they were written in.
func lexical(def *Elem, v any, at string) (string, error) {
	switch def.Kind {
	case Number:
		if n, ok := v.(json.Number); ok {
			return n.String(), nil
		}
		return "", fhir.Fail(fhir.CodeStructure, at, "%s is a %s: a JSON number", def.Name, def.Type)
	case Bool:
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b), nil
		}
		return "", fhir.Fail(fhir.CodeStructure, at, "%s is a boolean: true or false", def.Name)
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", fhir.Fail(fhir.CodeStructure, at, "%s is a %s: a JSON string", def.Name, def.Type)
}

package fhirpath

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

type kind uint8

const (
	kNode    kind = iota // an element of the tree
	kText                // the value attribute of an element whose type is unknown
	kString              // System.String (also id and url attributes, typed string values)
	kBool                // System.Boolean
	kInt                 // System.Integer
	kDecimal             // System.Decimal
	kDate                // System.Date or System.DateTime
	kTime                // System.Time
)

// Item is one member of a collection: an element of the tree or a value.
type Item struct {
	kind kind
	el   *etree.Element // kNode
	typ  string         // FHIR type when known: resource type, choice suffix, typed attribute
	s    string         // text of kText, kString, kDecimal, kDate, kTime
	b    bool
	i    int64
	d    *big.Rat
	dt   *dateTime
}

// Collection is what an expression evaluates to.
type Collection []Item

// Node is the tree element the item stands for, or nil for a value the expression made.
func (it Item) Node() *etree.Element { return it.el }

// String shows the item: a value as FHIRPath would print it, an element as <tag> or its value.
func (it Item) String() string {
	switch it.kind {
	case kNode:
		if v := it.el.SelectAttr("value"); v != nil {
			return v.Value
		}
		return "<" + it.el.Tag + ">"
	case kBool:
		return strconv.FormatBool(it.b)
	case kInt:
		return strconv.FormatInt(it.i, 10)
	default:
		return it.s
	}
}

func boolItem(b bool) Item      { return Item{kind: kBool, b: b} }
func intItem(i int64) Item      { return Item{kind: kInt, i: i} }
func stringItem(s string) Item  { return Item{kind: kString, s: s} }
func single(it Item) Collection { return Collection{it} }

// trueColl and falseColl are the results of a boolean test, shared: a collection is never
// changed in place once made (append copies a full one).
var trueColl, falseColl = Collection{boolItem(true)}, Collection{boolItem(false)}

func boolColl(b bool) Collection {
	if b {
		return trueColl
	}
	return falseColl
}

// prim is the primitive value of an item: a value as it is, an element's value attribute
// typed by what the element's type says (kText when it is unknown). ok is false for an
// element without a value attribute.
func prim(it Item) (Item, bool) {
	if it.kind != kNode {
		return it, true
	}
	a := it.el.SelectAttr("value")
	if a == nil || isXHTML(it.el) {
		return Item{}, false
	}
	v := a.Value
	switch {
	case isA(it.typ, "string") || isA(it.typ, "uri") || it.typ == "base64Binary" || it.typ == "xhtml":
		return Item{kind: kString, s: v, typ: it.typ}, true
	case it.typ == "boolean" && (v == "true" || v == "false"):
		return boolItem(v == "true"), true
	case isA(it.typ, "integer"):
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return intItem(n), true
		}
	case it.typ == "decimal":
		if d, ok := new(big.Rat).SetString(v); ok {
			return Item{kind: kDecimal, s: v, d: d}, true
		}
	case it.typ == "date" || it.typ == "dateTime" || it.typ == "instant":
		if d, ok := parseDateTime(v); ok {
			return Item{kind: kDate, s: v, dt: d}, true
		}
	case it.typ == "time":
		if d, ok := parseTime(v); ok {
			return Item{kind: kTime, s: v, dt: d}, true
		}
	}
	return Item{kind: kText, s: v}, true
}

// canonicalDecimal is how FHIR writes decimals; codes like "01" are not taken for numbers.
var canonicalDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// asKind converts a primitive to kind k (the kind of the other operand): kText takes any
// kind its text can be read as, System values only their own (integers widen to decimals).
func asKind(p Item, k kind) (Item, bool) {
	if p.kind == k {
		return p, true
	}
	switch {
	case k == kDecimal && p.kind == kInt:
		return Item{kind: kDecimal, d: new(big.Rat).SetInt64(p.i), s: strconv.FormatInt(p.i, 10)}, true
	case k == kString && p.kind == kText:
		return Item{kind: kString, s: p.s}, true
	case p.kind != kText:
		return Item{}, false
	case k == kBool && (p.s == "true" || p.s == "false"):
		return boolItem(p.s == "true"), true
	case k == kInt:
		n, err := strconv.ParseInt(p.s, 10, 64)
		return intItem(n), err == nil
	case k == kDecimal:
		d, ok := new(big.Rat).SetString(p.s)
		return Item{kind: kDecimal, d: d, s: p.s}, ok && canonicalDecimal.MatchString(p.s)
	case k == kDate:
		d, ok := parseDateTime(p.s)
		return Item{kind: kDate, dt: d, s: p.s}, ok
	case k == kTime:
		d, ok := parseTime(p.s)
		return Item{kind: kTime, dt: d, s: p.s}, ok
	}
	return Item{}, false
}

// unify brings two primitives to one kind. Two texts of unknown type are read as dates
// when both are dates, as numbers when both are canonical decimals, else as strings; a
// text against a value is read as the value's kind.
func unify(a, b Item) (Item, Item, bool) {
	switch {
	case a.kind == kText && b.kind == kText:
		for _, k := range []kind{kDate, kDecimal} {
			x, ok1 := asKind(a, k)
			y, ok2 := asKind(b, k)
			if ok1 && ok2 {
				return x, y, true
			}
		}
		return Item{kind: kString, s: a.s}, Item{kind: kString, s: b.s}, true
	case a.kind == kText:
		y, x, ok := unify(b, a)
		return x, y, ok
	case a.kind == kInt && (b.kind == kDecimal || b.kind == kText):
		// an integer against a decimal, or against a value of the tree such as Quantity.value
		x, _ := asKind(a, kDecimal)
		y, ok := asKind(b, kDecimal)
		return x, y, ok
	case a.kind == kDecimal && b.kind == kInt:
		y, _ := asKind(b, kDecimal)
		return a, y, true
	}
	y, ok := asKind(b, a.kind)
	return a, y, ok
}

// compare orders two primitives of one kind. known is false where FHIRPath's answer is
// empty (dates that agree as far as the coarser one goes).
func compare(a, b Item) (cmp int, known bool, err error) {
	x, y, ok := unify(a, b)
	if !ok {
		return 0, false, fmt.Errorf("cannot compare %s with %s", kindName(a), kindName(b))
	}
	switch x.kind {
	case kString:
		return strings.Compare(x.s, y.s), true, nil
	case kInt:
		return cmpInt(x.i, y.i), true, nil
	case kDecimal:
		return x.d.Cmp(y.d), true, nil
	case kDate, kTime:
		c, known, ok := compareDates(x.dt, y.dt)
		if !ok {
			return 0, false, fmt.Errorf("cannot compare %s with %s", x.s, y.s)
		}
		return c, known, nil
	}
	return 0, false, fmt.Errorf("cannot order %s values", kindName(x))
}

// equal is FHIRPath = on two items; known is false for an empty answer.
func equal(a, b Item) (eq, known bool) {
	pa, oka := prim(a)
	pb, okb := prim(b)
	switch {
	case !oka && !okb:
		return deepEqual(a.el, b.el), true
	case !oka || !okb:
		return false, true
	case pa.kind == kText && pb.kind == kText && pa.s == pb.s:
		return true, true
	}
	x, y, ok := unify(pa, pb)
	if !ok {
		return false, true
	}
	if x.kind == kBool {
		return x.b == y.b, true
	}
	c, known, err := compare(x, y)
	return c == 0, known && err == nil
}

// equivalent is FHIRPath ~: strings ignore case and runs of white space, dates of
// different precision are not equivalent.
func equivalent(a, b Item) bool {
	pa, oka := prim(a)
	pb, okb := prim(b)
	if !oka || !okb {
		return !oka && !okb && deepEqual(a.el, b.el)
	}
	x, y, ok := unify(pa, pb)
	switch {
	case !ok:
		return false
	case x.kind == kString:
		return strings.EqualFold(strings.Join(strings.Fields(x.s), " "), strings.Join(strings.Fields(y.s), " "))
	case x.kind == kBool:
		return x.b == y.b
	}
	c, known, err := compare(x, y)
	return c == 0 && known && err == nil
}

// deepEqual compares two elements by their value and url attributes and their child
// elements, recursively.
func deepEqual(a, b *etree.Element) bool {
	if a.Tag != b.Tag || a.SelectAttrValue("value", "\x00") != b.SelectAttrValue("value", "\x00") ||
		a.SelectAttrValue("url", "\x00") != b.SelectAttrValue("url", "\x00") {
		return false
	}
	ka, kb := a.ChildElements(), b.ChildElements()
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if !deepEqual(ka[i], kb[i]) {
			return false
		}
	}
	return true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func kindName(it Item) string {
	switch it.kind {
	case kNode:
		return "element " + it.el.Tag
	case kText:
		return fmt.Sprintf("value %q", it.s)
	case kString:
		return "string"
	case kBool:
		return "boolean"
	case kInt:
		return "integer"
	case kDecimal:
		return "decimal"
	case kDate:
		return "date/dateTime"
	}
	return "time"
}

// truth is the singleton evaluation of a collection as a boolean: empty gives known false;
// one boolean (or a value written true/false) gives it; any other single item is true.
func truth(c Collection) (b, known bool, err error) {
	switch len(c) {
	case 0:
		return false, false, nil
	case 1:
		if p, ok := prim(c[0]); ok {
			if p.kind == kBool {
				return p.b, true, nil
			}
			if p.kind == kText && (p.s == "true" || p.s == "false") {
				return p.s == "true", true, nil
			}
		}
		return true, true, nil
	}
	return false, false, fmt.Errorf("%d items where a single boolean is expected", len(c))
}

// singlePrim is the primitive of a collection that must hold at most one item; ok is false
// when it is empty or the item has no value.
func singlePrim(c Collection, what string) (Item, bool, error) {
	switch len(c) {
	case 0:
		return Item{}, false, nil
	case 1:
		p, ok := prim(c[0])
		return p, ok, nil
	}
	return Item{}, false, fmt.Errorf("%s: %d items where one is expected", what, len(c))
}

// text is a primitive as a string, for the string functions and toString().
func text(p Item) (string, bool) {
	switch p.kind {
	case kText, kString, kDecimal, kDate, kTime:
		return p.s, true
	case kBool, kInt:
		return p.String(), true
	}
	return "", false
}

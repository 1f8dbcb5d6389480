package fhirpath

import (
	"fmt"
	"math/big"
)

// binNode is an infix operator.
type binNode struct {
	op   string
	l, r node
}

func (n binNode) eval(s *scope, focus Collection) (Collection, error) {
	switch n.op {
	case "and", "or", "xor", "implies":
		return n.logic(s, focus)
	}
	l, err := n.l.eval(s, focus)
	if err != nil {
		return nil, err
	}
	r, err := n.r.eval(s, focus)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "=", "!=":
		eq, known := equalColl(l, r)
		if !known {
			return nil, nil
		}
		return boolColl((eq == (n.op == "="))), nil
	case "~", "!~":
		return boolColl((equivalentColl(l, r) == (n.op == "~"))), nil
	case "<", ">", "<=", ">=":
		return order(n.op, l, r)
	case "|":
		return union(l, r), nil
	case "in":
		return member(l, r)
	case "contains":
		return member(r, l)
	case "&":
		return concat(l, r)
	case "+", "-":
		return arith(n.op, l, r)
	}
	return nil, fmt.Errorf("operator %s", n.op) // the parser admits no other
}

// logic is FHIRPath's three-valued and, or, xor and implies. The right operand is not
// evaluated where the left one decides.
func (n binNode) logic(s *scope, focus Collection) (Collection, error) {
	l, lk, err := n.operand(s, focus, n.l, "left")
	if err != nil {
		return nil, err
	}
	switch {
	case n.op == "and" && lk && !l, n.op == "or" && lk && l:
		return boolColl((l)), nil
	case n.op == "implies" && lk && !l:
		return boolColl((true)), nil
	}
	r, rk, err := n.operand(s, focus, n.r, "right")
	if err != nil {
		return nil, err
	}
	var v, known bool
	switch n.op {
	case "and": // left is true or unknown
		v, known = false, rk && !r
		if lk && rk {
			v, known = r, true
		}
	case "or": // left is false or unknown
		v, known = true, rk && r
		if lk && rk {
			v, known = r, true
		}
	case "xor":
		v, known = l != r, lk && rk
	case "implies": // left is true or unknown
		v, known = true, rk && r
		if lk && rk {
			v, known = r, true
		}
	}
	if !known {
		return nil, nil
	}
	return boolColl((v)), nil
}

// operand evaluates one side of a logical operator as a boolean.
func (n binNode) operand(s *scope, focus Collection, x node, side string) (b, known bool, err error) {
	c, err := x.eval(s, focus)
	if err != nil {
		return false, false, err
	}
	if b, known, err = truth(c); err != nil {
		err = fmt.Errorf("%s of %s: %w", side, n.op, err)
	}
	return b, known, err
}

// equalColl is = on collections: empty if either is empty, else the same items in order.
func equalColl(l, r Collection) (eq, known bool) {
	if len(l) == 0 || len(r) == 0 {
		return false, false
	}
	if len(l) != len(r) {
		return false, true
	}
	known = true
	for i := range l {
		e, k := equal(l[i], r[i])
		if k && !e {
			return false, true
		}
		known = known && k
	}
	return true, known
}

// equivalentColl is ~ on collections: both empty, or every item of each has an equivalent
// in the other, in any order.
func equivalentColl(l, r Collection) bool {
	if len(l) != len(r) {
		return false
	}
	for _, pair := range [2][2]Collection{{l, r}, {r, l}} {
		for _, a := range pair[0] {
			found := false
			for _, b := range pair[1] {
				if equivalent(a, b) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
	}
	return true
}

// twoPrims is the primitives of two operands that must hold one item each; ok is false
// when either is empty (or has no value).
func twoPrims(op string, l, r Collection) (a, b Item, ok bool, err error) {
	a, oka, err := singlePrim(l, op)
	if err != nil {
		return a, b, false, err
	}
	b, okb, err := singlePrim(r, op)
	return a, b, oka && okb, err
}

func order(op string, l, r Collection) (Collection, error) {
	a, b, ok, err := twoPrims(op, l, r)
	if err != nil || !ok {
		return nil, err
	}
	c, known, err := compare(a, b)
	if err != nil || !known {
		return nil, err
	}
	var v bool
	switch op {
	case "<":
		v = c < 0
	case ">":
		v = c > 0
	case "<=":
		v = c <= 0
	default:
		v = c >= 0
	}
	return boolColl((v)), nil
}

// union is |: the items of both without duplicates.
func union(l, r Collection) Collection {
	var out Collection
	for _, c := range [2]Collection{l, r} {
		for _, it := range c {
			if !containsItem(out, it) {
				out = append(out, it)
			}
		}
	}
	return out
}

func containsItem(c Collection, it Item) bool {
	for _, x := range c {
		if e, k := equal(x, it); e && k {
			return true
		}
	}
	return false
}

// member is x in c (and c contains x).
func member(x, c Collection) (Collection, error) {
	switch len(x) {
	case 0:
		return nil, nil
	case 1:
		return boolColl((containsItem(c, x[0]))), nil
	}
	return nil, fmt.Errorf("in: %d items on the left where one is expected", len(x))
}

// concat is &: string concatenation where an empty operand counts as ”.
func concat(l, r Collection) (Collection, error) {
	var out string
	for _, c := range [2]Collection{l, r} {
		p, ok, err := singlePrim(c, "&")
		if err != nil {
			return nil, err
		}
		if ok {
			t, _ := text(p)
			out += t
		}
	}
	return single(stringItem(out)), nil
}

// arith is + and - on numbers, and + on strings (any operand that is not a number is
// taken as a string: '#'+id).
func arith(op string, l, r Collection) (Collection, error) {
	a, b, ok, err := twoPrims(op, l, r)
	if err != nil || !ok {
		return nil, err
	}
	num := func(p Item) bool { return p.kind == kInt || p.kind == kDecimal }
	if op == "+" && !num(a) && !num(b) {
		ta, ok1 := text(a)
		tb, ok2 := text(b)
		if ok1 && ok2 && a.kind != kDate && b.kind != kDate {
			return single(stringItem(ta + tb)), nil
		}
	}
	if a.kind == kInt && b.kind == kInt {
		if op == "-" {
			return single(intItem(a.i - b.i)), nil
		}
		return single(intItem(a.i + b.i)), nil
	}
	x, y, ok := unify(a, b)
	if !ok || x.kind != kDecimal {
		return nil, fmt.Errorf("%s %s %s is not supported", kindName(a), op, kindName(b))
	}
	d := new(big.Rat)
	if op == "-" {
		d.Sub(x.d, y.d)
	} else {
		d.Add(x.d, y.d)
	}
	return single(Item{kind: kDecimal, d: d, s: d.FloatString(decimals(x.s, y.s))}), nil
}

// decimals is the number of decimal places a sum of two decimals is written with.
func decimals(a, b string) int {
	places := func(s string) int {
		for i := range s {
			if s[i] == '.' {
				return len(s) - i - 1
			}
		}
		return 0
	}
	return max(places(a), places(b))
}

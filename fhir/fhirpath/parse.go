package fhirpath

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Compile parses a FHIRPath expression. Anything outside the supported subset is an error
// that names it.
func Compile(expr string) (*Expr, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, fmt.Errorf("fhirpath: %q: %w", expr, err)
	}
	p := &parser{toks: toks}
	root, err := p.expr(0)
	if err == nil && p.peek().kind != tEOF {
		err = p.errorf("unexpected %s", p.peek().describe())
	}
	if err != nil {
		return nil, fmt.Errorf("fhirpath: %q: %w", expr, err)
	}
	return &Expr{src: expr, root: root}, nil
}

// MustCompile is Compile for expressions known to be good; it panics on an error.
func MustCompile(expr string) *Expr {
	e, err := Compile(expr)
	if err != nil {
		panic(err)
	}
	return e
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("at %d: %s", p.peek().pos, fmt.Sprintf(format, args...))
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return fmt.Sprintf("string '%s'", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// Binding powers, loosest first, after the FHIRPath grammar's precedence.
const (
	bpImplies = iota + 1
	bpOr      // or xor
	bpAnd
	bpMember // in contains
	bpEquality
	bpCompare
	bpUnion
	bpType // is as
	bpAdd  // + - &
	bpMul  // * / div mod (unsupported)
	bpUnary
	bpPostfix // . []
)

// infixPower is the binding power of the token as an infix operator (0: it is none).
func infixPower(t token) int {
	switch t.kind {
	case tIdent:
		switch t.text {
		case "implies":
			return bpImplies
		case "or", "xor":
			return bpOr
		case "and":
			return bpAnd
		case "in", "contains":
			return bpMember
		case "is", "as":
			return bpType
		case "div", "mod":
			return bpMul
		}
	case tOp:
		switch t.text {
		case "=", "!=", "~", "!~":
			return bpEquality
		case "<", ">", "<=", ">=":
			return bpCompare
		case "|":
			return bpUnion
		case "+", "-", "&":
			return bpAdd
		case "*", "/":
			return bpMul
		case ".", "[":
			return bpPostfix
		}
	}
	return 0
}

// expr parses an expression whose operators bind tighter than minBP (Pratt parsing).
func (p *parser) expr(minBP int) (node, error) {
	left, err := p.prefix()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		bp := infixPower(t)
		if bp <= minBP {
			return left, nil
		}
		p.next()
		switch {
		case bp == bpMul:
			return nil, fmt.Errorf("at %d: unsupported operator %s", t.pos, t.text)
		case t.text == ".":
			left, err = p.invocation(left)
		case t.text == "[":
			left, err = p.index(left)
		case bp == bpType:
			var typ string
			if typ, err = p.typeName(); err == nil {
				left = typeNode{op: t.text, x: left, typ: typ}
			}
		default:
			var right node
			if right, err = p.expr(bp); err == nil {
				left = binNode{op: t.text, l: left, r: right}
			}
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) prefix() (node, error) {
	t := p.next()
	switch t.kind {
	case tNumber:
		if strings.Contains(t.text, ".") {
			d, _ := new(big.Rat).SetString(t.text)
			return litNode{single(Item{kind: kDecimal, d: d, s: t.text})}, p.noUnit()
		}
		i, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("at %d: integer %s out of range", t.pos, t.text)
		}
		return litNode{single(intItem(i))}, p.noUnit()
	case tString:
		return litNode{single(stringItem(t.text))}, nil
	case tDate:
		return dateLiteral(t)
	case tVar:
		if t.text != "this" && t.text != "index" {
			return nil, fmt.Errorf("at %d: unsupported variable $%s", t.pos, t.text)
		}
		return varNode{"$" + t.text}, nil
	case tConst:
		switch t.text {
		case "resource", "rootResource", "context":
			return varNode{"%" + t.text}, nil
		}
		return nil, fmt.Errorf("at %d: unsupported variable %%%s", t.pos, t.text)
	case tDelimIdent:
		return memberNode{t.text}, nil
	case tIdent:
		if p.peek().text == "(" && p.peek().kind == tOp {
			return p.call(t)
		}
		switch t.text {
		case "true", "false":
			return litNode{boolColl((t.text == "true"))}, nil
		}
		return memberNode{t.text}, nil
	case tOp:
		switch t.text {
		case "(":
			e, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			return e, p.expect(")")
		case "-", "+":
			x, err := p.expr(bpUnary)
			if err != nil || t.text == "+" {
				return x, err
			}
			return negNode{x}, nil
		}
	}
	return nil, fmt.Errorf("at %d: unexpected %s", t.pos, t.describe())
}

// noUnit refuses a quantity literal (4 'mg', 3 days), which no supported expression needs.
func (p *parser) noUnit() error {
	if t := p.peek(); t.kind == tString || t.kind == tIdent && calendarUnits[t.text] {
		return fmt.Errorf("at %d: quantity literals are not supported", t.pos)
	}
	return nil
}

var calendarUnits = map[string]bool{}

func init() {
	for _, u := range strings.Fields("year years month months week weeks day days hour hours minute minutes second seconds millisecond milliseconds") {
		calendarUnits[u] = true
	}
}

func (p *parser) expect(op string) error {
	if t := p.peek(); t.kind != tOp || t.text != op {
		return p.errorf("expected %q, found %s", op, t.describe())
	}
	p.next()
	return nil
}

// invocation parses what follows a dot: a member name or a function call.
func (p *parser) invocation(left node) (node, error) {
	t := p.next()
	switch {
	case t.kind == tDelimIdent:
		return dotNode{left, memberNode{t.text}}, nil
	case t.kind != tIdent:
		return nil, fmt.Errorf("at %d: expected a name after '.', found %s", t.pos, t.describe())
	case p.peek().kind == tOp && p.peek().text == "(":
		f, err := p.call(t)
		return dotNode{left, f}, err
	}
	return dotNode{left, memberNode{t.text}}, nil
}

func (p *parser) index(left node) (node, error) {
	idx, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	return indexNode{left, idx}, p.expect("]")
}

// call parses a function's arguments; name has been read and "(" is next.
func (p *parser) call(name token) (node, error) {
	fn := functions[name.text]
	if fn == nil {
		if why, ok := unsupported[name.text]; ok {
			return nil, fmt.Errorf("at %d: unsupported function %s(): %s", name.pos, name.text, why)
		}
		return nil, fmt.Errorf("at %d: unsupported function %s()", name.pos, name.text)
	}
	p.next() // (
	n := &funcNode{name: name.text, fn: fn}
	for !(p.peek().kind == tOp && p.peek().text == ")") {
		if len(n.args) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		if fn.typeArg {
			typ, err := p.typeName()
			if err != nil {
				return nil, err
			}
			n.typ = typ
			n.args = append(n.args, litNode{})
			continue
		}
		a, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		n.args = append(n.args, a)
	}
	p.next() // )
	if len(n.args) < fn.min || len(n.args) > fn.max {
		return nil, fmt.Errorf("at %d: %s() takes %s, not %d", name.pos, name.text, arity(fn), len(n.args))
	}
	if name.text == "matches" {
		if lit, ok := n.args[0].(litNode); ok && len(lit.c) == 1 && lit.c[0].kind == kString {
			re, err := compileRegexp(lit.c[0].s)
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", name.pos, err)
			}
			n.re = re
		}
	}
	return n, nil
}

func arity(fn *function) string {
	switch {
	case fn.max == 0:
		return "no arguments"
	case fn.min == fn.max:
		return fmt.Sprintf("%d argument(s)", fn.min)
	}
	return fmt.Sprintf("%d to %d arguments", fn.min, fn.max)
}

// typeName reads a type specifier: Coding, FHIR.Coding, System.Boolean, `Coding`.
func (p *parser) typeName() (string, error) {
	t := p.next()
	if t.kind != tIdent && t.kind != tDelimIdent {
		return "", fmt.Errorf("at %d: expected a type name, found %s", t.pos, t.describe())
	}
	name := t.text
	if (name == "FHIR" || name == "System") && p.peek().text == "." {
		p.next()
		q := p.next()
		if q.kind != tIdent && q.kind != tDelimIdent {
			return "", fmt.Errorf("at %d: expected a type name after %s., found %s", q.pos, name, q.describe())
		}
		name += "." + q.text
	}
	if !knownType(name) {
		return "", fmt.Errorf("at %d: unknown type %s", t.pos, name)
	}
	return name, nil
}

// dateLiteral reads @2020-01-01, @2020-01-01T10:00:00+01:00 and @T10:00.
func dateLiteral(t token) (node, error) {
	if s, ok := strings.CutPrefix(t.text, "T"); ok {
		if d, ok := parseTime(s); ok {
			return litNode{single(Item{kind: kTime, dt: d, s: d.text})}, nil
		}
	} else if d, ok := parseDateTime(t.text); ok {
		return litNode{single(Item{kind: kDate, dt: d, s: t.text})}, nil
	}
	return nil, fmt.Errorf("at %d: bad date/time literal @%s", t.pos, t.text)
}

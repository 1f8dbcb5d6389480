package fhirpath

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Expr is a compiled FHIRPath expression. It is safe for concurrent use.
type Expr struct {
	src  string
	root node
}

// String is the expression as it was compiled.
func (e *Expr) String() string { return e.src }

// Option adjusts one evaluation.
type Option func(*env)

// WithClock sets the clock today() and now() read (default time.Now).
func WithClock(now func() time.Time) Option { return func(e *env) { e.now = now } }

// WithTrace receives what trace() passes through (by default it goes nowhere).
func WithTrace(f func(name string, c Collection)) Option { return func(e *env) { e.trace = f } }

// EmptyResult sets what Bool answers for an empty result: true by default (the invariant
// does not apply), false to judge as the HL7 Java validator does.
func EmptyResult(holds bool) Option { return func(e *env) { e.empty = holds } }

// env is what one evaluation knows besides the focus: the variables and the options.
type env struct {
	context, resource, rootResource *etree.Element
	now                             func() time.Time
	trace                           func(string, Collection)
	empty                           bool // Bool's answer for an empty result
}

// evaluation is what one evaluation starts with, allocated at once: its env, the outermost
// scope and the context as a collection.
type evaluation struct {
	env   env
	scope scope
	ctx   [1]Item
}

// scope is the evaluation state an expression sees: $this and $index.
type scope struct {
	env   *env
	this  Collection
	index int // -1 outside an iterating function
}

// Eval evaluates the expression with el as its context: a resource, or an element inside
// one for an element's invariant. %resource is the resource that contains el.
func (e *Expr) Eval(el *etree.Element, opts ...Option) (Collection, error) {
	c, _, err := e.eval(el, opts)
	return c, err
}

func (e *Expr) eval(el *etree.Element, opts []Option) (Collection, *env, error) {
	if el == nil {
		return nil, nil, fmt.Errorf("fhirpath: no element to evaluate %q on", e.src)
	}
	ev := &evaluation{env: env{context: el, now: time.Now, empty: true}}
	v := &ev.env
	for _, o := range opts {
		o(v)
	}
	v.resource = resourceOf(el)
	v.rootResource = rootResourceOf(v.resource)
	ev.ctx[0] = child(el, "")
	if isResource(el) {
		ev.ctx[0] = Item{kind: kNode, el: el, typ: el.Tag}
	}
	ctx := Collection(ev.ctx[:])
	ev.scope = scope{env: v, this: ctx, index: -1}
	c, err := e.root.eval(&ev.scope, ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("fhirpath: %s: %w", e.src, err)
	}
	return c, v, nil
}

// Bool evaluates an invariant: true when it holds. As FHIR's invariants are read, an empty
// result holds (the rule does not apply; see EmptyResult); a single boolean is the verdict;
// any other single item counts as true. More items, or an evaluation error, are an error.
func (e *Expr) Bool(el *etree.Element, opts ...Option) (bool, error) {
	c, v, err := e.eval(el, opts)
	if err != nil {
		return false, err
	}
	b, known, err := truth(c)
	if err != nil {
		return false, fmt.Errorf("fhirpath: %s: %w", e.src, err)
	}
	if !known {
		return v.empty, nil
	}
	return b, nil
}

// node is a piece of the syntax tree; eval gives its value for the focus (the input of a
// path step or function).
type node interface {
	eval(s *scope, focus Collection) (Collection, error)
}

type litNode struct{ c Collection }

func (n litNode) eval(*scope, Collection) (Collection, error) { return n.c, nil }

// memberNode is a path step by name; a capitalised name is a resource type and keeps the
// focus items of that type (Patient.name).
type memberNode struct{ name string }

func (n memberNode) eval(_ *scope, focus Collection) (Collection, error) {
	var out Collection
	typeFilter := n.name[0] >= 'A' && n.name[0] <= 'Z'
	for _, it := range focus {
		if typeFilter {
			if isA(it.typ, n.name) {
				out = append(out, it)
			}
			continue
		}
		out = navigate(it, n.name, out)
	}
	return out, nil
}

// dotNode evaluates right on what left gives.
type dotNode struct{ left, right node }

func (n dotNode) eval(s *scope, focus Collection) (Collection, error) {
	c, err := n.left.eval(s, focus)
	if err != nil {
		return nil, err
	}
	return n.right.eval(s, c)
}

type varNode struct{ name string }

func (n varNode) eval(s *scope, _ Collection) (Collection, error) {
	switch n.name {
	case "$this":
		return s.this, nil
	case "$index":
		if s.index < 0 {
			return nil, nil
		}
		return single(intItem(int64(s.index))), nil
	case "%context":
		return single(child(s.env.context, "")), nil
	}
	el := s.env.resource
	if n.name == "%rootResource" {
		el = s.env.rootResource
	}
	if el == nil {
		return nil, nil
	}
	return single(Item{kind: kNode, el: el, typ: el.Tag}), nil
}

type negNode struct{ x node }

func (n negNode) eval(s *scope, focus Collection) (Collection, error) {
	c, err := n.x.eval(s, focus)
	if err != nil {
		return nil, err
	}
	p, ok, err := singlePrim(c, "unary -")
	if err != nil || !ok {
		return nil, err
	}
	switch p.kind {
	case kInt:
		return single(intItem(-p.i)), nil
	case kDecimal:
		d := new(big.Rat).Neg(p.d)
		return single(Item{kind: kDecimal, d: d, s: d.FloatString(decimals(p.s, ""))}), nil
	}
	return nil, fmt.Errorf("unary - on %s", kindName(p))
}

type indexNode struct{ x, idx node }

func (n indexNode) eval(s *scope, focus Collection) (Collection, error) {
	c, err := n.x.eval(s, focus)
	if err != nil {
		return nil, err
	}
	i, ok, err := intArg(s, n.idx, focus, "index")
	if err != nil || !ok {
		return nil, err
	}
	if i < 0 || i >= int64(len(c)) {
		return nil, nil
	}
	return single(c[i]), nil
}

// intArg evaluates an index or argument that must be one integer (ok is false when empty).
func intArg(s *scope, n node, focus Collection, what string) (int64, bool, error) {
	c, err := n.eval(s, focus)
	if err != nil {
		return 0, false, err
	}
	p, ok, err := singlePrim(c, what)
	if err != nil || !ok {
		return 0, false, err
	}
	if p.kind != kInt {
		return 0, false, fmt.Errorf("%s is %s, not an integer", what, kindName(p))
	}
	return p.i, true, nil
}

// typeNode is the operator form x is T / x as T.
type typeNode struct {
	op  string
	x   node
	typ string
}

func (n typeNode) eval(s *scope, focus Collection) (Collection, error) {
	c, err := n.x.eval(s, focus)
	if err != nil {
		return nil, err
	}
	if n.op == "as" {
		return ofType(c, n.typ), nil
	}
	return isType(c, n.typ)
}

// ofType keeps the items of type typ.
func ofType(c Collection, typ string) Collection {
	var out Collection
	for _, it := range c {
		if hasType(it, typ) {
			out = append(out, it)
		}
	}
	return out
}

func isType(c Collection, typ string) (Collection, error) {
	switch len(c) {
	case 0:
		return nil, nil
	case 1:
		return boolColl((hasType(c[0], typ))), nil
	}
	return nil, fmt.Errorf("is %s: %d items where one is expected", typ, len(c))
}

// hasType tests an item against a type name (Coding, FHIR.Coding, System.String, boolean).
func hasType(it Item, typ string) bool {
	if sys, ok := strings.CutPrefix(typ, "System."); ok {
		return it.kind != kNode && it.typ == "" && it.kind == systemTypes[sys]
	}
	typ = strings.TrimPrefix(typ, "FHIR.")
	if it.kind == kNode || it.typ != "" {
		return isA(it.typ, typ)
	}
	// a System value also passes for the FHIR primitive of its kind
	switch it.kind {
	case kString:
		return typ == "string"
	case kBool:
		return typ == "boolean"
	case kInt:
		return typ == "integer"
	case kDecimal:
		return typ == "decimal"
	case kDate:
		return typ == "date" && it.dt.prec <= precDay || typ == "dateTime"
	case kTime:
		return typ == "time"
	}
	return false
}

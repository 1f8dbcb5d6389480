package fhirpath

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// funcNode is a function call; in is the focus it is invoked on.
type funcNode struct {
	name string
	args []node
	fn   *function
	typ  string         // the type argument of ofType, is, as
	re   *regexp.Regexp // matches() with a literal pattern, compiled once
}

func (n *funcNode) eval(s *scope, in Collection) (Collection, error) {
	c, err := n.fn.call(s, in, n)
	if err != nil {
		return nil, fmt.Errorf("%s(): %w", n.name, err)
	}
	return c, nil
}

// function describes one FHIRPath function: how many arguments it takes and whether the
// one argument is a type name.
type function struct {
	min, max int
	typeArg  bool
	call     func(s *scope, in Collection, n *funcNode) (Collection, error)
}

var functions map[string]*function

func init() {
	functions = map[string]*function{
		"empty": {call: func(_ *scope, in Collection, _ *funcNode) (Collection, error) {
			return boolColl((len(in) == 0)), nil
		}},
		"exists": {max: 1, call: fnExists},
		"count": {call: func(_ *scope, in Collection, _ *funcNode) (Collection, error) {
			return single(intItem(int64(len(in)))), nil
		}},
		"not":      {call: fnNot},
		"first":    {call: func(_ *scope, in Collection, _ *funcNode) (Collection, error) { return in[:min(len(in), 1)], nil }},
		"last":     {call: func(_ *scope, in Collection, _ *funcNode) (Collection, error) { return in[max(len(in)-1, 0):], nil }},
		"distinct": {call: func(_ *scope, in Collection, _ *funcNode) (Collection, error) { return union(in, nil), nil }},
		"isDistinct": {call: func(_ *scope, in Collection, _ *funcNode) (Collection, error) {
			return boolColl((len(union(in, nil)) == len(in))), nil
		}},
		"hasValue":    {call: fnHasValue},
		"children":    {call: eachItem(children)},
		"descendants": {call: eachItem(descendants)},
		"where":       {min: 1, max: 1, call: fnWhere},
		"select":      {min: 1, max: 1, call: fnSelect},
		"all":         {min: 1, max: 1, call: fnAll},
		"iif":         {min: 2, max: 3, call: fnIif},
		"ofType":      {min: 1, max: 1, typeArg: true, call: func(_ *scope, in Collection, n *funcNode) (Collection, error) { return ofType(in, n.typ), nil }},
		"as":          {min: 1, max: 1, typeArg: true, call: func(_ *scope, in Collection, n *funcNode) (Collection, error) { return ofType(in, n.typ), nil }},
		"is":          {min: 1, max: 1, typeArg: true, call: func(_ *scope, in Collection, n *funcNode) (Collection, error) { return isType(in, n.typ) }},
		"extension":   {min: 1, max: 1, call: fnExtension},
		"resolve":     {call: fnResolve},
		"toString":    {call: fnToString},
		"toInteger":   {call: fnToInteger},
		"length":      {call: stringFn(func(s string, _ []string) Item { return intItem(int64(utf8.RuneCountInString(s))) })},
		"startsWith":  {min: 1, max: 1, call: stringFn(func(s string, a []string) Item { return boolItem(strings.HasPrefix(s, a[0])) })},
		"endsWith":    {min: 1, max: 1, call: stringFn(func(s string, a []string) Item { return boolItem(strings.HasSuffix(s, a[0])) })},
		"contains":    {min: 1, max: 1, call: stringFn(func(s string, a []string) Item { return boolItem(strings.Contains(s, a[0])) })},
		"indexOf":     {min: 1, max: 1, call: stringFn(func(s string, a []string) Item { return intItem(int64(runeIndex(s, a[0]))) })},
		"matches":     {min: 1, max: 1, call: fnMatches},
		"substring":   {min: 1, max: 2, call: fnSubstring},
		"trace":       {min: 1, max: 2, call: fnTrace},
		"intersect":   {min: 1, max: 1, call: fnIntersect},
		"today": {call: func(s *scope, _ Collection, _ *funcNode) (Collection, error) {
			d := dateOf(s.env.now())
			return single(Item{kind: kDate, dt: d, s: d.text}), nil
		}},
		"now": {call: func(s *scope, _ Collection, _ *funcNode) (Collection, error) {
			d := dateTimeOf(s.env.now())
			return single(Item{kind: kDate, dt: d, s: d.text}), nil
		}},
	}
}

// unsupported names functions of FHIRPath (and FHIR's additions) that this package leaves
// out on purpose, with the reason its compile error gives.
var unsupported = map[string]string{
	"memberOf":          "it needs a terminology server",
	"subsumes":          "it needs a terminology server",
	"subsumedBy":        "it needs a terminology server",
	"conformsTo":        "it needs the StructureDefinitions at run time",
	"htmlChecks":        "narrative XHTML is not inspected",
	"htmlChecks2":       "narrative XHTML is not inspected",
	"elementDefinition": "it needs the StructureDefinitions at run time",
	"slice":             "it needs the StructureDefinitions at run time",
	"checkModifiers":    "it needs the StructureDefinitions at run time",
}

// lambda evaluates an argument for each item of in with $this and $index set, the item
// being the focus.
func lambda(s *scope, in Collection, arg node, each func(i int, r Collection) error) error {
	for i, it := range in {
		one := single(it)
		inner := &scope{env: s.env, this: one, index: i}
		r, err := arg.eval(inner, one)
		if err != nil {
			return err
		}
		if err := each(i, r); err != nil {
			return err
		}
	}
	return nil
}

// criterion is lambda for a boolean argument: it reports each item's known truth.
func criterion(s *scope, in Collection, arg node, each func(i int, b, known bool)) error {
	return lambda(s, in, arg, func(i int, r Collection) error {
		b, known, err := truth(r)
		each(i, b, known)
		return err
	})
}

func fnExists(s *scope, in Collection, n *funcNode) (Collection, error) {
	if len(n.args) == 0 {
		return boolColl((len(in) > 0)), nil
	}
	found := false
	err := criterion(s, in, n.args[0], func(_ int, b, known bool) { found = found || b && known })
	return boolColl((found)), err
}

func fnWhere(s *scope, in Collection, n *funcNode) (Collection, error) {
	var out Collection
	err := criterion(s, in, n.args[0], func(i int, b, known bool) {
		if b && known {
			out = append(out, in[i])
		}
	})
	return out, err
}

func fnSelect(s *scope, in Collection, n *funcNode) (Collection, error) {
	var out Collection
	err := lambda(s, in, n.args[0], func(_ int, r Collection) error {
		out = append(out, r...)
		return nil
	})
	return out, err
}

func fnAll(s *scope, in Collection, n *funcNode) (Collection, error) {
	all := true
	err := criterion(s, in, n.args[0], func(_ int, b, known bool) { all = all && b && known })
	return boolColl((all)), err
}

func fnNot(_ *scope, in Collection, _ *funcNode) (Collection, error) {
	b, known, err := truth(in)
	if err != nil || !known {
		return nil, err
	}
	return boolColl((!b)), nil
}

func fnHasValue(_ *scope, in Collection, _ *funcNode) (Collection, error) {
	ok := false
	if len(in) == 1 {
		_, ok = prim(in[0])
	}
	return boolColl((ok)), nil
}

// fnIif evaluates its criterion and the chosen branch on the input collection, with $this
// the input's single item where it has one.
func fnIif(s *scope, in Collection, n *funcNode) (Collection, error) {
	inner := &scope{env: s.env, this: s.this, index: s.index}
	if len(in) == 1 {
		inner.this = in
	}
	c, err := n.args[0].eval(inner, in)
	if err != nil {
		return nil, err
	}
	b, known, err := truth(c)
	if err != nil {
		return nil, err
	}
	switch {
	case b && known:
		return n.args[1].eval(inner, in)
	case len(n.args) == 3:
		return n.args[2].eval(inner, in)
	}
	return nil, nil
}

func eachItem(f func(Item, Collection) Collection) func(*scope, Collection, *funcNode) (Collection, error) {
	return func(_ *scope, in Collection, _ *funcNode) (Collection, error) {
		var out Collection
		for _, it := range in {
			out = f(it, out)
		}
		return out, nil
	}
}

// arg evaluates a value argument on the function's input and returns it as one string.
func (s *scope) stringArg(in Collection, arg node) (string, bool, error) {
	c, err := arg.eval(s, in)
	if err != nil {
		return "", false, err
	}
	p, ok, err := singlePrim(c, "argument")
	if err != nil || !ok {
		return "", false, err
	}
	t, ok := text(p)
	if !ok || p.kind != kString && p.kind != kText {
		return "", false, fmt.Errorf("argument is %s, not a string", kindName(p))
	}
	return t, true, nil
}

// stringFn makes a function of a single string input and string arguments; it is empty
// when the input or an argument is.
// runeIndex is the position, in characters, of sub's first occurrence in s, or -1 (indexOf()).
func runeIndex(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		return -1
	}
	return utf8.RuneCountInString(s[:i])
}

func stringFn(f func(s string, args []string) Item) func(*scope, Collection, *funcNode) (Collection, error) {
	return func(s *scope, in Collection, n *funcNode) (Collection, error) {
		str, ok, err := inputString(in)
		if err != nil || !ok {
			return nil, err
		}
		args := make([]string, len(n.args))
		for i, a := range n.args {
			v, ok, err := s.stringArg(in, a)
			if err != nil || !ok {
				return nil, err
			}
			args[i] = v
		}
		return single(f(str, args)), nil
	}
}

// inputString is the single string a string function works on.
func inputString(in Collection) (string, bool, error) {
	p, ok, err := singlePrim(in, "input")
	if err != nil || !ok {
		return "", false, err
	}
	if p.kind != kString && p.kind != kText {
		return "", false, fmt.Errorf("input is %s, not a string", kindName(p))
	}
	return p.s, true, nil
}

func fnMatches(s *scope, in Collection, n *funcNode) (Collection, error) {
	str, ok, err := inputString(in)
	if err != nil || !ok {
		return nil, err
	}
	re := n.re
	if re == nil {
		pat, ok, err := s.stringArg(in, n.args[0])
		if err != nil || !ok {
			return nil, err
		}
		if re, err = compileRegexp(pat); err != nil {
			return nil, err
		}
	}
	return boolColl((re.MatchString(str))), nil
}

// compileRegexp compiles a matches() pattern: unanchored, with . matching newlines.
func compileRegexp(pat string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("(?s)" + pat)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", pat, err)
	}
	return re, nil
}

func fnSubstring(s *scope, in Collection, n *funcNode) (Collection, error) {
	str, ok, err := inputString(in)
	if err != nil || !ok {
		return nil, err
	}
	var bounds []int64
	for _, a := range n.args {
		i, ok, err := intArg(s, a, in, "argument")
		if err != nil || !ok {
			return nil, err
		}
		bounds = append(bounds, i)
	}
	runes := []rune(str)
	start := bounds[0]
	if start < 0 || start >= int64(len(runes)) {
		return nil, nil
	}
	end := int64(len(runes))
	if len(bounds) == 2 {
		end = min(end, start+max(bounds[1], 0))
	}
	return single(stringItem(string(runes[start:end]))), nil
}

func fnToString(_ *scope, in Collection, _ *funcNode) (Collection, error) {
	p, ok, err := singlePrim(in, "input")
	if err != nil || !ok {
		return nil, err
	}
	t, ok := text(p)
	if !ok {
		return nil, nil
	}
	return single(stringItem(t)), nil
}

func fnToInteger(_ *scope, in Collection, _ *funcNode) (Collection, error) {
	p, ok, err := singlePrim(in, "input")
	if err != nil || !ok {
		return nil, err
	}
	switch p.kind {
	case kInt:
		return single(p), nil
	case kBool:
		if p.b {
			return single(intItem(1)), nil
		}
		return single(intItem(0)), nil
	case kString, kText:
		if i, err := strconv.ParseInt(p.s, 10, 32); err == nil {
			return single(intItem(i)), nil
		}
	}
	return nil, nil
}

// fnExtension is extension(url): the extensions of the input items with that url.
func fnExtension(s *scope, in Collection, n *funcNode) (Collection, error) {
	url, ok, err := s.stringArg(in, n.args[0])
	if err != nil || !ok {
		return nil, err
	}
	var out Collection
	for _, it := range in {
		n := len(out)
		out = navigate(it, "extension", out)
		kept := out[:n]
		for _, e := range out[n:] {
			if e.el.SelectAttrValue("url", "") == url {
				kept = append(kept, e)
			}
		}
		out = kept
	}
	return out, nil
}

// fnResolve finds the resources the input's references point to inside the tree (see
// resolveRef); the others are left out.
func fnResolve(s *scope, in Collection, _ *funcNode) (Collection, error) {
	var out Collection
	for _, it := range in {
		from := s.env.context
		if it.kind == kNode {
			from = it.el
			if _, ok := prim(it); !ok { // a Reference: its reference element
				ref := navigate(it, "reference", nil)
				if len(ref) != 1 {
					continue
				}
				it = ref[0]
			}
		}
		p, ok := prim(it)
		ref, isText := text(p)
		if !ok || !isText {
			continue
		}
		if res := resolveRef(from, ref); res != nil {
			out = append(out, Item{kind: kNode, el: res, typ: res.Tag})
		}
	}
	return out, nil
}

func fnTrace(s *scope, in Collection, n *funcNode) (Collection, error) {
	name, _, err := s.stringArg(in, n.args[0])
	if err != nil || s.env.trace == nil {
		return in, err
	}
	shown := in
	if len(n.args) == 2 {
		shown = nil
		if err := lambda(s, in, n.args[1], func(_ int, r Collection) error {
			shown = append(shown, r...)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	s.env.trace(name, shown)
	return in, nil
}

// fnIntersect keeps the items of the input that are in the argument, without duplicates.
func fnIntersect(s *scope, in Collection, n *funcNode) (Collection, error) {
	other, err := n.args[0].eval(s, in)
	if err != nil {
		return nil, err
	}
	var out Collection
	for _, it := range in {
		if containsItem(other, it) && !containsItem(out, it) {
			out = append(out, it)
		}
	}
	return out, nil
}

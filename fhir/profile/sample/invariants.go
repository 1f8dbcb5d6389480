package sample

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// invariants makes el meet the invariants of its definitions where adding one optional child
// element the invariant names does: first one with the value the invariant compares it with
// (clinicalStatus.coding.code='active'), then any it names.
func (g *gen) invariants(el *etree.Element, ns []*node, key string) {
	iv := g.opts.Invariants
	if iv == nil {
		return
	}
	holds := func(expr string) bool {
		ok, err := iv.Check(expr, el)
		return err == nil && ok
	}
	for _, n := range ns {
		if n.def == nil {
			continue
		}
		for _, c := range n.def.Constraints {
			if c.Severity != "error" || holds(c.Expression) {
				continue
			}
			for _, r := range repairs(c.Expression, childGroups(ns)) {
				if len(children(el, r.group.name)) > 0 {
					continue
				}
				if _, hi := bounds(r.group.nodes); hi == 0 {
					continue
				}
				var k *etree.Element
				if r.path == nil {
					k = g.add(el, key, r.group.name, r.group.nodes, nil)
				} else {
					k = el.CreateElement(r.group.name)
					setAt(k, r.path, r.value)
					g.fill(k, r.group.nodes, g.typeOf(k.Tag, r.group.name, r.group.nodes, key), key)
				}
				if holds(c.Expression) {
					break
				}
				el.RemoveChild(k)
			}
		}
	}
}

// repair is a child element to add for an invariant: of the group, with value at path below it
// (no path: as generated).
type repair struct {
	group group
	path  []string
	value string
}

// comparison is a path compared with a string literal in a FHIRPath expression.
var comparison = regexp.MustCompile(`([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)\s*=\s*'([^']*)'`)

// repairs are the child elements (of the groups gs) an invariant's expression names: those it
// compares with a literal, with that value, then every one it names.
func repairs(expr string, gs []group) []repair {
	var rs []repair
	for _, m := range comparison.FindAllStringSubmatchIndex(expr, -1) {
		if m[0] > 0 && (expr[m[0]-1] == '.' || expr[m[0]-1] == ')' || expr[m[0]-1] == '%') {
			continue // a path from something other than the element itself
		}
		segs := strings.Split(expr[m[2]:m[3]], ".")
		i := slices.IndexFunc(gs, func(g group) bool { return g.name == segs[0] })
		if i >= 0 && len(segs) > 1 {
			rs = append(rs, repair{gs[i], segs[1:], expr[m[4]:m[5]]})
		}
	}
	for _, g := range gs {
		if mentions(expr, strings.TrimSuffix(g.name, "[x]")) {
			rs = append(rs, repair{group: g})
		}
	}
	return rs
}

// mentions reports whether the FHIRPath expression names the element name (as a path step).
func mentions(expr, name string) bool {
	for i := 0; ; {
		j := strings.Index(expr[i:], name)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || !isIdent(expr[j-1])
		after := j+len(name) == len(expr) || !isIdent(expr[j+len(name)])
		if before && after {
			return true
		}
		i = j + len(name)
	}
}

func isIdent(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// ownMatch is an invariant that matches an element's own value with a regular expression:
// matches('…') or $this.matches('…').
var ownMatch = regexp.MustCompile(`^\s*(?:\$this\.)?matches\(\s*'((?:[^'\\]|\\.)*)'\s*\)\s*$`)

// patterned is a value for a primitive element that the invariants of its definitions match
// with a regular expression (an IK is nine digits: matches('^[0-9]{9}$')), "" when there is no
// such invariant or the expression is beyond the simple ones matching understands.
func patterned(ns []*node) string {
	for _, n := range ns {
		if n.def == nil {
			continue
		}
		for _, c := range n.def.Constraints {
			m := ownMatch.FindStringSubmatch(c.Expression)
			if m == nil {
				continue
			}
			expr := strings.NewReplacer(`\\`, `\`, `\'`, `'`).Replace(m[1]) // FHIRPath string escapes
			re, err := regexp.Compile(expr)
			if err != nil {
				continue
			}
			p := &reParser{src: expr}
			if v := p.alternatives(); p.ok && re.MatchString(v) {
				return v
			}
		}
	}
	return ""
}

// reParser writes the shortest string of a simple regular expression: literals, escapes, \d,
// character classes (their first character), groups, alternatives (the first) and quantifiers
// (their minimum, at least the one of + and {n}). ok turns false on anything else.
type reParser struct {
	src string
	i   int
	ok  bool
}

func (p *reParser) alternatives() string {
	p.ok = true
	s := p.sequence()
	for p.ok && p.i < len(p.src) && p.src[p.i] == '|' {
		p.i++
		p.sequence() // later alternatives are parsed and left out
	}
	return s
}

func (p *reParser) sequence() string {
	var b strings.Builder
	for p.ok && p.i < len(p.src) && p.src[p.i] != '|' && p.src[p.i] != ')' {
		atom := p.atom()
		b.WriteString(strings.Repeat(atom, p.quantifier()))
	}
	return b.String()
}

func (p *reParser) atom() string {
	c := p.src[p.i]
	p.i++
	switch c {
	case '^', '$':
		return ""
	case '.':
		return "a"
	case '\\':
		if p.i >= len(p.src) {
			p.ok = false
			return ""
		}
		e := p.src[p.i]
		p.i++
		if e == 'd' {
			return "1"
		}
		if strings.IndexByte(`.\+*?()[]{}|^$-/`, e) >= 0 {
			return string(e)
		}
		p.ok = false
		return ""
	case '(':
		s := p.alternatives()
		if p.i >= len(p.src) || p.src[p.i] != ')' {
			p.ok = false
			return ""
		}
		p.i++
		return s
	case '[':
		end := strings.IndexByte(p.src[p.i:], ']')
		if end <= 0 || p.src[p.i] == '^' || p.src[p.i] == '\\' {
			p.ok = false
			return ""
		}
		first := p.src[p.i]
		p.i += end + 1
		return string(first)
	case '*', '+', '?', '{', ')', '|':
		p.ok = false
		return ""
	}
	return string(c)
}

// quantifier reads the quantifier after an atom and returns its minimum count.
func (p *reParser) quantifier() int {
	if p.i >= len(p.src) {
		return 1
	}
	switch p.src[p.i] {
	case '?', '*':
		p.i++
		return 0
	case '+':
		p.i++
		return 1
	case '{':
		end := strings.IndexByte(p.src[p.i:], '}')
		if end < 0 {
			p.ok = false
			return 0
		}
		spec := p.src[p.i+1 : p.i+end]
		p.i += end + 1
		lo, _, _ := strings.Cut(spec, ",")
		n, err := strconv.Atoi(lo)
		if err != nil {
			p.ok = false
		}
		return n
	}
	return 1
}

package sample

import (
	"regexp"
	"strconv"
	"strings"
)

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

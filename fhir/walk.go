package fhir

import (
	"strings"
	"unsafe"

	"github.com/beevik/etree"
)

// Walker is told of a document's elements by Walk. The names and values it is told are read
// from the document without a copy: one it keeps for longer than the document stays as it is
// it clones.
type Walker interface {
	// Start is an element's start tag: its depth (the root's is 0), its local name and its
	// value attribute (Value of the tree's element); it says what to do with what follows.
	Start(depth int, name, value string) Skip
	// End is an element's end, after its children's (right after Start for a closed tag).
	End(depth int)
}

// Skip is what Walk does after an element's start.
type Skip int

const (
	Descend      Skip = iota // tell of the element's children
	SkipChildren             // pass over them: the element's End follows
	SkipRest                 // pass over the element and the rest of its parent: the parent's End follows, not the element's
)

// Walk tells w of the elements of doc — a document as Document writes it, or a resource in
// Marshal's form — in document order, as they are in the tree Unmarshal builds, reading straight
// from the bytes in one pass without building anything. It reads what red writes: ok is false
// for anything else (comments, processing instructions, CDATA, values it does not decode, tags
// that do not match, a '>' in a value), and what w was told then is to be discarded; the caller
// parses doc instead. What it passes over it checks no more than it needs to find its end: a
// document the tree cannot be built of may be walked.
func Walk(doc []byte, w Walker) (ok bool) {
	// doc is read, never kept, and not changed while it is read: no copy of it is needed
	u := unmarshaler{s: strings.TrimPrefix(unsafe.String(unsafe.SliceData(doc), len(doc)), declaration)}
	if !strings.HasPrefix(u.s, "<") {
		return false
	}
	var stack [32]string
	open := stack[:0] // the names of the open elements, outermost first
	var keys []string // a start tag's value attributes
	for {
		lt := strings.IndexByte(u.s[u.p:], '<')
		if lt < 0 {
			return false // an element never closed
		}
		u.p += lt + 1
		if u.p < len(u.s) && u.s[u.p] == '/' {
			u.p++
			name, ok := u.name()
			if !ok || len(open) == 0 || name != open[len(open)-1] || !strings.HasPrefix(u.s[u.p:], ">") {
				return false
			}
			u.p++
			open = open[:len(open)-1]
			w.End(len(open))
			if len(open) == 0 {
				return strings.TrimSpace(u.s[u.p:]) == ""
			}
			continue
		}
		name, ok := u.name()
		if !ok || len(open) >= maxUnmarshalDepth {
			return false
		}
		value := ""
		keys = keys[:0]
		for u.p < len(u.s) && u.s[u.p] == ' ' {
			key, raw, ok := u.attr()
			if !ok {
				return false
			}
			if _, local := splitName(key); local == "value" {
				for _, k := range keys {
					if k == key {
						return false // etree keeps the last value, at the first one's place
					}
				}
				if keys = append(keys, key); len(keys) == 1 {
					if value, ok = unescape(raw); !ok {
						return false
					}
				}
			}
		}
		closed := strings.HasPrefix(u.s[u.p:], "/>")
		switch {
		case closed:
			u.p += 2
		case strings.HasPrefix(u.s[u.p:], ">"):
			u.p++
		default:
			return false
		}
		_, local := splitName(name)
		switch w.Start(len(open), local, value) {
		case SkipChildren:
			if !closed && !u.pass(1) {
				return false
			}
			closed = true
		case SkipRest:
			if len(open) == 0 {
				return false
			}
			levels := 1 // the parent's
			if !closed {
				levels++
			}
			if !u.pass(levels) {
				return false
			}
			open = open[:len(open)-1]
			w.End(len(open))
			if len(open) == 0 {
				return strings.TrimSpace(u.s[u.p:]) == ""
			}
			continue
		}
		if !closed {
			open = append(open, name)
			continue
		}
		w.End(len(open))
		if len(open) == 0 {
			return strings.TrimSpace(u.s[u.p:]) == ""
		}
	}
}

// pass passes over the rest of the elements open levels up, up to and including the end tag
// of the outermost.
func (u *unmarshaler) pass(levels int) bool {
	for levels > 0 {
		lt := strings.IndexByte(u.s[u.p:], '<')
		if lt < 0 {
			return false
		}
		u.p += lt + 1
		gt := strings.IndexByte(u.s[u.p:], '>')
		if gt < 0 {
			return false
		}
		tag := u.s[u.p : u.p+gt]
		u.p += gt + 1
		switch {
		case tag == "" || tag[0] == '!' || tag[0] == '?' || strings.Count(tag, `"`)%2 != 0:
			return false // a comment, an instruction, CDATA, a '>' in a value
		case tag[0] == '/':
			levels--
		case !strings.HasSuffix(tag, "/"):
			levels++
		}
	}
	return true
}

// WalkTree tells w of e and the elements below it, as Walk tells of their document.
func WalkTree(e *etree.Element, w Walker) { walkTree(e, 0, w) }

// walkTree tells w of e at depth; false when w skips the rest of e's parent.
func walkTree(e *etree.Element, depth int, w Walker) bool {
	switch w.Start(depth, e.Tag, Value(e)) {
	case SkipRest:
		return false
	case Descend:
		for _, c := range e.ChildElements() {
			if !walkTree(c, depth+1, w) {
				break
			}
		}
	}
	w.End(depth)
	return true
}

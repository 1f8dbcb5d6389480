// Package kbv holds the hand-written rules for resources "as if entered by hand" that the KBV
// profiles cannot state, or that the profile tables of fhir/profile cannot check yet: identifier
// numbers (format and check digit of KVNR, LANR, BSNR, IK, PZN, …), plausible dates and values,
// consistency between elements, the FHIR core rules the tables leave out, and RED's own needs (an
// id to store under). The profiles themselves are checked by fhir/kbv/validate, which runs these
// rules after them.
//
// Findings come in three kinds. Errors are rules: RED's needs, FHIR core, and profile rules the
// tables do not cover yet (each marked "until the profile tables cover …"). Plausibility findings
// (Warnf: a date in the future, a practice site without phone number) are warnings, errors in
// strict mode. Identifier numbers (Number) are plausibility too, except in e-prescriptions and KBV
// forms (meta.profile KBV_PR_ERP_* or KBV_PR_FOR_*), where a wrong number is always an error.
package kbv

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// rules checks one resource type; registered in byType by each type's file.
type rules func(c *Cursor)

var byType = map[string]rules{}

// register adds the rules of a resource type (called from init in each type's file).
func register(typ string, r rules) {
	if _, dup := byType[typ]; dup {
		panic("kbv: rules for " + typ + " registered twice")
	}
	byType[typ] = r
}

// Known reports whether there are rules for typ.
func Known(typ string) bool {
	_, ok := byType[typ]
	return ok
}

// Mode is how plausibility findings count.
type Mode uint8

const (
	// ModeProfile (the default): the profiles decide what is refused; plausibility findings are
	// warnings that come back with the successful answer.
	ModeProfile Mode = iota
	// ModeStrict: plausibility findings are errors too.
	ModeStrict
)

// ParseMode reads a mode as the --validation flag and the tenant setting write it.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "profile":
		return ModeProfile, nil
	case "strict":
		return ModeStrict, nil
	}
	return ModeProfile, fmt.Errorf("validation mode %q: use profile or strict", s)
}

func (m Mode) String() string {
	if m == ModeStrict {
		return "strict"
	}
	return "profile"
}

// Options of a check.
type Options struct {
	// Now is the clock for the plausibility of dates.
	Now time.Time
	// Mode says whether plausibility findings are warnings or errors.
	Mode Mode
	// Profile is, for a resource whose meta.profile names none, the profile fhir/kbv/validate
	// chose for it: its rules apply as if meta.profile named it. Generic applies only the rules
	// every resource of its type meets; "" (as Check) the rules of the type's usual AWS profile.
	Profile string
	// Profiled says that fhir/profile checked the resource against its profile with the tables:
	// the rules of that profile the tables check are then left to them.
	Profiled bool
}

// Generic is Options.Profile for a resource without meta.profile and no obvious profile.
const Generic = "generic"

// Check validates res with the hand-written rules in the default mode, reporting every issue
// with a location under at (for example "Bundle.entry[3].resource"). now is the clock for the
// plausibility of dates.
func Check(res *etree.Element, at string, now time.Time) fhir.Issues {
	return CheckWith(res, at, Options{Now: now})
}

// CheckWith validates res with the hand-written rules. Resource types without rules get only
// the checks every resource gets.
func CheckWith(res *etree.Element, at string, opts Options) fhir.Issues {
	rep := &report{now: opts.Now, strict: opts.Mode == ModeStrict, profiled: opts.Profiled}
	meta := metaProfiles(res)
	rep.profiles, rep.prescription = meta, prescription(meta)
	if len(meta) == 0 && opts.Profile != "" {
		rep.profiles = []string{opts.Profile}
	}
	c := &Cursor{el: res, path: at, rep: rep}
	defer rep.release()
	common(c)
	if r, ok := byType[res.Tag]; ok {
		r(c)
	}
	return rep.issues.Unique() // the rules every element gets and a type's rules may both check a value
}

// prescription reports whether the resource belongs to an e-prescription or a KBV form: its
// meta.profile names a KBV_PR_ERP_* or KBV_PR_FOR_* profile.
func prescription(profiles []string) bool {
	for _, v := range profiles {
		if strings.HasPrefix(v, kbvSD+"KBV_PR_ERP_") || strings.HasPrefix(v, kbvSD+"KBV_PR_FOR_") {
			return true
		}
	}
	return false
}

type report struct {
	now          time.Time
	strict       bool     // plausibility findings are errors
	prescription bool     // identifier numbers are errors
	profiles     []string // meta.profile, or the profile chosen for a resource without it
	profiled     bool     // the profile tables checked the resource
	issues       fhir.Issues
	blocks       []*cursorBlock // where the check's cursors live
	used         int            // cursors taken from the last block
}

// Cursor is a position in a resource: an element (possibly absent) and its location. The
// location is written out only when a rule reports there: most cursors never need it.
type Cursor struct {
	el   *etree.Element
	path string // the location, once known; else it follows from the fields below
	rep  *report

	parent *Cursor // a child's location: parent's, "." tag, and "[index]" when index ≥ 0; with
	tag    string  // index located, the location locate finds for el below parent
	index  int
}

// located is the index of a cursor whose location locate finds.
const located = -2

// child is a cursor for el, the child tag of c (index < 0: without an index).
func (c *Cursor) child(el *etree.Element, tag string, index int) *Cursor {
	k := c.rep.cursor()
	*k = Cursor{el: el, rep: c.rep, parent: c, tag: tag, index: index}
	return k
}

// cursorBlock is memory for the cursors of a check, reused from check to check: a check makes a
// few dozen cursors per resource, none of which outlives it.
type cursorBlock [256]Cursor

var cursorBlocks = sync.Pool{New: func() any { return new(cursorBlock) }}

// cursor hands out a cursor from the check's blocks.
func (r *report) cursor() *Cursor {
	if len(r.blocks) == 0 || r.used == len(cursorBlock{}) {
		r.blocks = append(r.blocks, cursorBlocks.Get().(*cursorBlock))
		r.used = 0
	}
	r.used++
	return &r.blocks[len(r.blocks)-1][r.used-1]
}

// release gives the check's blocks back, emptied.
func (r *report) release() {
	for _, b := range r.blocks {
		clear(b[:])
		cursorBlocks.Put(b)
	}
	r.blocks = nil
}

// Path is the cursor's location expression.
func (c *Cursor) Path() string {
	if c.path == "" {
		switch {
		case c.parent == nil:
		case c.index == located:
			c.path = locate(c.parent, c.el)
		default:
			p := c.parent.Path() + "." + c.tag
			if c.index >= 0 {
				p += "[" + strconv.Itoa(c.index) + "]"
			}
			c.path = p
		}
	}
	return c.path
}

// Element is the element under the cursor, nil when absent.
func (c *Cursor) Element() *etree.Element { return c.el }

// Exists reports whether the element is present.
func (c *Cursor) Exists() bool { return c != nil && c.el != nil }

// Now is the clock the check runs with.
func (c *Cursor) Now() time.Time { return c.rep.now }

// Value is the element's value attribute ("" when absent).
func (c *Cursor) Value() string { return fhir.Value(c.el) }

// One moves to a child that may occur at most once; a second occurrence is reported.
// The returned cursor may be absent (Exists false) but is never nil.
func (c *Cursor) One(tag string) *Cursor {
	if c.el == nil {
		return c.child(nil, tag, -1)
	}
	var first *etree.Element
	n := 0
	for _, t := range c.el.Child {
		if e, ok := t.(*etree.Element); ok && e.Tag == tag {
			if n == 0 {
				first = e
			}
			n++
		}
	}
	k := c.child(first, tag, -1)
	if n > 1 {
		c.rep.add(fhir.CodeStructure, fhir.SeverityError, k.Path(), "%s may occur only once, found %d", tag, n)
	}
	return k
}

// All moves to every child named tag, each located with its index.
func (c *Cursor) All(tag string) []*Cursor {
	if c.el == nil {
		return nil
	}
	n := 0
	for _, t := range c.el.Child {
		if e, ok := t.(*etree.Element); ok && e.Tag == tag {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]*Cursor, 0, n)
	for _, t := range c.el.Child {
		if e, ok := t.(*etree.Element); ok && e.Tag == tag {
			out = append(out, c.child(e, tag, len(out)))
		}
	}
	return out
}

// Count is the number of children named tag.
func (c *Cursor) Count(tag string) int {
	n := 0
	if c.el != nil {
		for _, t := range c.el.Child {
			if e, ok := t.(*etree.Element); ok && e.Tag == tag {
				n++
			}
		}
	}
	return n
}

// Extension returns the extensions with url.
func (c *Cursor) Extension(url string) []*Cursor {
	if c.el == nil {
		return nil
	}
	var out []*Cursor
	i := 0
	for _, t := range c.el.Child {
		if e, ok := t.(*etree.Element); ok && e.Tag == "extension" {
			if e.SelectAttrValue("url", "") == url {
				out = append(out, c.child(e, "extension", i))
			}
			i++
		}
	}
	return out
}

// Require reports each named child that is missing (only when the cursor itself exists).
func (c *Cursor) Require(tags ...string) {
	if c.el == nil {
		return
	}
	for _, t := range tags {
		if c.el.SelectElement(t) == nil {
			c.rep.add(fhir.CodeRequired, fhir.SeverityError, c.Path()+"."+t, "%s is required", t)
		}
	}
}

// Max reports more than n children named tag.
func (c *Cursor) Max(tag string, n int) {
	if k := c.Count(tag); k > n {
		c.rep.add(fhir.CodeStructure, fhir.SeverityError, c.Path()+"."+tag, "%s may occur at most %d times, found %d", tag, n, k)
	}
}

// Forbid reports children that the profile excludes (cardinality 0..0).
func (c *Cursor) Forbid(tags ...string) {
	for _, t := range tags {
		if c.Count(t) > 0 {
			c.rep.add(fhir.CodeStructure, fhir.SeverityError, c.Path()+"."+t, "%s is not allowed in this profile", t)
		}
	}
}

// Errorf reports an error at the cursor.
func (c *Cursor) Errorf(code fhir.IssueCode, format string, args ...any) {
	c.rep.add(code, fhir.SeverityError, c.Path(), format, args...)
}

// Warnf reports a plausibility finding at the cursor: a warning, which does not stop a bundle,
// or an error in strict mode.
func (c *Cursor) Warnf(code fhir.IssueCode, format string, args ...any) {
	c.rep.add(code, c.rep.plausibility(), c.Path(), format, args...)
}

// Number reports what is wrong with an identifier number at the cursor (its format or check
// digit, err from package ident): an error in an e-prescription or KBV form, else a plausibility
// finding. The profiles do not check these numbers.
func (c *Cursor) Number(err error) {
	sev := c.rep.plausibility()
	if c.rep.prescription {
		sev = fhir.SeverityError
	}
	c.rep.add(fhir.CodeValue, sev, c.Path(), "%s", err.Error())
}

// declared are the profiles the resource claims in meta.profile (of its first meta; a second one
// is reported by the checks every resource gets), or the one chosen for it.
func (r *report) declared() []string { return r.profiles }

// metaProfiles are the canonicals in res's meta.profile (of its first meta).
func metaProfiles(res *etree.Element) []string {
	var out []string
	if res != nil {
		if meta := res.SelectElement("meta"); meta != nil {
			for _, p := range meta.SelectElements("profile") {
				out = append(out, fhir.Value(p))
			}
		}
	}
	return out
}

func (r *report) plausibility() fhir.Severity {
	if r.strict {
		return fhir.SeverityError
	}
	return fhir.SeverityWarning
}

func (r *report) add(code fhir.IssueCode, sev fhir.Severity, at, format string, args ...any) {
	r.issues = append(r.issues, fhir.Issue{Severity: sev, Code: code, Expression: at, Diagnostics: fmt.Sprintf(format, args...)})
}

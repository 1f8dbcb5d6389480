// Package kbv checks resources against the KBV AWS 1.2.0 profile rules ("as if entered by hand"):
// required elements and cardinalities, identifier formats and check digits, required code
// bindings, plausible dates and text lengths. Rules are data plus small checks per resource type.
package kbv

import (
	"fmt"
	"strconv"
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

// Check validates res, reporting every issue with a location under at (for example
// "Bundle.entry[3].resource"). now is the clock for plausibility of dates. Resource types without
// rules get only the checks every resource gets.
func Check(res *etree.Element, at string, now time.Time) fhir.Issues {
	rep := &report{now: now}
	c := &Cursor{el: res, path: at, rep: rep}
	common(c)
	if r, ok := byType[res.Tag]; ok {
		r(c)
	}
	return rep.issues
}

type report struct {
	now    time.Time
	issues fhir.Issues
}

// Cursor is a position in a resource: an element (possibly absent) and its location.
type Cursor struct {
	el   *etree.Element
	path string
	rep  *report
}

// Path is the cursor's location expression.
func (c *Cursor) Path() string { return c.path }

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
	p := c.path + "." + tag
	if c.el == nil {
		return &Cursor{path: p, rep: c.rep}
	}
	kids := c.el.SelectElements(tag)
	if len(kids) > 1 {
		c.rep.add(fhir.CodeStructure, fhir.SeverityError, p, "%s may occur only once, found %d", tag, len(kids))
	}
	if len(kids) == 0 {
		return &Cursor{path: p, rep: c.rep}
	}
	return &Cursor{el: kids[0], path: p, rep: c.rep}
}

// All moves to every child named tag, each located with its index.
func (c *Cursor) All(tag string) []*Cursor {
	if c.el == nil {
		return nil
	}
	kids := c.el.SelectElements(tag)
	out := make([]*Cursor, len(kids))
	for i, k := range kids {
		out[i] = &Cursor{el: k, path: c.path + "." + tag + "[" + strconv.Itoa(i) + "]", rep: c.rep}
	}
	return out
}

// Count is the number of children named tag.
func (c *Cursor) Count(tag string) int {
	if c.el == nil {
		return 0
	}
	return len(c.el.SelectElements(tag))
}

// Extension returns the extensions with url.
func (c *Cursor) Extension(url string) []*Cursor {
	var out []*Cursor
	for _, e := range c.All("extension") {
		if e.el.SelectAttrValue("url", "") == url {
			out = append(out, e)
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
			c.rep.add(fhir.CodeRequired, fhir.SeverityError, c.path+"."+t, "%s is required", t)
		}
	}
}

// Max reports more than n children named tag.
func (c *Cursor) Max(tag string, n int) {
	if k := c.Count(tag); k > n {
		c.rep.add(fhir.CodeStructure, fhir.SeverityError, c.path+"."+tag, "%s may occur at most %d times, found %d", tag, n, k)
	}
}

// Forbid reports children that the profile excludes (cardinality 0..0).
func (c *Cursor) Forbid(tags ...string) {
	for _, t := range tags {
		if c.Count(t) > 0 {
			c.rep.add(fhir.CodeStructure, fhir.SeverityError, c.path+"."+t, "%s is not allowed in this profile", t)
		}
	}
}

// Errorf reports an error at the cursor.
func (c *Cursor) Errorf(code fhir.IssueCode, format string, args ...any) {
	c.rep.add(code, fhir.SeverityError, c.path, format, args...)
}

// Warnf reports a warning at the cursor; warnings never stop a bundle.
func (c *Cursor) Warnf(code fhir.IssueCode, format string, args ...any) {
	c.rep.add(code, fhir.SeverityWarning, c.path, format, args...)
}

func (r *report) add(code fhir.IssueCode, sev fhir.Severity, at, format string, args ...any) {
	r.issues = append(r.issues, fhir.Issue{Severity: sev, Code: code, Expression: at, Diagnostics: fmt.Sprintf(format, args...)})
}

package kbv

import (
	"regexp"

	"github.com/redclone/red/fhir"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.$_]{1,64}$`)

// common are the checks every resource gets: a usable id and a well-formed meta.lastUpdated.
func common(c *Cursor) {
	id := c.One("id")
	switch {
	case !id.Exists() || id.Value() == "":
		id.Errorf(fhir.CodeRequired, "%s.id is required: it is the identity red stores the %s under", c.el.Tag, c.el.Tag)
	case !idPattern.MatchString(id.Value()):
		id.Errorf(fhir.CodeValue, "an id is 1 to 64 letters, digits, '-', '.', '_' or '$'")
	}
	c.One("meta").One("lastUpdated").Date(false)
}

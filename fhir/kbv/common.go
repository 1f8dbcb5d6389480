package kbv

import "github.com/redclone/red/fhir"

// common are the checks every resource gets: a usable id and a well-formed meta.lastUpdated.
func common(c *Cursor) {
	id := c.One("id")
	switch {
	case !id.Exists() || id.Value() == "":
		id.Errorf(fhir.CodeRequired, "%s.id is required: it is the identity red stores the %s under", c.el.Tag, c.el.Tag)
	case !fhir.ValidID(id.Value()):
		id.Errorf(fhir.CodeValue, "%s", fhir.IDRule)
	}
	c.One("meta").One("lastUpdated").Date(false)
	coreRules(c)
}

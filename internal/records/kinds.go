package records

import (
	"sort"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// kind is what red knows about one resource type: its page size and its search parameters.
type kind struct {
	pageSize int
	params   map[string]param
}

// param is a token search parameter: index names the blind index; values lists the index values
// of a resource; lookup lists the index values that match one query value (any of them).
type param struct {
	index  string
	values func(res *etree.Element) []string
	lookup func(q string) []string
}

// kinds lists the resource types red stores.
var kinds = map[string]kind{
	"Patient": {pageSize: 10, params: map[string]param{
		"identifier": identifierParam("Patient.identifier"),
	}},
}

// identifierParam indexes system|value pairs so that `value`, `system|value`, `|value` and
// `system|` queries each need one token.
func identifierParam(index string) param {
	return param{
		index: index,
		values: func(res *etree.Element) []string {
			var out []string
			for _, id := range res.SelectElements("identifier") {
				sys, val := fhir.ChildValue(id, "system"), fhir.ChildValue(id, "value")
				if val == "" {
					continue
				}
				out = append(out, sys+"|"+val, "*|"+val)
				if sys != "" {
					out = append(out, sys+"|*")
				}
			}
			return out
		},
		lookup: func(q string) []string {
			for i := 0; i < len(q); i++ {
				if q[i] == '|' {
					sys, val := q[:i], q[i+1:]
					if val == "" {
						return []string{sys + "|*"}
					}
					return []string{sys + "|" + val}
				}
			}
			return []string{"*|" + q}
		},
	}
}

// Types lists the resource types red stores, sorted.
func Types() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Params lists the search parameters of typ, sorted.
func Params(typ string) []string {
	return known(kinds[typ])
}

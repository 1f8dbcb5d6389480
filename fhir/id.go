package fhir

import "regexp"

// idForm is the form of the ids red accepts: FHIR's (letters, digits, '-' and '.', up to 64) and
// those RED itself hands out, which may contain '$' and '_'.
var idForm = regexp.MustCompile(`^[A-Za-z0-9\-.$_]{1,64}$`)

// IDRule says what ValidID accepts, for messages.
const IDRule = "an id is 1 to 64 letters, digits, '-', '.', '_' or '$', and not . or .."

// ValidID reports whether id can be a resource's or a bundle's identity: it has the form of an id
// and is neither . nor .., which a URL path cannot carry as a segment (/Patient/.. is /).
func ValidID(id string) bool {
	return id != "." && id != ".." && idForm.MatchString(id)
}

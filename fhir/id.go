package fhir

// IDRule says what ValidID accepts, for messages.
const IDRule = "an id is 1 to 64 letters, digits, '-', '.', '_' or '$', and not . or .."

// ValidID reports whether id can be a resource's or a bundle's identity: it has the form of an id
// — FHIR's (letters, digits, '-' and '.', up to 64) and those RED itself hands out, which may
// contain '$' and '_' — and is neither . nor .., which a URL path cannot carry as a segment
// (/Patient/.. is /).
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '$', c == '_':
		default:
			return false
		}
	}
	return true
}

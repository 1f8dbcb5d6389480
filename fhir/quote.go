package fhir

import "strconv"

// MaxQuoted is how many bytes of escaped text Quote keeps.
const MaxQuoted = 64

// Quote writes s for a message: escaped as strconv.Quote does (control characters, invalid UTF-8
// and quotes cannot break a message or a log line), and cut to MaxQuoted bytes of escaped
// text with an ellipsis after the closing quote when s is longer, so that no caller can make red
// echo what it sent at length.
func Quote(s string) string {
	if len(s) <= MaxQuoted { // escaping never shortens, so only a short s can fit
		if q := strconv.Quote(s); len(q) <= MaxQuoted+2 {
			return q
		}
	}
	cut := 0
	for i := range s { // rune boundaries; each byte of invalid UTF-8 is one
		if len(strconv.Quote(s[:i])) > MaxQuoted+2 {
			break
		}
		cut = i
	}
	return strconv.Quote(s[:cut]) + "…"
}

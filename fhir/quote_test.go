package fhir_test

import (
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
)

func TestQuote(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"quotes a short name as it is", "colour", `"colour"`},
		{"escapes control characters and quotes", "a\"b\n\x00", `"a\"b\n\x00"`},
		{"escapes invalid UTF-8", "a\xff", `"a\xff"`},
		{"cuts a long name with an ellipsis", strings.Repeat("x", 1000), `"` + strings.Repeat("x", fhir.MaxQuoted) + `"…`},
		{"cuts between escapes, never inside one", strings.Repeat("\x01", 100), `"` + strings.Repeat(`\x01`, fhir.MaxQuoted/4) + `"…`},
		{"cuts between characters, never inside one", strings.Repeat("ä", 100), `"` + strings.Repeat("ä", fhir.MaxQuoted/2) + `"…`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fhir.Quote(c.in); got != c.want {
				t.Errorf("Quote = %s, want %s", got, c.want)
			}
		})
	}
}

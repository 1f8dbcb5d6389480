package records_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/records"
)

// An unknown search parameter is named in the answer escaped and cut short: a client cannot make
// red echo what it sent at length, or break a message with control characters.
func TestUnknownSearchParameter(t *testing.T) {
	s := newService(t)
	cases := []struct {
		name, param, expression, quoted string
	}{
		{"names a short parameter as it is", "colour", "colour", `"colour"`},
		{"cuts a long name short with an ellipsis", strings.Repeat("x", 10_000), `"` + strings.Repeat("x", fhir.MaxQuoted) + `"…`, `"` + strings.Repeat("x", fhir.MaxQuoted) + `"…`},
		{"escapes control characters", "a\nb\x00", `"a\nb\x00"`, `"a\nb\x00"`},
		{"escapes invalid UTF-8", "a\xffb", `"a\xffb"`, `"a\xffb"`},
		{"escapes quotes", `a"b`, `"a\"b"`, `"a\"b"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Search(context.Background(), "Patient", url.Values{c.param: {"1"}})
			is, status := fhir.Explain(err)
			if status != 400 || len(is) != 1 {
				t.Fatalf("got %d %+v", status, is)
			}
			if is[0].Expression != c.expression {
				t.Errorf("expression %q, want %q", is[0].Expression, c.expression)
			}
			if want := "unknown search parameter " + c.quoted + " for Patient; supported: "; !strings.HasPrefix(is[0].Diagnostics, want) {
				t.Errorf("diagnostics %q, want the prefix %q", is[0].Diagnostics, want)
			}
		})
	}
}

// FuzzSearchParams: no query string makes a search panic or fail without a code (a 500), and no
// answer echoes a parameter name at length or carries invalid UTF-8.
func FuzzSearchParams(f *testing.F) {
	s := newService(f)
	if err := post(f, s, patient("f1"), patient("f2")); err != nil {
		f.Fatal(err)
	}
	types := records.Types()
	for _, q := range []string{
		"page=1", "name=Mus&_count=5", "birthdate=ge1970-01-01&gender=female", "identifier=http://fhir.de/sid/gkv/kvid-10|T",
		"subject=Patient/f1&from=20251101&to=20251130", "_id=f1,f2&_lastUpdated=gt2020", "colour=blue", "_q=x&page=2",
		"beneficiary=Patient/..&from=20250101", "%zz=1", "_count=0", "page=-1&_summary=true", "a%0Ab=1",
	} {
		f.Add(q, uint8(0))
		f.Add(q, uint8(4))
	}
	f.Fuzz(func(t *testing.T, query string, which uint8) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return // the server answers a query it cannot parse before any search
		}
		typ := types[int(which)%len(types)]
		_, err = s.Search(context.Background(), typ, q)
		if err == nil {
			return
		}
		is, status := fhir.Explain(err)
		if status >= 500 || len(is) == 0 {
			t.Fatalf("%s?%s: %d %v", typ, query, status, err)
		}
		for _, i := range is {
			if len(i.Expression) > 2*fhir.MaxQuoted || len(i.Diagnostics) > 1024 || !utf8.ValidString(i.Expression) || !utf8.ValidString(i.Diagnostics) {
				t.Fatalf("%s?%s: issue %q at %q", typ, query, i.Diagnostics, i.Expression)
			}
		}
	})
}

package cli_test

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHostileInput replays an adversarial probe against a running red: each input is refused
// with the status and location it names, or accepted where it is harmless, and none is a 500.
func TestHostileInput(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "pw")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))

	akte := string(readFile(t, filepath.Join("..", "..", "testdata", "bundles", "patientenakte.xml")))
	patient := akte[strings.Index(akte, "<Patient>") : strings.Index(akte, "</Patient>")+len("</Patient>")]
	entryOf := func(res string) string { return "<entry><resource>" + res + "</resource></entry>" }
	single := func(res string) string {
		return `<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>` + entryOf(res) + `</Bundle>`
	}
	// inAkte puts res in the Patientenakte in place of its patient (entry 0), renamed
	inAkte := func(res string) string { return strings.Replace(akte, patient, res, 1) }
	evil := strings.NewReplacer("<Patient>", `<Patient xmlns="urn:evil">`).Replace(patient)
	prefixed := strings.NewReplacer("<", "<x:", "<x:/", "</x:").Replace(patient)
	prefixed = strings.Replace(prefixed, "<x:Patient>", `<x:Patient xmlns:x="urn:evil">`, 1)
	prefixed = strings.Replace(prefixed, `<x:div xmlns="http://www.w3.org/1999/xhtml">`, `<div xmlns="http://www.w3.org/1999/xhtml">`, 1)
	prefixed = strings.Replace(prefixed, "</x:div>", "</div>", 1)
	inXHTML := strings.Replace(patient, "<Patient>", `<Patient xmlns="http://www.w3.org/1999/xhtml">`, 1)
	var attrs strings.Builder
	for i := range 80_000 {
		attrs.WriteString(" a" + strconv.Itoa(i) + `=""`)
	}

	cases := []struct {
		name, method, path, body string
		status                   int
		want                     []string
	}{
		{"refuses 80,000 attributes on one element as too costly", "POST", "/praxis/Bundle",
			single(strings.Replace(patient, `<gender `, `<gender`+attrs.String()+` `, 1)), 413,
			[]string{`<code value="too-costly"/>`, "80001 attributes", `<expression value="Bundle.entry[0].resource.gender[0]"/>`}},
		{"refuses a Patient in urn:evil posted alone", "POST", "/praxis/Bundle", single(evil), 400,
			[]string{`<code value="structure"/>`, "&quot;urn:evil&quot;", `<expression value="Bundle.entry[0].resource"/>`}},
		{"refuses a prefixed Patient in urn:evil posted alone", "POST", "/praxis/Bundle", single(prefixed), 400,
			[]string{`<code value="structure"/>`, "&quot;urn:evil&quot;", `<expression value="Bundle.entry[0].resource"/>`}},
		{"refuses a Patient in the XHTML namespace posted alone", "POST", "/praxis/Bundle", single(inXHTML), 400,
			[]string{`<code value="structure"/>`, "XHTML only in a narrative", `<expression value="Bundle.entry[0].resource"/>`}},
		{"refuses a Patient in urn:evil in a Patientenakte", "POST", "/praxis/Bundle", inAkte(evil), 400,
			[]string{`<code value="structure"/>`, `<expression value="Bundle.entry[0].resource"/>`}},
		{"refuses a prefixed Patient in urn:evil in a Patientenakte", "POST", "/praxis/Bundle", inAkte(prefixed), 400,
			[]string{`<code value="structure"/>`, `<expression value="Bundle.entry[0].resource"/>`}},
		{"refuses a Patient in the XHTML namespace in a Patientenakte", "POST", "/praxis/Bundle", inAkte(inXHTML), 400,
			[]string{`<code value="structure"/>`, `<expression value="Bundle.entry[0].resource"/>`}},
		{"refuses an entry in urn:evil in a Patientenakte", "POST", "/praxis/Bundle", strings.Replace(akte, "<entry>", `<entry xmlns="urn:evil">`, 1), 400,
			[]string{`<code value="structure"/>`, `<expression value="Bundle.entry[0]"/>`}},
		{"refuses a reference in urn:evil in a Patientenakte", "POST", "/praxis/Bundle", strings.Replace(akte, `<reference value="Patient/P1001"/>`, `<reference xmlns="urn:evil" value="Patient/P1001"/>`, 1), 400,
			[]string{`<code value="structure"/>`, `<expression value="Bundle.entry[4].resource.beneficiary[0].reference[0]"/>`}},
		{"refuses a narrative div in urn:evil in a Patientenakte", "POST", "/praxis/Bundle", strings.Replace(akte, `<div xmlns="http://www.w3.org/1999/xhtml">`, `<div xmlns="urn:evil">`, 1), 400,
			[]string{`<code value="structure"/>`, `<expression value="Bundle.entry[5].resource.text[0].div[0]"/>`}},
		{"refuses the resource id ..", "POST", "/praxis/Bundle", single(strings.Replace(patient, `<id value="P1001"/>`, `<id value=".."/>`, 1)), 400,
			[]string{`<code value="value"/>`, "not . or ..", `<expression value="Bundle.entry[0].resource.id"/>`}},
		{"refuses the bundle id ..", "POST", "/praxis/Bundle", strings.Replace(akte, `<id value="20000"/>`, `<id value=".."/>`, 1), 400,
			[]string{`<code value="value"/>`, `<expression value="Bundle.id"/>`}},
		{"names a long unknown search parameter cut short", "GET", "/praxis/Patient?" + strings.Repeat("x", 5000) + "=1", "", 400,
			[]string{`<code value="not-supported"/>`, "unknown search parameter &quot;" + strings.Repeat("x", 64) + "&quot;…"}},
		{"accepts a Patientenakte with a byte order mark", "POST", "/praxis/Bundle", "\uFEFF" + akte, 200,
			[]string{"transaction-response", "201 Created"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctype := ""
			if c.body != "" {
				ctype = fhirXML
			}
			status, body := srv.do(t, c.method, c.path, ctype, []byte(c.body))
			if status >= 500 {
				t.Fatalf("%d:\n%.2000s", status, body)
			}
			if status != c.status {
				t.Errorf("status %d, want %d:\n%.2000s", status, c.status, body)
			}
			mustContain(t, "the answer", body, c.want...)
			if strings.Contains(body, strings.Repeat("x", 65)) || strings.Contains(body, `a79999=`) {
				t.Errorf("the answer echoes the input at length:\n%.2000s", body)
			}
		})
	}
	t.Run("stored nothing it refused", func(t *testing.T) {
		// only the Patientenakte with a byte order mark was stored: its patient, in FHIR's namespace
		status, body := srv.do(t, "GET", "/praxis/Patient?page=1", "", nil)
		if status != http.StatusOK || !strings.Contains(body, `<total value="1"/>`) || strings.Contains(body, "urn:evil") {
			t.Errorf("%d:\n%s", status, body)
		}
	})
}

package cli_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestServeLoginPostReadSearch(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "correct horse")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("correct horse"))

	status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, patientsBundle(t))
	if status != http.StatusOK {
		t.Fatalf("post: %d\n%s", status, body)
	}
	mustContain(t, "post response", body, `<type value="transaction-response"/>`, `<status value="201 Created"/>`,
		`<location value="Patient/60151/_history/1"/>`, `<location value="Patient/60152/_history/1"/>`, `<etag value="W/&quot;1&quot;"/>`)

	status, body = srv.do(t, "GET", "/praxis/Patient/60151", "", nil)
	if status != http.StatusOK {
		t.Fatalf("read: %d\n%s", status, body)
	}
	mustContain(t, "read", body, `<Patient xmlns="http://hl7.org/fhir">`, `<versionId value="1"/>`, `<family value="Quästorius"/>`, `Z"/>`)

	status, body = srv.do(t, "GET", "/praxis/Patient?identifier=http://fhir.de/sid/gkv/kvid-10|X110614233", "", nil)
	if status != http.StatusOK {
		t.Fatalf("search: %d\n%s", status, body)
	}
	mustContain(t, "identifier search", body, `<total value="1"/>`, `<fullUrl value="/Patient/60151"/>`, `<self>`, `<url value="/praxis/Patient?page=1&amp;_q=`)
	if strings.Contains(strings.SplitN(body, "<entry>", 2)[0], "X110614233") {
		t.Errorf("a paging link carries the KVNR in plain:\n%s", body)
	}

	status, body = srv.do(t, "GET", "/praxis/Patient?page=1", "", nil)
	mustContain(t, "all patients", body, `<total value="2"/>`, `<url value="/praxis/Patient?page=1"/>`, `<last>`)
	if status != http.StatusOK || strings.Contains(body, "<next>") {
		t.Errorf("page 1 of 1: %d\n%s", status, body)
	}
	status, body = srv.do(t, "GET", "/praxis/Patient?_id=60152", "", nil)
	if status != http.StatusOK {
		t.Fatal(status, body)
	}
	mustContain(t, "_id search", body, `<total value="1"/>`, `<fullUrl value="/Patient/60152"/>`)

	// the same ids again update: version 2, version 1 still readable
	status, body = srv.do(t, "POST", "/praxis/Bundle", fhirXML, patientsBundle(t))
	if status != http.StatusOK {
		t.Fatalf("second post: %d\n%s", status, body)
	}
	mustContain(t, "second post", body, `<status value="200 OK"/>`, `<location value="Patient/60151/_history/2"/>`)
	_, body = srv.do(t, "GET", "/praxis/Patient/60151", "", nil)
	mustContain(t, "read after update", body, `<versionId value="2"/>`)
	status, body = srv.do(t, "GET", "/praxis/Patient/60151/_history/1", "", nil)
	if status != http.StatusOK {
		t.Fatal(status, body)
	}
	mustContain(t, "version 1", body, `<versionId value="1"/>`)

	if err := srv.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !portFree(t, srv.base) {
		t.Error("port still open after shutdown")
	}
}

func TestServePaging(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "pw")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	var b strings.Builder
	b.WriteString(`<Bundle xmlns="http://hl7.org/fhir"><type value="history"/>`)
	for i := 0; i < 23; i++ {
		b.WriteString(patientEntry(t, fmt.Sprintf("p%02d", i), 'P', i, [2]string{"urn:test", "same"}))
	}
	b.WriteString(`</Bundle>`)
	if status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, []byte(b.String())); status != http.StatusOK {
		t.Fatal(status, body)
	}
	_, body := srv.do(t, "GET", "/praxis/Patient?page=2", "", nil)
	mustContain(t, "page 2", body, `<total value="23"/>`, `<url value="/praxis/Patient?page=2"/>`, `<url value="/praxis/Patient?page=1"/>`,
		`<previous>`, `<next>`, `<url value="/praxis/Patient?page=3"/>`)
	if n := strings.Count(body, "<entry>"); n != 10 {
		t.Errorf("page 2 has %d entries, want 10", n)
	}
	// follow the sealed next link of a parameterised search to its last page
	_, body = srv.do(t, "GET", "/praxis/Patient?identifier=urn:test|same&page=2", "", nil)
	next := between(body, "<next>", "</next>")
	link := between(next, `<url value="`, `"/>`)
	link = strings.ReplaceAll(link, "&amp;", "&")
	if !strings.Contains(link, "page=3&_q=") || strings.Contains(link, "same") {
		t.Fatalf("next link %q", link)
	}
	status, body := srv.do(t, "GET", link, "", nil)
	if status != http.StatusOK || strings.Count(body, "<entry>") != 3 || strings.Contains(body, "<next>") {
		t.Errorf("last page via link: %d\n%s", status, body)
	}
	if status, body := srv.do(t, "GET", "/praxis/Patient?page=1&_q=forged", "", nil); status != http.StatusBadRequest {
		t.Errorf("forged _q: %d\n%s", status, body)
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

func TestServeErrors(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "pw")
	in.initTenant("nachbar", "bob", "pw2")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--max-body", "65536")
	if status, _ := srv.do(t, "POST", "/praxis/Bundle", fhirXML, patientsBundle(t)); status != http.StatusOK {
		t.Fatal(status)
	}
	port := srv.base[strings.LastIndex(srv.base, ":")+1:]
	dangling := `<Bundle xmlns="http://hl7.org/fhir"><type value="history"/><entry><resource><Encounter><id value="e1"/><subject><reference value="Patient/nobody"/></subject></Encounter></resource></entry></Bundle>`
	cases := []struct {
		name, method, path, ctype, body string
		header                          []string
		status                          int
		want                            []string
	}{
		{"malformed XML is 400 with the line", "POST", "/praxis/Bundle", fhirXML, "<Bundle>\n<type></Bundle>", nil, 400, []string{`<code value="structure"/>`, "line 2"}},
		{"DOCTYPE is refused", "POST", "/praxis/Bundle", fhirXML, `<!DOCTYPE Bundle [<!ENTITY a "b">]><Bundle xmlns="http://hl7.org/fhir"/>`, nil, 400, []string{`<code value="security"/>`, "DOCTYPE"}},
		{"wrong content type is 415", "POST", "/praxis/Bundle", "application/json", "{}", nil, 415, []string{"application/fhir+xml"}},
		{"a body over the limit is 413", "POST", "/praxis/Bundle", fhirXML, "<Bundle>" + strings.Repeat(" ", 70000) + "</Bundle>", nil, 413, []string{`<code value="too-costly"/>`, "64 KiB"}},
		{"another tenant not unlocked here is 403", "GET", "/nachbar/Patient?page=1", "", "", nil, 403, []string{`<code value="forbidden"/>`, "not unlocked"}},
		{"an unknown tenant is 404", "GET", "/niemand/Patient?page=1", "", "", nil, 404, []string{"no such tenant"}},
		{"an unknown resource type is 404", "GET", "/praxis/Spaceship?page=1", "", "", nil, 404, []string{`&quot;Spaceship&quot;`}},
		{"an unknown patient is 404", "GET", "/praxis/Patient/nobody", "", "", nil, 404, []string{`<code value="not-found"/>`}},
		{"a missing version is 404 and says which exist", "GET", "/praxis/Patient/60151/_history/7", "", "", nil, 404, []string{`<code value="not-found"/>`, "versions 1 to 1, not 7"}},
		{"RED's documented typo PractitioneRole is served", "GET", "/praxis/PractitioneRole?page=1", "", "", nil, 200, []string{`<url value="/praxis/PractitionerRole?page=1"/>`}},
		{"from after to is 400", "GET", "/praxis/Encounter?subject=Patient/60151&from=20251201&to=20251101", "", "", nil, 400, []string{`<expression value="from"/>`}},
		{"a wrong method is 405", "DELETE", "/praxis/Patient/60151", "", "", nil, 405, []string{"DELETE is not allowed"}},
		{"PUT on Bundle is 405", "PUT", "/praxis/Bundle", fhirXML, "<Bundle/>", nil, 405, []string{"PUT is not allowed"}},
		{"an unknown search parameter is 400", "GET", "/praxis/Patient?colour=blue", "", "", nil, 400, []string{`<expression value="colour"/>`, "supported: _count, _id, _lastUpdated, birthdate, family, gender, given, identifier, name, page"}},
		{"a bad page is 400", "GET", "/praxis/Patient?page=0", "", "", nil, 400, []string{`<expression value="page"/>`}},
		{"a foreign Host is refused", "GET", "/praxis/Patient?page=1", "", "", []string{"Host", "evil.example:" + port}, 403, []string{"127.0.0.1, localhost or [::1]"}},
		{"localhost is a loopback name", "GET", "/metadata", "", "", []string{"Host", "localhost:" + port}, 200, []string{"CapabilityStatement"}},
		{"a foreign Origin is refused", "GET", "/praxis/Patient?page=1", "", "", []string{"Origin", "http://evil.example"}, 403, []string{"cross-origin"}},
		{"a reference to a patient red does not have is refused", "POST", "/praxis/Bundle", fhirXML, dangling, nil, 400,
			[]string{`<code value="invalid"/>`, `<expression value="Bundle.entry[0].resource.subject.reference"/>`, "exists neither in this bundle nor in red"}},
		{"a bundle of another type is refused", "POST", "/praxis/Bundle", fhirXML, `<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><entry><resource><Patient><id value="9"/></Patient></resource></entry></Bundle>`, nil, 400,
			[]string{`<expression value="Bundle.type"/>`}},
		{"a patient without id is refused", "POST", "/praxis/Bundle", fhirXML, `<Bundle xmlns="http://hl7.org/fhir"><type value="history"/><entry><resource><Patient><gender value="male"/></Patient></resource></entry></Bundle>`, nil, 400,
			[]string{`<code value="required"/>`, `<expression value="Bundle.entry[0].resource.id"/>`}},
		{"an unknown path is 404", "GET", "/praxis/Patient/1/2/3/4", "", "", nil, 404, []string{"no such endpoint"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := srv.do(t, c.method, c.path, c.ctype, []byte(c.body), c.header...)
			if status != c.status {
				t.Errorf("status %d, want %d\n%s", status, c.status, body)
			}
			if status >= 400 {
				mustContain(t, "outcome", body, "<OperationOutcome")
			}
			mustContain(t, "body", body, c.want...)
			if strings.Contains(body, "Access-Control") {
				t.Error("CORS header")
			}
		})
	}
	// nothing of the refused bundles was stored
	_, body := srv.do(t, "GET", "/praxis/Patient?page=1", "", nil)
	mustContain(t, "after refusals", body, `<total value="2"/>`)
	if log := srv.output.String(); strings.Contains(log, "60151") || strings.Contains(log, "X110614233") || strings.Contains(log, "colour") {
		t.Errorf("the log carries request data:\n%s", log)
	}
}

func TestServeRefusesWrongPassword(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "right")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	for _, c := range []struct{ name, user, pw string }{
		{"wrong password", "anna", "wrong"},
		{"unknown user", "nobody", "right"},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := in.run("serve", "--tenant", "praxis", "--user", c.user, "--password-file", in.passwordFile(c.pw), "--port", port)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "wrong tenant, user name or password") {
					t.Fatalf("err = %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not refuse")
			}
			if !portFree(t, "127.0.0.1:"+port) {
				t.Error("something listens after a failed login")
			}
		})
	}
}

func TestServeIdleLock(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "pw")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--idle-lock", "300ms")
	if status, _ := srv.do(t, "GET", "/metadata", "", nil); status != 200 {
		t.Fatal(status)
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Fatal(err)
		}
		srv.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("idle lock did not fire")
	}
	mustContain(t, "output", srv.output.String(), "keys wiped and port closed")
	if !portFree(t, srv.base) {
		t.Error("port open after idle lock")
	}
}

func TestUsersAndPasswords(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "first")
	if _, err := in.run("init", "--tenant", "praxis", "--user", "x", "--password-file", in.passwordFile("y")); err == nil {
		t.Error("a second init of the same tenant succeeded")
	}
	in.mustRun("user", "add", "--tenant", "praxis", "--user", "anna", "--new-user", "ben", "--role", "assistant",
		"--password-file", in.passwordFile("first"), "--new-password-file", in.passwordFile("bens"))
	if _, err := in.run("user", "add", "--tenant", "praxis", "--user", "anna", "--new-user", "cem", "--role", "assistant",
		"--password-file", in.passwordFile("wrong"), "--new-password-file", in.passwordFile("cems")); err == nil {
		t.Error("user add with a wrong password succeeded")
	}
	in.mustRun("passwd", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("first"), "--new-password-file", in.passwordFile("second"))

	// data written by ben opens for anna under her new password
	srv := in.serve("serve", "--tenant", "praxis", "--user", "ben", "--password-file", in.passwordFile("bens"))
	if status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, patientsBundle(t)); status != 200 {
		t.Fatal(status, body)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := in.run("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("first")); err == nil {
		t.Error("the old password still logs in")
	}
	srv = in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("second"))
	if status, body := srv.do(t, "GET", "/praxis/Patient/60152", "", nil); status != 200 {
		t.Fatal(status, body)
	}
}

func TestDemo(t *testing.T) {
	in := newInstance(t, "")
	srv := in.serve("demo")
	mustContain(t, "demo output", srv.output.String(), `created tenant "demo"`, "curl -s '"+srv.base+"/demo/Patient?page=1'")
	status, body := srv.do(t, "GET", "/demo/Patient?page=1", "", nil)
	if status != 200 {
		t.Fatal(status, body)
	}
	mustContain(t, "demo patients", body, `<total value="8"/>`)
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	// the second start reuses the tenant
	srv = in.serve("demo")
	if strings.Contains(srv.output.String(), "created tenant") {
		t.Error("demo tenant created twice")
	}
	if status, _ := srv.do(t, "GET", "/demo/Patient/60151", "", nil); status != 200 {
		t.Error(status)
	}
}

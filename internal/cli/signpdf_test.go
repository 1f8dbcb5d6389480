package cli_test

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// signBundle is a $signpdf request body: one DocumentReference with a PDF.
func signBundle() []byte {
	pdf := []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
	return []byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/><entry><resource><DocumentReference><status value="current"/><content><attachment><contentType value="application/pdf"/><data value="` +
		base64.StdEncoding.EncodeToString(pdf) + `"/></attachment></content></DocumentReference></resource></entry></Bundle>`)
}

// $signpdf&filepath= saves the signature only as a new file below --signed-pdf-dir: never
// outside it (absolute paths, "..", symbolic links), never over a file, never without the flag
// — so a caller cannot overwrite red.db or anything else red's user may write.
func TestSignPDFFilepath(t *testing.T) {
	skipOnWindows(t)
	sign := func(t *testing.T, srv *server, filepath string) (int, string) {
		t.Helper()
		q := "/praxis/Bundle?action=$signpdf&cardname=" + url.QueryEscape("Dr. med. Hanna Berger TEST-ONLY") + "&filepath=" + url.QueryEscape(filepath)
		return srv.do(t, "POST", q, fhirXML, signBundle())
	}
	// start serves a fresh tenant with extra flags and returns the server and its data directory
	start := func(t *testing.T, extra ...string) (*server, string) {
		in := newInstance(t, "")
		in.initTenant("praxis", "anna", "pw")
		return in.serve(append([]string{"serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw")}, extra...)...), in.dir
	}
	// intact checks that red.db is still red's store: unchanged header, and the server reads it
	intact := func(t *testing.T, srv *server, db string, header []byte) {
		t.Helper()
		now := readFile(t, db)
		if len(now) < len(header) || !bytes.Equal(now[:len(header)], header) {
			t.Errorf("red.db was overwritten: starts with %q", now[:min(len(now), 16)])
		}
		if status, body := srv.do(t, "GET", "/praxis/Patient?page=1", "", nil); status != 200 {
			t.Errorf("the store no longer answers: %d\n%s", status, body)
		}
	}
	refusal := func(t *testing.T, status int, body string, want string) {
		t.Helper()
		if status != 400 || !strings.Contains(body, "<SignatureStatus>ERROR</SignatureStatus>") || !strings.Contains(body, want) {
			t.Errorf("want 400 ConnectorResponse ERROR with %q, got %d\n%s", want, status, body)
		}
		if strings.Contains(body, "<SignatureData>") {
			t.Errorf("a refused request got a signature:\n%s", body)
		}
	}

	t.Run("without --signed-pdf-dir every filepath is refused", func(t *testing.T) {
		srv, data := start(t)
		db := filepath.Join(data, "red.db")
		header := readFile(t, db)[:100]
		for _, p := range []string{db, filepath.Join(t.TempDir(), "brief.p7s"), "brief.p7s"} {
			status, body := sign(t, srv, p)
			refusal(t, status, body, "start red with --signed-pdf-dir")
		}
		intact(t, srv, db, header)
		if status, body := sign(t, srv, ""); status != 200 {
			t.Errorf("signing without filepath: %d\n%s", status, body)
		}
	})

	dir, outside := t.TempDir(), t.TempDir()
	for _, d := range []string{"briefe", "leer"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "target.p7s"), filepath.Join(dir, "dangling.p7s")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.p7s"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, data := start(t, "--signed-pdf-dir", dir)
	db := filepath.Join(data, "red.db")
	header := readFile(t, db)[:100]

	for _, c := range []struct{ name, filepath, want string }{
		{"red.db is refused", db, "outside the directory for signed PDFs"},
		{"an absolute path outside is refused", filepath.Join(outside, "x.p7s"), "outside the directory for signed PDFs"},
		{"an absolute path that leaves by .. is refused", dir + "/../" + filepath.Base(outside) + "/x.p7s", "outside the directory for signed PDFs"},
		{"a relative path that leaves by .. is refused", "../" + filepath.Base(outside) + "/x.p7s", "leads out of the directory"},
		{"a relative path to red.db is refused", must(filepath.Rel(dir, db)), "leads out of the directory"},
		{"a symbolic link out of the directory is refused", "out/x.p7s", "leads out of the directory"},
		{"a symbolic link to a file outside is refused", "dangling.p7s", "already exists"},
		{"an existing file is refused", "old.p7s", "already exists"},
		{"a folder that does not exist is refused", "fehlt/x.p7s", "does not exist"},
		{"the directory itself is refused", dir, "not a file in it"},
		{"a relative path to the directory itself is refused", "briefe/..", "not a file in it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := sign(t, srv, c.filepath)
			refusal(t, status, body, c.want)
		})
	}
	t.Run("nothing was written outside, red.db is untouched, old.p7s kept", func(t *testing.T) {
		if got := entries(t, outside); got != "[]" {
			t.Errorf("files outside: %s", got)
		}
		if got := entries(t, filepath.Join(dir, "leer")); got != "[]" {
			t.Errorf("files left by refused requests: %s", got)
		}
		if got := string(readFile(t, filepath.Join(dir, "old.p7s"))); got != "old" {
			t.Errorf("old.p7s overwritten: %q…", got[:min(len(got), 16)])
		}
		intact(t, srv, db, header)
	})

	for _, c := range []struct{ name, filepath, file string }{
		{"a relative path is written 0600", "briefe/a.p7s", "briefe/a.p7s"},
		{"an absolute path inside is written 0600", filepath.Join(dir, "b.p7s"), "b.p7s"},
		{"a path through the resolved directory is written 0600", filepath.Join(must(filepath.EvalSymlinks(dir)), "briefe", "c.p7s"), "briefe/c.p7s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := sign(t, srv, c.filepath)
			if status != 200 || !strings.Contains(body, "<SignatureStatus>OK</SignatureStatus>") {
				t.Fatalf("%d\n%s", status, body)
			}
			sig, err := base64.StdEncoding.DecodeString(between(body, "<SignatureData>", "</SignatureData>"))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, c.file)
			if !bytes.Equal(readFile(t, path), sig) {
				t.Errorf("%s does not hold the signature", c.file)
			}
			if m := mode(t, path); m != 0o600 {
				t.Errorf("%s has mode %#o, want 0600", c.file, m)
			}
			status, body = sign(t, srv, c.filepath)
			refusal(t, status, body, "already exists")
			if !bytes.Equal(readFile(t, path), sig) {
				t.Errorf("%s was overwritten by a second request", c.file)
			}
		})
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

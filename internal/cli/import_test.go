package cli_test

import (
	"archive/zip"
	"encoding/hex"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// importArchive is a PVS's archive in the making: named bundles, valid and refused ones.
type importArchive struct {
	names   []string
	bundles map[string][]byte
	refused map[string]bool // names of the bundles red refuses
}

func (a *importArchive) add(name string, b []byte, refused bool) {
	if a.bundles == nil {
		a.bundles, a.refused = map[string][]byte{}, map[string]bool{}
	}
	a.names = append(a.names, name)
	a.bundles[name], a.refused[name] = b, refused
}

// newImportArchive holds the shared bundle (when shared), patients from..to-1 of BenchmarkLoad's
// data, and three bundles red refuses: a Patient without gender, a Condition whose Encounter is
// nowhere, and a file that is no XML.
func newImportArchive(t testing.TB, data *loadData, shared bool, from, to int) *importArchive {
	a := &importArchive{}
	if shared {
		a.add("0-praxis.xml", data.sharedBundle(), false)
	}
	for i := from; i < to; i++ {
		a.add(fmt.Sprintf("akten/%04d.xml", i), data.bundle(i), false)
	}
	noGender := regexp.MustCompile(`<gender value="(fe)?male"/>`).ReplaceAllString(string(data.bundle(to)), "")
	a.add("akten/kaputt-1.xml", []byte(noGender), true)
	noEncounter := regexp.MustCompile(`(?s)<entry><fullUrl value="[^"]*/Encounter/[^"]*"/>.*?</entry>\n`).ReplaceAllString(string(data.bundle(to+1)), "")
	if noEncounter == string(data.bundle(to+1)) {
		t.Fatal("the Encounter entry was not removed")
	}
	a.add("akten/kaputt-2.xml", []byte(noEncounter), true)
	a.add("akten/kaputt-3.xml", []byte("Patient;Name;KVNR\n"), true)
	return a
}

// folder writes the archive's bundles as files under dir.
func (a *importArchive) folder(t testing.TB, dir string) string {
	for _, name := range a.names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, a.bundles[name], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// zip writes the archive's bundles as the entries of a zip archive at path.
func (a *importArchive) zip(t testing.TB, path string) string {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, name := range a.names {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(a.bundles[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	lastUpdated = regexp.MustCompile(`<lastUpdated value="[^"]*"/>|zuletzt bearbeitet [0-9.: ]+`)
	diagnostics = regexp.MustCompile(`<diagnostics value="([^"]*)"/>`)
	expression  = regexp.MustCompile(`<expression value="([^"]*)"/>`)
)

// TestImport imports a folder and a zip archive of valid and refused bundles on each store:
// the report lists each refused bundle with the issues POST /{tenant}/Bundle answers for it,
// every valid bundle's resources read as if posted, and a second import finds all done.
func TestImport(t *testing.T) {
	data := loadReadData(t)
	onEachBackend(t, func(t *testing.T, in *instance) {
		folder := newImportArchive(t, data, true, 0, 6)
		archive := newImportArchive(t, data, false, 10, 16)
		dir := folder.folder(t, filepath.Join(t.TempDir(), "export"))
		zipPath := archive.zip(t, filepath.Join(t.TempDir(), "export.zip"))
		report := filepath.Join(t.TempDir(), "report.txt")
		out, err := in.run("import", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--report", report, dir, zipPath)
		if err == nil || !strings.Contains(err.Error(), "6 of 19 bundles refused") {
			t.Fatalf("import: want 6 of 19 refused, got %v\n%s", err, out)
		}
		mustContain(t, "the import's summary", out, "13 of 19 bundles imported (51 resources)", "0 already imported, 6 refused", "report of the refused bundles: "+report)
		rep := string(readFile(t, report))

		// the same bundles posted, one after another, to a server of their own
		posted := newInstance(t, "")
		posted.initTenant("praxis", "anna", "pw")
		ref := posted.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", posted.passwordFile("pw"))
		srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
		for _, a := range []struct {
			*importArchive
			source func(name string) string
		}{
			{folder, func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }},
			{archive, func(name string) string { return zipPath + ":" + name }},
		} {
			for _, name := range a.names {
				status, body := ref.do(t, "POST", "/praxis/Bundle", fhirXML, a.bundles[name])
				listed := strings.Contains(rep, "refused "+a.source(name)+"\n")
				if a.refused[name] != (status != http.StatusOK) || listed != a.refused[name] {
					t.Fatalf("%s: POST answers %d, the report lists it: %v, want refused: %v\n%s\n%s", name, status, listed, a.refused[name], body, rep)
				}
				if a.refused[name] {
					section := rep[strings.Index(rep, "refused "+a.source(name)+"\n"):]
					if next := strings.Index(section[1:], "\nrefused "); next >= 0 {
						section = section[:next+2]
					}
					for _, m := range diagnostics.FindAllStringSubmatch(body, -1) {
						mustContain(t, "the report of "+name, section, ": "+html.UnescapeString(m[1])+"\n")
					}
					for _, m := range expression.FindAllStringSubmatch(body, -1) {
						mustContain(t, "the report of "+name, section, " at "+html.UnescapeString(m[1])+": ")
					}
					continue
				}
				for _, m := range regexp.MustCompile(`<location value="([^"]*)/_history/1"/>`).FindAllStringSubmatch(body, -1) {
					_, want := ref.do(t, "GET", "/praxis/"+m[1], "", nil)
					status, got := srv.do(t, "GET", "/praxis/"+m[1], "", nil)
					if status != http.StatusOK || lastUpdated.ReplaceAllString(got, "") != lastUpdated.ReplaceAllString(want, "") {
						t.Fatalf("%s imported reads\n%s\nposted\n%s", m[1], got, want)
					}
				}
			}
		}
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}

		// again: everything imported is skipped, the refused are refused again
		out, err = in.run("import", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), dir, zipPath)
		if err == nil {
			t.Fatalf("the second import refused nothing:\n%s", out)
		}
		mustContain(t, "the second import's summary", out, "0 of 19 bundles imported (0 resources)", "13 already imported, 6 refused", filepath.Join(in.dir, "imports")+string(filepath.Separator))
	})
}

// TestImportConfidentiality imports valid and refused bundles and finds none of their patients'
// names and KVNRs in the raw database, in red's data directory (the report) or in red's output.
func TestImportConfidentiality(t *testing.T) {
	data := loadReadData(t)
	const patients = 20
	var secrets []string
	for i := range patients + 2 { // the refused bundles hold patients 20 and 21
		p := data.patient(i)
		secrets = append(secrets, loadKVNR(i), p.given+" "+p.family)
		if len(p.family) >= 5 {
			secrets = append(secrets, p.family)
		}
	}
	found := func(raw []byte) []string {
		var out []string
		lower := strings.ToLower(string(raw))
		for _, s := range secrets {
			if strings.Contains(string(raw), s) || strings.Contains(lower, hex.EncodeToString([]byte(s))) {
				out = append(out, s)
			}
		}
		return out
	}
	onEachBackend(t, func(t *testing.T, in *instance) {
		a := newImportArchive(t, data, true, 0, patients)
		dir := a.folder(t, filepath.Join(t.TempDir(), "export"))
		all := 0
		for _, b := range a.bundles {
			all += len(found(b))
		}
		if all < len(secrets) {
			t.Fatalf("the check itself finds only %d secrets in the bundles", all)
		}
		out, err := in.run("import", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), dir)
		if err == nil || !strings.Contains(out, "21 of 24 bundles imported") {
			t.Fatalf("import: %v\n%s", err, out)
		}
		if leaked := found([]byte(out + err.Error())); len(leaked) > 0 {
			t.Errorf("red's output holds person data: %v", leaked)
		}
		checked := map[string]bool{}
		_ = filepath.WalkDir(in.dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				checked[filepath.Base(filepath.Dir(path))+"/"+filepath.Ext(path)] = true
				if leaked := found(readFile(t, path)); len(leaked) > 0 {
					t.Errorf("%s holds person data: %v", path, leaked)
				}
			}
			return err
		})
		if !checked["imports/.txt"] || in.dbURL == "" && !checked[filepath.Base(in.dir)+"/.db"] {
			t.Errorf("the report or the database was not checked: %v", checked)
		}
		if in.dbURL != "" {
			postgresLeaks(t, in.dbURL, found)
		}
	})
}

// TestImportBesideServe imports while a running red serve stores the same patients' bundles on
// the same data: batches that lose the race for a resource are prepared and committed again,
// so the import ends without refusals and every resource has one version per bundle stored.
func TestImportBesideServe(t *testing.T) {
	const patients = 40
	data := loadReadData(t)
	onEachBackend(t, func(t *testing.T, in *instance) {
		a := &importArchive{}
		for i := range patients {
			a.add(fmt.Sprintf("akten/%04d.xml", i), data.bundle(i), false)
		}
		dir := a.folder(t, filepath.Join(t.TempDir(), "export"))
		srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
		if status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, data.sharedBundle()); status != http.StatusOK {
			t.Fatal(status, body)
		}
		posted := make(chan int, patients)
		go func() {
			defer close(posted)
			for i := patients - 1; i >= 0; i-- { // from the other end, to meet the import halfway
				status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, data.bundle(i))
				for try := 0; status == http.StatusConflict && try < 5; try++ { // the import was first: send again
					status, body = srv.do(t, "POST", "/praxis/Bundle", fhirXML, data.bundle(i))
				}
				if status != http.StatusOK {
					t.Errorf("POST patient %d: %d\n%s", i, status, body)
					return
				}
				posted <- i
			}
		}()
		out := in.mustRun("import", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--batch", "4", dir)
		mustContain(t, "the import's summary", out, fmt.Sprintf("%d of %d bundles imported", patients, patients), ", 0 refused")
		for range posted {
		}
		for i := range patients {
			pid := loadPatientID(i)
			status, body := srv.do(t, "GET", "/praxis/Patient/"+pid, "", nil)
			if status != http.StatusOK || !strings.Contains(body, `<versionId value="2"/>`) {
				t.Fatalf("Patient %s, stored by red serve and by red import: %d\n%.1000s", pid, status, body)
			}
		}
	})
}

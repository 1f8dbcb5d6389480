//go:build unix

package telematik

import (
	"os"
	"path/filepath"
	"testing"
)

// Whatever filepath a caller sends, a signature lands in the directory for signed PDFs or
// nowhere: never outside it, never over a file that was there.
func FuzzSignedPDFPath(f *testing.F) {
	base := f.TempDir()
	dir, outside := filepath.Join(base, "signed"), filepath.Join(base, "outside")
	for _, d := range []string{dir, outside, filepath.Join(dir, "sub")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			f.Fatal(err)
		}
	}
	// links out of the directory: to a folder, and to a file that does not exist (yet)
	for link, target := range map[string]string{"out": outside, "dangling": filepath.Join(outside, "x")} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "old"), []byte("old"), 0o600); err != nil {
		f.Fatal(err)
	}
	d, err := OpenSignedPDFs(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = d.Close() })
	for _, seed := range []string{"a.p7s", "sub/a.p7s", "../outside/a", "out/a", "dangling", "old", ".", "sub/..", "sub/../../outside/a",
		filepath.Join(dir, "a"), filepath.Join(outside, "a"), dir + "/../outside/a", "/", "", "a\x00b", "sub//./a"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out, refused := d.create(p)
		if refused != "" {
			if out != nil {
				t.Fatalf("%q: refused (%s) with a file", p, refused)
			}
		} else {
			if err := out.save([]byte("signature")); err != nil {
				t.Fatalf("%q: %v", p, err)
			}
			got, err := os.ReadFile(filepath.Join(dir, out.name))
			if err != nil || string(got) != "signature" {
				t.Fatalf("%q: saved as %q, which holds %q (%v)", p, out.name, got, err)
			}
			if err := d.root.Remove(out.name); err != nil {
				t.Fatal(err)
			}
		}
		if es, _ := os.ReadDir(outside); len(es) > 0 {
			t.Fatalf("%q: %s was written outside", p, es[0].Name())
		}
		if old, _ := os.ReadFile(filepath.Join(dir, "old")); string(old) != "old" {
			t.Fatalf("%q: an existing file was overwritten", p)
		}
	})
}

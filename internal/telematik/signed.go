package telematik

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SignedPDFs is the one directory $signpdf may save signatures in (its filepath parameter),
// chosen by the administrator (red serve --signed-pdf-dir). A filepath names a new file in it:
// relative to the directory, or absolute and inside it. Files are opened through an os.Root, so
// neither ".." nor a symbolic link leads out of the directory; an existing file is never
// overwritten, and a new one is readable by red's user only (0600).
type SignedPDFs struct {
	root *os.Root
	dir  string // absolute, as given
	real string // dir with its symbolic links resolved
}

// OpenSignedPDFs opens dir, which must exist, for saving signatures.
func OpenSignedPDFs(dir string) (*SignedPDFs, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	return &SignedPDFs{root: root, dir: abs, real: real}, nil
}

// Dir is the directory's absolute path.
func (d *SignedPDFs) Dir() string { return d.dir }

// Close releases the directory.
func (d *SignedPDFs) Close() error {
	if d == nil {
		return nil
	}
	return d.root.Close()
}

// name turns a filepath into a name below the directory, or says why it cannot be one
// (refused, in words for the caller).
func (d *SignedPDFs) name(p string) (name, refused string) {
	if filepath.IsAbs(p) {
		p = filepath.Clean(p)
		rel, err := filepath.Rel(d.dir, p)
		if err != nil || !filepath.IsLocal(rel) {
			if rel, err = filepath.Rel(d.real, p); err != nil || !filepath.IsLocal(rel) {
				return "", "filepath lies outside the directory for signed PDFs"
			}
		}
		p = rel
	}
	if !filepath.IsLocal(p) {
		return "", "filepath leads out of the directory for signed PDFs"
	}
	if p = filepath.Clean(p); p == "." {
		return "", "filepath names the directory for signed PDFs itself, not a file in it"
	}
	return p, ""
}

// create opens a new file for the signature at filepath p, or says why not (refused, in words
// for the caller).
func (d *SignedPDFs) create(p string) (f *signedFile, refused string) {
	if d == nil {
		return nil, "Saving signatures at filepath is switched off: start red with --signed-pdf-dir DIR to allow it below DIR"
	}
	name, refused := d.name(p)
	if refused != "" {
		return nil, refused
	}
	file, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil, "A file already exists at filepath; red does not overwrite files"
	case errors.Is(err, fs.ErrNotExist):
		return nil, "The folder of filepath does not exist in the directory for signed PDFs"
	case err != nil: // a symbolic link out of the directory, among others
		return nil, "filepath leads out of the directory for signed PDFs or cannot be written"
	}
	return &signedFile{d: d, name: name, f: file}, ""
}

// signedFile is a reserved file: written once with save, or removed with discard.
type signedFile struct {
	d    *SignedPDFs
	name string
	f    *os.File
	done bool
}

func (s *signedFile) save(data []byte) error {
	s.done = true
	_, err := s.f.Write(data)
	if err = errors.Join(err, s.f.Sync(), s.f.Close()); err != nil {
		_ = s.d.root.Remove(s.name)
		return fmt.Errorf("save signature: %w", err)
	}
	return nil
}

// discard removes the file unless it was saved.
func (s *signedFile) discard() {
	if s == nil || s.done {
		return
	}
	_ = s.f.Close()
	_ = s.d.root.Remove(s.name)
}

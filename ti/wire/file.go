package wire

import (
	"os"
	"path/filepath"
)

// WriteFile replaces the file at path with data in one step: it writes a temporary file in the
// same directory with mode perm (state files take 0600), syncs it, renames it over path and
// syncs the directory, so a crash leaves the old or the new content and never a mix. The
// temporary file's name starts with a dot, so directory readers can pass over the leftovers of
// an interrupted write.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // fails harmlessly after the rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

package cli

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// importSource is one bundle to import: a file, or an entry of a zip archive (read in memory,
// never extracted to disk).
type importSource struct {
	name string // the path as given; "archive.zip:dir/entry.xml" for an entry of an archive
	read func(limit int64) ([]byte, error)
}

// importSources lists the bundles under paths in the order they are imported: each path in the
// order given; a folder's *.xml and *.zip files in lexical order, recursively; a zip archive's
// *.xml entries in lexical order. A file named directly is a zip archive when it ends in .zip,
// else one bundle. The archives stay open until close is called.
func importSources(paths []string) (sources []importSource, closeAll func(), err error) {
	var archives []*zip.ReadCloser
	closeAll = func() {
		for _, a := range archives {
			a.Close()
		}
	}
	addZip := func(path string) error {
		a, err := zip.OpenReader(path)
		if err != nil {
			return fmt.Errorf("zip archive %s: %w", path, err)
		}
		archives = append(archives, a)
		var entries []*zip.File
		for _, f := range a.File {
			if f.Mode().IsRegular() && isXML(f.Name) {
				entries = append(entries, f)
			}
		}
		sort.SliceStable(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
		for _, f := range entries {
			sources = append(sources, importSource{name: path + ":" + f.Name, read: zipEntry(f)})
		}
		return nil
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("nothing to import at %s: %w", p, err)
		}
		if !fi.IsDir() {
			if isZip(p) {
				err = addZip(p)
			} else {
				sources = append(sources, importSource{name: p, read: importFile(p)})
			}
		} else {
			err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() || !(isXML(path) || isZip(path)) {
					return nil
				}
				if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() { // a link to a file counts
					return err
				}
				if isZip(path) {
					return addZip(path)
				}
				sources = append(sources, importSource{name: path, read: importFile(path)})
				return nil
			})
		}
		if err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	return sources, closeAll, nil
}

func isXML(name string) bool { return strings.EqualFold(filepath.Ext(name), ".xml") }
func isZip(name string) bool { return strings.EqualFold(filepath.Ext(name), ".zip") }

// errTooLarge says that a bundle has more bytes than a request body may have.
var errTooLarge = errors.New("too large")

// importFile reads a file of at most limit bytes.
func importFile(path string) func(limit int64) ([]byte, error) {
	return func(limit int64) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f, limit)
	}
}

// zipEntry reads an archive's entry of at most limit bytes, whatever its header claims.
func zipEntry(f *zip.File) func(limit int64) ([]byte, error) {
	return func(limit int64) ([]byte, error) {
		if limit > 0 && f.UncompressedSize64 > uint64(limit) {
			return nil, errTooLarge
		}
		r, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return readLimited(r, limit)
	}
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		return io.ReadAll(r)
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, err
}

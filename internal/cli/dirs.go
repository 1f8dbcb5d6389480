package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// defaultDataDir is where red keeps red.db unless --data-dir says otherwise.
func defaultDataDir() string { return userDir("XDG_DATA_HOME", ".local/share", "red") }

// defaultTISimDir is where the TI simulators keep their state unless --ti-sim-dir says
// otherwise: test data of stand-in services, apart from red's data.
func defaultTISimDir() string { return userDir("XDG_STATE_HOME", ".local/state", "red-ti-sim") }

// userDir is name in the XDG base directory xdgVar (home/underHome when unset), or in the
// user's configuration directory on Windows and macOS.
func userDir(xdgVar, underHome, name string) string {
	if d := os.Getenv(xdgVar); d != "" {
		return filepath.Join(d, name)
	}
	switch runtime.GOOS {
	case "windows", "darwin":
		if d, err := os.UserConfigDir(); err == nil {
			return filepath.Join(d, name)
		}
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, filepath.FromSlash(underHome), name)
	}
	return name + "-data"
}

// apartFromData refuses a directory (named by flag) that is red's data directory, lies inside
// it or holds it: what red writes there on a caller's or a simulator's behalf must never touch
// red.db.
func (e *env) apartFromData(flag, dir string) error {
	d, data := resolved(dir), resolved(e.dataDir)
	switch {
	case within(d, data):
		return fmt.Errorf("%s %s lies in red's data directory %s: choose a directory outside it", flag, dir, e.dataDir)
	case within(data, d):
		return fmt.Errorf("red's data directory %s lies in %s %s: choose a directory that does not hold it", e.dataDir, flag, dir)
	}
	return nil
}

// within tells whether path is dir or lies below it (both absolute and clean).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel)
}

// resolved is p made absolute, with the symbolic links of its longest existing part resolved.
func resolved(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	rest := ""
	for d := abs; ; d = filepath.Dir(d) {
		if real, err := filepath.EvalSymlinks(d); err == nil {
			return filepath.Join(real, rest)
		} else if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(d) == d {
			return abs
		}
		rest = filepath.Join(filepath.Base(d), rest)
	}
}

// noticeOldTISim says that the simulators' state of earlier versions, in the data directory,
// is no longer used.
func (e *env) noticeOldTISim() {
	old := filepath.Join(e.dataDir, "ti-sim")
	if fi, err := os.Stat(old); err == nil && fi.IsDir() {
		fmt.Fprintf(e.io.Out, "red: %s (TI simulator state of earlier versions) is no longer used and may be deleted\n", old)
	}
}

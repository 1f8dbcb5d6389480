package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/internal/cli"
)

// refused runs a serving command that must not start, and returns its error.
func (in *instance) refused(t testing.TB, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := cli.Run(ctx, in.serving(append(args, "--port", "0")...), cli.IO{In: strings.NewReader(""), Out: &out, Err: &out})
	if err == nil {
		t.Fatalf("red %s started:\n%s", strings.Join(args, " "), out.String())
	}
	if strings.Contains(out.String(), "listening on") {
		t.Errorf("red %s listened before it failed:\n%s", strings.Join(args, " "), out.String())
	}
	return err
}

// red refuses to start with a --ti-sim-dir or --signed-pdf-dir that is its data directory, lies
// in it or holds it, and with a --signed-pdf-dir that does not exist.
func TestDirectoriesApartFromData(t *testing.T) {
	skipOnWindows(t)
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "pw")
	inside := filepath.Join(in.dir, "sub")
	if err := os.Mkdir(inside, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(in.dir, link); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Dir(in.dir)
	serve := []string{"serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw")}
	for _, c := range []struct {
		name   string
		simDir string
		extra  []string
		want   string
	}{
		{"--ti-sim-dir inside the data directory is refused", filepath.Join(in.dir, "ti-sim"), nil, "--ti-sim-dir " + filepath.Join(in.dir, "ti-sim") + " lies in red's data directory"},
		{"--ti-sim-dir through a link into the data directory is refused", filepath.Join(link, "ti-sim"), nil, "lies in red's data directory"},
		{"--ti-sim-dir holding the data directory is refused", parent, nil, "red's data directory " + in.dir + " lies in --ti-sim-dir"},
		{"--signed-pdf-dir as the data directory is refused", in.simDir, []string{"--signed-pdf-dir", in.dir}, "--signed-pdf-dir " + in.dir + " lies in red's data directory"},
		{"--signed-pdf-dir inside the data directory is refused", in.simDir, []string{"--signed-pdf-dir", inside}, "lies in red's data directory"},
		{"--signed-pdf-dir through a link to the data directory is refused", in.simDir, []string{"--signed-pdf-dir", link}, "lies in red's data directory"},
		{"--signed-pdf-dir holding the data directory is refused", in.simDir, []string{"--signed-pdf-dir", parent}, "red's data directory " + in.dir + " lies in --signed-pdf-dir"},
		{"a missing --signed-pdf-dir is refused", in.simDir, []string{"--signed-pdf-dir", filepath.Join(t.TempDir(), "fehlt")}, "create the directory first"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := entries(t, in.dir)
			sims := *in
			sims.simDir = c.simDir
			err := sims.refused(t, append(serve, c.extra...)...)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("the message lacks %q: %v", c.want, err)
			}
			if after := entries(t, in.dir); after != before {
				t.Errorf("the data directory changed: %s before, %s after", before, after)
			}
		})
	}
	for _, c := range []struct {
		name  string
		setup func(demo *instance) []string // extra flags
		want  string
	}{
		{"demo with --ti-sim-dir in the data directory refuses before creating anything", func(demo *instance) []string {
			demo.simDir = filepath.Join(demo.dir, "ti-sim")
			return nil
		}, "lies in red's data directory"},
		{"demo with --signed-pdf-dir holding the data directory refuses before creating anything", func(demo *instance) []string {
			return []string{"--signed-pdf-dir", filepath.Dir(demo.dir)}
		}, "lies in --signed-pdf-dir"},
	} {
		t.Run(c.name, func(t *testing.T) {
			demo := newInstance(t, "")
			demo.dir = filepath.Join(t.TempDir(), "demo")
			err := demo.refused(t, append([]string{"demo"}, c.setup(demo)...)...)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("the message lacks %q: %v", c.want, err)
			}
			if got := entries(t, demo.dir); got != "absent" {
				t.Errorf("demo created %s", got)
			}
		})
	}
}

// The TI simulators keep their state (ePA documents among it) in a directory of their own, never
// in red's data directory; an old <data-dir>/ti-sim is left alone and named as unused.
func TestTISimState(t *testing.T) {
	serve := func(in *instance) *server {
		in.initTenant("praxis", "anna", "pw")
		return in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	}
	noTISimIn := func(t *testing.T, dir string) {
		t.Helper()
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), "ti-sim") {
				t.Errorf("%s lies in the data directory", path)
			}
			return nil
		})
	}
	hasState := func(t *testing.T, dir string) {
		t.Helper()
		for _, sub := range []string{"pki", "konnektor", "fachdienst", "epa"} {
			if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
				t.Errorf("no simulator state %s in %s: %v", sub, dir, err)
			}
		}
	}

	t.Run("state lies in --ti-sim-dir, none in the data directory", func(t *testing.T) {
		in := newInstance(t, "")
		srv := serve(in)
		_ = srv.stop()
		hasState(t, in.simDir)
		noTISimIn(t, in.dir)
	})
	t.Run("state lies in $XDG_STATE_HOME/red-ti-sim by default", func(t *testing.T) {
		state := t.TempDir()
		t.Setenv("XDG_STATE_HOME", state)
		in := newInstance(t, "")
		in.simDir = ""
		srv := serve(in)
		_ = srv.stop()
		hasState(t, filepath.Join(state, "red-ti-sim"))
		noTISimIn(t, in.dir)
	})
	t.Run("an old ti-sim in the data directory is left and named as unused", func(t *testing.T) {
		in := newInstance(t, "")
		old := filepath.Join(in.dir, "ti-sim", "epa")
		if err := os.MkdirAll(old, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(old, "registry.json"), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		srv := serve(in)
		_ = srv.stop()
		mustContain(t, "output", srv.output.String(), "red: "+filepath.Join(in.dir, "ti-sim")+" (TI simulator state of earlier versions) is no longer used and may be deleted")
		if got := entries(t, filepath.Join(in.dir, "ti-sim")); got != "[epa]" {
			t.Errorf("the old directory changed: %s", got)
		}
		if got := entries(t, old); got != "[registry.json]" {
			t.Errorf("the old directory changed: %s", got)
		}
		hasState(t, in.simDir)
	})
}

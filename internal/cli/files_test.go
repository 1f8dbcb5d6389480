package cli_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func skipOnWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has neither Unix file modes nor symbolic links for everyone")
	}
}

func mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// A password file others may read is refused, saying why and what to do, like ssh its keys.
func TestPasswordFileMode(t *testing.T) {
	skipOnWindows(t)
	for _, c := range []struct {
		name string
		mode os.FileMode
		want string // "" when accepted
	}{
		{"0600 is accepted", 0o600, ""},
		{"0400 is accepted", 0o400, ""},
		{"0640 is refused: readable by its group", 0o640, "is readable by its group (mode 0640); chmod 600 it"},
		{"0644 is refused: readable by others", 0o644, "is readable by others (mode 0644); chmod 600 it"},
		{"0604 is refused: readable by others", 0o604, "is readable by others (mode 0604); chmod 600 it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := newInstance(t, "")
			pw := filepath.Join(t.TempDir(), "pw")
			if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(pw, c.mode); err != nil {
				t.Fatal(err)
			}
			out, err := in.run("init", "--tenant", "praxis", "--user", "anna", "--password-file", pw)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "password file "+pw+" "+c.want) {
				t.Fatalf("want the refusal %q, got %v\n%s", c.want, err, out)
			}
			if got := entries(t, in.dir); got != "[]" {
				t.Errorf("red created %s", got)
			}
			// the new password of passwd is read the same way
			in.initTenant("praxis", "anna", "pw")
			_, err = in.run("passwd", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--new-password-file", pw)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("passwd --new-password-file: want the refusal %q, got %v", c.want, err)
			}
		})
	}
}

// red.db, its -wal and -shm are 0600 also in an existing directory others may read.
func TestDataFileModes(t *testing.T) {
	skipOnWindows(t)
	in := newInstance(t, "")
	if err := os.Chmod(in.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in.initTenant("praxis", "anna", "pw")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	if status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, patientsBundle(t)); status != 200 {
		t.Fatal(status, body)
	}
	for _, f := range []string{"red.db", "red.db-wal", "red.db-shm"} {
		if m := mode(t, filepath.Join(in.dir, f)); m != 0o600 {
			t.Errorf("%s has mode %#o while red serves, want 0600", f, m)
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Join(in.dir, "red.db")); m != 0o600 {
		t.Errorf("red.db has mode %#o, want 0600", m)
	}
}

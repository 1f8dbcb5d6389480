// Package pgtest gives each test a fresh, empty PostgreSQL database, on whatever server the
// machine offers.
//
// The server is chosen once per test binary:
//
//  1. RED_TEST_DATABASE_URL, when set (a test fails if that server does not answer);
//  2. else the server at 127.0.0.1:5432 as user postgres without a password, if it answers
//     (RED_TEST_PG_PROBE=host:port probes another address, RED_TEST_PG_PROBE=off probes none);
//  3. else a throwaway cluster started from the local PostgreSQL binaries (initdb and pg_ctl on
//     PATH or under /usr/lib/postgresql/*/bin), listening on 127.0.0.1 only, on a free port.
//     When the test process runs as root, the cluster runs as the OS user postgres.
//
// When none works the test is skipped, or fails when CI=true.
//
// A package that uses URL should stop a throwaway cluster when its tests are done:
//
//	func TestMain(m *testing.M) {
//		defer pgtest.Stop()
//		m.Run()
//	}
//
// A watchdog process stops the cluster and removes its files as well when the test binary
// ends without calling Stop (a crash, a timeout), but only within a second or two.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	once   sync.Once
	mu     sync.Mutex // guards the variables below once chosen
	server string     // URL of the server to create test databases on; "" when there is none
	reason string     // why there is no server
	strict bool       // a missing server fails the test even outside CI
	pg     *cluster   // the throwaway cluster, if one was started
	halted bool       // Stop was called
)

// URL returns a connection URL to a new, empty database on the chosen server, created for t
// and dropped when t ends (after cleanups registered later, such as closing a store, ran).
func URL(t testing.TB) string {
	t.Helper()
	once.Do(choose)
	mu.Lock()
	srv, why, mustHave := server, reason, strict
	if halted {
		srv, why = "", "pgtest.Stop was called before this test"
	}
	mu.Unlock()
	if srv == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci || mustHave {
			t.Fatalf("pgtest: no PostgreSQL server: %s", why)
		}
		t.Skipf("pgtest: no PostgreSQL server: %s", why)
	}

	var random [8]byte
	_, _ = rand.Read(random[:])
	name := "red_test_" + hex.EncodeToString(random[:])
	if err := admin(srv, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		err := admin(srv, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42601" {
			err = admin(srv, "DROP DATABASE IF EXISTS "+name) // before PostgreSQL 13
		}
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(srv, name)
}

// Stop stops the throwaway cluster, if URL started one, and removes its files. Call it once
// every test of the binary has ended (from TestMain); URL fails after it.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	halted = true
	if pg != nil {
		pg.stop()
		pg = nil
	}
}

// choose picks the server, in the order the package documentation gives.
func choose() {
	mu.Lock()
	defer mu.Unlock()
	if halted {
		return
	}
	if env := os.Getenv("RED_TEST_DATABASE_URL"); env != "" {
		if err := ping(env); err != nil {
			reason, strict = fmt.Sprintf("RED_TEST_DATABASE_URL does not answer: %v", err), true
			return
		}
		server = env
		return
	}
	var why []string
	probe := os.Getenv("RED_TEST_PG_PROBE")
	if probe == "" {
		probe = "127.0.0.1:5432"
	}
	if probe != "off" {
		u := "postgres://postgres@" + probe + "/postgres?sslmode=disable&connect_timeout=5"
		err := ping(u)
		if err == nil {
			server = u
			return
		}
		why = append(why, fmt.Sprintf("nothing answers at %s (%v)", probe, err))
	}
	c, err := startCluster()
	if err != nil {
		why = append(why, fmt.Sprintf("no throwaway cluster (%v)", err))
		reason = strings.Join(why, "; ")
		return
	}
	pg, server = c, c.url
}

// ping connects to the server at u and checks that it answers.
func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// admin runs one statement on the server's maintenance connection.
func admin(srv, statement string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, statement)
	return err
}

// withDatabase points the connection string srv (URL or keyword/value form) at database name.
func withDatabase(srv, name string) string {
	if strings.HasPrefix(srv, "postgres://") || strings.HasPrefix(srv, "postgresql://") {
		if u, err := url.Parse(srv); err == nil {
			u.Path, u.RawPath = "/"+name, ""
			return u.String()
		}
	}
	return srv + " dbname=" + name // a later keyword wins
}

// cluster is a throwaway PostgreSQL cluster under a temporary directory.
type cluster struct {
	root     string   // temporary directory holding data/ and the logs
	bin      string   // directory of initdb, pg_ctl and postgres
	runAs    []string // command prefix that runs a program as the postgres OS user; nil to run directly
	url      string
	watchdog *exec.Cmd
}

// startCluster initialises and starts a cluster listening on a free loopback port.
func startCluster() (*cluster, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "red-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &cluster{root: root, bin: bin}
	if err := c.setUser(); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	data := filepath.Join(root, "data")
	if err := c.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	var lastErr error
	for range 3 { // the free port may be taken before the server binds it
		port, err := freePort()
		if err != nil {
			lastErr = err
			break
		}
		if err := configure(data, port); err != nil {
			lastErr = err
			break
		}
		lastErr = c.run("pg_ctl", "start", "-D", data, "-l", filepath.Join(root, "postgres.log"), "-w", "-t", "60", "-s")
		if lastErr == nil {
			c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			c.startWatchdog()
			if lastErr = ping(c.url); lastErr == nil {
				return c, nil
			}
			c.stop()
			return nil, lastErr
		}
	}
	_ = os.RemoveAll(root)
	return nil, lastErr
}

// setUser arranges for the cluster to run as the postgres OS user when this process is root,
// because initdb and postgres refuse to run as root.
func (c *cluster) setUser() error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root, and initdb refuses root: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if err := os.Chown(c.root, uid, gid); err != nil {
		return err
	}
	if p, err := exec.LookPath("runuser"); err == nil {
		c.runAs = []string{p, "-u", "postgres", "--"}
		return nil
	}
	if p, err := exec.LookPath("su"); err == nil {
		c.runAs = []string{p, "postgres", "-s", "/bin/sh", "-c"} // the command follows as one quoted string
		return nil
	}
	return errors.New("running as root, and neither runuser nor su is there to run initdb as postgres")
}

// run runs one of the cluster's programs, as the postgres OS user when needed, and reports its
// output on failure. Output goes to a file, not a pipe: a server started by pg_ctl must not
// hold a pipe of this process open.
func (c *cluster) run(program string, args ...string) error {
	argv := append([]string{filepath.Join(c.bin, program)}, args...)
	switch {
	case len(c.runAs) > 0 && filepath.Base(c.runAs[0]) == "su":
		argv = append(slices.Clone(c.runAs), shellQuote(argv...))
	case len(c.runAs) > 0:
		argv = append(slices.Clone(c.runAs), argv...)
	}
	out, err := os.CreateTemp("", "red-pgtest-out-")
	if err != nil {
		return err
	}
	defer func() {
		_ = out.Close()
		_ = os.Remove(out.Name())
	}()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.root
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		text, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%s: %w: %s", program, err, strings.TrimSpace(string(text)))
	}
	return nil
}

// startWatchdog starts a shell that waits for this process to end and then stops the server
// and removes the cluster's files, for test binaries that end without calling Stop.
func (c *cluster) startWatchdog() {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return
	}
	script := fmt.Sprintf(`trap '' INT HUP
while kill -0 %d 2>/dev/null; do sleep 1; done
pid=$(head -n 1 %s 2>/dev/null)
if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
	while kill -0 "$pid" 2>/dev/null; do sleep 1; done
fi
rm -rf %s`, os.Getpid(), shellQuote(filepath.Join(c.root, "data", "postmaster.pid")), shellQuote(c.root))
	cmd := exec.Command(sh, "-c", script) // standard streams are /dev/null
	if cmd.Start() == nil {
		c.watchdog = cmd
	}
}

// stop shuts the server down, ends the watchdog and removes the cluster's files.
func (c *cluster) stop() {
	_ = c.run("pg_ctl", "stop", "-D", filepath.Join(c.root, "data"), "-m", "fast", "-w", "-s")
	if c.watchdog != nil {
		_ = c.watchdog.Process.Kill()
		_ = c.watchdog.Wait()
	}
	_ = os.RemoveAll(c.root)
}

// configure makes the cluster listen on 127.0.0.1:port only, without a Unix socket, and trades
// durability for speed.
func configure(data string, port int) error {
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, `
# pgtest
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
`, port)
	return errors.Join(err, f.Close())
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findBinaries returns a directory holding initdb, pg_ctl and postgres: pg_ctl's on PATH
// first, then /usr/lib/postgresql/*/bin, newest version first.
func findBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versions, func(a, b string) int {
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	dirs = append(dirs, versions...)
	for _, dir := range dirs {
		complete := true
		for _, program := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := exec.LookPath(filepath.Join(dir, program)); err != nil {
				complete = false
			}
		}
		if complete {
			return dir, nil
		}
	}
	return "", errors.New("no directory with initdb, pg_ctl and postgres on PATH or under /usr/lib/postgresql/*/bin")
}

// shellQuote joins words into one POSIX shell command line.
func shellQuote(words ...string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

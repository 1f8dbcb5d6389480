package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Red is a red serve started for a load, as its own process, with a fresh tenant in a fresh store.
type Red struct {
	Base   string // http://127.0.0.1:port/tenant
	Tenant string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *Tail
	dir    string
	drop   func() error // drops the throwaway database
}

// redTenant is the tenant (and its user) each load creates.
const redTenant = "load"

var listening = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// StartRed initialises a tenant with red's default key derivation (as a practice would) and
// serves it on a free loopback port: in a temporary embedded store, or — when databaseURL names a
// PostgreSQL server — in a new database on it that Stop drops again.
func StartRed(ctx context.Context, bin, databaseURL string) (_ *Red, err error) {
	dir, err := os.MkdirTemp("", "redload-")
	if err != nil {
		return nil, err
	}
	r := &Red{Tenant: redTenant, dir: dir, log: &Tail{}, exited: make(chan struct{}), drop: func() error { return nil }}
	defer func() {
		if err != nil {
			_ = r.Stop()
		}
	}()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("load-"+randomHex()+"\n"), 0o600); err != nil {
		return nil, err
	}
	global := []string{"--data-dir", filepath.Join(dir, "data")}
	if databaseURL != "" {
		u, drop, err := createDatabase(ctx, databaseURL)
		if err != nil {
			return nil, err
		}
		r.drop = drop
		global = append(global, "--database-url", u)
	}
	cmd := exec.CommandContext(ctx, bin, append(global, "init", "--tenant", redTenant, "--user", redTenant, "--password-file", pw)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("red init: %v\n%s", err, out)
	}

	r.cmd = exec.Command(bin, append(global, "serve", "--tenant", redTenant, "--user", redTenant, "--password-file", pw,
		"--port", "0", "--ti-sim-dir", filepath.Join(dir, "ti-sim"))...)
	r.cmd.Env = append(os.Environ(), "RED_PASSWORD=") // the password file only
	r.cmd.Stderr = r.log                              // a line per request: only the tail is kept
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			_, _ = r.log.Write(append(sc.Bytes(), '\n'))
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		_ = r.cmd.Wait()
		close(r.exited)
	}()
	select {
	case base := <-found:
		r.Base = base + "/" + redTenant
		return r, nil
	case <-r.exited:
		return nil, fmt.Errorf("red serve ended before listening:\n%s", r.log)
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("red serve did not listen within a minute:\n%s", r.log)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Pid is the server's process id.
func (r *Red) Pid() int { return r.cmd.Process.Pid }

// Log is the tail of what the server wrote.
func (r *Red) Log() string { return r.log.String() }

// Stop interrupts the server (it wipes its keys and ends), waits for it, and removes its data.
func (r *Red) Stop() error {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.exited:
		case <-time.After(15 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	}
	return errors.Join(r.drop(), os.RemoveAll(r.dir))
}

// createDatabase creates a database with a random name on the server of serverURL and returns
// its URL and a function that drops it.
func createDatabase(ctx context.Context, serverURL string) (string, func() error, error) {
	name := "red_load_" + randomHex()
	if err := adminExec(ctx, serverURL, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: %w", redact(serverURL), err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() error {
		return adminExec(context.Background(), serverURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// PingPostgres reports whether the PostgreSQL server of serverURL answers.
func PingPostgres(ctx context.Context, serverURL string) error {
	if err := adminExec(ctx, serverURL, "SELECT 1"); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", redact(serverURL), err)
	}
	return nil
}

func adminExec(ctx context.Context, serverURL, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// redact is a URL without its password, for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the database URL"
	}
	return u.Redacted()
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PeakRSS is the peak resident set of process pid (VmHWM) since it started or since the last
// ResetPeakRSS, in bytes (Linux).
func PeakRSS(pid int) (int64, error) { return procStatus(pid, "VmHWM") }

// RSS is the resident set of process pid (VmRSS) in bytes (Linux).
func RSS(pid int) (int64, error) { return procStatus(pid, "VmRSS") }

// procStatus is a field in kB of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// ResetPeakRSS starts process pid's VmHWM afresh from its current resident set (Linux ≥ 4.0;
// an error where that is not allowed: the peak then counts from the process's start).
func ResetPeakRSS(pid int) error {
	return os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0)
}

// CPUTime is the processor time, user and system, that process pid has taken (Linux: /proc counts
// it in ticks of 1/100 s).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// the fields after the command's name, which ends at the last ')': state, …, utime (12th), stime
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, errors.Join(err1, err2)
}

// measured runs run and sets its result's CPU to the processor time process pid took meanwhile
// (left 0 when it cannot be read).
func measured(pid int, run func() (Result, error)) (Result, error) {
	cpu, _ := CPUTime(pid)
	r, err := run()
	if after, cerr := CPUTime(pid); cpu > 0 && cerr == nil {
		r.CPU = after - cpu
	}
	return r, err
}

// LoadAverage is the machine's one-minute load average (Linux; "?" elsewhere).
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// Tail keeps the last 64 KiB written to it (a server's output, for the report when it fails).
type Tail struct {
	mu sync.Mutex
	b  []byte
}

func (l *Tail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if over := len(l.b) - 64<<10; over > 0 {
		l.b = append(l.b[:0], l.b[over:]...)
	}
	return len(p), nil
}

func (l *Tail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

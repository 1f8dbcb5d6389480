package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/term"
)

// passwordSource says where one password comes from: a file, an environment variable, or the
// terminal (without echo; asked twice when confirm is set) — or one line of standard input when
// that is not a terminal.
type passwordSource struct {
	file   string
	envVar string
	prompt string
}

func (e *env) password(src passwordSource, confirm bool) ([]byte, error) {
	if src.file != "" {
		b, err := readPasswordFile(src.file)
		if err != nil {
			return nil, err
		}
		return nonEmpty(bytes.TrimRight(b, "\r\n"))
	}
	if v := os.Getenv(src.envVar); v != "" {
		return []byte(v), nil
	}
	if f, ok := e.io.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		first, err := e.ask(f, src.prompt)
		if err != nil {
			return nil, err
		}
		if confirm {
			again, err := e.ask(f, "Repeat "+src.prompt)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(first, again) {
				return nil, errors.New("the two passwords differ")
			}
		}
		return nonEmpty(first)
	}
	line, err := e.line()
	if err != nil {
		return nil, fmt.Errorf("read password from standard input: %w", err)
	}
	return nonEmpty(line)
}

// readPasswordFile reads a password file that only its owner may read, like ssh its keys: a
// password others can read is no longer the user's secret.
func readPasswordFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o044 != 0 {
		who := "others"
		if perm&0o004 == 0 {
			who = "its group"
		}
		return nil, fmt.Errorf("password file %s is readable by %s (mode %04o); chmod 600 it", path, who, perm)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	return b, nil
}

func (e *env) ask(f *os.File, prompt string) ([]byte, error) {
	fmt.Fprint(e.io.Err, prompt+": ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.io.Err)
	return b, err
}

// line reads one line from standard input, keeping the reader for the next password.
func (e *env) line() ([]byte, error) {
	br, ok := e.io.In.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(e.io.In)
		e.io.In = br
	}
	s, err := br.ReadBytes('\n')
	if err != nil && (err != io.EOF || len(s) == 0) {
		return nil, err
	}
	return bytes.TrimRight(s, "\r\n"), nil
}

func nonEmpty(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("the password is empty")
	}
	return b, nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

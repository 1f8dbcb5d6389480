package cli_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/internal/cli"
)

// countingWriter records what it is given and how many calls gave it.
type countingWriter struct {
	mu    sync.Mutex
	b     bytes.Buffer
	calls int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	return w.b.Write(p)
}

func (w *countingWriter) state() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String(), w.calls
}

func TestLogBatch(t *testing.T) {
	t.Run("writes the lines of concurrent writers whole, each writer's in order, in fewer calls", func(t *testing.T) {
		w := &countingWriter{}
		l := cli.NewLogBatch(w)
		const writers, lines = 8, 500
		var wg sync.WaitGroup
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range lines {
					fmt.Fprintf(l, "writer=%d line=%d %s\n", g, i, strings.Repeat("x", 60))
				}
			}()
		}
		wg.Wait()
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		out, calls := w.state()
		next := make([]int, writers)
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			var g, i int
			if _, err := fmt.Sscanf(line, "writer=%d line=%d", &g, &i); err != nil || i != next[g] || !strings.HasSuffix(line, strings.Repeat("x", 60)) {
				t.Fatalf("line %q: want writer %d's line %d, whole (%v)", line, g, next[g], err)
			}
			next[g]++
		}
		for g, n := range next {
			if n != lines {
				t.Errorf("writer %d: %d lines arrived, want %d", g, n, lines)
			}
		}
		if calls >= writers*lines/10 {
			t.Errorf("%d write calls for %d lines", calls, writers*lines)
		}
	})
	t.Run("writes a line on its own soon after", func(t *testing.T) {
		w := &countingWriter{}
		l := cli.NewLogBatch(w)
		fmt.Fprintln(l, "alone")
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if out, calls := w.state(); out != "" {
				if out != "alone\n" || calls != 1 {
					t.Errorf("%d calls wrote %q", calls, out)
				}
				return
			}
		}
		t.Error("the line was not written")
	})
	t.Run("writes at once when much has gathered", func(t *testing.T) {
		w := &countingWriter{}
		l := cli.NewLogBatch(w)
		big := strings.Repeat("y", 40<<10) + "\n"
		fmt.Fprint(l, big)
		if out, calls := w.state(); out != big || calls != 1 {
			t.Errorf("after a line of 40 KiB: %d calls, %d bytes written", calls, len(out))
		}
	})
}

package cli

import (
	"io"
	"sync"
	"time"
)

// logEvery is how long a log line of red serve waits for others to be written with it.
const logEvery = 5 * time.Millisecond

// logBatch gathers the lines of red serve's log and writes what gathered in one call, logEvery
// after the first, or at once when much has gathered: a line per request written on its own was
// a tenth of the processor time of a read under load (a system call, and waking whoever reads
// the other end).
type logBatch struct {
	w       io.Writer
	mu      sync.Mutex // guards buf and waiting
	buf     []byte
	waiting bool       // a flush is scheduled
	out     sync.Mutex // one write to w at a time, in order
}

// logBatchMax is what gathered lines are written at, without waiting longer.
const logBatchMax = 32 << 10

func newLogBatch(w io.Writer) *logBatch { return &logBatch{w: w} }

func (l *logBatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= logBatchMax
	if !full && !l.waiting {
		l.waiting = true
		time.AfterFunc(logEvery, func() { _ = l.Flush() })
	}
	l.mu.Unlock()
	if full {
		return len(p), l.Flush()
	}
	return len(p), nil
}

// Flush writes what has gathered.
func (l *logBatch) Flush() error {
	l.out.Lock()
	defer l.out.Unlock()
	l.mu.Lock()
	b := l.buf
	l.buf, l.waiting = nil, false
	l.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	_, err := l.w.Write(b)
	return err
}

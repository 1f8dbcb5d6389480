package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// Delivery tunes the deliverer; each zero field takes its default.
type Delivery struct {
	Poll time.Duration // how often the outbox is looked at without a local commit's wake-up (1 s)
	// Lease is how long a workstation holds a subscription's deliveries (15 s): after a crash,
	// another workstation takes over when it ends. It is renewed before a POST that might outlast
	// it, so a Lease shorter than Timeout renews before every POST.
	Lease       time.Duration
	Timeout     time.Duration // one POST, connection to last byte (10 s)
	Backoff     time.Duration // the wait after the first failed attempt, doubled after each (1 s)
	MaxBackoff  time.Duration // the longest wait (5 min)
	MaxFailures int           // failed attempts in a row that put a subscription in error (15: about half an hour)
	Batch       int           // notifications numbered per commit (100)
	Log         *slog.Logger  // nil: nothing is logged
}

func (d Delivery) withDefaults() Delivery {
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&d.Poll, time.Second)
	def(&d.Lease, 15*time.Second)
	def(&d.Timeout, 10*time.Second)
	def(&d.Backoff, time.Second)
	def(&d.MaxBackoff, 5*time.Minute)
	if d.MaxFailures <= 0 {
		d.MaxFailures = 15
	}
	if d.Batch <= 0 {
		d.Batch = 100
	}
	return d
}

// cursor is a subscription's delivery state, one record per subscription: the last sequence
// number given, the last acknowledged, who delivers until when, and the failures.
type cursor struct {
	Seq         int64     `json:"seq"`
	Delivered   int64     `json:"delivered"`
	Holder      string    `json:"holder"`
	LeaseUntil  time.Time `json:"leaseUntil"`
	Failures    int       `json:"failures"`
	NextAttempt time.Time `json:"nextAttempt"`
	LastError   string    `json:"lastError,omitempty"`
	// Error says why deliveries stopped; it holds for the subscription's version ErrorAt and ends
	// with the next version (a client set the subscription active again).
	Error   string `json:"error,omitempty"`
	ErrorAt int64  `json:"errorAt,omitempty"`

	version int64
}

func (c cursor) failed(sub *subscription) bool { return c.Error != "" && c.ErrorAt == sub.version }

func (c cursor) write(id string, now time.Time) (vault.Write, error) {
	body, err := json.Marshal(c)
	return vault.Write{Type: cursorType, ID: id, Expect: c.version, Updated: now, Body: body}, err
}

// cursor reads a subscription's cursor (the zero cursor before its first delivery).
func (s *Service) cursor(ctx context.Context, id string) (cursor, error) {
	r, err := s.Store.Current(ctx, cursorType, id)
	if errors.Is(err, storage.ErrNotFound) {
		return cursor{}, nil
	}
	if err != nil {
		return cursor{}, err
	}
	var c cursor
	if err := json.Unmarshal(r.Body, &c); err != nil {
		return cursor{}, fmt.Errorf("notify: a delivery cursor is unreadable: %w", err)
	}
	c.version = r.Version
	return c, nil
}

// Run delivers until ctx ends: at once after a local commit wrote notifications, else every
// Delivery.Poll (what other workstations wrote, retries).
func (s *Service) Run(ctx context.Context) {
	s.init()
	d := s.Delivery.withDefaults()
	client := s.client(d)
	t := time.NewTicker(d.Poll)
	defer t.Stop()
	for {
		if err := s.round(ctx, d, client); err != nil && ctx.Err() == nil && d.Log != nil && !errors.Is(err, vault.ErrSealed) {
			d.Log.Warn("notify: delivery round failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// round delivers what waits, subscription by subscription.
func (s *Service) round(ctx context.Context, d Delivery, client *http.Client) error {
	waiting, err := s.Store.Find(ctx, vault.Query{Type: notificationType, All: [][]vault.Term{{{Index: queueIndex, Value: anyQueue}}}, Limit: 1})
	if err != nil || waiting.Total == 0 {
		return err
	}
	subs, err := s.current(ctx)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if err := s.deliver(ctx, d, client, sub); err != nil {
			return err
		}
	}
	return nil
}

// deliver sends sub's waiting notifications in order while this workstation holds its lease.
func (s *Service) deliver(ctx context.Context, d Delivery, client *http.Client, sub *subscription) error {
	if sub.Status == statusOff {
		return nil
	}
	cur, err := s.cursor(ctx, sub.ID)
	if err != nil {
		return err
	}
	now := s.now()
	switch {
	case cur.Holder != s.holder && now.Before(cur.LeaseUntil):
		return nil // another workstation delivers
	case cur.failed(sub):
		return nil // in error until reactivated
	case cur.Error != "": // reactivated: resume at once
		cur.Error, cur.ErrorAt, cur.Failures, cur.NextAttempt = "", 0, 0, time.Time{}
	case now.Before(cur.NextAttempt):
		return nil // backing off
	}
	queue, err := s.queue(ctx, sub.ID)
	if err != nil || len(queue) == 0 {
		return err
	}
	// take the lease and number what came since, in one versioned commit
	cur.Holder, cur.LeaseUntil = s.holder, now.Add(d.Lease)
	var writes []vault.Write
	for i := range queue {
		n := &queue[i]
		if n.Seq > 0 {
			continue
		}
		if len(writes) == d.Batch {
			queue = queue[:i]
			break
		}
		cur.Seq++
		n.Seq = cur.Seq
		if n.PatientAt, err = s.patientVersion(ctx, n.Patient); err != nil {
			return err
		}
		w, err := n.write(now)
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	if ok, err := s.commitCursor(ctx, &cur, sub.ID, now, writes...); !ok || err != nil {
		return err
	}
	for i := range writes {
		queue[i+len(queue)-len(writes)].version++
	}
	for i := range queue {
		n := &queue[i]
		if ctx.Err() != nil {
			return nil
		}
		now = s.now()
		if cur.LeaseUntil.Sub(now) < d.Timeout+time.Second {
			cur.LeaseUntil = now.Add(d.Lease)
			if ok, err := s.commitCursor(ctx, &cur, sub.ID, now); !ok || err != nil {
				return err
			}
		}
		n.Attempts++
		failure := s.post(ctx, client, d, sub, n)
		now = s.now()
		if failure != "" {
			cur.Failures++
			cur.LastError = failure
			cur.NextAttempt = now.Add(backoff(d, cur.Failures))
			if cur.Failures >= d.MaxFailures {
				cur.Error, cur.ErrorAt = fmt.Sprintf("%s (%d attempts in a row failed; set the Subscription active again to resume)", failure, cur.Failures), sub.version
			}
			_, err := s.commitCursor(ctx, &cur, sub.ID, now)
			return err
		}
		n.Delivered = now
		cur.Delivered, cur.Failures, cur.LastError, cur.NextAttempt = n.Seq, 0, "", time.Time{}
		cur.LeaseUntil = now.Add(d.Lease)
		w, err := n.write(now)
		if err != nil {
			return err
		}
		if ok, err := s.commitCursor(ctx, &cur, sub.ID, now, w); !ok || err != nil {
			return err
		}
	}
	return nil
}

// commitCursor writes cur with writes, versioned: false when another workstation changed the
// cursor first (it holds the lease now).
func (s *Service) commitCursor(ctx context.Context, cur *cursor, id string, now time.Time, writes ...vault.Write) (bool, error) {
	cw, err := cur.write(id, now)
	if err != nil {
		return false, err
	}
	err = s.Store.Commit(ctx, append(writes, cw))
	if errors.Is(err, storage.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cur.version++
	return true, nil
}

// queue is sub's undelivered notifications in order: the numbered ones by number, then the others
// by the time of their change.
func (s *Service) queue(ctx context.Context, id string) ([]notification, error) {
	page, err := s.Store.Find(ctx, vault.Query{Type: notificationType, All: [][]vault.Term{{{Index: queueIndex, Value: id}}}})
	if err != nil {
		return nil, err
	}
	out := make([]notification, 0, len(page.Resources))
	for _, r := range page.Resources {
		n, err := decodeNotification(r)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b notification) int {
		switch {
		case a.Seq > 0 && b.Seq > 0:
			return int(a.Seq - b.Seq)
		case a.Seq > 0:
			return -1
		case b.Seq > 0:
			return 1
		}
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

func decodeNotification(r vault.Resource) (notification, error) {
	var n notification
	if err := json.Unmarshal(r.Body, &n); err != nil {
		return n, fmt.Errorf("notify: a notification is unreadable: %w", err)
	}
	n.version = r.Version
	return n, nil
}

// patientVersion is the current version of patient ("Patient/id"), 0 for none.
func (s *Service) patientVersion(ctx context.Context, patient string) (int64, error) {
	if len(patient) <= len("Patient/") {
		return 0, nil
	}
	h, err := s.Store.Heads(ctx, []vault.Ref{{Type: "Patient", ID: patient[len("Patient/"):]}})
	if err != nil || h[0].Deleted {
		return 0, err
	}
	return h[0].Version, nil
}

// backoff is the wait after the n-th failure in a row: Backoff doubled n-1 times, at most
// MaxBackoff, with jitter (between half and all of it), so that receivers coming back are not
// hit by every sender at once.
func backoff(d Delivery, n int) time.Duration {
	w := d.Backoff
	for i := 1; i < n && w < d.MaxBackoff; i++ {
		w *= 2
	}
	w = min(w, d.MaxBackoff)
	return w/2 + rand.N(w/2+1)
}

// post sends one notification; it returns why it failed, "" when the endpoint acknowledged it.
// The reason names no person data (it is shown on the Subscription and may be logged).
func (s *Service) post(ctx context.Context, client *http.Client, d Delivery, sub *subscription, n *notification) string {
	body, err := s.payload(ctx, sub, *n)
	if err != nil {
		return "red could not build the notification: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return "the endpoint URL is unusable"
	}
	msgID := "msg_" + n.ID
	ts := strconv.FormatInt(s.now().Unix(), 10)
	sig, err := Sign(sub.Secret, msgID, ts, body)
	if err != nil {
		return "red could not sign the notification"
	}
	req.Header.Set("Content-Type", "application/fhir+xml; charset=UTF-8")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	req.Header.Set("X-Red-Sequence", strconv.FormatInt(n.Seq, 10))
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Sprintf("the endpoint did not answer within %s", d.Timeout)
		}
		return "the endpoint could not be reached"
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Sprintf("the endpoint answered HTTP %d", resp.StatusCode)
	}
	return ""
}

// client is the deliverer's HTTP client: no proxy, no redirects, bounded in time, and able to
// connect to loopback addresses only — except the host names the admin allowed.
func (s *Service) client(d Delivery) *http.Client {
	loopback := &net.Dialer{Timeout: d.Timeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return errors.New("notify: not a loopback address")
		}
		return nil
	}}
	open := &net.Dialer{Timeout: d.Timeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err == nil && slices.Contains(s.Hosts, host) {
				return open.DialContext(ctx, network, addr)
			}
			return loopback.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: d.Timeout,
	}
	return &http.Client{Transport: tr, Timeout: d.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

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
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// Delivery tunes the deliverer; each zero field takes its default.
type Delivery struct {
	Poll time.Duration // how often the outbox is looked at without a local commit's wake-up (1 s)
	// Lease is how long a workstation holds a subscription's deliveries (15 s): after a crash,
	// another workstation takes over when it ends. Each round renews it; a POST is started only
	// while the lease has Timeout (or half the lease) left.
	Lease       time.Duration
	Timeout     time.Duration // one POST, connection to last byte (10 s)
	Backoff     time.Duration // the wait after the first failed attempt, doubled after each (1 s)
	MaxBackoff  time.Duration // the longest wait (5 min)
	MaxFailures int           // failed attempts in a row that put a subscription in error (15: about half an hour)
	Batch       int           // notifications numbered per commit (100)
	Gather      time.Duration // how long a wake-up waits for more commits before a round (10 ms)
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
	def(&d.Gather, 10*time.Millisecond)
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
// Delivery.Poll (what other workstations wrote, retries). Its CPU profile samples carry the label
// role=deliver.
func (s *Service) Run(ctx context.Context) {
	pprof.Do(ctx, pprof.Labels("role", "deliver"), s.run)
}

func (s *Service) run(ctx context.Context) {
	s.init()
	d := s.Delivery.withDefaults()
	r := &rounds{s: s, d: d, client: s.client(d), states: map[string]*state{}}
	t := time.NewTicker(d.Poll)
	defer t.Stop()
	for {
		if err := r.round(ctx); err != nil && ctx.Err() == nil && d.Log != nil && !errors.Is(err, vault.ErrSealed) {
			d.Log.Warn("notify: delivery round failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
			// gather what else is committed meanwhile: under load one round's commit then
			// numbers many notifications
			select {
			case <-ctx.Done():
				return
			case <-time.After(d.Gather):
			}
		}
	}
}

// rounds is the deliverer's memory between rounds.
type rounds struct {
	s      *Service
	d      Delivery
	client *http.Client
	states map[string]*state // by subscription id
}

// state is what this workstation knows of one subscription's delivery.
type state struct {
	id  string // the subscription's
	cur cursor
	// pending are the numbered notifications not yet acknowledged, in order; valid only while
	// cur is this workstation's latest (its version as written here).
	pending []notification
	loaded  bool // pending was read from the store since cur was
	dirty   bool // cur changed here since it was last written
}

// round is one pass: read the cursors that changed elsewhere and the notifications not yet
// numbered, take the leases, number the new notifications and write every cursor that changed —
// all in one commit — then send each subscription's pending notifications in order, the
// subscriptions side by side. What was acknowledged is written with the next round's commit (a
// crash in between repeats it, with the same webhook-id): under load one commit serves many
// notifications of many subscriptions.
func (r *rounds) round(ctx context.Context) error {
	s := r.s
	subs, err := s.current(ctx)
	if err != nil || len(subs) == 0 {
		return err
	}
	if err := r.refresh(ctx, subs); err != nil {
		return err
	}
	fresh, err := r.fresh(ctx, subs)
	if err != nil {
		return err
	}
	now := s.now()
	var writes []vault.Write
	var cursors []*state
	var sending []*subscription
	for _, sub := range subs {
		st := r.states[sub.ID]
		switch {
		case sub.Status == statusOff:
			continue
		case st.cur.Holder != s.holder && now.Before(st.cur.LeaseUntil):
			continue // another workstation delivers
		case st.cur.failed(sub):
			continue // in error until reactivated
		case st.cur.Error != "": // reactivated: resume at once
			st.cur.Error, st.cur.ErrorAt, st.cur.Failures, st.cur.NextAttempt, st.dirty = "", 0, 0, time.Time{}, true
		}
		if now.Before(st.cur.NextAttempt) {
			if st.dirty {
				cursors = append(cursors, st)
			}
			continue // backing off
		}
		if st.cur.Delivered < st.cur.Seq && !st.loaded {
			if st.pending, err = r.numbered(ctx, sub.ID, st.cur); err != nil {
				return err
			}
			st.loaded = true
		}
		news := fresh[sub.ID]
		if len(news) == 0 && len(st.pending) == 0 {
			if st.dirty {
				cursors = append(cursors, st)
			}
			continue
		}
		st.cur.Holder, st.cur.LeaseUntil, st.dirty = s.holder, now.Add(r.d.Lease), true
		news = news[:min(len(news), r.d.Batch)]
		if err := s.pinPatients(ctx, news); err != nil {
			return err
		}
		for _, n := range news {
			st.cur.Seq++
			n.Seq, st.dirty = st.cur.Seq, true
			w, err := n.write(now)
			if err != nil {
				return err
			}
			n.version++
			writes = append(writes, w)
			st.pending = append(st.pending, *n)
		}
		cursors = append(cursors, st)
		sending = append(sending, sub)
	}
	if ok, err := r.commit(ctx, now, cursors, writes); !ok || err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, sub := range sending {
		wg.Go(func() { r.send(ctx, sub, r.states[sub.ID]) })
	}
	wg.Wait()
	// failures are written at once, so that the error shows on read and other workstations back off
	var failed []*state
	for _, sub := range sending {
		if st := r.states[sub.ID]; st.cur.Failures > 0 && st.dirty {
			failed = append(failed, st)
		}
	}
	_, err = r.commit(ctx, s.now(), failed, nil)
	return err
}

// commit writes writes with the cursors of states that changed, versioned; false when another
// workstation changed one of the cursors first: every cursor is read again next round.
func (r *rounds) commit(ctx context.Context, now time.Time, states []*state, writes []vault.Write) (bool, error) {
	var dirty []*state
	for _, st := range states {
		if st.dirty {
			w, err := st.cur.write(st.id, now)
			if err != nil {
				return false, err
			}
			writes = append(writes, w)
			dirty = append(dirty, st)
		}
	}
	if len(writes) == 0 {
		return true, nil
	}
	err := r.s.Store.Commit(ctx, writes)
	if errors.Is(err, storage.ErrConflict) {
		clear(r.states)
		return false, nil
	}
	if err != nil {
		clear(r.states)
		return false, err
	}
	for _, st := range dirty {
		st.cur.version++
		st.dirty = false
	}
	return true, nil
}

// refresh reads the cursors that another workstation wrote since this one last knew them, in
// one round trip for their versions.
func (r *rounds) refresh(ctx context.Context, subs []*subscription) error {
	refs := make([]vault.Ref, len(subs))
	for i, sub := range subs {
		refs[i] = vault.Ref{Type: cursorType, ID: sub.ID}
	}
	heads, err := r.s.Store.Heads(ctx, refs)
	if err != nil {
		return err
	}
	for i, sub := range subs {
		if st := r.states[sub.ID]; st != nil && st.cur.version == heads[i].Version {
			continue
		}
		cur, err := r.s.cursor(ctx, sub.ID)
		if err != nil {
			return err
		}
		r.states[sub.ID] = &state{id: sub.ID, cur: cur}
	}
	return nil
}

// fresh reads the notifications not yet numbered of every subscription, in one query, in order
// by subscription.
func (r *rounds) fresh(ctx context.Context, subs []*subscription) (map[string][]*notification, error) {
	group := make([]vault.Term, 0, len(subs))
	for _, sub := range subs {
		if sub.Status != statusOff {
			group = append(group, vault.Term{Index: queueIndex, Value: sub.ID})
		}
	}
	if len(group) == 0 {
		return nil, nil
	}
	page, err := r.s.Store.Find(ctx, vault.Query{Type: notificationType, All: [][]vault.Term{group}})
	if err != nil {
		return nil, err
	}
	out := map[string][]*notification{}
	for _, res := range page.Resources {
		n, err := decodeNotification(res)
		if err != nil {
			return nil, err
		}
		out[n.Subscription] = append(out[n.Subscription], &n)
	}
	for _, ns := range out {
		slices.SortFunc(ns, func(a, b *notification) int {
			if c := a.At.Compare(b.At); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return out, nil
}

// numbered reads a subscription's numbered notifications not yet acknowledged (after a restart,
// a takeover or a failure), in order.
func (r *rounds) numbered(ctx context.Context, id string, cur cursor) ([]notification, error) {
	var out []notification
	for from := cur.Delivered + 1; from <= cur.Seq; from += MaxEvents {
		group := make([]vault.Term, 0, MaxEvents)
		for n := from; n <= min(cur.Seq, from+MaxEvents-1); n++ {
			group = append(group, vault.Term{Index: seqIndex, Value: seqValue(id, n)})
		}
		page, err := r.s.Store.Find(ctx, vault.Query{Type: notificationType, All: [][]vault.Term{group}})
		if err != nil {
			return nil, err
		}
		for _, res := range page.Resources {
			n, err := decodeNotification(res)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b notification) int { return int(a.Seq - b.Seq) })
	return out, nil
}

// send posts st's pending notifications in order until one fails or the lease runs short.
func (r *rounds) send(ctx context.Context, sub *subscription, st *state) {
	for len(st.pending) > 0 && ctx.Err() == nil {
		now := r.s.now()
		if st.cur.LeaseUntil.Sub(now) < min(r.d.Timeout, r.d.Lease/2) {
			return // the next round renews the lease first
		}
		n := st.pending[0]
		failure := r.s.post(ctx, r.client, r.d, sub, &n)
		if ctx.Err() != nil {
			return
		}
		st.dirty = true
		if failure != "" {
			st.cur.Failures++
			st.cur.LastError = failure
			st.cur.NextAttempt = r.s.now().Add(backoff(r.d, st.cur.Failures))
			if st.cur.Failures >= r.d.MaxFailures {
				st.cur.Error, st.cur.ErrorAt = fmt.Sprintf("%s (%d attempts in a row failed; set the Subscription active again to resume)", failure, st.cur.Failures), sub.version
			}
			return
		}
		st.cur.Delivered, st.cur.Failures, st.cur.LastError, st.cur.NextAttempt = n.Seq, 0, "", time.Time{}
		st.pending = st.pending[1:]
	}
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

// pinPatients pins the current version of the patients of ns that were not written in their
// notification's commit, in one round trip.
func (s *Service) pinPatients(ctx context.Context, ns []*notification) error {
	var refs []vault.Ref
	var which []*notification
	for _, n := range ns {
		if id, ok := strings.CutPrefix(n.Patient, "Patient/"); ok && id != "" && n.PatientAt == 0 {
			refs = append(refs, vault.Ref{Type: "Patient", ID: id})
			which = append(which, n)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	heads, err := s.Store.Heads(ctx, refs)
	if err != nil {
		return err
	}
	for i, h := range heads {
		if !h.Deleted {
			which[i].PatientAt = h.Version
		}
	}
	return nil
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

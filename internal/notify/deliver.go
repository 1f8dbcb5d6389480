package notify

import (
	"bytes"
	"cmp"
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
	Batch       int           // outbox entries numbered per commit (100)
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

// ledger is the state of a tenant's deliveries, one record: who delivers until when, the place
// of the last outbox entry numbered, and each subscription's cursor. Every workstation reads it;
// only the lease's holder writes it, versioned, so a workstation that lost the lease learns so
// at its next commit.
type ledger struct {
	Holder     string             `json:"holder"`
	LeaseUntil time.Time          `json:"leaseUntil"`
	Log        int64              `json:"log"`     // the last outbox entry's place given
	Cursors    map[string]*cursor `json:"cursors"` // by subscription key

	version int64
}

// cursor is a subscription's delivery state: the last sequence number given, the last
// acknowledged, and the failures.
type cursor struct {
	Seq         int64     `json:"seq"`
	Delivered   int64     `json:"delivered"`
	Failures    int       `json:"failures,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	// Error says why deliveries stopped; it holds for the subscription's version ErrorAt and ends
	// with the next version (a client set the subscription active again).
	Error   string `json:"error,omitempty"`
	ErrorAt int64  `json:"errorAt,omitempty"`
}

func (c *cursor) failed(sub *subscription) bool { return c.Error != "" && c.ErrorAt == sub.version }

// cursor is sub's cursor, nil before the deliverer first saw it.
func (l *ledger) cursor(sub *subscription) *cursor { return l.Cursors[sub.key()] }

func (l *ledger) write(now time.Time) (vault.Write, error) {
	body, err := json.Marshal(l)
	return vault.Write{Type: ledgerType, ID: ledgerID, Expect: l.version, Updated: now, Body: body}, err
}

// ledger reads the deliveries' state (an empty one before the first delivery).
func (s *Service) ledger(ctx context.Context) (*ledger, error) {
	l := &ledger{}
	r, err := s.Store.Current(ctx, ledgerType, ledgerID)
	if errors.Is(err, storage.ErrNotFound) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(r.Body, l); err != nil {
		return nil, fmt.Errorf("notify: the delivery ledger is unreadable: %w", err)
	}
	l.version = r.Version
	return l, nil
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
	r := &rounds{s: s, d: d, client: s.client(d), k: &s.desk}
	r.k.mu.Lock()
	r.k.running, r.k.lease, r.k.batch = true, d.Lease, d.Batch
	r.k.mu.Unlock()
	defer func() {
		r.k.mu.Lock()
		r.k.running = false
		r.k.mu.Unlock()
	}()
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
			// numbers many entries
			select {
			case <-ctx.Done():
				return
			case <-time.After(d.Gather):
			}
		}
	}
}

// desk is what this workstation knows of the deliveries, shared by the deliverer and the outbox.
type desk struct {
	mu      sync.Mutex
	running bool          // a deliverer runs here
	lease   time.Duration // its Delivery.Lease
	batch   int           // its Delivery.Batch
	led     *ledger       // as last read or written here; nil: read it again
	dirty   bool          // led changed here since it was last written, to be written soon
	acked   bool          // acknowledgements not yet written: they go with the next write of led
	carried int64         // commits of changes that wrote led (numbered at once)
	// pending are each subscription's numbered notifications not yet acknowledged, in order, by
	// key: those numbered up to upto[key] (a window, read from the store after a restart, a
	// takeover or a long backlog). Valid while led is this workstation's latest.
	pending map[string][]item
	upto    map[string]int64

	// the queue: entries committed without numbers. While one may wait there, no commit is
	// numbered at once (it would overtake it).
	qmu     sync.Mutex
	queuing int   // commits of queued entries under way
	queues  int64 // commits of queued entries begun
	drained bool  // the last round found the queue empty, and no entry was queued since
}

// reset forgets the ledger and what hangs on it: it is read again next round. Under mu.
func (k *desk) reset() {
	k.led, k.dirty, k.acked, k.pending, k.upto = nil, false, false, nil, nil
}

// track adds event i of e, numbered, to the pending notifications of its subscriptions whose
// window reaches it. Under mu.
func (k *desk) track(e *entry) {
	for i, ev := range e.Events {
		for j, key := range ev.Subs {
			seq := ev.Seqs[j]
			if seq > 0 && k.upto[key] == seq-1 && len(k.pending[key]) < maxPending {
				k.pending[key] = append(k.pending[key], item{e, i, j})
				k.upto[key] = seq
			}
		}
	}
}

// assign gives e its place in led's log and the next sequence number of each of its
// subscriptions that led has a cursor of (none: it was deleted meanwhile).
func (l *ledger) assign(e *entry) {
	l.Log++
	e.Log = l.Log
	for i := range e.Events {
		ev := &e.Events[i]
		ev.Seqs = make([]int64, len(ev.Subs))
		for j, key := range ev.Subs {
			if c := l.Cursors[key]; c != nil {
				c.Seq++
				ev.Seqs[j] = c.Seq
			}
		}
	}
}

// clone is a copy of l whose cursors may change without changing l's.
func (l *ledger) clone() *ledger {
	c := *l
	c.Cursors = make(map[string]*cursor, len(l.Cursors))
	for key, cur := range l.Cursors {
		cc := *cur
		c.Cursors[key] = &cc
	}
	return &c
}

// commitEntry commits writes with the outbox entry e. When this workstation delivers and holds
// the ledger, e is numbered at once — after the entries still queued, which are numbered with
// it — and the ledger written in the same commit: the change, its notifications and their
// numbers in one write, and no commit of the deliverer's before it sends. Otherwise (the
// deliverer is busy with the ledger, another workstation delivers, a subscription is new) e is
// queued and numbered by the next round or commit; so it is again when the numbered commit
// conflicts, as the caller's own conflict then recurs.
func (s *Service) commitEntry(ctx context.Context, st Store, writes []vault.Write, e *entry) error {
	k := &s.desk
	now := s.now()
	if err := s.pinPatients(ctx, []*entry{e}); err != nil {
		return err
	}
	if k.mu.TryLock() {
		if done, err := s.commitNumbered(ctx, st, writes, e, now); done {
			k.mu.Unlock()
			if err == nil {
				s.Kick()
			}
			return err
		}
		k.mu.Unlock()
	}
	k.qmu.Lock()
	k.queuing++
	k.queues++
	k.drained = false
	k.qmu.Unlock()
	defer func() {
		k.qmu.Lock()
		k.queuing--
		k.qmu.Unlock()
	}()
	w, err := e.write(now)
	if err != nil {
		return err
	}
	if err := st.Commit(ctx, append(writes[:len(writes):len(writes)], w)); err != nil {
		return err
	}
	s.Kick()
	return nil
}

// commitNumbered tries commitEntry's numbered commit; done is false when e is to be queued
// instead (nothing was written). Under mu.
func (s *Service) commitNumbered(ctx context.Context, st Store, writes []vault.Write, e *entry, now time.Time) (done bool, err error) {
	k := &s.desk
	if !k.running || k.led == nil || k.led.Holder != s.holder {
		return false, nil
	}
	for _, ev := range e.Events {
		for _, key := range ev.Subs {
			if k.led.Cursors[key] == nil {
				return false, nil // a subscription the deliverer has not seen yet
			}
		}
	}
	led := k.led.clone()
	k.qmu.Lock()
	drained, queues, queuing := k.drained, k.queues, k.queuing
	k.qmu.Unlock()
	var fresh []*entry
	if !drained {
		all := false
		if fresh, all, err = s.fresh(ctx, k.batch); err != nil || !all {
			return false, nil // the round numbers them
		}
		if err := s.pinPatients(ctx, fresh); err != nil {
			return false, nil
		}
	}
	numbered := append(fresh, e)
	out := slices.Clip(writes)
	for _, q := range numbered {
		led.assign(q)
		w, err := q.write(now)
		if err != nil {
			return true, err
		}
		out = append(out, w)
	}
	led.Holder, led.LeaseUntil = s.holder, now.Add(k.lease)
	lw, err := led.write(now)
	if err != nil {
		return true, err
	}
	err = st.Commit(ctx, append(out, lw))
	if err == nil {
		led.version++
		k.led, k.dirty, k.acked = led, false, false
		k.carried++
		for _, q := range numbered {
			q.version++
			k.track(q)
		}
		if !drained {
			k.qmu.Lock()
			if k.queuing == 0 && queuing == 0 && k.queues == queues {
				k.drained = true
			}
			k.qmu.Unlock()
		}
		return true, nil
	}
	// the ledger is read again unless it is known that the caller's writes conflicted
	if h, herr := s.Store.Heads(ctx, []vault.Ref{{Type: ledgerType, ID: ledgerID}}); !errors.Is(err, storage.ErrConflict) || herr != nil || h[0].Version != k.led.version {
		k.reset()
	}
	if !errors.Is(err, storage.ErrConflict) {
		return true, err
	}
	e.Log = 0
	for i := range e.Events {
		e.Events[i].Seqs = nil
	}
	return false, nil
}

// rounds is the deliverer.
type rounds struct {
	s       *Service
	d       Delivery
	client  *http.Client
	k       *desk
	carried int64 // desk.carried at the last round
}

// item is one pending notification: event i of e for the subscription e.Events[i].Subs[j].
type item struct {
	e    *entry
	i, j int
}

func (it item) seq() int64 { return it.e.Events[it.i].Seqs[it.j] }

// round is one pass: read the ledger when another workstation wrote it; holding (or taking) the
// lease, number the outbox entries queued since — one place in the log each, and for each
// subscription it is for the next sequence number — and write them with the ledger, in one
// commit; then send each subscription's pending notifications in order, the subscriptions side
// by side. What was acknowledged is written with the next commit of the ledger (a crash in
// between repeats it, with the same webhook-id): under load one commit serves many
// notifications of many subscriptions.
func (r *rounds) round(ctx context.Context) error {
	s, k := r.s, r.k
	subs, err := s.current(ctx)
	if err != nil || len(subs) == 0 {
		return err
	}
	h, err := s.Store.Heads(ctx, []vault.Ref{{Type: ledgerType, ID: ledgerID}})
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.led == nil || k.led.version != h[0].Version {
		k.reset()
		led, err := s.ledger(ctx)
		if err != nil {
			return err
		}
		k.led, k.pending, k.upto = led, map[string][]item{}, map[string]int64{}
		for key, c := range led.Cursors {
			k.upto[key] = c.Delivered
		}
	}
	led := k.led
	now := s.now()
	if led.Holder != s.holder && now.Before(led.LeaseUntil) {
		return nil // another workstation delivers
	}
	if led.Cursors == nil {
		led.Cursors = map[string]*cursor{}
	}
	// a cursor for every subscription, none for those deleted
	live := make(map[string]bool, len(subs))
	for _, sub := range subs {
		key := sub.key()
		live[key] = true
		c := led.Cursors[key]
		switch {
		case c == nil:
			led.Cursors[key], k.upto[key], k.dirty = &cursor{}, 0, true
		case sub.Status != statusOff && c.Error != "" && !c.failed(sub): // reactivated: resume at once
			c.Error, c.ErrorAt, c.Failures, c.NextAttempt, k.dirty = "", 0, 0, time.Time{}, true
		}
	}
	for key := range led.Cursors {
		if !live[key] {
			delete(led.Cursors, key)
			delete(k.pending, key)
			delete(k.upto, key)
			k.dirty = true
		}
	}
	k.qmu.Lock()
	queues, queuing := k.queues, k.queuing
	k.qmu.Unlock()
	fresh, all, err := s.fresh(ctx, r.d.Batch)
	if err != nil {
		return err
	}
	writes, err := r.number(ctx, fresh, now)
	if err != nil {
		return err
	}
	var sending []*subscription
	for _, sub := range subs {
		c := led.Cursors[sub.key()]
		if sub.Status != statusOff && !c.failed(sub) && !now.Before(c.NextAttempt) && c.Delivered < c.Seq {
			sending = append(sending, sub)
		}
	}
	// the lease is taken with any write of the ledger and renewed when half of it is gone
	// (commits numbered at once renew it too)
	if (len(writes) > 0 || len(sending) > 0 || k.dirty) && (led.Holder != s.holder || led.LeaseUntil.Sub(now) < r.d.Lease/2) {
		led.Holder, led.LeaseUntil, k.dirty = s.holder, now.Add(r.d.Lease), true
	}
	// acknowledgements alone wait while commits of changes write the ledger anyway
	quiet := k.carried == r.carried
	r.carried = k.carried
	if len(writes) > 0 || k.dirty || k.acked && quiet {
		if ok, err := r.commit(ctx, now, writes); !ok || err != nil {
			return err
		}
	}
	if all { // the queue is empty unless a queued commit began meanwhile
		k.qmu.Lock()
		if k.queuing == 0 && queuing == 0 && k.queues == queues {
			k.drained = true
		}
		k.qmu.Unlock()
	}
	if len(sending) == 0 {
		return nil
	}
	work := make([][]item, len(sending))
	for n, sub := range sending {
		if err := r.load(ctx, sub.key()); err != nil {
			return err
		}
		work[n] = k.pending[sub.key()]
	}
	// send without the lock: meanwhile the outbox may number more and write the ledger
	leaseUntil := led.LeaseUntil
	k.mu.Unlock()
	results := make([]result, len(sending))
	var wg sync.WaitGroup
	for n, sub := range sending {
		wg.Go(func() { results[n] = r.send(ctx, sub, work[n], leaseUntil) })
	}
	wg.Wait()
	k.mu.Lock()
	if k.led == nil || k.led.Holder != s.holder {
		return nil // the ledger was lost meanwhile: what was sent goes again (at least once)
	}
	// failures are written at once, so that the error shows on read and other workstations back off
	failed := false
	for n, sub := range sending {
		key, res := sub.key(), results[n]
		c := k.led.Cursors[key]
		if c == nil {
			continue
		}
		if res.sent > 0 {
			k.pending[key] = k.pending[key][res.sent:]
			c.Delivered, c.Failures, c.LastError, c.NextAttempt, k.acked = res.delivered, 0, "", time.Time{}, true
		}
		if res.failure != "" {
			c.Failures++
			c.LastError = res.failure
			c.NextAttempt = s.now().Add(backoff(r.d, c.Failures))
			if c.Failures >= r.d.MaxFailures {
				c.Error, c.ErrorAt = fmt.Sprintf("%s (%d attempts in a row failed; set the Subscription active again to resume)", res.failure, c.Failures), sub.version
			}
			failed, k.dirty = true, true
		}
	}
	if !failed {
		return nil
	}
	_, err = r.commit(ctx, s.now(), nil)
	return err
}

// number numbers the fresh entries and returns their writes; the ledger is written with them.
// Under mu.
func (r *rounds) number(ctx context.Context, fresh []*entry, now time.Time) ([]vault.Write, error) {
	if len(fresh) == 0 {
		return nil, nil
	}
	if err := r.s.pinPatients(ctx, fresh); err != nil {
		return nil, err
	}
	writes := make([]vault.Write, 0, len(fresh))
	for _, e := range fresh {
		r.k.led.assign(e)
		r.k.track(e)
		w, err := e.write(now)
		if err != nil {
			return nil, err
		}
		e.version++
		writes = append(writes, w)
	}
	r.k.dirty = true
	return writes, nil
}

// maxPending caps the notifications of one subscription held in memory; more are read from the
// store as the first are delivered.
const maxPending = 1000

// commit writes writes with the ledger when it changed, versioned; false when another
// workstation wrote the ledger first: it is read again next round. Under mu.
func (r *rounds) commit(ctx context.Context, now time.Time, writes []vault.Write) (bool, error) {
	k := r.k
	wrote := k.dirty || k.acked
	if wrote {
		w, err := k.led.write(now)
		if err != nil {
			return false, err
		}
		writes = append(writes, w)
	}
	if len(writes) == 0 {
		return true, nil
	}
	err := r.s.Store.Commit(ctx, writes)
	if errors.Is(err, storage.ErrConflict) {
		k.reset()
		return false, nil
	}
	if err != nil {
		k.reset()
		return false, err
	}
	if wrote {
		k.led.version++
		k.dirty, k.acked = false, false
	}
	return true, nil
}

// fresh reads the queued outbox entries, in the order of their changes, at most batch; all
// tells that there were no more.
func (s *Service) fresh(ctx context.Context, batch int) (fresh []*entry, all bool, err error) {
	page, err := s.Store.Find(ctx, vault.Query{Type: entryType, All: [][]vault.Term{{{Index: queueIndex, Value: queued}}}})
	if err != nil {
		return nil, false, err
	}
	out := make([]*entry, 0, len(page.Resources))
	for _, res := range page.Resources {
		e, err := decodeEntry(res)
		if err != nil {
			return nil, false, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out[:min(len(out), batch)], len(out) <= batch, nil
}

// load reads the pending notifications of the subscription key from the store when none are in
// memory but some are numbered and not acknowledged (after a restart, a takeover, a long
// backlog): the next window of them. Under mu.
func (r *rounds) load(ctx context.Context, key string) error {
	k := r.k
	c := k.led.Cursors[key]
	if len(k.pending[key]) > 0 || c.Delivered >= c.Seq {
		return nil
	}
	upto := min(c.Seq, c.Delivered+maxPending)
	items, err := r.s.numbered(ctx, key, c.Delivered+1, upto)
	if err != nil {
		return err
	}
	k.pending[key], k.upto[key] = items, upto
	return nil
}

// numbered reads the notifications from and to the sequence numbers of the subscription key, in
// order.
func (s *Service) numbered(ctx context.Context, key string, from, to int64) ([]item, error) {
	var out []item
	for ; from <= to; from += MaxEvents {
		group := make([]vault.Term, 0, MaxEvents)
		for n := from; n <= min(to, from+MaxEvents-1); n++ {
			group = append(group, vault.Term{Index: seqIndex, Value: seqValue(key, n)})
		}
		page, err := s.Store.Find(ctx, vault.Query{Type: entryType, All: [][]vault.Term{group}})
		if err != nil {
			return nil, err
		}
		for _, res := range page.Resources {
			e, err := decodeEntry(res)
			if err != nil {
				return nil, err
			}
			for i, ev := range e.Events {
				for j, k := range ev.Subs {
					if k == key && j < len(ev.Seqs) && ev.Seqs[j] >= from && ev.Seqs[j] <= to {
						out = append(out, item{e, i, j})
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b item) int { return cmp.Compare(a.seq(), b.seq()) })
	return out, nil
}

// result is what one subscription's sending did.
type result struct {
	sent      int    // notifications acknowledged
	delivered int64  // the last one's sequence number
	failure   string // why the next failed, "" when none did
}

// send posts the pending notifications in order until one fails or the lease runs short.
func (r *rounds) send(ctx context.Context, sub *subscription, pending []item, leaseUntil time.Time) result {
	var res result
	for _, it := range pending {
		if ctx.Err() != nil {
			break
		}
		if leaseUntil.Sub(r.s.now()) < min(r.d.Timeout, r.d.Lease/2) {
			break // the next round renews the lease first
		}
		n := it.e.notification(it.i, it.j)
		failure := r.s.post(ctx, r.client, r.d, sub, &n)
		if ctx.Err() != nil {
			break
		}
		if failure != "" {
			res.failure = failure
			break
		}
		res.sent++
		res.delivered = n.Seq
	}
	return res
}

// pinPatients pins the current version of the patients of the entries' events that were not
// written in their entry's commit, in one round trip.
func (s *Service) pinPatients(ctx context.Context, es []*entry) error {
	var refs []vault.Ref
	var which []*event
	for _, e := range es {
		for i := range e.Events {
			ev := &e.Events[i]
			if id, ok := strings.CutPrefix(ev.Patient, "Patient/"); ok && id != "" && ev.PatientAt == 0 {
				refs = append(refs, vault.Ref{Type: "Patient", ID: id})
				which = append(which, ev)
			}
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
		MaxIdleConnsPerHost:   64, // a round posts to every subscription at once, often on one host
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: d.Timeout,
	}
	return &http.Client{Transport: tr, Timeout: d.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

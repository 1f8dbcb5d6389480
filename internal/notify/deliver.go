package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// Delivery tunes the deliverer; each zero field takes its default.
type Delivery struct {
	Poll time.Duration // how often the outbox is looked at without a local commit's wake-up (1 s)
	// Lease is how long a workstation holds the tenant's deliveries (15 s): after a crash,
	// another workstation takes over when it ends. It is renewed when half of it is gone; a POST
	// is started, and notifications are numbered, only while the lease has Timeout (or half the
	// lease) left.
	Lease       time.Duration
	Timeout     time.Duration // one POST, connection to last byte (10 s)
	Backoff     time.Duration // the wait after the first failed attempt, doubled after each (1 s)
	MaxBackoff  time.Duration // the longest wait (5 min)
	MaxFailures int           // failed attempts in a row that put a subscription in error (15: about half an hour)
	Batch       int           // outbox entries numbered into one segment of the log, and segments pruned per commit (100)
	// Gather is how long a wake-up waits for more commits before a round (10 ms); a round's
	// commit waits up to carryWait times as long for a change's commit to go with.
	Gather time.Duration
	// Acks is how long acknowledgements may wait for the ledger's next write (1 s): after a
	// crash, what was acknowledged in that time is sent again (with the same webhook-id).
	Acks time.Duration
	// Keep is how long delivered notifications stay for $events (7 days; red serve
	// --notify-keep); Prune how often the pruner runs (1 min).
	Keep  time.Duration
	Prune time.Duration
	Log   *slog.Logger // nil: nothing is logged
}

// Retention is how long delivered notifications are kept by default.
const Retention = 7 * 24 * time.Hour

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
	def(&d.Gather, 10*time.Millisecond)
	def(&d.Acks, time.Second)
	def(&d.Keep, Retention)
	def(&d.Prune, time.Minute)
	if d.MaxFailures <= 0 {
		d.MaxFailures = 15
	}
	if d.Batch <= 0 {
		d.Batch = 100
	}
	return d
}

// ledger is the state of a tenant's deliveries, one record: who delivers until when, the
// extent of the log, and each subscription's cursor. Every workstation reads it; only the
// lease's holder writes it, versioned, so a workstation that lost the lease learns so at its
// next write.
type ledger struct {
	Holder     string    `json:"holder"`
	LeaseUntil time.Time `json:"leaseUntil"`
	// Segments is the log's last segment as of this write (later ones may have been written
	// since); Oldest the first kept (0: none was pruned).
	Segments int64              `json:"segments,omitempty"`
	Oldest   int64              `json:"oldest,omitempty"`
	Cursors  map[string]*cursor `json:"cursors"` // by subscription key

	version int64
}

// cursor is a subscription's delivery state: the last sequence number given (as of the
// ledger's write: the log's last segment knows later ones), the last acknowledged, and the
// failures.
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

// ledger reads the deliveries' state (an empty one before the first delivery).
func (s *Service) ledger(ctx context.Context) (*ledger, error) {
	l := &ledger{Cursors: map[string]*cursor{}}
	r, err := s.Store.Current(ctx, ledgerType, ledgerID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && r.Deleted) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	if err := decode(r, l, "the delivery ledger"); err != nil {
		return nil, err
	}
	if l.Cursors == nil {
		l.Cursors = map[string]*cursor{}
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
	r := &rounds{s: s, d: d, client: s.client(d), former: true}
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
			// gather what else is committed meanwhile: under load one round numbers many
			// commits' notifications in one segment
			select {
			case <-ctx.Done():
				return
			case <-time.After(d.Gather):
			}
		}
	}
}

// rounds is the deliverer and what it knows of the deliveries. Its fields hold while led is the
// ledger's latest version; reset forgets them.
type rounds struct {
	s      *Service
	d      Delivery
	client *http.Client

	led  *ledger          // as last read or written here; nil: read it again
	last int64            // the log's last segment
	upto map[string]int64 // each subscription's last sequence number given
	// pending are each subscription's numbered notifications not yet acknowledged, in order:
	// those numbered up to window[key] (read from the log after a restart, a takeover or a long
	// backlog, else added as they are numbered).
	pending map[string][]item
	window  map[string]int64
	dirty   bool      // led changed here and must be written this round
	acked   bool      // acknowledgements not yet written
	wrote   time.Time // when led was last written here
	pruned  time.Time // when the pruner last ran
	former  bool      // records of the former layout were found, or not looked for yet
}

// reset forgets the ledger and what hangs on it: it is read again next round.
func (r *rounds) reset() { r.led = nil }

// load reads the ledger and finds the log's last segment.
func (r *rounds) load(ctx context.Context) error {
	led, err := r.s.ledger(ctx)
	if err != nil {
		return err
	}
	last, g, err := r.s.head(ctx, led.Segments)
	if err != nil {
		return err
	}
	r.led, r.last, r.dirty, r.acked = led, last, false, false
	r.upto, r.pending, r.window = map[string]int64{}, map[string][]item{}, map[string]int64{}
	for key, c := range led.Cursors {
		r.upto[key], r.window[key] = c.Seq, c.Delivered
		if g != nil {
			r.upto[key] = max(c.Seq, g.Upto[key])
		}
	}
	return nil
}

// round is one pass: read the ledger when another workstation wrote it; holding (or taking) the
// lease, number the outbox entries committed since into the next segment of the log, in one
// commit; then send each subscription's pending notifications in order, the subscriptions side
// by side; and now and then prune what retention lets go.
func (r *rounds) round(ctx context.Context) error {
	s := r.s
	subs, err := s.current(ctx)
	if err != nil {
		return err
	}
	h, err := s.Store.Heads(ctx, []vault.Ref{{Type: ledgerType, ID: ledgerID}})
	if err != nil {
		return err
	}
	if r.led == nil || r.led.version != h[0].Version {
		if err := r.load(ctx); err != nil {
			return err
		}
	}
	led := r.led
	now := s.now()
	if led.Holder != s.holder && now.Before(led.LeaseUntil) {
		return nil // another workstation delivers
	}
	// a cursor for every subscription, none for those deleted
	live := make(map[string]bool, len(subs))
	for _, sub := range subs {
		key := sub.key()
		live[key] = true
		c := led.Cursors[key]
		switch {
		case c == nil:
			led.Cursors[key], r.window[key], r.dirty = &cursor{Seq: r.upto[key]}, r.upto[key], true
		case sub.Status != statusOff && c.Error != "" && !c.failed(sub): // reactivated: resume at once
			c.Error, c.ErrorAt, c.Failures, c.NextAttempt, r.dirty = "", 0, 0, time.Time{}, true
		}
	}
	for key := range led.Cursors {
		if !live[key] {
			delete(led.Cursors, key)
			delete(r.pending, key)
			delete(r.window, key)
			delete(r.upto, key)
			r.dirty = true
		}
	}
	fresh, err := s.queued(ctx)
	if err != nil {
		return err
	}
	// the lease is taken with the round's write when there is work, and renewed when half of it
	// is gone: numbering and sending happen with at least half of it left
	if (len(fresh) > 0 || r.dirty || r.due(subs, now) || r.prunable(now)) && (led.Holder != s.holder || led.LeaseUntil.Sub(now) < r.d.Lease/2) {
		led.Holder, led.LeaseUntil, r.dirty = s.holder, now.Add(r.d.Lease), true
	}
	writes, err := r.number(ctx, fresh, now)
	if err != nil {
		r.reset()
		return err
	}
	// acknowledgements wait for the ledger's next write, at most Acks, less when all is quiet
	ack := r.acked && (len(writes) == 0 || now.Sub(r.wrote) >= r.d.Acks)
	if len(writes) > 0 || r.dirty || ack {
		if ok, err := r.commit(ctx, now, writes, r.dirty || ack, true); !ok || err != nil {
			return err
		}
	}
	if r.due(subs, now) {
		if err := r.send(ctx, subs, now); err != nil || r.led == nil {
			return err
		}
		if r.due(subs, s.now()) {
			s.Kick() // sending stopped short of the lease's end or of the window: go on at once
		}
	}
	return r.prune(ctx, now)
}

// sending are the subscriptions with notifications to send at now.
func (r *rounds) sending(subs []*subscription, now time.Time) []*subscription {
	var out []*subscription
	for _, sub := range subs {
		c := r.led.Cursors[sub.key()]
		if sub.Status != statusOff && !c.failed(sub) && !now.Before(c.NextAttempt) && c.Delivered < r.upto[sub.key()] {
			out = append(out, sub)
		}
	}
	return out
}

// due reports whether any subscription has notifications to send at now.
func (r *rounds) due(subs []*subscription, now time.Time) bool { return len(r.sending(subs, now)) > 0 }

// margin is the lease a POST needs left.
func (r *rounds) margin() time.Duration { return min(r.d.Timeout, r.d.Lease/2) }

// queued reads the outbox entries waiting to be numbered (every one there is), in the order of
// their changes.
func (s *Service) queued(ctx context.Context) ([]*entry, error) {
	out, err := findAll(ctx, s.Store, vault.Query{Type: entryType}, decodeEntry)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *entry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// number gives the fresh entries' notifications their sequence numbers — those for
// subscriptions deleted meanwhile are dropped — and returns the writes: the entries as the next
// segments of the log (Batch entries each), and the entries forgotten. They are tracked as
// pending at once; a failed commit resets it all.
func (r *rounds) number(ctx context.Context, fresh []*entry, now time.Time) ([]vault.Write, error) {
	if len(fresh) == 0 {
		return nil, nil
	}
	if err := r.s.pinPatients(ctx, fresh); err != nil {
		return nil, err
	}
	writes := make([]vault.Write, 0, len(fresh)+1)
	var g *segment
	for _, e := range fresh {
		writes = append(writes, vault.Write{Type: entryType, ID: e.ID, Expect: e.version, Updated: now, Deleted: true, Forget: true})
		evs := e.Events[:0]
		for _, ev := range e.Events {
			subs := ev.Subs[:0]
			for _, key := range ev.Subs {
				if r.led.Cursors[key] != nil {
					subs = append(subs, key)
				}
			}
			if len(subs) > 0 {
				ev.Subs, ev.Seqs = subs, make([]int64, len(subs))
				for j, key := range subs {
					r.upto[key]++
					ev.Seqs[j] = r.upto[key]
				}
				evs = append(evs, ev)
			}
		}
		if len(evs) == 0 {
			continue
		}
		e.Events = evs
		if g == nil {
			r.last++
			g = &segment{N: r.last}
		}
		g.Entries = append(g.Entries, *e)
		if len(g.Entries) == r.d.Batch {
			w, err := r.complete(g, now)
			if err != nil {
				return nil, err
			}
			writes, g = append(writes, w), nil
		}
	}
	if g != nil {
		w, err := r.complete(g, now)
		if err != nil {
			return nil, err
		}
		writes = append(writes, w)
	}
	return writes, nil
}

// complete completes segment g (every subscription's last number) and tracks its notifications.
func (r *rounds) complete(g *segment, now time.Time) (vault.Write, error) {
	g.Upto = make(map[string]int64, len(r.upto))
	for key, seq := range r.upto {
		if seq > 0 {
			g.Upto[key] = seq
		}
	}
	for n := range g.Entries {
		e := &g.Entries[n]
		for i, ev := range e.Events {
			for j, key := range ev.Subs {
				if seq := ev.Seqs[j]; r.window[key] == seq-1 && len(r.pending[key]) < maxPending {
					r.pending[key] = append(r.pending[key], item{e, i, j})
					r.window[key] = seq
				}
			}
		}
	}
	return g.write(now)
}

// carryWait is how many Delivery.Gather a round's commit waits to be carried by a change's
// commit, when changes were committed here that recently.
const carryWait = 4

// maxPending caps the notifications of one subscription held in memory; more are read from the
// log as the first are delivered.
const maxPending = 1000

// commit writes writes, with the ledger when withLedger (versioned, keeping no earlier
// version) — carried by a change's commit when carried (Service.write); false when another
// workstation wrote first: all is read again next round.
func (r *rounds) commit(ctx context.Context, now time.Time, writes []vault.Write, withLedger, carried bool) (bool, error) {
	led := r.led
	if withLedger {
		led.Segments = r.last
		for key, c := range led.Cursors {
			c.Seq = r.upto[key]
		}
		body, err := json.Marshal(led)
		if err != nil {
			return false, err
		}
		writes = append(writes, vault.Write{Type: ledgerType, ID: ledgerID, Expect: led.version, Updated: now, Body: body, Forget: true})
	}
	var err error
	if carried {
		err = r.s.write(ctx, writes, carryWait*r.d.Gather)
	} else {
		err = r.s.Store.Commit(ctx, writes)
	}
	if err != nil {
		r.reset()
		if errors.Is(err, storage.ErrConflict) {
			return false, nil
		}
		return false, err
	}
	if withLedger {
		led.version++
		r.dirty, r.acked, r.wrote = false, false, now
	}
	return true, nil
}

// send posts the pending notifications of the subscriptions, side by side, each's in order, and
// notes what was acknowledged; failures are written at once, so that the error shows on read
// and other workstations back off.
func (r *rounds) send(ctx context.Context, subs []*subscription, now time.Time) error {
	sending := r.sending(subs, now)
	work := make([][]item, len(sending))
	for n, sub := range sending {
		if err := r.fill(ctx, sub.key()); err != nil {
			return err
		}
		work[n] = r.pending[sub.key()]
	}
	leaseUntil := r.led.LeaseUntil
	results := make([]result, len(sending))
	var wg sync.WaitGroup
	for n, sub := range sending {
		wg.Go(func() { results[n] = r.post(ctx, sub, work[n], leaseUntil) })
	}
	wg.Wait()
	failed := false
	for n, sub := range sending {
		key, res := sub.key(), results[n]
		c := r.led.Cursors[key]
		if res.sent > 0 {
			r.pending[key] = r.pending[key][res.sent:]
			c.Delivered, c.Failures, c.LastError, c.NextAttempt, r.acked = res.delivered, 0, "", time.Time{}, true
		}
		if res.failure != "" {
			c.Failures++
			c.LastError = res.failure
			c.NextAttempt = r.s.now().Add(backoff(r.d, c.Failures))
			if c.Failures >= r.d.MaxFailures {
				c.Error, c.ErrorAt = fmt.Sprintf("%s (%d attempts in a row failed; set the Subscription active again to resume)", res.failure, c.Failures), sub.version
			}
			failed = true
		}
	}
	if !failed {
		return nil
	}
	_, err := r.commit(ctx, r.s.now(), nil, true, false)
	return err
}

// fill reads the pending notifications of the subscription key from the log when none are in
// memory but some are numbered and not acknowledged (after a restart, a takeover, a long
// backlog): the next window of them. Numbers the log does not hold (given by red's former
// layout) are passed over.
func (r *rounds) fill(ctx context.Context, key string) error {
	c := r.led.Cursors[key]
	if len(r.pending[key]) > 0 || c.Delivered >= r.upto[key] {
		return nil
	}
	upto := min(r.upto[key], c.Delivered+maxPending)
	items, err := r.s.numbered(ctx, key, c.Delivered+1, upto, r.led.Oldest, r.last)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		c.Delivered, r.acked = upto, true
	}
	r.pending[key], r.window[key] = items, upto
	return nil
}

// result is what one subscription's sending did.
type result struct {
	sent      int    // notifications acknowledged
	delivered int64  // the last one's sequence number
	failure   string // why the next failed, "" when none did
}

// post posts the pending notifications in order until one fails or the lease runs short.
func (r *rounds) post(ctx context.Context, sub *subscription, pending []item, leaseUntil time.Time) result {
	var res result
	for _, it := range pending {
		if ctx.Err() != nil || leaseUntil.Sub(r.s.now()) < r.margin() {
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

// prunable reports whether the pruner is due at now and may find something: segments besides
// the last, or records of the former layout.
func (r *rounds) prunable(now time.Time) bool {
	return now.Sub(r.pruned) >= r.d.Prune && (max(r.led.Oldest, 1) < r.last || r.former)
}

// pruneCommits caps the commits of one run of the pruner; when there is more to prune, it runs
// again next round.
const pruneCommits = 4

// prune lets go of what retention no longer keeps, at most every Delivery.Prune, in commits of
// at most Batch records: the log's segments from the oldest on whose every notification was
// acknowledged (or is for a subscription deleted since) and whose changes are older than Keep —
// never the last segment, which knows the numbers given — and outbox entries of red's former
// layout.
func (r *rounds) prune(ctx context.Context, now time.Time) error {
	if !r.prunable(now) || r.led.Holder != r.s.holder {
		return nil
	}
	r.pruned = now
	before := now.Add(-r.d.Keep)
	for run := 1; ; run++ {
		oldest := max(r.led.Oldest, 1)
		gs, err := r.s.segments(ctx, oldest, min(r.last-1, oldest+int64(r.d.Batch)-1))
		if err != nil {
			return err
		}
		var writes []vault.Write
		next := oldest
	scan:
		for _, g := range gs {
			if g.N != next || g.newest().After(before) {
				break // a segment missing in between was pruned by a stale holder: left alone
			}
			for _, e := range g.Entries {
				for _, ev := range e.Events {
					for j, key := range ev.Subs {
						if c := r.led.Cursors[key]; c != nil && c.Delivered < ev.Seqs[j] {
							break scan
						}
					}
				}
			}
			writes = append(writes, vault.Write{Type: segmentType, ID: segmentID(g.N), Expect: g.version, Updated: now, Deleted: true, Forget: true})
			next++
		}
		if len(writes) == 0 {
			break
		}
		r.led.Oldest = next
		if ok, err := r.commit(ctx, now, writes, true, false); !ok || err != nil {
			return err
		}
		if len(writes) < r.d.Batch {
			break
		}
		if run == pruneCommits {
			r.pruned = time.Time{} // more next round
			break
		}
	}
	if !r.former {
		return nil
	}
	page, err := r.s.Store.Find(ctx, vault.Query{Type: formerEntryType, Limit: r.d.Batch})
	if err != nil || len(page.Resources) == 0 {
		r.former = err != nil
		return err
	}
	writes := make([]vault.Write, 0, len(page.Resources))
	for _, res := range page.Resources {
		var e struct{ ID string }
		if err := decode(res, &e, "an outbox entry of the former layout"); err != nil {
			return err
		}
		writes = append(writes, vault.Write{Type: formerEntryType, ID: e.ID, Expect: res.Version, Updated: now, Deleted: true, Forget: true})
	}
	_, err = r.commit(ctx, now, writes, false, false)
	return err
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
		if refused, ok := errors.AsType[*refusal](err); ok {
			return refused.Error()
		}
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

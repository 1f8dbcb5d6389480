package audit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
)

// The storage types of the trail's sealed records: no FHIR type, so the API's generic reads and
// searches never reach them.
const (
	recordType = "red:audit"      // one record of a chain: the events of one commit
	headType   = "red:audit-head" // a chain's head: its last record, closed or not
)

// Index names of the trail's records.
const (
	chainIndex   = "audit.chain"   // value: the chain
	patientIndex = "audit.patient" // value: a patient an event concerns ("Patient/id", "kvnr:…")
	userIndex    = "audit.user"    // value: a user an event names
	dayIndex     = "audit.day"     // value: a day (UTC, YYYY-MM-DD) of an event
)

// DefaultQueue bounds the events that wait to be written; a read that finds the queue full waits
// for room.
const DefaultQueue = 8192

// maxBatch bounds the events one record holds.
const maxBatch = 4096

// Linger is how long the writer waits for more events after the first before it writes them:
// the time a read's event may stay unwritten, and what a process killed with SIGKILL may lose.
const Linger = 50 * time.Millisecond

// witnessSkew widens what a session witnesses: chains written to since the last session
// started, by any workstation's clock that is at most this far ahead.
const witnessSkew = time.Hour

// Vault is what the trail needs of the vault's barrier (*vault.Barrier).
type Vault interface {
	records.Store
	AuditMAC(data []byte) ([]byte, error)
	IDToken(typ, id string) ([]byte, error)
}

// Options describe a session.
type Options struct {
	Tenant      string // the tenant's alias, for the links of AuditEvent searches
	User        string // who logged in
	Workstation string // this workstation's name
	Command     string // what was started ("red serve", "red audit"): the login event's operation
	Queue       int    // DefaultQueue when 0
	Now         func() time.Time
	Log         *slog.Logger
}

// Trail is one process's session of the tenant's audit trail: its chains, and the queue of
// events waiting to be written. It is safe for concurrent use.
type Trail struct {
	v           Vault
	tenant      string
	session     string
	workstation string
	user        string
	started     time.Time
	clock       func() time.Time
	log         *slog.Logger

	queue    chan Event
	full     chan struct{} // a reader found the queue full
	stopping chan struct{} // closed when Close begins
	done     chan struct{} // closed when the writer has written everything and stopped

	mu      sync.Mutex
	idle    *sync.Cond // signalled when a lane is released
	free    []*lane    // lanes not in use, the most recently used last
	lanes   int        // lanes made
	busy    int        // lanes in use
	closing bool
	closed  bool // no more commits: the chains are closed

	tokensMu sync.Mutex
	tokens   map[[2]string][]byte // id tokens by type and id, at most maxTokens
}

// lane is one chain of the session: one commit at a time adds to it.
type lane struct {
	n     int
	chain string
	seq   int64  // the last record written; 0: none yet
	mac   []byte // its MAC
	head  int64  // the version of the chain's head record
	// found holds, by day, the patients a record of the chain written that day is found by
	// already; pending those the record being written adds.
	found, pending map[string]map[string]bool
}

var errClosed = errors.New("audit: the trail is closed")

// Start opens a session: its first record names the user's login and witnesses the chains the
// trail holds (see the package documentation).
func Start(ctx context.Context, v Vault, o Options) (*Trail, error) {
	t := &Trail{v: v, tenant: o.Tenant, session: newID(), workstation: o.Workstation, user: o.User, clock: o.Now, log: o.Log,
		stopping: make(chan struct{}), done: make(chan struct{}), full: make(chan struct{}, 1)}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	t.queue = make(chan Event, o.Queue)
	t.idle = sync.NewCond(&t.mu)
	t.started = t.now()
	heads, err := t.heads(ctx)
	if errors.Is(err, vault.ErrTampered) {
		t.log.Error("the audit trail's heads do not open: this session witnesses none; run red audit verify")
		err = nil
	}
	if err != nil {
		return nil, err
	}
	l, _ := t.acquire()
	login := Event{At: t.started, User: t.user, Workstation: t.workstation, Action: Login, Operation: o.Command, Outcome: Success}
	b := &block{At: t.started, Open: t.opening(l, witness(heads)), Events: []Event{login}}
	err = t.commit(ctx, v.Commit, l, b, nil)
	t.release(l)
	if err != nil {
		return nil, err
	}
	go t.write()
	return t, nil
}

// Session names this process's session.
func (t *Trail) Session() string { return t.session }

func (t *Trail) now() time.Time {
	if t.clock != nil {
		return t.clock().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Record queues ev to be written with the next record; it waits while the queue is full.
func (t *Trail) Record(ev Event) {
	select {
	case t.queue <- ev:
		return
	default:
	}
	select { // the queue is full: the writer writes now rather than at the end of its linger
	case t.full <- struct{}{}:
	default:
	}
	select {
	case t.queue <- ev:
	case <-t.done:
		t.log.Error("an audit event came after the trail was closed and is not recorded", "action", ev.Action)
	}
}

// write commits the queued events, all that have gathered in one record, until Close.
func (t *Trail) write() {
	defer close(t.done)
	for {
		select {
		case ev := <-t.queue:
			t.flush(t.linger(ev))
		case <-t.stopping:
			for batch := t.gather(); len(batch) > 0; batch = t.gather() {
				t.flush(batch)
			}
			return
		}
	}
}

// linger waits Linger after the first event (less when the queue fills up) and takes what has
// gathered meanwhile, up to maxBatch: a busy server writes one record for many reads rather than
// one for every few, and the writer is not woken for every event.
func (t *Trail) linger(first Event) []Event {
	timer := time.NewTimer(Linger)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.full:
	case <-t.stopping:
	}
	return t.gather(first)
}

// gather takes the queued events, up to maxBatch with first.
func (t *Trail) gather(first ...Event) []Event {
	batch := first
	for len(batch) < maxBatch {
		select {
		case ev := <-t.queue:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// flush writes batch in a record of its own, trying again with growing pauses while the store
// fails — meanwhile the queue fills, and then readers wait — and giving up only when the trail
// closes.
func (t *Trail) flush(batch []Event) {
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 5*time.Second) {
		err := t.append(context.Background(), batch)
		if err == nil {
			return
		}
		select {
		case <-t.stopping:
			t.log.Error("audit events could not be written before the trail closed", "events", len(batch), "err", err)
			return
		default:
		}
		t.log.Error("writing audit events failed; trying again", "events", len(batch), "err", err)
		select {
		case <-time.After(pause):
		case <-t.stopping:
		}
	}
}

// append writes events in one record of their own.
func (t *Trail) append(ctx context.Context, events []Event) error {
	l, err := t.acquire()
	if err != nil {
		return err
	}
	defer t.release(l)
	return t.commit(ctx, t.v.Commit, l, &block{At: t.now(), Events: events}, nil)
}

// Close writes what is queued and ends every chain of the session with a close record saying
// why (its first chain's names the logout); no event is recorded after it. Call it before the
// vault is locked.
func (t *Trail) Close(ctx context.Context, why string) error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil
	}
	t.closing = true
	t.mu.Unlock()
	close(t.stopping)
	select {
	case <-t.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	idle := make(chan struct{})
	go func() {
		t.mu.Lock()
		for t.busy > 0 {
			t.idle.Wait()
		}
		t.closed = true
		t.mu.Unlock()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		return ctx.Err()
	}
	lanes := slices.SortedFunc(slices.Values(t.free), func(a, b *lane) int { return a.n - b.n })
	now := t.now()
	logout := Event{At: now, User: t.user, Workstation: t.workstation, Action: Logout, Operation: why, Outcome: Success}
	var writes []vault.Write
	var written []*lane
	var blocks []*block
	var macs [][]byte
	for _, l := range lanes {
		if l.seq == 0 {
			continue
		}
		b := &block{At: now, Close: why}
		if l.n == 1 {
			b.Events = append(t.gather(), logout)
		}
		ws, mac, err := t.writes(l, b)
		if err != nil {
			return err
		}
		writes, written = append(writes, ws...), append(written, l)
		blocks, macs = append(blocks, b), append(macs, mac)
	}
	if err := t.v.Commit(ctx, writes); err != nil {
		return fmt.Errorf("closing the audit trail's chains: %w", err)
	}
	for i, l := range written {
		l.advance(blocks[i].Seq, macs[i])
	}
	return nil
}

// acquire takes a lane not in use, or makes a new one.
func (t *Trail) acquire() (*lane, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errClosed
	}
	t.busy++
	if n := len(t.free); n > 0 {
		l := t.free[n-1]
		t.free = t.free[:n-1]
		return l, nil
	}
	t.lanes++
	return &lane{n: t.lanes, chain: t.session + "-" + strconv.Itoa(t.lanes)}, nil
}

func (t *Trail) release(l *lane) {
	t.mu.Lock()
	t.free = append(t.free, l)
	t.busy--
	t.idle.Broadcast()
	t.mu.Unlock()
}

// commit writes b as l's next record through commit, in one commit with also.
func (t *Trail) commit(ctx context.Context, commit func(context.Context, []vault.Write) error, l *lane, b *block, also []vault.Write) error {
	ws, mac, err := t.writes(l, b)
	if err != nil {
		return err
	}
	if err := commit(ctx, slices.Concat(also, ws)); err != nil {
		return err
	}
	l.advance(b.Seq, mac)
	return nil
}

// advance takes the record seq with mac as written.
func (l *lane) advance(seq int64, mac []byte) {
	l.seq, l.mac = seq, mac
	l.head++
	if l.found == nil {
		l.found = map[string]map[string]bool{}
	}
	for d, ps := range l.pending {
		if l.found[d] == nil {
			l.found[d] = map[string]bool{}
		}
		for p := range ps {
			l.found[d][p] = true
		}
	}
	l.pending = nil
	// keep the last two days: a patient of an event that comes later still is indexed again
	if days := slices.Sorted(maps.Keys(l.found)); len(days) > 2 {
		for _, d := range days[:len(days)-2] {
			delete(l.found, d)
		}
	}
}

// index notes p as a patient of an event on day that no record of the chain is found by yet,
// and says whether it is one.
func (l *lane) index(day, p string) bool {
	if l.found[day][p] || l.pending[day][p] {
		return false
	}
	if l.pending == nil {
		l.pending = map[string]map[string]bool{}
	}
	if l.pending[day] == nil {
		l.pending[day] = map[string]bool{}
	}
	l.pending[day][p] = true
	return true
}

// maxTokens bounds the id tokens the trail keeps at hand.
const maxTokens = 1 << 14

// token is the id token of the resource typ/id: the same resources are read again and again.
func (t *Trail) token(typ, id string) ([]byte, error) {
	k := [2]string{typ, id}
	t.tokensMu.Lock()
	tok, ok := t.tokens[k]
	t.tokensMu.Unlock()
	if ok {
		return tok, nil
	}
	tok, err := t.v.IDToken(typ, id)
	if err != nil {
		return nil, err
	}
	t.tokensMu.Lock()
	if len(t.tokens) >= maxTokens || t.tokens == nil {
		t.tokens = make(map[[2]string][]byte, maxTokens)
	}
	t.tokens[k] = tok
	t.tokensMu.Unlock()
	return tok, nil
}

// opening is the first record's account of the lane.
func (t *Trail) opening(l *lane, witness []seen) *opening {
	return &opening{Session: t.session, Lane: l.n, Workstation: t.workstation, User: t.user, Started: t.started, Witness: witness}
}

// writes are b as l's next record and the chain's head: the entities' ids turned into tokens,
// the record sealed with its MAC, found by its chain, by the users and days of its events, and by
// the patients of its events that no earlier record of the chain of that day is found by (a
// patient's events of a day are in the records of the chains of the day whose first record of
// the patient is found by the patient: see events).
func (t *Trail) writes(l *lane, b *block) ([]vault.Write, []byte, error) {
	b.Chain, b.Seq, b.Prev = l.chain, l.seq+1, l.mac
	l.pending = nil
	if b.Seq == 1 && b.Open == nil {
		b.Open = t.opening(l, nil)
	}
	idx := terms{seen: map[vault.Term]bool{}}
	idx.add(chainIndex, l.chain)
	for i := range b.Events {
		ev := &b.Events[i]
		for j := range ev.Entities {
			en := &ev.Entities[j]
			if en.Token != nil {
				continue
			}
			tok, err := t.token(en.Type, en.ID)
			if err != nil {
				return nil, nil, err
			}
			en.Token = tok
		}
		d := day(ev.At)
		for _, p := range ev.Patients {
			if l.index(d, p) {
				idx.add(patientIndex, p)
			}
		}
		idx.add(userIndex, ev.User)
		idx.add(dayIndex, d)
	}
	raw, err := appendBlock(make([]byte, 0, 256+200*len(b.Events)), b)
	if err != nil {
		return nil, nil, err
	}
	mac, err := t.v.AuditMAC(raw)
	if err != nil {
		return nil, nil, err
	}
	body := make([]byte, 0, len(raw)+base64.StdEncoding.EncodedLen(len(mac))+20)
	body = append(append(append(body, `{"block":`...), raw...), `,"mac":"`...) // stored, without checking raw again
	body = append(base64.StdEncoding.AppendEncode(body, mac), `"}`...)
	h, err := json.Marshal(head{Chain: l.chain, Session: t.session, Lane: l.n, Workstation: t.workstation, User: t.user,
		Started: t.started, Seq: b.Seq, MAC: mac, At: b.At, Closed: b.Close != ""})
	if err != nil {
		return nil, nil, err
	}
	return []vault.Write{
		{Type: recordType, ID: recordID(l.chain, b.Seq), Updated: b.At, Body: body, Index: idx.list},
		{Type: headType, ID: l.chain, Expect: l.head, Updated: b.At, Body: h},
	}, mac, nil
}

// terms collects index terms once each.
type terms struct {
	list []vault.Term
	seen map[vault.Term]bool
}

func (ts *terms) add(index string, values ...string) {
	for _, v := range values {
		t := vault.Term{Index: index, Value: v}
		if v != "" && !ts.seen[t] {
			ts.seen[t] = true
			ts.list = append(ts.list, t)
		}
	}
}

// block is what a record holds.
type block struct {
	Chain  string    `json:"chain"`
	Seq    int64     `json:"seq"`
	Prev   []byte    `json:"prev,omitempty"` // the MAC of record Seq-1; none for the first
	At     time.Time `json:"at"`
	Open   *opening  `json:"open,omitempty"`  // the first record's
	Close  string    `json:"close,omitempty"` // the last record's: why the chain ended
	Events []Event   `json:"events,omitempty"`
}

// opening is a chain's first record's account of the session.
type opening struct {
	Session     string    `json:"session"`
	Lane        int       `json:"lane"`
	Workstation string    `json:"workstation"`
	User        string    `json:"user"`
	Started     time.Time `json:"started"`
	Witness     []seen    `json:"witness,omitempty"` // the first chain's only
}

// seen is a chain's head as a session saw it at its start.
type seen struct {
	Chain string `json:"chain"`
	Seq   int64  `json:"seq"`
	MAC   []byte `json:"mac"`
}

// stored is a record's body: the block, as the bytes its MAC covers, and the MAC.
type stored struct {
	Block json.RawMessage `json:"block"`
	MAC   []byte          `json:"mac"`
}

// head is a chain's head record.
type head struct {
	Chain       string    `json:"chain"`
	Session     string    `json:"session"`
	Lane        int       `json:"lane"`
	Workstation string    `json:"workstation"`
	User        string    `json:"user"`
	Started     time.Time `json:"started"`
	Seq         int64     `json:"seq"` // the last record
	MAC         []byte    `json:"mac"` // its MAC
	At          time.Time `json:"at"`  // when it was written
	Closed      bool      `json:"closed"`
}

// heads reads every chain's head.
func (t *Trail) heads(ctx context.Context) ([]head, error) {
	page, err := t.v.Find(ctx, vault.Query{Type: headType})
	if err != nil {
		return nil, err
	}
	out := make([]head, 0, len(page.Resources))
	for _, r := range page.Resources {
		var h head
		if err := json.Unmarshal(r.Body, &h); err != nil {
			return nil, fmt.Errorf("audit: a chain's head is unreadable: %w", err)
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b head) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		if c := strings.Compare(a.Session, b.Session); c != 0 {
			return c
		}
		return a.Lane - b.Lane
	})
	return out, nil
}

// witness is what a new session witnesses of heads: every chain not closed, and every chain
// written to since the latest session before it started.
func witness(heads []head) []seen {
	var latest time.Time
	for _, h := range heads {
		if h.Started.After(latest) {
			latest = h.Started
		}
	}
	var out []seen
	for _, h := range heads {
		if !h.Closed || !h.At.Before(latest.Add(-witnessSkew)) {
			out = append(out, seen{Chain: h.Chain, Seq: h.Seq, MAC: h.MAC})
		}
	}
	return out
}

func recordID(chain string, seq int64) string { return chain + "/" + strconv.FormatInt(seq, 10) }

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// newID makes a random id (32 hex digits).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package audit

import (
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// Report is what Verify found.
type Report struct {
	Chains  []Chain
	Records int // the records read
	Events  int // the events they hold
	// Unopened counts the heads and records the store lists that do not open; each is named
	// as a break of its chain where its chain is known.
	Unopened int
}

// Chain is one chain as Verify found it.
type Chain struct {
	Chain       string
	Session     string
	Lane        int
	Workstation string
	User        string
	Started     time.Time
	Records     int64     // the records in order from the first, up to a break
	Last        time.Time // the last one's time
	MAC         []byte    // the last one's MAC: note it elsewhere to find a rollback later
	Closed      string    // why the chain ended, from its close record; "" without one
	Running     bool      // the chain of the session that verifies
	Break       *Break    // the first break; nil when there is none
}

// Break is the first thing wrong in a chain.
type Break struct {
	Chain string
	Seq   int64     // the record concerned
	At    time.Time // its time, or that of the record before it when it is unknown
	What  string
}

func (b *Break) String() string {
	at := ""
	if !b.At.IsZero() {
		at = ", " + b.At.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("chain %s, record %d%s: %s", b.Chain, b.Seq, at, b.What)
}

// First is the earliest break of all chains; nil when there is none.
func (r Report) First() *Break {
	var first *Break
	for _, c := range r.Chains {
		if b := c.Break; b != nil && (first == nil || b.At.Before(first.At)) {
			first = b
		}
	}
	return first
}

// Unclosed says how a chain without a break ended when it has no close record: what an admin
// tells from tampering.
func (c Chain) Unclosed() string {
	if c.Break != nil || c.Closed != "" {
		return ""
	}
	if c.Running {
		return fmt.Sprintf("this session, after record %d", c.Records)
	}
	return fmt.Sprintf("chain ended without close after record %d, at time %s (its process was killed or crashed, or still runs)",
		c.Records, c.Last.UTC().Format(time.RFC3339))
}

// Verify reads every chain of the trail and names the first break of each (see Chain, Break).
// That the trail was verified is recorded too.
func (t *Trail) Verify(ctx context.Context) (Report, error) {
	r, err := t.verify(ctx)
	ev := t.event(ctx, Verify, "")
	ev.failed(err)
	if b := r.First(); b != nil {
		ev.Operation = "break found: " + b.String()
	}
	t.Record(ev)
	return r, err
}

// rec is what Verify keeps of a record.
type rec struct {
	chain  string
	seq    int64
	at     time.Time
	prev   []byte
	mac    []byte
	badMAC bool
	open   *opening
	close  string
}

// want is a witness's account of a chain: it had record seq with mac.
type want struct {
	seq  int64
	mac  []byte
	by   string // the chain that witnessed it
	at   time.Time
	user string
	ws   string
}

func (t *Trail) verify(ctx context.Context) (Report, error) {
	var r Report
	heads := map[string]head{}
	bad, err := t.scan(ctx, vault.Query{Type: headType}, func(res vault.Resource) error {
		var h head
		if err := json.Unmarshal(res.Body, &h); err != nil {
			return fmt.Errorf("audit: a chain's head is unreadable: %w", err)
		}
		heads[h.Chain] = h
		return nil
	})
	if err != nil {
		return r, err
	}
	r.Unopened += bad
	// the witnesses of every chain's first record
	wants := map[string][]want{}
	for _, h := range heads {
		first, what, err := t.probe(ctx, h.Chain, 1)
		if err != nil {
			return r, err
		}
		if what != "" || first.open == nil {
			continue
		}
		for _, s := range first.open.Witness {
			wants[s.Chain] = append(wants[s.Chain], want{seq: s.Seq, mac: s.MAC, by: h.Chain, at: first.at, user: first.open.User, ws: first.open.Workstation})
		}
	}
	all, err := t.v.Find(ctx, vault.Query{Type: recordType, Offset: math.MaxInt32, Limit: 1})
	if err != nil {
		return r, err
	}
	listed := 0
	for _, chain := range slices.Sorted(maps.Keys(heads)) {
		recs := map[int64]rec{}
		bad, err := t.scan(ctx, vault.Query{Type: recordType, All: [][]vault.Term{{{Index: chainIndex, Value: chain}}}}, t.collect(recs, &r))
		if err != nil {
			return r, err
		}
		listed += len(recs) + bad
		r.Unopened += bad
		c, err := t.check(ctx, heads[chain], true, recs, wants[chain])
		if err != nil {
			return r, err
		}
		r.Chains = append(r.Chains, c)
	}
	if listed < all.Total {
		// records of chains without a head: their head was removed or does not open — or the
		// chain began after the heads were read
		orphans := map[string]map[int64]rec{}
		if _, err := t.scan(ctx, vault.Query{Type: recordType}, func(res vault.Resource) error {
			b, mac, err := t.decode(res.Body)
			if err != nil && !errors.Is(err, errMAC) {
				return err
			}
			if _, ok := heads[b.Chain]; !ok {
				if orphans[b.Chain] == nil {
					orphans[b.Chain] = map[int64]rec{}
				}
				orphans[b.Chain][b.Seq] = recOf(b, mac, err)
			}
			return nil
		}); err != nil {
			return r, err
		}
		for _, chain := range slices.Sorted(maps.Keys(orphans)) {
			h, hasHead := head{Chain: chain}, false
			if res, err := t.v.Current(ctx, headType, chain); err == nil && json.Unmarshal(res.Body, &h) == nil {
				hasHead = true
			}
			for seq := range orphans[chain] {
				h.Seq = max(h.Seq, seq)
			}
			r.Records += len(orphans[chain])
			c, err := t.check(ctx, h, hasHead, orphans[chain], wants[chain])
			if err != nil {
				return r, err
			}
			r.Chains = append(r.Chains, c)
			heads[chain] = h
		}
	}
	// chains a witness saw that are gone altogether
	for _, chain := range slices.Sorted(maps.Keys(wants)) {
		if _, ok := heads[chain]; ok {
			continue
		}
		w := wants[chain][0]
		r.Chains = append(r.Chains, Chain{Chain: chain, Break: &Break{Chain: chain, Seq: 1, At: w.at,
			What: fmt.Sprintf("the whole chain is missing: it had %d records when %s", w.seq, w.who())}})
	}
	slices.SortFunc(r.Chains, func(a, b Chain) int {
		return cmp.Or(a.Started.Compare(b.Started), strings.Compare(a.Session, b.Session), cmp.Compare(a.Lane, b.Lane), strings.Compare(a.Chain, b.Chain))
	})
	return r, nil
}

func (w want) who() string {
	return fmt.Sprintf("the session of %s on %s started (chain %s, %s)", w.user, w.ws, w.by, w.at.UTC().Format(time.RFC3339))
}

// collect keeps the records a scan reads in recs by sequence number, counting them in r.
func (t *Trail) collect(recs map[int64]rec, r *Report) func(vault.Resource) error {
	return func(res vault.Resource) error {
		b, mac, err := t.decode(res.Body)
		if err != nil && !errors.Is(err, errMAC) {
			return err
		}
		recs[b.Seq] = recOf(b, mac, err)
		if r != nil {
			r.Records++
			r.Events += len(b.Events)
		}
		return nil
	}
}

func recOf(b block, mac []byte, err error) rec {
	return rec{chain: b.Chain, seq: b.Seq, at: b.At, prev: b.Prev, mac: mac, badMAC: err != nil, open: b.Open, close: b.Close}
}

// probe reads record seq of chain by its id: what is wrong with it when it is not there or does
// not open.
func (t *Trail) probe(ctx context.Context, chain string, seq int64) (rec, string, error) {
	res, err := t.v.Current(ctx, recordType, recordID(chain, seq))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return rec{}, "the record is missing (removed from the database)", nil
	case errors.Is(err, vault.ErrTampered):
		return rec{}, "the record does not open: its sealed bytes were altered, or it was moved from elsewhere", nil
	case err != nil:
		return rec{}, "", err
	case res.Deleted:
		return rec{}, "the record is missing (a deletion was written over it)", nil
	}
	b, mac, err := t.decode(res.Body)
	if err != nil && !errors.Is(err, errMAC) {
		return rec{}, "", err
	}
	return recOf(b, mac, err), "", nil
}

// check walks a chain's records from the first: the first break, else the chain as it ends,
// checked against its head (hasHead: else the head is missing) and what witnesses saw of it.
func (t *Trail) check(ctx context.Context, h head, hasHead bool, recs map[int64]rec, wants []want) (Chain, error) {
	c := Chain{Chain: h.Chain, Session: h.Session, Lane: h.Lane, Workstation: h.Workstation, User: h.User, Started: h.Started,
		Running: hasHead && h.Session == t.session}
	top := h.Seq
	for seq := range recs {
		top = max(top, seq)
	}
	fail := func(seq int64, at time.Time, format string, args ...any) (Chain, error) {
		if at.IsZero() {
			at = c.Last
		}
		c.Break = &Break{Chain: h.Chain, Seq: seq, At: at, What: fmt.Sprintf(format, args...)}
		return c, nil
	}
	if !hasHead {
		first := recs[1]
		if first.open != nil {
			c.Session, c.Lane, c.Workstation, c.User, c.Started = first.open.Session, first.open.Lane, first.open.Workstation, first.open.User, first.open.Started
		}
		return fail(top, recs[top].at, "the chain's head is missing or does not open, so the chain's end cannot be checked")
	}
	var prev []byte
	for seq := int64(1); seq <= top; seq++ {
		r, ok := recs[seq]
		if !ok {
			found, what, err := t.probe(ctx, h.Chain, seq)
			if err != nil {
				return c, err
			}
			if what != "" {
				return fail(seq, time.Time{}, "%s", what)
			}
			// a concurrent write may have moved it past the scan's pages: ask the index for it
			indexed, err := t.v.Find(ctx, vault.Query{Type: recordType, Limit: 1,
				All: [][]vault.Term{{{Index: chainIndex, Value: h.Chain}}, {{Index: vault.IDIndex, Value: recordID(h.Chain, seq)}}}})
			if err != nil {
				return c, err
			}
			if indexed.Total == 0 {
				return fail(seq, found.at, "the record is not found by its chain: its index entries were removed")
			}
			r = found
		}
		switch {
		case r.badMAC:
			return fail(seq, r.at, "the record's content does not match its MAC")
		case r.chain != h.Chain || r.seq != seq:
			return fail(seq, r.at, "the record holds record %d of chain %s", r.seq, r.chain)
		case seq == 1 && (r.open == nil || len(r.prev) > 0):
			return fail(seq, r.at, "the chain's first record does not open the chain")
		case seq > 1 && !hmac.Equal(r.prev, prev):
			return fail(seq, r.at, "the record does not follow record %d: the MAC it names as its predecessor's differs (a record was replaced, inserted or reordered)", seq-1)
		case r.close != "" && seq < top:
			return fail(seq+1, r.at, "records follow the chain's close record")
		}
		prev = r.mac
		c.Records, c.Last, c.MAC, c.Closed = seq, r.at, r.mac, r.close
	}
	if top == 0 {
		return fail(1, h.At, "the chain has no records")
	}
	if top > h.Seq {
		// the head may have moved on since it was read (its process writes on): the records
		// read are checked, the head is not
		var now head
		if res, err := t.v.Current(ctx, headType, h.Chain); err != nil || json.Unmarshal(res.Body, &now) != nil || now.Seq < top {
			return fail(h.Seq+1, recs[h.Seq+1].at, "records follow the one the chain's head names as its last (%d): the head was rolled back", h.Seq)
		}
	} else {
		switch last := recs[top]; {
		case !hmac.Equal(h.MAC, last.mac):
			return fail(top, last.at, "the chain's head names another last record than this one")
		case h.Closed != (last.close != ""):
			return fail(top, last.at, "the chain's head and its last record disagree on whether the chain was closed")
		}
	}
	for _, w := range wants {
		switch {
		case w.seq > c.Records:
			return fail(c.Records+1, w.at, "the chain ends at record %d, but it had %d records when %s: its end was removed", c.Records, w.seq, w.who())
		case !hmac.Equal(recs[w.seq].mac, w.mac):
			return fail(w.seq, recs[w.seq].at, "the record differs from the one %s saw", w.who())
		}
	}
	return c, nil
}

// scan reads every resource q selects, page by page; a page that does not open is narrowed down
// to the single resource, which is counted and passed over.
func (t *Trail) scan(ctx context.Context, q vault.Query, each func(vault.Resource) error) (unopened int, err error) {
	const most = 256
	q.Offset, q.Limit = math.MaxInt32, 1
	count, err := t.v.Find(ctx, q)
	if err != nil {
		return 0, err
	}
	for off, limit := 0, most; off < count.Total; {
		q.Offset, q.Limit = off, limit
		page, err := t.v.Find(ctx, q)
		switch {
		case errors.Is(err, vault.ErrTampered) && limit > 1:
			limit /= 2
			continue
		case errors.Is(err, vault.ErrTampered):
			unopened++
		case err != nil:
			return unopened, err
		}
		for _, res := range page.Resources {
			if err := each(res); err != nil {
				return unopened, err
			}
		}
		off += limit
		limit = min(2*limit, most)
	}
	return unopened, nil
}

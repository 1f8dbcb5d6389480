package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// segment is a stretch of the tenant's log of numbered notifications: outbox entries one round
// of the deliverer numbered (at most Delivery.Batch), in order, and every subscription's last
// sequence number given up to and including them.
type segment struct {
	N       int64            `json:"n"` // its place in the log (its id)
	Entries []entry          `json:"entries"`
	Upto    map[string]int64 `json:"upto"` // by subscription key

	version int64
}

// newest is when the segment's latest change was made.
func (g *segment) newest() time.Time {
	var t time.Time
	for _, e := range g.Entries {
		if e.At.After(t) {
			t = e.At
		}
	}
	return t
}

func segmentID(n int64) string { return strconv.FormatInt(n, 10) }

func (g *segment) write(now time.Time) (vault.Write, error) {
	body, err := json.Marshal(g)
	return vault.Write{Type: segmentType, ID: segmentID(g.N), Updated: now, Body: body}, err
}

func decodeSegment(r vault.Resource) (*segment, error) {
	g := &segment{version: r.Version}
	return g, decode(r, g, "a segment of the notification log")
}

// decode reads the JSON of record r into v; what names the record in the error.
func decode(r vault.Resource, v any, what string) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("notify: %s is unreadable: %w", what, err)
	}
	return nil
}

// segment reads segment n of the log; nil when there is none (pruned, or not yet written).
func (s *Service) segment(ctx context.Context, n int64) (*segment, error) {
	r, err := s.Store.Current(ctx, segmentType, segmentID(n))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && r.Deleted) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeSegment(r)
}

// segments reads the segments from and to (inclusive) that exist, in order, in one query.
func (s *Service) segments(ctx context.Context, from, to int64) ([]*segment, error) {
	if to < from {
		return nil, nil
	}
	ids := make([]vault.Term, 0, to-from+1)
	for n := from; n <= to; n++ {
		ids = append(ids, vault.Term{Index: vault.IDIndex, Value: segmentID(n)})
	}
	out, err := findAll(ctx, s.Store, vault.Query{Type: segmentType, All: [][]vault.Term{ids}}, decodeSegment)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *segment) int { return cmp.Compare(a.N, b.N) })
	return out, nil
}

// head finds the last segment of the log, starting from from (the ledger's knowledge: later
// ones may have been written since): its number, and it (nil for an empty log).
func (s *Service) head(ctx context.Context, from int64) (int64, *segment, error) {
	const probe = 8
	n := from
	for {
		refs := make([]vault.Ref, probe)
		for i := range refs {
			refs[i] = vault.Ref{Type: segmentType, ID: segmentID(n + 1 + int64(i))}
		}
		hs, err := s.Store.Heads(ctx, refs)
		if err != nil {
			return 0, nil, err
		}
		more := 0
		for i, h := range hs {
			if h.Version > 0 && !h.Deleted {
				more = i + 1
			}
		}
		n += int64(more)
		if more < probe {
			break
		}
	}
	if n == 0 {
		return 0, nil, nil
	}
	g, err := s.segment(ctx, n)
	return n, g, err
}

// item is one numbered notification: event i of e for the subscription e.Events[i].Subs[j].
type item struct {
	e    *entry
	i, j int
}

func (it item) seq() int64 { return it.e.Events[it.i].Seqs[it.j] }

// readAhead is the number of segments read at once after the one found to hold a number.
const readAhead = 16

// numbered reads the notifications with the sequence numbers from to to of the subscription
// key, in order, from the segments first to last; numbers pruned meanwhile are missing. A
// binary search over the segments (each knows every subscription's last number so far) finds
// the one holding a number; those after it are read together, and the next number not among
// them is searched for again — few reads however rarely the subscription is notified.
func (s *Service) numbered(ctx context.Context, key string, from, to, first, last int64) ([]item, error) {
	var out []item
	lo := max(first, 1)
	for from <= to && lo <= last {
		hi := last
		for lo < hi { // the first segment whose number for key reaches from
			mid := lo + (hi-lo)/2
			g, err := s.segment(ctx, mid)
			if err != nil {
				return nil, err
			}
			if g != nil && g.Upto[key] >= from {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		gs, err := s.segments(ctx, lo, min(last, lo+readAhead-1))
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			for n := range g.Entries {
				e := &g.Entries[n]
				for i, ev := range e.Events {
					for j, k := range ev.Subs {
						if k == key && j < len(ev.Seqs) && ev.Seqs[j] >= from && ev.Seqs[j] <= to {
							out = append(out, item{e, i, j})
						}
					}
				}
			}
			if g.Upto[key] >= from {
				from = g.Upto[key] + 1
			}
		}
		lo += readAhead
	}
	slices.SortFunc(out, func(a, b item) int { return cmp.Compare(a.seq(), b.seq()) })
	return out, nil
}

package postgres

import (
	"slices"
	"sync"
)

// maxGrouped is the number of waiting requests one query takes at most.
const maxGrouped = 64

// grouped runs requests of one kind (reads by id, searches by one token) so that those that
// arrive while limit queries of the kind are under way wait and then go together in one query:
// one round trip, one statement and one backend's work for all of them instead of one each,
// which is where many concurrent small queries spend most of their time. A request that finds a
// place free is queried at once by its caller, alone.
type grouped[R any] struct {
	mu      sync.Mutex
	waiting []*R
	busy    int // queries under way: callers' own and loops'
	limit   int
	// query answers every request of group (from a loop, with no caller's context)
	query func(group []*R)
}

// join takes a free place, returning nil (the caller queries alone and then calls handOn), or
// queues the request wait makes for a loop to take and returns it: a request that goes alone
// costs nothing more than its query.
func (g *grouped[R]) join(wait func() *R) *R {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.busy < g.limit {
		g.busy++
		return nil
	}
	r := wait()
	g.waiting = append(g.waiting, r)
	return r
}

// withdraw takes r out of the queue, unless a loop has taken it already.
func (g *grouped[R]) withdraw(r *R) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(g.waiting, r); i >= 0 {
		g.waiting = slices.Delete(g.waiting, i, i+1)
	}
}

// handOn passes a finished caller's place on: to a loop for the requests that wait, or back to
// the free places when none does.
func (g *grouped[R]) handOn() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiting) == 0 {
		g.busy--
		return
	}
	go g.loop()
}

// loop queries for waiting requests, up to maxGrouped at a time, until none waits.
func (g *grouped[R]) loop() {
	for {
		g.mu.Lock()
		n := min(len(g.waiting), maxGrouped)
		if n == 0 {
			g.busy--
			g.mu.Unlock()
			return
		}
		group := slices.Clone(g.waiting[:n])
		g.waiting = slices.Delete(g.waiting, 0, n)
		g.mu.Unlock()
		g.query(group)
	}
}

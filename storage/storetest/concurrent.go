package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/redclone/red/storage"
)

// concurrentCommitTests check that commits made at the same moment, which a store may write
// in one transaction (group commit), still succeed or fail each on its own.
var concurrentCommitTests = []test{
	{"fails only the commits that fail among concurrent ones", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		const workers, rounds = 12, 6
		for w := range workers {
			mustCommit(t, s, "praxis", change("Patient", fmt.Sprintf("own-%d", w), 0, "v1"))
		}
		for r := range rounds {
			start := make(chan struct{})
			errs := make([]error, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					<-start
					id := fmt.Sprintf("new-%d-%d", w, r)
					var changes []storage.Change
					switch w % 4 {
					case 0, 1: // valid: update its own resource and create one
						changes = []storage.Change{
							change("Patient", fmt.Sprintf("own-%d", w), int64(r+1), fmt.Sprintf("v%d", r+2), fmt.Sprintf("round-%d", r)),
							change("Patient", id, 0, "created", fmt.Sprintf("round-%d", r)),
						}
					case 2: // a valid create, then a stale version: nothing may be written
						changes = []storage.Change{
							change("Patient", id, 0, "created", fmt.Sprintf("round-%d", r)),
							change("Patient", fmt.Sprintf("own-%d", w), 5, "stale", fmt.Sprintf("round-%d", r)),
						}
					case 3: // a tenant that does not exist
						errs[w] = s.Commit(t.Context(), "nobody", []storage.Change{change("Patient", id, 0, "created")})
						return
					}
					errs[w] = s.Commit(t.Context(), "praxis", changes)
				})
			}
			close(start)
			wg.Wait()
			var want []string
			for w, err := range errs {
				id := fmt.Sprintf("new-%d-%d", w, r)
				switch w % 4 {
				case 0, 1:
					if err != nil {
						t.Fatalf("round %d: valid commit of worker %d: %v", r, w, err)
					}
					want = append(want, id, fmt.Sprintf("own-%d", w))
					wantRecord(t, mustCurrent(t, s, "praxis", "Patient", fmt.Sprintf("own-%d", w)), record("Patient", fmt.Sprintf("own-%d", w), int64(r+2), fmt.Sprintf("v%d", r+2)))
				case 2:
					wantErr(t, err, storage.ErrConflict)
					wantNotFound(t, s, "praxis", "Patient", id)
				case 3:
					if err == nil {
						t.Errorf("round %d: a commit for a tenant that does not exist succeeded", r)
					}
					wantNotFound(t, s, "nobody", "Patient", id)
				}
			}
			wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups(fmt.Sprintf("round-%d", r))}), len(want), want...)
		}
	}},
	{"writes nothing for a caller whose context has ended", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := s.Commit(ctx, "praxis", []storage.Change{change("Patient", "p1", 0, "v1", "anna")})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Commit with a cancelled context: %v, want context.Canceled", err)
		}
		wantNotFound(t, s, "praxis", "Patient", "p1")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1", "anna"))
	}},
}

package notify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/internal/vault/vaulttest"
	"github.com/redclone/red/storage"
)

// A change's commit carries the deliverer's waiting commit; when that conflicts, the change is
// committed alone and the deliverer learns of its conflict — and a change's own conflict stays
// the change's.
func TestCarriedCommitNeverFailsTheChange(t *testing.T) {
	ctx := context.Background()
	b, _ := vaulttest.Barrier(t)
	s := &Service{Tenant: "praxis", Store: b}
	o := s.Wrap(b)
	now := time.Now().UTC()
	if err := b.Commit(ctx, []vault.Write{{Type: segmentType, ID: "1", Updated: now, Body: []byte(`{"n":1}`)}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                  string
		change, carried       vault.Write
		changeErr, carriedErr error
		carriedVersion        int64 // the carried record's version after
	}{
		{"commits the change when the carried commit conflicts",
			vault.Write{Type: "Patient", ID: "p1", Updated: now, Body: []byte("<Patient/>")},
			vault.Write{Type: segmentType, ID: "1", Updated: now, Body: []byte(`{"n":1}`)}, nil, storage.ErrConflict, 1},
		{"commits both together",
			vault.Write{Type: "Patient", ID: "p2", Updated: now, Body: []byte("<Patient/>")},
			vault.Write{Type: segmentType, ID: "2", Updated: now, Body: []byte(`{"n":2}`)}, nil, nil, 1},
		{"keeps the change's own conflict",
			vault.Write{Type: "Patient", ID: "p1", Updated: now, Body: []byte("<Patient/>")},
			vault.Write{Type: segmentType, ID: "3", Updated: now, Body: []byte(`{"n":3}`)}, storage.ErrConflict, storage.ErrConflict, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &carry{writes: []vault.Write{tc.carried}, done: make(chan error, 1)}
			s.carried = c
			if err := o.Commit(ctx, []vault.Write{tc.change}); !errors.Is(err, tc.changeErr) || (tc.changeErr == nil && err != nil) {
				t.Errorf("the change's commit: %v, want %v", err, tc.changeErr)
			}
			if err := <-c.done; !errors.Is(err, tc.carriedErr) || (tc.carriedErr == nil && err != nil) {
				t.Errorf("the carried commit: %v, want %v", err, tc.carriedErr)
			}
			h, err := b.Heads(ctx, []vault.Ref{{Type: tc.change.Type, ID: tc.change.ID}, {Type: segmentType, ID: tc.carried.ID}})
			if err != nil {
				t.Fatal(err)
			}
			if h[0].Version != 1 || h[1].Version != tc.carriedVersion {
				t.Errorf("stored: change version %d, carried version %d", h[0].Version, h[1].Version)
			}
		})
	}
}

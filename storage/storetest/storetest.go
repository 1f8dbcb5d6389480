// Package storetest is the conformance suite every storage.Store backend must pass, plus
// benchmarks that measure backends the same way.
//
// A backend's test file is a few lines:
//
//	func TestStore(t *testing.T) {
//		storetest.RunTests(t, func(t testing.TB) storage.Store { … open a fresh, empty store … })
//	}
package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redclone/red/storage"
)

// base is the injected clock of the suite: every write derives its timestamp from it.
var base = time.Date(2025, 3, 30, 1, 59, 59, 123456000, time.UTC)

// test is one conformance check run against one fresh store.
type test struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// RunTests runs the conformance suite. newStore must return a new, empty store each time it is
// called and arrange for it to be closed (t.Cleanup); it is called once per subtest, and the
// subtests run in parallel.
func RunTests(t *testing.T, newStore func(t testing.TB) storage.Store) {
	areas := []struct {
		name  string
		tests []test
	}{
		{"tenants", tenantTests},
		{"credentials", credentialTests},
		{"commit", commitTests},
		{"versions", versionTests},
		{"heads", headTests},
		{"isolation", isolationTests},
		{"find", findTests},
		{"exclusion", excludeTests},
		{"round trips", roundTripTests},
		{"concurrency", concurrencyTests},
		{"concurrent commits", concurrentCommitTests},
	}
	_, unexcluding := newStore(t).(Unexcluding)
	for _, area := range areas {
		if unexcluding && area.name == "exclusion" {
			continue // the store leaves out by other means: these tests are not its
		}
		t.Run(area.name, func(t *testing.T) {
			for _, tc := range area.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newStore(t))
				})
			}
		})
	}
}

// RunSharedTests checks two independently opened handles on one database, as several
// workstations sharing one PostgreSQL server (or two processes sharing one SQLite file) have.
// open must return two handles on a new, empty database and arrange for both to be closed; it
// is called once per subtest, and the subtests run in parallel.
var headTests = []test{
	{"answers every key in order in one call", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCreateTenant(t, s, "other")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1"), change("Observation", "o1", 0, "o"))
		mustCommit(t, s, "praxis", change("Patient", "p1", 1, "v2"))
		mustCommit(t, s, "praxis", tombstone("Observation", "o1", 1))
		mustCommit(t, s, "other", change("Patient", "p9", 0, "x"))
		keys := []storage.Key{{Type: "Observation", ID: []byte("o1")}, {Type: "Patient", ID: []byte("missing")}, {Type: "Patient", ID: []byte("p1")},
			{Type: "Patient", ID: []byte("p9")}, {Type: "Observation", ID: []byte("p1")}}
		got, err := s.Heads(t.Context(), "praxis", keys, storage.Exclusion{})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			version int64
			deleted bool
		}{{2, true}, {0, false}, {2, false}, {0, false}, {0, false}}
		if len(got) != len(want) {
			t.Fatalf("%d heads for %d keys", len(got), len(keys))
		}
		for i, w := range want {
			g := got[i]
			if g.Type != keys[i].Type || string(g.ID) != string(keys[i].ID) || g.Version != w.version || g.Deleted != w.deleted || g.Sealed != nil {
				t.Errorf("head %d = %+v, want version %d deleted %v of %s/%s without sealed bytes", i, g, w.version, w.deleted, keys[i].Type, keys[i].ID)
			}
			if w.version > 0 {
				wantTime(t, "head updated", g.Updated, updatedAt(w.version))
			}
		}
	}},
	{"answers no keys with nothing", func(t *testing.T, s storage.Store) {
		got, err := s.Heads(t.Context(), "nobody", nil, storage.Exclusion{})
		if err != nil || len(got) != 0 {
			t.Errorf("Heads(nil) = %v, %v", got, err)
		}
	}},
}

func RunSharedTests(t *testing.T, open func(t testing.TB) (a, b storage.Store)) {
	tests := []struct {
		name string
		run  func(t *testing.T, a, b storage.Store)
	}{
		{"sees tenants and credentials written through the other handle", func(t *testing.T, a, b storage.Store) {
			ctx := t.Context()
			mustCreateTenant(t, a, "praxis")
			if _, err := b.Tenant(ctx, "praxis"); err != nil {
				t.Fatalf("Tenant through the other handle: %v", err)
			}
			mustPutCredential(t, b, storage.Credential{Tenant: "praxis", User: "anna", Blob: []byte{0, 1}})
			got, err := a.Credential(ctx, "praxis", "anna")
			if err != nil {
				t.Fatalf("Credential through the other handle: %v", err)
			}
			if !bytes.Equal(got.Blob, []byte{0, 1}) {
				t.Errorf("Blob = %x, want 0001", got.Blob)
			}
		}},
		{"sees commits made through the other handle", func(t *testing.T, a, b storage.Store) {
			mustCreateTenant(t, a, "praxis")
			mustCommit(t, a, "praxis", change("Patient", "p1", 0, "v1", "anna"))
			mustCommit(t, b, "praxis", change("Patient", "p1", 1, "v2", "bert"))
			wantRecord(t, mustCurrent(t, a, "praxis", "Patient", "p1"), record("Patient", "p1", 2, "v2"))
			wantIDs(t, a, mustFind(t, a, "praxis", storage.Query{Type: "Patient", All: groups("bert")}), 1, "p1")
		}},
		{"refuses through one handle what the other created", func(t *testing.T, a, b storage.Store) {
			ctx := t.Context()
			mustCreateTenant(t, a, "praxis")
			wantErr(t, b.CreateTenant(ctx, storage.Tenant{Alias: "praxis", Created: base}), storage.ErrConflict)
			mustCommit(t, a, "praxis", change("Patient", "p1", 0, "v1"))
			wantErr(t, b.Commit(ctx, "praxis", []storage.Change{change("Patient", "p1", 0, "other")}), storage.ErrConflict)
		}},
		{"lets exactly one creator win across handles", func(t *testing.T, a, b storage.Store) {
			mustCreateTenant(t, a, "praxis")
			raceCreates(t, []storage.Store{a, b}, 8)
		}},
		{"loses no update when both handles race", func(t *testing.T, a, b storage.Store) {
			mustCreateTenant(t, a, "praxis")
			raceUpdates(t, []storage.Store{a, b}, 8, 20)
		}},
		{"loses no update when batches race across handles", func(t *testing.T, a, b storage.Store) {
			mustCreateTenant(t, a, "praxis")
			raceBatches(t, []storage.Store{a, b}, 8, 10)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.run(t, a, b)
		})
	}
}

var tenantTests = []test{
	{"creates a tenant and reads it back", func(t *testing.T, s storage.Store) {
		created := time.Date(2024, 2, 29, 23, 59, 59, 987654321, time.FixedZone("CET", 3600))
		if err := s.CreateTenant(t.Context(), storage.Tenant{Alias: "praxis-mueller", Created: created}); err != nil {
			t.Fatalf("CreateTenant: %v", err)
		}
		got, err := s.Tenant(t.Context(), "praxis-mueller")
		if err != nil {
			t.Fatalf("Tenant: %v", err)
		}
		if got.Alias != "praxis-mueller" {
			t.Errorf("Alias = %q, want praxis-mueller", got.Alias)
		}
		wantTime(t, "Created", got.Created, created)
	}},
	{"refuses a duplicate alias with ErrConflict and keeps the first", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		err := s.CreateTenant(t.Context(), storage.Tenant{Alias: "praxis", Created: base.Add(time.Hour)})
		wantErr(t, err, storage.ErrConflict)
		got, err := s.Tenant(t.Context(), "praxis")
		if err != nil {
			t.Fatalf("Tenant: %v", err)
		}
		wantTime(t, "Created", got.Created, base)
	}},
	{"reports an unknown tenant as ErrNotFound", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		_, err := s.Tenant(t.Context(), "praxi")
		wantErr(t, err, storage.ErrNotFound)
	}},
	{"lists every tenant", func(t *testing.T, s storage.Store) {
		aliases := []string{"zahnarzt", "apotheke", "Praxis", "praxis"}
		for _, a := range aliases {
			mustCreateTenant(t, s, a)
		}
		got, err := s.Tenants(t.Context())
		if err != nil {
			t.Fatalf("Tenants: %v", err)
		}
		var names []string
		for _, tn := range got {
			names = append(names, tn.Alias)
			wantTime(t, "Created of "+tn.Alias, tn.Created, base)
		}
		sort.Strings(names)
		sort.Strings(aliases)
		if !slices.Equal(names, aliases) {
			t.Errorf("Tenants = %q, want %q", names, aliases)
		}
	}},
	{"lists no tenants in an empty store", func(t *testing.T, s storage.Store) {
		got, err := s.Tenants(t.Context())
		if err != nil {
			t.Fatalf("Tenants: %v", err)
		}
		if len(got) != 0 {
			t.Errorf("Tenants = %v, want none", got)
		}
	}},
}

var credentialTests = []test{
	{"stores a credential and reads it back", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		blob := []byte{0x00, 0x01, 0xff, 0x00, 0x80}
		mustPutCredential(t, s, storage.Credential{Tenant: "praxis", User: "anna", Blob: blob})
		got, err := s.Credential(t.Context(), "praxis", "anna")
		if err != nil {
			t.Fatalf("Credential: %v", err)
		}
		if got.Tenant != "praxis" || got.User != "anna" || !bytes.Equal(got.Blob, blob) {
			t.Errorf("Credential = %+v, want praxis/anna with blob %x", got, blob)
		}
	}},
	{"replaces a credential put again", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustPutCredential(t, s, storage.Credential{Tenant: "praxis", User: "anna", Blob: []byte("old")})
		mustPutCredential(t, s, storage.Credential{Tenant: "praxis", User: "anna", Blob: []byte("new")})
		got, err := s.Credential(t.Context(), "praxis", "anna")
		if err != nil {
			t.Fatalf("Credential: %v", err)
		}
		if string(got.Blob) != "new" {
			t.Errorf("Blob = %q, want new", got.Blob)
		}
		list, err := s.Credentials(t.Context(), "praxis")
		if err != nil {
			t.Fatalf("Credentials: %v", err)
		}
		if len(list) != 1 {
			t.Errorf("Credentials has %d entries, want 1", len(list))
		}
	}},
	{"lists credentials sorted by user name bytes", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		for _, u := range []string{"zoe", "anna", "Max", "bert", "Ärztin"} {
			mustPutCredential(t, s, storage.Credential{Tenant: "praxis", User: u, Blob: []byte("blob of " + u)})
		}
		got, err := s.Credentials(t.Context(), "praxis")
		if err != nil {
			t.Fatalf("Credentials: %v", err)
		}
		var users []string
		for _, c := range got {
			users = append(users, c.User)
			if c.Tenant != "praxis" || string(c.Blob) != "blob of "+c.User {
				t.Errorf("credential %q = %+v", c.User, c)
			}
		}
		want := []string{"Max", "anna", "bert", "zoe", "Ärztin"}
		if !slices.Equal(users, want) {
			t.Errorf("users = %q, want %q", users, want)
		}
	}},
	{"keeps credentials of tenants apart", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "a")
		mustCreateTenant(t, s, "b")
		mustPutCredential(t, s, storage.Credential{Tenant: "a", User: "anna", Blob: []byte("a")})
		mustPutCredential(t, s, storage.Credential{Tenant: "b", User: "anna", Blob: []byte("b")})
		for _, tenant := range []string{"a", "b"} {
			got, err := s.Credential(t.Context(), tenant, "anna")
			if err != nil {
				t.Fatalf("Credential(%s): %v", tenant, err)
			}
			if string(got.Blob) != tenant {
				t.Errorf("Credential(%s).Blob = %q, want %q", tenant, got.Blob, tenant)
			}
			list, err := s.Credentials(t.Context(), tenant)
			if err != nil {
				t.Fatalf("Credentials(%s): %v", tenant, err)
			}
			if len(list) != 1 || list[0].Tenant != tenant {
				t.Errorf("Credentials(%s) = %+v, want only its own", tenant, list)
			}
		}
	}},
	{"lists no credentials of a tenant without users", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		got, err := s.Credentials(t.Context(), "praxis")
		if err != nil {
			t.Fatalf("Credentials: %v", err)
		}
		if len(got) != 0 {
			t.Errorf("Credentials = %+v, want none", got)
		}
	}},
	{"reports an unknown credential as ErrNotFound", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustPutCredential(t, s, storage.Credential{Tenant: "praxis", User: "anna", Blob: []byte("x")})
		for _, k := range []struct{ tenant, user string }{{"praxis", "bert"}, {"praxis", "Anna"}, {"other", "anna"}} {
			_, err := s.Credential(t.Context(), k.tenant, k.user)
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Credential(%q, %q) error = %v, want ErrNotFound", k.tenant, k.user, err)
			}
		}
	}},
	{"refuses a credential for an unknown tenant with ErrNotFound", func(t *testing.T, s storage.Store) {
		err := s.PutCredential(t.Context(), storage.Credential{Tenant: "nobody", User: "anna", Blob: []byte("x")})
		wantErr(t, err, storage.ErrNotFound)
	}},
}

var commitTests = []test{
	{"creates version 1 with Expect 0", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "sealed-1", "anna"))
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), record("Patient", "p1", 1, "sealed-1"))
	}},
	{"refuses a second create with ErrConflict and keeps the first", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "first", "anna"))
		err := s.Commit(t.Context(), "praxis", []storage.Change{change("Patient", "p1", 0, "second", "bert")})
		wantErr(t, err, storage.ErrConflict)
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), record("Patient", "p1", 1, "first"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("bert")}), 0)
	}},
	{"writes version 2 with the right Expect", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1"))
		mustCommit(t, s, "praxis", change("Patient", "p1", 1, "v2"))
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), record("Patient", "p1", 2, "v2"))
	}},
	{"refuses an Expect other than the current version with ErrConflict", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1"))
		mustCommit(t, s, "praxis", change("Patient", "p1", 1, "v2"))
		for _, tc := range []struct {
			name string
			c    storage.Change
		}{
			{"stale", change("Patient", "p1", 1, "stale")},
			{"ahead", change("Patient", "p1", 5, "ahead")},
			{"for a resource that does not exist", change("Patient", "p2", 1, "ghost")},
			{"for the same id in another type", change("Observation", "p1", 2, "ghost")},
		} {
			err := s.Commit(t.Context(), "praxis", []storage.Change{tc.c})
			if !errors.Is(err, storage.ErrConflict) {
				t.Errorf("%s: Commit error = %v, want ErrConflict", tc.name, err)
			}
		}
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), record("Patient", "p1", 2, "v2"))
		wantNotFound(t, s, "praxis", "Patient", "p2")
		wantNotFound(t, s, "praxis", "Observation", "p1")
	}},
	{"writes nothing of a batch when one change conflicts", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis",
			change("Patient", "b", 0, "b1", "b-old"),
			change("Patient", "c", 0, "c1", "c-old"),
		)
		mustCommit(t, s, "praxis", change("Patient", "c", 1, "c2", "c-old"))
		fresh := change("Patient", "a", 0, "a1", "a-new")
		update := change("Patient", "b", 1, "b2", "b-new")
		batches := []struct {
			name    string
			changes []storage.Change
		}{
			{"stale expect last", []storage.Change{fresh, update, change("Patient", "c", 1, "c-stale", "c-new")}},
			{"duplicate create first", []storage.Change{change("Patient", "c", 0, "c-dup", "c-new"), fresh, update}},
			{"stale expect in the middle", []storage.Change{fresh, change("Patient", "c", 3, "c-ahead", "c-new"), update}},
			{"same resource twice with one expect", []storage.Change{fresh, update, change("Patient", "b", 1, "b-again")}},
		}
		for _, b := range batches {
			err := s.Commit(t.Context(), "praxis", b.changes)
			if !errors.Is(err, storage.ErrConflict) {
				t.Errorf("%s: Commit error = %v, want ErrConflict", b.name, err)
			}
			wantNotFound(t, s, "praxis", "Patient", "a")
			wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "b"), record("Patient", "b", 1, "b1"))
			wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "c"), record("Patient", "c", 2, "c2"))
			if _, err := s.Version(t.Context(), "praxis", "Patient", []byte("b"), 2); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: Version(b, 2) error = %v, want ErrNotFound", b.name, err)
			}
			wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("b-old")}), 1, "b")
			wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("a-new b-new c-new")}), 0)
			wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient"}), 2, "b", "c")
		}
	}},
	{"writes every change of a batch", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "p1v1"))
		mustCommit(t, s, "praxis",
			change("Patient", "p2", 0, "p2v1", "x"),
			change("Patient", "p1", 1, "p1v2", "x"),
			change("Observation", "o1", 0, "o1v1", "x"),
		)
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), record("Patient", "p1", 2, "p1v2"))
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p2"), record("Patient", "p2", 1, "p2v1"))
		wantRecord(t, mustCurrent(t, s, "praxis", "Observation", "o1"), record("Observation", "o1", 1, "o1v1"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("x")}), 2, "p1", "p2")
	}},
	{"applies two changes to one resource in one batch in order", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis",
			change("Patient", "p1", 0, "v1", "first"),
			change("Patient", "p1", 1, "v2", "second"),
		)
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), record("Patient", "p1", 2, "v2"))
		wantRecord(t, mustVersion(t, s, "praxis", "Patient", "p1", 1), record("Patient", "p1", 1, "v1"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("first")}), 0)
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("second")}), 1, "p1")
	}},
	{"accepts an empty batch", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis")
	}},
	{"refuses a commit for an unknown tenant with ErrNotFound", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		err := s.Commit(t.Context(), "nobody", []storage.Change{change("Patient", "p1", 0, "v1", "anna")})
		wantErr(t, err, storage.ErrNotFound)
		wantNotFound(t, s, "nobody", "Patient", "p1")
	}},
	{"keeps a tombstone as current version but out of Find", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1", "anna"), change("Patient", "p2", 0, "v1", "anna"))
		mustCommit(t, s, "praxis", tombstone("Patient", "p1", 1))
		want := record("Patient", "p1", 2, "")
		want.Deleted = true
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), want)
		wantRecord(t, mustVersion(t, s, "praxis", "Patient", "p1", 2), want)
		wantRecord(t, mustVersion(t, s, "praxis", "Patient", "p1", 1), record("Patient", "p1", 1, "v1"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient"}), 1, "p2")
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("anna")}), 1, "p2")
		wantErr(t, s.Commit(t.Context(), "praxis", []storage.Change{change("Patient", "p1", 0, "again")}), storage.ErrConflict)
	}},
	{"revives a deleted resource with the tombstone's version as Expect", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1", "anna"))
		mustCommit(t, s, "praxis", tombstone("Patient", "p1", 1))
		mustCommit(t, s, "praxis", change("Patient", "p1", 2, "v3", "bert"))
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), record("Patient", "p1", 3, "v3"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("bert")}), 1, "p1")
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("anna")}), 0)
	}},
	{"applies a create, updates, a deletion and a revival of one resource in one batch in order", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis",
			change("Patient", "p1", 0, "v1", "first", "kept"),
			change("Patient", "p2", 0, "other", "kept"),
			change("Patient", "p1", 1, "v2", "second", "kept"),
			tombstone("Patient", "p1", 2),
			change("Patient", "p1", 3, "v4", "fourth", "kept"),
		)
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p1"), record("Patient", "p1", 4, "v4"))
		wantRecord(t, mustVersion(t, s, "praxis", "Patient", "p1", 2), record("Patient", "p1", 2, "v2"))
		if r := mustVersion(t, s, "praxis", "Patient", "p1", 3); !r.Deleted {
			t.Errorf("version 3 = %+v, want the tombstone", r)
		}
		for _, tok := range []string{"first", "second"} {
			wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups(tok)}), 0)
		}
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("fourth")}), 1, "p1")
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("kept")}), 2, "p1", "p2")
	}},
	{"writes a batch of two thousand changes, or none of it when one conflicts", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		const n = 1000
		var creates, updates []storage.Change
		for i := range n {
			creates = append(creates, change("Patient", fmt.Sprint("p", i), 0, "v1", fmt.Sprint("id:", i), fmt.Sprint("tenth:", i%10), "all"))
			updates = append(updates, change("Patient", fmt.Sprint("p", i), 1, "v2", fmt.Sprint("id:", i), fmt.Sprint("half:", i%2)))
		}
		mustCommit(t, s, "praxis", append(slices.Clone(creates), updates...)...)
		for i := range n {
			creates[i] = change("Patient", fmt.Sprint("q", i), 0, "v1", "late")
			updates[i].Expect, updates[i].Sealed, updates[i].Tokens = 2, []byte("v3"), [][]byte{[]byte("late")}
		}
		updates[n-1].Expect = 1 // stale: the whole batch fails
		wantErr(t, s.Commit(t.Context(), "praxis", append(creates, updates...)), storage.ErrConflict)
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "p7"), record("Patient", "p7", 2, "v2"))
		wantNotFound(t, s, "praxis", "Patient", "q7")
		for _, c := range []struct {
			tokens string
			total  int
		}{{"all", 0}, {"tenth:3", 0}, {"half:1", n / 2}, {"id:999", 1}, {"late", 0}} {
			if got := mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups(c.tokens), Limit: 1}).Total; got != c.total {
				t.Errorf("Find(%s) total %d, want %d", c.tokens, got, c.total)
			}
		}
	}},
	{"answers each of many concurrent commits with its own outcome", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		const workers = 24
		var setup []storage.Change
		for w := range workers {
			setup = append(setup, change("Patient", fmt.Sprint("own", w), 0, "v1", fmt.Sprint("own", w)))
		}
		mustCommit(t, s, "praxis", append(setup, change("Patient", "taken", 0, "v1"))...)
		// worker w: w%3 == 0 creates a resource that exists (ErrConflict), 1 updates its own
		// resource, 2 creates a new one; each commits its change with a new one beside it
		results := make([]error, workers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				<-start
				fresh := change("Patient", fmt.Sprint("fresh", w), 0, "v1", "fresh")
				var c storage.Change
				switch w % 3 {
				case 0:
					c = change("Patient", "taken", 0, fmt.Sprint("worker ", w), "fresh")
				case 1:
					c = change("Patient", fmt.Sprint("own", w), 1, "v2", "updated")
				default:
					c = change("Patient", fmt.Sprint("new", w), 0, "v1", "fresh")
				}
				results[w] = s.Commit(t.Context(), "praxis", []storage.Change{fresh, c})
			})
		}
		close(start)
		wg.Wait()
		var fresh, updated []string
		for w, err := range results {
			if w%3 == 0 {
				wantErr(t, err, storage.ErrConflict)
				wantNotFound(t, s, "praxis", "Patient", fmt.Sprint("fresh", w))
				continue
			}
			if err != nil {
				t.Errorf("worker %d: Commit: %v", w, err)
			}
			fresh = append(fresh, fmt.Sprint("fresh", w))
			if w%3 == 1 {
				updated = append(updated, fmt.Sprint("own", w))
				wantRecord(t, mustCurrent(t, s, "praxis", "Patient", fmt.Sprint("own", w)), record("Patient", fmt.Sprint("own", w), 2, "v2"))
			} else {
				fresh = append(fresh, fmt.Sprint("new", w))
			}
		}
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "taken"), record("Patient", "taken", 1, "v1"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("fresh")}), len(fresh), fresh...)
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("updated")}), len(updated), updated...)
	}},
	{"refuses a commit whose context has ended and writes nothing", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Commit(ctx, "praxis", []storage.Change{change("Patient", "p1", 0, "v1", "anna")}); !errors.Is(err, context.Canceled) {
			t.Errorf("Commit error = %v, want context.Canceled", err)
		}
		wantNotFound(t, s, "praxis", "Patient", "p1")
	}},
	{"stores repeated tokens of one change once", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1", "anna", "anna", "berlin", "anna"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("anna")}), 1, "p1")
		mustCommit(t, s, "praxis", change("Patient", "p1", 1, "v2", "bert", "bert"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("bert")}), 1, "p1")
	}},
}

var versionTests = []test{
	{"reads every older version", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		for v := range int64(4) {
			mustCommit(t, s, "praxis", change("Patient", "p1", v, fmt.Sprintf("v%d", v+1)))
		}
		for v := int64(1); v <= 4; v++ {
			wantRecord(t, mustVersion(t, s, "praxis", "Patient", "p1", v), record("Patient", "p1", v, fmt.Sprintf("v%d", v)))
		}
	}},
	{"reports a missing version as ErrNotFound", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1"))
		mustCommit(t, s, "praxis", change("Patient", "p1", 1, "v2"))
		for _, tc := range []struct {
			name, tenant, typ, id string
			version               int64
		}{
			{"version 0", "praxis", "Patient", "p1", 0},
			{"negative version", "praxis", "Patient", "p1", -1},
			{"version after the current", "praxis", "Patient", "p1", 3},
			{"unknown id", "praxis", "Patient", "p2", 1},
			{"other type", "praxis", "Observation", "p1", 1},
			{"unknown tenant", "other", "Patient", "p1", 1},
		} {
			_, err := s.Version(t.Context(), tc.tenant, tc.typ, []byte(tc.id), tc.version)
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: Version error = %v, want ErrNotFound", tc.name, err)
			}
		}
	}},
	{"forgets the earlier versions when a change says so", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		for v := range int64(3) {
			mustCommit(t, s, "praxis", change("red:state", "s1", v, fmt.Sprintf("v%d", v+1), "old"))
		}
		mustCommit(t, s, "praxis", forgetting(change("red:state", "s1", 3, "v4", "new")), change("red:state", "s2", 0, "w1"))
		for v := int64(1); v <= 3; v++ {
			if _, err := s.Version(t.Context(), "praxis", "red:state", []byte("s1"), v); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("forgotten version %d: error = %v, want ErrNotFound", v, err)
			}
		}
		wantRecord(t, mustCurrent(t, s, "praxis", "red:state", "s1"), record("red:state", "s1", 4, "v4"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "red:state", All: groups("new")}), 1, "s1")
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "red:state", All: groups("old")}), 0)
		mustCommit(t, s, "praxis", change("red:state", "s1", 4, "v5"))
		wantRecord(t, mustVersion(t, s, "praxis", "red:state", "s1", 4), record("red:state", "s1", 4, "v4"))
		wantRecord(t, mustCurrent(t, s, "praxis", "red:state", "s2"), record("red:state", "s2", 1, "w1"))
	}},
	{"keeps nothing of a resource after a deletion that forgets", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("red:state", "s1", 0, "v1", "tok"), change("red:state", "s2", 0, "w1", "tok"))
		mustCommit(t, s, "praxis", change("red:state", "s1", 1, "v2", "tok"))
		mustCommit(t, s, "praxis", forgetting(tombstone("red:state", "s1", 2)), forgetting(tombstone("red:state", "s2", 1)))
		for _, id := range []string{"s1", "s2"} {
			wantNotFound(t, s, "praxis", "red:state", id)
			if _, err := s.Version(t.Context(), "praxis", "red:state", []byte(id), 1); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("version 1 of %s: error = %v, want ErrNotFound", id, err)
			}
		}
		heads, err := s.Heads(t.Context(), "praxis", []storage.Key{{Type: "red:state", ID: []byte("s1")}}, storage.Exclusion{})
		if err != nil || heads[0].Version != 0 {
			t.Errorf("Heads = %+v, %v; want version 0", heads, err)
		}
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "red:state", All: groups("tok")}), 0)
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "red:state"}), 0)
		// the id is free again
		mustCommit(t, s, "praxis", change("red:state", "s1", 0, "again"))
		wantRecord(t, mustCurrent(t, s, "praxis", "red:state", "s1"), record("red:state", "s1", 1, "again"))
	}},
	{"checks the version of a change that forgets", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("red:state", "s1", 0, "v1"), change("red:state", "s2", 0, "w1"))
		mustCommit(t, s, "praxis", change("red:state", "s1", 1, "v2"))
		for _, changes := range [][]storage.Change{
			{forgetting(tombstone("red:state", "s1", 1))},
			{forgetting(tombstone("red:state", "missing", 0))},
			{forgetting(change("red:state", "s1", 1, "v3"))},
			{forgetting(tombstone("red:state", "s2", 1)), change("red:state", "s1", 1, "v3")},
		} {
			wantErr(t, s.Commit(t.Context(), "praxis", changes), storage.ErrConflict)
		}
		wantRecord(t, mustVersion(t, s, "praxis", "red:state", "s1", 1), record("red:state", "s1", 1, "v1"))
		wantRecord(t, mustCurrent(t, s, "praxis", "red:state", "s1"), record("red:state", "s1", 2, "v2"))
		wantRecord(t, mustCurrent(t, s, "praxis", "red:state", "s2"), record("red:state", "s2", 1, "w1"))
	}},
	{"reports an unknown resource as ErrNotFound", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1"))
		for _, tc := range []struct{ tenant, typ, id string }{
			{"praxis", "Patient", "p2"},
			{"praxis", "Patient", "p"},
			{"praxis", "Observation", "p1"},
			{"other", "Patient", "p1"},
		} {
			wantNotFound(t, s, tc.tenant, tc.typ, tc.id)
		}
	}},
}

var isolationTests = []test{
	{"keeps the same type and id in two tenants apart", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "a")
		mustCreateTenant(t, s, "b")
		mustCommit(t, s, "a", change("Patient", "p1", 0, "a1", "anna"))
		mustCommit(t, s, "b", change("Patient", "p1", 0, "b1", "anna"))
		mustCommit(t, s, "a", change("Patient", "p1", 1, "a2", "anna"))
		mustCommit(t, s, "a", change("Patient", "p1", 2, "a3", "anna"))
		wantRecord(t, mustCurrent(t, s, "a", "Patient", "p1"), record("Patient", "p1", 3, "a3"))
		wantRecord(t, mustCurrent(t, s, "b", "Patient", "p1"), record("Patient", "p1", 1, "b1"))
		if _, err := s.Version(t.Context(), "b", "Patient", []byte("p1"), 2); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Version(b, 2) error = %v, want ErrNotFound", err)
		}
		wantErr(t, s.Commit(t.Context(), "b", []storage.Change{change("Patient", "p1", 3, "b?")}), storage.ErrConflict)
		mustCommit(t, s, "b", tombstone("Patient", "p1", 1))
		wantRecord(t, mustCurrent(t, s, "a", "Patient", "p1"), record("Patient", "p1", 3, "a3"))
		wantIDs(t, s, mustFind(t, s, "a", storage.Query{Type: "Patient", All: groups("anna")}), 1, "p1")
	}},
	{"keeps the same id in two types apart", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "x", 0, "patient", "anna"))
		mustCommit(t, s, "praxis", change("Observation", "x", 0, "observation", "anna"))
		mustCommit(t, s, "praxis", change("Observation", "x", 1, "observation 2", "bert"))
		wantRecord(t, mustCurrent(t, s, "praxis", "Patient", "x"), record("Patient", "x", 1, "patient"))
		wantRecord(t, mustCurrent(t, s, "praxis", "Observation", "x"), record("Observation", "x", 2, "observation 2"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("anna")}), 1, "x")
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Observation", All: groups("anna")}), 0)
	}},
	{"never finds another tenant's resources", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "a")
		mustCreateTenant(t, s, "b")
		mustCommit(t, s, "a", change("Patient", "a1", 0, "x", "anna"), change("Patient", "a2", 0, "x", "anna"))
		mustCommit(t, s, "b", change("Patient", "b1", 0, "x", "anna"))
		wantIDs(t, s, mustFind(t, s, "a", storage.Query{Type: "Patient", All: groups("anna")}), 2, "a1", "a2")
		wantIDs(t, s, mustFind(t, s, "b", storage.Query{Type: "Patient", All: groups("anna")}), 1, "b1")
		wantIDs(t, s, mustFind(t, s, "b", storage.Query{Type: "Patient"}), 1, "b1")
	}},
}

var findTests = []test{
	{"finds every resource of a type without groups", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis",
			change("Patient", "p2", 0, "x", "anna"),
			change("Patient", "p1", 0, "x"),
			change("Observation", "o1", 0, "x", "anna"),
		)
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient"}), 2, "p1", "p2")
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Observation"}), 1, "o1")
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Encounter"}), 0)
	}},
	{"matches every group and any token within a group", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		c := func(id string, tokens ...[]byte) storage.Change {
			ch := change("Patient", id, 0, "sealed "+id)
			ch.Tokens = tokens
			return ch
		}
		b := func(s string) []byte { return []byte(s) }
		mustCommit(t, s, "praxis",
			c("p1", b("name:anna"), b("city:berlin"), []byte{0x00}),
			c("p2", b("name:anna"), b("city:hamburg")),
			c("p3", b("name:bert"), b("city:berlin"), []byte{0xff, 0x00}),
			c("p4", b("name:carl")),
		)
		o := change("Observation", "o1", 0, "x")
		o.Tokens = [][]byte{b("name:anna")}
		mustCommit(t, s, "praxis", o)
		for _, tc := range []struct {
			name string
			typ  string
			all  [][][]byte
			want []string
		}{
			{"one token", "Patient", [][][]byte{{b("name:anna")}}, []string{"p1", "p2"}},
			{"either token of one group", "Patient", [][][]byte{{b("name:anna"), b("name:bert")}}, []string{"p1", "p2", "p3"}},
			{"both groups", "Patient", [][][]byte{{b("name:anna")}, {b("city:berlin")}}, []string{"p1"}},
			{"any within and every across", "Patient", [][][]byte{{b("name:anna"), b("name:bert")}, {b("city:berlin")}}, []string{"p1", "p3"}},
			{"three groups", "Patient", [][][]byte{{b("name:anna"), b("name:bert")}, {b("city:berlin")}, {[]byte{0xff, 0x00}}}, []string{"p3"}},
			{"unknown token", "Patient", [][][]byte{{b("name:dora")}}, nil},
			{"group no resource satisfies", "Patient", [][][]byte{{b("name:anna")}, {b("city:koeln")}}, nil},
			{"zero byte token", "Patient", [][][]byte{{[]byte{0x00}}}, []string{"p1"}},
			{"high byte token", "Patient", [][][]byte{{[]byte{0xff, 0x00}}}, []string{"p3"}},
			{"prefix of a token", "Patient", [][][]byte{{[]byte{0xff}}, {b("name:")}}, nil},
			{"same group twice", "Patient", [][][]byte{{b("name:anna")}, {b("name:anna")}}, []string{"p1", "p2"}},
			{"token repeated within a group", "Patient", [][][]byte{{b("name:anna"), b("name:anna")}}, []string{"p1", "p2"}},
			{"empty group", "Patient", [][][]byte{{b("name:anna")}, {}}, nil},
			{"other type", "Observation", [][][]byte{{b("name:anna")}}, []string{"o1"}},
		} {
			page, err := s.Find(t.Context(), "praxis", storage.Query{Type: tc.typ, All: tc.all})
			if err != nil {
				t.Errorf("%s: Find: %v", tc.name, err)
				continue
			}
			inOrder(s, tc.typ, tc.want)
			if got := idsOf(page); !slices.Equal(got, tc.want) || page.Total != len(tc.want) {
				t.Errorf("%s: Find = %q (total %d), want %q (total %d)", tc.name, got, page.Total, tc.want, len(tc.want))
			}
		}
	}},
	{"pages in id byte order and counts every match", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		sorted := [][]byte{
			{0x00}, {0x00, 0x00}, {0x00, 0x01}, {0x01}, {0x7f},
			{0x80}, {0xfe, 0xff}, {0xff}, {0xff, 0x00}, {0xff, 0xff},
		}
		slices.SortStableFunc(sorted, byOrderKey(s, "Patient"))
		var changes []storage.Change
		for _, i := range []int{7, 2, 9, 0, 5, 3, 8, 1, 6, 4} {
			changes = append(changes, storage.Change{
				Type: "Patient", ID: sorted[i], Updated: base, Sealed: []byte{byte(i)}, Tokens: [][]byte{[]byte("all")},
			})
		}
		changes = append(changes,
			storage.Change{Type: "Patient", ID: []byte{0x50}, Updated: base, Sealed: []byte("gone"), Tokens: [][]byte{[]byte("all")}},
			storage.Change{Type: "Observation", ID: []byte{0x60}, Updated: base, Sealed: []byte("other"), Tokens: [][]byte{[]byte("all")}},
		)
		mustCommit(t, s, "praxis", changes...)
		mustCommit(t, s, "praxis", storage.Change{Type: "Patient", ID: []byte{0x50}, Expect: 1, Updated: base, Deleted: true})
		// Versions that disagree with the id order, so that only the id order passes.
		for _, i := range []int{0, 0, 1, 5} {
			cur := mustCurrent(t, s, "praxis", "Patient", string(sorted[i]))
			mustCommit(t, s, "praxis", storage.Change{
				Type: "Patient", ID: sorted[i], Expect: cur.Version, Updated: base, Sealed: []byte{byte(i)}, Tokens: [][]byte{[]byte("all")},
			})
		}
		for _, tc := range []struct {
			offset, limit int
			from, to      int
		}{
			{0, 0, 0, 10},
			{0, 3, 0, 3},
			{3, 3, 3, 6},
			{9, 3, 9, 10},
			{4, 0, 4, 10},
			{0, 10, 0, 10},
			{0, 100, 0, 10},
			{10, 3, 10, 10},
			{25, 0, 10, 10},
		} {
			for _, all := range [][][][]byte{nil, {{[]byte("all")}}} {
				page, err := s.Find(t.Context(), "praxis", storage.Query{Type: "Patient", All: all, Offset: tc.offset, Limit: tc.limit})
				if err != nil {
					t.Fatalf("Find(offset %d, limit %d): %v", tc.offset, tc.limit, err)
				}
				want := sorted[tc.from:tc.to]
				var got [][]byte
				for _, r := range page.Records {
					got = append(got, r.ID)
				}
				if !slices.EqualFunc(got, want, bytes.Equal) || page.Total != len(sorted) {
					t.Errorf("Find(offset %d, limit %d, groups %d) = %x (total %d), want %x (total %d)",
						tc.offset, tc.limit, len(all), got, page.Total, want, len(sorted))
				}
			}
		}
	}},
	{"no longer matches tokens an update replaced", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1", "name:anna", "city:berlin"))
		mustCommit(t, s, "praxis", change("Patient", "p1", 1, "v2", "name:anna-maria", "city:berlin"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("name:anna")}), 0)
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("name:anna-maria")}), 1, "p1")
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("city:berlin")}), 1, "p1")
		mustCommit(t, s, "praxis", change("Patient", "p1", 2, "v3"))
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("city:berlin name:anna-maria")}), 0)
		wantIDs(t, s, mustFind(t, s, "praxis", storage.Query{Type: "Patient"}), 1, "p1")
	}},
	{"returns the current version of each match", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "p1v1", "anna"), change("Patient", "p2", 0, "p2v1", "anna"))
		mustCommit(t, s, "praxis", change("Patient", "p2", 1, "p2v2", "anna"))
		page := mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("anna")})
		wantIDs(t, s, page, 2, "p1", "p2")
		for _, r := range page.Records {
			switch string(r.ID) {
			case "p1":
				wantRecord(t, r, record("Patient", "p1", 1, "p1v1"))
			case "p2":
				wantRecord(t, r, record("Patient", "p2", 2, "p2v2"))
			}
		}
	}},
	{"finds nothing in an unknown tenant", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis", change("Patient", "p1", 0, "v1", "anna"))
		wantIDs(t, s, mustFind(t, s, "other", storage.Query{Type: "Patient"}), 0)
		wantIDs(t, s, mustFind(t, s, "other", storage.Query{Type: "Patient", All: groups("anna")}), 0)
	}},
	{"counts and pages the matches of a disjoint group once each, in a stable order", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		want := map[string]storage.Record{}
		var changes []storage.Change
		for i, tok := range strings.Fields("a c a a d c b a c a a c a d c a a c a c d a a c a") {
			id := fmt.Sprintf("p%02d", i)
			changes = append(changes, change("Patient", id, 0, id, "at:"+tok, "active", id))
			want[id] = record("Patient", id, 1, id)
		}
		changes = append(changes,
			change("Patient", "moved", 0, "moved v1", "at:a", "active"),
			change("Patient", "gone", 0, "gone", "at:a", "active"),
			change("Observation", "o1", 0, "o1", "at:a"),
		)
		mustCommit(t, s, "praxis", changes...)
		mustCommit(t, s, "praxis", change("Patient", "moved", 1, "moved v2", "at:c", "active"), tombstone("Patient", "gone", 1))
		want["moved"] = record("Patient", "moved", 2, "moved v2")
		// in no order, with a token nobody carries and one named twice
		all := [][][]byte{{[]byte("at:e"), []byte("at:c"), []byte("at:a"), []byte("at:b"), []byte("at:d"), []byte("at:b")}}
		find := func(offset, limit int) storage.Page {
			t.Helper()
			page := mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: all, Disjoint: true, Offset: offset, Limit: limit})
			if page.Total != len(want) {
				t.Fatalf("Find(offset %d, limit %d): total %d, want %d", offset, limit, page.Total, len(want))
			}
			return page
		}
		full := find(0, 0)
		seen := map[string]bool{}
		for _, r := range full.Records {
			if seen[string(r.ID)] {
				t.Errorf("Find lists %q twice", r.ID)
			}
			seen[string(r.ID)] = true
			if w, ok := want[string(r.ID)]; ok {
				wantRecord(t, r, w)
			} else {
				t.Errorf("Find lists %q, which does not match", r.ID)
			}
		}
		if len(seen) != len(want) {
			t.Errorf("Find lists %d resources, want %d", len(seen), len(want))
		}
		order := idsOf(full)
		if again := idsOf(find(0, 0)); !slices.Equal(again, order) {
			t.Errorf("Find lists %q, then %q", order, again)
		}
		for _, limit := range []int{1, 3, 10, len(want), 100} {
			for offset := 0; offset <= len(want)+limit; offset += limit {
				wantIDs := order[min(offset, len(order)):min(offset+limit, len(order))]
				if got := idsOf(find(offset, limit)); !slices.Equal(got, wantIDs) {
					t.Errorf("Find(offset %d, limit %d) = %q, want %q", offset, limit, got, wantIDs)
				}
			}
		}
	}},
	{"answers a query with one token or several groups alike, disjoint or not", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis",
			change("Patient", "p1", 0, "x", "name:anna", "city:berlin"),
			change("Patient", "p2", 0, "x", "name:anna", "city:hamburg"),
			change("Patient", "p3", 0, "x", "name:bert", "city:berlin"),
			change("Patient", "p4", 0, "x", "name:carl", "city:berlin"),
		)
		for _, tc := range []struct {
			name string
			all  [][][]byte
			want []string
		}{
			{"one token", groups("city:berlin"), []string{"p1", "p3", "p4"}},
			{"several groups", [][][]byte{{[]byte("name:anna"), []byte("name:bert")}, {[]byte("city:berlin")}}, []string{"p1", "p3"}},
			{"no groups", nil, []string{"p1", "p2", "p3", "p4"}},
			{"an empty group", [][][]byte{{}}, nil},
		} {
			inOrder(s, "Patient", tc.want)
			for offset := range 4 {
				q := storage.Query{Type: "Patient", All: tc.all, Disjoint: true, Offset: offset, Limit: 2}
				page := mustFind(t, s, "praxis", q)
				want := tc.want[min(offset, len(tc.want)):min(offset+2, len(tc.want))]
				if got := idsOf(page); !slices.Equal(got, want) || page.Total != len(tc.want) {
					t.Errorf("%s: Find(offset %d) = %q (total %d), want %q (total %d)", tc.name, offset, got, page.Total, want, len(tc.want))
				}
			}
		}
	}},
}

// excludeTests check storage.Exclusion in Find (every plan: one token, one group, several
// groups, none, disjoint) and in Heads: the data of groups a reader is no member of.
var excludeTests = []test{
	{"finds, counts and pages as if the excluded resources did not exist", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis",
			change("Patient", "p1", 0, "x", "name:anna", "city:berlin", "at:a", "mark", "group:a"),
			change("Patient", "p2", 0, "x", "name:anna", "city:berlin", "at:b", "mark", "group:b"),
			change("Patient", "p3", 0, "x", "name:anna", "city:hamburg", "at:a"),
			change("Patient", "p4", 0, "x", "name:bert", "city:berlin", "at:b", "mark", "group:a", "group:c"),
			change("Patient", "p5", 0, "x", "name:bert", "city:berlin", "at:a"),
			change("Observation", "o1", 0, "x", "name:anna", "mark", "group:b"),
		)
		b := func(s string) []byte { return []byte(s) }
		ex := func(unless ...string) storage.Exclusion {
			e := storage.Exclusion{Token: b("mark")}
			for _, u := range unless {
				e.Unless = append(e.Unless, b(u))
			}
			return e
		}
		for _, tc := range []struct {
			name     string
			typ      string
			all      [][][]byte
			disjoint bool
			ex       storage.Exclusion
			want     []string
		}{
			{"nothing excluded without a token", "Patient", groups("name:anna"), false, storage.Exclusion{Unless: [][]byte{b("group:a")}}, []string{"p1", "p2", "p3"}},
			{"one token, no exceptions", "Patient", groups("name:anna"), false, ex(), []string{"p3"}},
			{"one token, one exception", "Patient", groups("name:anna"), false, ex("group:a"), []string{"p1", "p3"}},
			{"one group", "Patient", groups("name:anna name:bert"), false, ex("group:b"), []string{"p2", "p3", "p5"}},
			{"several groups", "Patient", [][][]byte{{b("name:anna"), b("name:bert")}, {b("city:berlin")}}, false, ex("group:c"), []string{"p4", "p5"}},
			{"no groups", "Patient", nil, false, ex("group:a"), []string{"p1", "p3", "p4", "p5"}},
			{"either exception", "Patient", nil, false, ex("group:b", "group:c"), []string{"p2", "p3", "p4", "p5"}},
			{"an exception nobody carries", "Patient", nil, false, ex("group:z"), []string{"p3", "p5"}},
			{"disjoint", "Patient", groups("at:a at:b"), true, ex("group:a"), []string{"p1", "p3", "p4", "p5"}},
			{"other type", "Observation", groups("name:anna"), false, ex("group:a"), nil},
		} {
			want := slices.Clone(tc.want)
			inOrder(s, tc.typ, want)
			full := mustFind(t, s, "praxis", storage.Query{Type: tc.typ, All: tc.all, Disjoint: tc.disjoint, Exclude: tc.ex})
			got := idsOf(full)
			if tc.disjoint { // in an order of the store's own
				slices.Sort(got)
				slices.Sort(want)
			}
			if !slices.Equal(got, want) || full.Total != len(want) {
				t.Errorf("%s: Find = %q (total %d), want %q (total %d)", tc.name, got, full.Total, want, len(want))
			}
			for offset := range len(want) + 1 {
				page := mustFind(t, s, "praxis", storage.Query{Type: tc.typ, All: tc.all, Disjoint: tc.disjoint, Exclude: tc.ex, Offset: offset, Limit: 1})
				if page.Total != len(want) || len(page.Records) != min(1, len(want)-offset) {
					t.Errorf("%s: Find(offset %d, limit 1) = %q (total %d), want one of %d", tc.name, offset, idsOf(page), page.Total, len(want))
				}
			}
		}
	}},
	{"answers heads the exclusion leaves out as never written", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		mustCommit(t, s, "praxis",
			change("Patient", "p1", 0, "x", "anna", "mark", "group:a"),
			change("Patient", "p2", 0, "x", "anna"),
			change("Patient", "p3", 0, "x", "anna", "mark", "group:b"),
		)
		mustCommit(t, s, "praxis", tombstone("Patient", "p3", 1))
		keys := []storage.Key{{Type: "Patient", ID: []byte("p1")}, {Type: "Patient", ID: []byte("p2")}, {Type: "Patient", ID: []byte("p3")}, {Type: "Patient", ID: []byte("p9")}}
		for _, tc := range []struct {
			name string
			ex   storage.Exclusion
			want []int64
		}{
			{"nothing excluded", storage.Exclusion{}, []int64{1, 1, 2, 0}},
			{"a member of the group", storage.Exclusion{Token: []byte("mark"), Unless: [][]byte{[]byte("group:a")}}, []int64{1, 1, 2, 0}},
			{"a member of no group", storage.Exclusion{Token: []byte("mark")}, []int64{0, 1, 2, 0}},
		} {
			got, err := s.Heads(t.Context(), "praxis", keys, tc.ex)
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range got {
				if h.Version != tc.want[i] || string(h.ID) != string(keys[i].ID) {
					t.Errorf("%s: head of %s = version %d, want %d", tc.name, keys[i].ID, h.Version, tc.want[i])
				}
			}
			if !got[2].Deleted {
				t.Errorf("%s: the tombstone of p3 is not deleted: %+v", tc.name, got[2])
			}
		}
	}},
}

var roundTripTests = []test{
	{"keeps Updated in UTC at microsecond precision", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		for i, tc := range []struct {
			name string
			in   time.Time
		}{
			{"nanoseconds are cut", time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC)},
			{"another zone comes back as UTC", time.Date(2025, 10, 26, 2, 30, 0, 999999999, time.FixedZone("CEST", 2*3600))},
			{"exact microseconds stay", time.Date(2030, 1, 1, 0, 0, 0, 1000, time.UTC)},
			{"before 1970 is cut towards the past", time.Date(1969, 12, 31, 23, 59, 59, 999999500, time.UTC)},
			{"before 2000", time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -5*3600))},
			{"far future", time.Date(2999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		} {
			id := fmt.Sprintf("p%d", i)
			c := change("Patient", id, 0, "x", "t")
			c.Updated = tc.in
			mustCommit(t, s, "praxis", c)
			got := mustCurrent(t, s, "praxis", "Patient", id)
			wantTime(t, tc.name+": Current", got.Updated, tc.in)
			got = mustVersion(t, s, "praxis", "Patient", id, 1)
			wantTime(t, tc.name+": Version", got.Updated, tc.in)
		}
		page := mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("t")})
		for _, r := range page.Records {
			if r.Updated.Location() != time.UTC {
				t.Errorf("Find: Updated of %s in %v, want UTC", r.ID, r.Updated.Location())
			}
		}
	}},
	{"keeps sealed bytes exactly", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		every := make([]byte, 512)
		for i := range 256 {
			every[i], every[511-i] = byte(i), byte(i)
		}
		big := make([]byte, 1<<20)
		rng := rand.NewChaCha8([32]byte{1, 2, 3})
		_, _ = rng.Read(big)
		for i, tc := range []struct {
			name   string
			sealed []byte
		}{
			{"every byte value", every},
			{"a single zero byte", []byte{0x00}},
			{"leading and trailing zeros", []byte{0, 0, 1, 0, 0}},
			{"invalid UTF-8", []byte{0xc3, 0x28, 0xff, 0xfe, 0x80}},
			{"a backslash and quotes", []byte(`\x00'"\\`)},
			{"one mebibyte", big},
		} {
			id := fmt.Appendf(nil, "p%d", i)
			mustCommit(t, s, "praxis", storage.Change{Type: "Patient", ID: id, Updated: base, Sealed: tc.sealed, Tokens: [][]byte{id}})
			got, err := s.Current(t.Context(), "praxis", "Patient", id)
			if err != nil {
				t.Fatalf("%s: Current: %v", tc.name, err)
			}
			if !bytes.Equal(got.Sealed, tc.sealed) {
				t.Errorf("%s: Current returned %d bytes that differ from the %d written", tc.name, len(got.Sealed), len(tc.sealed))
			}
			page := mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: [][][]byte{{id}}})
			if len(page.Records) != 1 || !bytes.Equal(page.Records[0].Sealed, tc.sealed) {
				t.Errorf("%s: Find did not return the sealed bytes written", tc.name)
			}
		}
	}},
	{"keeps id tokens with zero and high bytes exactly", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		long := make([]byte, 32)
		for i := range long {
			long[i] = byte(255 - i*7)
		}
		ids := [][]byte{{0x00}, {0x00, 0x00, 0x00}, {0xff, 0x00, 0x80}, []byte("p\x00q"), long}
		for _, id := range ids {
			mustCommit(t, s, "praxis", storage.Change{Type: "Patient", ID: id, Updated: base, Sealed: id, Tokens: [][]byte{[]byte("t")}})
		}
		for _, id := range ids {
			got, err := s.Current(t.Context(), "praxis", "Patient", id)
			if err != nil {
				t.Errorf("Current(%x): %v", id, err)
				continue
			}
			if !bytes.Equal(got.ID, id) || !bytes.Equal(got.Sealed, id) {
				t.Errorf("Current(%x) = id %x sealed %x", id, got.ID, got.Sealed)
			}
		}
		page := mustFind(t, s, "praxis", storage.Query{Type: "Patient", All: groups("t")})
		want := slices.Clone(ids)
		slices.SortFunc(want, byOrderKey(s, "Patient"))
		var got [][]byte
		for _, r := range page.Records {
			got = append(got, r.ID)
		}
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("Find ids = %x, want %x", got, want)
		}
	}},
}

var concurrencyTests = []test{
	{"lets exactly one racing creator win", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		raceCreates(t, []storage.Store{s}, 8)
	}},
	{"lets exactly one racing writer win each version", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		raceUpdates(t, []storage.Store{s}, 8, 25)
	}},
	{"loses no update when batches race over shared resources", func(t *testing.T, s storage.Store) {
		mustCreateTenant(t, s, "praxis")
		raceBatches(t, []storage.Store{s}, 8, 15)
	}},
}

// raceCreates lets workers create one resource at once (Expect 0) through stores in turn:
// exactly one must win, the others must get ErrConflict.
func raceCreates(t testing.TB, stores []storage.Store, workers int) {
	t.Helper()
	results := make(chan error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			<-start
			results <- s.Commit(t.Context(), "praxis", []storage.Change{change("Patient", "p1", 0, fmt.Sprintf("worker %d", w), "anna")})
		})
	}
	close(start)
	wg.Wait()
	close(results)
	wins := 0
	for err := range results {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("racing create: %v, want nil or ErrConflict", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d creators won, want exactly 1", wins)
	}
	if got := mustCurrent(t, stores[0], "praxis", "Patient", "p1"); got.Version != 1 {
		t.Errorf("Version = %d after racing creates, want 1", got.Version)
	}
}

// raceUpdates lets workers read the current version of one resource and write the next,
// rounds times each, through stores in turn. Every failure must be ErrConflict, no two
// writers may win the same version, and the final version must count every success.
func raceUpdates(t testing.TB, stores []storage.Store, workers, rounds int) {
	t.Helper()
	ctx := t.Context()
	id := []byte("contested")
	mustCommit(t, stores[0], "praxis", storage.Change{Type: "Patient", ID: id, Updated: base, Sealed: []byte("initial")})
	var (
		mu      sync.Mutex
		winners = map[int64]string{} // version → sealed bytes of the writer that won it
		errs    []error
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			<-start
			for r := range rounds {
				cur, err := s.Current(ctx, "praxis", "Patient", id)
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("current: %w", err))
					mu.Unlock()
					return
				}
				sealed := fmt.Sprintf("worker %d round %d", w, r)
				err = s.Commit(ctx, "praxis", []storage.Change{{
					Type: "Patient", ID: id, Expect: cur.Version, Updated: base.Add(time.Duration(cur.Version) * time.Second),
					Sealed: []byte(sealed), Tokens: [][]byte{fmt.Appendf(nil, "worker %d", w)},
				}})
				mu.Lock()
				switch {
				case err == nil:
					if prev, ok := winners[cur.Version+1]; ok {
						errs = append(errs, fmt.Errorf("version %d won by %q and %q", cur.Version+1, prev, sealed))
					}
					winners[cur.Version+1] = sealed
				case !errors.Is(err, storage.ErrConflict):
					errs = append(errs, fmt.Errorf("commit: %w", err))
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("racing writer: %v", err)
	}
	cur := mustCurrent(t, stores[0], "praxis", "Patient", string(id))
	if want := int64(1 + len(winners)); cur.Version != want {
		t.Fatalf("final version %d, want %d (1 create + %d successful commits)", cur.Version, want, len(winners))
	}
	if len(winners) < rounds {
		t.Errorf("only %d commits succeeded, want at least %d (one per round)", len(winners), rounds)
	}
	for v, sealed := range winners {
		got := mustVersion(t, stores[len(stores)-1], "praxis", "Patient", string(id), v)
		if string(got.Sealed) != sealed {
			t.Errorf("version %d holds %q, but %q won it", v, got.Sealed, sealed)
		}
	}
	page := mustFind(t, stores[0], "praxis", storage.Query{Type: "Patient"})
	if page.Total != 1 {
		t.Errorf("Find total %d after racing updates, want 1", page.Total)
	}
}

// raceBatches lets workers update two resources in one batch, half of them naming the
// resources in the opposite order, through stores in turn. Every failure must be
// ErrConflict (never a deadlock or busy error) and both resources must end at the same
// version, one more than the successful batches.
func raceBatches(t testing.TB, stores []storage.Store, workers, rounds int) {
	t.Helper()
	ctx := t.Context()
	mustCommit(t, stores[0], "praxis", change("Patient", "a", 0, "a"), change("Patient", "b", 0, "b"))
	var (
		wins atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for w := range workers {
		s := stores[w%len(stores)]
		order := []string{"a", "b"}
		if w%2 == 1 {
			order = []string{"b", "a"}
		}
		wg.Go(func() {
			<-start
			for range rounds {
				var changes []storage.Change
				for _, id := range order {
					cur, err := s.Current(ctx, "praxis", "Patient", []byte(id))
					if err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("current: %w", err))
						mu.Unlock()
						return
					}
					changes = append(changes, change("Patient", id, cur.Version, fmt.Sprintf("worker %d", w), id))
				}
				err := s.Commit(ctx, "praxis", changes)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, storage.ErrConflict):
					mu.Lock()
					errs = append(errs, fmt.Errorf("commit: %w", err))
					mu.Unlock()
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("racing batch: %v", err)
	}
	a := mustCurrent(t, stores[0], "praxis", "Patient", "a")
	b := mustCurrent(t, stores[0], "praxis", "Patient", "b")
	if a.Version != b.Version || a.Version != 1+wins.Load() {
		t.Errorf("versions a=%d b=%d after %d successful batches, want both %d", a.Version, b.Version, wins.Load(), 1+wins.Load())
	}
	if wins.Load() < int64(rounds) {
		t.Errorf("only %d batches succeeded, want at least %d", wins.Load(), rounds)
	}
}

// BenchmarkCommit measures Commit of batches of ten new resources, each with 2 KiB of
// sealed bytes and four tokens, into the store newStore returns.
func BenchmarkCommit(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	mustCreateTenant(b, s, "bench")
	sealed := benchSealed()
	n := uint64(0)
	for b.Loop() {
		changes := make([]storage.Change, 10)
		for i := range changes {
			n++
			changes[i] = benchChange(n, sealed)
		}
		if err := s.Commit(b.Context(), "bench", changes); err != nil {
			b.Fatalf("Commit: %v", err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkFind measures Find by one token among 10,000 resources of one type (a first page
// of 20), for a token one resource carries and for tokens 10 and 1,000 resources share; and
// the same for a reader who is a member of one user group, where the exclusion leaves out the
// tenth of the resources that belong to the two other groups' (two in three of the marked).
func BenchmarkFind(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	benchLoad(b, s)
	member := storage.Exclusion{Token: []byte("mark"), Unless: [][]byte{[]byte("group:0")}}
	for _, bc := range []struct {
		name  string
		token []byte
		want  func(n uint64) bool
	}{
		{"unique token", []byte("id:4242"), func(n uint64) bool { return n == 4242 }},
		{"token of 10", []byte("name:42"), func(n uint64) bool { return n%1000 == 42 }},
		{"token of 1000", []byte("city:4"), func(n uint64) bool { return n%10 == 4 }},
	} {
		for _, ex := range []struct {
			name string
			ex   storage.Exclusion
		}{{"", storage.Exclusion{}}, {", member of a group", member}} {
			want := 0
			for n := range uint64(benchTotal) {
				if bc.want(n) && (ex.ex.Token == nil || !benchMarked(n) || benchGroup(n) == 0) {
					want++
				}
			}
			b.Run(bc.name+ex.name, func(b *testing.B) {
				q := storage.Query{Type: "Patient", All: [][][]byte{{bc.token}}, Limit: 20, Exclude: ex.ex}
				for b.Loop() {
					page, err := s.Find(b.Context(), "bench", q)
					if err != nil {
						b.Fatalf("Find: %v", err)
					}
					if page.Total != want {
						b.Fatalf("Find total %d, want %d", page.Total, want)
					}
				}
			})
		}
	}
}

// BenchmarkCommitLarge measures Commit of batches of 1,000 new resources, as a bulk import
// sends them, each with 2 KiB of sealed bytes and four tokens.
func BenchmarkCommitLarge(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	mustCreateTenant(b, s, "bench")
	sealed := benchSealed()
	n := uint64(0)
	for b.Loop() {
		changes := make([]storage.Change, 1000)
		for i := range changes {
			changes[i] = benchChange(n, sealed)
			n++
		}
		if err := s.Commit(b.Context(), "bench", changes); err != nil {
			b.Fatalf("Commit: %v", err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkCommitParallel measures Commit by eight clients at once: each Commit writes a new Patient (2 KiB sealed, four tokens) and the record of the
// bundle that brought it (256 bytes sealed, two tokens), as a one-patient transaction bundle
// does.
func BenchmarkCommitParallel(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	mustCreateTenant(b, s, "bench")
	sealed := benchSealed()
	var n atomic.Uint64
	b.SetParallelism(clients(8))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			record := storage.Change{
				Type: "Bundle", ID: binary.BigEndian.AppendUint64([]byte("bundle-"), i), Updated: base, Sealed: sealed[:256],
				Tokens: [][]byte{fmt.Appendf(nil, "bundle:%d", i), []byte("transaction")},
			}
			if err := s.Commit(b.Context(), "bench", []storage.Change{benchChange(i, sealed), record}); err != nil {
				b.Errorf("Commit: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "bundles/s")
}

// BenchmarkCurrent measures Current (read by id) among 10,000 resources of one type, by one
// client and by eight at once.
func BenchmarkCurrent(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	benchLoad(b, s)
	read := func(b *testing.B, n uint64) {
		id := benchChange(n%benchTotal, nil).ID
		r, err := s.Current(b.Context(), "bench", "Patient", id)
		if err != nil || r.Version != 1 || len(r.Sealed) != 2048 {
			b.Fatalf("Current = version %d, %d sealed bytes, %v", r.Version, len(r.Sealed), err)
		}
	}
	b.Run("1 client", func(b *testing.B) {
		n := uint64(0)
		for b.Loop() {
			n += 7919
			read(b, n)
		}
	})
	b.Run("8 clients", func(b *testing.B) {
		var n atomic.Uint64
		b.SetParallelism(clients(8))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				read(b, n.Add(7919))
			}
		})
	})
}

// BenchmarkFindParallel measures Find by a token one resource carries among 10,000 resources
// of one type, by eight clients at once (an identifier search).
func BenchmarkFindParallel(b *testing.B, newStore func(t testing.TB) storage.Store) {
	s := newStore(b)
	benchLoad(b, s)
	var n atomic.Uint64
	b.SetParallelism(clients(8))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			q := storage.Query{Type: "Patient", All: [][][]byte{{fmt.Appendf(nil, "id:%d", n.Add(7919)%benchTotal)}}, Limit: 20}
			page, err := s.Find(b.Context(), "bench", q)
			if err != nil || page.Total != 1 || len(page.Records) != 1 {
				b.Errorf("Find = %d of %d, %v; want 1 of 1", len(page.Records), page.Total, err)
				return
			}
		}
	})
}

// clients is the parallelism that makes b.RunParallel run n goroutines (or the fewest above n).
func clients(n int) int {
	procs := runtime.GOMAXPROCS(0)
	return (n + procs - 1) / procs
}

// benchTotal is the number of resources benchLoad writes.
const benchTotal = 10000

// benchLoad writes benchTotal Patients (benchChange 0 to benchTotal-1) to a new tenant "bench"
// in batches of 500.
func benchLoad(b *testing.B, s storage.Store) {
	b.Helper()
	mustCreateTenant(b, s, "bench")
	sealed := benchSealed()
	for from := uint64(0); from < benchTotal; from += 500 {
		changes := make([]storage.Change, 0, 500)
		for n := from; n < from+500; n++ {
			changes = append(changes, benchChange(n, sealed))
		}
		if err := s.Commit(b.Context(), "bench", changes); err != nil {
			b.Fatalf("Commit: %v", err)
		}
	}
}

// benchSealed is 2 KiB of sealed bytes for benchmarks: random, as ciphertext is, so that a
// store that compresses or moves long values out of its rows pays what it pays in use.
func benchSealed() []byte {
	sealed := make([]byte, 2048)
	r := rand.NewChaCha8([32]byte{})
	_, _ = r.Read(sealed)
	return sealed
}

// benchChange is resource n of a benchmark: a new Patient with four tokens; every tenth
// (benchMarked) belongs to one of three user groups (benchGroup) and carries two more.
func benchChange(n uint64, sealed []byte) storage.Change {
	c := storage.Change{
		Type:    "Patient",
		ID:      binary.BigEndian.AppendUint64([]byte("bench-"), n*0x9e3779b97f4a7c15),
		Updated: base,
		Sealed:  sealed,
		Tokens: [][]byte{
			fmt.Appendf(nil, "id:%d", n),
			fmt.Appendf(nil, "name:%d", n%1000),
			fmt.Appendf(nil, "city:%d", n%10),
			[]byte("active"),
		},
	}
	if benchMarked(n) {
		c.Tokens = append(c.Tokens, []byte("mark"), fmt.Appendf(nil, "group:%d", benchGroup(n)))
	}
	return c
}

// benchMarked says whether benchmark resource n belongs to a user group, benchGroup(n).
func benchMarked(n uint64) bool { return n%10 == 3 }

func benchGroup(n uint64) uint64 { return n / 10 % 3 }

// change writes version expect+1 of a resource with the sealed bytes and tokens given; its
// timestamp is derived from the suite's clock and the version.
func change(typ, id string, expect int64, sealed string, tokens ...string) storage.Change {
	c := storage.Change{Type: typ, ID: []byte(id), Expect: expect, Updated: updatedAt(expect + 1), Sealed: []byte(sealed)}
	for _, tok := range tokens {
		c.Tokens = append(c.Tokens, []byte(tok))
	}
	return c
}

// tombstone deletes a resource in version expect+1.
func tombstone(typ, id string, expect int64) storage.Change {
	return storage.Change{Type: typ, ID: []byte(id), Expect: expect, Updated: updatedAt(expect + 1), Deleted: true}
}

// forgetting is c dropping the resource's earlier versions (all of it, for a tombstone).
func forgetting(c storage.Change) storage.Change {
	c.Forget = true
	return c
}

// record is what the store must return for a version written by change.
func record(typ, id string, version int64, sealed string) storage.Record {
	return storage.Record{Type: typ, ID: []byte(id), Version: version, Updated: updatedAt(version), Sealed: []byte(sealed)}
}

// updatedAt is the timestamp the suite gives a version: distinct per version, with
// sub-microsecond noise the store must cut off.
func updatedAt(version int64) time.Time {
	return base.Add(time.Duration(version)*time.Minute + 789*time.Nanosecond)
}

// groups turns "a b" into one group with the tokens a and b.
func groups(tokens string) [][][]byte {
	var g [][]byte
	for _, tok := range strings.Fields(tokens) {
		g = append(g, []byte(tok))
	}
	return [][][]byte{g}
}

func mustCreateTenant(t testing.TB, s storage.Store, alias string) {
	t.Helper()
	if err := s.CreateTenant(t.Context(), storage.Tenant{Alias: alias, Created: base}); err != nil {
		t.Fatalf("CreateTenant(%q): %v", alias, err)
	}
}

func mustPutCredential(t testing.TB, s storage.Store, c storage.Credential) {
	t.Helper()
	if err := s.PutCredential(t.Context(), c); err != nil {
		t.Fatalf("PutCredential(%q, %q): %v", c.Tenant, c.User, err)
	}
}

func mustCommit(t testing.TB, s storage.Store, tenant string, changes ...storage.Change) {
	t.Helper()
	if err := s.Commit(t.Context(), tenant, changes); err != nil {
		t.Fatalf("Commit of %d changes: %v", len(changes), err)
	}
}

func mustCurrent(t testing.TB, s storage.Store, tenant, typ, id string) storage.Record {
	t.Helper()
	r, err := s.Current(t.Context(), tenant, typ, []byte(id))
	if err != nil {
		t.Fatalf("Current(%s, %s, %q): %v", tenant, typ, id, err)
	}
	return r
}

func mustVersion(t testing.TB, s storage.Store, tenant, typ, id string, version int64) storage.Record {
	t.Helper()
	r, err := s.Version(t.Context(), tenant, typ, []byte(id), version)
	if err != nil {
		t.Fatalf("Version(%s, %s, %q, %d): %v", tenant, typ, id, version, err)
	}
	return r
}

func mustFind(t testing.TB, s storage.Store, tenant string, q storage.Query) storage.Page {
	t.Helper()
	p, err := s.Find(t.Context(), tenant, q)
	if err != nil {
		t.Fatalf("Find(%s, %s): %v", tenant, q.Type, err)
	}
	return p
}

func wantNotFound(t testing.TB, s storage.Store, tenant, typ, id string) {
	t.Helper()
	if r, err := s.Current(t.Context(), tenant, typ, []byte(id)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Current(%s, %s, %q) = version %d, %v; want ErrNotFound", tenant, typ, id, r.Version, err)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("error = %v, want %v", err, target)
	}
}

// wantTime checks that got is want cut to microseconds, in UTC.
func wantTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	want = want.UTC().Truncate(time.Microsecond)
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %s (%v), want %s (UTC)", what, got.Format(time.RFC3339Nano), got.Location(), want.Format(time.RFC3339Nano))
	}
}

func wantRecord(t testing.TB, got, want storage.Record) {
	t.Helper()
	if got.Type != want.Type || !bytes.Equal(got.ID, want.ID) || got.Version != want.Version ||
		got.Deleted != want.Deleted || !bytes.Equal(got.Sealed, want.Sealed) {
		t.Errorf("record = {%s %q v%d deleted=%t sealed=%q}, want {%s %q v%d deleted=%t sealed=%q}",
			got.Type, got.ID, got.Version, got.Deleted, got.Sealed,
			want.Type, want.ID, want.Version, want.Deleted, want.Sealed)
	}
	wantTime(t, fmt.Sprintf("Updated of %s %q v%d", want.Type, want.ID, want.Version), got.Updated, want.Updated)
}

// Unexcluding is implemented by a store that leaves out by other means than
// storage.Exclusion (the vault's barrier, which leaves out by who acts): the exclusion checks
// skip it.
type Unexcluding interface {
	Unexcluding()
}

// Ordered is implemented by a store whose stable order is not the id bytes' (the vault's barrier
// orders by each id's token): OrderKey is what it sorts a resource of type typ by.
type Ordered interface {
	OrderKey(typ string, id []byte) []byte
}

// orderKey is what s sorts the id of a resource of type typ by.
func orderKey(s storage.Store, typ string, id []byte) []byte {
	if o, ok := s.(Ordered); ok {
		return o.OrderKey(typ, id)
	}
	return id
}

// byOrderKey compares ids of type typ in s's stable order.
func byOrderKey(s storage.Store, typ string) func(a, b []byte) int {
	return func(a, b []byte) int { return bytes.Compare(orderKey(s, typ, a), orderKey(s, typ, b)) }
}

// inOrder sorts ids of type typ into s's stable order.
func inOrder(s storage.Store, typ string, ids []string) {
	cmp := byOrderKey(s, typ)
	slices.SortStableFunc(ids, func(a, b string) int { return cmp([]byte(a), []byte(b)) })
}

// wantIDs checks a page's ids (in s's order) and its total.
func wantIDs(t testing.TB, s storage.Store, p storage.Page, total int, ids ...string) {
	t.Helper()
	if len(p.Records) > 0 {
		ids = slices.Clone(ids)
		inOrder(s, p.Records[0].Type, ids)
	}
	if got := idsOf(p); !slices.Equal(got, ids) || p.Total != total {
		t.Errorf("Find = %q (total %d), want %q (total %d)", got, p.Total, ids, total)
	}
}

func idsOf(p storage.Page) []string {
	var ids []string
	for _, r := range p.Records {
		ids = append(ids, string(r.ID))
	}
	return ids
}

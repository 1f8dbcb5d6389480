package vault_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/postgres/pgtest"
	"github.com/redclone/red/storage/sqlite"
	"github.com/redclone/red/storage/storetest"
)

func TestMain(m *testing.M) {
	defer pgtest.Stop()
	m.Run()
}

var at = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

// openSQLite opens a fresh embedded store that holds tenant, closed when t ends.
func openSQLite(t testing.TB, tenants ...string) storage.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "red.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, tenant := range tenants {
		if err := st.CreateTenant(t.Context(), storage.Tenant{Alias: tenant, Created: at}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// recorder is a store that keeps everything the barrier hands it.
type recorder struct {
	storage.Store
	mu      sync.Mutex
	calls   int
	changes []storage.Change
	keys    [][]byte // ids and tokens of reads and queries
}

func (r *recorder) note(changes []storage.Change, keys ...[]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.changes = append(r.changes, changes...)
	r.keys = append(r.keys, keys...)
}

func (r *recorder) Commit(ctx context.Context, tenant string, changes []storage.Change) error {
	r.note(changes)
	return r.Store.Commit(ctx, tenant, changes)
}

func (r *recorder) Current(ctx context.Context, tenant, typ string, id []byte) (storage.Record, error) {
	r.note(nil, id)
	return r.Store.Current(ctx, tenant, typ, id)
}

func (r *recorder) Version(ctx context.Context, tenant, typ string, id []byte, v int64) (storage.Record, error) {
	r.note(nil, id)
	return r.Store.Version(ctx, tenant, typ, id, v)
}

func (r *recorder) Heads(ctx context.Context, tenant string, keys []storage.Key, ex storage.Exclusion) ([]storage.Record, error) {
	for _, k := range keys {
		r.note(nil, k.ID)
	}
	return r.Store.Heads(ctx, tenant, keys, ex)
}

func (r *recorder) Find(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	for _, g := range q.All {
		r.note(nil, g...)
	}
	return r.Store.Find(ctx, tenant, q)
}

func TestBarrierRefusesEverythingWhileSealed(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	locked := unsealed(t, tenantA, blob)
	locked.Lock()
	for _, tc := range []struct {
		name string
		v    *vault.Vault
	}{
		{"before login", vault.New(tenantA, nil)},
		{"after Lock", locked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{Store: openSQLite(t, tenantA)}
			b := tc.v.Barrier(rec)
			ctx := t.Context()
			ops := map[string]func() error{
				"Commit": func() error {
					return b.Commit(ctx, []vault.Write{{Type: "Patient", ID: "p1", Updated: at, Body: patientXML}})
				},
				"Commit of a tombstone": func() error {
					return b.Commit(ctx, []vault.Write{{Type: "Patient", ID: "p1", Expect: 1, Updated: at, Deleted: true}})
				},
				"Commit of nothing": func() error { return b.Commit(ctx, nil) },
				"Current":           func() error { _, err := b.Current(ctx, "Patient", "p1"); return err },
				"Version":           func() error { _, err := b.Version(ctx, "Patient", "p1", 1); return err },
				"Heads":             func() error { _, err := b.Heads(ctx, []vault.Ref{{Type: "Patient", ID: "p1"}}); return err },
				"Heads of nothing": func() error {
					_, err := b.Heads(ctx, nil)
					return err
				},
				"Find":       func() error { _, err := b.Find(ctx, vault.Query{Type: "Patient"}); return err },
				"SealString": func() error { _, err := b.SealString("paging", "name=Erika"); return err },
				"OpenString": func() error { _, err := b.OpenString("paging", "AAAA"); return err },
			}
			for name, op := range ops {
				if err := op(); !errors.Is(err, vault.ErrSealed) {
					t.Errorf("%s = %v, want ErrSealed", name, err)
				}
			}
			if rec.calls != 0 {
				t.Errorf("the store was asked %d times while the vault was sealed", rec.calls)
			}
		})
	}
}

func TestBarrierRoundTrip(t *testing.T) {
	v := unsealed(t, tenantA, newCredential(t, 1, tenantA, user, password))
	b := v.Barrier(openSQLite(t, tenantA))
	ctx := t.Context()
	name := []vault.Term{{Index: "Patient.name", Value: "mustermann"}}
	commit := func(ws ...vault.Write) {
		t.Helper()
		if err := b.Commit(ctx, ws); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	commit(vault.Write{Type: "Patient", ID: "p1", Updated: at, Body: patientXML, Index: name},
		vault.Write{Type: "Patient", ID: "p2", Updated: at, Body: []byte("<Patient/>")})
	commit(vault.Write{Type: "Patient", ID: "p1", Expect: 1, Updated: at.Add(time.Minute), Body: []byte("<Patient>v2</Patient>")})

	cur, err := b.Current(ctx, "Patient", "p1")
	if err != nil || cur.Version != 2 || string(cur.Body) != "<Patient>v2</Patient>" || cur.ID != "p1" || !cur.Updated.Equal(at.Add(time.Minute)) {
		t.Errorf("Current = %+v, %v", cur, err)
	}
	old, err := b.Version(ctx, "Patient", "p1", 1)
	if err != nil || !bytes.Equal(old.Body, patientXML) {
		t.Errorf("Version 1 = %+v, %v", old, err)
	}
	if _, err := b.Version(ctx, "Patient", "p1", 3); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Version 3: %v, want ErrNotFound", err)
	}
	if err := b.Commit(ctx, []vault.Write{{Type: "Patient", ID: "p1", Expect: 1, Updated: at, Body: patientXML}}); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("a stale write: %v, want ErrConflict", err)
	}

	// The update replaced p1's search values; the id is always indexed.
	for _, tc := range []struct {
		name  string
		all   [][]vault.Term
		total int
	}{
		{"every Patient", nil, 2},
		{"by a replaced value", [][]vault.Term{name}, 0},
		{"by id", [][]vault.Term{{{Index: vault.IDIndex, Value: "p2"}}}, 1},
		{"by either id", [][]vault.Term{{{Index: vault.IDIndex, Value: "p1"}, {Index: vault.IDIndex, Value: "p2"}}}, 2},
	} {
		page, err := b.Find(ctx, vault.Query{Type: "Patient", All: tc.all})
		if err != nil || page.Total != tc.total || len(page.Resources) != tc.total {
			t.Errorf("Find %s = %d of %d, %v; want %d", tc.name, len(page.Resources), page.Total, err, tc.total)
		}
	}

	commit(vault.Write{Type: "Patient", ID: "p2", Expect: 1, Updated: at, Deleted: true})
	heads, err := b.Heads(ctx, []vault.Ref{{Type: "Patient", ID: "p1"}, {Type: "Patient", ID: "p2"}, {Type: "Patient", ID: "p3"}})
	want := []vault.Resource{
		{Type: "Patient", ID: "p1", Version: 2, Updated: at.Add(time.Minute)},
		{Type: "Patient", ID: "p2", Version: 2, Updated: at, Deleted: true},
		{Type: "Patient", ID: "p3"},
	}
	if err != nil || len(heads) != len(want) {
		t.Fatalf("Heads = %+v, %v", heads, err)
	}
	for i := range want {
		if heads[i].ID != want[i].ID || heads[i].Version != want[i].Version || heads[i].Deleted != want[i].Deleted || heads[i].Body != nil || !heads[i].Updated.Equal(want[i].Updated) {
			t.Errorf("head %d = %+v, want %+v", i, heads[i], want[i])
		}
	}
}

func TestBarrierHandsTheStoreNoPlaintext(t *testing.T) {
	v := unsealed(t, tenantA, newCredential(t, 1, tenantA, user, password))
	rec := &recorder{Store: openSQLite(t, tenantA)}
	b := v.Barrier(rec)
	ctx := t.Context()
	secrets := []string{"Mustermann", "Erika", "1964-08-12", "X110411675", "patient-4711", "Patient/patient-4711", "encounter-0815"}
	body := []byte(`<Patient xmlns="http://hl7.org/fhir"><id value="patient-4711"/><identifier><value value="X110411675"/></identifier>` +
		`<name><family value="Mustermann"/><given value="Erika"/></name><birthDate value="1964-08-12"/></Patient>`)
	index := []vault.Term{{Index: "Patient.identifier", Value: "X110411675"}, {Index: "Patient.name", Value: "mustermann"},
		{Index: "Patient.name", Value: "erika"}, {Index: "Patient.birthdate", Value: "1964-08-12"}}
	writes := []struct {
		name string
		w    []vault.Write
	}{
		{"create", []vault.Write{{Type: "Patient", ID: "patient-4711", Updated: at, Body: body, Index: index},
			{Type: "Encounter", ID: "encounter-0815", Updated: at, Body: []byte(`<Encounter><subject value="Patient/patient-4711"/></Encounter>`),
				Index: []vault.Term{{Index: "references", Value: "Patient/patient-4711"}}}}},
		{"update", []vault.Write{{Type: "Patient", ID: "patient-4711", Expect: 1, Updated: at, Body: body, Index: index}}},
		{"tombstone", []vault.Write{{Type: "Encounter", ID: "encounter-0815", Expect: 1, Updated: at, Deleted: true}}},
	}
	for _, w := range writes {
		if err := b.Commit(ctx, w.w); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
	}
	// the read paths hand the store ids and search values as well
	_, _ = b.Current(ctx, "Patient", "patient-4711")
	_, _ = b.Version(ctx, "Patient", "patient-4711", 1)
	_, _ = b.Heads(ctx, []vault.Ref{{Type: "Encounter", ID: "encounter-0815"}})
	_, _ = b.Find(ctx, vault.Query{Type: "Patient", All: [][]vault.Term{index[:1], {{Index: vault.IDIndex, Value: "patient-4711"}}}})
	_, _ = b.Find(ctx, vault.Query{Type: "Encounter", All: [][]vault.Term{{{Index: "references", Value: "Patient/patient-4711"}}}})

	if len(rec.changes) != 4 {
		t.Fatalf("the store received %d changes, want 4", len(rec.changes))
	}
	var seen [][]byte
	for _, ch := range rec.changes {
		seen = append(append(seen, ch.ID, ch.Sealed), ch.Tokens...)
		if ch.Deleted && (ch.Sealed != nil || ch.Tokens != nil) {
			t.Errorf("a tombstone carries sealed bytes or tokens: %+v", ch)
		}
		if !ch.Deleted && len(ch.Tokens) == 0 {
			t.Errorf("%s written without its id token", ch.Type)
		}
	}
	seen = append(seen, rec.keys...)
	for _, raw := range seen {
		for _, s := range secrets {
			if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(s))) {
				t.Errorf("the store received %q in %q", s, raw)
			}
		}
	}
	if len(rec.keys) < 6 {
		t.Errorf("only %d keys were handed to the store by the reads", len(rec.keys))
	}
}

func TestBarrierRowsMovedElsewhereDoNotOpen(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	// tenant B holds the same keyring: only the tenant binding tells the rows apart
	moved, err := vault.MoveToTenant(rng(2), tenantA, tenantB, user, blob, []byte(password), vault.TestKDF)
	if err != nil {
		t.Fatal(err)
	}
	a := unsealed(t, tenantA, blob)
	bv := unsealed(t, tenantB, moved)
	st := openSQLite(t, tenantA, tenantB)
	ba, bb := a.Barrier(st), bv.Barrier(st)
	ctx := t.Context()
	if err := ba.Commit(ctx, []vault.Write{{Type: "Patient", ID: "p1", Updated: at, Body: patientXML},
		{Type: "Patient", ID: "p2", Updated: at, Body: []byte("<Patient/>")}}); err != nil {
		t.Fatal(err)
	}
	idToken := func(typ, id string) []byte {
		tok, err := vault.IDToken(a, typ, id)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	row, err := st.Current(ctx, tenantA, "Patient", idToken("Patient", "p1"))
	if err != nil {
		t.Fatal(err)
	}
	copyTo := func(tenant, typ, id string, expect int64) {
		t.Helper()
		if err := st.Commit(ctx, tenant, []storage.Change{{Type: typ, ID: idToken(typ, id), Expect: expect, Updated: at, Sealed: row.Sealed}}); err != nil {
			t.Fatal(err)
		}
	}
	copyTo(tenantB, "Patient", "p1", 0)     // another tenant
	copyTo(tenantA, "Observation", "p1", 0) // another type
	copyTo(tenantA, "Patient", "p9", 0)     // another id
	copyTo(tenantA, "Patient", "p2", 1)     // another version (p2's version 2)
	for _, tc := range []struct {
		name string
		read func() (vault.Resource, error)
	}{
		{"another tenant", func() (vault.Resource, error) { return bb.Current(ctx, "Patient", "p1") }},
		{"another type", func() (vault.Resource, error) { return ba.Current(ctx, "Observation", "p1") }},
		{"another id", func() (vault.Resource, error) { return ba.Current(ctx, "Patient", "p9") }},
		{"another version", func() (vault.Resource, error) { return ba.Version(ctx, "Patient", "p2", 2) }},
		{"found by a search", func() (vault.Resource, error) {
			_, err := ba.Find(ctx, vault.Query{Type: "Observation"})
			return vault.Resource{}, err
		}},
	} {
		if r, err := tc.read(); !errors.Is(err, vault.ErrTampered) {
			t.Errorf("a row moved to %s opened: %q, %v", tc.name, r.Body, err)
		}
	}
	if r, err := ba.Current(ctx, "Patient", "p1"); err != nil || !bytes.Equal(r.Body, patientXML) {
		t.Errorf("the original row: %q, %v", r.Body, err)
	}
}

// throughBarrier is a storage.Store whose resource operations go through the vault's barrier,
// so that the storage conformance suite checks the barrier over each backend: ids become
// plaintext ids (the suite's bytes), a record's sealed bytes travel as the plaintext body (framed
// with the id, since the store knows ids only as tokens), and tokens as search values. Every
// tenant's vault holds the same keyring, bound to its own tenant.
type throughBarrier struct {
	storage.Store
	t    testing.TB
	blob []byte // the keyring, wrapped for tenantA

	mu       sync.Mutex
	barriers map[string]*vault.Barrier
	first    *vault.Vault
}

func newThroughBarrier(t testing.TB, st storage.Store) *throughBarrier {
	return &throughBarrier{Store: st, t: t, blob: newCredential(t, 7, tenantA, user, password), barriers: map[string]*vault.Barrier{}}
}

// barrier is the barrier of tenant's vault.
func (s *throughBarrier) barrier(tenant string) *vault.Barrier {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.barriers[tenant]; ok {
		return b
	}
	blob, err := vault.MoveToTenant(rng(3), tenantA, tenant, user, s.blob, []byte(password), vault.TestKDF)
	if err != nil {
		s.t.Fatal(err)
	}
	v := vault.New(tenant, nil)
	if err := v.Unseal(user, blob, []byte(password)); err != nil {
		s.t.Fatal(err)
	}
	if s.first == nil {
		s.first = v
	}
	s.barriers[tenant] = v.Barrier(s.Store)
	return s.barriers[tenant]
}

// OrderKey is the id token: the barrier's stable order (storetest.Ordered).
func (s *throughBarrier) OrderKey(typ string, id []byte) []byte {
	s.barrier(tenantA)
	tok, err := vault.IDToken(s.first, typ, string(id))
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

func frame(id, sealed []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(id))), append(slices.Clone(id), sealed...)...)
}

func unframe(body []byte) (id, sealed []byte) {
	n, k := binary.Uvarint(body)
	return body[k : k+int(n)], body[k+int(n):]
}

func terms(tokens [][]byte) []vault.Term {
	out := make([]vault.Term, len(tokens))
	for i, tok := range tokens {
		out[i] = vault.Term{Index: "suite", Value: string(tok)}
	}
	return out
}

func (s *throughBarrier) record(r vault.Resource, id []byte) storage.Record {
	rec := storage.Record{Type: r.Type, ID: id, Version: r.Version, Updated: r.Updated, Deleted: r.Deleted}
	if r.Body != nil {
		var got []byte
		got, rec.Sealed = unframe(r.Body)
		if id == nil {
			rec.ID = got
		}
	}
	return rec
}

func (s *throughBarrier) Commit(ctx context.Context, tenant string, changes []storage.Change) error {
	writes := make([]vault.Write, len(changes))
	for i, c := range changes {
		writes[i] = vault.Write{Type: c.Type, ID: string(c.ID), Expect: c.Expect, Updated: c.Updated, Deleted: c.Deleted, Forget: c.Forget, Index: terms(c.Tokens)}
		if !c.Deleted {
			writes[i].Body = frame(c.ID, c.Sealed)
		}
	}
	return s.barrier(tenant).Commit(ctx, writes)
}

func (s *throughBarrier) Current(ctx context.Context, tenant, typ string, id []byte) (storage.Record, error) {
	r, err := s.barrier(tenant).Current(ctx, typ, string(id))
	return s.record(r, id), err
}

func (s *throughBarrier) Version(ctx context.Context, tenant, typ string, id []byte, version int64) (storage.Record, error) {
	r, err := s.barrier(tenant).Version(ctx, typ, string(id), version)
	return s.record(r, id), err
}

// Unexcluding says that the barrier leaves out by who acts, not by storage.Exclusion
// (storetest.Unexcluding); TestVisibility checks it.
func (s *throughBarrier) Unexcluding() {}

func (s *throughBarrier) Heads(ctx context.Context, tenant string, keys []storage.Key, _ storage.Exclusion) ([]storage.Record, error) {
	refs := make([]vault.Ref, len(keys))
	for i, k := range keys {
		refs[i] = vault.Ref{Type: k.Type, ID: string(k.ID)}
	}
	heads, err := s.barrier(tenant).Heads(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Record, len(heads))
	for i, h := range heads {
		out[i] = s.record(h, keys[i].ID)
	}
	return out, nil
}

func (s *throughBarrier) Find(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	vq := vault.Query{Type: q.Type, Offset: q.Offset, Limit: q.Limit, Disjoint: q.Disjoint}
	for _, g := range q.All {
		vq.All = append(vq.All, terms(g))
	}
	page, err := s.barrier(tenant).Find(ctx, vq)
	if err != nil {
		return storage.Page{}, err
	}
	out := storage.Page{Total: page.Total}
	for _, r := range page.Resources {
		out.Records = append(out.Records, s.record(r, nil))
	}
	return out, nil
}

func TestStoreConformanceThroughTheBarrier(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		storetest.RunTests(t, func(t testing.TB) storage.Store { return newThroughBarrier(t, openSQLite(t)) })
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		storetest.RunTests(t, func(t testing.TB) storage.Store {
			st, err := postgres.Open(t.Context(), pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return newThroughBarrier(t, st)
		})
	})
}

package vault_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/postgres/pgtest"
	"github.com/redclone/red/storage/sqlite"
)

// Group ids distinct enough to be looked for in raw bytes.
const (
	groupA = "gruppe-kardiologie"
	groupB = "gruppe-orthopaedie"
)

// principals, by the name the tests use; "background" acts for no user.
var principals = map[string]access.Principal{
	"admin":     {Tenant: tenantA, User: "chefin", Roles: []access.Role{access.Admin}},
	"member A":  {Tenant: tenantA, User: "anna", Roles: []access.Role{access.Physician}, Groups: []string{groupA}},
	"member AB": {Tenant: tenantA, User: "alex", Roles: []access.Role{access.Assistant}, Groups: []string{groupB, groupA}},
	"member B":  {Tenant: tenantA, User: "bert", Roles: []access.Role{access.Physician}, Groups: []string{groupB}},
	"no group":  {Tenant: tenantA, User: "nina", Roles: []access.Role{access.Assistant}},
}

func as(ctx context.Context, who string) context.Context {
	if who == "background" {
		return ctx
	}
	return access.With(ctx, principals[who])
}

// visibilityData is what each visibility test starts from, written in the background:
//
//	public   tenant-wide
//	old      tenant-wide, sealed before user groups (format 1, no group tokens)
//	a        group A
//	b        group B
//	moved    version 1 tenant-wide, version 2 group A
//	gone     group A, then deleted (version 2 is the tombstone)
//	freed    group A, then tenant-wide
//
// Every live one is found by the term city=berlin.
var visibilityIDs = []string{"public", "old", "a", "b", "moved", "gone", "freed"}

// seen lists, per principal, the ids of visibilityIDs they see (a tombstone counted as seen).
var seen = map[string][]string{
	"background": visibilityIDs,
	"admin":      visibilityIDs,
	"member A":   {"public", "old", "a", "moved", "gone", "freed"},
	"member AB":  visibilityIDs,
	"member B":   {"public", "old", "b", "freed"},
	"no group":   {"public", "old", "freed"},
}

func berlin() []vault.Term { return []vault.Term{{Index: "city", Value: "berlin"}} }

func writeVisibilityData(t *testing.T, v *vault.Vault, st storage.Store, b *vault.Barrier) {
	t.Helper()
	ctx := t.Context()
	w := func(id string, expect int64, group string) vault.Write {
		return vault.Write{Type: "Patient", ID: id, Expect: expect, Updated: at, Body: append([]byte(id+":"), patientXML...), Index: berlin(), Group: group}
	}
	commit := func(writes ...vault.Write) {
		t.Helper()
		if err := b.Commit(ctx, writes); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	commit(w("public", 0, ""), w("a", 0, groupA), w("b", 0, groupB), w("moved", 0, ""), w("gone", 0, groupA), w("freed", 0, groupA))
	commit(w("moved", 1, groupA), w("freed", 1, ""), vault.Write{Type: "Patient", ID: "gone", Expect: 1, Updated: at, Deleted: true})
	// a version as red wrote it before user groups
	id, err := vault.IDToken(v, "Patient", "old")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := vault.SealBeforeGroups(v, "Patient", id, 1, append([]byte("old:"), patientXML...))
	if err != nil {
		t.Fatal(err)
	}
	city, err := vault.Token(v, "city", "berlin")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, tenantA, []storage.Change{{Type: "Patient", ID: id, Updated: at, Sealed: sealed, Tokens: [][]byte{id, city}}}); err != nil {
		t.Fatal(err)
	}
}

// visibilityStores runs test over a fresh store: SQLite and PostgreSQL.
func visibilityStores(t *testing.T, test func(t *testing.T, v *vault.Vault, st storage.Store)) {
	t.Run("SQLite", func(t *testing.T) {
		st := openSQLite(t)
		test(t, visibilityVault(t, st), st)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		st, err := postgres.Open(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		test(t, visibilityVault(t, st), st)
	})
}

func visibilityVault(t *testing.T, st storage.Store) *vault.Vault {
	t.Helper()
	if err := st.CreateTenant(t.Context(), storage.Tenant{Alias: tenantA, Created: at}); err != nil {
		t.Fatal(err)
	}
	return unsealed(t, tenantA, newCredential(t, 11, tenantA, user, password))
}

func TestVisibilityReads(t *testing.T) {
	visibilityStores(t, func(t *testing.T, v *vault.Vault, st storage.Store) {
		b := v.Barrier(st)
		writeVisibilityData(t, v, st, b)
		for who, want := range seen {
			t.Run(who, func(t *testing.T) {
				ctx := as(t.Context(), who)
				for _, id := range visibilityIDs {
					visible := slices.Contains(want, id)
					r, err := b.Current(ctx, "Patient", id)
					switch {
					case visible && err != nil:
						t.Errorf("Current(%s) = %v, want it", id, err)
					case visible && !r.Deleted && !bytes.HasPrefix(r.Body, []byte(id+":")):
						t.Errorf("Current(%s) = %q", id, r.Body)
					case !visible && !errors.Is(err, storage.ErrNotFound):
						t.Errorf("Current(%s) = %+v, %v; want not found", id, r, err)
					}
					// a version is seen when it and the current one are: version 1 of freed is group A's
					first := visible && (id != "freed" || slices.Contains(want, "a"))
					if r, err := b.Version(ctx, "Patient", id, 1); first != (err == nil) || !first && !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("Version(%s, 1) = %q, %v; visible %v", id, r.Body, err, first)
					}
				}
				refs := []vault.Ref{{Type: "Patient", ID: "never"}}
				for _, id := range visibilityIDs {
					refs = append(refs, vault.Ref{Type: "Patient", ID: id})
				}
				heads, err := b.Heads(ctx, refs)
				if err != nil {
					t.Fatal(err)
				}
				for i, h := range heads {
					if visible := slices.Contains(want, refs[i].ID); visible != (h.Version > 0) {
						t.Errorf("Heads: %s at version %d (deleted %v), visible %v", refs[i].ID, h.Version, h.Deleted, visible)
					}
				}
				live := slices.DeleteFunc(slices.Clone(want), func(id string) bool { return id == "gone" })
				for _, terms := range [][][]vault.Term{nil, {berlin()}, {berlin(), {{Index: vault.IDIndex, Value: "a"}, {Index: vault.IDIndex, Value: "public"}, {Index: vault.IDIndex, Value: "b"}}}} {
					wantIDs := live
					if len(terms) == 2 {
						wantIDs = slices.DeleteFunc(slices.Clone(live), func(id string) bool { return id != "a" && id != "public" && id != "b" })
					}
					page, err := b.Find(ctx, vault.Query{Type: "Patient", All: terms})
					if err != nil {
						t.Fatal(err)
					}
					if got := bodyIDs(page); !sameSet(got, wantIDs) || page.Total != len(wantIDs) {
						t.Errorf("Find(%d groups) = %q (total %d), want %q", len(terms), got, page.Total, wantIDs)
					}
					var paged []string
					for offset := 0; offset < len(wantIDs)+2; offset += 2 {
						page, err := b.Find(ctx, vault.Query{Type: "Patient", All: terms, Offset: offset, Limit: 2})
						if err != nil {
							t.Fatal(err)
						}
						if page.Total != len(wantIDs) {
							t.Errorf("Find(%d groups, offset %d) total %d, want %d", len(terms), offset, page.Total, len(wantIDs))
						}
						paged = append(paged, bodyIDs(page)...)
					}
					if !sameSet(paged, wantIDs) || len(paged) != len(wantIDs) {
						t.Errorf("Find(%d groups) page by page = %q, want %q", len(terms), paged, wantIDs)
					}
				}
			})
		}
	})
}

func TestVisibilityWrites(t *testing.T) {
	patient := func(id string, expect int64, group string) vault.Write {
		return vault.Write{Type: "Patient", ID: id, Expect: expect, Updated: at, Body: patientXML, Group: group}
	}
	tombstone := func(id string, expect int64) vault.Write {
		return vault.Write{Type: "Patient", ID: id, Expect: expect, Updated: at, Deleted: true}
	}
	for _, tc := range []struct {
		name   string
		who    string
		write  vault.Write
		hidden bool // refused as another group's (HiddenError)
		denied bool // refused for writing into a group not the writer's
	}{
		{"a member updates its group's resource", "member A", patient("a", 1, groupA), false, false},
		{"a member moves its group's resource into its other group", "member AB", patient("a", 1, groupB), false, false},
		{"a member makes its group's resource tenant-wide", "member A", patient("a", 1, ""), false, false},
		{"a member deletes its group's resource", "member A", tombstone("a", 1), false, false},
		{"an admin updates any group's resource", "admin", patient("b", 1, groupB), false, false},
		{"an admin writes into any group", "admin", patient("new", 0, groupB), false, false},
		{"the background writes into any group", "background", patient("b", 1, groupA), false, false},
		{"a member writes a new resource into its group", "member B", patient("new", 0, groupB), false, false},
		{"anyone updates a tenant-wide resource", "no group", patient("public", 1, ""), false, false},
		{"a member moves a tenant-wide resource into its group", "member B", patient("public", 1, groupB), false, false},
		{"a non-member may not update another group's resource", "member B", patient("a", 1, groupB), true, false},
		{"a non-member may not take another group's id", "member B", patient("a", 0, ""), true, false},
		{"a non-member may not delete another group's resource", "no group", tombstone("a", 1), true, false},
		{"a non-member may not write over another group's deleted resource", "member B", patient("gone", 2, ""), true, false},
		{"a non-member may not take the id of another group's deleted resource", "member B", patient("gone", 0, ""), true, false},
		{"a member may not write into a group not its own", "member A", patient("new", 0, groupB), false, true},
		{"a member may not move a tenant-wide resource into a group not its own", "no group", patient("public", 1, groupA), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openSQLite(t, tenantA)
			v := unsealed(t, tenantA, newCredential(t, 11, tenantA, user, password))
			b := v.Barrier(st)
			writeVisibilityData(t, v, st, b)
			err := b.Commit(as(t.Context(), tc.who), []vault.Write{patient("extra", 0, ""), tc.write})
			var he *vault.HiddenError
			switch {
			case tc.hidden:
				if !errors.As(err, &he) || len(he.Refs) != 1 || he.Refs[0] != (vault.Ref{Type: "Patient", ID: tc.write.ID}) || fhir.CodeOf(err) != fhir.CodeForbidden {
					t.Fatalf("Commit = %v, want a hidden error naming Patient/%s", err, tc.write.ID)
				}
			case tc.denied:
				if fhir.CodeOf(err) != fhir.CodeForbidden || errors.As(err, &he) {
					t.Fatalf("Commit = %v, want forbidden", err)
				}
			case err != nil:
				t.Fatalf("Commit: %v", err)
			}
			r, err := b.Current(t.Context(), "Patient", "extra")
			if written := err == nil; written != (!tc.hidden && !tc.denied) {
				t.Errorf("the commit's other write: %+v, %v", r, err)
			}
			if tc.hidden || tc.denied || tc.write.Deleted {
				return
			}
			if r, err := b.Current(t.Context(), "Patient", tc.write.ID); err != nil || r.Group != tc.write.Group {
				t.Errorf("Current(%s) = group %q, %v; want %q", tc.write.ID, r.Group, err, tc.write.Group)
			}
		})
	}
}

// TestVisibilityConflictStaysConflict: a write that races another workstation's is a
// conflict, not a hidden error, also for a member of no group.
func TestVisibilityConflictStaysConflict(t *testing.T) {
	st := openSQLite(t, tenantA)
	v := unsealed(t, tenantA, newCredential(t, 11, tenantA, user, password))
	b := v.Barrier(st)
	writeVisibilityData(t, v, st, b)
	for _, w := range []vault.Write{
		{Type: "Patient", ID: "public", Expect: 3, Updated: at, Body: patientXML},
		{Type: "Patient", ID: "public", Updated: at, Body: patientXML},
	} {
		err := b.Commit(as(t.Context(), "no group"), []vault.Write{w})
		var he *vault.HiddenError
		if !errors.Is(err, storage.ErrConflict) || errors.As(err, &he) {
			t.Errorf("Commit(expect %d) = %v, want a conflict", w.Expect, err)
		}
	}
}

// TestVisibilityLeavesNoGroupInTheStore: group ids reach the store neither in sealed bytes nor
// in tokens; the raw database file does not contain them.
func TestVisibilityLeavesNoGroupInTheStore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "red.db")
	st, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rec := &recorder{Store: st}
	v := visibilityVault(t, st)
	b := v.Barrier(rec)
	writeVisibilityData(t, v, rec, b)
	if _, err := b.Find(as(t.Context(), "member A"), vault.Query{Type: "Patient", All: [][]vault.Term{berlin()}}); err != nil {
		t.Fatal(err)
	}
	mark, tokA, err := vault.GroupTokens(v, groupA)
	if err != nil {
		t.Fatal(err)
	}
	var marked int
	for _, ch := range rec.changes {
		for _, part := range append([][]byte{ch.Sealed}, ch.Tokens...) {
			if bytes.Contains(part, []byte(groupA)) || bytes.Contains(part, []byte(groupB)) {
				t.Errorf("a change of %s carries a group id in plaintext", ch.Type)
			}
		}
		if slices.ContainsFunc(ch.Tokens, func(tok []byte) bool { return bytes.Equal(tok, mark) }) {
			marked++
			if !slices.ContainsFunc(ch.Tokens, func(tok []byte) bool { return len(tok) == len(tokA) }) {
				t.Errorf("a marked change carries no group token")
			}
		}
	}
	if marked != 5 { // a, b, gone, freed (version 1) and moved (version 2)
		t.Errorf("%d changes carry the mark, want 5", marked)
	}
	files, err := filepath.Glob(db + "*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no database files at %s: %v", db, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{groupA, groupB} {
			if bytes.Contains(raw, []byte(g)) {
				t.Errorf("%s contains the group id %q", filepath.Base(f), g)
			}
		}
	}
}

func bodyIDs(p vault.Page) []string {
	var out []string
	for _, r := range p.Resources {
		id, _, _ := bytes.Cut(r.Body, []byte(":"))
		out = append(out, string(id))
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

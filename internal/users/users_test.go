package users_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/users"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/internal/vault/vaulttest"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/sqlite"
)

// practice is a tenant "praxis" in a fresh SQLite store with the users named, and the directory
// of it that two workstations see (each its own vault of the tenant's keyring).
type practice struct {
	st   storage.Store
	b    *vault.Barrier
	db   string
	dir  *users.Directory
	dir2 *users.Directory // another red, e.g. red group … while red serve runs
}

func newPractice(t *testing.T, names ...string) *practice {
	t.Helper()
	db := filepath.Join(t.TempDir(), "red.db")
	st, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := vaulttest.On(t, st)
	for _, n := range names {
		if err := st.PutCredential(t.Context(), storage.Credential{Tenant: "praxis", User: n, Blob: []byte("wrapped keyring of " + n)}); err != nil {
			t.Fatal(err)
		}
	}
	return &practice{st: st, b: b, db: db, dir: users.New("praxis", b, st), dir2: users.New("praxis", b, st)}
}

func roles(rs ...access.Role) []access.Role { return rs }

func TestRoles(t *testing.T) {
	ctx := t.Context()
	p := newPractice(t, "anna", "ben", "cem")
	t.Run("users of a tenant without role records hold every role, as before red knew roles", func(t *testing.T) {
		u, err := p.dir.User(ctx, "cem")
		if err != nil || !u.Legacy || !slices.Equal(u.Roles, access.Roles()) {
			t.Errorf("User = %+v, %v", u, err)
		}
	})
	must(t, p.dir.Created(ctx, "anna", roles(access.Admin, access.Physician, access.Admin)))
	t.Run("roles are kept once each, in red's order", func(t *testing.T) {
		u, err := p.dir2.User(ctx, "anna")
		if err != nil || u.Legacy || !slices.Equal(u.Roles, roles(access.Physician, access.Admin)) {
			t.Errorf("User = %+v, %v", u, err)
		}
	})
	t.Run("the first role record puts the users from before roles on record, with every role", func(t *testing.T) {
		u, err := p.dir.User(ctx, "cem")
		if err != nil || u.Legacy || !slices.Equal(u.Roles, access.Roles()) {
			t.Errorf("User = %+v, %v", u, err)
		}
	})
	must(t, p.dir.Created(ctx, "ben", roles(access.Assistant)))
	// dora's credential is there, her role record is not (an interrupted red user add)
	must(t, p.st.PutCredential(ctx, storage.Credential{Tenant: "praxis", User: "dora", Blob: []byte("wrapped")}))
	t.Run("since then, a user without a role record holds none", func(t *testing.T) {
		u, err := p.dir.User(ctx, "dora")
		if err != nil || u.Legacy || len(u.Roles) != 0 {
			t.Errorf("User = %+v, %v", u, err)
		}
	})
	t.Run("the list names every user with a credential", func(t *testing.T) {
		us, err := p.dir.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range us {
			got = append(got, u.Name+":"+access.Join(u.Roles))
		}
		want := []string{"anna:physician, admin", "ben:assistant", "cem:physician, assistant, pharmacist, admin", "dora:none"}
		if !slices.Equal(got, want) {
			t.Errorf("Users = %v, want %v", got, want)
		}
	})
	for _, tc := range []struct {
		name, user string
		roles      []access.Role
		refused    string
	}{
		{"setting roles replaces them", "ben", roles(access.Pharmacist, access.Assistant), ""},
		{"no roles at all is refused", "ben", nil, "at least one role"},
		{"an unknown role is refused", "ben", roles("doctor"), `unknown role "doctor"`},
		{"a user without a credential is refused", "eva", roles(access.Assistant), "has no user eva"},
		{"a user without a role record gets one", "dora", roles(access.Assistant), ""},
		{"an admin may step down while another is left", "anna", roles(access.Physician), ""},
		{"so may a user from before roles, but for admin", "cem", roles(access.Admin), ""},
		{"the last admin may not step down", "cem", roles(access.Physician), "last admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.dir.SetRoles(ctx, tc.user, tc.roles)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Errorf("SetRoles = %v, want a refusal saying %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, err := p.dir2.User(ctx, tc.user)
			if want, _ := users.NormalRoles(tc.roles); err != nil || u.Legacy || !slices.Equal(u.Roles, want) {
				t.Errorf("User = %+v, %v; want %v", u, err, want)
			}
		})
	}
	t.Run("a user whose role record was removed from the database holds none and acts for nobody", func(t *testing.T) {
		r, err := p.b.Current(ctx, "red:user", "ben")
		if err != nil {
			t.Fatal(err)
		}
		must(t, p.b.Commit(ctx, []vault.Write{{Type: "red:user", ID: "ben", Expect: r.Version, Updated: time.Now(), Deleted: true}}))
		if u, err := p.dir.User(ctx, "ben"); err != nil || u.Legacy || len(u.Roles) != 0 {
			t.Errorf("User = %+v, %v", u, err)
		}
		s := &users.Session{Dir: p.dir, User: "ben"}
		is, status := fhir.Explain(func() error { _, err := s.Principal(ctx, ""); return err }())
		if status != 403 || len(is) != 1 || !strings.Contains(is[0].Diagnostics, "the logged-in user ben has no roles") {
			t.Errorf("%d %+v", status, is)
		}
	})
}

func TestGroups(t *testing.T) {
	ctx := t.Context()
	p := newPractice(t, "anna", "ben")
	for _, tc := range []struct {
		name    string
		do      func() error
		refused string
	}{
		{"a group is created", func() error { return p.dir.AddGroup(ctx, "base_user_group_admin", "Verwaltung") }, ""},
		{"a second group is created without a name", func() error { return p.dir.AddGroup(ctx, "aerzte", "") }, ""},
		{"the same id again is refused", func() error { return p.dir2.AddGroup(ctx, "aerzte", "Ärzte") }, "exists already"},
		{"an id with a space is refused", func() error { return p.dir.AddGroup(ctx, "user group", "") }, "1 to 64 letters"},
		{"an id of 65 characters is refused", func() error { return p.dir.AddGroup(ctx, strings.Repeat("g", 65), "") }, "1 to 64 letters"},
		{"a name with a line break is refused", func() error { return p.dir.AddGroup(ctx, "empfang", "Emp\nfang") }, "control characters"},
		{"a member is added", func() error { return member(p.dir.AddMember(ctx, "aerzte", "anna")) }, ""},
		{"a member is added to another group", func() error { return member(p.dir.AddMember(ctx, "base_user_group_admin", "anna")) }, ""},
		{"a second member is added", func() error { return member(p.dir2.AddMember(ctx, "aerzte", "ben")) }, ""},
		{"a member again changes nothing", func() error { return unchanged(p.dir.AddMember(ctx, "aerzte", "ben")) }, ""},
		{"an unknown user is refused", func() error { return member(p.dir.AddMember(ctx, "aerzte", "dora")) }, "has no user dora"},
		{"an unknown group is refused", func() error { return member(p.dir.AddMember(ctx, "labor", "anna")) }, "has no group labor"},
		{"a member is taken out", func() error { return member(p.dir.RemoveMember(ctx, "aerzte", "ben")) }, ""},
		{"a non-member taken out changes nothing", func() error { return unchanged(p.dir.RemoveMember(ctx, "aerzte", "ben")) }, ""},
		{"a group is removed", func() error { return p.dir.RemoveGroup(ctx, "base_user_group_admin") }, ""},
		{"a removed group is gone", func() error { return p.dir.RemoveGroup(ctx, "base_user_group_admin") }, "has no group"},
		{"a removed group's id may be used again", func() error { return p.dir.AddGroup(ctx, "base_user_group_admin", "") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if tc.refused == "" && err != nil {
				t.Fatal(err)
			}
			if tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)) {
				t.Errorf("err = %v, want a refusal saying %q", err, tc.refused)
			}
		})
	}
	gs, err := p.dir2.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []users.Group{{ID: "aerzte", Members: []string{"anna"}}, {ID: "base_user_group_admin", Members: []string{}}}
	if len(gs) != len(want) {
		t.Fatalf("Groups = %+v, want %+v", gs, want)
	}
	for i := range want {
		if gs[i].ID != want[i].ID || gs[i].Name != want[i].Name || !slices.Equal(gs[i].Members, want[i].Members) {
			t.Errorf("group %d = %+v, want %+v", i, gs[i], want[i])
		}
	}
}

// member fails unless a membership changed.
func member(changed bool, err error) error {
	if err == nil && !changed {
		return errUnchanged
	}
	return err
}

// unchanged fails when a membership changed.
func unchanged(changed bool, err error) error {
	if err == nil && changed {
		return errChanged
	}
	return err
}

var (
	errUnchanged = errors.New("nothing changed")
	errChanged   = errors.New("the membership changed")
)

func TestPrincipal(t *testing.T) {
	ctx := t.Context()
	p := newPractice(t, "anna", "ben")
	must(t, p.dir.Created(ctx, "anna", roles(access.Physician, access.Admin)))
	must(t, p.dir.AddGroup(ctx, "labor", ""))
	must(t, p.dir.AddGroup(ctx, "aerzte", ""))
	must(t, p.dir.AddGroup(ctx, "empfang", ""))
	for _, g := range []string{"labor", "aerzte"} {
		if _, err := p.dir.AddMember(ctx, g, "anna"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, user string
		want       access.Principal
	}{
		{"names the user's roles and groups, by id", "anna", access.Principal{Tenant: "praxis", User: "anna", Workstation: "ws-1",
			Roles: roles(access.Physician, access.Admin), Groups: []string{"aerzte", "labor"}}},
		{"a legacy user in no group holds every role", "ben", access.Principal{Tenant: "praxis", User: "ben", Workstation: "ws-1", Roles: access.Roles()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.dir.Principal(ctx, tc.user, "ws-1")
			if err != nil {
				t.Fatal(err)
			}
			if !samePrincipal(got, tc.want) {
				t.Errorf("Principal = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func samePrincipal(a, b access.Principal) bool {
	return a.Tenant == b.Tenant && a.User == b.User && a.Workstation == b.Workstation && a.Client == b.Client &&
		slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Groups, b.Groups)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// What the directory stores is sealed: neither a group's id or name, nor who belongs to it,
// nor a user's roles, nor a token's name or value appear in the store's bytes.
func TestDirectoryHandsTheStoreNoPlaintext(t *testing.T) {
	ctx := t.Context()
	p := newPractice(t, "anna", "ben")
	must(t, p.dir.Created(ctx, "anna", roles(access.Physician, access.Admin)))
	must(t, p.dir.Created(ctx, "ben", roles(access.Pharmacist, access.Assistant)))
	must(t, p.dir.AddGroup(ctx, "base_user_group_admin", "Verwaltungsteam Nord"))
	must(t, p.dir.AddGroup(ctx, "gruppe-kardiologie", "Herzsprechstunde"))
	if _, err := p.dir.AddMember(ctx, "gruppe-kardiologie", "ben"); err != nil {
		t.Fatal(err)
	}
	token, err := p.dir.AddToken(ctx, "kasse-pvs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.dir.AddToken(ctx, "laborsoftware"); err != nil {
		t.Fatal(err)
	}
	if gs, err := p.dir.Groups(ctx); err != nil || len(gs) != 2 || gs[1].Members[0] != "ben" {
		t.Fatalf("the records do not read back: %+v, %v", gs, err)
	}
	if err := p.st.Close(); err != nil { // the WAL goes into red.db
		t.Fatal(err)
	}
	files, _ := filepath.Glob(p.db + "*")
	secrets := []string{"base_user_group_admin", "Verwaltungsteam", "gruppe-kardiologie", "Herzsprechstunde",
		"physician", "pharmacist", "assistant", "kasse-pvs", "laborsoftware", token, token[len(users.TokenPrefix):]}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) || bytes.Contains(bytes.ToLower(raw), []byte(hex.EncodeToString([]byte(s)))) {
				t.Errorf("%s holds %q in plaintext", filepath.Base(f), s)
			}
		}
	}
}

func TestTokens(t *testing.T) {
	ctx := t.Context()
	p := newPractice(t, "anna")
	first, err := p.dir.AddToken(ctx, "kasse-pvs")
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.dir.AddToken(ctx, "labor")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a token is red_ and 256 random bits", func(t *testing.T) {
		if !strings.HasPrefix(first, users.TokenPrefix) || len(first) != len(users.TokenPrefix)+43 || first == second {
			t.Errorf("tokens %q, %q", first, second)
		}
	})
	t.Run("a name is issued once", func(t *testing.T) {
		if _, err := p.dir.AddToken(ctx, "kasse-pvs"); err == nil || !strings.Contains(err.Error(), "exists already") {
			t.Errorf("AddToken = %v", err)
		}
	})
	t.Run("a name must be plain", func(t *testing.T) {
		if _, err := p.dir.AddToken(ctx, "kasse pvs"); err == nil {
			t.Error("a name with a space was accepted")
		}
	})
	t.Run("the list names the tokens and keeps no token", func(t *testing.T) {
		ts, err := p.dir2.Tokens(ctx)
		if err != nil || len(ts) != 2 || ts[0].Name != "kasse-pvs" || ts[1].Name != "labor" || ts[0].Created.IsZero() {
			t.Fatalf("Tokens = %+v, %v", ts, err)
		}
		if bytes.Contains(ts[0].Digest, []byte(first)) || len(ts[0].Digest) != 32 {
			t.Errorf("digest %x", ts[0].Digest)
		}
	})
	t.Run("removing an unknown token is refused", func(t *testing.T) {
		if err := p.dir.RemoveToken(ctx, "nix"); err == nil {
			t.Error("removed a token that was never issued")
		}
	})
}

// clock is a settable time for sessions.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestSessionFollowsChangesMadeElsewhere(t *testing.T) {
	ctx := t.Context()
	p := newPractice(t, "anna", "ben")
	must(t, p.dir.Created(ctx, "anna", roles(access.Admin)))
	must(t, p.dir.Created(ctx, "ben", roles(access.Assistant)))
	must(t, p.dir.AddGroup(ctx, "empfang", ""))
	c := &clock{time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	s := &users.Session{Dir: p.dir, User: "ben", Workstation: "ws-2", TTL: 2 * time.Second, Now: c.now}
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// another red changes ben's roles and groups
	must(t, p.dir2.SetRoles(ctx, "ben", roles(access.Physician)))
	if _, err := p.dir2.AddMember(ctx, "empfang", "ben"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		after  time.Duration
		roles  []access.Role
		groups []string
	}{
		{"within the TTL the session answers what it read", time.Second, roles(access.Assistant), nil},
		{"after the TTL it reads the change", 2 * time.Second, roles(access.Physician), []string{"empfang"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = c.t.Add(tc.after)
			got, err := s.Principal(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			want := access.Principal{Tenant: "praxis", User: "ben", Workstation: "ws-2", Roles: tc.roles, Groups: tc.groups}
			if !samePrincipal(got, want) {
				t.Errorf("Principal = %+v, want %+v", got, want)
			}
			if page, err := s.Page(ctx); err != nil || !samePrincipal(page, want) {
				t.Errorf("Page = %+v, %v", page, err)
			}
		})
	}
}

func TestSessionTokens(t *testing.T) {
	ctx := t.Context()
	p := newPractice(t, "anna")
	token, err := p.dir.AddToken(ctx, "kasse-pvs")
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	required := &users.Session{Dir: p.dir, User: "anna", Workstation: "ws-1", RequireToken: true, Now: c.now}
	open := &users.Session{Dir: p.dir, User: "anna", Workstation: "ws-1", Now: c.now}
	other := newPractice(t, "anna") // another tenant's keyring: its token is no token here
	foreign, err := other.dir.AddToken(ctx, "kasse-pvs")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		s             *users.Session
		authorization string
		client        string // "" with refused: 401
		refused       string
	}{
		{"a Bearer token names its client", required, "Bearer " + token, "kasse-pvs", ""},
		{"the scheme in any case", required, "bearer  " + token, "kasse-pvs", ""},
		{"RED's raw token style", required, token, "kasse-pvs", ""},
		{"no header is refused", required, "", "", "requires an API token"},
		{"an empty Bearer is refused", required, "Bearer ", "", "requires an API token"},
		{"a wrong token is refused", required, "Bearer " + token[:len(token)-1] + "x", "", "not valid"},
		{"another tenant's token is refused", required, "Bearer " + foreign, "", "not valid"},
		{"Basic credentials are refused", required, "Basic YW5uYTpwdw==", "", "not valid"},
		{"without --require-token the header is not looked at", open, "Bearer nonsense", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.s.Principal(ctx, tc.authorization)
			if tc.refused != "" {
				is, status := fhir.Explain(err)
				if status != 401 || len(is) != 1 || is[0].Code != fhir.CodeUnauthorized || !strings.Contains(is[0].Diagnostics, tc.refused) {
					t.Errorf("Principal = %+v, %v; want 401 saying %q", got, err, tc.refused)
				}
				return
			}
			if err != nil || got.Client != tc.client || got.User != "anna" {
				t.Errorf("Principal = %+v, %v; want client %q", got, err, tc.client)
			}
		})
	}
	t.Run("a removed token is refused once the session reads again", func(t *testing.T) {
		must(t, p.dir2.RemoveToken(ctx, "kasse-pvs"))
		if _, err := required.Principal(ctx, token); err != nil {
			t.Errorf("refused within the TTL: %v", err)
		}
		c.t = c.t.Add(users.DefaultTTL)
		if _, err := required.Principal(ctx, token); err == nil {
			t.Error("a removed token still lets through")
		}
	})
}

func TestSessionOfASealedVault(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "red.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &users.Session{Dir: users.New("praxis", vault.New("praxis", rand.Reader).Barrier(st), st), User: "anna"}
	if _, err := s.Principal(t.Context(), ""); err == nil {
		t.Error("a sealed vault gave a principal")
	}
}

// Package users keeps who may do what in a tenant: each user's roles, the user groups with their
// members, and the API tokens of the tenant's client programs. All of it is stored as sealed
// records through the vault's barrier, like a resource (types red:user, red:group, red:token,
// whose ids the barrier turns into blind tokens): the database sees how many there are and when
// they changed, never a group's id or name, who belongs to it, which roles a user has, or a
// token's name or value. A Session gives a running red serve the principal of its logged-in user
// (package access), kept current when another red changes roles, groups or tokens.
//
// The keyring stays one per tenant: a user group is access control inside the tenant, not a key
// of its own.
package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// The record types: no FHIR types, so the API's reads and searches never reach them.
const (
	userType  = "red:user"  // one user's roles; its id is the user's name
	groupType = "red:group" // one user group with its members; its id is the group's id
	tokenType = "red:token" // one API token: its name and the vault's digest of it
)

// Accounts lists a tenant's users (their credentials; storage.Store does).
type Accounts interface {
	Credentials(ctx context.Context, tenant string) ([]storage.Credential, error)
}

// Directory reads and changes one tenant's users, groups and tokens through its barrier.
type Directory struct {
	tenant   string
	barrier  *vault.Barrier
	accounts Accounts
	// Now is the clock of the records' timestamps; nil: time.Now.
	Now func() time.Time
	// Commits, when set, commits the directory's changes instead of the barrier: the audit
	// trail's wrapper of it, which records them (package audit).
	Commits Committer
}

// Committer commits writes all at once, or none, as vault.Barrier.Commit does.
type Committer interface {
	Commit(ctx context.Context, writes []vault.Write) error
}

// New returns the directory of tenant, reached through b; accounts lists the tenant's users.
func New(tenant string, b *vault.Barrier, accounts Accounts) *Directory {
	return &Directory{tenant: tenant, barrier: b, accounts: accounts}
}

func (d *Directory) now() time.Time {
	if d.Now == nil {
		return time.Now().UTC()
	}
	return d.Now().UTC()
}

// User is one user of the tenant and their roles.
type User struct {
	Name  string        `json:"name"`
	Roles []access.Role `json:"roles"`
	// Legacy: the user has no role record, and neither has anyone else of the tenant: they were
	// added before red knew roles. Such a user holds every role, as every user could do
	// everything then, until an admin sets their roles. Once a tenant has role records, a user
	// without one (an interrupted red user add, a record removed from the database) holds none.
	Legacy bool `json:"-"`
}

// Group is one user group: an id, as a Provenance names it (RED's user groups appear as
// Organization ids such as base_user_group_admin), a name for people, and its members' names.
type Group struct {
	ID      string   `json:"id"`
	Name    string   `json:"name,omitempty"`
	Members []string `json:"members"`
}

// Token is one API token as listed: its name and when it was issued (the token itself is shown
// once, by AddToken, and kept only as a digest).
type Token struct {
	Name    string    `json:"name"`
	Digest  []byte    `json:"digest"`
	Created time.Time `json:"created"`
}

// head is what a change needs to know of a record: the version to expect, and whether the
// record exists (neither never written nor removed).
type head struct {
	version int64
	exists  bool
}

// load reads the record typ/id into v.
func (d *Directory) load(ctx context.Context, typ, id string, v any) (head, error) {
	r, err := d.barrier.Current(ctx, typ, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return head{}, nil
	case err != nil:
		return head{}, err
	case r.Deleted:
		return head{version: r.Version}, nil
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		return head{}, fmt.Errorf("a %s record is unreadable: %w", typ, err)
	}
	return head{version: r.Version, exists: true}, nil
}

// all reads every current record of typ into a new T each.
func all[T any](ctx context.Context, d *Directory, typ string) ([]T, error) {
	page, err := d.barrier.Find(ctx, vault.Query{Type: typ})
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(page.Resources))
	for _, r := range page.Resources {
		var v T
		if err := json.Unmarshal(r.Body, &v); err != nil {
			return nil, fmt.Errorf("a %s record is unreadable: %w", typ, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// save writes v as the record typ/id over h (v nil: removes it).
func (d *Directory) save(ctx context.Context, typ, id string, h head, v any) error {
	w, err := d.write(typ, id, h, v)
	if err != nil {
		return err
	}
	return d.commit(ctx, w)
}

// write is the change that saves v as the record typ/id over h (v nil: removes it).
func (d *Directory) write(typ, id string, h head, v any) (vault.Write, error) {
	w := vault.Write{Type: typ, ID: id, Expect: h.version, Updated: d.now(), Deleted: v == nil}
	if v != nil {
		body, err := json.Marshal(v)
		if err != nil {
			return vault.Write{}, err
		}
		w.Body = body
	}
	return w, nil
}

// commit writes changes all at once, or none.
func (d *Directory) commit(ctx context.Context, writes ...vault.Write) error {
	var c Committer = d.barrier
	if d.Commits != nil {
		c = d.Commits
	}
	err := c.Commit(ctx, writes)
	if errors.Is(err, storage.ErrConflict) {
		return errors.New("another red changed the same record at the same moment; nothing was changed — run the command again")
	}
	return err
}

// names lists the tenant's users.
func (d *Directory) names(ctx context.Context) ([]string, error) {
	creds, err := d.accounts.Credentials(ctx, d.tenant)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(creds))
	for i, c := range creds {
		out[i] = c.User
	}
	return out, nil
}

// exists fails unless the tenant has a user named name.
func (d *Directory) exists(ctx context.Context, name string) error {
	names, err := d.names(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(names, name) {
		return fmt.Errorf("tenant %s has no user %s", d.tenant, name)
	}
	return nil
}

// NormalRoles checks roles and returns them without repetition in access.Roles' order; a user
// needs at least one.
func NormalRoles(roles []access.Role) ([]access.Role, error) {
	var out []access.Role
	for _, r := range access.Roles() {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	for _, r := range roles {
		if !slices.Contains(out, r) {
			_, err := access.ParseRole(string(r))
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("give a user at least one role: %s", access.Join(access.Roles()))
	}
	return out, nil
}

// User returns the user name's roles (see User.Legacy for a user without a role record). It does
// not check that name has a credential.
func (d *Directory) User(ctx context.Context, name string) (User, error) {
	var u User
	h, err := d.load(ctx, userType, name, &u)
	if err != nil || h.exists {
		return u, err
	}
	known, err := d.rolesKnown(ctx)
	if err != nil {
		return User{}, err
	}
	return withoutRecord(name, known), nil
}

// rolesKnown tells whether the tenant has role records at all.
func (d *Directory) rolesKnown(ctx context.Context) (bool, error) {
	page, err := d.barrier.Find(ctx, vault.Query{Type: userType, Limit: 1})
	return page.Total > 0, err
}

// withoutRecord is the user name, who has no role record, in a tenant that has role records
// (rolesKnown) or not.
func withoutRecord(name string, rolesKnown bool) User {
	if rolesKnown {
		return User{Name: name}
	}
	return User{Name: name, Roles: access.Roles(), Legacy: true}
}

// Users lists the tenant's users with their roles, in the order of their names.
func (d *Directory) Users(ctx context.Context) ([]User, error) {
	names, err := d.names(ctx)
	if err != nil {
		return nil, err
	}
	records, err := all[User](ctx, d, userType)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(names))
	for _, n := range names {
		i := slices.IndexFunc(records, func(u User) bool { return u.Name == n })
		if i < 0 {
			out = append(out, withoutRecord(n, len(records) > 0))
			continue
		}
		out = append(out, records[i])
	}
	return out, nil
}

// SetRoles gives the user name exactly roles. The tenant keeps at least one admin: taking the
// role from the last one is refused.
func (d *Directory) SetRoles(ctx context.Context, name string, roles []access.Role) error {
	roles, err := NormalRoles(roles)
	if err != nil {
		return err
	}
	if err := d.exists(ctx, name); err != nil {
		return err
	}
	if !slices.Contains(roles, access.Admin) {
		everyone, err := d.Users(ctx)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(everyone, func(u User) bool { return u.Name != name && slices.Contains(u.Roles, access.Admin) }) {
			return fmt.Errorf("%s is the last admin of tenant %s: give another user the role admin first", name, d.tenant)
		}
	}
	return d.setRoles(ctx, name, roles)
}

// setRoles writes the role record of name. The tenant's first role record comes with one for
// every other user, who was added before red knew roles and keeps every role: from then on, a
// user without a record is one whose record went missing, not one from before roles.
func (d *Directory) setRoles(ctx context.Context, name string, roles []access.Role) error {
	known, err := d.rolesKnown(ctx)
	if err != nil {
		return err
	}
	roleOf := map[string][]access.Role{name: roles}
	if !known {
		names, err := d.names(ctx)
		if err != nil {
			return err
		}
		for _, n := range names {
			if n != name {
				roleOf[n] = access.Roles()
			}
		}
	}
	writes := make([]vault.Write, 0, len(roleOf))
	for _, n := range slices.Sorted(maps.Keys(roleOf)) {
		var old User
		h, err := d.load(ctx, userType, n, &old)
		if err != nil {
			return err
		}
		w, err := d.write(userType, n, h, User{Name: n, Roles: roleOf[n]})
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	return d.commit(ctx, writes...)
}

// Created records the roles of a user just created (red init, red user add): no admin check,
// the caller made sure of it.
func (d *Directory) Created(ctx context.Context, name string, roles []access.Role) error {
	roles, err := NormalRoles(roles)
	if err != nil {
		return err
	}
	return d.setRoles(ctx, name, roles)
}

// CheckGroupID refuses what cannot be a user group's id: a Provenance names the group as an
// Organization, so the id has the form of a resource id.
func CheckGroupID(id string) error {
	if !fhir.ValidID(id) {
		return fmt.Errorf("group id %q: %s", id, fhir.IDRule)
	}
	return nil
}

// checkLabel refuses a name for people that is empty after trimming, too long or holds control
// characters.
func checkLabel(what, s string) error {
	if strings.TrimSpace(s) != s || len(s) > 200 || strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%s: at most 200 characters, no line breaks or control characters, no spaces around", what)
	}
	return nil
}

// Groups lists the tenant's user groups, by id.
func (d *Directory) Groups(ctx context.Context) ([]Group, error) {
	gs, err := all[Group](ctx, d, groupType)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(gs, func(a, b Group) int { return strings.Compare(a.ID, b.ID) })
	return gs, nil
}

// AddGroup creates the user group id with a name for people (may be "").
func (d *Directory) AddGroup(ctx context.Context, id, name string) error {
	if err := CheckGroupID(id); err != nil {
		return err
	}
	if err := checkLabel("group name", name); err != nil {
		return err
	}
	var g Group
	h, err := d.load(ctx, groupType, id, &g)
	if err != nil {
		return err
	}
	if h.exists {
		return fmt.Errorf("group %s exists already", id)
	}
	return d.save(ctx, groupType, id, h, Group{ID: id, Name: name, Members: []string{}})
}

// RemoveGroup removes the user group id.
func (d *Directory) RemoveGroup(ctx context.Context, id string) error {
	_, h, err := d.group(ctx, id)
	if err != nil {
		return err
	}
	return d.save(ctx, groupType, id, h, nil)
}

// group reads an existing group.
func (d *Directory) group(ctx context.Context, id string) (Group, head, error) {
	if err := CheckGroupID(id); err != nil {
		return Group{}, head{}, err
	}
	var g Group
	h, err := d.load(ctx, groupType, id, &g)
	if err == nil && !h.exists {
		err = fmt.Errorf("tenant %s has no group %s", d.tenant, id)
	}
	return g, h, err
}

// AddMember makes the user name a member of group id; it reports false when they were already.
func (d *Directory) AddMember(ctx context.Context, id, name string) (bool, error) {
	g, h, err := d.group(ctx, id)
	if err != nil {
		return false, err
	}
	if err := d.exists(ctx, name); err != nil {
		return false, err
	}
	if slices.Contains(g.Members, name) {
		return false, nil
	}
	g.Members = append(g.Members, name)
	slices.Sort(g.Members)
	return true, d.save(ctx, groupType, id, h, g)
}

// RemoveMember takes the user name out of group id; it reports false when they were no member.
func (d *Directory) RemoveMember(ctx context.Context, id, name string) (bool, error) {
	g, h, err := d.group(ctx, id)
	if err != nil {
		return false, err
	}
	i := slices.Index(g.Members, name)
	if i < 0 {
		return false, nil
	}
	g.Members = slices.Delete(g.Members, i, i+1)
	return true, d.save(ctx, groupType, id, h, g)
}

// Principal is who the user name is at workstation: their roles and the groups they belong to.
func (d *Directory) Principal(ctx context.Context, name, workstation string) (access.Principal, error) {
	u, err := d.User(ctx, name)
	if err != nil {
		return access.Principal{}, err
	}
	gs, err := d.Groups(ctx)
	if err != nil {
		return access.Principal{}, err
	}
	p := access.Principal{Tenant: d.tenant, User: name, Roles: u.Roles, Workstation: workstation}
	for _, g := range gs {
		if slices.Contains(g.Members, name) {
			p.Groups = append(p.Groups, g.ID)
		}
	}
	return p, nil
}

// Package access says who is acting on a tenant's data: the user a workstation's red serve is
// logged in as, that user's roles and user groups, the workstation, and the API client that sent
// the request. Use cases and the vault's barrier read it from the request's context.
package access

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redclone/red/fhir"
)

// Role is what a user of a tenant may do, as RED has it.
type Role string

// The roles RED knows.
const (
	Physician  Role = "physician"  // signs prescriptions, creates e-prescription tasks
	Assistant  Role = "assistant"  // enters and reads data; prescriptions are a physician's, as RED has it
	Pharmacist Role = "pharmacist" // accepts, rejects and dispenses e-prescriptions
	Admin      Role = "admin"      // manages users and groups, sees every user group's data
)

// Roles are every role, in the order red lists them.
func Roles() []Role { return []Role{Physician, Assistant, Pharmacist, Admin} }

// ParseRole reads a role's name (case-insensitive).
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Roles(), r) {
		return "", fmt.Errorf("unknown role %q: the roles are %s", s, Join(Roles()))
	}
	return r, nil
}

// Join lists roles for messages: "physician, admin", or "none".
func Join(roles []Role) string {
	if len(roles) == 0 {
		return "none"
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// Principal is who acts.
type Principal struct {
	Tenant string
	User   string
	Roles  []Role
	// Groups are the ids of the user groups the user is a member of.
	Groups      []string
	Workstation string
	// Client names the API token the request carried; "" when red serve runs without
	// --require-token.
	Client string
}

// Has says whether p holds role r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

// HasAny says whether p holds at least one of roles.
func (p Principal) HasAny(roles ...Role) bool {
	return slices.ContainsFunc(roles, p.Has)
}

// InGroup says whether p is a member of the user group with id g.
func (p Principal) InGroup(g string) bool { return slices.Contains(p.Groups, g) }

// SeesAll says whether p sees every user group's data (admins do).
func (p Principal) SeesAll() bool { return p.Has(Admin) }

type key struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, key{}, p)
}

// From returns the principal ctx carries; ok is false for red's own background work (delivery
// of notifications, the import), which acts for no user.
func From(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(key{}).(Principal)
	return p, ok
}

// Require lets through the principal ctx carries when it holds one of roles; otherwise it
// returns the error a caller reads (forbidden, 403) naming what was asked for, the roles it
// needs and the roles the user has — nothing of the data concerned. A context without a
// principal (no user acts) is refused too.
func Require(ctx context.Context, what string, roles ...Role) error {
	p, ok := From(ctx)
	switch {
	case !ok:
		return fhir.Fail(fhir.CodeForbidden, "", "%s needs a logged-in user with the role %s", what, either(roles))
	case p.HasAny(roles...):
		return nil
	}
	return fhir.Fail(fhir.CodeForbidden, "", "%s needs a user with the role %s; the logged-in user has: %s", what, either(roles), Join(p.Roles))
}

// either lists roles as alternatives: "physician or pharmacist".
func either(roles []Role) string {
	s := Join(roles)
	if i := strings.LastIndex(s, ", "); i >= 0 {
		s = s[:i] + " or " + s[i+2:]
	}
	return s
}

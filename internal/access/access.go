// Package access says who is acting on a tenant's data: the user a workstation's red serve is
// logged in as, that user's roles and user groups, the workstation, and the API client that sent
// the request. Use cases and the vault's barrier read it from the request's context.
package access

import (
	"context"
	"slices"
)

// Role is what a user of a tenant may do, as RED has it.
type Role string

// The roles RED knows.
const (
	Physician  Role = "physician"  // signs prescriptions, creates e-prescription tasks
	Assistant  Role = "assistant"  // enters and reads data, queues prescriptions for a physician
	Pharmacist Role = "pharmacist" // accepts, rejects and dispenses e-prescriptions
	Admin      Role = "admin"      // manages users and groups, sees every user group's data
)

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

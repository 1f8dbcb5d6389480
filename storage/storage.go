// Package storage is the contract between red's use cases and its databases: the database sees
// only tenants, resource types, blind id tokens, versions, timestamps, sealed bytes and search
// tokens — never plaintext person data.
package storage

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every backend translates its driver errors into.
var (
	// ErrNotFound: no such tenant, credential, resource or version.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: an optimistic version check failed or a unique key exists already.
	ErrConflict = errors.New("storage: conflict")
)

// Tenant is a practice. Its alias appears in every URL, so it is not secret.
type Tenant struct {
	Alias   string
	Created time.Time
}

// Credential is one user's wrapped copy of the tenant keyring. Blob is opaque to storage
// (the vault encodes KDF parameters, salt and the wrapped keyring in it).
type Credential struct {
	Tenant string
	User   string
	Blob   []byte
}

// Record is one stored version of one resource.
type Record struct {
	Type    string    // FHIR resource type, e.g. "Patient"
	ID      []byte    // blind token of the resource id (never the id itself)
	Version int64     // 1, 2, 3 … per (Type, ID)
	Updated time.Time // when this version was written (UTC, microsecond precision)
	Deleted bool      // a tombstone: the resource was deleted in this version
	Sealed  []byte    // ciphertext from the vault; nil for tombstones
}

// Key names one resource.
type Key struct {
	Type string
	ID   []byte
}

// Change writes the next version of one resource.
type Change struct {
	Type string
	ID   []byte
	// Expect is the version the writer read: 0 means the resource must not exist yet.
	// The change writes version Expect+1; if the current version differs, Commit fails with
	// ErrConflict and nothing of the batch is written.
	Expect  int64
	Updated time.Time
	Deleted bool
	Sealed  []byte
	// Tokens replace the resource's search tokens (blind-index values). Tombstones have none.
	Tokens [][]byte
	// Forget drops the resource's earlier versions with this change: only the version it writes
	// is kept — for records whose history is worth nothing and which are rewritten often (the
	// state of notification deliveries). A deletion that forgets keeps nothing at all: no head,
	// no version, no tokens, as if the resource had never been written (its id may be created
	// again with Expect 0). Expect is checked as for every change.
	Forget bool
}

// Query selects current, not-deleted resources of one type in one tenant.
type Query struct {
	Type string
	// All: a resource matches when, for every group, it carries at least one of the group's
	// tokens. No groups selects every resource of the type.
	All [][][]byte
	// Offset and Limit page the result in a stable order (by ID token). Limit 0 means no limit.
	Offset, Limit int
	// Disjoint declares that no resource carries two tokens of the one group (as the disjoint
	// time ranges of a polling query: each resource has one token per granularity). With one
	// group the store may then count the group's index entries as they are, without removing
	// duplicates, and page them in an order of its own, stable while the data stay the same,
	// instead of by ID token. Other queries ignore it. A query that declares it wrongly may
	// count and list a resource twice.
	Disjoint bool
	// Exclude leaves resources out as if they did not match (see Exclusion).
	Exclude Exclusion
}

// Exclusion leaves out the resources whose current version carries the token Token, except
// those that also carry one of the tokens Unless; a nil Token leaves out nothing. The vault
// uses it for the data of user groups the reader is no member of: such data carries a token
// saying it belongs to some group, and a token naming its group. Find counts and pages as if
// the excluded resources did not exist; Heads answers for them as for keys that never existed.
type Exclusion struct {
	Token  []byte
	Unless [][]byte
}

// Page is the answer to a Query.
type Page struct {
	Records []Record
	Total   int // matches in all, not just on this page
}

// Store is implemented by storage/postgres and storage/sqlite.
type Store interface {
	// CreateTenant fails with ErrConflict when the alias exists.
	CreateTenant(ctx context.Context, t Tenant) error
	Tenant(ctx context.Context, alias string) (Tenant, error)
	Tenants(ctx context.Context) ([]Tenant, error)

	// PutCredential inserts or replaces a user's credential; the tenant must exist.
	PutCredential(ctx context.Context, c Credential) error
	Credential(ctx context.Context, tenant, user string) (Credential, error)
	// Credentials lists a tenant's credentials by user name.
	Credentials(ctx context.Context, tenant string) ([]Credential, error)

	// Commit writes all changes atomically or none (ErrConflict on any version mismatch).
	Commit(ctx context.Context, tenant string, changes []Change) error
	// Current returns the newest version, tombstones included.
	Current(ctx context.Context, tenant, typ string, id []byte) (Record, error)
	// Heads returns the current version of each key in one round trip, in the order of keys,
	// without sealed bytes: Version 0 for a key that never existed or that ex leaves out,
	// Deleted for a tombstone (which carries no tokens, so ex never leaves it out).
	Heads(ctx context.Context, tenant string, keys []Key, ex Exclusion) ([]Record, error)
	// Version returns one version.
	Version(ctx context.Context, tenant, typ string, id []byte, version int64) (Record, error)
	// Find answers a Query.
	Find(ctx context.Context, tenant string, q Query) (Page, error)

	Close() error
}

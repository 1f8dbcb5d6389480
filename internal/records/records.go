// Package records stores, reads and searches a tenant's FHIR resources: it checks posted
// bundles, derives each resource's search values and answers reads and searches in RED's shapes.
// It talks only to the vault's barrier, in plaintext; sealing and tokens happen below it. The
// Provenances of a posted bundle put its data into user groups (groups.go: RED's form, as far as
// its documentation shows it, and the KBV's Provenance profile); the barrier then shows a group's
// data to its members and admins only.
package records

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// Store is what records needs of the vault's barrier: it takes and gives plaintext, and only
// sealed bytes and tokens pass below it.
type Store interface {
	Commit(ctx context.Context, writes []vault.Write) error
	Current(ctx context.Context, typ, id string) (vault.Resource, error)
	Version(ctx context.Context, typ, id string, version int64) (vault.Resource, error)
	Heads(ctx context.Context, refs []vault.Ref) ([]vault.Resource, error)
	Find(ctx context.Context, q vault.Query) (vault.Page, error)
	CountEveryGroup(ctx context.Context, q vault.Query) (int, error)
	SealString(purpose, plaintext string) (string, error)
	OpenString(purpose, sealed string) (string, error)
}

// Service is one unlocked tenant's record store.
type Service struct {
	Tenant string
	Store  Store // the tenant's vault barrier
	// Now is the clock; time.Now when nil. It is read once per request.
	Now func() time.Time
	// Validation says whether plausibility findings (a wrong check digit, a date in the future)
	// are warnings (kbv.ModeProfile, the default) or errors (kbv.ModeStrict).
	Validation kbv.Mode
	// Groups says which Organizations are user groups a Provenance may put data into
	// (groups.go); nil: every one.
	Groups Groups
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Read returns the current version of a resource: fhir.CodeNotFound when it never existed,
// fhir.CodeDeleted when it was deleted.
func (s *Service) Read(ctx context.Context, typ, id string) (*etree.Element, error) {
	r, err := s.current(ctx, typ, id)
	if err != nil {
		return nil, err
	}
	return parse(r)
}

// ReadDocument is Read's resource as fhir.Document writes it, and its version: written from the
// stored bytes without a tree where they are in Marshal's form (fhir.StoredDocument), as red
// stores what it writes.
func (s *Service) ReadDocument(ctx context.Context, typ, id string) ([]byte, int64, error) {
	r, err := s.current(ctx, typ, id)
	if err != nil {
		return nil, 0, err
	}
	if doc, ok := fhir.StoredDocument(r.Body); ok {
		return doc, r.Version, nil
	}
	el, err := parse(r)
	if err != nil {
		return nil, 0, err
	}
	return fhir.Document(el), r.Version, nil
}

// current is the current version of a resource that is not deleted.
func (s *Service) current(ctx context.Context, typ, id string) (vault.Resource, error) {
	r, err := s.Store.Current(ctx, typ, id)
	if err != nil {
		return r, missing(err, typ)
	}
	if r.Deleted {
		return r, fhir.Fail(fhir.CodeDeleted, "", "this %s was deleted in version %d", typ, r.Version)
	}
	return r, nil
}

// ReadVersion returns one version of a resource.
func (s *Service) ReadVersion(ctx context.Context, typ, id, version string) (*etree.Element, error) {
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil || v < 1 {
		return nil, fhir.Fail(fhir.CodeValue, "versionId", "a version is a whole number from 1")
	}
	r, err := s.Store.Version(ctx, typ, id, v)
	if errors.Is(err, storage.ErrNotFound) {
		if cur, cerr := s.Store.Current(ctx, typ, id); cerr == nil {
			if v > cur.Version {
				return nil, fhir.Fail(fhir.CodeNotFound, "", "this %s has versions 1 to %d, not %d", typ, cur.Version, v)
			}
			return nil, fhir.Fail(fhir.CodeNotFound, "", "version %d of this %s belongs to a user group you are no member of", v, typ)
		}
	}
	if err != nil {
		return nil, missing(err, typ)
	}
	if r.Deleted {
		return nil, fhir.Fail(fhir.CodeDeleted, "", "version %d of this %s is its deletion", v, typ)
	}
	return parse(r)
}

func missing(err error, typ string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fhir.Fail(fhir.CodeNotFound, "", "no %s with this id", typ)
	}
	return err
}

// parse reads a stored resource's body.
func parse(r vault.Resource) (*etree.Element, error) {
	el, err := fhir.Unmarshal(r.Body)
	if err != nil {
		return nil, fmt.Errorf("stored %s version %d does not parse: %w", r.Type, r.Version, err)
	}
	return el, nil
}

// newResourceID makes an id for a resource posted without one, in the style of RED's own ids
// (32 alphanumerics).
func newResourceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b[:])
}

// newID makes a UUID-shaped id for bundles red answers with.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

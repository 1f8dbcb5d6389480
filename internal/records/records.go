// Package records stores, reads and searches a tenant's FHIR resources: it checks posted
// bundles, seals every resource through the vault, derives blind search tokens and answers reads
// and searches in RED's shapes.
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
	"github.com/redclone/red/storage"
)

// Sealer is what records needs from the vault.
type Sealer interface {
	Seal(typ string, id []byte, version int64, plaintext []byte) ([]byte, error)
	Open(typ string, id []byte, version int64, sealed []byte) ([]byte, error)
	Token(index, value string) ([]byte, error)
	IDToken(typ, id string) ([]byte, error)
	SealString(purpose, plaintext string) (string, error)
	OpenString(purpose, sealed string) (string, error)
}

// Service is one unlocked tenant's record store.
type Service struct {
	Tenant string
	Store  storage.Store
	Vault  Sealer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
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
	tok, err := s.Vault.IDToken(typ, id)
	if err != nil {
		return nil, err
	}
	rec, err := s.Store.Current(ctx, s.Tenant, typ, tok)
	if err != nil {
		return nil, s.missing(err, typ)
	}
	if rec.Deleted {
		return nil, fhir.Fail(fhir.CodeDeleted, "", "this %s was deleted in version %d", typ, rec.Version)
	}
	return s.open(rec)
}

// ReadVersion returns one version of a resource.
func (s *Service) ReadVersion(ctx context.Context, typ, id, version string) (*etree.Element, error) {
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil || v < 1 {
		return nil, fhir.Fail(fhir.CodeValue, "versionId", "a version is a whole number from 1")
	}
	tok, err := s.Vault.IDToken(typ, id)
	if err != nil {
		return nil, err
	}
	rec, err := s.Store.Version(ctx, s.Tenant, typ, tok, v)
	if errors.Is(err, storage.ErrNotFound) {
		if cur, cerr := s.Store.Current(ctx, s.Tenant, typ, tok); cerr == nil {
			return nil, fhir.Fail(fhir.CodeNotFound, "", "this %s has versions 1 to %d, not %d", typ, cur.Version, v)
		}
	}
	if err != nil {
		return nil, s.missing(err, typ)
	}
	if rec.Deleted {
		return nil, fhir.Fail(fhir.CodeDeleted, "", "version %d of this %s is its deletion", v, typ)
	}
	return s.open(rec)
}

func (s *Service) missing(err error, typ string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fhir.Fail(fhir.CodeNotFound, "", "no %s with this id", typ)
	}
	return err
}

func (s *Service) open(rec storage.Record) (*etree.Element, error) {
	plain, err := s.Vault.Open(rec.Type, rec.ID, rec.Version, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("open %s version %d: %w", rec.Type, rec.Version, err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(plain); err != nil {
		return nil, fmt.Errorf("stored %s does not parse: %w", rec.Type, err)
	}
	return doc.Root(), nil
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

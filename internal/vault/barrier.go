package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redclone/red/storage"
)

// Barrier is the only way red's use cases reach the store, like Vault's SecurityBarrier: they
// hand it plaintext resources and their search values and get plaintext back, while only sealed
// bytes and blind tokens pass below it. Ids become id tokens, bodies are sealed to (tenant, type,
// id, version), search values become tokens — all here, so no use case can forget to. Every
// operation on a sealed vault fails with ErrSealed before the store is asked anything.
//
// It is also where user groups are enforced (visibility.go): each operation reads who acts from
// its context (access.From) and answers as if the data of user groups they are no member of did
// not exist.
type Barrier struct {
	v     *Vault
	store storage.Store
}

// Barrier returns the barrier between store and the users of this vault's tenant.
func (v *Vault) Barrier(store storage.Store) *Barrier {
	return &Barrier{v: v, store: store}
}

// IDIndex is the index name of a Term that selects resources by id (a search's _id).
const IDIndex = "_id"

// Term is one search value in one blind index.
type Term struct {
	Index, Value string
}

// Ref names one resource.
type Ref struct {
	Type, ID string
}

// Resource is one version of one resource, in plaintext.
type Resource struct {
	Type string
	// ID is the resource id the caller named; Find does not know ids (the store holds only their
	// tokens), so its results carry the id in Body only.
	ID      string
	Version int64     // 0 from Heads for a resource that never existed
	Updated time.Time // UTC
	Deleted bool      // a tombstone
	Body    []byte    // the plaintext; nil for tombstones and for Heads
	// Group is the user group whose members alone (and admins) see this version, "" when the
	// whole tenant does; "" from Heads and for tombstones.
	Group string
}

// Write stores the next version of one resource.
type Write struct {
	Type, ID string
	// Expect is the version the writer read (0: the resource must not exist yet); the write
	// stores version Expect+1, or the whole Commit fails with storage.ErrConflict.
	Expect  int64
	Updated time.Time
	Deleted bool
	Body    []byte
	// Index lists the values the resource is found by; the id is always indexed. Tombstones
	// are found by nothing.
	Index []Term
	// Forget keeps no earlier version (storage.Change.Forget): a deletion that forgets leaves
	// nothing of the resource.
	Forget bool
	// Group is the user group whose members alone (and admins) are to see this version, ""
	// for the whole tenant; sealed with the body, in the store only as blind tokens. For a
	// tombstone it is the group of the version deleted: not stored, but seen by those who wrap
	// the barrier (notify, which tells only that group's audience of the deletion).
	Group string
}

// Query selects current, not-deleted resources of one type: a resource matches when, for every
// group in All, it carries at least one of the group's terms. No groups select every resource.
type Query struct {
	Type          string
	All           [][]Term
	Offset, Limit int // a page in the store's stable order; Limit 0: no limit
	// Disjoint declares that no resource carries two terms of the one group, so that the store
	// may count and page the index entries as they are (see storage.Query.Disjoint).
	Disjoint bool
}

// Page answers a Query.
type Page struct {
	Resources []Resource
	Total     int // matches in all
}

// Commit writes all changes atomically or none. Who acts may write only what they see, and
// into no user group they are no member of: a write to a resource they cannot see fails with a
// *HiddenError (whose id is taken, as far as they can tell, by nothing).
func (b *Barrier) Commit(ctx context.Context, writes []Write) error {
	if b.v.Sealed() {
		return ErrSealed
	}
	vw, err := b.view(ctx)
	if err != nil {
		return err
	}
	if err := b.admit(ctx, vw, writes); err != nil {
		return err
	}
	changes := make([]storage.Change, 0, len(writes))
	for _, w := range writes {
		ch, err := b.change(w)
		if err != nil {
			return err
		}
		changes = append(changes, ch)
	}
	err = b.store.Commit(ctx, b.v.tenant, changes)
	if errors.Is(err, storage.ErrConflict) && vw.restricted {
		return b.explainConflict(ctx, vw, writes, err)
	}
	return err
}

// change seals w and turns its id, search values and user group into tokens.
func (b *Barrier) change(w Write) (storage.Change, error) {
	id, err := b.v.idToken(w.Type, w.ID)
	if err != nil {
		return storage.Change{}, err
	}
	ch := storage.Change{Type: w.Type, ID: id, Expect: w.Expect, Updated: w.Updated, Deleted: w.Deleted, Forget: w.Forget}
	if w.Deleted {
		return ch, nil
	}
	if ch.Sealed, err = b.v.sealRecord(w.Type, id, w.Expect+1, w.Group, w.Body); err != nil {
		return storage.Change{}, err
	}
	ch.Tokens = make([][]byte, 0, 3+len(w.Index))
	ch.Tokens = append(ch.Tokens, id)
	for _, t := range w.Index {
		tok, err := b.term(w.Type, t)
		if err != nil {
			return storage.Change{}, err
		}
		ch.Tokens = append(ch.Tokens, tok)
	}
	if w.Group != "" {
		mark, group, err := b.v.groupTokens(w.Group)
		if err != nil {
			return storage.Change{}, err
		}
		ch.Tokens = append(ch.Tokens, mark, group)
	}
	return ch, nil
}

// term is the blind token of t for resources of type typ.
func (b *Barrier) term(typ string, t Term) ([]byte, error) {
	if t.Index == IDIndex {
		return b.v.idToken(typ, t.Value)
	}
	return b.v.indexToken(t.Index, t.Value)
}

// Current returns the newest version, tombstones included (storage.ErrNotFound when the
// resource never existed, or when who acts may not see it).
func (b *Barrier) Current(ctx context.Context, typ, id string) (Resource, error) {
	tok, err := b.idToken(typ, id)
	if err != nil {
		return Resource{}, err
	}
	vw, err := b.view(ctx)
	if err != nil {
		return Resource{}, err
	}
	rec, err := b.store.Current(ctx, b.v.tenant, typ, tok)
	if err != nil {
		return Resource{}, err
	}
	return b.visible(ctx, vw, rec, id)
}

// Version returns one version (storage.ErrNotFound when there is no such version, or when who
// acts may not see it or the resource's current version).
func (b *Barrier) Version(ctx context.Context, typ, id string, version int64) (Resource, error) {
	tok, err := b.idToken(typ, id)
	if err != nil {
		return Resource{}, err
	}
	vw, err := b.view(ctx)
	if err != nil {
		return Resource{}, err
	}
	if vw.restricted {
		heads, err := b.heads(ctx, vw, []storage.Key{{Type: typ, ID: tok}})
		if err != nil {
			return Resource{}, err
		}
		if heads[0].Version == 0 {
			return Resource{}, errHidden
		}
	}
	rec, err := b.store.Version(ctx, b.v.tenant, typ, tok, version)
	if err != nil {
		return Resource{}, err
	}
	return b.visible(ctx, vw, rec, id)
}

// Heads returns the current version of each resource in one round trip, in the order of refs,
// without bodies: Version 0 for one that never existed or that who acts may not see, Deleted
// for a tombstone.
func (b *Barrier) Heads(ctx context.Context, refs []Ref) ([]Resource, error) {
	if b.v.Sealed() {
		return nil, ErrSealed
	}
	keys := make([]storage.Key, len(refs))
	for i, r := range refs {
		tok, err := b.v.idToken(r.Type, r.ID)
		if err != nil {
			return nil, err
		}
		keys[i] = storage.Key{Type: r.Type, ID: tok}
	}
	vw, err := b.view(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := b.heads(ctx, vw, keys)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(recs))
	for i, r := range recs {
		out[i] = Resource{Type: refs[i].Type, ID: refs[i].ID, Version: r.Version, Updated: r.Updated, Deleted: r.Deleted}
	}
	return out, nil
}

// Find answers a query; the results are opened. Only what who acts may see is counted and
// paged (see find).
func (b *Barrier) Find(ctx context.Context, q Query) (Page, error) {
	if b.v.Sealed() {
		return Page{}, ErrSealed
	}
	vw, err := b.view(ctx)
	if err != nil {
		return Page{}, err
	}
	sq, err := b.query(q)
	if err != nil {
		return Page{}, err
	}
	res, whole, err := b.find(ctx, vw, sq)
	if err != nil {
		return Page{}, err
	}
	page := Page{Total: res.Total, Resources: make([]Resource, 0, len(res.Records))}
	for _, rec := range res.Records {
		r, err := b.open(rec, "")
		if err != nil {
			return Page{}, err
		}
		switch {
		case vw.sees(r.Group):
			page.Resources = append(page.Resources, r)
		case whole: // every match is here: what who acts may not see is left out here
			page.Total--
		default: // the store left out by tokens, and they disagree with the sealed group: fail closed
			return Page{}, fmt.Errorf("vault: a %s the store found belongs to a user group its tokens do not name", q.Type)
		}
	}
	return page, nil
}

// find asks the store for sq as who acts may see it. A search by search values (the
// common case: a patient's diagnoses, an identifier) matches few resources: it goes to the
// store as it is, and when every match comes back at once (whole), Find leaves out what who acts
// may not see by the sealed groups it opens anyway — no cost in the store. Otherwise (a listing,
// a later page, more matches than a page) the store leaves them out by their tokens
// (storage.Exclusion), so that it counts and pages only what who acts may see.
func (b *Barrier) find(ctx context.Context, vw view, sq storage.Query) (res storage.Page, whole bool, err error) {
	if vw.restricted && len(sq.All) > 0 && sq.Offset == 0 {
		res, err = b.store.Find(ctx, b.v.tenant, sq)
		if err != nil || sq.Limit == 0 || res.Total <= sq.Limit {
			return res, true, err
		}
	}
	sq.Exclude = vw.ex
	res, err = b.store.Find(ctx, b.v.tenant, sq)
	return res, false, err
}

// CountEveryGroup is the number of resources q matches among the data of every user group,
// whoever acts: for checks whose answer must not depend on who asks (whether anything still
// refers to a resource), never to show what it counts. Offset and Limit do not apply.
func (b *Barrier) CountEveryGroup(ctx context.Context, q Query) (int, error) {
	if b.v.Sealed() {
		return 0, ErrSealed
	}
	sq, err := b.query(q)
	if err != nil {
		return 0, err
	}
	sq.Offset, sq.Limit = 0, 1
	res, err := b.store.Find(ctx, b.v.tenant, sq)
	return res.Total, err
}

// query is q for the store: its terms as tokens.
func (b *Barrier) query(q Query) (storage.Query, error) {
	sq := storage.Query{Type: q.Type, Offset: q.Offset, Limit: q.Limit, Disjoint: q.Disjoint, All: make([][][]byte, len(q.All))}
	for i, group := range q.All {
		sq.All[i] = make([][]byte, 0, len(group))
		for _, t := range group {
			tok, err := b.term(q.Type, t)
			if err != nil {
				return storage.Query{}, err
			}
			sq.All[i] = append(sq.All[i], tok)
		}
	}
	return sq, nil
}

// SealString seals a short value that travels in URLs red writes (a search's parameters in a
// paging link), bound to purpose; OpenString opens it.
func (b *Barrier) SealString(purpose, plaintext string) (string, error) {
	return b.v.sealString(purpose, plaintext)
}

// OpenString opens what SealString returned for the same purpose (ErrTampered otherwise).
func (b *Barrier) OpenString(purpose, sealed string) (string, error) {
	return b.v.openString(purpose, sealed)
}

// Digest is the keyed hash of a secret that red hands out and must recognise later (an API
// token), for purpose: HMAC-SHA256 under a key of its own derived from the tenant's keyring,
// whole rather than truncated like a blind token. Kept sealed in a record, it lets red check a
// presented secret (hmac.Equal on the digests) without storing the secret; the database, which
// lacks the key, can neither check a guess nor tell whose a secret is.
func (b *Barrier) Digest(purpose, secret string) ([]byte, error) {
	return b.v.digest(purpose, secret)
}

func (b *Barrier) idToken(typ, id string) ([]byte, error) {
	if b.v.Sealed() {
		return nil, ErrSealed
	}
	return b.v.idToken(typ, id)
}

// open turns a stored version into plaintext.
func (b *Barrier) open(rec storage.Record, id string) (Resource, error) {
	r := Resource{Type: rec.Type, ID: id, Version: rec.Version, Updated: rec.Updated, Deleted: rec.Deleted}
	if rec.Deleted {
		return r, nil
	}
	group, body, err := b.v.openRecord(rec.Type, rec.ID, rec.Version, rec.Sealed)
	if err != nil {
		return Resource{}, err
	}
	r.Body, r.Group = body, group
	return r, nil
}

package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/storage"
)

// User groups. A version written with a Group carries, besides its search tokens, two blind
// tokens: one every group's data carries (the mark) and one naming its group; the group itself
// is sealed with the body. Who acts is read from each operation's context (access.From):
//
//   - no principal (red's own background work) and admins (access.Principal.SeesAll) see
//     everything;
//   - anyone else sees what carries no group, and what carries one of their groups.
//
// For them the store leaves out the rest (storage.Exclusion: the mark, unless one of their
// groups' tokens), so searches count and page only what they see, and Heads answers for the
// rest as for ids never written; Current and Version open the version and check its sealed
// group. A tombstone has no body and no tokens: it is as visible as the version before it.
// Visibility follows the current version: a resource moved into a group hides its history
// from non-members too.

// errHidden answers reads of what who acts may not see, exactly as of what does not exist.
var errHidden = fmt.Errorf("vault: %w", storage.ErrNotFound)

// HiddenError refuses a Commit that writes resources who acts may not see: their ids are taken
// by data of user groups they are no member of. Commit returns it wrapped as a forbidden error
// for the caller.
type HiddenError struct {
	Refs []Ref
}

func (e *HiddenError) Error() string {
	return fmt.Sprintf("vault: %d resources written belong to user groups the writer is no member of", len(e.Refs))
}

// hidden is the caller's error for refs.
func hidden(refs []Ref) error {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Type + "/" + r.ID
	}
	return fhir.Wrap(&HiddenError{Refs: refs}, fhir.CodeForbidden, "%s cannot be written: the id is taken by data you may not see", strings.Join(names, ", "))
}

// view is what who acts may see.
type view struct {
	restricted bool // false: everything
	p          access.Principal
	ex         storage.Exclusion // what the store leaves out for them
}

// view reads who acts from ctx.
func (b *Barrier) view(ctx context.Context) (view, error) {
	p, ok := access.From(ctx)
	if !ok || p.SeesAll() {
		return view{}, nil
	}
	vw := view{restricted: true, p: p}
	var err error
	if vw.ex.Token, err = b.v.groupMark(); err != nil {
		return view{}, err
	}
	vw.ex.Unless = make([][]byte, len(p.Groups))
	for i, g := range p.Groups {
		if vw.ex.Unless[i], err = b.v.groupToken(g); err != nil {
			return view{}, err
		}
	}
	return vw, nil
}

// sees says whether a version of group is visible.
func (vw view) sees(group string) bool {
	return !vw.restricted || group == "" || vw.p.InGroup(group)
}

// visible opens rec (of the resource named id), or answers as if it did not exist when who
// acts may not see it.
func (b *Barrier) visible(ctx context.Context, vw view, rec storage.Record, id string) (Resource, error) {
	r, err := b.open(rec, id)
	if err != nil || !vw.restricted {
		return r, err
	}
	group := r.Group
	if r.Deleted {
		if group, err = b.groupBefore(ctx, rec); err != nil {
			return Resource{}, err
		}
	}
	if !vw.sees(group) {
		return Resource{}, errHidden
	}
	return r, nil
}

// groupBefore is the user group of the version before the tombstone rec.
func (b *Barrier) groupBefore(ctx context.Context, rec storage.Record) (string, error) {
	if rec.Version < 2 {
		return "", nil
	}
	prev, err := b.store.Version(ctx, b.v.tenant, rec.Type, rec.ID, rec.Version-1)
	if err != nil {
		return "", err
	}
	r, err := b.open(prev, "")
	return r.Group, err
}

// heads is store.Heads as who acts sees it: what they may not see as never written.
func (b *Barrier) heads(ctx context.Context, vw view, keys []storage.Key) ([]storage.Record, error) {
	recs, err := b.store.Heads(ctx, b.v.tenant, keys, vw.ex)
	if err != nil || !vw.restricted {
		return recs, err
	}
	for i, r := range recs {
		if !r.Deleted {
			continue
		}
		group, err := b.groupBefore(ctx, r)
		if err != nil {
			return nil, err
		}
		if !vw.sees(group) {
			recs[i] = storage.Record{Type: r.Type, ID: r.ID}
		}
	}
	return recs, nil
}

// admit refuses writes who acts may not make: into a user group they are no member of, or
// over a version they may not see.
func (b *Barrier) admit(ctx context.Context, vw view, writes []Write) error {
	if !vw.restricted {
		return nil
	}
	var keys []storage.Key
	for _, w := range writes {
		if w.Group != "" && !vw.p.InGroup(w.Group) {
			return fhir.Fail(fhir.CodeForbidden, "", "%s/%s cannot be written into user group %s: its data is written by its members and admins", w.Type, w.ID, w.Group)
		}
		if w.Expect > 0 {
			tok, err := b.v.idToken(w.Type, w.ID)
			if err != nil {
				return err
			}
			keys = append(keys, storage.Key{Type: w.Type, ID: tok})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	heads, err := b.heads(ctx, vw, keys)
	if err != nil {
		return err
	}
	for _, h := range heads {
		if h.Version == 0 { // hidden, or gone meanwhile: the store's conflict tells
			return b.explainConflict(ctx, vw, writes, nil)
		}
	}
	return nil
}

// explainConflict returns the error of a commit that failed with err, a version conflict (or
// nil when it was not tried): a hidden error when some of writes hit resources who acts may
// not see, else err.
func (b *Barrier) explainConflict(ctx context.Context, vw view, writes []Write, err error) error {
	keys := make([]storage.Key, len(writes))
	for i, w := range writes {
		tok, terr := b.v.idToken(w.Type, w.ID)
		if terr != nil {
			return terr
		}
		keys[i] = storage.Key{Type: w.Type, ID: tok}
	}
	all, herr := b.store.Heads(ctx, b.v.tenant, keys, storage.Exclusion{})
	if herr != nil {
		return errors.Join(err, herr)
	}
	seen, herr := b.heads(ctx, vw, keys)
	if herr != nil {
		return errors.Join(err, herr)
	}
	var refs []Ref
	for i, w := range writes {
		if all[i].Version > 0 && seen[i].Version == 0 {
			refs = append(refs, Ref{Type: w.Type, ID: w.ID})
		}
	}
	if len(refs) > 0 {
		return hidden(refs)
	}
	return err
}

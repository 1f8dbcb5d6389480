package records

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// bundleType is the storage type of bundle records: what each posted bundle wrote, sealed like
// any resource, so that DELETE /{tenant}/Bundle/{id} knows what the bundle created.
const bundleType = "Bundle"

// written is one resource version a bundle wrote.
type written struct {
	typ, id string
	version int64
	created bool
}

// bundleRecord returns the write that adds outcomes to the record of bundle id, whose current
// head is given (Version 0 for a bundle posted the first time).
func (s *Service) bundleRecord(ctx context.Context, id string, head vault.Resource, outcomes []fhir.Outcome, now time.Time) (vault.Write, error) {
	var prior []written
	if head.Version > 0 && !head.Deleted {
		cur, err := s.Store.Version(ctx, bundleType, id, head.Version)
		if err != nil {
			return vault.Write{}, err
		}
		if prior, err = readRecord(cur); err != nil {
			return vault.Write{}, err
		}
	}
	for _, o := range outcomes {
		if o.Version > 0 {
			prior = append(prior, written{typ: o.Type, id: o.ID, version: o.Version, created: o.Version == 1 || o.Status == http.StatusCreated})
		}
	}
	return vault.Write{Type: bundleType, ID: id, Expect: head.Version, Updated: now, Body: recordBody(id, prior)}, nil
}

// recordBody is the record of bundle id listing writes.
func recordBody(id string, writes []written) []byte {
	rec := etree.NewElement("BundleRecord")
	rec.CreateAttr("id", id)
	for _, w := range writes {
		e := rec.CreateElement("written")
		e.CreateAttr("type", w.typ)
		e.CreateAttr("id", w.id)
		e.CreateAttr("version", strconv.FormatInt(w.version, 10))
		if w.created {
			e.CreateAttr("created", "true")
		}
	}
	var buf bytes.Buffer
	etree.NewDocumentWithRoot(rec).WriteTo(&buf)
	return buf.Bytes()
}

func readRecord(r vault.Resource) ([]written, error) {
	root, err := fhir.Unmarshal(r.Body)
	if err != nil {
		return nil, err
	}
	var out []written
	for _, e := range root.SelectElements("written") {
		v, _ := strconv.ParseInt(e.SelectAttrValue("version", "0"), 10, 64)
		out = append(out, written{typ: e.SelectAttrValue("type", ""), id: e.SelectAttrValue("id", ""), version: v, created: e.SelectAttrValue("created", "") == "true"})
	}
	return out, nil
}

// DeleteBundle removes what bundle id created (DELETE /{tenant}/Bundle/{id}):
//   - every resource the bundle created is deleted (reads answer 410 Gone, searches skip it),
//     unless a later bundle changed it since — then it belongs to that bundle's data too and is
//     kept — or a resource outside this deletion still refers to it, which is kept as well;
//   - resources the bundle only updated keep their current version (a deletion is no rollback);
//   - the bundle id itself is gone: deleting it again answers 410.
//
// What who deletes may not see (another user group's data) is neither deleted nor listed: the
// bundle's record keeps it, for its group to delete; a bundle of nothing else is, for them, one
// never posted. The answer lists each resource with 204 (deleted) or 200 and a note saying why
// it was kept.
func (s *Service) DeleteBundle(ctx context.Context, id string) (*etree.Element, error) {
	rec, err := s.Store.Current(ctx, bundleType, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoBundle
	}
	if err != nil {
		return nil, err
	}
	if rec.Deleted {
		return nil, fhir.Fail(fhir.CodeDeleted, "", "this bundle was deleted already")
	}
	writes, err := readRecord(rec)
	if err != nil {
		return nil, err
	}
	type target struct {
		typ, id string
		last    int64
		head    vault.Resource
		keep    string
	}
	var order []string
	targets := map[string]*target{}
	for _, w := range writes {
		k := w.typ + "/" + w.id
		t := targets[k]
		if t == nil {
			if !w.created {
				continue
			}
			t = &target{typ: w.typ, id: w.id}
			targets[k] = t
			order = append(order, k)
		}
		t.last = max(t.last, w.version)
	}
	var hidden []written // what the bundle wrote that who deletes may not see
	visible := order[:0]
	for _, k := range order {
		t := targets[k]
		t.head, err = s.Store.Current(ctx, t.typ, t.id)
		if errors.Is(err, storage.ErrNotFound) {
			delete(targets, k)
			for _, w := range writes {
				if w.typ == t.typ && w.id == t.id {
					hidden = append(hidden, w)
				}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		visible = append(visible, k)
		if !t.head.Deleted && t.head.Version != t.last {
			t.keep = "kept: a later bundle changed it"
		}
	}
	order = visible
	if len(order) == 0 && len(hidden) > 0 {
		return nil, errNoBundle
	}
	// keep what live resources outside the deletion refer to, until nothing changes
	referrers := map[string][]string{}
	for changed := true; changed; {
		changed = false
		for _, k := range order {
			t := targets[k]
			if t.keep != "" || t.head.Deleted {
				continue
			}
			by, ok := referrers[k]
			if !ok {
				if by, err = s.referrers(ctx, k); err != nil {
					return nil, err
				}
				referrers[k] = by
			}
			for _, r := range by {
				if o := targets[r]; o == nil || o.keep != "" {
					t.keep, changed = "kept: another resource still refers to it", true
					break
				}
			}
		}
	}
	now := s.now()
	var changes []vault.Write
	var outcomes []fhir.Outcome
	for _, k := range order {
		t := targets[k]
		switch {
		case t.head.Deleted:
			outcomes = append(outcomes, fhir.Outcome{Type: t.typ, ID: t.id, Status: http.StatusGone})
		case t.keep != "":
			outcomes = append(outcomes, fhir.Outcome{Type: t.typ, ID: t.id, Version: t.head.Version, Modified: t.head.Updated, Status: http.StatusOK,
				Issues: fhir.Issues{{Severity: fhir.SeverityInformation, Code: fhir.CodeConflict, Diagnostics: t.keep}}})
		default:
			changes = append(changes, vault.Write{Type: t.typ, ID: t.id, Expect: t.head.Version, Updated: now, Deleted: true, Group: t.head.Group})
			outcomes = append(outcomes, fhir.Outcome{Type: t.typ, ID: t.id, Version: t.head.Version + 1, Modified: now, Status: http.StatusNoContent})
		}
	}
	bundle := vault.Write{Type: bundleType, ID: id, Expect: rec.Version, Updated: now, Deleted: true}
	if len(hidden) > 0 { // the record keeps what its group may still delete
		bundle.Deleted, bundle.Body = false, recordBody(id, hidden)
	}
	changes = append(changes, bundle)
	if err := s.Store.Commit(ctx, changes); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, fhir.Fail(fhir.CodeConflict, "", "another workstation changed these resources at the same moment; nothing was deleted — try again")
		}
		return nil, err
	}
	return fhir.TransactionResponse(id, "transaction-response", now, outcomes), nil
}

// errNoBundle answers the deletion of a bundle never posted.
var errNoBundle = fhir.Fail(fhir.CodeNotFound, "", "no bundle with this id was posted")

// referrers lists "Type/id" of the live resources that refer to key; "" stands for those of
// user groups who acts may not see (which keep key all the same: they are not deleted).
func (s *Service) referrers(ctx context.Context, key string) ([]string, error) {
	refersTo := [][]vault.Term{{{Index: refIndex, Value: key}}}
	var out []string
	for _, typ := range Types() {
		q := vault.Query{Type: typ, All: refersTo}
		n, err := s.Store.CountEveryGroup(ctx, q)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			continue
		}
		page, err := s.Store.Find(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Resources {
			el, err := parse(r)
			if err != nil {
				return nil, err
			}
			out = append(out, typ+"/"+fhir.ChildValue(el, "id"))
		}
		if len(page.Resources) < n {
			out = append(out, "")
		}
	}
	return out, nil
}

package records

import (
	"context"
	"errors"
	"maps"
	"sort"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// Prepared is a bundle that passed every check of PostBundle, turned into the writes that store
// it — its resources' next versions (meta, narrative and search values set) and the bundle's
// record — and the answer PostBundle gives. Nothing is stored until CommitPrepared.
type Prepared struct {
	bundleID string
	now      time.Time
	writes   []vault.Write
	outcomes []fhir.Outcome
	read     []vault.Ref
	at       map[vault.Ref]string // where each resource written is in the bundle
}

// Writes are what committing the bundle writes, each expecting the version its preparation read.
func (p *Prepared) Writes() []vault.Write { return p.writes }

// Read names every resource whose current version the preparation read: the entries, the stored
// resources their references name and the bundle's record. When another commit changes one of
// them before this bundle is committed, its checks and versions are stale: prepare it again.
func (p *Prepared) Read() []vault.Ref { return p.read }

// Resources is how many resources the bundle writes (its record not counted).
func (p *Prepared) Resources() int { return len(p.writes) - 1 }

// Response is the transaction-response PostBundle answers once the bundle is committed.
func (p *Prepared) Response() *etree.Element {
	return fhir.TransactionResponse(p.bundleID, "transaction-response", p.now, p.outcomes)
}

// PrepareBundle checks a bundle exactly as PostBundle does and returns its writes without
// storing anything, so that a bulk import can check bundles in parallel and commit many at once
// (CommitPrepared). A batch bundle, whose entries are stored each on its own, is refused: send it
// to PostBundle.
func (s *Service) PrepareBundle(ctx context.Context, b *etree.Element) (*Prepared, error) {
	ps, errs := s.PrepareBundles(ctx, []*etree.Element{b})
	return ps[0], errs[0]
}

// PrepareBundles is PrepareBundle of each bundle, all prepared against the store as it is when
// they look up the current versions they read, which they do together, in one call: the i-th
// bundle's outcome is ps[i] or errs[i].
func (s *Service) PrepareBundles(ctx context.Context, bs []*etree.Element) (ps []*Prepared, errs []error) {
	ps, errs = make([]*Prepared, len(bs)), make([]error, len(bs))
	type checked struct {
		i      int
		p      *plan
		issues fhir.Issues
		refs   []vault.Ref
	}
	var todo []checked
	var refs []vault.Ref
	seen := map[string]bool{}
	for i, b := range bs {
		now := s.now()
		bt, bundleID, entries, issues, err := s.readBundle(b)
		if err == nil && bt == "batch" {
			err = fhir.Fail(fhir.CodeNotSupported, "Bundle.type", "a batch stores each entry on its own and cannot be prepared as one: post it (POST /{tenant}/Bundle), or send a transaction or history bundle")
		}
		if err != nil {
			errs[i] = err
			continue
		}
		c := checked{i: i, p: newPlan(bundleID, entries, now)}
		c.issues = append(issues, c.p.check(s.Validation)...)
		c.refs = headRefs(entries, bundleID)
		for _, r := range c.refs {
			if k := r.Type + "/" + r.ID; !seen[k] {
				seen[k] = true
				refs = append(refs, r)
			}
		}
		todo = append(todo, c)
	}
	if len(todo) == 0 {
		return ps, errs
	}
	heads, err := s.lookup(ctx, refs)
	for _, c := range todo {
		if err != nil {
			errs[c.i] = err
			continue
		}
		c.p.heads = make(map[string]vault.Resource, len(c.refs))
		for _, r := range c.refs {
			k := r.Type + "/" + r.ID
			c.p.heads[k] = heads[k]
		}
		ps[c.i], errs[c.i] = s.finish(ctx, c.p, c.issues)
	}
	return ps, errs
}

// CommitPrepared stores prepared bundles, and also's writes with them, in one atomic commit:
// all of them or, when any resource changed since its bundle was prepared, none (a conflict).
// Bundles committed together must not write the same resource.
func (s *Service) CommitPrepared(ctx context.Context, ps []*Prepared, also ...vault.Write) error {
	n := len(also)
	for _, p := range ps {
		n += len(p.writes)
	}
	writes := make([]vault.Write, 0, n)
	for _, p := range ps {
		writes = append(writes, p.writes...)
	}
	writes = append(writes, also...)
	if err := s.Store.Commit(ctx, writes); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return fhir.Fail(fhir.CodeConflict, "", "another workstation changed one of these resources at the same moment; nothing was stored — send the bundle again")
		}
		at := map[vault.Ref]string{}
		for _, p := range ps {
			maps.Copy(at, p.at)
		}
		return hiddenWrites(err, at)
	}
	return nil
}

// prepare checks entries and turns them into the writes of one atomic commit together with the
// bundle's record; issues found earlier are reported together with the checks' findings. The
// steps: check, look up the current versions, then finish.
func (s *Service) prepare(ctx context.Context, bundleID string, entries []*entry, issues fhir.Issues, now time.Time) (*Prepared, error) {
	p := newPlan(bundleID, entries, now)
	issues = append(issues, p.check(s.Validation)...)
	var err error
	if p.heads, err = s.lookup(ctx, headRefs(entries, bundleID)); err != nil {
		return nil, err
	}
	return s.finish(ctx, p, issues)
}

// finish turns a checked plan whose current versions are known into the bundle's writes:
// groups, resolve references, version, write (narrative, meta, search values).
func (s *Service) finish(ctx context.Context, p *plan, issues fhir.Issues) (*Prepared, error) {
	more, err := s.assignGroups(ctx, p)
	if err != nil {
		return nil, err
	}
	issues = append(issues, more...)
	issues = append(issues, p.resolve()...)
	if hasErrors(issues) {
		sort.SliceStable(issues, func(i, j int) bool { return entryIndex(issues[i].Expression) < entryIndex(issues[j].Expression) })
		return nil, fhir.Reject(issues)
	}
	p.warnings = byEntry(issues)
	p.version()
	if err := s.keepGroups(ctx, p); err != nil {
		return nil, err
	}
	if p.patients, err = s.contextPatients(ctx, p.entries, p.inBundle); err != nil {
		return nil, err
	}
	writes, outcomes := p.writes()
	rec, err := s.bundleRecord(ctx, p.bundleID, p.heads[bundleType+"/"+p.bundleID], outcomes, p.now)
	if err != nil {
		return nil, err
	}
	read := make([]vault.Ref, 0, len(p.heads))
	for _, h := range p.heads {
		read = append(read, vault.Ref{Type: h.Type, ID: h.ID})
	}
	at := make(map[vault.Ref]string, len(p.entries))
	for _, e := range p.entries {
		at[vault.Ref{Type: e.typ, ID: e.id}] = e.at
	}
	return &Prepared{bundleID: p.bundleID, now: p.now, writes: append(writes, rec), outcomes: outcomes, read: read, at: at}, nil
}

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
	now := s.now()
	bt, bundleID, entries, issues, err := s.readBundle(b)
	if err != nil {
		return nil, err
	}
	if bt == "batch" {
		return nil, fhir.Fail(fhir.CodeNotSupported, "Bundle.type", "a batch stores each entry on its own and cannot be prepared as one: post it (POST /{tenant}/Bundle), or send a transaction or history bundle")
	}
	return s.prepare(ctx, bundleID, entries, issues, now)
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
// steps: check, resolve references, version, write (narrative, meta, search values).
func (s *Service) prepare(ctx context.Context, bundleID string, entries []*entry, issues fhir.Issues, now time.Time) (*Prepared, error) {
	p := newPlan(bundleID, entries, now)
	issues = append(issues, p.check(s.Validation)...)
	var err error
	if p.heads, err = s.heads(ctx, entries, bundleID); err != nil {
		return nil, err
	}
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
	if p.patients, err = s.contextPatients(ctx, entries, p.inBundle); err != nil {
		return nil, err
	}
	writes, outcomes := p.writes()
	rec, err := s.bundleRecord(ctx, bundleID, p.heads[bundleType+"/"+bundleID], outcomes, now)
	if err != nil {
		return nil, err
	}
	read := make([]vault.Ref, 0, len(p.heads))
	for _, h := range p.heads {
		read = append(read, vault.Ref{Type: h.Type, ID: h.ID})
	}
	at := make(map[vault.Ref]string, len(entries))
	for _, e := range entries {
		at[vault.Ref{Type: e.typ, ID: e.id}] = e.at
	}
	return &Prepared{bundleID: bundleID, now: now, writes: append(writes, rec), outcomes: outcomes, read: read, at: at}, nil
}

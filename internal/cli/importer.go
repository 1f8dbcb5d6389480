package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
)

// The import journal: one record per imported bundle, written through the vault's barrier in
// the same commit as the bundle's resources, so that a bundle is either stored and journalled
// or neither. Its id is the SHA-256 of the bundle's bytes (the store sees only the id's blind
// token; the record, which names the source, is sealed); a rerun skips every bundle whose
// record exists — after a kill, after a refusal elsewhere, or when the same bundle comes twice —
// so that no resource gets a second version from the same bundle. Its storage type is no FHIR
// resource type, so the API never reaches it.
const journalType = "red:import"

// journalEntry is what the journal keeps of an imported bundle.
type journalEntry struct {
	Source    string    `json:"source"`
	Imported  time.Time `json:"imported"`
	Resources int       `json:"resources"`
}

// importer imports sources into one tenant: workers read, parse and prepare bundles in
// parallel; one committer takes them in the sources' order and commits them in batches.
//
// A bundle is prepared against the store as it was when the bundle was handed to a worker
// (its snapshot: every source before it was done then). When a bundle the committer took after
// that snapshot wrote something this one read (a resource, a reference target, the bundle's
// record, the journal record), or when it was refused while such bundles were unsettled, the
// committer commits its batch and prepares the bundle again. So every bundle ends exactly as if
// the sources had been posted one after another, in order, and no batch holds two bundles
// writing the same resource.
type importer struct {
	recs    *records.Service
	limits  fhir.Limits
	workers int
	batch   int           // bundles per commit at most
	linger  time.Duration // how long a batch waits for more bundles once the workers fall behind
	now     func() time.Time

	// refused is called, in the committer, for each refused bundle with its issues
	refused func(src importSource, issues fhir.Issues)

	// progress, read by the progress view
	done, imported, skipped, rejected, resources atomic.Int64

	durable atomic.Int64 // sources before this index are committed or will write nothing
	// snaps holds the snapshot of each source handed out and not yet settled (at most window),
	// at index i % window
	snaps      []atomic.Int64
	dispatched atomic.Int64
}

// job is a source handed to a worker, with the snapshot it is prepared against.
type job struct {
	i    int
	src  importSource
	snap int64
}

// prepared is a worker's result.
type prepared struct {
	job
	data    []byte
	hash    string
	skip    bool                // already imported
	prep    *records.Prepared   // nil when refused
	issues  fhir.Issues         // why it was refused
	depends bool                // the refusal may depend on what other bundles store
	err     error               // a failure that stops the import
	writes  map[string]struct{} // resource keys the bundle writes
}

// run imports sources and returns when all are done or on the first failure that is not a
// bundle's refusal (the store unreachable, ctx ended); what was committed stays committed.
func (im *importer) run(ctx context.Context, sources []importSource) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	window := 4*im.workers + im.batch
	im.snaps = make([]atomic.Int64, window)
	jobs := make(chan job)
	results := make(chan *prepared, window)
	tickets := make(chan struct{}, window)
	var wg sync.WaitGroup
	for range im.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- im.prepare(ctx, j, nil)
			}
		}()
	}
	go func() { // dispatch in order, at most window sources ahead of the committer
		defer close(jobs)
		for i, src := range sources {
			select {
			case tickets <- struct{}{}:
			case <-ctx.Done():
				return
			}
			snap := im.durable.Load()
			im.snaps[i%window].Store(snap)
			im.dispatched.Store(int64(i + 1))
			select {
			case jobs <- job{i: i, src: src, snap: snap}:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	c := &committer{im: im, lastWrite: map[string]int{}}
	err := c.loop(ctx, len(sources), results, tickets)
	cancel()
	for range results { // let the workers end
	}
	return err
}

// prepare reads, checks and prepares one source; data is its bytes when already read.
func (im *importer) prepare(ctx context.Context, j job, data []byte) *prepared {
	r := &prepared{job: j, data: data}
	if r.data == nil {
		var err error
		if r.data, err = j.src.read(im.limits.MaxBytes); err != nil {
			r.issues = readIssues(err, im.limits.MaxBytes)
			return r
		}
	}
	sum := sha256.Sum256(r.data)
	r.hash = hex.EncodeToString(sum[:])
	heads, err := im.recs.Store.Heads(ctx, []vault.Ref{{Type: journalType, ID: r.hash}})
	if err != nil {
		r.err = err
		return r
	}
	if h := heads[0]; h.Version > 0 && !h.Deleted {
		r.skip = true
		return r
	}
	b, err := fhir.ParseContext(ctx, r.data, im.limits)
	if err == nil {
		r.prep, err = im.recs.PrepareBundle(ctx, b)
		r.depends = true
	}
	if err != nil {
		if r.issues, _ = fhir.Explain(err); r.issues == nil || ctx.Err() != nil {
			r.err = err
		}
		return r
	}
	r.writes = make(map[string]struct{}, len(r.prep.Writes())+1)
	for _, w := range r.prep.Writes() {
		r.writes[w.Type+"/"+w.ID] = struct{}{}
	}
	r.writes[journalType+"/"+r.hash] = struct{}{}
	return r
}

// readIssues explains why a source could not be read.
func readIssues(err error, limit int64) fhir.Issues {
	if errors.Is(err, errTooLarge) {
		err = fhir.Fail(fhir.CodeTooCostly, "", "the bundle has more than %d bytes, the most a request body may have (--max-body)", limit)
	} else {
		err = fhir.Fail(fhir.CodeException, "", "the file cannot be read: %v", errors.Unwrap(err))
	}
	is, _ := fhir.Explain(err)
	return is
}

// committer takes prepared bundles in the sources' order and commits them in batches.
type committer struct {
	im        *importer
	next      int            // index of the next source to settle
	lastWrite map[string]int // resource key → index of the last bundle that wrote it (recent ones)
	lastAny   int            // index of the last bundle that wrote anything, -1 for none
	pending   []*prepared    // the batch
}

func (c *committer) loop(ctx context.Context, n int, results <-chan *prepared, tickets <-chan struct{}) error {
	c.lastAny = -1
	waiting := map[int]*prepared{}
	var since time.Time // when the batch got its first bundle
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for c.next < n {
		r, ok := waiting[c.next]
		if !ok {
			var linger <-chan time.Time
			if len(c.pending) > 0 {
				timer.Reset(c.im.linger - time.Since(since))
				linger = timer.C
			}
			select {
			case r, ok = <-results:
				if !ok {
					return errors.Join(ctx.Err(), c.flush(ctx))
				}
				waiting[r.i] = r
			case <-linger:
				if err := c.flush(ctx); err != nil {
					return err
				}
			}
			continue
		}
		delete(waiting, c.next)
		if len(c.pending) == 0 {
			since = time.Now()
		}
		if err := c.settle(ctx, r); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return errors.Join(err, c.flush(ctx))
		}
		c.next++
		<-tickets // only now: the snapshot of the next source stays in snaps until it is settled
		if len(c.pending) == 0 {
			c.im.durable.Store(int64(c.next))
		}
		if len(c.pending) >= c.im.batch {
			if err := c.flush(ctx); err != nil {
				return err
			}
		}
	}
	return c.flush(ctx)
}

// stale tells whether r was prepared before a bundle that may change its outcome was committed.
func (c *committer) stale(r *prepared) bool {
	switch {
	case r.skip || r.err != nil:
		return false
	case r.prep == nil:
		return r.depends && c.lastAny >= int(r.snap)
	}
	if w, ok := c.lastWrite[journalType+"/"+r.hash]; ok && w >= int(r.snap) {
		return true
	}
	for _, ref := range r.prep.Read() {
		if w, ok := c.lastWrite[ref.Type+"/"+ref.ID]; ok && w >= int(r.snap) {
			return true
		}
	}
	return false
}

// settle decides the fate of the next source: skipped, refused or added to the batch.
func (c *committer) settle(ctx context.Context, r *prepared) error {
	if c.stale(r) {
		if err := c.flush(ctx); err != nil {
			return err
		}
		r = c.im.prepare(ctx, job{i: r.i, src: r.src, snap: int64(r.i)}, r.data)
	}
	switch {
	case r.err != nil:
		return fmt.Errorf("%s: %w", r.src.name, r.err)
	case r.skip:
		c.im.skipped.Add(1)
		c.im.done.Add(1)
	case r.prep == nil:
		c.refuse(r, r.issues)
	default:
		for k := range r.writes {
			c.lastWrite[k] = r.i
		}
		c.lastAny = r.i
		c.pending = append(c.pending, r)
	}
	return nil
}

func (c *committer) refuse(r *prepared, issues fhir.Issues) {
	c.im.rejected.Add(1)
	c.im.done.Add(1)
	if c.im.refused != nil {
		c.im.refused(r.src, issues)
	}
}

// flush commits the batch with its journal records. When another writer changed one of its
// resources meanwhile (a conflict), each bundle is prepared again and committed on its own.
func (c *committer) flush(ctx context.Context) error {
	if len(c.pending) == 0 {
		return nil
	}
	batch := c.pending
	c.pending = nil
	// a batch that was complete commits even when the import is being stopped
	ctx = context.WithoutCancel(ctx)
	err := c.commit(ctx, batch)
	if fhir.CodeOf(err) == fhir.CodeConflict {
		err = nil
		for _, r := range batch {
			if err = c.commitAlone(ctx, r); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	c.im.durable.Store(int64(c.next))
	c.prune()
	return nil
}

func (c *committer) commit(ctx context.Context, batch []*prepared) error {
	ps := make([]*records.Prepared, len(batch))
	journal := make([]vault.Write, len(batch))
	resources := 0
	at := c.im.now().UTC()
	for i, r := range batch {
		ps[i] = r.prep
		body, err := json.Marshal(journalEntry{Source: r.src.name, Imported: at, Resources: r.prep.Resources()})
		if err != nil {
			return err
		}
		journal[i] = vault.Write{Type: journalType, ID: r.hash, Updated: at, Body: body}
		resources += r.prep.Resources()
	}
	if err := c.im.recs.CommitPrepared(ctx, ps, journal...); err != nil {
		return err
	}
	c.im.imported.Add(int64(len(batch)))
	c.im.done.Add(int64(len(batch)))
	c.im.resources.Add(int64(resources))
	return nil
}

// commitAlone prepares r again and commits it alone, a few times while other writers keep
// changing its resources; then it is refused with the conflict.
func (c *committer) commitAlone(ctx context.Context, r *prepared) error {
	var err error
	for range 3 {
		r = c.im.prepare(ctx, r.job, r.data)
		switch {
		case r.err != nil:
			return fmt.Errorf("%s: %w", r.src.name, r.err)
		case r.skip:
			c.im.skipped.Add(1)
			c.im.done.Add(1)
			return nil
		case r.prep == nil:
			c.refuse(r, r.issues)
			return nil
		}
		if err = c.commit(ctx, []*prepared{r}); fhir.CodeOf(err) != fhir.CodeConflict {
			return err
		}
	}
	is, _ := fhir.Explain(err)
	c.refuse(r, is)
	return nil
}

// prune forgets writes that no bundle still in the pipeline, or handed out from now on, can
// have missed: those before the oldest snapshot in use.
func (c *committer) prune() {
	if len(c.lastWrite) < 1<<14 {
		return
	}
	oldest := c.im.durable.Load()
	if int64(c.next) < c.im.dispatched.Load() {
		oldest = c.im.snaps[c.next%len(c.im.snaps)].Load()
	}
	for k, i := range c.lastWrite {
		if int64(i) < oldest {
			delete(c.lastWrite, k)
		}
	}
}

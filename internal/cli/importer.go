package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
)

// The import journal: a record per committed batch, written through the vault's barrier in the
// same commit as the batch's resources, listing the SHA-256 of each bundle's bytes and where it
// came from — so a bundle is either stored and journalled or neither, and the store sees
// neither (the record is sealed like a resource). An import reads the whole journal first and
// skips every bundle whose bytes it lists — after a kill, or when the same bundle comes twice —
// so that no resource gets a second version from the same bundle. A record per batch rather
// than per bundle costs the commit one write instead of one per bundle. Its storage type is no
// FHIR resource type, so the API never reaches it.
const journalType = "red:import"

// journalBatch is the body of a journal record.
type journalBatch struct {
	Imported time.Time      `json:"imported"`
	Bundles  []journalEntry `json:"bundles"`
}

// journalEntry is what the journal keeps of an imported bundle.
type journalEntry struct {
	SHA256    string `json:"sha256"`
	Source    string `json:"source"`
	Resources int    `json:"resources"`
}

// readJournal returns the hashes of the bundles imported so far.
func readJournal(ctx context.Context, store records.Store) (map[string]bool, error) {
	page, err := store.Find(ctx, vault.Query{Type: journalType})
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for _, r := range page.Resources {
		var jb journalBatch
		if err := json.Unmarshal(r.Body, &jb); err != nil {
			return nil, fmt.Errorf("the import journal is unreadable: %w", err)
		}
		for _, e := range jb.Bundles {
			done[e.SHA256] = true
		}
	}
	return done, nil
}

// importer imports sources into one tenant: workers read, parse and prepare bundles in
// parallel; one committer takes them in the sources' order and commits them in batches.
//
// A bundle is prepared against the store as it was when the bundle was handed to a worker
// (its snapshot: every source before it was done then). When a bundle the committer took after
// that snapshot wrote something this one read (a resource, a reference target, the bundle's
// record), or when it was refused while such bundles were unsettled, the committer prepares it
// again — first against the store as it is, and when the batch may matter, after committing the
// batch. So every bundle ends exactly as if the sources had been posted one after another, in
// order, and no batch holds two bundles writing the same resource.
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

	before  map[string]bool // hashes of the bundles the journal listed when the import began
	durable atomic.Int64    // sources before this index are committed or will write nothing
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
	skip    bool              // already imported
	prep    *records.Prepared // nil when refused
	issues  fhir.Issues       // why it was refused
	depends bool              // the refusal may depend on what other bundles store
	err     error             // a failure that stops the import
	writes  []string          // "Type/id" of each resource the bundle writes
}

// run imports sources and returns when all are done or on the first failure that is not a
// bundle's refusal (the store unreachable, ctx ended); what was committed stays committed.
func (im *importer) run(ctx context.Context, sources []importSource) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	window := 4*im.workers + im.batch
	im.snaps = make([]atomic.Int64, window)
	jobs := make(chan job, groupSize*im.workers)
	results := make(chan *prepared, window)
	tickets := make(chan struct{}, window)
	var wg sync.WaitGroup
	for range im.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				group := []job{j}
			gather: // the sources waiting already, up to a group
				for len(group) < groupSize {
					select {
					case j, ok := <-jobs:
						if !ok {
							break gather
						}
						group = append(group, j)
					default:
						break gather
					}
				}
				for _, r := range im.prepareGroup(ctx, group) {
					results <- r
				}
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
	c := &committer{im: im, lastWrite: map[string]int{}, seen: map[string]bool{}}
	err := c.loop(ctx, len(sources), results, tickets)
	cancel()
	for range results { // let the workers end
	}
	return err
}

// groupSize is how many sources a worker prepares together at most: they look up the current
// versions they read in one round trip to the store.
const groupSize = 8

// prepare reads, checks and prepares one source; data is its bytes when already read.
func (im *importer) prepare(ctx context.Context, j job, data []byte) *prepared {
	r, b := im.parse(ctx, j, data)
	if b != nil {
		prep, err := im.recs.PrepareBundle(ctx, b)
		im.outcome(ctx, r, prep, err)
	}
	return r
}

// prepareGroup is prepare of each of the sources of group, prepared together.
func (im *importer) prepareGroup(ctx context.Context, group []job) []*prepared {
	out := make([]*prepared, len(group))
	var bundles []*etree.Element
	var at []int // where each bundle's source is in group
	for i, j := range group {
		var b *etree.Element
		if out[i], b = im.parse(ctx, j, nil); b != nil {
			bundles = append(bundles, b)
			at = append(at, i)
		}
	}
	if len(bundles) > 0 {
		ps, errs := im.recs.PrepareBundles(ctx, bundles)
		for k, i := range at {
			im.outcome(ctx, out[i], ps[k], errs[k])
		}
	}
	return out
}

// parse reads and parses a source (data is its bytes when already read): the bundle to prepare,
// or nil when r is settled already (unreadable, imported before, not FHIR XML).
func (im *importer) parse(ctx context.Context, j job, data []byte) (*prepared, *etree.Element) {
	r := &prepared{job: j, data: data}
	if r.data == nil {
		var err error
		if r.data, err = j.src.read(im.limits.MaxBytes); err != nil {
			r.issues = readIssues(err, im.limits.MaxBytes)
			return r, nil
		}
	}
	sum := sha256.Sum256(r.data)
	r.hash = hex.EncodeToString(sum[:])
	if im.before[r.hash] {
		r.skip = true
		return r, nil
	}
	b, err := fhir.ParseContext(ctx, r.data, im.limits)
	if err != nil {
		im.outcome(ctx, r, nil, err)
		return r, nil
	}
	r.depends = true // whether the bundle is refused may depend on what other bundles store
	return r, b
}

// outcome records in r what preparing its bundle gave: the prepared bundle, or why not.
func (im *importer) outcome(ctx context.Context, r *prepared, prep *records.Prepared, err error) {
	if err != nil {
		var status int
		if r.issues, status = fhir.Explain(err); r.issues == nil || status >= http.StatusInternalServerError || ctx.Err() != nil {
			r.err = err // not the bundle's fault
		}
		return
	}
	r.prep = prep
	r.writes = make([]string, len(prep.Writes()))
	for i, w := range prep.Writes() {
		r.writes[i] = w.Type + "/" + w.ID
	}
}

// readIssues explains why a source could not be read.
func readIssues(err error, limit int64) fhir.Issues {
	if errors.Is(err, errTooLarge) {
		err = fhir.Fail(fhir.CodeTooCostly, "", "the bundle has more than %d bytes, the most a request body may have (--max-body)", limit)
	} else {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the path is the source's name, reported with it
		}
		err = fhir.Fail(fhir.CodeException, "", "the bundle cannot be read: %v", err)
	}
	is, _ := fhir.Explain(err)
	return is
}

// committer takes prepared bundles in the sources' order and commits them in batches.
type committer struct {
	im        *importer
	next      int             // index of the next source to settle
	lastWrite map[string]int  // resource key → index of the last bundle that wrote it (recent ones)
	lastAny   int             // index of the last bundle that wrote anything, -1 for none
	pending   []*prepared     // the batch
	seen      map[string]bool // hashes of the bundles journalled since the import began
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
	case r.err != nil:
		return false
	case r.prep == nil:
		return r.depends && c.lastAny >= int(r.snap)
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
	if c.stale(r) && !c.imported(r) {
		// prepared again against the store as it is, without the batch; when the batch may
		// change the outcome, after committing the batch
		r = c.im.prepare(ctx, job{i: r.i, src: r.src, snap: c.im.durable.Load()}, r.data)
		if c.stale(r) {
			if err := c.flush(ctx); err != nil {
				return err
			}
			if !c.imported(r) {
				r = c.im.prepare(ctx, job{i: r.i, src: r.src, snap: c.im.durable.Load()}, r.data)
			}
		}
	}
	if ready, err := c.triage(r); !ready || err != nil {
		return err
	}
	for _, k := range r.writes {
		c.lastWrite[k] = r.i
	}
	c.lastAny = r.i
	c.pending = append(c.pending, r)
	return nil
}

// triage settles a prepared source that is not to be committed — it failed to read (the
// error), is imported already (skipped) or was refused (reported) — and tells whether r is
// ready to commit.
func (c *committer) triage(r *prepared) (ready bool, err error) {
	switch {
	case r.err != nil:
		return false, fmt.Errorf("%s: %w", r.src.name, r.err)
	case r.skip || c.imported(r):
		c.im.skipped.Add(1)
		c.im.done.Add(1)
		return false, nil
	case r.prep == nil:
		c.refuse(r, r.issues)
		return false, nil
	}
	return true, nil
}

// imported tells whether the journal lists r's bytes.
func (c *committer) imported(r *prepared) bool {
	return r.hash != "" && (c.im.before[r.hash] || c.seen[r.hash])
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
		// another writer: perhaps another import of the same bundles, which journalled them
		var again map[string]bool
		if again, err = readJournal(ctx, c.im.recs.Store); err != nil {
			return err
		}
		for h := range again {
			c.seen[h] = true
		}
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
	jb := journalBatch{Imported: c.im.now().UTC(), Bundles: make([]journalEntry, len(batch))}
	resources := 0
	for i, r := range batch {
		ps[i] = r.prep
		jb.Bundles[i] = journalEntry{SHA256: r.hash, Source: r.src.name, Resources: r.prep.Resources()}
		resources += r.prep.Resources()
	}
	body, err := json.Marshal(jb)
	if err != nil {
		return err
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	record := vault.Write{Type: journalType, ID: hex.EncodeToString(id[:]), Updated: jb.Imported, Body: body}
	if err := c.im.recs.CommitPrepared(ctx, ps, record); err != nil {
		return err
	}
	for _, r := range batch {
		c.seen[r.hash] = true
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
		if ready, err := c.triage(r); !ready || err != nil {
			return err
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

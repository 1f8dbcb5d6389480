package postgres

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/storage"
)

// maxCommitters is the number of transactions Commit keeps in flight at once (at most the
// pool's connections); commits that arrive meanwhile wait and go together in the next one.
const maxCommitters = 4

// maxGroup is the number of changes above which a waiting commit goes in a transaction of its
// own rather than joining a group.
const maxGroup = 256

// pending is one caller's Commit waiting for its transaction.
type pending struct {
	tenant  string
	changes []storage.Change
	done    chan error // receives the caller's result, once
}

// Commit implements storage.Store with group commit: Commits that arrive while earlier ones are
// being written wait and then go together in one transaction — one round trip, one WAL flush
// and one set of statements for all of them instead of one each. Each caller learns its own outcome:
// when anything in a group fails (a version conflict, a missing tenant), the group is rolled
// back and each of its commits is retried in a transaction of its own, so one caller's failure
// never fails another's commit. A caller answered nil has its changes durably committed
// (synchronous_commit as the server has it). A caller whose ctx ends while its commit waits
// withdraws it and gets ctx's error; once its transaction is under way, Commit returns its
// outcome (the transaction is not cancelled, as it may carry other callers' commits), so the
// caller always learns whether its changes were written.
func (s *Store) Commit(ctx context.Context, tenant string, changes []storage.Change) error {
	if len(changes) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: commit: %w", context.Cause(ctx))
	}
	p := &pending{tenant: tenant, changes: changes, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, p)
	if s.committers < s.maxCommitters {
		s.committers++
		s.committing.Add(1)
		go s.commitLoop(context.WithoutCancel(ctx))
	}
	s.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		i := slices.Index(s.queue, p)
		if i >= 0 {
			s.queue = slices.Delete(s.queue, i, i+1)
		}
		s.mu.Unlock()
		if i < 0 { // under way: its outcome is known in a round trip
			return <-p.done
		}
		return fmt.Errorf("postgres: commit: %w", context.Cause(ctx))
	}
}

// commitLoop writes waiting commits, a group per transaction, until none waits.
func (s *Store) commitLoop(ctx context.Context) {
	defer s.committing.Done()
	for {
		s.mu.Lock()
		n, size := 0, 0
		for n < len(s.queue) && (n == 0 || size+len(s.queue[n].changes) <= maxGroup) {
			size += len(s.queue[n].changes)
			n++
		}
		if n == 0 {
			s.committers--
			s.mu.Unlock()
			return
		}
		group := slices.Clone(s.queue[:n])
		s.queue = slices.Delete(s.queue, 0, n)
		s.mu.Unlock()
		s.commitGroup(ctx, group)
	}
}

// commitGroup writes a group of commits in one transaction, or, when that fails, each in one of
// its own, and answers each caller.
func (s *Store) commitGroup(ctx context.Context, group []*pending) {
	err := s.commitTx(ctx, group)
	if err == nil || len(group) == 1 {
		for _, p := range group {
			p.done <- err
		}
		return
	}
	for _, p := range group {
		p.done <- s.commitTx(ctx, []*pending{p})
	}
}

// commitTx writes the changes of the commits in group in one transaction, all or none, in one
// round trip: BEGIN, the statements and COMMIT go to the server at once (the statements fail
// the transaction themselves when a version is not the one expected). The changes are
// written in rounds of set-based statements (one for each table, whatever the number of
// changes); a round holds each resource at most once, so a resource changed twice goes in two
// rounds, in order. Within a round the changes are in (tenant, type, id) order, so that
// concurrent transactions lock heads rows in the same order and cannot deadlock.
func (s *Store) commitTx(ctx context.Context, group []*pending) error {
	var ordered []change
	for _, p := range group {
		for _, c := range p.changes {
			ordered = append(ordered, change{p.tenant, c})
		}
	}
	slices.SortStableFunc(ordered, func(a, b change) int {
		return cmp.Or(strings.Compare(a.tenant, b.tenant), strings.Compare(a.Type, b.Type), bytes.Compare(a.ID, b.ID))
	})
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	for len(ordered) > 0 {
		var round, later []change
		for i, c := range ordered {
			if i > 0 && c.same(ordered[i-1]) {
				later = append(later, c)
			} else {
				round = append(round, c)
			}
		}
		queueRound(batch, round)
		ordered = later
	}
	batch.Queue("COMMIT")
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate("commit", err)
	}
	defer conn.Release()
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		// a failed statement skips the rest, COMMIT included: the transaction is open and failed
		if conn.Conn().PgConn().TxStatus() != 'I' {
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				_ = conn.Conn().Close(context.WithoutCancel(ctx)) // the pool drops it
			}
		}
		return translate("commit", err)
	}
	s.refreshStatistics(batchSize(group))
	return nil
}

// batchSize is the number of changes in group.
func batchSize(group []*pending) int {
	n := 0
	for _, p := range group {
		n += len(p.changes)
	}
	return n
}

// change is a storage.Change of one tenant.
type change struct {
	tenant string
	storage.Change
}

// same reports whether c and d change the same resource.
func (c change) same(d change) bool {
	return c.tenant == d.tenant && c.Type == d.Type && bytes.Equal(c.ID, d.ID)
}

// columns are changes as the arrays that set-based statements unnest.
type columns struct {
	// first and last: the change's tokens in the round's flattened list (1-based, inclusive)
	first, last []int32
	tenant      []string
	typ         []string
	id          [][]byte
	expect      []int64
	updated     []time.Time
	deleted     []bool
	sealed      [][]byte
}

func (c *columns) add(ch change, first, last int) {
	c.first, c.last = append(c.first, int32(first)), append(c.last, int32(last))
	c.tenant = append(c.tenant, ch.tenant)
	c.typ = append(c.typ, ch.Type)
	c.id = append(c.id, ch.ID)
	c.expect = append(c.expect, ch.Expect)
	c.updated = append(c.updated, utcMicro(ch.Updated))
	c.deleted = append(c.deleted, ch.Deleted)
	c.sealed = append(c.sealed, ch.Sealed)
}

// queueRound queues the statements that write round, changes to distinct resources: the old
// tokens of updated resources go, heads are inserted, moved on or (a deletion that forgets)
// removed, failing the transaction with SQLSTATE RD409, storage.ErrConflict, unless every one
// was at the version expected; the versions are inserted, those forgotten removed, and the new
// tokens inserted.
func queueRound(batch *pgx.Batch, round []change) {
	var all, creates, updates, replaced, drops, forgets columns
	// tokens, flattened, and their resources
	var tokTenant, tokType []string
	var tokID, tok [][]byte
	for _, c := range round {
		first := len(tok) + 1
		if !c.Deleted { // tombstones are found by nothing
			// each token once: the resource's old ones are gone, so no insert conflicts
			tokens := slices.Clone(c.Tokens)
			slices.SortFunc(tokens, bytes.Compare)
			for _, t := range slices.CompactFunc(tokens, bytes.Equal) {
				tokTenant, tokType, tokID, tok = append(tokTenant, c.tenant), append(tokType, c.Type), append(tokID, c.ID), append(tok, t)
			}
		}
		if c.Expect != 0 {
			replaced.add(c, first, len(tok))
		}
		if c.Forget {
			forgets.add(c, first, len(tok))
		}
		switch {
		case c.Deleted && c.Forget:
			drops.add(c, first, len(tok))
			continue
		case c.Expect == 0:
			creates.add(c, first, len(tok))
		default:
			updates.add(c, first, len(tok))
		}
		all.add(c, first, len(tok))
	}
	if len(replaced.id) > 0 {
		// before heads forgets them; a head not at the expected version fails the batch below
		batch.Queue(`DELETE FROM tokens t
			USING unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) u (tenant, type, id, expect)
			JOIN heads h ON h.tenant = u.tenant AND h.type = u.type AND h.id = u.id AND h.version = u.expect
			WHERE t.tenant = u.tenant AND t.type = u.type AND t.token = ANY (h.tokens) AND t.id = u.id`,
			replaced.tenant, replaced.typ, replaced.id, replaced.expect)
	}
	if len(drops.id) > 0 {
		batch.Queue(`WITH h AS (DELETE FROM heads h
				USING unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) u (tenant, type, id, expect)
				WHERE h.tenant = u.tenant AND h.type = u.type AND h.id = u.id AND h.version = u.expect RETURNING 1)
			SELECT red_expect((SELECT count(*) FROM h), $5)`,
			drops.tenant, drops.typ, drops.id, drops.expect, int64(len(drops.id)))
	}
	// heads.tokens: the change's slice of the flattened tokens, NULL when it has none
	if len(creates.id) > 0 {
		batch.Queue(`WITH h AS (INSERT INTO heads (tenant, type, id, version, updated, deleted, tokens)
				SELECT c.tenant, c.type, c.id, 1, c.updated, c.deleted, CASE WHEN c.first <= c.last THEN ($6::bytea[])[c.first:c.last] END
				FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[], $5::bool[], $7::int[], $8::int[]) c (tenant, type, id, updated, deleted, first, last)
				ON CONFLICT DO NOTHING RETURNING 1)
			SELECT red_expect((SELECT count(*) FROM h), $9)`,
			creates.tenant, creates.typ, creates.id, creates.updated, creates.deleted, tok, creates.first, creates.last, int64(len(creates.id)))
	}
	if len(updates.id) > 0 {
		batch.Queue(`WITH h AS (UPDATE heads h SET version = u.expect + 1, updated = u.updated, deleted = u.deleted,
					tokens = CASE WHEN u.first <= u.last THEN ($6::bytea[])[u.first:u.last] END
				FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[], $5::bool[], $7::int[], $8::int[], $9::bigint[]) u (tenant, type, id, updated, deleted, first, last, expect)
				WHERE h.tenant = u.tenant AND h.type = u.type AND h.id = u.id AND h.version = u.expect RETURNING 1)
			SELECT red_expect((SELECT count(*) FROM h), $10)`,
			updates.tenant, updates.typ, updates.id, updates.updated, updates.deleted, tok, updates.first, updates.last, updates.expect, int64(len(updates.id)))
	}
	if len(all.id) > 0 {
		batch.Queue(`INSERT INTO resources (tenant, type, id, version, updated, deleted, sealed)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[], $5::timestamptz[], $6::bool[], $7::bytea[])`,
			all.tenant, all.typ, all.id, plusOne(all.expect), all.updated, all.deleted, all.sealed)
	}
	if len(forgets.id) > 0 {
		batch.Queue(`DELETE FROM resources r
			USING unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) u (tenant, type, id, expect)
			WHERE r.tenant = u.tenant AND r.type = u.type AND r.id = u.id AND r.version <= u.expect`,
			forgets.tenant, forgets.typ, forgets.id, forgets.expect)
	}
	if len(tok) > 0 {
		batch.Queue(`INSERT INTO tokens (tenant, type, id, token)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[])`,
			tokTenant, tokType, tokID, tok)
	}
}

// plusOne is each version after expect.
func plusOne(expect []int64) []int64 {
	out := make([]int64, len(expect))
	for i, e := range expect {
		out[i] = e + 1
	}
	return out
}

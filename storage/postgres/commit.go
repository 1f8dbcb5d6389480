package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/redclone/red/storage"
)

// maxCommitters is the number of transactions Commit keeps in flight at once; commits that
// arrive meanwhile wait and go together in the next one.
const maxCommitters = 2

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
// being written wait and are then written together in one transaction (one round trip for the
// statements, one WAL flush for the commit), as PostgreSQL would for concurrent transactions,
// but without a transaction, a pipeline and a flush each. Each caller learns its own outcome:
// when anything in a group fails (a version conflict, a missing tenant), the group is rolled
// back and each of its commits is retried in a transaction of its own, so one caller's failure
// never fails another's commit. A caller answered nil has its changes durably committed
// (synchronous_commit as the server has it). A caller whose ctx ends while its commit waits
// withdraws it; once its transaction is under way, Commit still returns ctx's error at once,
// and the changes may or may not be committed (as with any cancelled commit).
func (s *Store) Commit(ctx context.Context, tenant string, changes []storage.Change) error {
	if len(changes) == 0 {
		return nil
	}
	p := &pending{tenant: tenant, changes: changes, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, p)
	if s.committers < maxCommitters {
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
		if i < 0 {
			// taken already: the result may have arrived meanwhile
			select {
			case err := <-p.done:
				return err
			default:
			}
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

// commitTx writes the changes of the commits in group in one transaction, all or none: the
// statements go to the server in one round trip, the commit in a second. Changes are applied in
// (tenant, type, id) order so that concurrent transactions lock heads rows in the same order and
// cannot deadlock; changes to the same resource keep their order.
func (s *Store) commitTx(ctx context.Context, group []*pending) error {
	type item struct {
		tenant string
		storage.Change
	}
	var ordered []item
	for _, p := range group {
		for _, c := range p.changes {
			ordered = append(ordered, item{p.tenant, c})
		}
	}
	slices.SortStableFunc(ordered, func(a, b item) int {
		return cmp.Or(strings.Compare(a.tenant, b.tenant), strings.Compare(a.Type, b.Type), bytes.Compare(a.ID, b.ID))
	})
	batch := &pgx.Batch{}
	batch.BeginTx(pgx.TxOptions{})
	for _, c := range ordered {
		tenant := c.tenant
		updated := utcMicro(c.Updated)
		version := c.Expect + 1
		var head *pgx.QueuedQuery
		if c.Expect == 0 {
			head = batch.Queue(`INSERT INTO heads (tenant, type, id, version, updated, deleted)
				VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT DO NOTHING`,
				tenant, c.Type, c.ID, updated, c.Deleted)
		} else {
			head = batch.Queue(`UPDATE heads SET version = $5, updated = $6, deleted = $7
				WHERE tenant = $1 AND type = $2 AND id = $3 AND version = $4`,
				tenant, c.Type, c.ID, c.Expect, version, updated, c.Deleted)
		}
		typ, expect := c.Type, c.Expect
		head.Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("postgres: commit %s expecting version %d: %w", typ, expect, storage.ErrConflict)
			}
			return nil
		})
		batch.Queue(`INSERT INTO resources (tenant, type, id, version, updated, deleted, sealed)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			tenant, c.Type, c.ID, version, updated, c.Deleted, c.Sealed)
		if c.Expect != 0 {
			batch.Queue("DELETE FROM tokens WHERE tenant = $1 AND type = $2 AND id = $3", tenant, c.Type, c.ID)
		}
		if !c.Deleted && len(c.Tokens) > 0 {
			batch.Queue(`INSERT INTO tokens (tenant, type, id, token)
				SELECT $1, $2, $3, unnest($4::bytea[]) ON CONFLICT DO NOTHING`,
				tenant, c.Type, c.ID, c.Tokens)
		}
	}
	results := s.pool.SendBatch(ctx, batch)
	tx := results.Tx()
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := results.Close(); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return err
		}
		return translate("commit", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return translate("commit", err)
	}
	s.refreshStatistics(len(ordered))
	return nil
}

package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	modernc "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/redclone/red/storage"
)

// Group commit. SQLite has one writer per file, and each transaction ends with a flush of the
// WAL to disk (synchronous=FULL), so writers that take turns pay one flush each and do not
// scale. Instead every Commit hands its changes to the Store's one writer goroutine, which
// takes all commits queued meanwhile and writes them in one IMMEDIATE transaction: a commit
// that fails (a version conflict, a missing tenant) fails before it writes and alone, the
// others are written (see writeTogether), and the transaction ends with one flush for all of
// them. Every caller is answered after the flush, so an acknowledged write is
// on disk: the WAL is synced before COMMIT returns, which keeps it through a process kill and
// through a power loss. (synchronous=NORMAL would sync only at checkpoints and could lose the
// last acknowledged writes at a power loss: a practice's records are worth the one flush that
// batching shares among the commits in flight.)

// maxBatchCommits and maxBatchChanges cap the commits and changes of one transaction, so that one transaction does not
// hold the write lock for long and a huge batch is not slowed by its companions.
const (
	maxBatchCommits = 64
	maxBatchChanges = 2048
)

// errClosed answers commits that arrive at or after Close.
var errClosed = errors.New("sqlite: store closed")

// commit is one caller's Commit waiting for the writer.
type commit struct {
	ctx     context.Context
	tenant  string
	changes []storage.Change
	// state is pending until the writer takes the commit or its caller gives up waiting for
	// that (the caller's context ended); whoever changes it first decides.
	state atomic.Int32
	done  chan error // the outcome; buffered
}

const (
	pending int32 = iota
	taken
	abandoned
)

// Commit implements storage.Store. The changes are written atomically with those of other
// concurrent commits (group commit, see above), but succeed or fail on their own. Once the
// writer has taken them, Commit returns their outcome even when ctx ends meanwhile, so an
// error never hides a write.
func (s *Store) Commit(ctx context.Context, tenant string, changes []storage.Change) error {
	if len(changes) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &commit{ctx: ctx, tenant: tenant, changes: changes, done: make(chan error, 1)}
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		return errClosed
	}
	select {
	case s.queue <- c:
		s.closing.RUnlock()
	case <-ctx.Done():
		s.closing.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		if c.state.CompareAndSwap(pending, abandoned) {
			return ctx.Err()
		}
		return <-c.done
	}
}

// writer writes the queued commits, a batch per transaction, until Close.
func (s *Store) writer() {
	defer close(s.stopped)
	batch := make([]*commit, 0, maxBatchCommits)
	for {
		select {
		case c := <-s.queue:
			batch = append(batch[:0], c)
		case <-s.stop:
			for { // Close has stopped new commits; answer those still queued
				select {
				case c := <-s.queue:
					c.done <- errClosed
				default:
					return
				}
			}
		}
		n := len(batch[0].changes)
	more:
		for len(batch) < maxBatchCommits && n < maxBatchChanges {
			select {
			case c := <-s.queue:
				batch = append(batch, c)
				n += len(c.changes)
			default:
				break more
			}
		}
		s.writeBatch(batch)
		clear(batch)
		s.truncateWAL()
		if s.unchecked.Add(int64(n)) >= checkpointEvery {
			select {
			case s.wake <- struct{}{}:
			default: // it is awake already
			}
		}
	}
}

// writeBatch writes the commits of batch whose callers still wait and answers each.
func (s *Store) writeBatch(batch []*commit) {
	live := batch[:0]
	for _, c := range batch {
		if !c.state.CompareAndSwap(pending, taken) {
			continue // the caller has gone: nothing written, nobody to answer
		}
		if err := c.ctx.Err(); err != nil {
			c.done <- err
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	if len(live) > 1 {
		if errs, ok := s.writeTogether(live); ok {
			for i, c := range live {
				c.done <- errs[i]
			}
			return
		}
		// the transaction failed as a whole (I/O, a lock another process held too long):
		// each commit gets a transaction of its own and its own outcome
	}
	for _, c := range live {
		c.done <- s.writeAlone(c)
	}
}

// writeAlone writes one commit in a transaction of its own.
func (s *Store) writeAlone(c *commit) error {
	ctx := s.ctx
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return translate("commit", err)
	}
	defer func() { _ = tx.Rollback() }()
	w := s.writeStmts(ctx, tx)
	if _, err := w.apply(ctx, c.tenant, c.changes); err != nil {
		return err
	}
	return translate("commit", tx.Commit())
}

// writeTogether writes the commits in one transaction and returns their outcomes; ok is false
// when the transaction failed as a whole and nothing is written. A commit fails alone, without
// a savepoint to roll back to, because it fails before it writes: apply checks all versions
// first, and a constraint that fails its first statement (a missing tenant) takes back only
// that statement. Any other failure ends the batch, which is then written commit by commit.
func (s *Store) writeTogether(batch []*commit) (errs []error, ok bool) {
	ctx := s.ctx
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, false
	}
	defer func() { _ = tx.Rollback() }()
	w := s.writeStmts(ctx, tx)
	errs = make([]error, len(batch))
	for i, c := range batch {
		var wrote bool
		wrote, errs[i] = w.apply(ctx, c.tenant, c.changes)
		if errs[i] != nil && (wrote || !ownFailure(errs[i])) {
			return nil, false
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, false
	}
	return errs, true
}

// ownFailure tells whether err, the failure of a statement, ended only that statement and
// leaves the transaction as it was: a version conflict or a violated constraint. After
// others (I/O, a full disk) SQLite may have rolled back the whole transaction.
func ownFailure(err error) bool {
	var sqliteErr *modernc.Error
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
	}
	return errors.Is(err, storage.ErrConflict)
}

// writeSQL are the statements of Commit, prepared once on the write connection.
var writeSQL = struct {
	head, oldTokens, insertHead, updateHead, insertResource, deleteToken, insertToken, deleteHead, forgetVersions string
}{
	head:      "SELECT version FROM heads WHERE tenant = ? AND type = ? AND id = ?",
	oldTokens: "SELECT tokens FROM heads WHERE tenant = ? AND type = ? AND id = ? AND version = ?",
	insertHead: `INSERT INTO heads (tenant, type, id, version, updated, deleted, tokens)
		VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT DO NOTHING`,
	updateHead: `UPDATE heads SET version = ?, updated = ?, deleted = ?, tokens = ?
		WHERE tenant = ? AND type = ? AND id = ? AND version = ?`,
	insertResource: `INSERT INTO resources (tenant, type, id, version, updated, deleted, sealed)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
	deleteToken: "DELETE FROM tokens WHERE tenant = ? AND type = ? AND token = ? AND id = ?",
	insertToken: "INSERT INTO tokens (tenant, type, token, id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",

	// a change that forgets (storage.Change.Forget)
	deleteHead:     "DELETE FROM heads WHERE tenant = ? AND type = ? AND id = ? AND version = ?",
	forgetVersions: "DELETE FROM resources WHERE tenant = ? AND type = ? AND id = ? AND version <= ?",
}

// writeStmts are the prepared statements of Commit, on the write connection (prepared in
// Open) or bound to one transaction (writeStmts).
type writeStmts struct {
	head, oldTokens, insertHead, updateHead, insertResource, deleteToken, insertToken, deleteHead, forgetVersions *sql.Stmt
}

// prepareWrites prepares the statements of Commit on db.
func prepareWrites(ctx context.Context, db *sql.DB) (*writeStmts, error) {
	var (
		w   writeStmts
		err error
	)
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&w.insertHead, writeSQL.insertHead}, {&w.updateHead, writeSQL.updateHead},
		{&w.insertResource, writeSQL.insertResource}, {&w.deleteToken, writeSQL.deleteToken},
		{&w.insertToken, writeSQL.insertToken}, {&w.head, writeSQL.head}, {&w.oldTokens, writeSQL.oldTokens},
		{&w.deleteHead, writeSQL.deleteHead}, {&w.forgetVersions, writeSQL.forgetVersions},
	} {
		if *p.stmt, err = db.PrepareContext(ctx, p.query); err != nil {
			return nil, fmt.Errorf("sqlite: prepare: %w", err)
		}
	}
	return &w, nil
}

// writeStmts binds the statements of Commit to tx (they are closed with it).
func (s *Store) writeStmts(ctx context.Context, tx *sql.Tx) *writeStmts {
	w := s.writes
	return &writeStmts{
		insertHead: tx.StmtContext(ctx, w.insertHead), updateHead: tx.StmtContext(ctx, w.updateHead),
		insertResource: tx.StmtContext(ctx, w.insertResource), deleteToken: tx.StmtContext(ctx, w.deleteToken),
		insertToken: tx.StmtContext(ctx, w.insertToken), head: tx.StmtContext(ctx, w.head), oldTokens: tx.StmtContext(ctx, w.oldTokens),
		deleteHead: tx.StmtContext(ctx, w.deleteHead), forgetVersions: tx.StmtContext(ctx, w.forgetVersions),
	}
}

// apply writes one commit's changes in the current transaction and tells whether it wrote
// anything before it failed; the caller rolls back when it fails. A lost race for a version is
// ErrConflict: the transaction holds the file's write lock from its start, so the versions it
// checks cannot change before it commits. The versions of a commit of several changes are
// checked before the first is written, so a conflict writes nothing.
func (w *writeStmts) apply(ctx context.Context, tenant string, changes []storage.Change) (wrote bool, err error) {
	if len(changes) > 1 {
		written := make(map[string]int64, len(changes)) // versions the commit's earlier changes write
		for _, c := range changes {
			key := c.Type + "\x00" + string(c.ID)
			version, ok := written[key]
			if !ok {
				err := w.head.QueryRowContext(ctx, tenant, c.Type, c.ID).Scan(&version)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return false, translate("commit", err)
				}
			}
			if version != c.Expect {
				return false, conflict(c)
			}
			written[key] = c.Expect + 1
			if c.Deleted && c.Forget {
				written[key] = 0
			}
		}
	}
	for _, c := range changes {
		updated := micros(c.Updated)
		version := c.Expect + 1
		var old []byte // the tokens of the version c replaces, as heads keeps them
		if c.Expect != 0 {
			if err := w.oldTokens.QueryRowContext(ctx, tenant, c.Type, c.ID, c.Expect).Scan(&old); errors.Is(err, sql.ErrNoRows) {
				return wrote, conflict(c)
			} else if err != nil {
				return wrote, translate("commit", err)
			}
		}
		var tokens [][]byte // each once; none for a tombstone
		if !c.Deleted {
			tokens = distinct(c.Tokens)
		}
		var res sql.Result
		switch {
		case c.Deleted && c.Forget:
			res, err = w.deleteHead.ExecContext(ctx, tenant, c.Type, c.ID, c.Expect)
		case c.Expect == 0:
			res, err = w.insertHead.ExecContext(ctx, tenant, c.Type, c.ID, updated, c.Deleted, encodeTokens(tokens))
		default:
			res, err = w.updateHead.ExecContext(ctx, version, updated, c.Deleted, encodeTokens(tokens), tenant, c.Type, c.ID, c.Expect)
		}
		if err != nil {
			return wrote, translate("commit", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrote, translate("commit", err)
		} else if n != 1 {
			return wrote, conflict(c)
		}
		wrote = true
		if c.Forget && c.Expect != 0 {
			if _, err := w.forgetVersions.ExecContext(ctx, tenant, c.Type, c.ID, c.Expect); err != nil {
				return wrote, translate("commit", err)
			}
		}
		if !(c.Deleted && c.Forget) {
			if _, err := w.insertResource.ExecContext(ctx, tenant, c.Type, c.ID, version, updated, c.Deleted, c.Sealed); err != nil {
				return wrote, translate("commit", err)
			}
		}
		for rest := old; len(rest) > 0; {
			var token []byte
			if token, rest, err = nextToken(rest); err != nil {
				return wrote, fmt.Errorf("sqlite: commit: the tokens of a %s: %w", c.Type, err)
			}
			if _, err := w.deleteToken.ExecContext(ctx, tenant, c.Type, token, c.ID); err != nil {
				return wrote, translate("commit", err)
			}
		}
		for _, token := range tokens {
			if _, err := w.insertToken.ExecContext(ctx, tenant, c.Type, token, c.ID); err != nil {
				return wrote, translate("commit", err)
			}
		}
	}
	return wrote, nil
}

// distinct is tokens sorted, each once (a copy).
func distinct(tokens [][]byte) [][]byte {
	out := slices.Clone(tokens)
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

// encodeTokens is tokens as heads.tokens keeps them: each after its length as a uvarint
// (migrations/0002_tokens.sql); nil when there are none.
func encodeTokens(tokens [][]byte) []byte {
	if len(tokens) == 0 {
		return nil
	}
	n := 0
	for _, t := range tokens {
		n += binary.MaxVarintLen64 + len(t)
	}
	out := make([]byte, 0, n)
	for _, t := range tokens {
		out = append(binary.AppendUvarint(out, uint64(len(t))), t...)
	}
	return out
}

// nextToken splits the first token off heads.tokens b (see encodeTokens).
func nextToken(b []byte) (token, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errors.New("heads.tokens is malformed")
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

// conflict is the error of a change whose version check failed.
func conflict(c storage.Change) error {
	return fmt.Errorf("sqlite: commit %s expecting version %d: %w", c.Type, c.Expect, storage.ErrConflict)
}

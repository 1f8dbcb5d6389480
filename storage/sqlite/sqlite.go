// Package sqlite keeps red's data in one SQLite file, the zero-setup store of a single
// machine, with a pure-Go driver (no cgo).
//
// The file is opened in WAL mode with foreign keys on. Reads use a pool of read-only
// connections, which the writer never blocks (WAL), with their statements prepared once per
// connection. Writes go through one connection per Store whose transactions begin IMMEDIATE,
// and Commits through one writer goroutine that writes the commits of concurrent callers in
// one transaction (group commit, see commit.go), so writers of one process queue in Go and
// writers of other processes (or other Stores on the same file) wait for the file's write lock
// under busy_timeout: a lost race for a version is always ErrConflict, never SQLITE_BUSY. Open
// applies the embedded migrations (migrations/*.sql) inside such a transaction, recording each
// in schema_migrations.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	modernc "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/redclone/red/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a writer waits for another process's write lock, in milliseconds.
const busyTimeout = 30000

// pragmas of every connection. synchronous=FULL syncs the WAL at every commit, so that an
// acknowledged write survives a power loss (see commit.go); group commit shares that sync.
// journal_size_limit is walKeep.
// (mmap_size, temp_store=MEMORY and a cache_size of 16 MiB were measured with BenchmarkCurrent
// and BenchmarkFind and made no difference beyond the noise: the file sits in the operating
// system's page cache. mmap would also count the file's pages in red's resident set.)
const pragmas = "_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=journal_size_limit(%d)"

// checkpointEvery is the number of changes written after which the checkpointer copies the WAL
// into the database file. The write connection does not checkpoint itself (SQLite's automatic
// checkpoint would run in the commit that crosses 1000 pages, inside the writer's turn): a
// change writes a few pages, so the WAL stays near SQLite's default size.
const checkpointEvery = 256

// readers is the size of the pool of read connections for procs processors: two per processor,
// as a request holds its connection only for a part of its time, and no more: each connection
// keeps a page cache, prepared statements and the driver's state outside Go's heap (with eight
// connections of the default cache, they were a third of red's memory under load; the rate of
// reads did not fall with four, on 2 cores).
func readers(procs int) int {
	return max(2, 2*procs)
}

// readCache is the page cache of each of n read connections, in KiB: together at most
// readCaches, each at least 64 KiB (SQLite's default is 2,000 KiB). The interior pages of the
// indexes fit; the rest of the file is read from the operating system's page cache.
//
// A larger cache buys nothing while the audit trail writes: a read connection drops its whole
// cache when its next transaction finds the database changed, up to twenty times a second.
// It costs much, though: the pages dropped go back to the C allocator under SQLite
// (modernc.org/memory), which hands the pages of freed regions beyond 4 MiB per size class back
// to the kernel and takes them again at once. With 4 connections of 1 MiB, reads at 8 clients
// spent a tenth of red's time in madvise and page faults; at 256 KiB each, 8,300–10,100 →
// 12,000–13,400 reads/s and 4,800–5,100 → 7,100–8,500 identifier searches/s (make load's
// phases, 6 s, builds alternating); 128 and 512 KiB did as well as 256.
func readCache(n int) int {
	return max(64, readCaches/n)
}

// readCaches is what the read connections' page caches hold together at most, in KiB: a quarter
// of the 4 MiB a size class of the C allocator keeps for reuse, which the write connection's
// cache shares.
const readCaches = 1024

// Store is a storage.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	read  *sql.DB // queries; a pool of read-only connections
	write *sql.DB // Commit and the other writes; one connection, BEGIN IMMEDIATE
	// checkpoint is the checkpointer's connection
	checkpoint *sql.DB

	reads  readStmts   // prepared on read
	writes *writeStmts // prepared on write
	finds  finds       // Find's statements, one per shape of query

	ctx     context.Context // the writer's: without cancellation, which would cost SQLite's driver a goroutine per statement
	queue   chan *commit    // Commits waiting for the writer
	closing sync.RWMutex    // held to send to queue; Close takes it to set closed
	closed  bool
	stop    chan struct{} // closed by Close: the writer answers what is queued and ends
	stopped chan struct{} // closed by the writer when it has ended

	unchecked    atomic.Int64  // changes written since the checkpointer last ran
	truncate     atomic.Bool   // the WAL has grown past walLimit: the writer empties it
	wake         chan struct{} // wakes the checkpointer
	checkpointed chan struct{} // closed by the checkpointer when it has ended
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database in the file at path and brings its
// schema up to date. The file and its -wal and -shm companions are readable and writable by
// their owner only (0600), whatever the umask and the directory's mode.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: open %q: want the path of a file, without '?'", path)
	}
	// SQLite gives the -wal and -shm files it creates the database file's mode: creating that
	// file 0600 before SQLite does (which would use 0644 less the umask) keeps all three private
	if err := private(path, true); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	dsn := path + "?" + fmt.Sprintf(pragmas, busyTimeout, walKeep)
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	n := readers(runtime.GOMAXPROCS(0))
	read, err := sql.Open("sqlite", dsn+fmt.Sprintf("&_query_only=1&_pragma=cache_size(-%d)", readCache(n)))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// the pool keeps its connections (and their prepared statements and page caches)
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	checkpoint, err := sql.Open("sqlite", dsn)
	if err != nil {
		_ = write.Close()
		_ = read.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	checkpoint.SetMaxOpenConns(1)
	s := &Store{read: read, write: write, checkpoint: checkpoint, finds: finds{db: read}}
	s.ctx = context.WithoutCancel(ctx)
	if err := s.migrateWhenFree(ctx); err != nil {
		_ = s.closeDBs()
		return nil, err
	}
	// companions left by earlier versions keep their mode when SQLite opens them
	for _, companion := range []string{path + "-wal", path + "-shm"} {
		if err := private(companion, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = s.closeDBs()
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
	if s.writes, err = prepareWrites(ctx, write); err != nil {
		_ = s.closeDBs()
		return nil, err
	}
	if err := s.reads.prepare(ctx, read); err != nil {
		_ = s.closeDBs()
		return nil, err
	}
	s.queue = make(chan *commit, maxBatchCommits)
	s.stop, s.stopped = make(chan struct{}), make(chan struct{})
	s.wake, s.checkpointed = make(chan struct{}, 1), make(chan struct{})
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// private makes the file at path accessible to its owner only, creating it (empty, 0600) when
// create is set and it does not exist.
func private(path string, create bool) error {
	flag := os.O_RDONLY
	if create {
		flag = os.O_RDWR | os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return f.Chmod(perm &^ 0o077)
	}
	return nil
}

// migrateWhenFree migrates, retrying while another process opening the same new file holds it:
// switching a fresh file to WAL takes a lock SQLite does not wait for by the busy timeout.
func (s *Store) migrateWhenFree(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout * time.Millisecond)
	for {
		err := s.migrate(ctx)
		var sqliteErr *modernc.Error
		if err == nil || !errors.As(err, &sqliteErr) || sqliteErr.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close answers the Commits still queued with an error, waits for the one being written,
// and closes the file. The Store is not to be used after Close.
func (s *Store) Close() error {
	s.closing.Lock()
	if s.closed {
		s.closing.Unlock()
		return nil
	}
	s.closed = true
	s.closing.Unlock()
	close(s.stop)
	<-s.stopped
	<-s.checkpointed
	return s.closeDBs()
}

// closeDBs closes the connections and their statements.
func (s *Store) closeDBs() error {
	s.finds.close()
	return errors.Join(s.read.Close(), s.write.Close(), s.checkpoint.Close())
}

// walLimit is the WAL's size, in pages, past which the checkpointer empties it. A passive
// checkpoint copies what it can beside the writer and the readers, but the WAL starts again from
// its beginning only when a write finds every page of it copied and no reader in it: with
// commits and reads coming in all the time that moment may never come, and the file grew to
// gigabytes while 10,000 patients were imported. 16,384 pages are 64 MiB.
var walLimit = 16384

// walKeep is the size, in bytes, SQLite truncates the WAL file to when it starts again from its
// beginning (journal_size_limit): what a burst of writes made it grow to is given back.
const walKeep = 64 << 20

// checkpointer copies the WAL into the database file when the writer has written
// checkpointEvery changes since the last time, beside the writer (a passive checkpoint takes
// no lock that Commit or the readers wait for), until Close. When the WAL has grown past
// walLimit pages all the same, it asks the writer to empty it (truncate).
func (s *Store) checkpointer() {
	defer close(s.checkpointed)
	for {
		select {
		case <-s.wake:
			s.unchecked.Store(0)
			// a failure (another process checkpointing) leaves the pages for the next time
			var busy, pages, copied int
			err := s.checkpoint.QueryRowContext(s.ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &pages, &copied)
			if err == nil && pages > walLimit {
				s.truncate.Store(true)
			}
		case <-s.stop:
			return
		}
	}
}

// truncateWAL empties the WAL, between two of the writer's batches: a truncating checkpoint
// needs the write lock, which the writer alone takes at once (another connection would wait
// for a moment between commits that may not come while commits keep coming), and then waits
// for the readers' current queries (a few milliseconds) while it copies what is left; the
// commits that come meanwhile wait in the queue.
func (s *Store) truncateWAL() {
	if s.truncate.Swap(false) {
		// a failure (another process reading all along) leaves it to the next time
		_, _ = s.write.ExecContext(s.ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
}

// migrate applies the embedded migrations not yet recorded in schema_migrations.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	slices.Sort(names)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name    TEXT    NOT NULL PRIMARY KEY,
			applied INTEGER NOT NULL
		)`); err != nil {
			return err
		}
		for _, name := range names {
			var done bool
			if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = ?)", path.Base(name)).Scan(&done); err != nil {
				return err
			}
			if done {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", path.Base(name), err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (name, applied) VALUES (?, ?)",
				path.Base(name), micros(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// inTx runs f in a write transaction and commits it when f succeeds.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// CreateTenant implements storage.Store.
func (s *Store) CreateTenant(ctx context.Context, t storage.Tenant) error {
	_, err := s.write.ExecContext(ctx, "INSERT INTO tenants (alias, created) VALUES (?, ?)", t.Alias, micros(t.Created))
	return translate("create tenant", err)
}

// Tenant implements storage.Store.
func (s *Store) Tenant(ctx context.Context, alias string) (storage.Tenant, error) {
	var created int64
	if err := s.read.QueryRowContext(ctx, "SELECT created FROM tenants WHERE alias = ?", alias).Scan(&created); err != nil {
		return storage.Tenant{}, translate("tenant", err)
	}
	return storage.Tenant{Alias: alias, Created: fromMicros(created)}, nil
}

// Tenants implements storage.Store; they come sorted by alias.
func (s *Store) Tenants(ctx context.Context) ([]storage.Tenant, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT alias, created FROM tenants ORDER BY alias")
	if err != nil {
		return nil, translate("tenants", err)
	}
	defer rows.Close()
	var tenants []storage.Tenant
	for rows.Next() {
		var (
			t       storage.Tenant
			created int64
		)
		if err := rows.Scan(&t.Alias, &created); err != nil {
			return nil, translate("tenants", err)
		}
		t.Created = fromMicros(created)
		tenants = append(tenants, t)
	}
	return tenants, translate("tenants", rows.Err())
}

// PutCredential implements storage.Store.
func (s *Store) PutCredential(ctx context.Context, c storage.Credential) error {
	blob := c.Blob
	if blob == nil {
		blob = []byte{}
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO credentials (tenant, username, blob) VALUES (?, ?, ?)
		ON CONFLICT (tenant, username) DO UPDATE SET blob = excluded.blob`, c.Tenant, c.User, blob)
	return translate("put credential", err)
}

// Credential implements storage.Store.
func (s *Store) Credential(ctx context.Context, tenant, user string) (storage.Credential, error) {
	c := storage.Credential{Tenant: tenant, User: user}
	err := s.read.QueryRowContext(ctx, "SELECT blob FROM credentials WHERE tenant = ? AND username = ?", tenant, user).Scan(&c.Blob)
	if err != nil {
		return storage.Credential{}, translate("credential", err)
	}
	return c, nil
}

// Credentials implements storage.Store; they come sorted by the bytes of the user name.
func (s *Store) Credentials(ctx context.Context, tenant string) ([]storage.Credential, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT username, blob FROM credentials WHERE tenant = ? ORDER BY username", tenant)
	if err != nil {
		return nil, translate("credentials", err)
	}
	defer rows.Close()
	var creds []storage.Credential
	for rows.Next() {
		c := storage.Credential{Tenant: tenant}
		if err := rows.Scan(&c.User, &c.Blob); err != nil {
			return nil, translate("credentials", err)
		}
		creds = append(creds, c)
	}
	return creds, translate("credentials", rows.Err())
}

// readStmts are the statements of the point reads, prepared once (and on each read
// connection when it first runs them).
type readStmts struct {
	current, version, head *sql.Stmt
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&r.current, `SELECT version, updated, deleted, sealed FROM resources
			WHERE tenant = ? AND type = ? AND id = ? ORDER BY version DESC LIMIT 1`},
		{&r.version, `SELECT updated, deleted, sealed FROM resources
			WHERE tenant = ? AND type = ? AND id = ? AND version = ?`},
		{&r.head, `SELECT version, updated, deleted FROM heads WHERE tenant = ? AND type = ? AND id = ?`},
	} {
		var err error
		if *p.stmt, err = db.PrepareContext(ctx, p.query); err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
	}
	return nil
}

// Current implements storage.Store.
func (s *Store) Current(ctx context.Context, tenant, typ string, id []byte) (storage.Record, error) {
	r := storage.Record{Type: typ, ID: slices.Clone(id)}
	var updated int64
	err := s.reads.current.QueryRowContext(ctx, tenant, typ, id).Scan(&r.Version, &updated, &r.Deleted, &r.Sealed)
	if err != nil {
		return storage.Record{}, translate("current", err)
	}
	r.Updated = fromMicros(updated)
	return r, nil
}

// Heads implements storage.Store: point lookups in one read transaction (no network between).
func (s *Store) Heads(ctx context.Context, tenant string, keys []storage.Key, ex storage.Exclusion) ([]storage.Record, error) {
	out := make([]storage.Record, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, translate("heads", err)
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, s.reads.head)
	var excluded *sql.Stmt // whether ex leaves out the resource ?3
	if ex.Token != nil {
		if excluded, err = tx.PrepareContext(ctx, "SELECT 1 WHERE 1"+excluding(ex, "?3", 4)); err != nil {
			return nil, translate("heads", err)
		}
		defer excluded.Close()
	}
	for i, k := range keys {
		out[i] = storage.Record{Type: k.Type, ID: slices.Clone(k.ID)}
		var updated int64
		err := stmt.QueryRowContext(ctx, tenant, k.Type, k.ID).Scan(&out[i].Version, &updated, &out[i].Deleted)
		switch {
		case err == nil:
			out[i].Updated = fromMicros(updated)
		case !errors.Is(err, sql.ErrNoRows):
			return nil, translate("heads", err)
		}
		if excluded == nil || out[i].Version == 0 || out[i].Deleted {
			continue
		}
		args := append([]any{tenant, k.Type, k.ID, ex.Token}, anys(ex.Unless)...)
		var one int
		switch err := excluded.QueryRowContext(ctx, args...).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows): // left out: as if it never existed
			out[i] = storage.Record{Type: k.Type, ID: out[i].ID}
		case err != nil:
			return nil, translate("heads", err)
		}
	}
	return out, nil
}

// anys is tokens as statement arguments.
func anys(tokens [][]byte) []any {
	out := make([]any, len(tokens))
	for i, t := range tokens {
		out[i] = t
	}
	return out
}

// Version implements storage.Store.
func (s *Store) Version(ctx context.Context, tenant, typ string, id []byte, version int64) (storage.Record, error) {
	r := storage.Record{Type: typ, ID: slices.Clone(id), Version: version}
	var updated int64
	err := s.reads.version.QueryRowContext(ctx, tenant, typ, id, version).Scan(&updated, &r.Deleted, &r.Sealed)
	if err != nil {
		return storage.Record{}, translate("version", err)
	}
	r.Updated = fromMicros(updated)
	return r, nil
}

// micros is the form in which timestamps are stored: microseconds since the Unix epoch, cut
// towards the past.
func micros(t time.Time) int64 {
	return t.Truncate(time.Microsecond).UnixMicro()
}

func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// translate turns driver errors into the storage sentinels, keeping the cause in the chain.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", op, storage.ErrNotFound)
	}
	var sqliteErr *modernc.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("sqlite: %s: %w: %w", op, storage.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY: // the tenant does not exist
			return fmt.Errorf("sqlite: %s: %w: %w", op, storage.ErrNotFound, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

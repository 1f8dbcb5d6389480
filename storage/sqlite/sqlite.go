// Package sqlite keeps red's data in one SQLite file, the zero-setup store of a single
// machine, with a pure-Go driver (no cgo).
//
// The file is opened in WAL mode with foreign keys on. Reads use a pool of connections; writes
// go through one connection per Store whose transactions begin IMMEDIATE, so writers of one
// process queue in Go and writers of other processes (or other Stores on the same file) wait
// for the file's write lock under busy_timeout: a lost race for a version is always
// ErrConflict, never SQLITE_BUSY. Open applies the embedded migrations (migrations/*.sql)
// inside such a transaction, recording each in schema_migrations.
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
	"slices"
	"strings"
	"time"

	modernc "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/redclone/red/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a writer waits for another process's write lock, in milliseconds.
const busyTimeout = 30000

// Store is a storage.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	read  *sql.DB // queries; many connections
	write *sql.DB // Commit and the other writes; one connection, BEGIN IMMEDIATE
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
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)", path, busyTimeout)
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", dsn+"&_query_only=1")
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s := &Store{read: read, write: write}
	if err := s.migrateWhenFree(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	// companions left by earlier versions keep their mode when SQLite opens them
	for _, companion := range []string{path + "-wal", path + "-shm"} {
		if err := private(companion, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = s.Close()
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
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

// Close closes the file.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
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

// Commit implements storage.Store in one IMMEDIATE transaction: it holds the file's write
// lock from its first statement, so the versions it checks cannot change before it commits.
func (s *Store) Commit(ctx context.Context, tenant string, changes []storage.Change) error {
	if len(changes) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var addToken *sql.Stmt
		for _, c := range changes {
			updated := micros(c.Updated)
			version := c.Expect + 1
			var (
				res sql.Result
				err error
			)
			if c.Expect == 0 {
				res, err = tx.ExecContext(ctx, `INSERT INTO heads (tenant, type, id, version, updated, deleted)
					VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING`,
					tenant, c.Type, c.ID, updated, c.Deleted)
			} else {
				res, err = tx.ExecContext(ctx, `UPDATE heads SET version = ?, updated = ?, deleted = ?
					WHERE tenant = ? AND type = ? AND id = ? AND version = ?`,
					version, updated, c.Deleted, tenant, c.Type, c.ID, c.Expect)
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n != 1 {
				return fmt.Errorf("sqlite: commit %s expecting version %d: %w", c.Type, c.Expect, storage.ErrConflict)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO resources (tenant, type, id, version, updated, deleted, sealed)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, tenant, c.Type, c.ID, version, updated, c.Deleted, c.Sealed); err != nil {
				return err
			}
			if c.Expect != 0 {
				if _, err := tx.ExecContext(ctx, "DELETE FROM tokens WHERE tenant = ? AND type = ? AND id = ?", tenant, c.Type, c.ID); err != nil {
					return err
				}
			}
			if c.Deleted {
				continue // tombstones have no tokens
			}
			for _, token := range c.Tokens {
				if addToken == nil {
					addToken, err = tx.PrepareContext(ctx, `INSERT INTO tokens (tenant, type, id, token)
						VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
					if err != nil {
						return err
					}
					defer addToken.Close()
				}
				if _, err := addToken.ExecContext(ctx, tenant, c.Type, c.ID, token); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if errors.Is(err, storage.ErrConflict) {
		return err
	}
	return translate("commit", err)
}

// Current implements storage.Store.
func (s *Store) Current(ctx context.Context, tenant, typ string, id []byte) (storage.Record, error) {
	r := storage.Record{Type: typ, ID: slices.Clone(id)}
	var updated int64
	err := s.read.QueryRowContext(ctx, `SELECT version, updated, deleted, sealed FROM resources
		WHERE tenant = ? AND type = ? AND id = ? ORDER BY version DESC LIMIT 1`,
		tenant, typ, id).Scan(&r.Version, &updated, &r.Deleted, &r.Sealed)
	if err != nil {
		return storage.Record{}, translate("current", err)
	}
	r.Updated = fromMicros(updated)
	return r, nil
}

// Version implements storage.Store.
// Heads implements storage.Store: point lookups in one read transaction (no network between).
func (s *Store) Heads(ctx context.Context, tenant string, keys []storage.Key) ([]storage.Record, error) {
	out := make([]storage.Record, len(keys))
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, translate("heads", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `SELECT version, updated, deleted FROM heads WHERE tenant = ? AND type = ? AND id = ?`)
	if err != nil {
		return nil, translate("heads", err)
	}
	defer stmt.Close()
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
	}
	return out, nil
}

func (s *Store) Version(ctx context.Context, tenant, typ string, id []byte, version int64) (storage.Record, error) {
	r := storage.Record{Type: typ, ID: slices.Clone(id), Version: version}
	var updated int64
	err := s.read.QueryRowContext(ctx, `SELECT updated, deleted, sealed FROM resources
		WHERE tenant = ? AND type = ? AND id = ? AND version = ?`,
		tenant, typ, id, version).Scan(&updated, &r.Deleted, &r.Sealed)
	if err != nil {
		return storage.Record{}, translate("version", err)
	}
	r.Updated = fromMicros(updated)
	return r, nil
}

// Find implements storage.Store in one statement (so count and page share one snapshot): the
// matching ids come from the tokens index, one IN per group; only the page's rows are joined
// with their sealed bytes.
func (s *Store) Find(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	if len(q.All) == 1 && (len(q.All[0]) == 1 || q.Disjoint && len(q.All[0]) > 0) {
		// one token is disjoint by itself, and its (token, id) order is the id order
		return s.findDisjoint(ctx, tenant, q)
	}
	args := []any{tenant, q.Type}
	var query strings.Builder
	query.WriteString(`WITH m AS NOT MATERIALIZED (
		SELECT h.id, h.version FROM heads h
		WHERE h.tenant = ?1 AND h.type = ?2 AND h.deleted = 0`)
	for _, group := range q.All {
		if len(group) == 0 {
			return storage.Page{Records: []storage.Record{}}, nil
		}
		query.WriteString(`
		AND h.id IN (SELECT t.id FROM tokens t WHERE t.tenant = ?1 AND t.type = ?2 AND t.token IN (`)
		for i, token := range group {
			if i > 0 {
				query.WriteString(", ")
			}
			args = append(args, token)
			fmt.Fprintf(&query, "?%d", len(args))
		}
		query.WriteString("))")
	}
	args = append(args, limit(q), int64(max(q.Offset, 0)))
	fmt.Fprintf(&query, `
	)
	SELECT c.n, p.id, p.version, r.updated, r.deleted, r.sealed
	FROM (SELECT count(*) AS n FROM m) c
	LEFT JOIN (SELECT m.id, m.version FROM m ORDER BY m.id LIMIT ?%d OFFSET ?%d) p ON 1
	LEFT JOIN resources r ON r.tenant = ?1 AND r.type = ?2 AND r.id = p.id AND r.version = p.version
	ORDER BY p.id`, len(args)-1, len(args))

	return s.page(ctx, q.Type, query.String(), args...)
}

// findDisjoint answers a query with one group of disjoint tokens (storage.Query.Disjoint), or
// with a single token, from the tokens index alone: Commit keeps tokens only for the current version of live resources,
// and no resource carries two of the group's tokens, so the matches are the index entries as
// they are — counted without DISTINCT and paged in the index's (token, id) order without
// sorting. Only the page's rows are joined with heads and resources.
func (s *Store) findDisjoint(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	args := []any{tenant, q.Type}
	in := make([]string, len(q.All[0]))
	for i, token := range q.All[0] {
		args = append(args, token)
		in[i] = fmt.Sprintf("?%d", len(args))
	}
	args = append(args, limit(q), int64(max(q.Offset, 0)))
	query := fmt.Sprintf(`WITH m AS NOT MATERIALIZED (
		SELECT t.token, t.id FROM tokens t WHERE t.tenant = ?1 AND t.type = ?2 AND t.token IN (%s)
	)
	SELECT c.n, p.id, h.version, r.updated, r.deleted, r.sealed
	FROM (SELECT count(*) AS n FROM m) c
	LEFT JOIN (SELECT m.token, m.id FROM m ORDER BY m.token, m.id LIMIT ?%d OFFSET ?%d) p ON 1
	LEFT JOIN heads h ON h.tenant = ?1 AND h.type = ?2 AND h.id = p.id AND h.deleted = 0
	LEFT JOIN resources r ON r.tenant = ?1 AND r.type = ?2 AND r.id = p.id AND r.version = h.version
	ORDER BY p.token, p.id`, strings.Join(in, ", "), len(args)-1, len(args))
	return s.page(ctx, q.Type, query, args...)
}

// limit is q's limit in SQLite's terms: -1 for none.
func limit(q storage.Query) int64 {
	if q.Limit > 0 {
		return int64(q.Limit)
	}
	return -1
}

// page runs a Find statement whose rows are (total, id, version, updated, deleted, sealed), with
// one row carrying only the total when the page is empty.
func (s *Store) page(ctx context.Context, typ, query string, args ...any) (storage.Page, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return storage.Page{}, translate("find", err)
	}
	defer rows.Close()
	page := storage.Page{Records: []storage.Record{}}
	for rows.Next() {
		var (
			total   int64
			id      []byte
			version sql.NullInt64
			updated sql.NullInt64
			deleted sql.NullBool
			sealed  []byte
		)
		if err := rows.Scan(&total, &id, &version, &updated, &deleted, &sealed); err != nil {
			return storage.Page{}, translate("find", err)
		}
		page.Total = int(total)
		if !version.Valid || !updated.Valid || !deleted.Valid {
			continue // no match on this page: the one row carries only the total
		}
		page.Records = append(page.Records, storage.Record{
			Type: typ, ID: id, Version: version.Int64, Updated: fromMicros(updated.Int64), Deleted: deleted.Bool, Sealed: sealed,
		})
	}
	if err := rows.Err(); err != nil {
		return storage.Page{}, translate("find", err)
	}
	return page, nil
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

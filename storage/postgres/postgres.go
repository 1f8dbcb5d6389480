// Package postgres keeps red's data in PostgreSQL, the practice's shared database that several
// workstations may open at once.
//
// Open applies the embedded migrations (migrations/*.sql) in one transaction under a
// transaction-scoped advisory lock, recording each in schema_migrations, so any number of
// processes may start against the same database at the same time. PostgreSQL 12 or newer is
// required.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/redclone/red/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that serializes migrations ("red.stor").
const migrationLock int64 = 0x7265642e73746f72

// firstAnalyze is the number of changes a Store commits before it first refreshes the
// planner's statistics itself; each later refresh waits for twice as many.
const firstAnalyze = 1000

// Store is a storage.Store on one PostgreSQL database. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// written counts the changes committed through this Store; when it reaches nextAnalyze,
	// a background VACUUM (ANALYZE) starts. Autovacuum analyzes a table only a while after it has
	// grown, and until then the planner, which takes a fresh table for nearly empty, picks
	// plans for Find that scan every token of a type for every resource (minutes instead of
	// milliseconds at 10,000 resources). A bulk import is exactly such a time.
	written, nextAnalyze atomic.Int64
	// maintenance runs VACUUM (ANALYZE) in the background; Close cancels it.
	maintenance context.Context
	stop        context.CancelFunc
	running     sync.WaitGroup
	committing  sync.WaitGroup // the committers
	// group commit (see Commit): commits waiting for a transaction, and the committers running
	mu         sync.Mutex
	queue      []*pending
	committers int
	// maxCommitters is the constant, unless the pool has fewer connections
	maxCommitters int
	// group read (see Current and Find): reads by id and searches by one token
	reads grouped[read]
	finds grouped[find]
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database at url (a PostgreSQL connection URL or keyword/value string)
// and brings its schema up to date.
func Open(ctx context.Context, url string) (*Store, error) {
	config, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if _, set := config.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		// Every statement but Find's general form (sent with its values, see Find) is prepared
		// once per connection; its generic plan is the plan PostgreSQL would pick for any
		// values (one index path per statement), but PostgreSQL's own choice ("auto") keeps
		// planning the searches afresh on each call, which cost four times their execution.
		config.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	conns := int(pool.Config().MaxConns)
	s := &Store{pool: pool, maxCommitters: min(maxCommitters, conns)}
	s.reads.limit, s.reads.query = min(maxReaders, conns), s.readGroup
	s.finds.limit, s.finds.query = min(maxFinders, conns), s.findGroup
	s.maintenance, s.stop = context.WithCancel(context.Background())
	s.nextAnalyze.Store(firstAnalyze)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close releases every connection.
func (s *Store) Close() error {
	s.committing.Wait()
	s.stop()
	s.running.Wait()
	s.pool.Close()
	return nil
}

// migrate applies the embedded migrations not yet recorded in schema_migrations.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	slices.Sort(names)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name    text        PRIMARY KEY,
			applied timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		for _, name := range names {
			var done bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)", path.Base(name)).Scan(&done); err != nil {
				return err
			}
			if done {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			// Without arguments Exec uses the simple protocol, which runs every statement of the file.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", path.Base(name), err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (name) VALUES ($1)", path.Base(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// CreateTenant implements storage.Store.
func (s *Store) CreateTenant(ctx context.Context, t storage.Tenant) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO tenants (alias, created) VALUES ($1, $2)", t.Alias, utcMicro(t.Created))
	return translate("create tenant", err)
}

// Tenant implements storage.Store.
func (s *Store) Tenant(ctx context.Context, alias string) (storage.Tenant, error) {
	t := storage.Tenant{Alias: alias}
	err := s.pool.QueryRow(ctx, "SELECT created FROM tenants WHERE alias = $1", alias).Scan(&t.Created)
	if err != nil {
		return storage.Tenant{}, translate("tenant", err)
	}
	t.Created = t.Created.UTC()
	return t, nil
}

// Tenants implements storage.Store; they come sorted by alias.
func (s *Store) Tenants(ctx context.Context) ([]storage.Tenant, error) {
	rows, _ := s.pool.Query(ctx, `SELECT alias, created FROM tenants ORDER BY alias COLLATE "C"`)
	tenants, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Tenant, error) {
		var t storage.Tenant
		err := row.Scan(&t.Alias, &t.Created)
		t.Created = t.Created.UTC()
		return t, err
	})
	return tenants, translate("tenants", err)
}

// PutCredential implements storage.Store.
func (s *Store) PutCredential(ctx context.Context, c storage.Credential) error {
	blob := c.Blob
	if blob == nil {
		blob = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO credentials (tenant, username, blob) VALUES ($1, $2, $3)
		ON CONFLICT (tenant, username) DO UPDATE SET blob = excluded.blob`, c.Tenant, c.User, blob)
	return translate("put credential", err)
}

// Credential implements storage.Store.
func (s *Store) Credential(ctx context.Context, tenant, user string) (storage.Credential, error) {
	c := storage.Credential{Tenant: tenant, User: user}
	err := s.pool.QueryRow(ctx, "SELECT blob FROM credentials WHERE tenant = $1 AND username = $2", tenant, user).Scan(&c.Blob)
	if err != nil {
		return storage.Credential{}, translate("credential", err)
	}
	return c, nil
}

// Credentials implements storage.Store; they come sorted by the bytes of the user name.
func (s *Store) Credentials(ctx context.Context, tenant string) ([]storage.Credential, error) {
	rows, _ := s.pool.Query(ctx, `SELECT username, blob FROM credentials WHERE tenant = $1 ORDER BY username COLLATE "C"`, tenant)
	creds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Credential, error) {
		c := storage.Credential{Tenant: tenant}
		err := row.Scan(&c.User, &c.Blob)
		return c, err
	})
	return creds, translate("credentials", err)
}

// refreshStatistics counts n committed changes and, when the count reaches the next threshold,
// starts VACUUM (ANALYZE) of the resource tables in the background. Failure is harmless
// (autovacuum catches up later), so it is ignored.
func (s *Store) refreshStatistics(n int) {
	written := s.written.Add(int64(n))
	next := s.nextAnalyze.Load()
	if written < next || !s.nextAnalyze.CompareAndSwap(next, 2*written) {
		return
	}
	// VACUUM also marks pages all-visible, so Find's index-only scans need not visit the
	// tables; it runs in the background, never inside a client's write
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		_, _ = s.pool.Exec(s.maintenance, "VACUUM (ANALYZE) heads, tokens, resources")
	}()
}

// Heads implements storage.Store: the exclusion is decided on heads.tokens, the row read anyway.
func (s *Store) Heads(ctx context.Context, tenant string, keys []storage.Key, ex storage.Exclusion) ([]storage.Record, error) {
	out := make([]storage.Record, len(keys))
	types := make([]string, len(keys))
	ids := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = storage.Record{Type: k.Type, ID: slices.Clone(k.ID)}
		types[i], ids[i] = k.Type, k.ID
	}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT k.n, h.version, h.updated, h.deleted
		FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS k(type, id, n)
		JOIN heads h ON h.tenant = $1 AND h.type = k.type AND h.id = k.id
		WHERE NOT (coalesce($4 = ANY (h.tokens), false) AND NOT coalesce(h.tokens && $5::bytea[], false))`,
		tenant, types, ids, ex.Token, unless(ex))
	if err != nil {
		return nil, translate("heads", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			n       int64
			version int64
			updated time.Time
			deleted bool
		)
		if err := rows.Scan(&n, &version, &updated, &deleted); err != nil {
			return nil, translate("heads", err)
		}
		r := &out[n-1]
		r.Version, r.Updated, r.Deleted = version, updated.UTC(), deleted
	}
	return out, translate("heads", rows.Err())
}

// unless is ex.Unless as a bytea[] parameter: never NULL, so that && answers false, not NULL.
func unless(ex storage.Exclusion) [][]byte {
	if ex.Unless == nil {
		return [][]byte{}
	}
	return ex.Unless
}

// excluding is the condition that leaves out the resource with id token id when ex says so,
// its parameters numbered from n on (the exclusion's token, then its exceptions), and those
// parameters; "" and none when ex leaves out nothing. Find puts it in its general statement,
// planned for the values at hand (the simple protocol): a generic plan, not knowing how many
// resources carry the token, would sort all of them for every query; planned for them, it is
// an index-only probe per match, or one hash of the resources carrying the token.
func excluding(ex storage.Exclusion, id string, n int) (string, []any) {
	if ex.Token == nil {
		return "", nil
	}
	return fmt.Sprintf(`
		AND NOT EXISTS (SELECT 1 FROM tokens x WHERE x.tenant = $1 AND x.type = $2 AND x.token = $%d AND x.id = %s
			AND NOT EXISTS (SELECT 1 FROM tokens y WHERE y.tenant = $1 AND y.type = $2 AND y.token = ANY ($%d::bytea[]) AND y.id = %s))`,
		n, id, n+1, id), []any{ex.Token, unless(ex)}
}

// Version implements storage.Store.
func (s *Store) Version(ctx context.Context, tenant, typ string, id []byte, version int64) (storage.Record, error) {
	r := storage.Record{Type: typ, ID: slices.Clone(id), Version: version}
	err := s.pool.QueryRow(ctx, `SELECT updated, deleted, sealed FROM resources
		WHERE tenant = $1 AND type = $2 AND id = $3 AND version = $4`,
		tenant, typ, id, version).Scan(&r.Updated, &r.Deleted, &r.Sealed)
	if err != nil {
		return storage.Record{}, translate("version", err)
	}
	r.Updated = r.Updated.UTC()
	return r, nil
}

// Find implements storage.Store in one statement (so count and page share one snapshot): the
// matching ids come from the tokens index, one semi-join per group; only the page's rows are
// joined with their sealed bytes. A query with an exclusion takes the general statement.
func (s *Store) Find(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	if len(q.All) == 1 && len(q.All[0]) > 0 && q.Exclude.Token == nil {
		switch {
		case q.Disjoint && len(q.All[0]) > 1:
			return s.findDisjoint(ctx, tenant, q)
		case len(q.All[0]) == 1:
			return s.findOneToken(ctx, tenant, q)
		}
		return s.findOneGroup(ctx, tenant, q)
	}
	args := []any{tenant, q.Type}
	var sql strings.Builder
	sql.WriteString(`WITH m AS NOT MATERIALIZED (
		SELECT h.id, h.version FROM heads h
		WHERE h.tenant = $1 AND h.type = $2 AND NOT h.deleted`)
	for _, group := range q.All {
		if len(group) == 0 {
			return storage.Page{Records: []storage.Record{}}, nil
		}
		args = append(args, group)
		fmt.Fprintf(&sql, `
		AND h.id IN (SELECT t.id FROM tokens t WHERE t.tenant = $1 AND t.type = $2 AND t.token = ANY($%d::bytea[]))`, len(args))
	}
	excl, exArgs := excluding(q.Exclude, "h.id", len(args)+1)
	sql.WriteString(excl)
	args = append(args, exArgs...)
	var limit any // NULL: no limit
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	args = append(args, int64(max(q.Offset, 0)), limit)
	fmt.Fprintf(&sql, `
	)
	SELECT c.n, p.id, p.version, r.updated, r.deleted, r.sealed
	FROM (SELECT count(*) AS n FROM m) c
	LEFT JOIN (SELECT m.id, m.version FROM m ORDER BY m.id OFFSET $%d LIMIT $%d::bigint) p ON true
	LEFT JOIN resources r ON r.tenant = $1 AND r.type = $2 AND r.id = p.id AND r.version = p.version
	ORDER BY p.id`, len(args)-1, len(args))

	// Sent with its values (the simple protocol), the statement is planned for the tokens at
	// hand: with several groups the best order of the semi-joins depends on how rare each
	// group's tokens are, which a generic plan cannot know.
	return s.page(ctx, q.Type, sql.String(), append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
}

// findOneGroup answers the common query with one token group from the tokens index alone:
// Commit keeps tokens only for the current version of live resources, so counting and paging
// the matching ids needs no join; heads and resources are read for the page's rows only.
func (s *Store) findOneGroup(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	var limit any // NULL: no limit
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	match := `SELECT t.id FROM tokens t WHERE t.tenant = $1 AND t.type = $2 AND t.token = ANY($3::bytea[])`
	distinct := "DISTINCT " // a resource may carry several of the group's tokens
	if len(q.All[0]) == 1 {
		distinct = "" // (tenant, type, id, token) is unique
	}
	sql := `SELECT c.n, p.id, h.version, r.updated, r.deleted, r.sealed
	FROM (SELECT count(` + distinct + `m.id) AS n FROM (` + match + `) m) c
	LEFT JOIN (SELECT ` + distinct + `m.id FROM (` + match + `) m ORDER BY m.id OFFSET $4 LIMIT $5::bigint) p ON true
	LEFT JOIN heads h ON h.tenant = $1 AND h.type = $2 AND h.id = p.id AND NOT h.deleted
	LEFT JOIN resources r ON r.tenant = $1 AND r.type = $2 AND r.id = p.id AND r.version = h.version
	ORDER BY p.id`
	return s.page(ctx, q.Type, sql, tenant, q.Type, q.All[0], int64(max(q.Offset, 0)), limit)
}

// findDisjoint answers a query with one group of disjoint tokens (storage.Query.Disjoint) from
// the tokens index, like findOneGroup but without DISTINCT and without sorting the matches: no
// resource carries two of the tokens, so each match is one index entry, and they are paged in
// the order (token, id). PostgreSQL (before 17) does not read an index in that order for
// token = ANY(…), so each token is counted and read by itself: the page comes from the one
// or two tokens it falls into, read in id order from the index, skipping only the offset within.
func (s *Store) findDisjoint(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	var limit any // NULL: no limit
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	sql := `WITH c AS MATERIALIZED (
		SELECT u.token, (SELECT count(*) FROM tokens t WHERE t.tenant = $1 AND t.type = $2 AND t.token = u.token) AS n
		FROM (SELECT DISTINCT unnest($3::bytea[])) u (token)
	), s AS (
		SELECT c.token, c.n, (sum(c.n) OVER (ORDER BY c.token) - c.n)::bigint AS before FROM c
	), p AS (
		SELECT s.token, x.id FROM s CROSS JOIN LATERAL (
			SELECT t.id FROM tokens t WHERE t.tenant = $1 AND t.type = $2 AND t.token = s.token
			ORDER BY t.id OFFSET greatest($4 - s.before, 0) LIMIT $4 + $5::bigint - greatest(s.before, $4)
		) x
		WHERE s.before + s.n > $4 AND s.before < $4 + $5::bigint IS NOT FALSE
	)
	SELECT (SELECT coalesce(sum(c.n), 0) FROM c)::bigint, p.id, h.version, r.updated, r.deleted, r.sealed
	FROM (SELECT) one
	LEFT JOIN p ON true
	LEFT JOIN heads h ON h.tenant = $1 AND h.type = $2 AND h.id = p.id AND NOT h.deleted
	LEFT JOIN resources r ON r.tenant = $1 AND r.type = $2 AND r.id = p.id AND r.version = h.version
	ORDER BY p.token, p.id`
	return s.page(ctx, q.Type, sql, tenant, q.Type, q.All[0], int64(max(q.Offset, 0)), limit)
}

// page runs a Find statement whose rows are (total, id, version, updated, deleted, sealed), with
// one row carrying only the total when the page is empty.
func (s *Store) page(ctx context.Context, typ, sql string, args ...any) (storage.Page, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return storage.Page{}, translate("find", err)
	}
	defer rows.Close()
	page := storage.Page{Records: []storage.Record{}}
	for rows.Next() {
		var (
			total   int64
			id      []byte
			version *int64
			updated *time.Time
			deleted *bool
			sealed  []byte
		)
		if err := rows.Scan(&total, &id, &version, &updated, &deleted, &sealed); err != nil {
			return storage.Page{}, translate("find", err)
		}
		page.Total = int(total)
		if version == nil || updated == nil || deleted == nil {
			continue // no match on this page: the one row carries only the total
		}
		page.Records = append(page.Records, storage.Record{
			Type: typ, ID: id, Version: *version, Updated: updated.UTC(), Deleted: *deleted, Sealed: sealed,
		})
	}
	if err := rows.Err(); err != nil {
		return storage.Page{}, translate("find", err)
	}
	return page, nil
}

// utcMicro is the form in which timestamps are stored: UTC, cut to microseconds.
func utcMicro(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// translate turns driver errors into the storage sentinels, keeping the cause in the chain.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", // unique_violation
			"40001", // serialization_failure
			"40P01", // deadlock_detected
			"RD409": // red_expect: not at the version expected (migrations/0002_commit.sql)
			return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrConflict, err)
		case "23503": // foreign_key_violation: the tenant does not exist
			return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrNotFound, err)
		}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

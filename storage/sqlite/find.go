package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redclone/red/storage"
)

// maxFindStmts caps the Find statements kept prepared: one per shape of query (the path and
// the number of tokens in each group), of which an application asks few. Queries of further
// shapes are compiled each time.
const maxFindStmts = 64

// finds keeps Find's statements prepared, one per shape of query: compiling the SQL took a
// fifth of a Find's time.
type finds struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt // by shape
}

// query runs the Find statement of the shape, building its text with build when it is not
// prepared yet.
func (f *finds) query(ctx context.Context, shape []byte, build func() string, args []any) (*sql.Rows, error) {
	f.mu.Lock()
	stmt, ok := f.stmts[string(shape)]
	f.mu.Unlock()
	if ok {
		return stmt.QueryContext(ctx, args...)
	}
	query := build()
	f.mu.Lock()
	defer f.mu.Unlock()
	if stmt, ok := f.stmts[string(shape)]; ok {
		return stmt.QueryContext(ctx, args...)
	}
	if len(f.stmts) >= maxFindStmts {
		return f.db.QueryContext(ctx, query, args...)
	}
	stmt, err := f.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if f.stmts == nil {
		f.stmts = make(map[string]*sql.Stmt)
	}
	f.stmts[string(shape)] = stmt
	return stmt.QueryContext(ctx, args...)
}

// close closes the prepared statements.
func (f *finds) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, stmt := range f.stmts {
		_ = stmt.Close()
	}
	f.stmts = nil
}

// Find implements storage.Store in one statement (so count and page share one snapshot): the
// matching ids come from the tokens index, one IN per group; only the page's rows are joined
// with their sealed bytes.
func (s *Store) Find(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	if len(q.All) == 1 && (len(q.All[0]) == 1 || q.Disjoint && len(q.All[0]) > 0) {
		// one token is disjoint by itself, and its (token, id) order is the id order
		return s.findDisjoint(ctx, tenant, q)
	}
	n := 2
	shape := []byte{'g'}
	for _, group := range q.All {
		if len(group) == 0 {
			return storage.Page{Records: []storage.Record{}}, nil
		}
		shape = strconv.AppendInt(append(shape, ','), int64(len(group)), 10)
		n += len(group)
	}
	args := make([]any, 0, n+2)
	args = append(args, tenant, q.Type)
	for _, group := range q.All {
		for _, token := range group {
			args = append(args, token)
		}
	}
	args = append(args, limit(q), int64(max(q.Offset, 0)))
	shape, args = exclusionShape(shape, args, q.Exclude)
	rows, err := s.finds.query(ctx, shape, func() string { return findSQL(q.All, q.Exclude) }, args)
	return page(rows, err, q.Type)
}

// findSQL is the statement of Find for the groups' shape. Its parameters are the tenant, the
// type, the tokens group by group, the limit, the offset and the exclusion's (excluding).
func findSQL(groups [][][]byte, ex storage.Exclusion) string {
	var query strings.Builder
	query.WriteString(`WITH m AS NOT MATERIALIZED (
		SELECT h.id, h.version FROM heads h
		WHERE h.tenant = ?1 AND h.type = ?2 AND h.deleted = 0`)
	n := 2
	for _, group := range groups {
		query.WriteString(`
		AND h.id IN (SELECT t.id FROM tokens t WHERE t.tenant = ?1 AND t.type = ?2 AND t.token IN (`)
		for i := range group {
			if i > 0 {
				query.WriteString(", ")
			}
			n++
			fmt.Fprintf(&query, "?%d", n)
		}
		query.WriteString("))")
	}
	query.WriteString(excluding(ex, "h.id", n+3))
	fmt.Fprintf(&query, `
	)
	SELECT c.n, p.id, p.version, r.updated, r.deleted, r.sealed
	FROM (SELECT count(*) AS n FROM m) c
	LEFT JOIN (SELECT m.id, m.version FROM m ORDER BY m.id LIMIT ?%d OFFSET ?%d) p ON 1
	LEFT JOIN resources r ON r.tenant = ?1 AND r.type = ?2 AND r.id = p.id AND r.version = p.version
	ORDER BY p.id`, n+1, n+2)
	return query.String()
}

// exclusionShape adds ex to a Find statement's shape and its parameters to args.
func exclusionShape(shape []byte, args []any, ex storage.Exclusion) ([]byte, []any) {
	if ex.Token == nil {
		return shape, args
	}
	shape = strconv.AppendInt(append(shape, 'x'), int64(len(ex.Unless)), 10)
	return shape, append(append(args, ex.Token), anys(ex.Unless)...)
}

// excluding is the condition that leaves out the resource with id token id when ex says so,
// its parameters numbered from n on: the exclusion's token, then its exceptions. It probes the
// tokens table (tenant, type, token, id) per resource, a key per token — unless no resource of
// the type carries the token, which SQLite finds out once per statement.
func excluding(ex storage.Exclusion, id string, n int) string {
	if ex.Token == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, `
		AND (NOT EXISTS (SELECT 1 FROM tokens w WHERE w.tenant = ?1 AND w.type = ?2 AND w.token = ?%d)
		OR NOT EXISTS (SELECT 1 FROM tokens x WHERE x.tenant = ?1 AND x.type = ?2 AND x.id = %s AND x.token = ?%d`, n, id, n)
	if len(ex.Unless) > 0 {
		fmt.Fprintf(&b, `
			AND NOT EXISTS (SELECT 1 FROM tokens y WHERE y.tenant = ?1 AND y.type = ?2 AND y.id = %s AND y.token IN (`, id)
		for i := range ex.Unless {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "?%d", n+1+i)
		}
		b.WriteString("))")
	}
	b.WriteString("))")
	return b.String()
}

// findDisjoint answers a query with one group of disjoint tokens (storage.Query.Disjoint), or
// with a single token, from the tokens index alone: Commit keeps tokens only for the current
// version of live resources, and no resource carries two of the group's tokens, so the matches
// are the index entries as they are — counted without DISTINCT and paged in the index's
// (token, id) order without sorting. Only the page's rows are joined with heads and resources.
func (s *Store) findDisjoint(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	tokens := q.All[0]
	args := make([]any, 0, len(tokens)+4)
	args = append(args, tenant, q.Type)
	for _, token := range tokens {
		args = append(args, token)
	}
	args = append(args, limit(q), int64(max(q.Offset, 0)))
	shape := strconv.AppendInt([]byte{'d'}, int64(len(tokens)), 10)
	shape, args = exclusionShape(shape, args, q.Exclude)
	rows, err := s.finds.query(ctx, shape, func() string { return findDisjointSQL(len(tokens), q.Exclude) }, args)
	return page(rows, err, q.Type)
}

// findDisjointSQL is the statement of findDisjoint for n tokens. Its parameters are the
// tenant, the type, the tokens, the limit, the offset and the exclusion's (excluding).
func findDisjointSQL(n int, ex storage.Exclusion) string {
	in := make([]string, n)
	for i := range in {
		in[i] = fmt.Sprintf("?%d", i+3)
	}
	return fmt.Sprintf(`WITH m AS NOT MATERIALIZED (
		SELECT t.token, t.id FROM tokens t WHERE t.tenant = ?1 AND t.type = ?2 AND t.token IN (%s)%s
	)
	SELECT c.n, p.id, h.version, r.updated, r.deleted, r.sealed
	FROM (SELECT count(*) AS n FROM m) c
	LEFT JOIN (SELECT m.token, m.id FROM m ORDER BY m.token, m.id LIMIT ?%d OFFSET ?%d) p ON 1
	LEFT JOIN heads h ON h.tenant = ?1 AND h.type = ?2 AND h.id = p.id AND h.deleted = 0
	LEFT JOIN resources r ON r.tenant = ?1 AND r.type = ?2 AND r.id = p.id AND r.version = h.version
	ORDER BY p.token, p.id`, strings.Join(in, ", "), excluding(ex, "t.id", n+5), n+3, n+4)
}

// limit is q's limit in SQLite's terms: -1 for none.
func limit(q storage.Query) int64 {
	if q.Limit > 0 {
		return int64(q.Limit)
	}
	return -1
}

// page reads the rows of a Find statement, (total, id, version, updated, deleted, sealed),
// with one row carrying only the total when the page is empty.
func page(rows *sql.Rows, err error, typ string) (storage.Page, error) {
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

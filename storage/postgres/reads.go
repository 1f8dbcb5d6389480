package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/storage"
)

// maxReaders is the number of reads by id (Current) under way at once; reads that arrive
// meanwhile wait and go together in the next query (see grouped).
const maxReaders = 2

// groupTimeout bounds a query of grouped requests, which no single caller's context may cancel.
const groupTimeout = time.Minute

// read is one caller's Current waiting for a query.
type read struct {
	tenant, typ string
	id          []byte
	rec         storage.Record
	err         error
	done        chan struct{} // closed when rec and err are set
}

// Current implements storage.Store with group read: a read that finds maxReaders queries under
// way waits and goes with the others then waiting in one statement. Each caller gets its own
// record, or storage.ErrNotFound; a waiting caller whose ctx ends gets ctx's error.
func (s *Store) Current(ctx context.Context, tenant, typ string, id []byte) (storage.Record, error) {
	r := s.reads.join(func() *read {
		return &read{tenant: tenant, typ: typ, id: slices.Clone(id), done: make(chan struct{})}
	})
	if r == nil {
		defer s.reads.handOn()
		return s.current(ctx, tenant, typ, id)
	}
	select {
	case <-r.done:
		return r.rec, r.err
	case <-ctx.Done():
		s.reads.withdraw(r)
		return storage.Record{}, translate("current", context.Cause(ctx))
	}
}

// current reads the newest version of one resource.
func (s *Store) current(ctx context.Context, tenant, typ string, id []byte) (storage.Record, error) {
	r := storage.Record{Type: typ, ID: slices.Clone(id)}
	err := s.pool.QueryRow(ctx, `SELECT version, updated, deleted, sealed FROM resources
		WHERE tenant = $1 AND type = $2 AND id = $3 ORDER BY version DESC LIMIT 1`,
		tenant, typ, id).Scan(&r.Version, &r.Updated, &r.Deleted, &r.Sealed)
	if err != nil {
		return storage.Record{}, translate("current", err)
	}
	r.Updated = r.Updated.UTC()
	return r, nil
}

// readGroup reads the newest version of each resource of group in one statement and answers
// each caller.
func (s *Store) readGroup(group []*read) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	tenants, types, ids := make([]string, len(group)), make([]string, len(group)), make([][]byte, len(group))
	for i, r := range group {
		tenants[i], types[i], ids[i] = r.tenant, r.typ, r.id
		r.err = translate("current", pgx.ErrNoRows) // unless a row says otherwise
	}
	rows, err := s.pool.Query(ctx, `SELECT u.n, r.version, r.updated, r.deleted, r.sealed
		FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY u (tenant, type, id, n)
		CROSS JOIN LATERAL (SELECT version, updated, deleted, sealed FROM resources r
			WHERE r.tenant = u.tenant AND r.type = u.type AND r.id = u.id
			ORDER BY r.version DESC LIMIT 1) r`, tenants, types, ids)
	if err == nil {
		for rows.Next() {
			var n int64
			rec := storage.Record{}
			if err = rows.Scan(&n, &rec.Version, &rec.Updated, &rec.Deleted, &rec.Sealed); err != nil {
				break
			}
			r := group[n-1]
			rec.Type, rec.ID, rec.Updated = r.typ, r.id, rec.Updated.UTC()
			r.rec, r.err = rec, nil
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	for _, r := range group {
		if err != nil {
			r.rec, r.err = storage.Record{}, translate("current", err)
		}
		close(r.done)
	}
}

// maxFinders is the number of searches by one token (Find) under way at once; searches that
// arrive meanwhile wait and go together in the next query (see grouped).
const maxFinders = 2

// find is one caller's search by one token waiting for a query.
type find struct {
	tenant, typ string
	token       []byte
	offset      int64
	limit       *int64 // nil: no limit
	page        storage.Page
	err         error
	done        chan struct{} // closed when page and err are set
}

// findOneToken answers a query by one token as findOneGroup does, grouped: a search that finds
// maxFinders searches under way waits and goes with the others then waiting in one statement.
func (s *Store) findOneToken(ctx context.Context, tenant string, q storage.Query) (storage.Page, error) {
	f := s.finds.join(func() *find {
		f := &find{tenant: tenant, typ: q.Type, token: slices.Clone(q.All[0][0]), offset: int64(max(q.Offset, 0)), done: make(chan struct{})}
		if q.Limit > 0 {
			f.limit = new(int64(q.Limit))
		}
		return f
	})
	if f == nil {
		defer s.finds.handOn()
		return s.findOneGroup(ctx, tenant, q)
	}
	select {
	case <-f.done:
		return f.page, f.err
	case <-ctx.Done():
		s.finds.withdraw(f)
		return storage.Page{}, translate("find", context.Cause(ctx))
	}
}

// findGroup answers each search of group, each by one token, in one statement: per search the
// count and the page from the tokens index, as findOneGroup reads them.
func (s *Store) findGroup(group []*find) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	n := len(group)
	tenants, types, tokens, offsets, limits := make([]string, n), make([]string, n), make([][]byte, n), make([]int64, n), make([]*int64, n)
	for i, f := range group {
		tenants[i], types[i], tokens[i], offsets[i], limits[i] = f.tenant, f.typ, f.token, f.offset, f.limit
		f.page = storage.Page{Records: []storage.Record{}}
	}
	rows, err := s.pool.Query(ctx, `SELECT u.n, c.n, p.id, h.version, r.updated, r.deleted, r.sealed
		FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[], $5::bigint[]) WITH ORDINALITY u (tenant, type, token, off, lim, n)
		CROSS JOIN LATERAL (SELECT count(*) AS n FROM tokens t WHERE t.tenant = u.tenant AND t.type = u.type AND t.token = u.token) c
		LEFT JOIN LATERAL (SELECT t.id FROM tokens t WHERE t.tenant = u.tenant AND t.type = u.type AND t.token = u.token
			ORDER BY t.id OFFSET u.off LIMIT u.lim) p ON true
		LEFT JOIN heads h ON h.tenant = u.tenant AND h.type = u.type AND h.id = p.id AND NOT h.deleted
		LEFT JOIN resources r ON r.tenant = u.tenant AND r.type = u.type AND r.id = p.id AND r.version = h.version
		ORDER BY u.n, p.id`, tenants, types, tokens, offsets, limits)
	if err == nil {
		for rows.Next() {
			var (
				i, total int64
				id       []byte
				version  *int64
				updated  *time.Time
				deleted  *bool
				sealed   []byte
			)
			if err = rows.Scan(&i, &total, &id, &version, &updated, &deleted, &sealed); err != nil {
				break
			}
			f := group[i-1]
			f.page.Total = int(total)
			if version == nil || updated == nil || deleted == nil {
				continue // no match on this page: the one row carries only the total
			}
			f.page.Records = append(f.page.Records, storage.Record{
				Type: f.typ, ID: id, Version: *version, Updated: updated.UTC(), Deleted: *deleted, Sealed: sealed,
			})
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	for _, f := range group {
		if err != nil {
			f.page, f.err = storage.Page{}, translate("find", err)
		}
		close(f.done)
	}
}

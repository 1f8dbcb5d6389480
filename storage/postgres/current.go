package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redclone/red/storage"
)

// maxReaders is the number of Current queries in flight at once; reads that arrive meanwhile
// wait and go together in the next query.
const maxReaders = 2

// maxReadGroup is the number of waiting reads one query takes at most.
const maxReadGroup = 64

// readTimeout bounds a query of grouped reads, which no single caller's context may cancel.
const readTimeout = time.Minute

// read is one caller's Current waiting for a query.
type read struct {
	tenant, typ string
	id          []byte
	rec         storage.Record
	err         error
	done        chan struct{} // closed when rec and err are set
}

// Current implements storage.Store with group read: a read finds a reader free and queries at
// once, or waits while maxReaders queries are under way, and the reads waiting when one ends go
// together in one statement — one round trip, one statement and one backend's work for all
// of them instead of one each, which is what many concurrent reads by id spend most of their
// time on. Each caller gets its own record, or storage.ErrNotFound. A waiting caller whose ctx
// ends gets ctx's error.
func (s *Store) Current(ctx context.Context, tenant, typ string, id []byte) (storage.Record, error) {
	s.readMu.Lock()
	if s.readers < s.maxReaders {
		s.readers++
		s.readMu.Unlock()
		r, err := s.current(ctx, tenant, typ, id)
		s.handOn()
		return r, err
	}
	r := &read{tenant: tenant, typ: typ, id: slices.Clone(id), done: make(chan struct{})}
	s.reads = append(s.reads, r)
	s.readMu.Unlock()
	select {
	case <-r.done:
		return r.rec, r.err
	case <-ctx.Done():
		s.readMu.Lock()
		if i := slices.Index(s.reads, r); i >= 0 {
			s.reads = slices.Delete(s.reads, i, i+1)
		}
		s.readMu.Unlock()
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

// handOn passes a finished reader's place on: to a goroutine that queries for the reads that
// wait, or back to the free places when none does.
func (s *Store) handOn() {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if len(s.reads) == 0 {
		s.readers--
		return
	}
	go s.readLoop()
}

// readLoop queries for waiting reads, a group at a time, until none waits.
func (s *Store) readLoop() {
	for {
		s.readMu.Lock()
		n := min(len(s.reads), maxReadGroup)
		if n == 0 {
			s.readers--
			s.readMu.Unlock()
			return
		}
		group := slices.Clone(s.reads[:n])
		s.reads = slices.Delete(s.reads, 0, n)
		s.readMu.Unlock()
		s.readGroup(group)
	}
}

// readGroup reads the newest version of each resource of group in one statement and answers
// each caller.
func (s *Store) readGroup(group []*read) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
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

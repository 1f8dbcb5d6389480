-- The schema of red's SQLite store. Only blind tokens, versions, timestamps and sealed bytes
-- are stored; nothing here is plaintext person data. Timestamps are microseconds since the
-- Unix epoch, UTC. Text and blobs compare bytewise (BINARY collation).

CREATE TABLE tenants (
    alias   TEXT    NOT NULL PRIMARY KEY,
    created INTEGER NOT NULL
);

CREATE TABLE credentials (
    tenant   TEXT NOT NULL REFERENCES tenants (alias) ON DELETE CASCADE,
    username TEXT NOT NULL,
    blob     BLOB NOT NULL,
    PRIMARY KEY (tenant, username)
) WITHOUT ROWID;

-- heads holds the current version of every resource; Commit's optimistic check runs here.
CREATE TABLE heads (
    tenant  TEXT    NOT NULL REFERENCES tenants (alias) ON DELETE CASCADE,
    type    TEXT    NOT NULL,
    id      BLOB    NOT NULL,
    version INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    PRIMARY KEY (tenant, type, id)
) WITHOUT ROWID;

-- heads_live lets Find count and page the live resources of a type from the index alone.
CREATE INDEX heads_live ON heads (tenant, type, id, version) WHERE deleted = 0;

-- resources holds every version ever written (a rowid table: rows carry large blobs).
CREATE TABLE resources (
    tenant  TEXT    NOT NULL,
    type    TEXT    NOT NULL,
    id      BLOB    NOT NULL,
    version INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    sealed  BLOB,
    PRIMARY KEY (tenant, type, id, version)
);

-- tokens holds the search tokens of the current version of each resource. The primary key
-- serves deletion by resource; tokens_lookup serves Find.
CREATE TABLE tokens (
    tenant TEXT NOT NULL,
    type   TEXT NOT NULL,
    id     BLOB NOT NULL,
    token  BLOB NOT NULL,
    PRIMARY KEY (tenant, type, id, token)
) WITHOUT ROWID;

CREATE INDEX tokens_lookup ON tokens (tenant, type, token, id);

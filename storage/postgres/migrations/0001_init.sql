-- The schema of red's PostgreSQL store. Only blind tokens, versions, timestamps and sealed
-- bytes are stored; nothing here is plaintext person data.

CREATE TABLE tenants (
    alias   text        PRIMARY KEY,
    created timestamptz NOT NULL
);

CREATE TABLE credentials (
    tenant   text  NOT NULL REFERENCES tenants (alias) ON DELETE CASCADE,
    username text  NOT NULL,
    blob     bytea NOT NULL,
    PRIMARY KEY (tenant, username)
);

-- heads holds the current version of every resource; Commit's optimistic check runs here.
CREATE TABLE heads (
    tenant  text        NOT NULL REFERENCES tenants (alias) ON DELETE CASCADE,
    type    text        NOT NULL,
    id      bytea       NOT NULL,
    version bigint      NOT NULL,
    updated timestamptz NOT NULL,
    deleted boolean     NOT NULL,
    PRIMARY KEY (tenant, type, id)
);

-- heads_live lets Find count and page the live resources of a type from the index alone.
CREATE INDEX heads_live ON heads (tenant, type, id) INCLUDE (version) WHERE NOT deleted;

-- resources holds every version ever written.
CREATE TABLE resources (
    tenant  text        NOT NULL,
    type    text        NOT NULL,
    id      bytea       NOT NULL,
    version bigint      NOT NULL,
    updated timestamptz NOT NULL,
    deleted boolean     NOT NULL,
    sealed  bytea,
    PRIMARY KEY (tenant, type, id, version)
);

-- tokens holds the search tokens of the current version of each resource. The primary key
-- serves deletion by resource; tokens_lookup serves Find.
CREATE TABLE tokens (
    tenant text  NOT NULL,
    type   text  NOT NULL,
    id     bytea NOT NULL,
    token  bytea NOT NULL,
    PRIMARY KEY (tenant, type, id, token)
);

CREATE INDEX tokens_lookup ON tokens (tenant, type, token, id);

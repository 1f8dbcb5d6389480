-- Commit writes each search token once, in the order Find reads, instead of twice: a random
-- token lands on a random leaf page, so each copy cost a page of WAL.
-- The database learns nothing it did not know: heads.tokens repeats, per resource, the tokens
-- the tokens table already links to the resource's id token.

-- heads.tokens holds the search tokens of the current version (NULL when it has none), each
-- after its length as an unsigned varint (7 bits a byte, the lowest first, the high bit set on
-- all bytes but the last: Go's binary.AppendUvarint), so that Commit deletes a resource's
-- tokens by token when it writes the next version, and the tokens table needs only the order
-- Find reads.
ALTER TABLE heads ADD COLUMN tokens BLOB;

UPDATE heads SET tokens = (
    SELECT unhex(group_concat(
        printf('%02X', (n & 127) | ((n >= 128) << 7))
        || CASE WHEN n >= 128 THEN printf('%02X', ((n >> 7) & 127) | ((n >= 16384) << 7)) ELSE '' END
        || CASE WHEN n >= 16384 THEN printf('%02X', ((n >> 14) & 127) | ((n >= 2097152) << 7)) ELSE '' END
        || CASE WHEN n >= 2097152 THEN printf('%02X', ((n >> 21) & 127) | ((n >= 268435456) << 7)) ELSE '' END
        || CASE WHEN n >= 268435456 THEN printf('%02X', n >> 28) ELSE '' END
        || hex(token), '' ORDER BY token))
    FROM (SELECT t.token, length(CAST(t.token AS BLOB)) AS n FROM tokens t
        WHERE t.tenant = heads.tenant AND t.type = heads.type AND t.id = heads.id)
);

-- tokens: one B-tree in Find's order (tenant, type, token, id), written in that order; the
-- primary key by resource and tokens_lookup go with the old table.
CREATE TABLE tokens_by_token (
    tenant TEXT NOT NULL,
    type   TEXT NOT NULL,
    token  BLOB NOT NULL,
    id     BLOB NOT NULL,
    PRIMARY KEY (tenant, type, token, id)
) WITHOUT ROWID;

INSERT INTO tokens_by_token (tenant, type, token, id)
SELECT tenant, type, token, id FROM tokens ORDER BY tenant, type, token, id;

DROP TABLE tokens;
ALTER TABLE tokens_by_token RENAME TO tokens;

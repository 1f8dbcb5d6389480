-- Commit writes each search token once in one index instead of two, keeps sealed bytes in the
-- row and checks versions in its statements.
-- The database learns nothing it did not know: heads.tokens repeats, per resource, the
-- tokens the tokens table already links to the resource's id token.

-- heads.tokens holds the search tokens of the current version (NULL when it has none), so that
-- Commit deletes a resource's tokens by token when it writes the next version, and the tokens
-- table needs only the index Find reads.
ALTER TABLE heads ADD COLUMN tokens bytea[];

UPDATE heads h SET tokens = t.tokens
FROM (SELECT tenant, type, id, array_agg(token ORDER BY token) AS tokens FROM tokens GROUP BY tenant, type, id) t
WHERE h.tenant = t.tenant AND h.type = t.type AND h.id = t.id;

-- tokens: the index in Find's order is the primary key; the one by resource goes.
ALTER TABLE tokens DROP CONSTRAINT tokens_pkey;
DROP INDEX tokens_lookup;
ALTER TABLE tokens ADD CONSTRAINT tokens_pkey PRIMARY KEY (tenant, type, token, id);

-- resources: sealed bytes are ciphertext, which does not compress; rows up to a page stay in
-- the table rather than going to TOAST (a second table and index written and read per version).
ALTER TABLE resources SET (toast_tuple_target = 8160);
ALTER TABLE resources ALTER COLUMN sealed SET STORAGE EXTERNAL;

-- red_expect fails the statement that calls it, and with it the transaction, with SQLSTATE
-- RD409 unless changed = expected: Commit checks in the statements themselves that every head
-- was at the version expected, so that it can send BEGIN, its statements and COMMIT at once.
CREATE FUNCTION red_expect(changed bigint, expected bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF changed <> expected THEN
        RAISE EXCEPTION '% of % resources not at the version expected', expected - changed, expected
            USING ERRCODE = 'RD409';
    END IF;
END
$$;

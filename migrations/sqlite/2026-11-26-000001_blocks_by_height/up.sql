-- Blocks keyed by (height, hash), Chainhook's block identifier, instead of the hash alone.
-- Block hashes are unrelated from one block to the next, so an index keyed by hash takes
-- each new block on a page of its own, and every page a commit dirties is written whole to
-- the WAL and copied back to the database file. Keyed by height first, new blocks go to the
-- end of the index, a few to a page.
CREATE TABLE blocks_by_height (
    block_hash   TEXT NOT NULL,
    block_height BIGINT NOT NULL,
    parent_hash  TEXT,
    canonical    BOOLEAN NOT NULL,
    last_seq     BIGINT NOT NULL,
    applied_seq  BIGINT NOT NULL,
    PRIMARY KEY (block_height, block_hash)
) WITHOUT ROWID;
INSERT INTO blocks_by_height (block_hash, block_height, parent_hash, canonical, last_seq, applied_seq)
SELECT block_hash, block_height, parent_hash, canonical, last_seq, applied_seq FROM blocks;
DROP TABLE blocks;
ALTER TABLE blocks_by_height RENAME TO blocks;
CREATE INDEX blocks_canonical_height ON blocks (block_height) WHERE canonical = 1;

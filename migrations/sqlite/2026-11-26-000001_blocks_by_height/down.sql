CREATE TABLE blocks_by_hash (
    block_hash   TEXT PRIMARY KEY,
    block_height BIGINT NOT NULL,
    parent_hash  TEXT,
    canonical    BOOLEAN NOT NULL,
    last_seq     BIGINT NOT NULL,
    applied_seq  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO blocks_by_hash (block_hash, block_height, parent_hash, canonical, last_seq, applied_seq)
SELECT block_hash, block_height, parent_hash, canonical, last_seq, applied_seq FROM blocks;
DROP TABLE blocks;
ALTER TABLE blocks_by_hash RENAME TO blocks;
CREATE INDEX blocks_canonical_height ON blocks (block_height) WHERE canonical = 1;

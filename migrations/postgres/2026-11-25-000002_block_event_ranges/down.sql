CREATE TABLE canonical_events (
    block_hash  TEXT NOT NULL,
    tx_index    INTEGER NOT NULL,
    event_index INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (block_hash, tx_index, event_index)
);
INSERT INTO canonical_events (block_hash, tx_index, event_index, seq)
SELECT l.block_hash, l.tx_index, l.event_index, l.seq
FROM blocks b JOIN log_entries l
  ON l.seq BETWEEN b.applied_seq AND b.last_seq AND l.block_hash = b.block_hash AND l.kind = 1
WHERE b.canonical;
ALTER TABLE blocks DROP COLUMN applied_seq;

-- A canonical block's events are the event entries of that block between the marker of its
-- latest application (applied_seq) and last_seq: the log already holds them, so the
-- per-event identity table goes (one index insert less per event on the ingest path).
ALTER TABLE blocks ADD COLUMN applied_seq BIGINT NOT NULL DEFAULT 0;
UPDATE blocks SET applied_seq = m.seq
FROM (SELECT block_hash, max(seq) AS seq FROM log_entries WHERE kind = 3 GROUP BY block_hash) AS m
WHERE m.block_hash = blocks.block_hash;
UPDATE blocks SET applied_seq = last_seq WHERE applied_seq = 0;
DROP TABLE canonical_events;

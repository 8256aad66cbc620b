-- The append-only log. Rows are never updated or deleted.
-- kind: 1 event, 2 rollback, 3 block applied, 4 block rolled back (see src/store/entry.rs).
CREATE TABLE log_entries (
    seq          INTEGER PRIMARY KEY, -- the rowid: 64-bit, clustered
    kind         SMALLINT NOT NULL,
    block_hash   TEXT NOT NULL,
    block_height BIGINT NOT NULL,
    tx_hash      TEXT,
    tx_index     INTEGER,
    event_index  INTEGER,
    event_type   TEXT,
    contract_id  TEXT,
    rollback_of  BIGINT,
    body         TEXT NOT NULL,
    committed_at BIGINT NOT NULL
);
CREATE INDEX log_entries_contract_seq ON log_entries (contract_id, seq) WHERE contract_id IS NOT NULL;
CREATE INDEX log_entries_type_seq ON log_entries (event_type, seq) WHERE event_type IS NOT NULL;
CREATE INDEX log_entries_height ON log_entries (block_height, seq);
CREATE INDEX log_entries_rollback_of ON log_entries (rollback_of) WHERE rollback_of IS NOT NULL;

-- Which log entries touch which principal (events and rollbacks), append-only like the log.
CREATE TABLE entry_addresses (
    address TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (address, seq)
) WITHOUT ROWID;

-- Derived from the log (rebuildable): blocks seen and whether each is canonical now.
CREATE TABLE blocks (
    block_hash   TEXT PRIMARY KEY,
    block_height BIGINT NOT NULL,
    parent_hash  TEXT,
    canonical    BOOLEAN NOT NULL,
    last_seq     BIGINT NOT NULL
);
CREATE INDEX blocks_canonical_height ON blocks (block_height) WHERE canonical = 1;

-- Derived from the log (rebuildable): the identity of every event applied now.
CREATE TABLE canonical_events (
    block_hash  TEXT NOT NULL,
    tx_index    INTEGER NOT NULL,
    event_index INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (block_hash, tx_index, event_index)
) WITHOUT ROWID;

-- Address rows of recent entries, merged into address_entries in large sorted batches (see
-- src/store/append.rs, "Staged address rows"). An entry's row is in exactly one of the two
-- tables; readers look in both. Append-only between merges; a merge moves every row.
CREATE TABLE address_recent (
    principal BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (principal, seq)
);

-- The head's block (the highest canonical one) is found by scanning the primary key
-- (block_height, block_hash) down from the top, skipping the few blocks a reorganisation
-- left above it. The partial index on canonical heights that served it cost every new
-- block one more index entry (and, WITHOUT ROWID, a copy of the key: 86 bytes a block).
DROP INDEX blocks_canonical_height;

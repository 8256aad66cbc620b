-- Blocks keyed by (height, hash), Chainhook's block identifier, instead of the hash alone.
-- Block hashes are unrelated from one block to the next, so an index keyed by hash takes
-- each new block on a page of its own (and, after each checkpoint, a full-page image in the
-- WAL). Keyed by height first, new blocks go to the end of the index.
ALTER TABLE blocks DROP CONSTRAINT blocks_pkey;
ALTER TABLE blocks ADD PRIMARY KEY (block_height, block_hash);

CREATE INDEX blocks_canonical_height ON blocks (block_height) WHERE canonical = 1;

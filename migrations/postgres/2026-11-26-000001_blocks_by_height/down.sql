ALTER TABLE blocks DROP CONSTRAINT blocks_pkey;
ALTER TABLE blocks ADD PRIMARY KEY (block_hash);

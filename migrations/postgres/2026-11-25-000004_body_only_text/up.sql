-- Every event and rollback body already holds its transaction hash, event type and contract
-- id, and the type and contract indexes use type_code and contract_key: the text copies in
-- each log row go. Rows written from now on are that much narrower (no rewrite here: the
-- columns of rows already stored stay as dead space).
ALTER TABLE log_entries DROP COLUMN tx_hash, DROP COLUMN event_type, DROP COLUMN contract_id;

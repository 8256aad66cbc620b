-- Every event and rollback body already holds its transaction hash, event type and contract
-- id, and the type and contract indexes use type_code and contract_key: the text copies in
-- each log row go (SQLite rewrites the table's rows once per column).
ALTER TABLE log_entries DROP COLUMN tx_hash;
ALTER TABLE log_entries DROP COLUMN event_type;
ALTER TABLE log_entries DROP COLUMN contract_id;

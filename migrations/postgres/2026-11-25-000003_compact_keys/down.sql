CREATE TABLE entry_addresses (
    address TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (address, seq)
);
INSERT INTO entry_addresses (address, seq)
SELECT p.name, a.seq FROM address_entries a JOIN principals p ON p.id = a.principal;
DROP TABLE address_entries;
DROP INDEX log_entries_contract_key_seq;
DROP INDEX log_entries_type_code_seq;
ALTER TABLE log_entries DROP COLUMN contract_key, DROP COLUMN type_code;
CREATE INDEX log_entries_contract_seq ON log_entries (contract_id, seq) WHERE contract_id IS NOT NULL;
CREATE INDEX log_entries_type_seq ON log_entries (event_type, seq) WHERE event_type IS NOT NULL;
DROP TABLE principals;

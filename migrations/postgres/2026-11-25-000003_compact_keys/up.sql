-- Compact index keys. The ingest path inserts one index entry per principal per event and
-- one per event into the contract and type indexes; with text keys (a 41-character
-- principal, a contract id, a type name) those indexes are several times larger than the
-- integers they now hold, and every group commit dirties that many more pages.
--
-- principals: every principal and contract id the log mentions, numbered once and never
-- renumbered. Derived from the log (rebuildable), append-only.
CREATE TABLE principals (
    id   BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO principals (id, name)
SELECT row_number() OVER (ORDER BY name), name
FROM (SELECT address AS name FROM entry_addresses
      UNION SELECT contract_id FROM log_entries WHERE contract_id IS NOT NULL) AS names;

-- type_code: the event type's fixed number (src/model.rs, EventType::code); contract_key:
-- the contract id's number in principals. Index columns only: the text columns stay.
ALTER TABLE log_entries ADD COLUMN type_code SMALLINT, ADD COLUMN contract_key BIGINT;
UPDATE log_entries SET type_code = CASE event_type
    WHEN 'print_event' THEN 1 WHEN 'contract_event' THEN 2 WHEN 'stx_transfer_event' THEN 3
    WHEN 'stx_mint_event' THEN 4 WHEN 'stx_burn_event' THEN 5 WHEN 'stx_lock_event' THEN 6
    WHEN 'ft_transfer_event' THEN 7 WHEN 'ft_mint_event' THEN 8 WHEN 'ft_burn_event' THEN 9
    WHEN 'nft_transfer_event' THEN 10 WHEN 'nft_mint_event' THEN 11 WHEN 'nft_burn_event' THEN 12
    WHEN 'data_var_set_event' THEN 13 WHEN 'data_map_insert_event' THEN 14
    WHEN 'data_map_update_event' THEN 15 WHEN 'data_map_delete_event' THEN 16 END
WHERE event_type IS NOT NULL;
UPDATE log_entries SET contract_key = (SELECT id FROM principals WHERE name = log_entries.contract_id)
WHERE contract_id IS NOT NULL;
DROP INDEX log_entries_contract_seq;
DROP INDEX log_entries_type_seq;
CREATE INDEX log_entries_contract_key_seq ON log_entries (contract_key, seq) WHERE contract_key IS NOT NULL;
CREATE INDEX log_entries_type_code_seq ON log_entries (type_code, seq) WHERE type_code IS NOT NULL;

-- Which log entries touch which principal (events and rollbacks), append-only like the log.
CREATE TABLE address_entries (
    principal BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (principal, seq)
);
INSERT INTO address_entries (principal, seq)
SELECT p.id, e.seq FROM entry_addresses e JOIN principals p ON p.name = e.address;
DROP TABLE entry_addresses;

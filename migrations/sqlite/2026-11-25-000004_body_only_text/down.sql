ALTER TABLE log_entries ADD COLUMN tx_hash TEXT;
ALTER TABLE log_entries ADD COLUMN event_type TEXT;
ALTER TABLE log_entries ADD COLUMN contract_id TEXT;
UPDATE log_entries SET tx_hash = json_extract(body, '$.txHash'), event_type = json_extract(body, '$.eventType'),
    contract_id = json_extract(body, '$.contractId')
WHERE kind IN (1, 2);

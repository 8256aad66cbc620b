ALTER TABLE log_entries ADD COLUMN tx_hash TEXT, ADD COLUMN event_type TEXT, ADD COLUMN contract_id TEXT;
UPDATE log_entries SET tx_hash = (body::json)->>'txHash', event_type = (body::json)->>'eventType',
    contract_id = (body::json)->>'contractId'
WHERE kind IN (1, 2);

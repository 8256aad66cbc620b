DROP TABLE canonical_events;
DROP TABLE blocks;
DROP TABLE entry_addresses;
DROP TABLE log_entries;

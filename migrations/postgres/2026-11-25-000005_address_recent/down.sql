INSERT INTO address_entries (principal, seq) SELECT principal, seq FROM address_recent;
DROP TABLE address_recent;

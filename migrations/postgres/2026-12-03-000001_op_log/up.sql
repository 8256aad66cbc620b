-- The ops half of the log (PROTOCOL §4): one row per op entry (op, op-tx, op-cancel,
-- op-status) naming the op's address, for the `ops` filter's catch-up by address and for
-- the rule that an opId is applied once per address.
CREATE TABLE op_log (
    address TEXT     NOT NULL,
    seq     BIGINT   NOT NULL,
    op_id   TEXT     NOT NULL,
    kind    SMALLINT NOT NULL,
    PRIMARY KEY (address, seq)
);
-- An opId is appended once per address, whatever is resent (kind 5: the op entry).
CREATE UNIQUE INDEX op_log_op_id ON op_log (address, op_id) WHERE kind = 5;

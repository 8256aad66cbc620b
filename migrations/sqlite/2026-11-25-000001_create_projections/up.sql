-- Projections: derived state rebuilt by replaying the log (see src/projections/mod.rs).
-- One row per projection: which generation of its rows is served, and up to which log
-- seq that generation has folded (its checkpoint, written in the same transaction as the
-- rows). A rebuild writes a new generation beside the served one and swaps it in.
CREATE TABLE projections (
    name                  TEXT PRIMARY KEY,
    code_version          BIGINT NOT NULL,
    active_generation     BIGINT NOT NULL,
    checkpoint            BIGINT NOT NULL,
    building_generation   BIGINT,
    building_code_version BIGINT,
    building_checkpoint   BIGINT,
    last_generation       BIGINT NOT NULL
);

-- Per-key state of every generation of every projection, as JSON text.
CREATE TABLE projection_rows (
    projection TEXT NOT NULL,
    generation BIGINT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (projection, generation, key)
) WITHOUT ROWID;

-- Frozen generations: the state of a projection right after entry `seq`, kept so that a
-- replay "from seq S" starts from the newest snapshot at or below S.
CREATE TABLE projection_snapshots (
    projection   TEXT NOT NULL,
    generation   BIGINT NOT NULL,
    code_version BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (projection, generation)
) WITHOUT ROWID;

//! The log's tables, one `table!` set for both backends: every column uses a type that
//! PostgreSQL and SQLite map alike (no `Jsonb`, `Uuid` or `Timestamptz`).

diesel::table! {
    log_entries (seq) {
        seq -> BigInt,
        kind -> SmallInt,
        block_hash -> Text,
        block_height -> BigInt,
        tx_index -> Nullable<Integer>,
        event_index -> Nullable<Integer>,
        rollback_of -> Nullable<BigInt>,
        body -> Text,
        committed_at -> BigInt,
        type_code -> Nullable<SmallInt>,
        contract_key -> Nullable<BigInt>,
    }
}

diesel::table! {
    principals (id) {
        id -> BigInt,
        name -> Text,
    }
}

diesel::table! {
    address_entries (principal, seq) {
        principal -> BigInt,
        seq -> BigInt,
    }
}

diesel::table! {
    /// Address rows not merged into `address_entries` yet (`super::append`).
    address_recent (principal, seq) {
        principal -> BigInt,
        seq -> BigInt,
    }
}

diesel::table! {
    blocks (block_height, block_hash) {
        block_hash -> Text,
        block_height -> BigInt,
        parent_hash -> Nullable<Text>,
        canonical -> Bool,
        last_seq -> BigInt,
        applied_seq -> BigInt,
    }
}

diesel::table! {
    /// One row per op entry, naming the op's address (`super::append::ops`).
    op_log (address, seq) {
        address -> Text,
        seq -> BigInt,
        op_id -> Text,
        kind -> SmallInt,
    }
}

diesel::joinable!(address_entries -> log_entries (seq));
diesel::joinable!(op_log -> log_entries (seq));
diesel::allow_tables_to_appear_in_same_query!(log_entries, address_entries, address_recent, principals, blocks, op_log);

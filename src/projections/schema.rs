//! The projections' tables (migration `*_create_projections`), portable column types only.

diesel::table! {
    projections (name) {
        name -> Text,
        code_version -> BigInt,
        active_generation -> BigInt,
        checkpoint -> BigInt,
        building_generation -> Nullable<BigInt>,
        building_code_version -> Nullable<BigInt>,
        building_checkpoint -> Nullable<BigInt>,
        last_generation -> BigInt,
    }
}

diesel::table! {
    projection_rows (projection, generation, key) {
        projection -> Text,
        generation -> BigInt,
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    projection_snapshots (projection, generation) {
        projection -> Text,
        generation -> BigInt,
        code_version -> BigInt,
        seq -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(projections, projection_rows, projection_snapshots);

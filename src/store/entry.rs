//! What the store reads back from a stored entry body. The entry types themselves are
//! part of the model ([`crate::model::entry`]).

use serde::Deserialize;

/// The fields of a stored event or rollback body that the row does not hold.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BodyFields {
    #[serde(default)]
    pub affected_addresses: Vec<String>,
    #[serde(default)]
    pub contract_id: Option<String>,
    #[serde(default)]
    pub tx_hash: Option<String>,
}

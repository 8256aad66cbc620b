//! Chainhook v1 Stacks payloads → [`crate::model::Payload`]. Pure: no I/O.
//!
//! # Layout
//!
//! - [`payload`]: serde shapes of the `http_post` body (what we require, nothing more).
//! - `events`: one receipt event → one [`crate::model::NewEvent`].
//! - [`clarity`]: Clarity consensus deserialisation of hex values to Chainhook's JSON.
//! - [`principal`]: c32check addresses; [`is_principal`] for other modules.

pub mod clarity;
mod events;
pub mod payload;
pub mod principal;

pub use principal::is_principal;

use crate::model::{Block, NewEvent, Payload, TxSummary};
use events::{build_event, TxContext};
use payload::{called_contract, ChainhookBlock, ChainhookPayload, ChainhookTransaction};

/// `PayloadError::code` for a body that is not JSON at all.
pub const INVALID_JSON: &str = "invalid_json";
/// `PayloadError::code` for JSON that is not a Chainhook payload.
pub const INVALID_PAYLOAD: &str = "invalid_payload";

/// Why a body is not an acceptable Chainhook payload, with the JSON path at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PayloadError {
    /// `invalid_json` (not JSON at all) or `invalid_payload` (JSON of the wrong shape).
    pub code: &'static str,
    /// Path of the offending value, e.g. `apply[0].transactions[2].metadata.success`;
    /// empty for the document itself.
    pub path: String,
    pub message: String,
}

impl PayloadError {
    fn invalid_payload(path: impl Into<String>, message: impl Into<String>) -> Self {
        PayloadError {
            code: INVALID_PAYLOAD,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Parses a Chainhook `http_post` body.
///
/// Either every block parses or the whole body is rejected: the store applies a payload
/// atomically, so a partial result would be meaningless. Clarity values that fail to
/// decode are the one exception: they are kept as hex with a `decodeError` in the event
/// data, because Chainhook deregisters a predicate whose deliveries keep failing.
pub fn parse_payload(body: &[u8]) -> Result<Payload, PayloadError> {
    // A syntax pass first, so that broken JSON is always `invalid_json`, even when the
    // typed pass below would have tripped over a wrong shape before reaching the break.
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| PayloadError {
        code: INVALID_JSON,
        path: String::new(),
        message: e.to_string(),
    })?;
    // Serde derives also accept a struct written as an array; the document must be an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(PayloadError::invalid_payload("", "expected a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw: ChainhookPayload = serde_path_to_error::deserialize(&mut de).map_err(shape_error)?;
    let mut apply = convert_blocks(raw.apply, "apply")?;
    for block in &mut apply {
        block.encode_events();
    }
    Ok(Payload { rollback: convert_blocks(raw.rollback, "rollback")?, apply })
}

/// A serde error with its path in our `a[0].b.c` form. serde reports a missing field at
/// the path of the object that lacks it, so the field name is appended to point at it.
fn shape_error(err: serde_path_to_error::Error<serde_json::Error>) -> PayloadError {
    let mut path = err.path().to_string();
    if path == "." {
        path.clear();
    }
    let message = err.inner().to_string();
    if let Some(field) = missing_field(&message) {
        path = join(&path, field);
    }
    PayloadError::invalid_payload(path, message)
}

/// The field name of serde's "missing field `name`" message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn convert_blocks(blocks: Vec<ChainhookBlock>, list: &str) -> Result<Vec<Block>, PayloadError> {
    blocks
        .into_iter()
        .enumerate()
        .map(|(i, block)| convert_block(block, &format!("{list}[{i}]")))
        .collect()
}

fn convert_block(block: ChainhookBlock, path: &str) -> Result<Block, PayloadError> {
    let height = i64::try_from(block.block_identifier.index).map_err(|_| {
        PayloadError::invalid_payload(
            format!("{path}.block_identifier.index"),
            "block height does not fit in a signed 64-bit integer",
        )
    })?;
    let mut events = Vec::new();
    let mut transactions = Vec::with_capacity(block.transactions.len());
    for (i, tx) in block.transactions.into_iter().enumerate() {
        transactions.push(convert_transaction(tx, i, &format!("{path}.transactions[{i}]"), &mut events)?);
    }
    Ok(Block {
        hash: block.block_identifier.hash,
        height,
        parent_hash: block.parent_block_identifier.map(|p| p.hash),
        timestamp: block.timestamp,
        transactions,
        events,
    })
}

fn convert_transaction(
    tx: ChainhookTransaction,
    position: usize,
    path: &str,
    out: &mut Vec<NewEvent>,
) -> Result<TxSummary, PayloadError> {
    let ChainhookTransaction {
        transaction_identifier,
        metadata,
    } = tx;
    let declared = metadata.position.as_ref().and_then(|p| p.index);
    let tx_index = index(
        declared,
        position,
        &format!("{path}.metadata.position.index"),
    )?;
    let ctx = TxContext {
        tx_hash: &transaction_identifier.hash,
        tx_index,
        success: metadata.success,
        sender: metadata.sender.as_deref(),
        called_contract: called_contract(metadata.kind.as_ref()),
    };
    let event_count = metadata.receipt.events.len();
    for (i, event) in metadata.receipt.events.into_iter().enumerate() {
        let declared = event.position.as_ref().and_then(|p| p.index);
        let event_path = format!("{path}.metadata.receipt.events[{i}].position.index");
        let event_index = index(declared, i, &event_path)?;
        out.push(build_event(&ctx, event, event_index));
    }
    Ok(TxSummary {
        tx_hash: transaction_identifier.hash.clone(),
        tx_index,
        sender: metadata.sender.clone(),
        success: metadata.success,
        result: metadata.result.as_ref().and_then(|r| r.as_str()).map(str::to_string),
        event_count,
    })
}

/// The payload's `position.index` when it has one, else the array position; both must fit
/// the `i32` the model stores.
fn index(declared: Option<u64>, fallback: usize, path: &str) -> Result<i32, PayloadError> {
    let fits = match declared {
        Some(n) => i32::try_from(n).ok(),
        None => i32::try_from(fallback).ok(),
    };
    fits.ok_or_else(|| {
        PayloadError::invalid_payload(path, "index does not fit in a signed 32-bit integer")
    })
}

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod tests;

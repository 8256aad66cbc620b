//! Chainhook v1 Stacks payloads → [`crate::model::Payload`]. Pure: no I/O.

use crate::model::Payload;

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

/// Parses a Chainhook `http_post` body.
pub fn parse_payload(_body: &[u8]) -> Result<Payload, PayloadError> {
    todo!("chainhook parser")
}

//! # timebank-realtime
//!
//! Keeps dApp clients of the Time Banking Protocol in sync with the Stacks chain: a
//! Chainhook node POSTs blocks, the server appends them to one append-only log and fans
//! them out to WebSocket subscribers.
//!
//! # Layout
//!
//! - [`model`]: the event model (pure data) shared by every other module.
//! - [`chainhook`]: Chainhook payload parsing and Clarity value decoding (pure, no I/O).

pub mod chainhook;
pub mod model;
pub mod store;

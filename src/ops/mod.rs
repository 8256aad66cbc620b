//! Optimistic operations: the lifecycle and conflict rules of PROTOCOL §4 as a pure
//! function of the log.
//!
//! An op is a client's prediction of a change a Stacks transaction will make. Whether it is
//! `pending`, `confirmed`, `final` or `reverted` (and why), and what the optimistic view of
//! an entity shows, is decided here from log entries alone: ops, `txHash` attachments,
//! cancels, block markers, rollbacks and entity changes ([`Input`]). The server feeds a
//! [`Resolver`] every entry as it appends it and appends the [`Decision`]s it returns in the
//! same transaction; a replay, another node or a client library fed the same entries
//! decides the same.
//!
//! The exact rules are in `docs/ops.md`, written for implementers in other languages;
//! `tests/vectors/ops.json` pins them and `tests/ops_vectors.rs` runs it against this module.
//!
//! No I/O, no runtime, no storage: this module is built with and without the `server`
//! feature and imports nothing else of the crate.
//!
//! - [`config`]: strategies per entity kind, finality depth, expiry clocks, bounds.
//! - [`input`]: the entries the rules read.
//! - [`decision`]: statuses, reasons, decisions, and answers to resends and cancels.
//! - [`chain`]: the block clock, recent transactions, per-field versions of entities.
//! - [`resolver`]: the state machine.

pub mod chain;
pub mod config;
pub mod decision;
pub mod input;
pub mod resolver;

#[cfg(test)]
mod tests;

pub use config::{Config, KindRule, Strategy};
pub use decision::{Answer, CancelRequest, Decision, OpRequest, Reason, RejectDetail, Status};
pub use input::{BlockApplied, BlockRolledBack, EntityChanged, Input, OpCancelled, OpSubmitted, Tx, TxHashAttached};
pub use resolver::{Confirmation, OpRecord, Resolver};

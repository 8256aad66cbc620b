//! Projections: derived state rebuilt by replaying the log.
//!
//! A projection folds log entries in `seq` order — events and rollbacks alike — into
//! per-key states. Built in: [`accounts`], [`contracts`], [`entities`].
//!
//! # Decisions
//!
//! - **Undo by applying the rollback entry.** A rollback entry names the event it undoes
//!   (`rollback_of`); the engine loads that event's body from the log and the projection
//!   folds it with [`Direction::Undo`]. Accounts and contracts keep only sums (balances,
//!   counts, per-height counts for first/last heights), so an undo subtracts what the
//!   apply added, exactly, in any order. Entities keep their changes tagged by `seq`; an
//!   undo removes that change and re-folds. Nothing is ever deleted from the log.
//! - **State and checkpoint in one transaction.** Each projection has a row in
//!   `projections` (`checkpoint`: the last `seq` folded) and its states in
//!   `projection_rows`; both are written in one transaction, after checking under the
//!   row's lock that the checkpoint is still the one folding started from. A crash loses
//!   at most folding work; it never applies an entry twice or skips one.
//! - **Generations, not renamed tables.** Rows are keyed by (projection, generation,
//!   key). Reads use the `active_generation`. A rebuild (`replay`, or a changed
//!   [`Projection::version`] at start) writes generation g+1 beside g, which keeps being
//!   served and updated live; once g+1 has caught up with the live checkpoint, one
//!   transaction points `active_generation` at it and deletes g's rows. No downtime, and
//!   the same tables on both backends.
//! - **Replay "from a given seq"** starts from the newest *snapshot* at or below it: a
//!   frozen copy of a generation at a checkpoint, which `replay --snapshot-every N`
//!   leaves behind every N `seq`s (the newest few kept). With no such snapshot it starts
//!   from zero. Either way the result is the state at the head.
//! - **A new projection** (no row yet) builds itself from the whole log on first start.
//! - **Speed.** Folding runs in memory over typed states (foldhash maps, compact
//!   per-height counts). A rebuild reads and parses the log in pages of 10,000 on a second
//!   connection while the first folds, and writes the final states in multi-row
//!   statements once at the end (and at snapshots); live catch-up commits every 50,000
//!   entries. The engine runs on a thread of its own with a synchronous connection
//!   ([`db`]). `bench-replay` measures it.
//! - **Live batches**: the projector folds each `Committed` batch (merged with any that
//!   wait) in one transaction with the checkpoint.
//! - **Amounts** are exact signed integers of any size ([`amount`]).
//! - **Entities** come from print events through a mapping that is data ([`entities`]).
//!
//! # Layout
//!
//! - [`state`]: the [`Projection`] trait and the in-memory working set.
//! - [`input`]: what a projection sees of an entry.
//! - [`engine`]: folding, checkpoints, rebuilds, swaps, snapshots; [`db`]: its SQL.
//! - [`projector`]: the actor that keeps every projection current as entries commit.
//! - [`read`]: the read queries behind `GET /api/accounts|contracts|entities/…`.

pub mod accounts;
pub mod amount;
pub mod contracts;
pub mod db;
pub mod engine;
pub mod entities;
pub mod input;
pub mod projector;
pub mod read;
pub mod schema;
pub mod state;

pub use engine::{Engine, EngineSettings, RebuildReport};
pub use entities::EntityMapping;
pub use input::Direction;
pub use projector::Projector;
pub use state::{Folder, Projection};

use crate::store::StoreError;
use state::Fold;

/// Errors of projections, named by what the caller must do.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database could not be reached: retry later.
    #[error("projection store unavailable: {0}")]
    Unavailable(String),
    /// A statement failed; the transaction was rolled back: retry.
    #[error("projection query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Someone else moved the projection (another node, a swap): refold from its checkpoint.
    #[error("projection changed concurrently: {0}")]
    Conflict(String),
    /// The log or a stored state cannot be read by this version.
    #[error("unreadable projection input: {0}")]
    Corrupt(String),
    /// Bad settings (mapping file, projection name): fix and restart.
    #[error("projection misconfigured: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Names of the built-in projections, in folding order.
pub const BUILTIN: [&str; 3] = [accounts::NAME, contracts::NAME, entities::NAME];

/// The built-in projections, ready for an [`Engine`].
pub fn builtin(mapping: EntityMapping) -> Vec<Box<dyn Folder>> {
    vec![
        Box::new(Fold::new(accounts::Accounts)),
        Box::new(Fold::new(contracts::Contracts)),
        Box::new(Fold::new(entities::Entities::new(mapping))),
    ]
}

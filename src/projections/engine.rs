//! The fold engine: reads the log in `seq` order and folds it into projections, writing
//! each projection's changed states and its checkpoint in one transaction.
//!
//! One engine serves both jobs:
//! - live ([`Engine::start`], [`Engine::advance_live`]): fold into the *active* generation,
//!   from its checkpoint, with the entries a `Committed` carries (gaps are read from the
//!   log); the projector actor drives it.
//! - rebuild ([`Engine::rebuild`]): fold into a *new* generation from zero (or from a
//!   snapshot), while the active one keeps being served, then swap it in.
//!
//! Every write is checked, under the projection row's lock, against the generation and
//! checkpoint the engine started from; if someone else moved them (another node, a swap
//! by `replay`), the engine drops its cache and refolds from the stored checkpoint. So a
//! crash, a concurrent writer or a swap can never make an entry count twice or not at all.
//!
//! # Layout
//!
//! - `live`: start, live batches, catch-up, refolding after a conflict.
//! - `rebuild`: folding into a new generation and swapping it in; [`RebuildReport`].
//! - `fold`: the folding loop both share, its checked writes (states + checkpoint) and
//!   snapshots.
//! - `reader`: parsed log entries, page boundaries, the reader that reads ahead.
//! - `settings`: [`EngineSettings`].

mod fold;
mod live;
mod reader;
mod rebuild;
mod settings;
#[cfg(test)]
pub(crate) mod testing;

pub use rebuild::RebuildReport;
pub use settings::EngineSettings;

use super::db::Db;
use super::state::Folder;
use crate::store::DatabaseUrl;

/// Where a projection's folding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Active,
    Building,
}

#[derive(Debug, Clone, Copy)]
struct Track {
    generation: i64,
    /// Checkpoint as stored.
    flushed: i64,
    /// Folded up to here in memory.
    cursor: i64,
    target: Target,
    /// False: not folded by this engine (another version owns the row).
    enabled: bool,
}

pub struct Engine {
    db: Db,
    /// Where a rebuild's reader opens its own connection (none: read inline).
    prefetch: Option<DatabaseUrl>,
    folders: Vec<Box<dyn Folder>>,
    tracks: Vec<Track>,
    settings: EngineSettings,
}

impl Engine {
    pub fn new(db: Db, folders: Vec<Box<dyn Folder>>, settings: EngineSettings) -> Engine {
        let tracks = folders
            .iter()
            .map(|_| Track {
                generation: 0,
                flushed: 0,
                cursor: 0,
                target: Target::Active,
                enabled: false,
            })
            .collect();
        Engine {
            db,
            prefetch: None,
            folders,
            tracks,
            settings,
        }
    }

    /// Lets rebuilds read and parse the log on a second connection, in parallel with folding.
    pub fn with_prefetch(mut self, url: DatabaseUrl) -> Engine {
        self.prefetch = Some(url);
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.folders.iter().map(|f| f.name()).collect()
    }

    pub fn db(&mut self) -> &mut Db {
        &mut self.db
    }

    /// Where each folded projection stands: (name, generation, checkpoint).
    pub fn checkpoints(&self) -> Vec<(&'static str, i64, i64)> {
        self.folders
            .iter()
            .zip(&self.tracks)
            .map(|(f, t)| (f.name(), t.generation, t.flushed))
            .collect()
    }
}

//! The live path: start (creating, rebuilding and catching up projections), folding the
//! entries of each `Committed` into the active generations, and refolding from the stored
//! checkpoint when someone else moved a projection.

use super::reader::Parsed;
use super::{Engine, Target, Track};
use crate::projections::db::Meta;
use crate::projections::ProjectionError;
use crate::model::LogEntry;

/// Attempts at a write whose checks fail because someone else moved the projection.
const MAX_CONFLICT_RETRIES: usize = 5;

impl Engine {
    /// Live start: creates missing projection rows (a new projection builds from the whole
    /// log), rebuilds those whose code version changed (the old generation is served
    /// until the new one swaps in), then catches every projection up to the log's head.
    pub fn start(&mut self, progress: &mut dyn FnMut(i64, i64)) -> Result<(), ProjectionError> {
        let mut stale = Vec::new();
        for i in 0..self.folders.len() {
            let name = self.folders[i].name();
            let version = self.folders[i].version();
            let meta = self.db.transaction(|db| {
                if let Some(m) = db.meta(name)? {
                    return Ok(m);
                }
                let m = Meta::new(name, version);
                db.insert_meta(&m)?;
                tracing::info!(
                    projection = name,
                    "new projection, building from the whole log"
                );
                Ok(m)
            })?;
            if meta.code_version != version {
                tracing::info!(
                    projection = name,
                    stored = meta.code_version,
                    code = version,
                    "code version changed, rebuilding"
                );
                stale.push(name);
            }
        }
        if !stale.is_empty() {
            self.rebuild(&stale, None, progress)?;
        }
        self.reload_live()?;
        let head = self.db.head()?;
        self.advance(head, None, progress)
    }

    /// Reads every projection's row and points the live folding at its active generation,
    /// dropping cached states.
    pub fn reload_live(&mut self) -> Result<(), ProjectionError> {
        for i in 0..self.folders.len() {
            let name = self.folders[i].name();
            let meta = self.db.meta(name)?;
            let (track, complete) = match meta {
                Some(m) => (
                    Track {
                        generation: m.active_generation,
                        flushed: m.checkpoint,
                        cursor: m.checkpoint,
                        target: Target::Active,
                        enabled: m.code_version == self.folders[i].version(),
                    },
                    // A generation at checkpoint 0 holds no rows yet.
                    m.checkpoint == 0,
                ),
                None => (
                    Track {
                        generation: 0,
                        flushed: 0,
                        cursor: 0,
                        target: Target::Active,
                        enabled: false,
                    },
                    false,
                ),
            };
            if !track.enabled && meta_exists(&track) {
                tracing::warn!(
                    projection = name,
                    "stored projection has another code version; not folding it here"
                );
            }
            self.tracks[i] = track;
            self.folders[i].reset(complete);
        }
        Ok(())
    }

    /// Folds committed entries into the active generations, in one transaction.
    pub fn advance_live(&mut self, entries: &[LogEntry]) -> Result<(), ProjectionError> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let parsed = entries
            .iter()
            .map(|e| Parsed::new(e.seq, e.kind as i16, e.rollback_of, &e.body))
            .collect::<Result<Vec<_>, _>>();
        let result = parsed.and_then(|p| self.advance(last.seq, Some(&p), &mut |_, _| {}));
        if result.is_err() {
            // Memory may be ahead of the store: start again from what is stored.
            let _ = self.reload_live();
        }
        result
    }

    /// Folds the enabled tracks up to `to`, flushing every `flush_every` entries and at the
    /// end. On a conflict, reloads and refolds from the stored checkpoints.
    fn advance(
        &mut self,
        to: i64,
        supplied: Option<&[Parsed]>,
        progress: &mut dyn FnMut(i64, i64),
    ) -> Result<(), ProjectionError> {
        let mut attempts = 0;
        loop {
            match self.advance_once(to, supplied, progress) {
                Err(ProjectionError::Conflict(why)) if attempts < MAX_CONFLICT_RETRIES => {
                    attempts += 1;
                    tracing::info!(reason = %why, "projection moved under us, refolding from its checkpoint");
                    if self.tracks.iter().any(|t| t.target == Target::Building) {
                        return Err(ProjectionError::Conflict(why));
                    }
                    self.reload_live()?;
                }
                other => return other,
            }
        }
    }

    /// Folds every enabled projection up to the log's head (after a failure, or at start).
    pub fn catch_up(&mut self) -> Result<(), ProjectionError> {
        let head = self.db.head()?;
        self.advance(head, None, &mut |_, _| {})
    }
}

fn meta_exists(t: &Track) -> bool {
    t.generation != 0
}

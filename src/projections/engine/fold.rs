//! The folding loop both jobs share: read pages of the log (or take the entries given),
//! fold them into every enabled track, and write states + checkpoint under the row's lock,
//! with snapshots at their boundaries during a rebuild.

use super::reader::{page_stop, parse, parse_all, Parsed, Reader};
use super::{Engine, Target, Track};
use crate::projections::db::Snapshot;
use crate::projections::input::{Direction, EventView, Input};
use crate::projections::state::Folder;
use crate::projections::ProjectionError;
use crate::model::EntryKind;
use std::collections::HashMap;

impl Engine {
    pub(super) fn advance_once(
        &mut self,
        to: i64,
        supplied: Option<&[Parsed]>,
        progress: &mut dyn FnMut(i64, i64),
    ) -> Result<(), ProjectionError> {
        let mut since_flush = 0i64;
        let building = self
            .tracks
            .iter()
            .any(|t| t.enabled && t.target == Target::Building);
        // Stop pages at snapshot boundaries, so snapshots land exactly on them.
        let every = if building {
            self.settings.snapshot_every
        } else {
            0
        };
        // A rebuild reads and parses ahead on a second connection while this one folds.
        let mut reader = match (&self.prefetch, supplied) {
            (Some(url), None) if building => {
                let start = self
                    .tracks
                    .iter()
                    .filter(|t| t.enabled)
                    .map(|t| t.cursor)
                    .min()
                    .unwrap_or(0);
                Some(Reader::spawn(
                    url.clone(),
                    start,
                    to,
                    self.settings.page,
                    every,
                ))
            }
            _ => None,
        };
        while let Some(start) = self
            .tracks
            .iter()
            .filter(|t| t.enabled && t.cursor < to)
            .map(|t| t.cursor)
            .min()
        {
            let stop = page_stop(start, to, every);
            let page: Vec<Parsed>;
            let entries: &[Parsed] = match (supplied, reader.as_mut()) {
                (Some(s), _) if s.first().is_some_and(|f| f.seq <= start + 1) => {
                    let from = s.partition_point(|e| e.seq <= start);
                    &s[from..]
                }
                (_, Some(r)) => {
                    page = r.next_page()?;
                    if page.first().is_some_and(|f| f.seq != start + 1) {
                        return Err(ProjectionError::Corrupt(format!(
                            "reader out of step at {start}"
                        )));
                    }
                    &page
                }
                _ => {
                    let raw = self
                        .db
                        .read_log(start, self.settings.page.min(stop - start).max(1))?;
                    page = parse_all(raw)?;
                    &page
                }
            };
            if entries.is_empty() {
                break; // the log ends before `to` (entries not visible yet): stop here
            }
            let entries = &entries[..entries.partition_point(|e| e.seq <= stop)];
            self.fold(entries)?;
            since_flush += entries.len() as i64;
            let cursor = entries.last().map_or(start, |e| e.seq);
            progress(cursor, to);
            let snapshot_due = self.snapshot_due(cursor);
            let flush_every = if building {
                self.settings.rebuild_flush_every
            } else {
                self.settings.flush_every
            };
            if since_flush >= flush_every || cursor >= to || snapshot_due {
                self.flush()?;
                since_flush = 0;
                if snapshot_due {
                    self.snapshot()?;
                }
            }
        }
        self.flush()
    }

    fn snapshot_due(&self, cursor: i64) -> bool {
        let every = self.settings.snapshot_every;
        every > 0
            && self.tracks.iter().any(|t| {
                t.enabled && t.target == Target::Building && t.flushed / every != cursor / every
            })
    }

    /// Folds entries (contiguous, in order) into every enabled track behind them, with the
    /// events their rollback entries undo read from the log.
    fn fold(&mut self, entries: &[Parsed]) -> Result<(), ProjectionError> {
        let undone: Vec<i64> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Rollback as i16)
            .filter_map(|e| e.rollback_of)
            .collect();
        let mut originals: HashMap<i64, EventView> = HashMap::new();
        if !undone.is_empty() {
            for (seq, body) in self.db.log_bodies(&undone)? {
                originals.insert(seq, parse(seq, &body)?);
            }
        }
        let Engine {
            db,
            folders,
            tracks,
            ..
        } = self;
        fold_entries(entries, &originals, folders, tracks, &mut |name, generation, key| {
            db.load_row(name, generation, key)
        })
    }

    /// Writes every track's dirty states and checkpoint in one transaction, checking that
    /// nobody moved the projection since.
    fn flush(&mut self) -> Result<(), ProjectionError> {
        let pending: Vec<usize> = (0..self.folders.len())
            .filter(|&i| self.tracks[i].enabled && self.tracks[i].cursor != self.tracks[i].flushed)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::with_capacity(pending.len());
        for &i in &pending {
            writes.push(self.folders[i].take_dirty()?);
        }
        let Engine {
            db,
            folders,
            tracks,
            ..
        } = self;
        db.transaction(|db| {
            for (&i, rows) in pending.iter().zip(&writes) {
                let name = folders[i].name();
                let t = tracks[i];
                let mut meta = db
                    .meta(name)?
                    .ok_or_else(|| ProjectionError::Conflict(format!("{name}: row vanished")))?;
                match t.target {
                    Target::Active => {
                        if meta.active_generation != t.generation || meta.checkpoint != t.flushed {
                            return Err(ProjectionError::Conflict(format!(
                                "{name}: expected generation {} at {}, found {} at {}",
                                t.generation, t.flushed, meta.active_generation, meta.checkpoint
                            )));
                        }
                        meta.checkpoint = t.cursor;
                    }
                    Target::Building => {
                        if meta.building_generation != Some(t.generation)
                            || meta.building_checkpoint != Some(t.flushed)
                        {
                            return Err(ProjectionError::Conflict(format!(
                                "{name}: another rebuild took over"
                            )));
                        }
                        meta.building_checkpoint = Some(t.cursor);
                    }
                }
                db.write_rows(name, t.generation, rows)?;
                db.save_meta(&meta)?;
            }
            Ok(())
        })?;
        for &i in &pending {
            self.tracks[i].flushed = self.tracks[i].cursor;
            self.folders[i].trim(self.settings.max_cached);
        }
        Ok(())
    }

    /// Freezes a copy of every building generation at its checkpoint.
    fn snapshot(&mut self) -> Result<(), ProjectionError> {
        for i in 0..self.folders.len() {
            let t = self.tracks[i];
            if !t.enabled || t.target != Target::Building {
                continue;
            }
            let name = self.folders[i].name();
            let version = self.folders[i].version();
            let keep = self.settings.keep_snapshots;
            self.db.transaction(|db| {
                let mut meta = db
                    .meta(name)?
                    .ok_or_else(|| ProjectionError::Conflict(format!("{name}: row vanished")))?;
                let generation = meta.last_generation + 1;
                meta.last_generation = generation;
                db.save_meta(&meta)?;
                db.copy_generation(name, t.generation, generation)?;
                db.add_snapshot(&Snapshot {
                    projection: name.to_string(),
                    generation,
                    code_version: version,
                    seq: t.cursor,
                })?;
                let snaps = db.snapshots(name)?;
                for old in snaps.iter().take(snaps.len().saturating_sub(keep)) {
                    db.delete_snapshot(name, old.generation)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// Reads a state a folder has not cached: (projection, generation, key) → its JSON.
pub(super) type RowLoader<'a> =
    dyn FnMut(&'static str, i64, &str) -> Result<Option<String>, ProjectionError> + 'a;

/// Folds entries (contiguous, in order) into every enabled track behind them: an event
/// entry applies its event, a rollback entry undoes the event it names (found in
/// `originals`, by `seq`), block markers only move the cursor. An entry a track has
/// already folded is skipped; one that does not follow its cursor is a gap, refused.
/// No I/O of its own: `load` reads the states the folders have not cached.
pub(super) fn fold_entries(
    entries: &[Parsed],
    originals: &HashMap<i64, EventView>,
    folders: &mut [Box<dyn Folder>],
    tracks: &mut [Track],
    load: &mut RowLoader<'_>,
) -> Result<(), ProjectionError> {
    for entry in entries {
        let input = match EntryKind::from_i16(entry.kind) {
            Some(EntryKind::Event) => match &entry.event {
                Some(view) => Some(Input {
                    seq: entry.seq,
                    direction: Direction::Apply,
                    event: view,
                }),
                None => {
                    return Err(ProjectionError::Corrupt(format!(
                        "event entry {} unparsed",
                        entry.seq
                    )))
                }
            },
            Some(EntryKind::Rollback) => {
                match entry.rollback_of.and_then(|s| originals.get(&s)) {
                    Some(original) => Some(Input {
                        seq: entry.seq,
                        direction: Direction::Undo,
                        event: original,
                    }),
                    None => {
                        return Err(ProjectionError::Corrupt(format!(
                            "rollback entry {} undoes an event not in the log",
                            entry.seq
                        )))
                    }
                }
            }
            // Block markers change no projection (yet); the checkpoint passes them.
            Some(EntryKind::BlockApplied | EntryKind::BlockExtended | EntryKind::BlockRolledBack) => None,
            // Ops change no chain projection: entities show confirmed state only.
            Some(EntryKind::Op | EntryKind::OpTx | EntryKind::OpCancel | EntryKind::OpStatus) => None,
            None => {
                return Err(ProjectionError::Corrupt(format!(
                    "entry {} has unknown kind {}",
                    entry.seq, entry.kind
                )))
            }
        };
        for (folder, track) in folders.iter_mut().zip(tracks.iter_mut()) {
            if !track.enabled || track.cursor >= entry.seq {
                continue;
            }
            if track.cursor != entry.seq - 1 {
                return Err(ProjectionError::Corrupt(format!(
                    "log gap: {} folded up to {}, next entry is {}",
                    folder.name(),
                    track.cursor,
                    entry.seq
                )));
            }
            if let Some(input) = &input {
                let name = folder.name();
                let generation = track.generation;
                folder.apply(input, &mut |key: &str| load(name, generation, key))?;
            }
            track.cursor = entry.seq;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "fold_tests.rs"]
mod tests;

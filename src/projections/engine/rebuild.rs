//! Rebuilds: fold named projections into a new generation, from zero or a snapshot,
//! while the active one keeps serving, then swap it in.

use super::{Engine, Target, Track};
use crate::projections::db::Meta;
use crate::projections::ProjectionError;
use std::time::Instant;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    pub projections: Vec<String>,
    /// Where folding started (0, or the snapshot used).
    pub started_at: i64,
    pub checkpoint: i64,
    pub entries: i64,
    pub seconds: f64,
}

impl RebuildReport {
    pub fn entries_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.entries as f64 / self.seconds
        } else {
            0.0
        }
    }
}

impl Engine {
    /// Rebuilds the named projections into new generations — from zero, or from the newest
    /// snapshot at or below `from_seq` — and swaps each in once it has caught up with the
    /// live checkpoint. The active generations keep serving meanwhile.
    pub fn rebuild(
        &mut self,
        names: &[&str],
        from_seq: Option<i64>,
        progress: &mut dyn FnMut(i64, i64),
    ) -> Result<RebuildReport, ProjectionError> {
        let began = Instant::now();
        for (f, t) in self.folders.iter_mut().zip(self.tracks.iter_mut()) {
            t.enabled = false;
            f.reset(false);
        }
        let mut started_at = i64::MAX;
        for i in 0..self.folders.len() {
            let name = self.folders[i].name();
            if !names.contains(&name) {
                continue;
            }
            let version = self.folders[i].version();
            let (generation, start) = self.db.transaction(|db| {
                let mut meta = match db.meta(name)? {
                    Some(m) => m,
                    None => {
                        let m = Meta::new(name, version);
                        db.insert_meta(&m)?;
                        m
                    }
                };
                let generation = meta.last_generation + 1;
                let snaps = db.snapshots(name)?;
                // Rows of generations nothing points at: an abandoned build.
                for g in db.generations(name)? {
                    if g != meta.active_generation && !snaps.iter().any(|s| s.generation == g) {
                        db.delete_generation(name, g)?;
                    }
                }
                let base = from_seq.and_then(|s| {
                    snaps
                        .iter()
                        .filter(|x| x.code_version == version && x.seq <= s)
                        .max_by_key(|x| x.seq)
                });
                let start = match base {
                    Some(snap) => {
                        db.copy_generation(name, snap.generation, generation)?;
                        snap.seq
                    }
                    None => 0,
                };
                meta.last_generation = generation;
                meta.building_generation = Some(generation);
                meta.building_code_version = Some(version);
                meta.building_checkpoint = Some(start);
                db.save_meta(&meta)?;
                Ok((generation, start))
            })?;
            if start == 0 {
                self.folders[i].reset(true);
            } else {
                let rows = self.db.load_generation(name, generation)?;
                self.folders[i].seed(rows)?;
            }
            self.tracks[i] = Track {
                generation,
                flushed: start,
                cursor: start,
                target: Target::Building,
                enabled: true,
            };
            started_at = started_at.min(start);
            tracing::info!(projection = name, generation, from = start, "rebuilding");
        }
        if started_at == i64::MAX {
            return Err(ProjectionError::Config(format!(
                "no projection named {names:?}"
            )));
        }
        // Catch up with the head, then swap; if the live checkpoint ran ahead meanwhile,
        // fold the difference and try again.
        loop {
            let head = self.db.head()?;
            self.advance_once(head, None, progress)?;
            let mut done = true;
            for i in 0..self.folders.len() {
                let t = self.tracks[i];
                if !t.enabled {
                    continue;
                }
                let name = self.folders[i].name();
                let version = self.folders[i].version();
                let swapped = self.db.transaction(|db| {
                    let mut meta = db.meta(name)?.ok_or_else(|| {
                        ProjectionError::Conflict(format!("{name}: row vanished"))
                    })?;
                    if meta.building_generation != Some(t.generation) {
                        return Err(ProjectionError::Conflict(format!(
                            "{name}: another rebuild took over"
                        )));
                    }
                    // The live generation may be ahead (its projector kept folding).
                    if meta.code_version == version && meta.checkpoint > t.cursor {
                        return Ok(false);
                    }
                    let old = meta.active_generation;
                    meta.active_generation = t.generation;
                    meta.checkpoint = t.cursor;
                    meta.code_version = version;
                    meta.building_generation = None;
                    meta.building_code_version = None;
                    meta.building_checkpoint = None;
                    db.save_meta(&meta)?;
                    db.delete_generation(name, old)?;
                    Ok(true)
                })?;
                if swapped {
                    tracing::info!(
                        projection = name,
                        generation = t.generation,
                        checkpoint = t.cursor,
                        "rebuilt generation swapped in"
                    );
                    self.tracks[i].enabled = false;
                } else {
                    done = false;
                }
            }
            if done {
                break;
            }
        }
        let seconds = began.elapsed().as_secs_f64();
        let checkpoint = self.tracks.iter().map(|t| t.cursor).max().unwrap_or(0);
        let entries = checkpoint - started_at;
        self.reload_live()?;
        Ok(RebuildReport {
            projections: names.iter().map(|n| n.to_string()).collect(),
            started_at,
            checkpoint,
            entries,
            seconds,
        })
    }
}

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

use super::db::{Db, Meta, RawEntry, Snapshot};
use super::input::{Direction, EventView, Input};
use super::state::Folder;
use super::ProjectionError;
use crate::store::{DatabaseUrl, EntryKind, LogEntry};
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Instant;

/// Tuning of the engine; the defaults suit a 2-core server.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// Log entries read per query.
    pub page: i64,
    /// Entries folded between two writes of states + checkpoint during catch-up and
    /// rebuild: bigger is faster, smaller holds SQLite's write lock for less time.
    pub flush_every: i64,
    /// The same for a rebuild. Its intermediate writes only bound memory (a rebuild that
    /// stops starts again from zero or a snapshot), and every write rewrites each state
    /// changed since the last, so fewer is much faster.
    pub rebuild_flush_every: i64,
    /// States kept in memory between flushes beyond which clean ones are dropped.
    pub max_cached: usize,
    /// Rebuild only: keep a snapshot every this many `seq`s (0: none).
    pub snapshot_every: i64,
    /// Snapshots kept per projection (the oldest go first).
    pub keep_snapshots: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            page: 10_000,
            flush_every: 50_000,
            rebuild_flush_every: 5_000_000,
            max_cached: 200_000,
            snapshot_every: 0,
            keep_snapshots: 4,
        }
    }
}

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

pub struct Engine {
    db: Db,
    /// Where a rebuild's reader opens its own connection (none: read inline).
    prefetch: Option<DatabaseUrl>,
    folders: Vec<Box<dyn Folder>>,
    tracks: Vec<Track>,
    settings: EngineSettings,
}

/// Attempts at a write whose checks fail because someone else moved the projection.
const MAX_CONFLICT_RETRIES: usize = 5;

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

    fn advance_once(
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

    /// Folds entries (contiguous, in order) into every enabled track behind them.
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
                Some(EntryKind::BlockApplied | EntryKind::BlockRolledBack) => None,
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
                    let mut load = |key: &str| db.load_row(name, generation, key);
                    folder.apply(input, &mut load)?;
                }
                track.cursor = entry.seq;
            }
        }
        Ok(())
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

fn meta_exists(t: &Track) -> bool {
    t.generation != 0
}

fn parse(seq: i64, body: &str) -> Result<EventView, ProjectionError> {
    EventView::parse(body).map_err(|e| ProjectionError::Corrupt(format!("entry {seq}: {e}")))
}

impl Engine {
    /// Folds every enabled projection up to the log's head (after a failure, or at start).
    pub fn catch_up(&mut self) -> Result<(), ProjectionError> {
        let head = self.db.head()?;
        self.advance(head, None, &mut |_, _| {})
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

/// A log entry with its event body parsed: what [`Engine::fold`] consumes.
pub(crate) struct Parsed {
    seq: i64,
    kind: i16,
    rollback_of: Option<i64>,
    /// The event, for an event entry.
    event: Option<EventView>,
}

impl Parsed {
    fn new(
        seq: i64,
        kind: i16,
        rollback_of: Option<i64>,
        body: &str,
    ) -> Result<Parsed, ProjectionError> {
        let event = if kind == EntryKind::Event as i16 {
            Some(parse(seq, body)?)
        } else {
            None
        };
        Ok(Parsed {
            seq,
            kind,
            rollback_of,
            event,
        })
    }
}

fn parse_all(raw: Vec<RawEntry>) -> Result<Vec<Parsed>, ProjectionError> {
    raw.into_iter()
        .map(|r| Parsed::new(r.seq, r.kind, r.rollback_of, &r.body))
        .collect()
}

/// Where a page that starts after `start` must end: `to`, or the next multiple of
/// `every` (snapshot boundaries) when that comes first.
fn page_stop(start: i64, to: i64, every: i64) -> i64 {
    if every > 0 {
        to.min((start / every + 1) * every)
    } else {
        to
    }
}

/// Pages read and parsed ahead on a thread with a connection of its own. Pages follow the
/// same boundaries ([`page_stop`]) as the folding loop, so they line up with it.
struct Reader {
    pages: mpsc::Receiver<Result<Vec<Parsed>, ProjectionError>>,
}

/// Pages read ahead of the fold: enough to hide one query's latency, little memory.
const READ_AHEAD_PAGES: usize = 3;

impl Reader {
    fn spawn(url: DatabaseUrl, start: i64, to: i64, page: i64, every: i64) -> Reader {
        let (tx, rx) = mpsc::sync_channel(READ_AHEAD_PAGES);
        let spawned = std::thread::Builder::new()
            .name("replay-reader".into())
            .spawn(move || {
                let mut db = match Db::open(&url, std::time::Duration::from_secs(10)) {
                    Ok(db) => db,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let mut cursor = start;
                while cursor < to {
                    let stop = page_stop(cursor, to, every);
                    let result = db
                        .read_log(cursor, page.min(stop - cursor).max(1))
                        .and_then(parse_all);
                    match result {
                        Ok(p) if p.is_empty() => return,
                        Ok(p) => {
                            cursor = p.last().map_or(cursor, |e| e.seq);
                            if tx.send(Ok(p)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            let (tx, rx) = mpsc::sync_channel(1);
            let _ = tx.send(Err(ProjectionError::Unavailable(format!(
                "cannot start the reader: {e}"
            ))));
            return Reader { pages: rx };
        }
        Reader { pages: rx }
    }

    /// The next page; empty once the reader reached `to` or the end of the log.
    fn next_page(&mut self) -> Result<Vec<Parsed>, ProjectionError> {
        self.pages.recv().unwrap_or_else(|_| Ok(Vec::new()))
    }
}

//! How the engine is tuned: page size, flush intervals, cache bound, snapshots.

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

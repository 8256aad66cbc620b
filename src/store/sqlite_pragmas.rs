//! Every SQLite connection's settings, decided here and nowhere else.
//!
//! Each connection to the file has one role, and the role decides its pragmas:
//!
//! | role | busy_timeout | journal_mode | synchronous | other |
//! |---|---|---|---|---|
//! | [`Reader`](SqliteRole::Reader) (pooled reads) | configured | WAL | FULL | foreign_keys |
//! | [`Appender`](SqliteRole::Appender) (the log's one writer) | configured | WAL | FULL | foreign_keys, 64 MiB cache, no autocheckpoint, journal_size_limit |
//! | [`Checkpointer`](SqliteRole::Checkpointer) | configured | (the file's) | FULL | |
//! | [`Migrations`](SqliteRole::Migrations) | configured | WAL | (default) | |
//! | [`Projections`](SqliteRole::Projections) (the projection engine) | configured | WAL | NORMAL | |
//!
//! Why they differ:
//! - WAL lets readers run beside the appender; `journal_mode` is stored in the file, so a
//!   connection that only follows an opened file (the checkpointer) need not set it.
//! - `synchronous = FULL` makes a commit of the log durable before the webhook answers 200.
//!   The projection engine uses NORMAL: in WAL mode its commits stay atomic (a killed
//!   process loses nothing); only an OS crash may lose its newest commits, which it re-folds
//!   from its checkpoint, because the log itself was written FULL.
//! - The appender's page cache: the address index takes one insert per principal per event,
//!   spread over as many leaf pages as there are busy principals; with SQLite's 2 MiB default
//!   a group re-reads most of them from the OS.
//! - The appender never checkpoints (`wal_autocheckpoint = 0`): a thread of its own does,
//!   off the commit path ([`super::checkpoint`]); when the WAL starts over, a file that grew
//!   past the limit is cut back to it (`journal_size_limit`).

use std::time::Duration;

/// The appender's page cache, in KiB.
const APPENDER_CACHE_KIB: u32 = 64 * 1024;

/// What a SQLite connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqliteRole {
    Reader,
    Appender,
    Checkpointer,
    Migrations,
    Projections,
}

/// The pragmas a connection of `role` runs first, as one batch. `wal_limit_bytes` is used
/// by the appender only.
pub(crate) fn pragmas(role: SqliteRole, busy_timeout: Duration, wal_limit_bytes: u64) -> String {
    let busy = format!("PRAGMA busy_timeout = {};", busy_timeout.as_millis());
    match role {
        SqliteRole::Reader => {
            format!("{busy} PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        }
        SqliteRole::Appender => format!(
            "{busy} PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -{APPENDER_CACHE_KIB}; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA journal_size_limit = {wal_limit_bytes};"
        ),
        SqliteRole::Checkpointer => format!("{busy} PRAGMA synchronous = FULL;"),
        SqliteRole::Migrations => format!("{busy} PRAGMA journal_mode = WAL;"),
        SqliteRole::Projections => format!("{busy} PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"),
    }
}

#[cfg(test)]
mod tests {
    use super::{pragmas, SqliteRole};
    use std::time::Duration;

    /// Only the log's connections write with FULL durability; the projection engine trades it
    /// for speed because it can re-fold from the log.
    #[test]
    fn only_the_projection_engine_relaxes_durability() {
        let busy = Duration::from_millis(2_000);
        for role in [SqliteRole::Reader, SqliteRole::Appender, SqliteRole::Checkpointer] {
            assert!(pragmas(role, busy, 1).contains("synchronous = FULL"), "{role:?}");
        }
        assert!(pragmas(SqliteRole::Projections, busy, 1).contains("synchronous = NORMAL"));
        for role in [SqliteRole::Reader, SqliteRole::Appender, SqliteRole::Checkpointer, SqliteRole::Migrations, SqliteRole::Projections] {
            assert!(pragmas(role, busy, 1).starts_with("PRAGMA busy_timeout = 2000;"), "{role:?}");
        }
        let appender = pragmas(SqliteRole::Appender, busy, 64 << 20);
        assert!(appender.contains("wal_autocheckpoint = 0") && appender.contains("journal_size_limit = 67108864"));
    }
}

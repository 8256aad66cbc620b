//! Reading the log as the engine folds it: entries with their event bodies parsed, page
//! boundaries, and the reader that reads and parses ahead on a connection of its own.

use crate::projections::db::{Db, RawEntry};
use crate::projections::input::EventView;
use crate::projections::ProjectionError;
use crate::model::EntryKind;
use crate::store::DatabaseUrl;
use std::sync::mpsc;

/// A log entry with its event body parsed: what [`Engine::fold`](super::Engine::fold) consumes.
pub(super) struct Parsed {
    pub(super) seq: i64,
    pub(super) kind: i16,
    pub(super) rollback_of: Option<i64>,
    /// The event, for an event entry.
    pub(super) event: Option<EventView>,
}

impl Parsed {
    pub(super) fn new(
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

pub(super) fn parse(seq: i64, body: &str) -> Result<EventView, ProjectionError> {
    EventView::parse(body).map_err(|e| ProjectionError::Corrupt(format!("entry {seq}: {e}")))
}

pub(super) fn parse_all(raw: Vec<RawEntry>) -> Result<Vec<Parsed>, ProjectionError> {
    raw.into_iter()
        .map(|r| Parsed::new(r.seq, r.kind, r.rollback_of, &r.body))
        .collect()
}

/// Where a page that starts after `start` must end: `to`, or the next multiple of
/// `every` (snapshot boundaries) when that comes first.
pub(super) fn page_stop(start: i64, to: i64, every: i64) -> i64 {
    if every > 0 {
        to.min((start / every + 1) * every)
    } else {
        to
    }
}

/// Pages read and parsed ahead on a thread with a connection of its own. Pages follow the
/// same boundaries ([`page_stop`]) as the folding loop, so they line up with it.
pub(super) struct Reader {
    pages: mpsc::Receiver<Result<Vec<Parsed>, ProjectionError>>,
}

/// Pages read ahead of the fold: enough to hide one query's latency, little memory.
const READ_AHEAD_PAGES: usize = 3;

impl Reader {
    pub(super) fn spawn(url: DatabaseUrl, start: i64, to: i64, page: i64, every: i64) -> Reader {
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
    pub(super) fn next_page(&mut self) -> Result<Vec<Parsed>, ProjectionError> {
        self.pages.recv().unwrap_or_else(|_| Ok(Vec::new()))
    }
}

//! Where a group commit's time goes, logged at debug level
//! (`RUST_LOG=timebank_realtime=debug`).

use std::time::Instant;

#[derive(Clone, Copy)]
pub(super) enum Phase {
    Begin,
    Load,
    Plan,
    Write,
    Commit,
}

/// Time per phase of one group. `plan_us` is the first stretch's planning; the later
/// stretches are planned while earlier ones are written, inside `write_us`. `commit_us`
/// holds the last stretch's rows with the COMMIT (one call on SQLite).
pub(super) struct Phases {
    payloads: usize,
    last: Instant,
    micros: [u128; 5],
}

impl Phases {
    pub(super) fn start(payloads: usize) -> Phases {
        Phases { payloads, last: Instant::now(), micros: [0; 5] }
    }

    /// Counts the time since the last lap as `phase`'s.
    pub(super) fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        self.micros[phase as usize] += now.duration_since(self.last).as_micros();
        self.last = now;
    }

    pub(super) fn log(&self, entries: usize) {
        let [begin_us, load_us, plan_us, write_us, commit_us] = self.micros;
        tracing::debug!(payloads = self.payloads, entries, begin_us, load_us, plan_us, write_us, commit_us, "group appended");
    }
}

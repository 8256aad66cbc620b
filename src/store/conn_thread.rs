//! A thread that runs one connection's work in the order it was handed over.

use diesel::sqlite::SqliteConnection;
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};

/// The appender's SQLite connection, whose work runs on a thread of its own ([`ConnThread`]).
pub(crate) type SqliteWriteConn = SyncConnectionWrapper<SqliteConnection, ConnThread>;

type Job = Box<dyn FnOnce() + Send>;

/// Runs one connection's work on a thread of its own, in the order it was handed over.
///
/// The appender's SQLite connection uses it instead of tokio's blocking pool. The order is
/// kept, so the appender can hand over a stretch of rows and go on planning the next without
/// waiting for the first to be written: the rows, a later lookup and the COMMIT run one
/// after the other as handed over. And while the appender keeps it fed, the thread goes from
/// one job to the next without sleeping, where each hand-over to the pool woke a thread, a
/// cost that is large on a machine with few cores (docs/benchmarks.md).
///
/// A short job the appender is going to wait for with nothing to do meanwhile (a group's
/// BEGIN, which reads the head) it runs on its own thread instead ([`RunInline`]): once the
/// jobs handed over before it have run, the next job runs right there, in order still,
/// without two hand-overs between threads. The COMMIT is not run that way: it measured
/// slower. While it runs a job the appender's thread handles no message: a BEGIN that waits
/// for another process's write lock holds it up to `SQLITE_BUSY_TIMEOUT_MS`.
///
/// Each job is handed over when `spawn_blocking` is called, not when its future is first
/// polled, and runs even if the future is dropped. The thread ends with its connection
/// (when the last sender is dropped). A job that panics is answered with an error, as by
/// tokio's pool, and the thread goes on.
pub(crate) struct ConnThread {
    jobs: std::sync::mpsc::SyncSender<Job>,
    shared: std::sync::Arc<ConnThreadState>,
}

#[derive(Default)]
struct ConnThreadState {
    /// Jobs handed to the thread and not finished.
    outstanding: std::sync::Mutex<usize>,
    finished: std::sync::Condvar,
    /// Run the next job on the caller's thread.
    inline_next: std::sync::atomic::AtomicBool,
}

impl ConnThreadState {
    fn outstanding(&self) -> std::sync::MutexGuard<'_, usize> {
        self.outstanding.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Makes a [`ConnThread`]'s next job run on the thread that hands it over, after the jobs
/// handed over before it; that thread blocks meanwhile.
#[derive(Clone)]
pub(crate) struct RunInline(std::sync::Arc<ConnThreadState>);

impl RunInline {
    pub(crate) fn next_job(&self) {
        self.0.inline_next.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Jobs a [`ConnThread`] holds before `spawn_blocking` waits for room. The appender hands
/// over at most one group's stretches (about ten), a lookup and the COMMIT at a time.
const CONN_THREAD_JOBS: usize = 64;

impl ConnThread {
    pub(crate) fn start() -> (ConnThread, RunInline) {
        let shared = std::sync::Arc::new(ConnThreadState::default());
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(CONN_THREAD_JOBS);
        let state = shared.clone();
        let spawned = std::thread::Builder::new().name("sqlite-appender".into()).spawn(move || {
            while let Ok(job) = queue.recv() {
                // A panic drops the job's answer channel: its caller gets an error.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                let mut outstanding = state.outstanding();
                *outstanding -= 1;
                if *outstanding == 0 {
                    state.finished.notify_all();
                }
            }
        });
        if let Err(e) = spawned {
            // The queue is gone with the closure: every job is answered with an error.
            tracing::error!(error = %e, "could not start the SQLite appender's thread");
        }
        let inline = RunInline(shared.clone());
        (ConnThread { jobs, shared }, inline)
    }
}

impl SpawnBlocking for ConnThread {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        if self.shared.inline_next.swap(false, std::sync::atomic::Ordering::AcqRel) {
            let mut outstanding = self.shared.outstanding();
            while *outstanding > 0 {
                outstanding = self.shared.finished.wait(outstanding).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            drop(outstanding);
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task))
                .map_err(|_| "the connection's job failed".into());
            return Box::pin(std::future::ready(done));
        }
        *self.shared.outstanding() += 1;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(move || {
            let _ = answer.send(task());
        }));
        if sent.is_err() {
            *self.shared.outstanding() -= 1;
        }
        Box::pin(async move {
            sent.map_err(|_| "the connection's thread has stopped")?;
            answered.await.map_err(|_| "the connection's job failed".into())
        })
    }

    fn get_runtime() -> Self {
        ConnThread::start().0
    }
}

#[cfg(test)]
mod tests {
    use super::ConnThread;
    use diesel_async::sync_connection_wrapper::SpawnBlocking;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Jobs run in the order handed over, and a job run on the caller's thread waits for the
    /// ones handed to the connection's thread before it.
    #[tokio::test]
    async fn jobs_keep_their_order_inline_or_not() {
        let (mut thread, inline) = ConnThread::start();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = |n: u32, pause: u64| {
            let seen = seen.clone();
            move || {
                std::thread::sleep(Duration::from_millis(pause));
                seen.lock().expect("not poisoned").push((n, std::thread::current().name().map(str::to_string)));
                n
            }
        };
        let first = thread.spawn_blocking(record(1, 50));
        let second = thread.spawn_blocking(record(2, 0));
        inline.next_job();
        let third = thread.spawn_blocking(record(3, 0));
        let fourth = thread.spawn_blocking(record(4, 0));
        assert_eq!(third.await.expect("inline job"), 3);
        assert_eq!(fourth.await.expect("job"), 4);
        assert_eq!((first.await.expect("job"), second.await.expect("job")), (1, 2));
        let seen = seen.lock().expect("not poisoned").clone();
        let order: Vec<u32> = seen.iter().map(|(n, _)| *n).collect();
        assert_eq!(order, [1, 2, 3, 4]);
        let here = std::thread::current().name().map(str::to_string);
        assert_eq!(seen[2].1, here, "the inline job ran on the caller's thread");
        assert_eq!(seen[0].1.as_deref(), Some("sqlite-appender"));
        assert_eq!(seen[3].1.as_deref(), Some("sqlite-appender"), "only the next job runs inline");
    }
}

//! When the writer's log is folded into the database (checkpoints), and by which thread.
//!
//! SQLite's own rule checkpoints on the committing thread whenever a commit leaves 1000 frames
//! (4 MiB) or more in the log. Under sustained ingest that thread is the one every
//! acknowledgement waits on, and each checkpoint copies again the pages every transaction
//! touches (the last leaf of each operation's index range, the trace-id index, the summary
//! counters): 1,000,000 spans wrote 1.5 GB through it for 78 MB stored. So:
//!
//! - under sustained load the writer checkpoints only once the log reaches
//!   [`Rule::catch_up_frames`] (64 MiB), copying those hot pages once per 64 MiB rather than
//!   once per 4 (2,000,000 spans: 3.56 → 2.68 GB written, ≈ +20–30 % spans a second);
//! - whenever the writer goes quiet ([`Rule::quiet`] without a commit) with at least
//!   [`Rule::quiet_frames`] in the log, a thread of this module folds the log in with a PASSIVE
//!   checkpoint on a connection of its own (it never blocks the writer or a reader), so light
//!   and bursty use keeps a short log, as before, and the next transaction starts it anew.
//!
//! Durability does not change: a commit is durable once its frames are synced into the log;
//! a checkpoint only moves them. The thread starts with the first commit that needs it, so a
//! short-lived writer (`devtrace run`'s few spans) never starts one, and it stops, closing its
//! connection, before the writer's connection closes (see `SqliteWriter`'s field order): the
//! last connection to close decides whether the log is folded in and deleted
//! (`keep_log_at_close`).

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// When the log is folded in; see the module's documentation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rule {
    /// Frames in the log from which the writer checkpoints itself after a commit.
    pub catch_up_frames: c_int,
    /// Frames in the log from which a quiet writer's log is folded in by the thread.
    pub quiet_frames: c_int,
    /// How long the writer goes without a commit before the thread checkpoints.
    pub quiet: Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            // 64 MiB of 4 KiB pages: measured against 4, 16, 32 and 128 MiB (PERFORMANCE.md).
            catch_up_frames: 16_384,
            // SQLite's default automatic checkpoint.
            quiet_frames: 1000,
            quiet: Duration::from_millis(250),
        }
    }
}

/// The checkpointing thread of one writer connection; stopped and joined when dropped.
pub(super) struct Checkpoints {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    quiet: Duration,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Commits that asked for the thread, counted; the thread compares to see if it is quiet.
    commits: u64,
    /// `commits` when the thread last checkpointed.
    checkpointed_at: u64,
    stop: bool,
    /// The thread could not start or open its connection (the writer's catch-up still bounds
    /// the log).
    unavailable: bool,
    thread: Option<JoinHandle<()>>,
    /// Checkpoints the thread has run.
    runs: u64,
}

impl Checkpoints {
    /// Replaces SQLite's automatic checkpoint on `conn`, the writer's connection to the
    /// database at `path`, with `rule`.
    pub(super) fn install(
        conn: &mut Connection,
        path: &Path,
        rule: Rule,
    ) -> rusqlite::Result<Self> {
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            quiet: rule.quiet,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let hook = Arc::clone(&shared);
        conn.wal_hook(Some(move |wal: &mut Wal, frames: c_int| {
            if frames >= rule.catch_up_frames {
                // The commit has happened whatever this returns; an error here (SQLITE_BUSY
                // while the thread's checkpoint runs) would only make it look failed. The
                // next commit tries again.
                let _ = wal.checkpoint();
            } else if frames >= rule.quiet_frames {
                Shared::committed(&hook);
            }
            Ok(())
        }))?;
        Ok(Self { shared })
    }

    /// Checkpoints the thread has run so far.
    #[cfg(test)]
    pub(super) fn runs(&self) -> u64 {
        self.shared.lock().runs
    }

    /// Runs `work` with the thread stopped (a checkpoint of another mode cannot run beside a
    /// passive one: SQLite answers SQLITE_BUSY at once); the next commit that needs the thread
    /// starts it again.
    pub(super) fn paused<T>(&self, work: impl FnOnce() -> T) -> T {
        self.stop();
        let result = work();
        self.shared.lock().stop = false;
        result
    }

    /// Stops the thread (after the checkpoint it is running) and closes its connection.
    pub(super) fn stop(&self) {
        let thread = {
            let mut state = self.shared.lock();
            state.stop = true;
            state.thread.take()
        };
        self.shared.wake.notify_one();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the thread of a commit, starting it the first time.
    fn committed(shared: &Arc<Self>) {
        let mut state = shared.lock();
        if state.unavailable || state.stop {
            return;
        }
        if state.thread.is_none() {
            let for_thread = Arc::clone(shared);
            match std::thread::Builder::new()
                .name("devtrace-checkpoint".into())
                .spawn(move || for_thread.run())
            {
                Ok(thread) => state.thread = Some(thread),
                Err(error) => {
                    tracing::warn!(%error, "could not start the checkpointing thread; the writer folds the log in at its catch-up size");
                    state.unavailable = true;
                    return;
                }
            }
        }
        state.commits += 1;
        drop(state);
        shared.wake.notify_one();
    }

    fn run(&self) {
        let conn = match self.open() {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "the checkpointing thread could not open the store; the writer folds the log in at its catch-up size");
                self.lock().unavailable = true;
                return;
            }
        };
        while self.next_quiet_moment() {
            // PASSIVE never waits; SQLITE_BUSY means the writer is catching up itself.
            if let Err(error) = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)
                && error.sqlite_error_code() != Some(rusqlite::ErrorCode::DatabaseBusy)
            {
                tracing::warn!(%error, "checkpoint of a quiet writer's log failed; the writer folds it in later");
            }
            self.lock().runs += 1;
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        // As the writer's: a checkpoint syncs what it copied before the log may start again.
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(conn)
    }

    /// Waits for a commit since the last checkpoint and then for `quiet` without another;
    /// false once the thread is to stop.
    fn next_quiet_moment(&self) -> bool {
        let mut state = self.lock();
        loop {
            if state.stop {
                return false;
            }
            if state.commits == state.checkpointed_at {
                state = self.wait(state, None);
                continue;
            }
            let seen = state.commits;
            state = self.wait(state, Some(self.quiet));
            if state.commits == seen && !state.stop {
                state.checkpointed_at = seen;
                return true;
            }
        }
    }

    fn wait<'a>(
        &self,
        state: MutexGuard<'a, State>,
        most: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        match most {
            None => self.wake.wait(state).unwrap_or_else(|p| p.into_inner()),
            Some(most) => {
                self.wake
                    .wait_timeout(state, most)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn wal_store(dir: &Path) -> (Connection, PathBuf) {
        let path = dir.join("log.db");
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("CREATE TABLE t (data BLOB)").unwrap();
        (conn, path)
    }

    /// One transaction of about `pages` pages.
    fn commit_pages(conn: &Connection, pages: usize) {
        conn.execute(
            "INSERT INTO t VALUES (zeroblob(?1))",
            [(pages * PAGE) as i64],
        )
        .unwrap();
    }

    /// Frames of the log's current generation, read from its file (a log that starts again
    /// keeps its file and writes over it, with new salts).
    fn log_frames(path: &Path) -> usize {
        let mut log = path.as_os_str().to_owned();
        log.push("-wal");
        let bytes = std::fs::read(log).unwrap_or_default();
        let Some(salts) = bytes.get(16..24) else {
            return 0;
        };
        let frame = 24 + PAGE;
        (0..)
            .map(|i| 32 + i * frame)
            .take_while(|at| bytes.get(at + 8..at + 16) == Some(salts) && at + frame <= bytes.len())
            .count()
    }

    fn never_quiet(catch_up_frames: c_int) -> Rule {
        Rule {
            catch_up_frames,
            quiet_frames: c_int::MAX,
            quiet: Duration::from_secs(3600),
        }
    }

    #[test]
    fn a_busy_writer_folds_the_log_in_itself_once_it_reaches_the_catch_up_size() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, path) = wal_store(dir.path());
        let checkpoints = Checkpoints::install(&mut conn, &path, never_quiet(40)).unwrap();
        let mut seen = Vec::new();
        for _ in 0..30 {
            commit_pages(&conn, 5);
            seen.push(log_frames(&path));
        }
        // Six or seven frames a transaction: the log reaches 40 and then starts again, where
        // SQLite's own rule (1000 frames) would have let it grow to 200.
        assert!(seen.iter().all(|&f| f < 40 + 8), "{seen:?}");
        assert!(
            seen.windows(2).any(|w| w[1] < w[0]),
            "never started again: {seen:?}"
        );
        assert_eq!(checkpoints.runs(), 0, "the thread is for a quiet writer");
    }

    #[test]
    fn a_quiet_writer_s_log_is_folded_in_by_the_thread_and_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, path) = wal_store(dir.path());
        let rule = Rule {
            catch_up_frames: c_int::MAX,
            quiet_frames: 10,
            quiet: Duration::from_millis(20),
        };
        let checkpoints = Checkpoints::install(&mut conn, &path, rule).unwrap();
        for _ in 0..3 {
            commit_pages(&conn, 5);
        }
        let before = log_frames(&path);
        assert!(before >= 15, "{before}");
        let waited = std::time::Instant::now();
        while checkpoints.runs() == 0 {
            assert!(waited.elapsed() < Duration::from_secs(30), "no checkpoint");
            std::thread::sleep(Duration::from_millis(10));
        }
        commit_pages(&conn, 1);
        let after = log_frames(&path);
        assert!(
            after < 5,
            "the log did not start again: {before} then {after} frames"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 4);
    }
}

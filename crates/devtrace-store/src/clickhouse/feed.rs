//! Live updates across nodes on ClickHouse, which has no notifications: every write ends by
//! appending one row per project to `commits` (its spans and logs; the time and a random id
//! filled in by the server), after every insert of the write was acknowledged. [`start`]
//! polls that table on a thread of its own with a bounded query at a short interval and adds
//! up, per project, the spans it reports: whichever node wrote them, every node's event
//! streams see them — as PostgreSQL's `LISTEN/NOTIFY` does (`postgres::listen`).
//!
//! Each poll reads the rows newer than the newest seen minus [`OVERLAP`] (a row is timed when
//! the server evaluates its insert, and may become visible a little after rows timed later),
//! at most [`LIMIT`] of them, and counts each id once. A row that became visible more than
//! [`OVERLAP`] after its time is not counted: a live view then shows it at its next read, as
//! it would without the feed. The table keeps a day of rows (TTL).

use super::http::Server;
use super::rowbinary::{Reader, Rows};
use crate::listener::CommitListener;
use crate::{ProjectId, Result};
use std::collections::HashMap;
use std::time::Duration;

/// How often each node asks for new commits.
const POLL: Duration = Duration::from_millis(250);

/// How far before the newest commit seen each poll reads again (nanoseconds).
const OVERLAP: u64 = 5_000_000_000;

/// The most rows one poll reads.
const LIMIT: usize = 10_000;

/// Appends a write's commit rows: spans and logs stored per project. Called once every insert
/// of the write succeeded, so a listener never hears of rows that are not there.
pub(crate) fn record(server: &Server, committed: &HashMap<i64, (u64, u64)>) -> Result<()> {
    let mut rows = Rows::default();
    for (project, (spans, logs)) in committed {
        if (*spans, *logs) != (0, 0) {
            rows.row().i64(*project).u64(*spans).u64(*logs);
        }
    }
    server.insert("commits", "project, spans, logs", &rows)
}

/// Connects and starts polling from now; fails when the server cannot be reached now (later
/// failures are retried on the thread).
pub fn start(url: &str) -> Result<CommitListener> {
    let db = super::ClickHouse::open(url)?;
    let answer = db.server.query(
        "SELECT toUnixTimestamp64Nano(now64(9)) FORMAT RowBinary",
        &[],
    )?;
    let mut polled = Polled {
        newest: Reader::new(&answer).i64()?.max(0) as u64,
        seen: HashMap::new(),
        full: false,
    };
    let (listener, heard) = CommitListener::new();
    std::thread::Builder::new()
        .name("devtrace-commits".into())
        .spawn(move || {
            let mut backoff = POLL;
            while !heard.stopped() {
                std::thread::sleep(backoff);
                match polled.poll(&db.server) {
                    Ok(found) => {
                        for (project, spans) in found {
                            heard.add(project, spans);
                        }
                        backoff = POLL;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "reading the commit feed failed; retrying");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
        .map_err(|e| crate::StoreError::Io {
            context: "starting the commit feed poller".into(),
            source: e,
        })?;
    Ok(listener)
}

/// Where the poller is: the newest commit time seen, the ids of commits inside the overlap
/// (counted already), and whether the last poll hit [`LIMIT`].
struct Polled {
    newest: u64,
    seen: HashMap<[u8; 16], u64>,
    full: bool,
}

impl Polled {
    /// The spans of the commits not counted before, per project.
    fn poll(&mut self, server: &Server) -> Result<Vec<(ProjectId, u64)>> {
        // After a full poll, read on from the newest row rather than re-reading the overlap
        // (which may hold more than LIMIT rows).
        let since = if self.full {
            self.newest
        } else {
            self.newest.saturating_sub(OVERLAP)
        };
        let answer = server.query(
            &format!(
                "SELECT commit_id, at_ns, project, spans FROM commits WHERE at_ns >= {{since:UInt64}}
                 ORDER BY at_ns LIMIT {LIMIT} FORMAT RowBinary"
            ),
            &[("since", since.to_string())],
        )?;
        let mut rows = Reader::new(&answer);
        let mut found = Vec::new();
        let mut read = 0;
        while !rows.done() {
            let id: [u8; 16] = rows.fixed()?;
            let at = rows.u64()?;
            let project = ProjectId(rows.i64()?);
            let spans = rows.u64()?;
            read += 1;
            self.newest = self.newest.max(at);
            if self.seen.insert(id, at).is_none() && spans > 0 {
                found.push((project, spans));
            }
        }
        self.full = read == LIMIT;
        let oldest_kept = self.newest.saturating_sub(OVERLAP);
        self.seen.retain(|_, at| *at >= oldest_kept);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ChWriter, testing};
    use super::*;

    #[test]
    fn a_listener_hears_commits_of_another_writer_once() {
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_database(&url);
        let mut writer = ChWriter::open(&url).unwrap();
        let listener = start(&url).unwrap();
        crate::listener::testing::hears_another_writers_commits_once(&mut writer, &listener);
    }
}

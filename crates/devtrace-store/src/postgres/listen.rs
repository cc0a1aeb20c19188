//! Live updates across nodes: every write transaction ends with `pg_notify(channel, …)`,
//! which PostgreSQL delivers to every listening connection when the transaction commits (and
//! never if it rolls back). [`PgListener`] holds one such connection on a thread of its own and
//! adds up, per project, the spans the notifications report: whichever node committed them,
//! every node's event streams see them.
//!
//! The payload is `project:spans:logs` per project, comma-separated. The channel is named
//! after the schema (a hash of it: channel names are short), so stores in different schemas
//! of one database do not hear each other.

use super::{Conn, Database};
use crate::writer::CommitFeed;
use crate::{ProjectId, Result};
use postgres::fallible_iterator::FallibleIterator;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The channel devtrace notifies in for the connection's current schema.
pub(crate) fn channel(conn: &mut Conn) -> Result<String> {
    let schema: String = conn
        .client
        .query_one("SELECT current_schema()", &[])?
        .get(0);
    let hash = blake3::hash(schema.as_bytes()).to_hex();
    Ok(format!("devtrace_{}", &hash[..16]))
}

/// Committed spans per project heard from every node; stops listening when dropped.
pub struct PgListener {
    counts: Arc<Mutex<HashMap<ProjectId, u64>>>,
    stop: Arc<AtomicBool>,
}

/// How long the listening thread waits for a notification before checking whether to stop.
const POLL: Duration = Duration::from_millis(250);

impl PgListener {
    /// Connects and listens; fails when the database cannot be reached now (later failures
    /// are retried on the thread).
    pub fn start(url: &str) -> Result<Self> {
        let database = Database::parse(url)?;
        let mut conn = database.connect()?;
        let channel = channel(&mut conn)?;
        listen(&mut conn, &channel)?;
        let counts: Arc<Mutex<HashMap<ProjectId, u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_counts, thread_stop) = (Arc::clone(&counts), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("devtrace-listen".into())
            .spawn(move || run(database, conn, channel, thread_counts, thread_stop))
            .map_err(|e| crate::StoreError::Io {
                context: "starting the notification listener".into(),
                source: e,
            })?;
        Ok(Self { counts, stop })
    }
}

impl Drop for PgListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl CommitFeed for PgListener {
    fn committed_spans(&self, project: ProjectId) -> u64 {
        self.counts
            .lock()
            .expect("listener counts poisoned")
            .get(&project)
            .copied()
            .unwrap_or(0)
    }
}

fn listen(conn: &mut Conn, channel: &str) -> Result<()> {
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    conn.client.batch_execute(&format!("LISTEN {quoted}"))?;
    Ok(())
}

fn run(
    database: Database,
    mut conn: Conn,
    channel: String,
    counts: Arc<Mutex<HashMap<ProjectId, u64>>>,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(200);
    while !stop.load(Ordering::Relaxed) {
        let received: std::result::Result<Vec<String>, postgres::Error> = conn
            .client
            .notifications()
            .timeout_iter(POLL)
            .map(|n| Ok(n.payload().to_owned()))
            .collect();
        match received {
            Ok(payloads) => {
                let mut counts = counts.lock().expect("listener counts poisoned");
                for payload in payloads {
                    add(&mut counts, &payload);
                }
                backoff = Duration::from_millis(200);
            }
            Err(error) if conn.client.is_closed() => {
                tracing::warn!(%error, "lost the PostgreSQL notification connection; reconnecting");
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    match database
                        .connect()
                        .and_then(|mut c| listen(&mut c, &channel).map(|()| c))
                    {
                        Ok(fresh) => {
                            conn = fresh;
                            break;
                        }
                        Err(error) => tracing::warn!(%error, "reconnecting the listener failed"),
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading notifications failed");
                std::thread::sleep(backoff);
            }
        }
    }
}

/// Adds a notification's `project:spans:logs,…` to the counts (malformed parts are ignored).
fn add(counts: &mut HashMap<ProjectId, u64>, payload: &str) {
    for part in payload.split(',') {
        let mut fields = part.split(':');
        let (Some(project), Some(spans)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(project), Ok(spans)) = (project.parse::<i64>(), spans.parse::<i64>()) else {
            continue;
        };
        if spans > 0 {
            *counts.entry(ProjectId(project)).or_default() += spans as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PgWriter, testing};
    use super::*;
    use crate::conformance::{batch, span};
    use crate::{StoreWriter, prepare_spans};

    #[test]
    fn payloads_add_up_per_project() {
        let mut counts = HashMap::new();
        add(&mut counts, "1:10:0,2:3:1");
        add(&mut counts, "1:5:0,garbage,3:-4:0");
        assert_eq!(counts.get(&ProjectId(1)), Some(&15));
        assert_eq!(counts.get(&ProjectId(2)), Some(&3));
        assert_eq!(counts.get(&ProjectId(3)), None);
    }

    #[test]
    fn a_listener_hears_commits_of_another_writer_and_not_rollbacks() {
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_schema(&url);
        let mut writer = PgWriter::open(&url).unwrap();
        let listener = PgListener::start(&url).unwrap();
        writer
            .write(&[prepare_spans(batch(
                "s",
                vec![span(1, 1, None, "a", 1, 2), span(1, 2, Some(1), "b", 1, 2)],
            ))
            .in_project(ProjectId(7))])
            .unwrap();
        // A failing transaction notifies no one.
        let mut bad = prepare_spans(batch("s", vec![span(2, 1, None, "c", 1, 2)]));
        bad.traces[0].span_count = u64::MAX;
        assert!(writer.write(&[bad]).is_err());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while listener.committed_spans(ProjectId(7)) < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(listener.committed_spans(ProjectId(7)), 2);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(listener.committed_spans(ProjectId::DEFAULT), 0);
    }
}

//! Live updates across nodes: every write transaction ends with `pg_notify(channel, …)`,
//! which PostgreSQL delivers to every listening connection when the transaction commits (and
//! never if it rolls back). [`start`] holds one such connection on a thread of its own and adds
//! up, per project, the spans the notifications report: whichever node committed them, every
//! node's event streams see them.
//!
//! The payload is `project:spans:logs` per project, comma-separated. The channel is named
//! after the schema (a hash of it: channel names are short), so stores in different schemas
//! of one database do not hear each other.

use super::{Conn, Database};
use crate::listener::{CommitListener, Heard};
use crate::{ProjectId, Result};
use postgres::fallible_iterator::FallibleIterator;
use std::sync::Arc;
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

/// How long the listening thread waits for a notification before checking whether to stop.
const POLL: Duration = Duration::from_millis(250);

/// Connects and listens; fails when the database cannot be reached now (later failures are
/// retried on the thread).
pub fn start(url: &str) -> Result<CommitListener> {
    let database = Database::parse(url)?;
    let mut conn = database.connect()?;
    let channel = channel(&mut conn)?;
    listen(&mut conn, &channel)?;
    let (listener, heard) = CommitListener::new();
    std::thread::Builder::new()
        .name("devtrace-listen".into())
        .spawn(move || run(database, conn, channel, heard))
        .map_err(|e| crate::StoreError::Io {
            context: "starting the notification listener".into(),
            source: e,
        })?;
    Ok(listener)
}

fn listen(conn: &mut Conn, channel: &str) -> Result<()> {
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    conn.client.batch_execute(&format!("LISTEN {quoted}"))?;
    Ok(())
}

fn run(database: Database, mut conn: Conn, channel: String, heard: Arc<Heard>) {
    let mut backoff = Duration::from_millis(200);
    while !heard.stopped() {
        let received: std::result::Result<Vec<String>, postgres::Error> = conn
            .client
            .notifications()
            .timeout_iter(POLL)
            .map(|n| Ok(n.payload().to_owned()))
            .collect();
        match received {
            Ok(payloads) => {
                for payload in payloads {
                    for (project, spans) in parse(&payload) {
                        heard.add(project, spans);
                    }
                }
                backoff = Duration::from_millis(200);
            }
            Err(error) if conn.client.is_closed() => {
                tracing::warn!(%error, "lost the PostgreSQL notification connection; reconnecting");
                loop {
                    if heard.stopped() {
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

/// A notification's `project:spans:logs,…` as spans per project (malformed parts, and parts
/// without spans, are left out).
fn parse(payload: &str) -> Vec<(ProjectId, u64)> {
    payload
        .split(',')
        .filter_map(|part| {
            let mut fields = part.split(':');
            let project = fields.next()?.parse::<i64>().ok()?;
            let spans = fields.next()?.parse::<i64>().ok()?;
            (spans > 0).then_some((ProjectId(project), spans as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{PgWriter, testing};
    use super::*;

    #[test]
    fn payloads_name_spans_per_project() {
        assert_eq!(
            parse("1:10:0,2:3:1"),
            [(ProjectId(1), 10), (ProjectId(2), 3)]
        );
        assert_eq!(parse("1:5:0,garbage,3:-4:0"), [(ProjectId(1), 5)]);
    }

    /// Commits are heard, rolled-back transactions (a refused write) are not.
    #[test]
    fn a_listener_hears_commits_of_another_writer_and_not_rollbacks() {
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_schema(&url);
        let mut writer = PgWriter::open(&url).unwrap();
        let listener = start(&url).unwrap();
        crate::listener::testing::hears_another_writers_commits_once(&mut writer, &listener);
    }
}

//! Where a store is: a data directory (the embedded SQLite store), a PostgreSQL URL (the
//! team store) or a ClickHouse URL (the scale-out store), and opening any behind the same
//! traits.

use crate::clickhouse::{ChStore, ChWriter};
use crate::postgres::{PgStore, PgWriter};
use crate::sqlite::{SqliteStore, SqliteWriter};
use crate::writer::CommitFeed;
use crate::{Accounts, ProjectId, Result, Store, StoreWriter};
use std::path::PathBuf;
use std::sync::Arc;

/// A store's location, as given by `--data DIR` or `--store URL|DIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store in this data directory.
    Embedded(PathBuf),
    /// A PostgreSQL database (`postgres://USER@HOST:PORT/DATABASE?options`, with the password
    /// after USER and a colon when the server asks for one).
    Postgres(String),
    /// A ClickHouse database over its HTTP interface
    /// (`clickhouse://USER@HOST:8123/DATABASE?SETTING=VALUE`, the password after the user as in a
    /// PostgreSQL URL; `clickhouses://` for TLS), and the PostgreSQL database that keeps its
    /// QA job queue, when one is named ([`StoreLocation::with_queue`]).
    ClickHouse { url: String, queue: Option<String> },
}

/// What a claim needs and ClickHouse lacks, for the messages about the queue store.
const QUEUE_WHY: &str = "the QA job queue needs a claim that hands each job to one worker, which ClickHouse cannot do atomically";

impl StoreLocation {
    /// `postgres://…` or `postgresql://…` is PostgreSQL, `clickhouse://…` or `clickhouses://…`
    /// ClickHouse; anything else is a data directory.
    pub fn parse(text: &str) -> Self {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Self::Postgres(text.trim().to_owned())
        } else if lower.starts_with("clickhouse://") || lower.starts_with("clickhouses://") {
            Self::ClickHouse {
                url: text.trim().to_owned(),
                queue: None,
            }
        } else {
            Self::Embedded(PathBuf::from(text))
        }
    }

    /// Names the PostgreSQL database (`--queue-store`, `queue-store` in the config) that keeps
    /// the QA job queue beside a ClickHouse store; `None` or an empty text changes nothing.
    /// Refused for the other stores (they keep their own queue) and for anything but a
    /// PostgreSQL URL; the message names the fix.
    pub fn with_queue(self, queue: Option<&str>) -> std::result::Result<Self, String> {
        let Some(queue) = queue.map(str::trim).filter(|q| !q.is_empty()) else {
            return Ok(self);
        };
        let named = Self::parse(queue);
        match self {
            Self::ClickHouse { url, .. } if matches!(named, Self::Postgres(_)) => {
                Ok(Self::ClickHouse {
                    url,
                    queue: Some(queue.to_owned()),
                })
            }
            Self::ClickHouse { .. } => Err(format!(
                "the queue store {} is not a PostgreSQL URL: {QUEUE_WHY}; name a PostgreSQL database (postgres://USER@HOST:5432/DATABASE, with :PASSWORD after USER)",
                devtrace_model::recorded::escape(&named.describe())
            )),
            other => Err(format!(
                "a queue store goes beside a ClickHouse store, and {} keeps its own QA queue: drop --queue-store (or queue-store in the config, DEVTRACE_QUEUE_STORE)",
                devtrace_model::recorded::escape(&other.describe())
            )),
        }
    }

    /// What to do when a store keeps no QA queue: a ClickHouse store without a queue store.
    pub fn missing_queue_hint(&self) -> Option<String> {
        match self {
            Self::ClickHouse { queue: None, .. } => Some(format!(
                "{QUEUE_WHY}; name a PostgreSQL database for it with --queue-store postgres://USER@HOST:5432/DATABASE (:PASSWORD after USER; or queue-store in the config, DEVTRACE_QUEUE_STORE)"
            )),
            _ => None,
        }
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Embedded(_))
    }

    /// For messages: the directory, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(dir) => dir.display().to_string(),
            Self::Postgres(url) | Self::ClickHouse { url, .. } => {
                crate::postgres::url_without_password(url)
            }
        }
    }

    /// The write side (created and migrated if needed), for the group-commit writer or an
    /// importer.
    pub fn open_writer(&self) -> Result<Box<dyn StoreWriter>> {
        Ok(match self {
            Self::Embedded(dir) => Box::new(SqliteWriter::open(dir)?),
            Self::Postgres(url) => Box::new(PgWriter::open(url)?),
            Self::ClickHouse { url, .. } => Box::new(ChWriter::open(url)?),
        })
    }

    /// The read side and the accounts of an existing store (an embedded store must exist; a
    /// PostgreSQL database gets devtrace's schema if it has none yet).
    pub fn open(&self) -> Result<Backend> {
        Ok(match self {
            Self::Embedded(dir) => {
                let store = Arc::new(SqliteStore::open(dir)?);
                Backend {
                    store: store.clone(),
                    accounts: store,
                }
            }
            Self::Postgres(url) => {
                let store = Arc::new(PgStore::open(url)?);
                Backend {
                    store: store.clone(),
                    accounts: store,
                }
            }
            Self::ClickHouse { url, queue } => {
                let store = Arc::new(ChStore::open_with_queue(url, queue.as_deref())?);
                Backend {
                    store: store.clone(),
                    accounts: store,
                }
            }
        })
    }

    /// Commits made by every node sharing this store, as they happen (PostgreSQL's
    /// notifications, ClickHouse's polled `commits` table); `None` for the embedded
    /// store, where the local writer sees every commit.
    pub fn listen(&self) -> Result<Option<Arc<dyn CommitFeed>>> {
        Ok(match self {
            Self::Embedded(_) => None,
            Self::Postgres(url) => Some(Arc::new(crate::postgres::listen::start(url)?)),
            Self::ClickHouse { url, .. } => Some(Arc::new(crate::clickhouse::feed::start(url)?)),
        })
    }
}

/// An opened store: what it holds and who may use it.
#[derive(Clone)]
pub struct Backend {
    /// Scoped to [`ProjectId::DEFAULT`]; [`Store::in_project`] gives the others.
    pub store: Arc<dyn Store>,
    pub accounts: Arc<dyn Accounts>,
}

/// A writer whose every batch goes to one project: importers and `devtrace run` write for the
/// project chosen on the command line. Batches already in that project pass unchanged.
pub struct ProjectWriter {
    inner: Box<dyn StoreWriter>,
    project: ProjectId,
}

impl ProjectWriter {
    pub fn new(inner: Box<dyn StoreWriter>, project: ProjectId) -> Self {
        Self { inner, project }
    }
}

impl StoreWriter for ProjectWriter {
    fn write(&mut self, batches: &[crate::WriteBatch]) -> Result<()> {
        if batches.iter().all(|b| b.project == self.project) {
            return self.inner.write(batches);
        }
        let owned: Vec<crate::WriteBatch> = batches
            .iter()
            .map(|b| b.clone().in_project(self.project))
            .collect();
        self.inner.write(&owned)
    }

    fn checkpoint(&mut self) -> Result<()> {
        self.inner.checkpoint()
    }

    fn keep_log_at_close(&mut self) {
        self.inner.keep_log_at_close()
    }

    fn chunk_use(&self) -> crate::ChunkUse {
        self.inner.chunk_use()
    }

    fn reclaim(&mut self) -> Result<()> {
        self.inner.reclaim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_anything_else_a_directory() {
        let with_password = ["postgres://u", ":secret", "@db:5432/devtrace"].concat();
        assert_eq!(
            StoreLocation::parse(&with_password),
            StoreLocation::Postgres(with_password.clone())
        );
        assert!(!StoreLocation::parse("PostgreSQL://db/x").is_embedded());
        assert_eq!(
            StoreLocation::parse("/var/lib/devtrace"),
            StoreLocation::Embedded("/var/lib/devtrace".into())
        );
        assert_eq!(
            StoreLocation::parse(&with_password).describe(),
            "postgres://u@db:5432/devtrace"
        );
        let clickhouse = ["clickhouses://u", ":secret", "@ch:8443/traces"].concat();
        assert_eq!(
            StoreLocation::parse(&clickhouse),
            StoreLocation::ClickHouse {
                url: clickhouse.clone(),
                queue: None
            }
        );
        assert!(!StoreLocation::parse("ClickHouse://ch/x").is_embedded());
        assert_eq!(
            StoreLocation::parse(&clickhouse).describe(),
            "clickhouses://u@ch:8443/traces"
        );
    }

    #[test]
    fn a_queue_store_goes_beside_a_clickhouse_store_only() {
        let clickhouse = StoreLocation::parse("clickhouse://u@ch:8123/traces");
        let queue = ["postgres://q", ":secret", "@db:5432/devtrace"].concat();
        assert_eq!(
            clickhouse.clone().with_queue(Some(&queue)).unwrap(),
            StoreLocation::ClickHouse {
                url: "clickhouse://u@ch:8123/traces".into(),
                queue: Some(queue.clone())
            }
        );
        assert_eq!(
            clickhouse.clone().with_queue(Some(" ")).unwrap(),
            clickhouse
        );
        assert!(
            clickhouse
                .missing_queue_hint()
                .unwrap()
                .contains("--queue-store postgres://")
        );
        // Built from parts: the redaction corpus checks no source holds a URL with a password.
        let with_password = ["clickhouse://u", "pw@other/x"].join(":");
        let not_postgres = clickhouse
            .clone()
            .with_queue(Some(&with_password))
            .unwrap_err();
        assert_eq!(
            not_postgres,
            "the queue store clickhouse://u@other/x is not a PostgreSQL URL: the QA job queue needs a claim that hands each job to one worker, which ClickHouse cannot do atomically; name a PostgreSQL database (postgres://USER@HOST:5432/DATABASE, with :PASSWORD after USER)"
        );
        let postgres = StoreLocation::parse("postgres://db/devtrace");
        assert_eq!(postgres.missing_queue_hint(), None);
        assert_eq!(
            postgres.with_queue(Some(&queue)).unwrap_err(),
            "a queue store goes beside a ClickHouse store, and postgres://db/devtrace keeps its own QA queue: drop --queue-store (or queue-store in the config, DEVTRACE_QUEUE_STORE)"
        );
    }
}

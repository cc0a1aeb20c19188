//! Where a store is: a data directory (the embedded SQLite store), a PostgreSQL URL (the
//! team store) or a ClickHouse URL (the scale-out store), and opening any behind the same
//! traits.

use crate::clickhouse::{ChStore, ChWriter};
use crate::postgres::{PgListener, PgStore, PgWriter};
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
    /// (`clickhouse://USER:PASSWORD@HOST:8123/DATABASE?SETTING=VALUE`, `clickhouses://` for TLS).
    ClickHouse(String),
}

impl StoreLocation {
    /// `postgres://…` or `postgresql://…` is PostgreSQL, `clickhouse://…` or `clickhouses://…`
    /// ClickHouse; anything else is a data directory.
    pub fn parse(text: &str) -> Self {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Self::Postgres(text.trim().to_owned())
        } else if lower.starts_with("clickhouse://") || lower.starts_with("clickhouses://") {
            Self::ClickHouse(text.trim().to_owned())
        } else {
            Self::Embedded(PathBuf::from(text))
        }
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Embedded(_))
    }

    /// For messages: the directory, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(dir) => dir.display().to_string(),
            Self::Postgres(url) | Self::ClickHouse(url) => {
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
            Self::ClickHouse(url) => Box::new(ChWriter::open(url)?),
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
            Self::ClickHouse(url) => {
                let store = Arc::new(ChStore::open(url)?);
                Backend {
                    store: store.clone(),
                    accounts: store,
                }
            }
        })
    }

    /// Commits made by every node sharing this store, as they happen; `None` for the embedded
    /// store, where the local writer sees every commit.
    pub fn listen(&self) -> Result<Option<Arc<dyn CommitFeed>>> {
        Ok(match self {
            Self::Embedded(_) => None,
            Self::Postgres(url) => Some(Arc::new(PgListener::start(url)?)),
            // No notifications: other nodes' commits reach this one's readers when they query.
            Self::ClickHouse(_) => None,
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
            StoreLocation::ClickHouse(clickhouse.clone())
        );
        assert!(!StoreLocation::parse("ClickHouse://ch/x").is_embedded());
        assert_eq!(
            StoreLocation::parse(&clickhouse).describe(),
            "clickhouses://u@ch:8443/traces"
        );
    }
}

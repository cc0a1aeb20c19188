//! Projects and tokens on ClickHouse: `ReplacingMergeTree` rows read with `FINAL`, each change
//! a new row with a higher version.
//!
//! A project's id is derived from its name (the default project is 1), so nodes that create
//! the same project at once insert the same row and agree on its id without a lock.

use super::rowbinary::{Reader, Rows};
use super::{ChStore, unix_now_nanos};
use crate::accounts::{join_scopes, split_scopes};
use crate::{Accounts, NewToken, Project, ProjectId, Result, TokenRecord};
use std::sync::atomic::{AtomicU64, Ordering};

/// A version higher than every one this process gave before (the clock, made strictly
/// increasing), so a change in the same nanosecond still wins.
fn next_version() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = unix_now_nanos();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// The id of the project called `name`: 1 for `default`, else from a hash of the name.
pub(crate) fn project_id(name: &str) -> ProjectId {
    if name == "default" {
        return ProjectId::DEFAULT;
    }
    let hash = blake3::hash(name.as_bytes());
    let n = i64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"));
    // Positive, and never 1.
    ProjectId((n & i64::MAX).max(2))
}

const PROJECT_COLUMNS: &str = "id, name, retention_ns, created_ns";
const TOKEN_COLUMNS: &str = "t.public_id, t.project, t.name, t.scopes, t.salt, t.hash, t.created_ns, t.expires_ns, t.last_used_ns, t.revoked_ns, p.name";

fn projects_from(answer: &[u8]) -> Result<Vec<Project>> {
    let mut r = Reader::new(answer);
    let mut out = Vec::new();
    while !r.done() {
        out.push(Project {
            id: ProjectId(r.i64()?),
            name: r.string()?,
            retention_nanos: r.nullable(Reader::u64)?,
            created_unix_nano: r.u64()?,
        });
    }
    Ok(out)
}

fn tokens_from(answer: &[u8]) -> Result<Vec<TokenRecord>> {
    let mut r = Reader::new(answer);
    let mut out = Vec::new();
    while !r.done() {
        let public_id = r.string()?;
        let project = ProjectId(r.i64()?);
        let name = r.string()?;
        let scopes = split_scopes(&r.string()?);
        let salt = r.fixed()?;
        let hash = r.fixed()?;
        let created_unix_nano = r.u64()?;
        let expires_unix_nano = r.nullable(Reader::u64)?;
        let last_used_unix_nano = r.nullable(Reader::u64)?;
        let revoked_unix_nano = r.nullable(Reader::u64)?;
        out.push(TokenRecord {
            token: NewToken {
                public_id,
                project,
                name,
                scopes,
                salt,
                hash,
                created_unix_nano,
                expires_unix_nano,
            },
            project_name: r.string()?,
            last_used_unix_nano,
            revoked_unix_nano,
        });
    }
    Ok(out)
}

fn optional(rows: &mut Rows, value: Option<u64>) {
    match value {
        Some(v) => rows.u8(0).u64(v),
        None => rows.u8(1),
    };
}

impl ChStore {
    fn write_project(&self, project: &Project) -> Result<()> {
        let mut rows = Rows::default();
        rows.row().i64(project.id.0).str(&project.name);
        optional(&mut rows, project.retention_nanos);
        rows.u64(project.created_unix_nano).u64(next_version());
        self.db.server.insert(
            "projects",
            "id, name, retention_ns, created_ns, version",
            &rows,
        )
    }

    fn write_token(&self, record: &TokenRecord) -> Result<()> {
        let t = &record.token;
        let mut rows = Rows::default();
        rows.row()
            .str(&t.public_id)
            .i64(t.project.0)
            .str(&t.name)
            .str(&join_scopes(&t.scopes))
            .fixed(&t.salt)
            .fixed(&t.hash)
            .u64(t.created_unix_nano);
        optional(&mut rows, t.expires_unix_nano);
        optional(&mut rows, record.last_used_unix_nano);
        optional(&mut rows, record.revoked_unix_nano);
        rows.u64(next_version());
        self.db.server.insert(
            "tokens",
            "public_id, project, name, scopes, salt, hash, created_ns, expires_ns, last_used_ns, revoked_ns, version",
            &rows,
        )
    }

    fn select_tokens(&self, filter: &str, params: &[(&str, String)]) -> Result<Vec<TokenRecord>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens AS t FINAL
             LEFT JOIN (SELECT id, name FROM projects FINAL) AS p ON p.id = t.project
             {filter} ORDER BY t.created_ns, t.public_id FORMAT RowBinary"
        );
        tokens_from(&self.db.server.query(&sql, params)?)
    }
}

impl Accounts for ChStore {
    fn projects(&self) -> Result<Vec<Project>> {
        let answer = self.db.server.query(
            &format!("SELECT {PROJECT_COLUMNS} FROM projects FINAL ORDER BY name FORMAT RowBinary"),
            &[],
        )?;
        projects_from(&answer)
    }

    fn project_named(&self, name: &str) -> Result<Option<Project>> {
        let answer = self.db.server.query(
            &format!(
                "SELECT {PROJECT_COLUMNS} FROM projects FINAL WHERE name = {{n:String}} FORMAT RowBinary"
            ),
            &[("n", name.to_owned())],
        )?;
        Ok(projects_from(&answer)?.pop())
    }

    fn ensure_project(&self, name: &str) -> Result<Project> {
        if let Some(found) = self.project_named(name)? {
            return Ok(found);
        }
        let project = Project {
            id: project_id(name),
            name: name.to_owned(),
            retention_nanos: None,
            created_unix_nano: unix_now_nanos(),
        };
        self.write_project(&project)?;
        // Another node may have made it in the meantime: the row read now is the one kept.
        Ok(self.project_named(name)?.unwrap_or(project))
    }

    fn set_retention(&self, project: ProjectId, retention_nanos: Option<u64>) -> Result<()> {
        let found = self
            .projects()?
            .into_iter()
            .find(|p| p.id == project)
            .ok_or_else(|| {
                crate::StoreError::Unsupported(format!("no project with id {}", project.0))
            })?;
        self.write_project(&Project {
            retention_nanos,
            ..found
        })
    }

    fn add_token(&self, token: &NewToken) -> Result<()> {
        // Checked, not enforced: ClickHouse has no unique keys. Ids are random, so two nodes
        // adding the same one at once does not happen in practice.
        if self.token(&token.public_id)?.is_some() {
            return Err(crate::StoreError::Database(format!(
                "a token with the public id {} exists already",
                token.public_id
            )));
        }
        self.write_token(&TokenRecord {
            token: token.clone(),
            project_name: String::new(),
            last_used_unix_nano: None,
            revoked_unix_nano: None,
        })
    }

    fn token(&self, public_id: &str) -> Result<Option<TokenRecord>> {
        Ok(self
            .select_tokens(
                "WHERE t.public_id = {id:String}",
                &[("id", public_id.to_owned())],
            )?
            .pop())
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.select_tokens("", &[])
    }

    fn revoke_token(&self, public_id: &str, now_unix_nano: u64) -> Result<bool> {
        match self.token(public_id)? {
            Some(record) if record.revoked_unix_nano.is_none() => {
                self.write_token(&TokenRecord {
                    revoked_unix_nano: Some(now_unix_nano),
                    ..record
                })?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn token_used(&self, public_id: &str, now_unix_nano: u64) -> Result<()> {
        if let Some(record) = self.token(public_id)? {
            let latest = record
                .last_used_unix_nano
                .map_or(now_unix_nano, |t| t.max(now_unix_nano));
            self.write_token(&TokenRecord {
                last_used_unix_nano: Some(latest),
                ..record
            })?;
        }
        Ok(())
    }
}

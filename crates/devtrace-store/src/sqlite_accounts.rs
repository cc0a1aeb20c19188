//! Projects and tokens in the embedded store: one project (`default`), and the tokens of
//! `devtrace serve --auth required`.

use crate::accounts::{array, join_scopes, split_scopes};
use crate::sqlite::{SqliteStore, one_project_only};
use crate::{Accounts, NewToken, Project, ProjectId, Result, TokenRecord};
use rusqlite::{OptionalExtension, Row, params};

fn int(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

fn project_from_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: ProjectId(row.get(0)?),
        name: row.get(1)?,
        retention_nanos: row.get::<_, Option<i64>>(2)?.map(|n| n.max(0) as u64),
        created_unix_nano: row.get::<_, i64>(3)?.max(0) as u64,
    })
}

const TOKEN_SELECT: &str = "SELECT k.public_id, k.project_id, k.name, k.scopes, k.salt, k.hash,
         k.created_ns, k.expires_ns, k.last_used_ns, k.revoked_ns, p.name
     FROM tokens k JOIN projects p ON p.id = k.project_id";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<Result<TokenRecord>> {
    let time = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(|n| n.max(0) as u64))
    };
    let salt: Vec<u8> = row.get(4)?;
    let hash: Vec<u8> = row.get(5)?;
    let scopes: String = row.get(3)?;
    let (public_id, project, name) = (row.get(0)?, ProjectId(row.get(1)?), row.get(2)?);
    let (created, expires, last_used, revoked) = (
        row.get::<_, i64>(6)?.max(0) as u64,
        time(7)?,
        time(8)?,
        time(9)?,
    );
    let project_name = row.get(10)?;
    Ok((|| {
        Ok(TokenRecord {
            token: NewToken {
                public_id,
                project,
                name,
                scopes: split_scopes(&scopes),
                salt: array(&salt, "token salt")?,
                hash: array(&hash, "token hash")?,
                created_unix_nano: created,
                expires_unix_nano: expires,
            },
            project_name,
            last_used_unix_nano: last_used,
            revoked_unix_nano: revoked,
        })
    })())
}

impl Accounts for SqliteStore {
    fn projects(&self) -> Result<Vec<Project>> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, name, retention_ns, created_ns FROM projects ORDER BY name",
            )?;
            let rows = statement.query_map([], project_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn project_named(&self, name: &str) -> Result<Option<Project>> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, name, retention_ns, created_ns FROM projects WHERE name = ?1",
                )?
                .query_row(params![name], project_from_row)
                .optional()?)
        })
    }

    fn ensure_project(&self, name: &str) -> Result<Project> {
        match self.project_named(name)? {
            Some(project) => Ok(project),
            None => Err(crate::StoreError::Unsupported(format!(
                "the embedded store holds one project, `default`, not {}; projects need the PostgreSQL store (--store postgres://…)",
                devtrace_model::recorded::quote(name)
            ))),
        }
    }

    fn set_retention(&self, project: ProjectId, retention_nanos: Option<u64>) -> Result<()> {
        if project != ProjectId::DEFAULT {
            return Err(one_project_only(project));
        }
        self.with_conn(|conn| {
            conn.prepare_cached("UPDATE projects SET retention_ns = ?2 WHERE id = ?1")?
                .execute(params![project.0, retention_nanos.map(int)])?;
            Ok(())
        })
    }

    fn add_token(&self, token: &NewToken) -> Result<()> {
        if token.project != ProjectId::DEFAULT {
            return Err(one_project_only(token.project));
        }
        self.with_conn(|conn| {
            conn.prepare_cached(
                "INSERT INTO tokens (public_id, project_id, name, scopes, salt, hash, created_ns,
                                     expires_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                token.public_id,
                token.project.0,
                token.name,
                join_scopes(&token.scopes),
                &token.salt[..],
                &token.hash[..],
                int(token.created_unix_nano),
                token.expires_unix_nano.map(int),
            ])?;
            Ok(())
        })
    }

    fn token(&self, public_id: &str) -> Result<Option<TokenRecord>> {
        self.with_conn(|conn| {
            conn.prepare_cached(&format!("{TOKEN_SELECT} WHERE k.public_id = ?1"))?
                .query_row(params![public_id], token_from_row)
                .optional()?
                .transpose()
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "{TOKEN_SELECT} ORDER BY k.created_ns, k.public_id"
            ))?;
            let rows = statement.query_map([], token_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .collect()
        })
    }

    fn revoke_token(&self, public_id: &str, now_unix_nano: u64) -> Result<bool> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE tokens SET revoked_ns = ?2 WHERE public_id = ?1 AND revoked_ns IS NULL",
                )?
                .execute(params![public_id, int(now_unix_nano)])?
                == 1)
        })
    }

    fn token_used(&self, public_id: &str, now_unix_nano: u64) -> Result<()> {
        self.with_conn(|conn| {
            conn.prepare_cached(
                "UPDATE tokens SET last_used_ns = max(coalesce(last_used_ns, 0), ?2)
                 WHERE public_id = ?1",
            )?
            .execute(params![public_id, int(now_unix_nano)])?;
            Ok(())
        })
    }
}

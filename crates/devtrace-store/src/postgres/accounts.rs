//! Projects and tokens in PostgreSQL.

use super::{PgStore, int};
use crate::accounts::{array, join_scopes, split_scopes};
use crate::{Accounts, NewToken, Project, ProjectId, Result, StoreError, TokenRecord};
use postgres::Row;

fn project_from_row(row: &Row) -> Project {
    Project {
        id: ProjectId(row.get(0)),
        name: row.get(1),
        retention_nanos: row.get::<_, Option<i64>>(2).map(|n| n.max(0) as u64),
        created_unix_nano: row.get::<_, i64>(3).max(0) as u64,
    }
}

const TOKEN_COLUMNS: &str = "k.public_id, k.project_id, k.name, k.scopes, k.salt, k.hash,
     k.created_ns, k.expires_ns, k.last_used_ns, k.revoked_ns, p.name";

fn token_from_row(row: &Row) -> Result<TokenRecord> {
    let time = |i: usize| row.get::<_, Option<i64>>(i).map(|n| n.max(0) as u64);
    Ok(TokenRecord {
        token: NewToken {
            public_id: row.get(0),
            project: ProjectId(row.get(1)),
            name: row.get(2),
            scopes: split_scopes(row.get(3)),
            salt: array(row.get(4), "token salt")?,
            hash: array(row.get(5), "token hash")?,
            created_unix_nano: row.get::<_, i64>(6).max(0) as u64,
            expires_unix_nano: time(7),
        },
        last_used_unix_nano: time(8),
        revoked_unix_nano: time(9),
        project_name: row.get(10),
    })
}

impl Accounts for PgStore {
    fn projects(&self) -> Result<Vec<Project>> {
        self.with_conn(|conn| {
            let rows = conn.client.query(
                "SELECT id, name, retention_ns, created_ns FROM projects ORDER BY name",
                &[],
            )?;
            Ok(rows.iter().map(project_from_row).collect())
        })
    }

    fn project_named(&self, name: &str) -> Result<Option<Project>> {
        self.with_conn(|conn| {
            Ok(conn
                .client
                .query_opt(
                    "SELECT id, name, retention_ns, created_ns FROM projects WHERE name = $1",
                    &[&name],
                )?
                .as_ref()
                .map(project_from_row))
        })
    }

    fn ensure_project(&self, name: &str) -> Result<Project> {
        self.with_conn(|conn| {
            let row = conn.client.query_one(
                "WITH made AS (
                     INSERT INTO projects (name, created_ns) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING
                     RETURNING id, name, retention_ns, created_ns)
                 SELECT * FROM made
                 UNION ALL
                 SELECT id, name, retention_ns, created_ns FROM projects WHERE name = $1
                 LIMIT 1",
                &[&name, &super::unix_now_nanos()],
            )?;
            Ok(project_from_row(&row))
        })
    }

    fn set_retention(&self, project: ProjectId, retention_nanos: Option<u64>) -> Result<()> {
        let changed = self.with_conn(|conn| {
            Ok(conn.client.execute(
                "UPDATE projects SET retention_ns = $2 WHERE id = $1",
                &[&project.0, &retention_nanos.map(int)],
            )?)
        })?;
        if changed == 0 {
            return Err(StoreError::Unsupported(format!(
                "there is no project with id {}",
                project.0
            )));
        }
        Ok(())
    }

    fn add_token(&self, token: &NewToken) -> Result<()> {
        self.with_conn(|conn| {
            conn.client.execute(
                "INSERT INTO tokens (public_id, project_id, name, scopes, salt, hash, created_ns,
                                     expires_ns)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &token.public_id,
                    &token.project.0,
                    &token.name,
                    &join_scopes(&token.scopes),
                    &&token.salt[..],
                    &&token.hash[..],
                    &int(token.created_unix_nano),
                    &token.expires_unix_nano.map(int),
                ],
            )?;
            Ok(())
        })
    }

    fn token(&self, public_id: &str) -> Result<Option<TokenRecord>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT k.public_id, k.project_id, k.name, k.scopes, k.salt, k.hash,
                        k.created_ns, k.expires_ns, k.last_used_ns, k.revoked_ns, p.name
                 FROM tokens k JOIN projects p ON p.id = k.project_id
                 WHERE k.public_id = $1",
            )?;
            conn.client
                .query_opt(&statement, &[&public_id])?
                .as_ref()
                .map(token_from_row)
                .transpose()
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.with_conn(|conn| {
            let rows = conn.client.query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens k JOIN projects p ON p.id = k.project_id
                     ORDER BY k.created_ns, k.public_id"
                ),
                &[],
            )?;
            rows.iter().map(token_from_row).collect()
        })
    }

    fn revoke_token(&self, public_id: &str, now_unix_nano: u64) -> Result<bool> {
        self.with_conn(|conn| {
            Ok(conn.client.execute(
                "UPDATE tokens SET revoked_ns = $2 WHERE public_id = $1 AND revoked_ns IS NULL",
                &[&public_id, &int(now_unix_nano)],
            )? == 1)
        })
    }

    fn token_used(&self, public_id: &str, now_unix_nano: u64) -> Result<()> {
        self.with_conn(|conn| {
            conn.client.execute(
                "UPDATE tokens SET last_used_ns = greatest(last_used_ns, $2) WHERE public_id = $1",
                &[&public_id, &int(now_unix_nano)],
            )?;
            Ok(())
        })
    }
}

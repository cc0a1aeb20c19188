//! Projects and API tokens as stored: who may read and write which data.
//!
//! This module only keeps rows. What a token looks like, how its secret is hashed and what a
//! scope allows belong to the server's `auth` module; the store never sees a token's secret,
//! only its public id, a salt and a hash.

use crate::{ProjectId, Result};
use serde::Serialize;

/// A project: the unit that owns traces, sessions and tokens.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    /// Data older than this (nanoseconds) is deleted continuously; `None` keeps everything.
    pub retention_nanos: Option<u64>,
    pub created_unix_nano: u64,
}

/// A token to store: everything but its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    /// The part of the token that is not secret (`dtk_` and the id), shown in listings.
    pub public_id: String,
    pub project: ProjectId,
    pub name: String,
    /// What the token may do (`ingest`, `read`, `qa`, `admin`); interpreted by the server.
    pub scopes: Vec<String>,
    pub salt: [u8; 16],
    /// The salted hash of the secret part.
    pub hash: [u8; 32],
    pub created_unix_nano: u64,
    pub expires_unix_nano: Option<u64>,
}

/// A stored token, as `token list` shows it and the server checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: NewToken,
    pub project_name: String,
    pub last_used_unix_nano: Option<u64>,
    pub revoked_unix_nano: Option<u64>,
}

/// Projects and tokens. Implemented by every backend; writes here are small and rare, so
/// they go straight to the database rather than through the group-commit writer.
pub trait Accounts: Send + Sync {
    /// Every project, by name.
    fn projects(&self) -> Result<Vec<Project>>;
    fn project_named(&self, name: &str) -> Result<Option<Project>>;
    /// The project called `name`, created if it does not exist.
    fn ensure_project(&self, name: &str) -> Result<Project>;
    /// Sets (or, with `None`, removes) a project's retention.
    fn set_retention(&self, project: ProjectId, retention_nanos: Option<u64>) -> Result<()>;
    fn add_token(&self, token: &NewToken) -> Result<()>;
    /// The token with this public id, revoked or not.
    fn token(&self, public_id: &str) -> Result<Option<TokenRecord>>;
    /// Every token, oldest first.
    fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Marks a token revoked at `now`; false when there is no such token or it already was.
    fn revoke_token(&self, public_id: &str, now_unix_nano: u64) -> Result<bool>;
    /// Records that a token was used (callers throttle this: it is a write).
    fn token_used(&self, public_id: &str, now_unix_nano: u64) -> Result<()>;
}

/// Scopes as stored: a comma-separated list.
pub(crate) fn join_scopes(scopes: &[String]) -> String {
    scopes.join(",")
}

pub(crate) fn split_scopes(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A fixed-size byte array from a column, or a corruption error naming it.
pub(crate) fn array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N]> {
    bytes
        .try_into()
        .map_err(|_| crate::StoreError::Corrupt(format!("{what}: {} bytes, not {N}", bytes.len())))
}

//! Who may do what: bearer tokens ([`token`]) checked against the store's accounts, for every
//! face of the server (OTLP/HTTP, OTLP/gRPC metadata, REST, MCP over HTTP, the web UI's
//! session cookie).
//!
//! A request presents a token (`Authorization: Bearer dtk_…`, or the web UI's cookie) and
//! needs a [`Scope`]; the answer is a [`Principal`] (the project it acts in) or a [`Denied`]
//! with a one-line reason that never repeats the secret. Failed attempts are counted per
//! client address: past [`MAX_FAILURES`] in [`FAILURE_WINDOW`], the address is refused until
//! the window ends ([`limit`]). Nothing here is shared between nodes except the store: a token
//! revoked on one node is refused by every node at its next request.
//!
//! With authentication off (the embedded store on loopback, or `--insecure-no-auth`), every
//! request acts in the default project (or the one it names).

pub mod limit;
pub mod token;

pub use token::Scope;

use axum::http::{HeaderMap, StatusCode, header};
use devtrace_store::{Accounts, ProjectId};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Failed attempts an address may make in [`FAILURE_WINDOW`] before it is refused.
pub const MAX_FAILURES: u32 = 20;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// A token's `last used` time is written at most this often per node (it is a write).
const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// The cookie the web UI's login sets: the token itself, HttpOnly and SameSite=Strict.
pub const SESSION_COOKIE: &str = "devtrace_token";
/// The cookie (set by the UI's project switcher) or header naming the project to read.
pub const PROJECT_COOKIE: &str = "devtrace_project";
pub const PROJECT_HEADER: &str = "devtrace-project";

/// The server's authentication: off, or required with the store's accounts.
#[derive(Clone)]
pub struct Auth {
    accounts: Arc<dyn Accounts>,
    required: Option<Arc<Checker>>,
}

struct Checker {
    limiter: limit::FailureLimiter,
    /// When each token's use was last written, per node.
    recorded_use: Mutex<HashMap<String, Instant>>,
}

/// Who a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The project the request reads or writes.
    pub project: ProjectId,
    pub project_name: String,
    /// The token's public id (`dtk_…`), `None` when authentication is off.
    pub token: Option<String>,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// Why a request is refused: a one-line reason, never the secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "authentication required: send a devtrace token (Authorization: Bearer dtk_…); an admin makes one with `devtrace token create`"
    )]
    Missing,
    #[error("{0}")]
    Malformed(#[from] token::Malformed),
    #[error("unknown token {0}")]
    Unknown(String),
    #[error("token {0} was revoked")]
    Revoked(String),
    #[error("token {token} expired at {at}")]
    Expired { token: String, at: String },
    #[error("token {token} may not {action}: its scopes are {scopes}")]
    Scope {
        token: String,
        action: &'static str,
        scopes: String,
    },
    #[error(
        "token {token} belongs to project {}, not {}",
        devtrace_model::recorded::quote(own),
        devtrace_model::recorded::quote(asked)
    )]
    OtherProject {
        token: String,
        own: String,
        asked: String,
    },
    #[error("there is no project {}", devtrace_model::recorded::quote(.0))]
    UnknownProject(String),
    #[error("too many failed authentication attempts from this address; retry in {0} s")]
    RateLimited(u64),
    #[error("cannot check the token: {0}")]
    Unavailable(String),
}

impl Denied {
    /// 401 for no or a bad token, 403 for a good token without the right, 429 when limited.
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::Scope { .. } | Denied::OtherProject { .. } => StatusCode::FORBIDDEN,
            Denied::UnknownProject(_) => StatusCode::NOT_FOUND,
            Denied::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Denied::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The gRPC status an OTLP exporter gets.
    pub fn grpc_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            Denied::Scope { .. } | Denied::OtherProject { .. } => {
                tonic::Status::permission_denied(message)
            }
            Denied::UnknownProject(_) => tonic::Status::not_found(message),
            Denied::RateLimited(_) => tonic::Status::resource_exhausted(message),
            Denied::Unavailable(_) => tonic::Status::unavailable(message),
            _ => tonic::Status::unauthenticated(message),
        }
    }

    /// Seconds to wait, for a `Retry-After` header.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Denied::RateLimited(seconds) => Some(*seconds),
            _ => None,
        }
    }

    /// Whether this counts as a failed attempt (a wrong or missing token, not a right one
    /// used for the wrong thing).
    fn is_failure(&self) -> bool {
        matches!(
            self,
            Denied::Missing
                | Denied::Malformed(_)
                | Denied::Unknown(_)
                | Denied::Revoked(_)
                | Denied::Expired { .. }
        )
    }
}

/// What a request asks for.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The token, from `Authorization` or the session cookie.
    pub token: Option<String>,
    /// The project named by the `Devtrace-Project` header or the switcher's cookie.
    pub project: Option<String>,
    pub client: Option<IpAddr>,
}

impl Credentials {
    /// From request headers: `Authorization: Bearer …` (or the bare token), else the session
    /// cookie when `cookies` (the API port; OTLP receivers take only the header).
    pub fn from_headers(headers: &HeaderMap, cookies: bool, client: Option<IpAddr>) -> Self {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let v = v.trim();
                match v.split_once(' ') {
                    Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                    _ => v,
                }
                .to_owned()
            });
        let token = bearer.or_else(|| cookies.then(|| cookie(headers, SESSION_COOKIE)).flatten());
        let project = headers
            .get(PROJECT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .or_else(|| cookies.then(|| cookie(headers, PROJECT_COOKIE)).flatten())
            .filter(|p| !p.is_empty());
        Self {
            token,
            project,
            client,
        }
    }
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Auth {
    /// Every request acts in the default project (or the project it names).
    pub fn off(accounts: Arc<dyn Accounts>) -> Self {
        Self {
            accounts,
            required: None,
        }
    }

    /// Every request must present a token with the scope it needs; an address is refused
    /// for the rest of the minute after [`MAX_FAILURES`] failed attempts.
    pub fn required(accounts: Arc<dyn Accounts>) -> Self {
        Self::required_with_limit(accounts, MAX_FAILURES)
    }

    /// [`Auth::required`] with another limit of failed attempts per address and minute.
    pub fn required_with_limit(accounts: Arc<dyn Accounts>, max_failures: u32) -> Self {
        Self {
            accounts,
            required: Some(Arc::new(Checker {
                limiter: limit::FailureLimiter::new(max_failures.max(1), FAILURE_WINDOW),
                recorded_use: Mutex::default(),
            })),
        }
    }

    pub fn is_required(&self) -> bool {
        self.required.is_some()
    }

    pub fn accounts(&self) -> &Arc<dyn Accounts> {
        &self.accounts
    }

    /// Checks a request that needs `scope`. Reads the store: call it off the async threads
    /// ([`Auth::check_async`]).
    pub fn check(&self, credentials: &Credentials, scope: Scope) -> Result<Principal, Denied> {
        let Some(checker) = &self.required else {
            return self.open_principal(credentials.project.as_deref());
        };
        if let Some(client) = credentials.client
            && let Some(wait) = checker.limiter.blocked(client)
        {
            return Err(Denied::RateLimited(wait.as_secs().max(1)));
        }
        let outcome = self.check_token(checker, credentials, scope);
        if let (Err(denied), Some(client)) = (&outcome, credentials.client)
            && denied.is_failure()
        {
            checker.limiter.failed(client);
        }
        outcome
    }

    pub async fn check_async(
        &self,
        credentials: Credentials,
        scope: Scope,
    ) -> Result<Principal, Denied> {
        let auth = self.clone();
        tokio::task::spawn_blocking(move || auth.check(&credentials, scope))
            .await
            .unwrap_or_else(|e| Err(Denied::Unavailable(e.to_string())))
    }

    fn open_principal(&self, project: Option<&str>) -> Result<Principal, Denied> {
        let everything = Scope::ALL.to_vec();
        match project {
            None => Ok(Principal {
                project: ProjectId::DEFAULT,
                project_name: "default".into(),
                token: None,
                scopes: everything,
            }),
            Some(name) => {
                let found = self
                    .accounts
                    .project_named(name)
                    .map_err(|e| Denied::Unavailable(e.to_string()))?
                    .ok_or_else(|| Denied::UnknownProject(name.to_owned()))?;
                Ok(Principal {
                    project: found.id,
                    project_name: found.name,
                    token: None,
                    scopes: everything,
                })
            }
        }
    }

    fn check_token(
        &self,
        checker: &Checker,
        credentials: &Credentials,
        scope: Scope,
    ) -> Result<Principal, Denied> {
        let text = credentials.token.as_deref().ok_or(Denied::Missing)?;
        let presented = token::parse(text)?;
        let record = self
            .accounts
            .token(&presented.public_id)
            .map_err(|e| Denied::Unavailable(e.to_string()))?
            .ok_or_else(|| Denied::Unknown(presented.public_id.clone()))?;
        if !presented.matches(&record.token) {
            return Err(Denied::Unknown(presented.public_id));
        }
        let id = record.token.public_id.clone();
        if record.revoked_unix_nano.is_some() {
            return Err(Denied::Revoked(id));
        }
        let now = now_nanos();
        if let Some(expires) = record.token.expires_unix_nano
            && now >= expires
        {
            return Err(Denied::Expired {
                token: id,
                at: devtrace_model::time::format_rfc3339(expires),
            });
        }
        let scopes: Vec<Scope> = record
            .token
            .scopes
            .iter()
            .filter_map(|s| Scope::parse(s))
            .collect();
        let mut principal = Principal {
            project: record.token.project,
            project_name: record.project_name.clone(),
            token: Some(id.clone()),
            scopes,
        };
        if !principal.may(scope) {
            return Err(Denied::Scope {
                token: id,
                action: match scope {
                    Scope::Ingest => "send data",
                    Scope::Read => "read",
                    Scope::Qa => "start QA jobs",
                    Scope::Admin => "administer",
                },
                scopes: record.token.scopes.join(", "),
            });
        }
        if let Some(asked) = &credentials.project
            && *asked != principal.project_name
        {
            if !principal.may(Scope::Admin) {
                return Err(Denied::OtherProject {
                    token: id,
                    own: principal.project_name,
                    asked: asked.clone(),
                });
            }
            let found = self
                .accounts
                .project_named(asked)
                .map_err(|e| Denied::Unavailable(e.to_string()))?
                .ok_or_else(|| Denied::UnknownProject(asked.clone()))?;
            principal.project = found.id;
            principal.project_name = found.name;
        }
        self.record_use(checker, &id, now);
        Ok(principal)
    }

    fn record_use(&self, checker: &Checker, id: &str, now: u64) {
        {
            let mut recorded = checker.recorded_use.lock().expect("use times poisoned");
            if recorded
                .get(id)
                .is_some_and(|at| at.elapsed() < LAST_USED_EVERY)
            {
                return;
            }
            if recorded.len() > 10_000 {
                recorded.clear();
            }
            recorded.insert(id.to_owned(), Instant::now());
        }
        if let Err(error) = self.accounts.token_used(id, now) {
            tracing::warn!(token = id, %error, "could not record a token's use");
        }
    }
}

/// Accounts of a server that has none (tests, `devtrace run`'s receiver): the default project
/// only, and no tokens.
pub struct NoAccounts;

impl Accounts for NoAccounts {
    fn projects(&self) -> devtrace_store::Result<Vec<devtrace_store::Project>> {
        Ok(vec![default_project()])
    }
    fn project_named(&self, name: &str) -> devtrace_store::Result<Option<devtrace_store::Project>> {
        Ok((name == "default").then(default_project))
    }
    fn ensure_project(&self, name: &str) -> devtrace_store::Result<devtrace_store::Project> {
        self.project_named(name)?.ok_or_else(|| {
            devtrace_store::StoreError::Unsupported(format!(
                "no project {} here",
                devtrace_model::recorded::quote(name)
            ))
        })
    }
    fn set_retention(&self, _: ProjectId, _: Option<u64>) -> devtrace_store::Result<()> {
        Err(devtrace_store::StoreError::Unsupported(
            "no accounts here".into(),
        ))
    }
    fn add_token(&self, _: &devtrace_store::NewToken) -> devtrace_store::Result<()> {
        Err(devtrace_store::StoreError::Unsupported(
            "no accounts here".into(),
        ))
    }
    fn token(&self, _: &str) -> devtrace_store::Result<Option<devtrace_store::TokenRecord>> {
        Ok(None)
    }
    fn tokens(&self) -> devtrace_store::Result<Vec<devtrace_store::TokenRecord>> {
        Ok(Vec::new())
    }
    fn revoke_token(&self, _: &str, _: u64) -> devtrace_store::Result<bool> {
        Ok(false)
    }
    fn token_used(&self, _: &str, _: u64) -> devtrace_store::Result<()> {
        Ok(())
    }
}

fn default_project() -> devtrace_store::Project {
    devtrace_store::Project {
        id: ProjectId::DEFAULT,
        name: "default".into(),
        retention_nanos: None,
        created_unix_nano: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn credentials_come_from_the_bearer_header_or_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  dtk_x "),
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; devtrace_token=dtk_cookie; devtrace_project=web"),
        );
        let c = Credentials::from_headers(&headers, true, None);
        assert_eq!(c.token.as_deref(), Some("dtk_x"));
        assert_eq!(c.project.as_deref(), Some("web"));
        headers.remove(header::AUTHORIZATION);
        let c = Credentials::from_headers(&headers, true, None);
        assert_eq!(c.token.as_deref(), Some("dtk_cookie"));
        let c = Credentials::from_headers(&headers, false, None);
        assert_eq!((c.token, c.project), (None, None), "OTLP takes no cookies");
        headers.insert(PROJECT_HEADER, HeaderValue::from_static("api"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("dtk_bare"));
        let c = Credentials::from_headers(&headers, true, None);
        assert_eq!(c.token.as_deref(), Some("dtk_bare"));
        assert_eq!(
            c.project.as_deref(),
            Some("api"),
            "the header wins over the cookie"
        );
    }
}

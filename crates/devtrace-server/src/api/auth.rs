//! Authentication on the API port: the middleware every request passes (after the Host/Origin
//! guard), and the web UI's login page.
//!
//! What a request needs: nothing for `/api/v1/health`, the OpenAPI document, the login page and
//! the UI's static files; `read` for every other `GET` (REST, the event stream, UI pages) and
//! for MCP; `ingest` to post sessions; `admin` for everything that deletes. The middleware
//! checks the token (header or cookie) and hands the handler a store scoped to the request's
//! project ([`ProjectStore`], [`Principal`]). A UI page asked for without a valid session is
//! redirected to the login page; the API answers 401/403 with the error body.
//!
//! The login page trades a token (which must be allowed to read) for an `HttpOnly`,
//! `SameSite=Strict` cookie holding it: scripts cannot read it, other sites cannot make the
//! browser send it, and any node of a team server accepts it (nothing is kept per node).

use crate::auth::{Credentials, Denied, PROJECT_COOKIE, Principal, SESSION_COOKIE, Scope};
use crate::mcp_http::ProjectStore;
use crate::state::ApiState;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub const LOGIN_PATH: &str = "/login";
pub const LOGOUT_PATH: &str = "/logout";

/// What a request on the API port needs; `None` when it is public.
pub fn needed_scope(method: &Method, path: &str) -> Option<Scope> {
    if path == "/api/v1/health"
        || path == crate::rest::OPENAPI_PATH
        || path == LOGIN_PATH
        || path == LOGOUT_PATH
        || path.starts_with(crate::ui::ASSET_PREFIX)
        || path == "/favicon.ico"
    {
        return None;
    }
    if *method == Method::GET || *method == Method::HEAD || *method == Method::OPTIONS {
        return Some(Scope::Read);
    }
    if path == "/mcp" {
        return Some(Scope::Read);
    }
    // Starting, cancelling or retrying QA jobs.
    if *method == Method::POST
        && (path.starts_with("/api/v1/qa/")
            || (path.starts_with("/api/v1/sessions/") && path.ends_with("/qa")))
    {
        return Some(Scope::Qa);
    }
    // Sending a session, or events of one.
    if *method == Method::POST
        && (path == "/api/v1/sessions" || path.starts_with("/api/v1/sessions/"))
    {
        return Some(Scope::Ingest);
    }
    Some(Scope::Admin)
}

/// A UI page (not the API, not MCP): redirected to the login page when not signed in.
fn is_ui_page(path: &str) -> bool {
    !path.starts_with("/api/") && path != "/api" && path != "/mcp"
}

pub async fn require(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let Some(scope) = needed_scope(request.method(), &path) else {
        return next.run(request).await;
    };
    let client = crate::client_ip(request.extensions());
    let credentials = Credentials::from_headers(request.headers(), true, client);
    let principal = match state.auth.check_async(credentials, scope).await {
        Ok(principal) => principal,
        Err(denied) => {
            if is_ui_page(&path) && denied.status() == StatusCode::UNAUTHORIZED {
                let target = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                return Redirect::to(&format!("{LOGIN_PATH}?next={}", encode(&target)))
                    .into_response();
            }
            return refusal(&denied);
        }
    };
    let store = if principal.project == state.store.project() {
        state.store.clone()
    } else {
        match state.store.in_project(principal.project) {
            Ok(store) => store,
            Err(error) => return refusal(&Denied::Unavailable(error.to_string())),
        }
    };
    request.extensions_mut().insert(ProjectStore(store));
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The API's error body with the status the refusal calls for.
fn refusal(denied: &Denied) -> Response {
    let mut response =
        crate::rest::ApiError::new(denied.status(), denied.to_string()).into_response();
    if let Some(seconds) = denied.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if denied.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"devtrace\""),
        );
    }
    response
}

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(LOGIN_PATH, get(login_page).post(login))
        .route(LOGOUT_PATH, post(logout))
}

#[derive(Deserialize)]
struct Next_ {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login_page(state: ApiState, Query(query): Query<Next_>) -> Response {
    if !state.auth.is_required() {
        return Redirect::to(&local_target(query.next.as_deref())).into_response();
    }
    page(StatusCode::OK, "", query.next.as_deref())
}

async fn login(
    State(state): State<ApiState>,
    connection: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let target = local_target(form.next.as_deref());
    let credentials = Credentials {
        token: Some(form.token.trim().to_owned()),
        project: None,
        client: connection.map(|c| c.0.0.ip()),
    };
    match state.auth.check_async(credentials, Scope::Read).await {
        Ok(Principal { project_name, .. }) => {
            let mut response = Redirect::to(&target).into_response();
            let secure = if state.secure_cookies { "; Secure" } else { "" };
            for cookie in [
                format!(
                    "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000{secure}",
                    form.token.trim()
                ),
                format!("{PROJECT_COOKIE}={project_name}; Path=/; SameSite=Strict{secure}"),
            ] {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(denied) => page(denied.status(), &denied.to_string(), form.next.as_deref()),
    }
}

async fn logout() -> Response {
    let mut response = Redirect::to(LOGIN_PATH).into_response();
    for name in [SESSION_COOKIE, PROJECT_COOKIE] {
        if let Ok(value) =
            HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0; SameSite=Strict"))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Where to go after logging in: a path on this server, never another site.
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The login page (web/login.html) with an error line and the page to return to.
fn page(status: StatusCode, error: &str, next: Option<&str>) -> Response {
    let template =
        crate::ui::asset("login.html").map_or("", |a| std::str::from_utf8(a.bytes).unwrap_or(""));
    let body = template
        .replace("{{error}}", &escape_html(error))
        .replace("{{next}}", &escape_html(&local_target(next)));
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Percent-encodes a path for a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_needs_the_scope_of_what_it_does() {
        let get = Method::GET;
        for (method, path, scope) in [
            (&get, "/api/v1/health", None),
            (&get, "/api/v1/openapi.json", None),
            (&get, "/assets/js/app.js", None),
            (&get, "/login", None),
            (&Method::POST, "/login", None),
            (&get, "/api/v1/traces", Some(Scope::Read)),
            (&get, "/api/v1/events", Some(Scope::Read)),
            (&get, "/traces/ab", Some(Scope::Read)),
            (&Method::POST, "/mcp", Some(Scope::Read)),
            (&Method::DELETE, "/mcp", Some(Scope::Read)),
            (&Method::POST, "/api/v1/sessions", Some(Scope::Ingest)),
            (
                &Method::POST,
                "/api/v1/sessions/ab/events",
                Some(Scope::Ingest),
            ),
            (&Method::POST, "/api/v1/sessions/ab/qa", Some(Scope::Qa)),
            (&get, "/api/v1/sessions/ab/qa", Some(Scope::Read)),
            (&Method::POST, "/api/v1/qa/jobs/7/cancel", Some(Scope::Qa)),
            (&Method::POST, "/api/v1/qa/jobs/7/retry", Some(Scope::Qa)),
            (&get, "/api/v1/qa/jobs", Some(Scope::Read)),
            (&get, "/api/v1/qa/summary", Some(Scope::Read)),
            (&Method::DELETE, "/api/v1/sessions/ab", Some(Scope::Admin)),
            (&Method::DELETE, "/api/v1/traces/ab", Some(Scope::Admin)),
        ] {
            assert_eq!(needed_scope(method, path), scope, "{method} {path}");
        }
    }

    #[test]
    fn the_login_returns_only_to_this_server() {
        assert_eq!(local_target(Some("/traces?x=1")), "/traces?x=1");
        for outside in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "traces",
        ] {
            assert_eq!(local_target(Some(outside)), "/", "{outside}");
        }
        assert_eq!(local_target(None), "/");
        assert_eq!(encode("/traces?a=1&b"), "/traces%3Fa%3D1%26b");
    }
}

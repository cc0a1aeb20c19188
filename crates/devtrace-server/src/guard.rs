//! DNS-rebinding protection for the API port: every request's `Host`, and its `Origin` when a
//! browser sends one, must name this server.
//!
//! A web page on another site can make a browser send requests to `127.0.0.1:4319` by pointing
//! its own DNS name at that address. The browser then sends that site's name in `Host` and its
//! origin in `Origin`, so checking both against the names this server answers to stops it (the
//! MCP specification requires this for Streamable HTTP; the REST API and the UI get the same).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The host names (without port) requests may address.
#[derive(Clone, Debug)]
pub struct AllowedHosts {
    names: Arc<Vec<String>>,
}

impl AllowedHosts {
    /// Loopback names, plus `listen` when it is a specific non-loopback address, plus `extra`
    /// (for example a host name the server is reached by behind a proxy).
    pub fn new(listen: IpAddr, extra: &[String]) -> Self {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(String::from)
            .collect();
        if !listen.is_loopback() && !listen.is_unspecified() {
            names.push(listen.to_string());
        }
        names.extend(extra.iter().map(|n| n.to_ascii_lowercase()));
        Self {
            names: Arc::new(names),
        }
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.names.contains(&host)
    }
}

/// The host part of `host[:port]`, `[v6]:port` or a bare v6 address.
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

/// Why a request is refused, or `None` when it may proceed.
pub fn check(allowed: &AllowedHosts, headers: &HeaderMap) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match host {
        Some(host) if allowed.allows(host_name(host)) => {}
        Some(host) => {
            return Some(format!(
                "Host {host:?} is not one this server answers to (DNS-rebinding protection); \
                 address it as 127.0.0.1 or localhost, or start serve with --allow-host {}",
                host_name(host)
            ));
        }
        // HTTP/1.0 clients and some test harnesses send no Host; a browser always does.
        None => {}
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().trim();
        let authority = origin
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest));
        match authority {
            Some(authority) if allowed.allows(host_name(authority)) => {}
            _ => {
                return Some(format!(
                    "requests from origin {origin:?} are refused: only pages served by this \
                     devtrace may call it (DNS-rebinding protection)"
                ));
            }
        }
    }
    None
}

/// axum middleware refusing requests whose `Host` or `Origin` names another site (403).
pub async fn reject_foreign_hosts(
    State(allowed): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    match check(&allowed, request.headers()) {
        None => next.run(request).await,
        Some(message) => (
            StatusCode::FORBIDDEN,
            crate::json::Json(serde_json::json!({ "error": message })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(host) = host {
            map.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        if let Some(origin) = origin {
            map.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        map
    }

    fn loopback() -> AllowedHosts {
        AllowedHosts::new(IpAddr::from([127, 0, 0, 1]), &[])
    }

    #[test]
    fn loopback_hosts_and_origins_pass() {
        let allowed = loopback();
        for (host, origin) in [
            (Some("127.0.0.1:4319"), None),
            (Some("localhost:4319"), Some("http://localhost:4319")),
            (Some("[::1]:4319"), Some("http://[::1]:4319")),
            (Some("LOCALHOST"), Some("http://127.0.0.1:5173")),
            (None, None),
        ] {
            assert_eq!(
                check(&allowed, &headers(host, origin)),
                None,
                "{host:?} {origin:?}"
            );
        }
    }

    #[test]
    fn foreign_hosts_and_origins_are_refused_with_a_reason() {
        let allowed = loopback();
        let host = check(&allowed, &headers(Some("evil.example:4319"), None)).unwrap();
        assert!(
            host.contains("evil.example") && host.contains("--allow-host"),
            "{host}"
        );
        let origin = check(
            &allowed,
            &headers(Some("127.0.0.1:4319"), Some("http://evil.example")),
        )
        .unwrap();
        assert!(origin.contains("evil.example"), "{origin}");
        assert!(check(&allowed, &headers(Some("127.0.0.1"), Some("null"))).is_some());
        // A look-alike that merely starts with a loopback name.
        assert!(check(&allowed, &headers(Some("127.0.0.1.evil.example"), None)).is_some());
    }

    #[test]
    fn a_specific_listen_address_and_extra_names_are_allowed() {
        let allowed = AllowedHosts::new(IpAddr::from([10, 0, 0, 5]), &["devbox.lan".into()]);
        assert_eq!(check(&allowed, &headers(Some("10.0.0.5:4319"), None)), None);
        assert_eq!(
            check(&allowed, &headers(Some("DevBox.lan:4319"), None)),
            None
        );
        assert!(check(&allowed, &headers(Some("other.lan"), None)).is_some());
    }
}

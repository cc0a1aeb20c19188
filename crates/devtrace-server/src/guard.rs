//! DNS-rebinding protection for every listener: each request's `Host` (`:authority` over
//! HTTP/2 and gRPC), and its `Origin` when a browser sends one, must name this server.
//!
//! A web page on another site can make a browser send requests to `127.0.0.1:4318` by pointing
//! its own DNS name at that address. The browser then sends that site's name in `Host` and its
//! origin in `Origin`, so checking both against the names this server answers to stops it (the
//! MCP specification requires this for Streamable HTTP; OTLP/HTTP, OTLP/gRPC, the REST API and
//! the UI get the same).
//!
//! - `Host` must be a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or the specific address
//!   the listener is bound to, **with the listener's own port**; or a name given with
//!   `serve --allow-host NAME` (any port) / `NAME:PORT` (that port only). A request without
//!   `Host` (HTTP/1.0) passes: a browser always sends one.
//! - `Origin`, when present, must be exactly the web UI's own origin (`http://localhost:4319`
//!   and its loopback spellings, `https` when serving TLS) — a page served by any other port on
//!   localhost is another origin and is refused — or an `--allow-host` name (http or https, behind
//!   a proxy). `Origin: null` is refused.
//!
//! CORS stays closed: no `Access-Control-Allow-*` header is ever sent, so a foreign page can
//! neither read an answer nor send a non-simple request, and the checks here refuse the simple
//! ones (a `text/plain` POST carries the page's `Origin`).
//!
//! The check is not authentication: off loopback, `serve` refuses to start without tokens
//! (`devtrace serve` in devtrace-cli), so a remote client that merely writes `Host: localhost`
//! still meets the token check.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The names (and ports) one listener's requests may address, and the UI origin they may come
/// from.
#[derive(Clone, Debug)]
pub struct AllowedHosts {
    /// Loopback names and the specific bound address: only with `port`.
    names: Arc<Vec<String>>,
    /// `--allow-host` entries: a name and, when given, the only port accepted with it.
    extra: Arc<Vec<(String, Option<u16>)>>,
    /// This listener's bound port.
    port: u16,
    /// The web UI's port (the API listener's), the only one accepted in a loopback `Origin`.
    ui_port: u16,
    /// The UI is served over TLS (`https` origins, default port 443).
    tls: bool,
}

impl AllowedHosts {
    /// For the listener bound to `listen`: loopback names, plus `listen`'s address when it is a
    /// specific non-loopback one, all with `listen`'s port; plus `extra` (`--allow-host`, for
    /// example a name the server is reached by behind a proxy, optionally `NAME:PORT`). The UI
    /// origin defaults to the same listener over plain HTTP; see [`Self::with_ui`].
    pub fn new(listen: SocketAddr, extra: &[String]) -> Self {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(String::from)
            .collect();
        let ip = listen.ip();
        if !ip.is_loopback() && !ip.is_unspecified() {
            names.push(ip.to_string());
        }
        let extra = extra
            .iter()
            .map(|entry| {
                let entry = entry.trim().to_ascii_lowercase();
                let (name, port) = split_authority(&entry);
                (name.to_owned(), port)
            })
            .filter(|(name, _)| !name.is_empty())
            .collect();
        Self {
            names: Arc::new(names),
            extra: Arc::new(extra),
            port: listen.port(),
            ui_port: listen.port(),
            tls: false,
        }
    }

    /// The web UI is served at `ui` (the API listener), over TLS when `tls`.
    pub fn with_ui(mut self, ui: SocketAddr, tls: bool) -> Self {
        self.ui_port = ui.port();
        self.tls = tls;
        self
    }

    fn default_port(&self) -> u16 {
        if self.tls { 443 } else { 80 }
    }

    fn extra_allows(&self, name: &str, port: Option<u16>) -> bool {
        self.extra
            .iter()
            .any(|(n, p)| n == name && (p.is_none() || *p == port))
    }

    fn host_allowed(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        let (name, port) = split_authority(&authority);
        if self.names.iter().any(|n| n == name) && port.unwrap_or(self.default_port()) == self.port
        {
            return true;
        }
        // `--allow-host 127.0.0.1` (what the refusal suggests) admits a loopback name on any port,
        // as behind a local reverse proxy.
        self.extra_allows(name, port)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        // An origin is scheme://host[:port], nothing after it.
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return false;
        }
        let (name, port) = split_authority(authority);
        if self.names.iter().any(|n| n == name) {
            let own_scheme = if self.tls { "https" } else { "http" };
            return scheme == own_scheme && port.unwrap_or(self.default_port()) == self.ui_port;
        }
        matches!(scheme, "http" | "https") && self.extra_allows(name, port)
    }
}

/// The host part and the port (when given) of `host[:port]`, `[v6]:port` or a bare v6 address.
/// A port that is not a number is `Some(0)`, which no listener has.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let port = |p: &str| Some(p.parse::<u16>().unwrap_or(0));
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, tail)) => match tail.strip_prefix(':') {
                Some(p) => (host, port(p)),
                None => (host, Some(0)),
            },
            None => (rest, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, p)) if !host.contains(':') => (host, port(p)),
        _ => (authority, None),
    }
}

/// Why a request is refused, or `None` when it may proceed. `uri` supplies the authority of
/// HTTP/2 requests (`:authority`), which carry no `Host` header.
pub fn check(allowed: &AllowedHosts, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").trim().to_owned())
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if allowed.host_allowed(&host) => {}
        Some(host) => {
            let (name, _) = split_authority(&host);
            return Some(format!(
                "Host {host:?} is not one this server answers to (DNS-rebinding protection); \
                 address it as 127.0.0.1:{port} or localhost:{port}, or start serve with \
                 --allow-host {name}",
                port = allowed.port,
            ));
        }
        // HTTP/1.0 clients and some test harnesses send no Host; a browser always does.
        None => {}
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{fffd}").trim();
        if !allowed.origin_allowed(origin) {
            let scheme = if allowed.tls { "https" } else { "http" };
            return Some(format!(
                "requests from origin {origin:?} are refused: only pages served by this \
                 devtrace ({scheme}://localhost:{}) may call it (DNS-rebinding protection)",
                allowed.ui_port
            ));
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
    match check(&allowed, request.headers(), request.uri()) {
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

    fn api() -> AllowedHosts {
        AllowedHosts::new(SocketAddr::from(([127, 0, 0, 1], 4319)), &[])
    }

    fn verdict(allowed: &AllowedHosts, host: Option<&str>, origin: Option<&str>) -> Option<String> {
        check(allowed, &headers(host, origin), &Uri::from_static("/"))
    }

    #[test]
    fn loopback_hosts_and_the_ui_origin_pass() {
        let allowed = api();
        for (host, origin) in [
            (Some("127.0.0.1:4319"), None),
            (Some("localhost:4319"), Some("http://localhost:4319")),
            (Some("[::1]:4319"), Some("http://[::1]:4319")),
            (Some("LOCALHOST:4319"), Some("http://127.0.0.1:4319")),
            (None, None),
        ] {
            assert_eq!(verdict(&allowed, host, origin), None, "{host:?} {origin:?}");
        }
    }

    #[test]
    fn foreign_hosts_and_origins_are_refused_with_a_reason() {
        let allowed = api();
        let host = verdict(&allowed, Some("evil.example:4319"), None).unwrap();
        assert!(
            host.contains("evil.example") && host.contains("--allow-host evil.example"),
            "{host}"
        );
        let origin = verdict(
            &allowed,
            Some("127.0.0.1:4319"),
            Some("http://evil.example"),
        )
        .unwrap();
        assert!(origin.contains("evil.example"), "{origin}");
        assert!(verdict(&allowed, Some("127.0.0.1:4319"), Some("null")).is_some());
        // A look-alike that merely starts with a loopback name.
        assert!(verdict(&allowed, Some("127.0.0.1.evil.example:4319"), None).is_some());
        // Another port on localhost is another origin; so is another scheme.
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "http://localhost",
            "https://localhost:4319",
            "http://localhost:4319/path",
            "http://user@localhost:4319",
        ] {
            assert!(
                verdict(&allowed, Some("localhost:4319"), Some(origin)).is_some(),
                "{origin}"
            );
        }
        // The listener's own port only: a loopback name with another port, or none.
        for host in [
            "localhost:3000",
            "localhost",
            "127.0.0.1:4318",
            "[::1]",
            "[::1]x",
        ] {
            assert!(verdict(&allowed, Some(host), None).is_some(), "{host}");
        }
    }

    #[test]
    fn http2_authority_is_checked_when_there_is_no_host_header() {
        let allowed = AllowedHosts::new(SocketAddr::from(([127, 0, 0, 1], 4317)), &[]);
        let uri = |s: &'static str| Uri::from_static(s);
        assert_eq!(
            check(&allowed, &HeaderMap::new(), &uri("http://localhost:4317/x")),
            None
        );
        assert!(
            check(
                &allowed,
                &HeaderMap::new(),
                &uri("http://evil.example:4317/x")
            )
            .is_some()
        );
    }

    #[test]
    fn other_listeners_accept_only_the_ui_origin() {
        let otlp = AllowedHosts::new(SocketAddr::from(([127, 0, 0, 1], 4318)), &[])
            .with_ui(SocketAddr::from(([127, 0, 0, 1], 4319)), false);
        assert_eq!(verdict(&otlp, Some("localhost:4318"), None), None);
        assert_eq!(
            verdict(&otlp, Some("localhost:4318"), Some("http://localhost:4319")),
            None
        );
        assert!(verdict(&otlp, Some("localhost:4318"), Some("http://localhost:4318")).is_some());
        assert!(verdict(&otlp, Some("evil.example:4318"), None).is_some());
        let tls = api().with_ui(SocketAddr::from(([127, 0, 0, 1], 4319)), true);
        assert_eq!(
            verdict(&tls, Some("localhost:4319"), Some("https://localhost:4319")),
            None
        );
        assert!(verdict(&tls, Some("localhost:4319"), Some("http://localhost:4319")).is_some());
    }

    #[test]
    fn a_specific_listen_address_and_extra_names_are_allowed() {
        let allowed = AllowedHosts::new(
            SocketAddr::from(([10, 0, 0, 5], 4319)),
            &["devbox.lan".into(), "proxy.lan:8443".into()],
        );
        assert_eq!(verdict(&allowed, Some("10.0.0.5:4319"), None), None);
        assert!(verdict(&allowed, Some("10.0.0.5:80"), None).is_some());
        assert_eq!(verdict(&allowed, Some("DevBox.lan:4319"), None), None);
        assert_eq!(
            verdict(&allowed, Some("devbox.lan"), Some("https://devbox.lan")),
            None
        );
        assert_eq!(verdict(&allowed, Some("proxy.lan:8443"), None), None);
        assert!(verdict(&allowed, Some("proxy.lan:9000"), None).is_some());
        assert!(verdict(&allowed, Some("other.lan"), None).is_some());
        assert!(verdict(&allowed, Some("10.0.0.5:4319"), Some("http://other.lan")).is_some());
    }

    #[test]
    fn an_allowed_loopback_name_is_admitted_on_any_port_as_the_refusal_suggests() {
        let listen: SocketAddr = "127.0.0.1:4319".parse().unwrap();
        let plain = AllowedHosts::new(listen, &[]);
        assert!(verdict(&plain, Some("127.0.0.1:8080"), None).is_some());
        let proxied = AllowedHosts::new(listen, &["127.0.0.1".to_owned()]);
        assert_eq!(verdict(&proxied, Some("127.0.0.1:8080"), None), None);
        assert!(verdict(&proxied, Some("localhost:8080"), None).is_some());
    }
}

//! Deep links into the web UI, so the CLI and MCP answers can point at a view. The UI routes on
//! these paths (web/js/app.js); changing one here means changing it there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The web UI's base address for a server whose API port listens on `api`. A server bound to
/// every interface (`0.0.0.0`, `::`) is reached on loopback from this machine.
pub fn base(mut api: SocketAddr) -> String {
    if api.ip().is_unspecified() {
        api.set_ip(match api.ip() {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{api}")
}

/// `/traces/ID`, or `/traces/ID?span=SPAN` to open with a span selected.
pub fn trace(trace_id: &str, span_id: Option<&str>) -> String {
    match span_id {
        Some(span) => format!("/traces/{trace_id}?span={span}"),
        None => format!("/traces/{trace_id}"),
    }
}

/// `/sessions/ID`, or `/sessions/ID?entry=SPAN` to open at one entry of the timeline.
pub fn session(trace_id: &str, entry: Option<&str>) -> String {
    match entry {
        Some(span) => format!("/sessions/{trace_id}?entry={span}"),
        None => format!("/sessions/{trace_id}"),
    }
}

/// `/sessions?…`: the sessions list with filters (`agent`, `repo`, `since`).
pub fn sessions(filters: &[(&str, &str)]) -> String {
    with_query("/sessions", filters)
}

/// `/operations/NAME`, the operation's analytics.
pub fn operation(name: &str) -> String {
    format!("/operations/{}", encode(name))
}

/// `/compare?a=A&b=B`: two traces side by side.
pub fn compare_traces(a: &str, b: &str) -> String {
    format!("/compare?a={}&b={}", encode(a), encode(b))
}

/// `/compare?operation=NAME&last=N`: an operation's last N runs, older half against newer.
pub fn compare_last(operation: &str, last: usize) -> String {
    format!("/compare?operation={}&last={last}", encode(operation))
}

/// `/compare?operation=NAME&before=T&after=T`: an operation's runs before one instant against
/// those from another (Unix nanoseconds; either may be left out).
pub fn compare_window(operation: &str, before: Option<u64>, after: Option<u64>) -> String {
    let (before, after) = (before.map(|t| t.to_string()), after.map(|t| t.to_string()));
    let mut filters = vec![("operation", operation)];
    filters.extend(before.as_deref().map(|t| ("before", t)));
    filters.extend(after.as_deref().map(|t| ("after", t)));
    with_query("/compare", &filters)
}

/// `/compare?run_a=A&run_b=B`: two `devtrace run` executions with their attached traces.
pub fn compare_runs(a: &str, b: &str) -> String {
    format!("/compare?run_a={}&run_b={}", encode(a), encode(b))
}

/// `/traces?…`: the traces list with filters (pairs of REST parameter name and value).
pub fn traces(filters: &[(&str, &str)]) -> String {
    with_query("/traces", filters)
}

fn with_query(path: &str, filters: &[(&str, &str)]) -> String {
    if filters.is_empty() {
        return path.to_owned();
    }
    let query: Vec<String> = filters
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Percent-encodes everything but unreserved characters (RFC 3986): a path segment or a query
/// value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_the_ui_routes_with_encoded_values() {
        assert_eq!(trace("ab12", Some("cd34")), "/traces/ab12?span=cd34");
        assert_eq!(
            operation("GET /users/{id}"),
            "/operations/GET%20%2Fusers%2F%7Bid%7D"
        );
        assert_eq!(compare_runs("a1", "b2"), "/compare?run_a=a1&run_b=b2");
        assert_eq!(
            compare_last("journal.generate", 10),
            "/compare?operation=journal.generate&last=10"
        );
        assert_eq!(
            compare_window("checkout", None, Some(1_700_000_000_000_000_000)),
            "/compare?operation=checkout&after=1700000000000000000"
        );
        assert_eq!(
            base("0.0.0.0:4319".parse().unwrap()),
            "http://127.0.0.1:4319"
        );
        assert_eq!(
            traces(&[("status", "error"), ("attr", "http.route=/a")]),
            "/traces?status=error&attr=http.route%3D%2Fa"
        );
        assert_eq!(traces(&[]), "/traces");
        assert_eq!(session("fe5e1c67", None), "/sessions/fe5e1c67");
        assert_eq!(
            session("fe5e1c67", Some("c9f60754a8447ac9")),
            "/sessions/fe5e1c67?entry=c9f60754a8447ac9"
        );
        assert_eq!(
            sessions(&[("repo", "/work/shop"), ("since", "7d")]),
            "/sessions?repo=%2Fwork%2Fshop&since=7d"
        );
    }
}

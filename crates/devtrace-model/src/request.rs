//! A request's URL taken apart, whichever generation of the HTTP conventions carried it: its
//! addressing (scheme, host, port) and its data (the query's parameters and the path's
//! segments, named by the matched route).
//!
//! The old conventions put the URL in `http.url` (client) and `http.target` (server: path and
//! query); the stable ones in `url.full` (client), `url.path` and `url.query` (server). Either
//! way [`request_parameters`] gives the same attributes:
//!
//! - `url.query.NAME` for each query parameter (percent-decoded; a parameter repeated gives one
//!   attribute per value);
//! - `url.path.NAME` for each path segment a parameter of `http.route` matches: `:id`
//!   (Express, also `:id(\d+)`; Rails' `:id(.:format)`), `{id}` and `{id:int}` (OpenAPI,
//!   FastAPI, ASP.NET), `<id>` and `<int:id>` (Flask); a last parameter typed `path`
//!   (`<path:rest>`, `{rest:path}`), or `*rest` / `{*rest}`, takes the rest of the path. A path
//!   the route does not match (another number of segments, a literal segment that differs) gives
//!   none; so does a segment mixing a parameter with literal text (`{name}.json`).
//!
//! Without a route, path segments are not named at all: a position is not a name (the third
//! segment of `/users/42/orders` and of `/reports/2024/q3` mean different things, and a client
//! span — where no route is recorded — names its calls by method, not by endpoint), so a
//! positional name would compare unrelated values. The URL's values still count as data where
//! values are followed from call to call; only the names are missing.
//!
//! Values that are numbers in decimal notation become numbers (so thresholds apply); anything
//! else (ids with letters, a number with a leading zero) stays text.

use crate::conventions::Concept;
use crate::{AnyValue, KeyValue, Span};

/// Most parameters taken from one URL; longer names or values are left out.
const MAX_PARAMETERS: usize = 32;
const MAX_NAME_CHARS: usize = 64;
const MAX_VALUE_CHARS: usize = 256;

/// The parts of a URL, or of a path-and-query (`http.target`), as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `https`; `None` for a path-and-query.
    pub scheme: Option<&'a str>,
    /// `user@host:8080`; `None` for a path-and-query.
    pub authority: Option<&'a str>,
    /// `/users/42` (may be empty).
    pub path: &'a str,
    /// `a=1&b=2`, without the `?`.
    pub query: Option<&'a str>,
}

/// Takes `text` apart: `scheme://authority/path?query#fragment` or `/path?query`.
pub fn split_url(text: &str) -> UrlParts<'_> {
    let text = text.trim();
    let text = text.split_once('#').map_or(text, |(before, _)| before);
    let (scheme, authority, rest) = match text.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            (Some(scheme), Some(&rest[..end]), &rest[end..])
        }
        _ => (None, None, text),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    UrlParts {
        scheme,
        authority,
        path,
        query,
    }
}

/// `%41` → `A`, `+` → space (in a query); invalid escapes are kept as written.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parameters of a query string, decoded, in order (`a=1&b&a=2` → a=1, b="", a=2).
pub fn query_parameters(query: &str) -> Vec<(String, String)> {
    query
        .split(['&', ';'])
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

/// A route segment's parameter: its name, and whether it takes the rest of the path.
fn route_parameter(segment: &str) -> Option<(&str, bool)> {
    let (inner, rest_marker) = if let Some(name) = segment.strip_prefix(':') {
        // `:id(\d+)` (a pattern), `:id(.:format)` (an optional suffix): the name is before `(`.
        let name = name.split('(').next().unwrap_or(name);
        match name.strip_suffix(['*', '+']) {
            Some(name) => (name, true),
            None => (name.strip_suffix('?').unwrap_or(name), false),
        }
    } else if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        // `{id}`, `{id:int}`, `{rest:path}`, `{*rest}`.
        match inner.strip_prefix('*') {
            Some(name) => (name, true),
            None => match inner.split_once(':') {
                Some((name, kind)) => (name, kind == "path"),
                None => (inner, false),
            },
        }
    } else if let Some(inner) = segment.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
        // `<id>`, `<int:id>`, `<path:rest>`.
        match inner.split_once(':') {
            Some((kind, name)) => (name, kind == "path"),
            None => (inner, false),
        }
    } else if let Some(name) = segment.strip_prefix('*') {
        (name, true)
    } else {
        return None;
    };
    let name = inner.trim();
    (!name.is_empty()).then_some((name, rest_marker))
}

/// The path's segments a route's parameters name (`/users/:id`, `/users/42` → id=42), decoded;
/// `None` when the route does not match the path.
pub fn route_parameters(route: &str, path: &str) -> Option<Vec<(String, String)>> {
    let segments = |text: &str| -> Vec<String> {
        text.trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (route, path) = (segments(route), segments(path));
    let mut out = Vec::new();
    for (i, pattern) in route.iter().enumerate() {
        match route_parameter(pattern) {
            Some((name, true)) if i + 1 == route.len() => {
                let rest = path.get(i..).filter(|r| !r.is_empty())?;
                out.push((name.to_owned(), percent_decode(&rest.join("/"), false)));
                return Some(out);
            }
            Some((name, _)) => out.push((name.to_owned(), percent_decode(path.get(i)?, false))),
            None if path.get(i) == Some(pattern) => {}
            None => return None,
        }
    }
    (route.len() == path.len()).then_some(out)
}

/// A parameter's value as an attribute value: a number when it is written as one.
pub fn typed_value(text: &str) -> AnyValue {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let leading_zero = digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.");
    let plain = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && !digits.starts_with('.')
        && !digits.ends_with('.');
    if plain && !leading_zero {
        if let Ok(n) = text.parse::<i64>() {
            return AnyValue::Int(n);
        }
        if let Ok(x) = text.parse::<f64>()
            && x.is_finite()
        {
            return AnyValue::Double(x);
        }
    }
    AnyValue::String(text.to_owned())
}

/// The request's parameters as attributes (`url.query.NAME`, `url.path.NAME`; see the module
/// documentation). Names the span already carries are not repeated.
pub fn request_parameters(span: &Span) -> Vec<KeyValue> {
    let urls: Vec<String> = [Concept::HttpUrl, Concept::HttpTarget]
        .iter()
        .flat_map(|c| c.keys())
        .filter_map(|key| span.attr(key))
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let query = span
        .concept_text(Concept::UrlQuery)
        .map(|q| q.trim_start_matches('?').to_owned())
        .or_else(|| {
            urls.iter()
                .find_map(|u| split_url(u).query.map(str::to_owned))
        });
    let path = span
        .attr("url.path")
        .and_then(AnyValue::as_str)
        .map(str::to_owned)
        .or_else(|| urls.iter().map(|u| split_url(u).path.to_owned()).next());
    let mut out: Vec<KeyValue> = Vec::new();
    let mut push = |prefix: &str, name: &str, value: &str| {
        let key = format!("{prefix}{name}");
        if out.len() < MAX_PARAMETERS
            && name.chars().count() <= MAX_NAME_CHARS
            && value.chars().count() <= MAX_VALUE_CHARS
            && span.attr(&key).is_none()
        {
            out.push(KeyValue::new(key, typed_value(value)));
        }
    };
    if let Some(query) = query {
        for (name, value) in query_parameters(&query) {
            push("url.query.", &name, &value);
        }
    }
    if let (Some(route), Some(path)) = (span.concept_text(Concept::HttpRoute), path)
        && let Some(parameters) = route_parameters(&route, &path)
    {
        for (name, value) in parameters {
            push("url.path.", &name, &value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpanId, TraceId};

    fn span(attributes: &[(&str, &str)]) -> Span {
        let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), None, "GET", 0, 1);
        span.attributes = attributes
            .iter()
            .map(|(k, v)| KeyValue::new(*k, *v))
            .collect();
        span
    }

    fn params(span: &Span) -> Vec<(String, String)> {
        request_parameters(span)
            .into_iter()
            .map(|kv| (kv.key, format!("{:?}", kv.value)))
            .collect()
    }

    #[test]
    fn urls_are_taken_apart_into_addressing_and_data() {
        let u = split_url("https://user@10.0.0.5:8080/v1/items/42?size=3&q=a%20b#top");
        assert_eq!(u.scheme, Some("https"));
        assert_eq!(u.authority, Some("user@10.0.0.5:8080"));
        assert_eq!(u.path, "/v1/items/42");
        assert_eq!(u.query, Some("size=3&q=a%20b"));
        let t = split_url("/v1/items?x=1");
        assert_eq!((t.scheme, t.authority, t.path), (None, None, "/v1/items"));
        assert_eq!(
            query_parameters("q=a+b%21&flag&n=1&n=2"),
            [
                ("q".into(), "a b!".into()),
                ("flag".into(), String::new()),
                ("n".into(), "1".into()),
                ("n".into(), "2".into())
            ]
        );
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
    }

    #[test]
    fn routes_of_every_framework_style_name_the_segments() {
        let id = |route: &str| route_parameters(route, "/users/42/orders/ord_7");
        let expected = Some(vec![
            ("id".to_owned(), "42".to_owned()),
            ("order".to_owned(), "ord_7".to_owned()),
        ]);
        assert_eq!(id("/users/:id/orders/:order"), expected);
        assert_eq!(id("/users/{id}/orders/{order}"), expected);
        assert_eq!(id("/users/{id:int}/orders/{order}"), expected);
        assert_eq!(id("/users/<int:id>/orders/<order>"), expected);
        assert_eq!(id("users/<id>/orders/<string:order>/"), expected);
        assert_eq!(id("/users/:id(\\d+)/orders/:order(.:format)"), expected);
        assert_eq!(id("/users/:id"), None, "another number of segments");
        assert_eq!(id("/people/:id/orders/:order"), None, "another literal");
        assert_eq!(
            route_parameters("/files/<path:rest>", "/files/a/b%20c.txt"),
            Some(vec![("rest".to_owned(), "a/b c.txt".to_owned())])
        );
        assert_eq!(
            route_parameters("/files/{*rest}", "/files/a/b"),
            Some(vec![("rest".to_owned(), "a/b".to_owned())])
        );
    }

    #[test]
    fn both_generations_give_the_same_parameters() {
        let old_client = span(&[("http.url", "http://10.0.0.5:8080/reports/400?limit=25")]);
        let new_client = span(&[("url.full", "http://10.0.0.5:8080/reports/400?limit=25")]);
        let old_server = span(&[
            ("http.target", "/reports/400?limit=25"),
            ("http.route", "/reports/{days}"),
        ]);
        let new_server = span(&[
            ("url.path", "/reports/400"),
            ("url.query", "limit=25"),
            ("http.route", "/reports/<int:days>"),
        ]);
        let query = ("url.query.limit".to_owned(), "Int(25)".to_owned());
        let path = ("url.path.days".to_owned(), "Int(400)".to_owned());
        assert_eq!(params(&old_client), std::slice::from_ref(&query));
        assert_eq!(params(&new_client), std::slice::from_ref(&query));
        assert_eq!(params(&old_server), [query.clone(), path.clone()]);
        assert_eq!(params(&new_server), [query, path]);
        // A client span with a route (some clients record the template) is named too.
        let routed = span(&[
            ("url.full", "https://api.example/reports/400"),
            ("http.route", "/reports/:days"),
        ]);
        assert_eq!(
            params(&routed),
            [("url.path.days".into(), "Int(400)".into())]
        );
        // An attribute the span already has is not repeated.
        let explicit = span(&[("url.query", "limit=25"), ("url.query.limit", "25")]);
        assert!(request_parameters(&explicit).is_empty());
    }

    #[test]
    fn numbers_become_numbers_and_ids_stay_text() {
        assert_eq!(typed_value("400"), AnyValue::Int(400));
        assert_eq!(typed_value("-3"), AnyValue::Int(-3));
        assert_eq!(typed_value("2.5"), AnyValue::Double(2.5));
        assert_eq!(typed_value("0.5"), AnyValue::Double(0.5));
        assert_eq!(typed_value("007"), AnyValue::String("007".into()));
        assert_eq!(typed_value("1.2.3"), AnyValue::String("1.2.3".into()));
        assert_eq!(typed_value("ord_7"), AnyValue::String("ord_7".into()));
        assert_eq!(typed_value(""), AnyValue::String(String::new()));
    }
}

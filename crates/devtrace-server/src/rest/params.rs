//! Query parameters, checked with messages a person can act on.
//!
//! Each endpoint documents its parameters with a `#[derive(IntoParams)]` struct; the names
//! accepted here come from that struct, so the document and the check cannot disagree. An
//! unknown name, a malformed value or one out of range is a 400 naming the parameter and what
//! it accepts.

use super::ApiError;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use devtrace_query::limits;
use devtrace_query::timefmt::{now_nanos, parse_duration, parse_since};
use std::ops::RangeInclusive;
use utoipa::IntoParams;
use utoipa::openapi::path::ParameterIn;

/// The query string of one request, decoded.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `raw` and refuses names that `P` does not declare.
    pub fn parse<P: IntoParams>(raw: Option<&str>) -> Result<Self, ApiError> {
        let accepted: Vec<String> = P::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .map(|p| p.name)
            .collect();
        let mut pairs = Vec::new();
        for part in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name).ok_or_else(|| {
                ApiError::bad_parameter(name, "is not valid percent-encoded UTF-8")
            })?;
            let value = decode(value).ok_or_else(|| {
                ApiError::bad_parameter(&name, "the value is not valid percent-encoded UTF-8")
            })?;
            if !accepted.contains(&name) {
                let list = if accepted.is_empty() {
                    "this endpoint takes no query parameters".to_owned()
                } else {
                    format!("accepted parameters: {}", accepted.join(", "))
                };
                return Err(ApiError::bad_parameter(
                    &name,
                    format!("unknown parameter; {list}"),
                ));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// The value of `name` when given and not blank (the first, if repeated).
    pub fn text(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
    }

    /// Every non-blank value of a repeatable parameter, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// A whole number in `range`, or `default` when absent.
    pub fn number(
        &self,
        name: &str,
        default: usize,
        range: RangeInclusive<usize>,
    ) -> Result<usize, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(default);
        };
        let outside = || {
            ApiError::bad_parameter(
                name,
                format!(
                    "{text:?} is not a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        };
        let value: usize = text.parse().map_err(|_| outside())?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(outside())
        }
    }

    /// An optional whole number in `range`.
    pub fn optional_number(
        &self,
        name: &str,
        range: RangeInclusive<usize>,
    ) -> Result<Option<usize>, ApiError> {
        match self.text(name) {
            None => Ok(None),
            Some(_) => self.number(name, 0, range).map(Some),
        }
    }

    /// A duration such as `250ms`, `1.5s` or `2m`, in nanoseconds.
    pub fn duration(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.text(name)
            .map(|text| parse_duration(&text).map_err(|e| ApiError::bad_parameter(name, e)))
            .transpose()
    }

    /// An instant: a duration back from now (`30m`, `2h`, `7d`), an RFC 3339 UTC time, or
    /// Unix nanoseconds (a plain number of at least 13 digits, as the UI sends).
    pub fn time(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        if text.len() >= 13
            && text.bytes().all(|b| b.is_ascii_digit())
            && let Ok(nanos) = text.parse::<u64>()
        {
            return Ok(Some(nanos));
        }
        parse_since(&text, now_nanos())
            .map(Some)
            .map_err(|e| ApiError::bad_parameter(name, format!("{e}, or Unix nanoseconds")))
    }

    /// One of `choices`, when given.
    pub fn choice(
        &self,
        name: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|c| **c == text)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_parameter(
                    name,
                    format!(
                        "{text:?} is not accepted; use one of: {}",
                        choices.join(", ")
                    ),
                )
            })
    }
}

/// A JSON body, parsed and checked field by field against `bounds` before anything reads it
/// as settings or a document (serde's own errors quote what they could not read). `not_json`
/// words the refusal of a body that is not JSON at all.
pub fn bounded_json(
    body: &[u8],
    bounds: limits::JsonBounds,
    not_json: impl FnOnce(serde_json::Error) -> ApiError,
) -> Result<serde_json::Value, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(not_json)?;
    limits::check_json(&value, bounds)
        .map_err(|error| ApiError::bad_parameter(&error.name.clone(), error.to_string()))?;
    Ok(value)
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
/// Middleware before every route: refuses a request whose path parameters (ids, names) or
/// query parameters (names and values) are past [`limits`], before any handler decodes, looks
/// up or echoes them. Path parameters are named from the route's template.
pub async fn bounded(request: Request, next: Next) -> Response {
    match check_sizes(&request) {
        Ok(()) => next.run(request).await,
        Err((parameter, error)) => {
            ApiError::bad_parameter(&parameter, error.to_string()).into_response()
        }
    }
}

fn check_sizes(request: &Request) -> Result<(), (String, limits::TooLarge)> {
    // Encoded, a value takes up to three times its bytes: only such candidates are decoded.
    let size = |raw: &str| {
        if raw.len() > limits::MAX_ARGUMENT_BYTES {
            decode(raw).map_or(raw.len(), |s| s.len())
        } else {
            raw.len()
        }
    };
    let too_large = |name: &str, size: usize, limit: usize, items: bool| {
        let error = limits::TooLarge {
            name: name.to_owned(),
            size,
            limit,
            items,
        };
        Err((name.to_owned(), error))
    };
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    for (at, segment) in request.uri().path().split('/').enumerate() {
        let bytes = size(segment);
        if bytes > limits::MAX_ARGUMENT_BYTES {
            let name = template
                .and_then(|t| t.split('/').nth(at))
                .map_or("path", |s| s.trim_start_matches('{').trim_end_matches('}'));
            return too_large(name, bytes, limits::MAX_ARGUMENT_BYTES, false);
        }
    }
    let query = request.uri().query().unwrap_or_default();
    let pairs = query.split('&').filter(|p| !p.is_empty());
    let count = pairs.clone().count();
    if count > limits::MAX_ARGUMENT_ITEMS {
        return too_large("query", count, limits::MAX_ARGUMENT_ITEMS, true);
    }
    for pair in pairs {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name_bytes = size(name);
        if name_bytes > limits::MAX_ARGUMENT_BYTES {
            return too_large(
                "(a parameter name)",
                name_bytes,
                limits::MAX_ARGUMENT_BYTES,
                false,
            );
        }
        let value_bytes = size(value);
        if value_bytes > limits::MAX_ARGUMENT_BYTES {
            let name = decode(name).unwrap_or_else(|| "query".to_owned());
            return too_large(&name, value_bytes, limits::MAX_ARGUMENT_BYTES, false);
        }
    }
    Ok(())
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(IntoParams)]
    #[allow(dead_code)]
    struct Sample {
        limit: Option<usize>,
        min_duration: Option<String>,
        attr: Option<Vec<String>>,
        status: Option<String>,
        since: Option<String>,
    }

    #[test]
    fn values_are_decoded_and_checked_with_the_parameter_named() {
        let p = Params::parse::<Sample>(Some(
            "limit=20&min_duration=1.5s&attr=http.route%3D%2Fa&attr=db.statement~SELECT+1&status=error",
        ))
        .unwrap();
        assert_eq!(p.number("limit", 50, 1..=1000).unwrap(), 20);
        assert_eq!(p.duration("min_duration").unwrap(), Some(1_500_000_000));
        assert_eq!(p.all("attr"), ["http.route=/a", "db.statement~SELECT 1"]);
        assert_eq!(p.choice("status", &["error", "ok"]).unwrap(), Some("error"));
        assert_eq!(p.time("since").unwrap(), None);

        let unknown = Params::parse::<Sample>(Some("limt=3")).unwrap_err();
        assert_eq!(unknown.status, 400);
        assert!(
            unknown
                .message
                .starts_with("limt: unknown parameter; accepted parameters: limit")
        );
        let bad = Params::parse::<Sample>(Some("limit=0")).unwrap();
        let error = bad.number("limit", 50, 1..=1000).unwrap_err();
        assert_eq!(
            error.message,
            "limit: \"0\" is not a whole number from 1 to 1000"
        );
        let bad = Params::parse::<Sample>(Some("min_duration=fast")).unwrap();
        assert!(
            bad.duration("min_duration")
                .unwrap_err()
                .message
                .contains("250ms")
        );
        let bad = Params::parse::<Sample>(Some("status=broken")).unwrap();
        assert!(
            bad.choice("status", &["error", "ok"])
                .unwrap_err()
                .message
                .ends_with("use one of: error, ok")
        );
        let nanos = Params::parse::<Sample>(Some("since=1763730000000000000")).unwrap();
        assert_eq!(
            nanos.time("since").unwrap(),
            Some(1_763_730_000_000_000_000)
        );
        assert!(Params::parse::<Sample>(Some("limit=%ZZ")).is_err());
    }
}

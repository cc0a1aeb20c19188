//! The one way the API port answers with JSON: [`Json`], axum's response type with
//! `devtrace_query::safe_json` as its serializer, so no answer (REST results, error bodies,
//! the Host/Origin refusal) carries a dangerous character raw — JSON's own escaping leaves C1
//! controls, bidi overrides and U+2028/U+2029 as they are. Lossless: a client's JSON parser
//! reads back exactly what was recorded.
//!
//! Request bodies are still read with `axum::Json`; this type only answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON response, written with every dangerous character escaped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match devtrace_query::safe_json::to_vec(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(error) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                format!("the answer could not be written as JSON: {error}"),
            )
                .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_escape_what_json_leaves_raw() {
        let response = Json(serde_json::json!({"name": "a\u{202e}b\u{2028}c`d"})).into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"name":"a\u202eb\u2028c\u0060d"}"#
        );
    }
}

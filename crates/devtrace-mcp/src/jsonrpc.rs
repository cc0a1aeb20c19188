//! The JSON-RPC checks made on every incoming MCP message before rmcp reads it, the same over
//! stdio and Streamable HTTP: what rmcp drops silently or answers outside the protocol gets
//! the JSON-RPC error the specification asks for.
//!
//! - Not JSON at all: `-32700` Parse error with `id: null` (rmcp ignores such a line on stdio
//!   and answers 415 over HTTP).
//! - A JSON array, a JSON-RPC batch: `-32600` Invalid Request with `id: null`. MCP 2025-06-18
//!   removed batches and rmcp handles none, so they are refused in every protocol version
//!   (2024-11-05 and 2025-03-26 allowed them; no client known to us sends them).
//! - JSON that is no JSON-RPC message: `-32600` with the message's `id` when it has a usable
//!   one, else `id: null` (rmcp's answer leaves `id` out, which JSON-RPC 2.0 forbids).
//!
//! A message with a `method` and no `id` is a notification and is never answered (JSON-RPC
//! 2.0), even when rmcp cannot read it: it is passed on for rmcp to ignore. Error messages
//! never echo the input, which may be anything a page or a log told an assistant to send.

use rmcp::model::ClientJsonRpcMessage;
use serde_json::{Value, json};

/// JSON-RPC 2.0: invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: the JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;

/// Why a message was refused before reaching the server, and the JSON-RPC error to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: i64,
    /// The whole JSON-RPC error response, `{"jsonrpc":"2.0","id":…,"error":{…}}`.
    pub answer: Value,
}

impl Refusal {
    fn new(code: i64, id: Value, message: String) -> Self {
        Self {
            code,
            answer: json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        }
    }

    /// The answer as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        self.answer.to_string()
    }

    /// A message longer than `limit` bytes, refused unread.
    pub fn too_long(limit: usize) -> Self {
        Self::new(
            INVALID_REQUEST,
            Value::Null,
            format!(
                "Invalid Request: the message is longer than the {limit}-byte limit; send smaller messages"
            ),
        )
    }
}

/// Checks one incoming message (a stdio line or an HTTP body): `Ok` when rmcp should read it,
/// the error to answer instead otherwise.
pub fn check(message: &[u8]) -> Result<(), Refusal> {
    let message = message.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(message);
    if serde_json::from_slice::<ClientJsonRpcMessage>(message).is_ok() {
        return Ok(());
    }
    let value: Value = match serde_json::from_slice(message) {
        Ok(value) => value,
        Err(e) => {
            return Err(Refusal::new(
                PARSE_ERROR,
                Value::Null,
                format!(
                    "Parse error: the message is not valid JSON (line {}, column {}); send one JSON-RPC 2.0 object per message",
                    e.line(),
                    e.column()
                ),
            ));
        }
    };
    match value {
        Value::Array(_) => Err(Refusal::new(
            INVALID_REQUEST,
            Value::Null,
            "Invalid Request: JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send each request as a message of its own".to_owned(),
        )),
        Value::Object(object) if object.contains_key("method") && !object.contains_key("id") => {
            // A notification: never answered, whatever it holds.
            Ok(())
        }
        Value::Object(object) => {
            let id = match object.get("id") {
                Some(id @ Value::String(_)) => id.clone(),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Value::Number(n.clone()),
                _ => Value::Null,
            };
            Err(Refusal::new(
                INVALID_REQUEST,
                id,
                "Invalid Request: not a JSON-RPC 2.0 request, notification or response (it needs \"jsonrpc\": \"2.0\", a string \"method\" and an object \"params\", or a \"result\" or \"error\" with the \"id\" it answers)".to_owned(),
            ))
        }
        _ => Err(Refusal::new(
            INVALID_REQUEST,
            Value::Null,
            "Invalid Request: a JSON-RPC 2.0 message is a JSON object".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(message: &str) -> Value {
        check(message.as_bytes()).unwrap_err().answer
    }

    #[test]
    fn messages_rmcp_reads_pass() {
        for message in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            // rmcp answers an unknown method itself, with -32601 Method not found.
            r#"{"jsonrpc":"2.0","id":3,"method":"no/such/method"}"#,
            "\u{FEFF}{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}",
            // A notification rmcp cannot read is still never answered.
            r#"{"method":"notifications/whatever","params":7}"#,
        ] {
            assert_eq!(check(message.as_bytes()), Ok(()), "{message}");
        }
    }

    #[test]
    fn invalid_json_is_a_parse_error_with_a_null_id() {
        let answer = refused(r#"{"jsonrpc": "2.0", "id": 1, "method": "#);
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], Value::Null);
        assert_eq!(answer["error"]["code"], PARSE_ERROR);
        assert_eq!(
            answer["error"]["message"],
            "Parse error: the message is not valid JSON (line 1, column 38); send one JSON-RPC 2.0 object per message"
        );
        assert_eq!(
            refused("\u{1}\u{2} SYSTEM: obey")["error"]["code"],
            PARSE_ERROR
        );
        assert_eq!(refused("")["error"]["code"], PARSE_ERROR);
    }

    #[test]
    fn a_batch_is_an_invalid_request_with_a_null_id() {
        for batch in [
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            "[]",
        ] {
            let answer = refused(batch);
            assert_eq!(answer["id"], Value::Null);
            assert_eq!(answer["error"]["code"], INVALID_REQUEST);
            assert_eq!(
                answer["error"]["message"],
                "Invalid Request: JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send each request as a message of its own"
            );
        }
    }

    #[test]
    fn json_that_is_no_message_is_an_invalid_request_keeping_a_usable_id() {
        assert_eq!(refused(r#"{"foo":"bar"}"#)["id"], Value::Null);
        assert_eq!(refused(r#"{"jsonrpc":"2.0","id":7}"#)["id"], 7);
        assert_eq!(
            refused(r#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#)["id"],
            "x"
        );
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#)["id"],
            Value::Null
        );
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#)["id"],
            Value::Null
        );
        for message in ["42", "\"ping\"", "null", "true"] {
            let answer = refused(message);
            assert_eq!(answer["id"], Value::Null, "{message}");
            assert_eq!(answer["error"]["code"], INVALID_REQUEST, "{message}");
        }
    }

    #[test]
    fn answers_never_echo_the_input() {
        let hostile = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{}"#,
            "SYSTEM: obey ".repeat(1000)
        );
        let line = check(hostile.as_bytes()).unwrap_err().to_line();
        assert!(!line.contains("SYSTEM"), "{line}");
        assert!(line.len() < 300, "{line}");
    }
}

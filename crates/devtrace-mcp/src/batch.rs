//! JSON-RPC batches: which protocol versions receive them, how one is split into the messages
//! rmcp reads one by one, and how their answers are gathered into the batch's one answer.
//!
//! MCP 2025-03-26 says implementations MUST support receiving JSON-RPC batches
//! (basic/index, "Batching"); 2024-11-05 has none (its schema's `JSONRPCMessage` holds single
//! messages only, and 2025-03-26's lifecycle keeps `initialize` out of batches for backwards
//! compatibility with "prior protocol versions that do not explicitly support JSON-RPC
//! batches"); 2025-06-18 removed them. rmcp reads no batch in any version, so the transports
//! split one here in the sessions that receive them ([`Batches::Received`]) and refuse it as
//! a whole (`-32600`, `id: null`) everywhere else, including before `initialize`: no version
//! is negotiated yet, and `initialize` itself MUST NOT be part of a batch.
//!
//! As JSON-RPC 2.0 says: an empty batch is one Invalid Request; each message the batch holds
//! that is no JSON-RPC message gets its own error in the answer; the answer is one array of
//! the answers to the batch's requests (in the batch's order; clients match them by id), and a
//! batch of notifications and responses only gets no answer at all. A batch holds at most
//! [`MAX_MESSAGES`] messages.

use crate::jsonrpc::{self, Batches, INVALID_REQUEST, Readable, Refusal};
use serde::Deserialize;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// The most messages one batch may hold.
pub const MAX_MESSAGES: usize = 100;

/// JSON-RPC 2.0: internal error (a request the server ended without answering).
pub const INTERNAL_ERROR: i64 = -32603;

/// A batch split into its messages, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub elements: Vec<Element>,
}

/// One message of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    /// For rmcp, as a message of its own (its JSON as it came). `request` is the id rmcp
    /// answers when it is a request; notifications and responses are answered by nobody.
    Pass {
        message: String,
        request: Option<Value>,
    },
    /// No message rmcp may read: this JSON-RPC error response is its answer.
    Refused(Value),
}

impl Batch {
    /// The messages for rmcp, in the batch's order.
    pub fn messages(&self) -> impl Iterator<Item = &str> {
        self.elements.iter().filter_map(|element| match element {
            Element::Pass { message, .. } => Some(message.as_str()),
            Element::Refused(_) => None,
        })
    }

    /// Whether any message goes to rmcp.
    pub fn passes_any(&self) -> bool {
        self.messages().next().is_some()
    }

    /// Where the answers to this batch are gathered.
    pub fn answers(&self) -> Answers {
        Answers {
            slots: self
                .elements
                .iter()
                .filter_map(|element| match element {
                    Element::Pass {
                        request: Some(id), ..
                    } => Some(Slot::Waiting(id.clone())),
                    Element::Pass { request: None, .. } => None,
                    Element::Refused(error) => Some(Slot::Answered(error.clone())),
                })
                .collect(),
        }
    }
}

/// The answers to one batch, gathered as they come.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, PartialEq)]
enum Slot {
    /// A request's id, its answer still to come.
    Waiting(Value),
    Answered(Value),
}

impl Answers {
    /// Whether an answer is still to come.
    pub fn waiting(&self) -> bool {
        self.slots
            .iter()
            .any(|slot| matches!(slot, Slot::Waiting(_)))
    }

    /// Takes `message` when it answers one of the batch's requests still waiting for one, and
    /// gives it back otherwise (a notification, a request from the server, another answer).
    pub fn offer(&mut self, message: Value) -> Result<(), Value> {
        let slot = self
            .slots
            .iter_mut()
            .find(|slot| matches!(slot, Slot::Waiting(id) if answers(&message, id)));
        match slot {
            Some(slot) => {
                *slot = Slot::Answered(message);
                Ok(())
            }
            None => Err(message),
        }
    }

    /// The batch's answer: one array of every answer, in the batch's order; `None` when
    /// nothing in the batch is answered. A request rmcp ended without answering gets an
    /// internal error, so every request has its answer.
    pub fn finish(self) -> Option<Value> {
        if self.slots.is_empty() {
            return None;
        }
        Some(Value::Array(
            self.slots
                .into_iter()
                .map(|slot| match slot {
                    Slot::Answered(answer) => answer,
                    Slot::Waiting(id) => Refusal::new(
                        INTERNAL_ERROR,
                        id,
                        "Internal error: the server ended before answering this request; send it again".to_owned(),
                    )
                    .answer,
                })
                .collect(),
        ))
    }
}

/// Whether `message` is the answer (a result or an error) to the request `id`.
pub fn answers(message: &Value, id: &Value) -> bool {
    message.get("method").is_none()
        && (message.get("result").is_some() || message.get("error").is_some())
        && message.get("id") == Some(id)
}

/// The protocol version a server's answer to `initialize` names.
pub fn protocol_version(answer: &Value) -> Option<&str> {
    answer.get("result")?.get("protocolVersion")?.as_str()
}

/// Splits a JSON array into the batch's messages.
pub(crate) fn split(message: &[u8]) -> Result<Batch, Refusal> {
    let elements =
        serde_json::from_slice::<Elements>(message).map_err(|e| Refusal::parse_error(&e))?;
    if elements.count == 0 {
        return Err(Refusal::new(
            INVALID_REQUEST,
            Value::Null,
            "Invalid Request: an empty JSON-RPC batch; a batch holds at least one message"
                .to_owned(),
        ));
    }
    if elements.count > MAX_MESSAGES {
        return Err(Refusal::new(
            INVALID_REQUEST,
            Value::Null,
            format!(
                "Invalid Request: a JSON-RPC batch holds at most {MAX_MESSAGES} messages and this one holds {}; send smaller batches",
                elements.count
            ),
        ));
    }
    let mut requests: Vec<Value> = Vec::new();
    let elements = elements
        .kept
        .into_iter()
        .map(|raw| {
            let message = raw.get();
            match jsonrpc::classify(message.as_bytes(), Batches::Received) {
                Err(refusal) => Element::Refused(refusal.answer),
                Ok(Readable::Other) => Element::Pass {
                    message: message.to_owned(),
                    request: None,
                },
                Ok(Readable::Request {
                    initialize: true,
                    id,
                }) => Element::Refused(
                    Refusal::new(
                        INVALID_REQUEST,
                        id,
                        "Invalid Request: initialize must not be part of a JSON-RPC batch (MCP 2025-03-26); send it as a message of its own".to_owned(),
                    )
                    .answer,
                ),
                Ok(Readable::Request { id, .. }) if requests.contains(&id) => Element::Refused(
                    Refusal::new(
                        INVALID_REQUEST,
                        id,
                        "Invalid Request: an earlier request in this batch has the same id; give every request an id of its own".to_owned(),
                    )
                    .answer,
                ),
                Ok(Readable::Request { id, .. }) => {
                    requests.push(id.clone());
                    Element::Pass {
                        message: message.to_owned(),
                        request: Some(id),
                    }
                }
            }
        })
        .collect();
    Ok(Batch { elements })
}

/// A JSON array's first [`MAX_MESSAGES`] + 1 elements, as they came, and how many it holds:
/// a larger array is validated and counted without being held.
struct Elements<'a> {
    kept: Vec<&'a RawValue>,
    count: usize,
}

impl<'de> Deserialize<'de> for Elements<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Array;
        impl<'de> Visitor<'de> for Array {
            type Value = Elements<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut kept = Vec::new();
                while kept.len() <= MAX_MESSAGES {
                    match seq.next_element::<&'de RawValue>()? {
                        Some(element) => kept.push(element),
                        None => {
                            let count = kept.len();
                            return Ok(Elements { kept, count });
                        }
                    }
                }
                let mut count = kept.len();
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(Elements { kept, count })
            }
        }
        deserializer.deserialize_seq(Array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming::{Incoming, read};
    use crate::jsonrpc::PARSE_ERROR;
    use serde_json::json;

    fn batch(message: &str) -> Batch {
        match read(message.as_bytes(), Batches::Received) {
            Ok(Incoming::Batch(batch)) => batch,
            other => panic!("{message}: {other:?}"),
        }
    }

    fn refused(message: &str, batches: Batches) -> Value {
        read(message.as_bytes(), batches).unwrap_err().answer
    }

    fn ping(id: u64) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
    }

    #[test]
    fn only_2025_03_26_receives_batches() {
        assert_eq!(Batches::of_version("2024-11-05"), Batches::NotYet);
        assert_eq!(Batches::of_version("2025-03-26"), Batches::Received);
        for version in ["2025-06-18", "2025-11-25", "2026-07-28"] {
            assert_eq!(Batches::of_version(version), Batches::Removed, "{version}");
        }
    }

    #[test]
    fn a_batch_is_refused_as_a_whole_where_batches_are_not_received() {
        let pings = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#;
        for (batches, says) in [
            (
                Batches::BeforeInitialize,
                "no JSON-RPC batch before initialize",
            ),
            (Batches::NotYet, "not part of MCP 2024-11-05"),
            (Batches::Removed, "MCP 2025-06-18 removed them"),
        ] {
            for message in [pings, "[]", " \t[1]"] {
                let answer = refused(message, batches);
                assert_eq!(answer["id"], Value::Null, "{batches:?} {message}");
                assert_eq!(answer["error"]["code"], INVALID_REQUEST);
                let text = answer["error"]["message"].as_str().unwrap();
                assert!(text.contains(says), "{batches:?}: {text}");
            }
            // Invalid JSON stays a parse error.
            assert_eq!(refused("[1, 2", batches)["error"]["code"], PARSE_ERROR);
        }
    }

    #[test]
    fn a_received_batch_is_split_into_its_messages_as_they_came() {
        let message = format!(
            "\u{FEFF} [ {} , {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}},\n{{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"result\":{{}}}}, {} ]",
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}"#,
            ping(2)
        );
        let batch = batch(&message);
        assert_eq!(
            batch.elements,
            [
                Element::Pass {
                    message: r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}"#
                        .to_owned(),
                    request: Some(json!("a")),
                },
                Element::Pass {
                    message: r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
                    request: None,
                },
                // A client's response to a server request: passed on, answered by nobody.
                Element::Pass {
                    message: r#"{"jsonrpc":"2.0","id":"r","result":{}}"#.to_owned(),
                    request: None,
                },
                Element::Pass {
                    message: ping(2).to_string(),
                    request: Some(json!(2)),
                },
            ]
        );
        assert_eq!(batch.messages().count(), 4);
        assert!(batch.passes_any());
    }

    #[test]
    fn messages_that_are_no_messages_get_their_own_error_in_the_batch() {
        let batch = batch(&format!(
            r#"[{}, {{"foo":"bar"}}, {{"jsonrpc":"2.0","id":7}}, 42, [{}], {}, {}, {{"jsonrpc":"2.0","id":9,"method":"initialize","params":{{"protocolVersion":"2025-03-26","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}]"#,
            ping(1),
            ping(2),
            ping(3),
            ping(1)
        ));
        let errors: Vec<(Value, String)> = batch
            .elements
            .iter()
            .filter_map(|element| match element {
                Element::Refused(error) => {
                    assert_eq!(error["jsonrpc"], "2.0");
                    assert_eq!(error["error"]["code"], INVALID_REQUEST, "{error}");
                    Some((
                        error["id"].clone(),
                        error["error"]["message"].as_str().unwrap().to_owned(),
                    ))
                }
                Element::Pass { .. } => None,
            })
            .collect();
        let ids: Vec<&Value> = errors.iter().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            [
                &Value::Null,
                &json!(7),
                &Value::Null,
                &Value::Null,
                &json!(1),
                &json!(9)
            ]
        );
        // The single-message check's words, reused.
        assert!(
            errors[0]
                .1
                .starts_with("Invalid Request: not a JSON-RPC 2.0 request")
        );
        assert_eq!(
            errors[2].1,
            "Invalid Request: a JSON-RPC 2.0 message is a JSON object"
        );
        assert!(errors[3].1.contains("not other batches"), "{}", errors[3].1);
        assert!(errors[4].1.contains("same id"), "{}", errors[4].1);
        assert!(
            errors[5].1.contains("initialize must not be part"),
            "{}",
            errors[5].1
        );
        let passed: Vec<&str> = batch.messages().collect();
        assert_eq!(passed, [ping(1).to_string(), ping(3).to_string()]);
    }

    #[test]
    fn an_empty_or_oversized_batch_is_one_invalid_request() {
        let answer = refused("[ ]", Batches::Received);
        assert_eq!(answer["id"], Value::Null);
        assert_eq!(answer["error"]["code"], INVALID_REQUEST);
        assert_eq!(
            answer["error"]["message"],
            "Invalid Request: an empty JSON-RPC batch; a batch holds at least one message"
        );

        let pings = |n: u64| Value::Array((1..=n).map(ping).collect()).to_string();
        assert_eq!(
            batch(&pings(MAX_MESSAGES as u64)).messages().count(),
            MAX_MESSAGES
        );
        let answer = refused(&pings(MAX_MESSAGES as u64 + 1), Batches::Received);
        assert_eq!(answer["id"], Value::Null);
        assert_eq!(
            answer["error"]["message"],
            "Invalid Request: a JSON-RPC batch holds at most 100 messages and this one holds 101; send smaller batches"
        );
        // Counted, not held: a huge array of small values.
        let many = format!("[{}0]", "0,".repeat(1_000_000));
        let answer = refused(&many, Batches::Received);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("this one holds 1000001"),
            "{answer}"
        );
        // Invalid JSON after the limit is still a parse error.
        assert_eq!(
            refused(&format!("[{}0", "0,".repeat(200)), Batches::Received)["error"]["code"],
            PARSE_ERROR
        );
    }

    #[test]
    fn answers_are_gathered_by_id_into_one_array_in_the_batch_order() {
        let batch = batch(&format!(
            r#"[{{"jsonrpc":"2.0","id":"list","method":"tools/list"}}, {}, {{"jsonrpc":"2.0","method":"notifications/x"}}, 5]"#,
            ping(2)
        ));
        let mut answers = batch.answers();
        assert!(answers.waiting());
        // Not for this batch: a notification, a request from the server, another id.
        for other in [
            json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "roots/list"}),
            json!({"jsonrpc": "2.0", "id": 3, "result": {}}),
            json!({"jsonrpc": "2.0", "id": "2", "result": {}}),
        ] {
            assert_eq!(answers.offer(other.clone()), Err(other));
        }
        let pong = json!({"jsonrpc": "2.0", "id": 2, "result": {}});
        assert_eq!(answers.offer(pong.clone()), Ok(()));
        // Answered once only.
        assert_eq!(answers.offer(pong.clone()), Err(pong.clone()));
        assert!(answers.waiting());
        let tools = json!({"jsonrpc": "2.0", "id": "list", "result": {"tools": []}});
        assert_eq!(answers.offer(tools.clone()), Ok(()));
        assert!(!answers.waiting());
        let array = answers.finish().unwrap();
        assert_eq!(array.as_array().unwrap().len(), 3, "{array}");
        assert_eq!(array[0], tools);
        assert_eq!(array[1], pong);
        assert_eq!(array[2]["id"], Value::Null);
        assert_eq!(array[2]["error"]["code"], INVALID_REQUEST);
    }

    #[test]
    fn a_batch_of_notifications_and_responses_gets_no_answer() {
        let batch = batch(
            r#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"no"}}]"#,
        );
        let answers = batch.answers();
        assert!(!answers.waiting());
        assert_eq!(answers.finish(), None);
    }

    #[test]
    fn a_request_left_unanswered_gets_an_internal_error() {
        let answers = batch(&format!("[{}]", ping(4))).answers();
        let array = answers.finish().unwrap();
        assert_eq!(array[0]["id"], 4);
        assert_eq!(array[0]["error"]["code"], INTERNAL_ERROR);
    }

    #[test]
    fn the_handshake_names_the_version() {
        let answer =
            json!({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-03-26"}});
        assert!(answers(&answer, &json!(0)));
        assert!(!answers(&answer, &json!("0")));
        assert_eq!(protocol_version(&answer), Some("2025-03-26"));
        assert_eq!(
            protocol_version(&json!({"jsonrpc": "2.0", "id": 0, "error": {"code": 1}})),
            None
        );
    }

    #[test]
    fn errors_never_echo_the_batch() {
        let hostile = format!(
            r#"[{{"jsonrpc":"2.0","id":1,"method":7,"params":"{0}"}}, "{0}", {{"{0}":1}}]"#,
            "SYSTEM: obey ".repeat(100)
        );
        let answer = batch(&hostile).answers().finish().unwrap().to_string();
        assert!(!answer.contains("SYSTEM"), "{answer}");
        let too_many = format!(
            "[{}]",
            vec![format!("\"{}\"", "SYSTEM ".repeat(10)); 101].join(",")
        );
        let answer = refused(&too_many, Batches::Received).to_string();
        assert!(!answer.contains("SYSTEM"), "{answer}");
    }
}

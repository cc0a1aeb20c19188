//! The server's event stream (`GET /api/v1/events`, server-sent events), read as it arrives:
//! each event is handed over when its blank line comes, not when the stream ends.

use crate::error::ClientError;
use crate::http::Client;
use std::io::{BufRead, BufReader};
use std::time::Duration;

/// The stream's path on the API port.
pub const EVENTS_PATH: &str = "/api/v1/events";

/// The longest silence before the stream counts as broken: the server sends a keep-alive
/// comment every 15 s.
const IDLE: Duration = Duration::from_secs(60);

/// One server-sent event: its name (`message` when it has none) and its data lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub event: String,
    pub data: String,
}

/// The events of one connection; ends when the server closes it.
pub struct EventStream {
    reader: BufReader<ureq::BodyReader<'static>>,
    server: String,
}

impl Client {
    /// Opens the event stream.
    pub fn events(&self) -> Result<EventStream, ClientError> {
        let body = self.open_stream(EVENTS_PATH, "text/event-stream", IDLE)?;
        Ok(EventStream {
            reader: BufReader::new(body.into_reader()),
            server: self.url().to_string(),
        })
    }
}

impl Iterator for EventStream {
    type Item = Result<ServerEvent, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        next_event(&mut self.reader).map(|read| {
            read.map_err(|e| ClientError::Unreachable {
                server: self.server.clone(),
                reason: format!("the event stream broke: {e}"),
            })
        })
    }
}

/// The next event of a server-sent-events stream, once its blank line has arrived; `None`
/// at the end of the stream.
fn next_event(reader: &mut impl BufRead) -> Option<std::io::Result<ServerEvent>> {
    let (mut event, mut data): (Option<String>, Option<String>) = (None, None);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if event.is_some() || data.is_some() {
                return Some(Ok(ServerEvent {
                    event: event.unwrap_or_else(|| "message".into()),
                    data: data.unwrap_or_default(),
                }));
            }
            continue;
        }
        let (field, value) = text.split_once(':').unwrap_or((text, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(joined) => {
                    joined.push('\n');
                    joined.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            // Comments (keep-alives), `id` and `retry` say nothing a reader here needs.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_one_at_a_time_and_keep_alives_skipped() {
        let stream = b": keep-alive\n\nevent: ingest\ndata: {\"committed_spans\":3}\n\ndata: a\r\ndata: b\r\n\r\nevent: ingested\n";
        let mut reader = &stream[..];
        let mut next = || next_event(&mut reader).map(|e| e.unwrap());
        assert_eq!(
            next(),
            Some(ServerEvent {
                event: "ingest".into(),
                data: "{\"committed_spans\":3}".into()
            })
        );
        assert_eq!(
            next(),
            Some(ServerEvent {
                event: "message".into(),
                data: "a\nb".into()
            })
        );
        // An event cut off by the end of the stream is not handed over.
        assert_eq!(next(), None);
    }
}

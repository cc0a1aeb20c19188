//! One table of the attribute names that mean the same thing across generations of
//! instrumentation: the stable OpenTelemetry semantic conventions, their pre-stable names, and
//! the OpenTracing / Jaeger / Zipkin tags that older clients still send.
//!
//! Data is stored as received (an export gives back what came in); every reader that asks
//! "what statement did this span run" asks through [`Concept`] and [`Span::concept`], so a
//! span from a 2018 Jaeger client and one from today's SDK are read the same way. The table is
//! rendered into docs/conventions.md ([`markdown_table`]; a test keeps the two equal).

use crate::{AnyValue, Span, SpanKind, StatusCode};

/// Something a span can say about the work it did, whatever the attribute is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Concept {
    DbSystem,
    DbStatement,
    DbOperation,
    DbNamespace,
    DbCollection,
    DbConnection,
    HttpMethod,
    HttpUrl,
    HttpRoute,
    HttpTarget,
    HttpStatusCode,
    UrlQuery,
    UrlScheme,
    HttpHost,
    ClientAddress,
    ServerAddress,
    ServerPort,
    PeerService,
    RpcSystem,
    RpcService,
    RpcMethod,
    RpcStatusCode,
    MessagingSystem,
    MessagingOperation,
    MessagingDestination,
    ErrorType,
    ErrorFlag,
    StatusCodeTag,
    StatusMessageTag,
    SpanKindTag,
    Component,
    CodeFunction,
    CodeFilePath,
}

/// Each concept and the attribute names that carry it, the current one first; the first name
/// present on a span wins.
pub const TABLE: &[(Concept, &[&str])] = &[
    (
        Concept::DbSystem,
        &["db.system.name", "db.system", "db.type"],
    ),
    (
        Concept::DbStatement,
        &["db.query.text", "db.statement", "sql.query", "db.query"],
    ),
    (Concept::DbOperation, &["db.operation.name", "db.operation"]),
    (
        Concept::DbNamespace,
        &["db.namespace", "db.name", "db.instance"],
    ),
    (
        Concept::DbCollection,
        &[
            "db.collection.name",
            "db.sql.table",
            "db.mongodb.collection",
            "db.cassandra.table",
        ],
    ),
    (Concept::DbConnection, &["db.connection_string"]),
    (Concept::HttpMethod, &["http.request.method", "http.method"]),
    (Concept::HttpUrl, &["url.full", "http.url"]),
    (Concept::HttpRoute, &["http.route"]),
    (Concept::HttpTarget, &["url.path", "http.target"]),
    (
        Concept::HttpStatusCode,
        &["http.response.status_code", "http.status_code"],
    ),
    (Concept::UrlQuery, &["url.query"]),
    (Concept::UrlScheme, &["url.scheme", "http.scheme"]),
    (Concept::HttpHost, &["http.host", "http.server_name"]),
    (
        Concept::ClientAddress,
        &["client.address", "http.client_ip"],
    ),
    (
        Concept::ServerAddress,
        &[
            "server.address",
            "net.peer.name",
            "peer.hostname",
            "net.sock.peer.addr",
            "peer.address",
            "peer.ipv4",
        ],
    ),
    (
        Concept::ServerPort,
        &["server.port", "net.peer.port", "peer.port"],
    ),
    (Concept::PeerService, &["peer.service"]),
    (Concept::RpcSystem, &["rpc.system"]),
    (Concept::RpcService, &["rpc.service"]),
    (Concept::RpcMethod, &["rpc.method"]),
    (
        Concept::RpcStatusCode,
        &["rpc.grpc.status_code", "rpc.response.status_code"],
    ),
    (Concept::MessagingSystem, &["messaging.system"]),
    (
        Concept::MessagingOperation,
        &["messaging.operation.type", "messaging.operation"],
    ),
    (
        Concept::MessagingDestination,
        &[
            "messaging.destination.name",
            "messaging.destination",
            "message_bus.destination",
        ],
    ),
    (Concept::ErrorType, &["error.type"]),
    (Concept::ErrorFlag, &["error"]),
    (Concept::StatusCodeTag, &["otel.status_code"]),
    (Concept::StatusMessageTag, &["otel.status_description"]),
    (Concept::SpanKindTag, &["span.kind"]),
    (Concept::Component, &["component"]),
    (
        Concept::CodeFunction,
        &["code.function.name", "code.function"],
    ),
    (Concept::CodeFilePath, &["code.file.path", "code.filepath"]),
];

impl Concept {
    /// The attribute names carrying this concept, current first.
    pub fn keys(self) -> &'static [&'static str] {
        TABLE
            .iter()
            .find(|(c, _)| *c == self)
            .map_or(&[], |(_, keys)| keys)
    }

    /// The concept's current (stable) attribute name.
    pub fn current_key(self) -> &'static str {
        self.keys().first().copied().unwrap_or("")
    }

    /// The area of the conventions the concept belongs to, for the documentation table.
    pub fn area(self) -> &'static str {
        match self {
            Self::DbSystem
            | Self::DbStatement
            | Self::DbOperation
            | Self::DbNamespace
            | Self::DbCollection
            | Self::DbConnection => "database",
            Self::HttpMethod
            | Self::HttpUrl
            | Self::HttpRoute
            | Self::HttpTarget
            | Self::HttpStatusCode
            | Self::UrlQuery
            | Self::UrlScheme
            | Self::HttpHost
            | Self::ClientAddress => "HTTP",
            Self::ServerAddress | Self::ServerPort | Self::PeerService => "peer",
            Self::RpcSystem | Self::RpcService | Self::RpcMethod | Self::RpcStatusCode => "RPC",
            Self::MessagingSystem | Self::MessagingOperation | Self::MessagingDestination => {
                "messaging"
            }
            Self::ErrorType
            | Self::ErrorFlag
            | Self::StatusCodeTag
            | Self::StatusMessageTag
            | Self::SpanKindTag
            | Self::Component => "status and kind",
            Self::CodeFunction | Self::CodeFilePath => "code",
        }
    }

    /// Whether the concept says where a call went (or came from) rather than what it carried:
    /// a host, an address, a port, a scheme, a service's name. Addressing is never data: two
    /// calls to the same host do not depend on each other.
    pub fn is_addressing(self) -> bool {
        matches!(
            self,
            Self::ServerAddress
                | Self::ServerPort
                | Self::PeerService
                | Self::DbConnection
                | Self::UrlScheme
                | Self::HttpHost
                | Self::ClientAddress
        )
    }

    /// Whether the concept describes the call itself (its system, database, operation,
    /// method, status) rather than the data it carried.
    pub fn describes_the_call(self) -> bool {
        self.is_addressing()
            || matches!(
                self,
                Self::DbSystem
                    | Self::DbOperation
                    | Self::DbNamespace
                    | Self::DbCollection
                    | Self::HttpMethod
                    | Self::HttpStatusCode
                    | Self::RpcSystem
                    | Self::RpcStatusCode
                    | Self::MessagingSystem
                    | Self::MessagingOperation
                    | Self::SpanKindTag
                    | Self::Component
            )
    }

    /// The concept an attribute name carries, if the table knows it.
    pub fn of_key(key: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|(_, keys)| keys.contains(&key))
            .map(|(concept, _)| *concept)
    }

    /// What the concept means, for the documentation table.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::DbSystem => "database product (`postgresql`, `redis`; OpenTracing `sql`)",
            Self::DbStatement => "the statement or query text",
            Self::DbOperation => "the operation (`SELECT`, `findAndModify`, `GET`)",
            Self::DbNamespace => "the database (or schema) name",
            Self::DbCollection => "the table or collection",
            Self::DbConnection => {
                "the connection string (old; stable: `server.address`, `server.port`)"
            }
            Self::HttpMethod => "HTTP request method",
            Self::HttpUrl => "the full URL of a request",
            Self::HttpRoute => "the matched route template (server side)",
            Self::HttpTarget => "path (and query) of a request",
            Self::HttpStatusCode => "HTTP response status code",
            Self::UrlQuery => {
                "the query string of a request (server side; a client's is in the URL)"
            }
            Self::UrlScheme => "`http` or `https`",
            Self::HttpHost => {
                "the `Host` a server was called by (old; stable: `server.address`, `server.port`)"
            }
            Self::ClientAddress => "the caller's address (server side)",
            Self::ServerAddress => "the host a client called",
            Self::ServerPort => "the port a client called",
            Self::PeerService => "the logical name of the called service",
            Self::RpcSystem => "RPC system (`grpc`, `jsonrpc`)",
            Self::RpcService => "RPC service",
            Self::RpcMethod => "RPC method",
            Self::RpcStatusCode => "RPC status code",
            Self::MessagingSystem => "messaging system (`kafka`, `rabbitmq`)",
            Self::MessagingOperation => "`publish`, `send`, `receive`, `process`, …",
            Self::MessagingDestination => "topic or queue",
            Self::ErrorType => "the class of error (exception type, status code, `timeout`)",
            Self::ErrorFlag => "OpenTracing's `error=true`: the span failed",
            Self::StatusCodeTag => "Zipkin/Jaeger-translated status (`ERROR`, `OK`)",
            Self::StatusMessageTag => "Zipkin/Jaeger-translated status message",
            Self::SpanKindTag => "OpenTracing's `span.kind` tag (`client`, `server`, …)",
            Self::Component => "OpenTracing's instrumentation component",
            Self::CodeFunction => "the function the span covers",
            Self::CodeFilePath => "its source file",
        }
    }
}

impl Span {
    /// The value of `concept` on this span: the first of its names present.
    pub fn concept(&self, concept: Concept) -> Option<&AnyValue> {
        concept.keys().iter().find_map(|key| self.attr(key))
    }

    /// [`Span::concept`] as text, when it is a non-empty string or a number.
    pub fn concept_text(&self, concept: Concept) -> Option<String> {
        self.concept(concept)
            .map(AnyValue::to_display_string)
            .filter(|text| !text.trim().is_empty())
    }

    /// [`Span::concept`] as an integer (a number, or a string of digits).
    pub fn concept_i64(&self, concept: Concept) -> Option<i64> {
        match self.concept(concept)? {
            AnyValue::String(text) => text.trim().parse().ok(),
            other => other.as_i64(),
        }
    }

    /// The span's kind, or the OpenTracing `span.kind` tag when the kind was not set.
    pub fn effective_kind(&self) -> SpanKind {
        if !matches!(self.kind, SpanKind::Unspecified | SpanKind::Internal) {
            return self.kind;
        }
        match self
            .concept(Concept::SpanKindTag)
            .and_then(AnyValue::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("client") => SpanKind::Client,
            Some("server") => SpanKind::Server,
            Some("producer") => SpanKind::Producer,
            Some("consumer") => SpanKind::Consumer,
            _ => self.kind,
        }
    }

    /// Whether the span failed, as the conventions define it:
    /// - an explicit `Ok` status: no;
    /// - status `Error`: yes — except a server span answering 4xx without an exception of its
    ///   own (the HTTP conventions: a client's mistake is not the server's error);
    /// - status unset: OpenTracing's `error=true` tag, a translated `otel.status_code=ERROR`
    ///   (what Jaeger and Zipkin clients send instead of a status), or an HTTP status code the
    ///   conventions call an error — ≥ 400 on a client span, ≥ 500 on a server span.
    pub fn is_error(&self) -> bool {
        let http = self.concept_i64(Concept::HttpStatusCode);
        let kind = self.effective_kind();
        let client_mistake = kind == SpanKind::Server
            && http.is_some_and(|code| (400..500).contains(&code))
            && !self
                .events
                .iter()
                .any(|e| e.name == crate::semconv::EXCEPTION_EVENT);
        match self.status.code {
            StatusCode::Ok => false,
            StatusCode::Error => !client_mistake,
            StatusCode::Unset => {
                let flag = match self.concept(Concept::ErrorFlag) {
                    Some(AnyValue::Bool(flag)) => *flag,
                    Some(AnyValue::String(text)) => text.eq_ignore_ascii_case("true"),
                    _ => false,
                };
                let tagged = flag
                    || self
                        .concept(Concept::StatusCodeTag)
                        .and_then(AnyValue::as_str)
                        .is_some_and(|code| code.eq_ignore_ascii_case("error"));
                let by_status_code = match (kind, http) {
                    (SpanKind::Client, Some(code)) => code >= 400,
                    (SpanKind::Server, Some(code)) => code >= 500,
                    _ => false,
                };
                (tagged && !client_mistake) || by_status_code
            }
        }
    }
}

/// The table as the Markdown docs/conventions.md shows it: by area, the stable name, the older
/// names read as the same thing, and whether it is addressing (never data).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| area | concept | stable name | older names (first present wins) | addressing |\n\
         |---|---|---|---|---|\n",
    );
    for (concept, keys) in TABLE {
        let names: Vec<String> = keys.iter().skip(1).map(|k| format!("`{k}`")).collect();
        out.push_str(&format!(
            "| {} | {} | `{}` | {} | {} |\n",
            concept.area(),
            concept.meaning(),
            concept.current_key(),
            if names.is_empty() {
                "—".to_owned()
            } else {
                names.join(", ")
            },
            if concept.is_addressing() { "yes" } else { "" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyValue, SpanId, TraceId};

    fn span(attributes: Vec<KeyValue>) -> Span {
        let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), None, "s", 0, 1);
        span.attributes = attributes;
        span
    }

    #[test]
    fn the_current_name_wins_and_older_names_are_read() {
        let old = span(vec![KeyValue::new("sql.query", "SELECT 1")]);
        assert_eq!(
            old.concept_text(Concept::DbStatement).as_deref(),
            Some("SELECT 1")
        );
        let both = span(vec![
            KeyValue::new("db.statement", "old"),
            KeyValue::new("db.query.text", "new"),
        ]);
        assert_eq!(
            both.concept_text(Concept::DbStatement).as_deref(),
            Some("new")
        );
        let code = span(vec![KeyValue::new("http.status_code", "503")]);
        assert_eq!(code.concept_i64(Concept::HttpStatusCode), Some(503));
    }

    #[test]
    fn opentracing_error_and_kind_tags_are_understood() {
        assert!(span(vec![KeyValue::new("error", true)]).is_error());
        assert!(span(vec![KeyValue::new("error", "true")]).is_error());
        assert!(!span(vec![KeyValue::new("error", false)]).is_error());
        assert!(span(vec![KeyValue::new("otel.status_code", "ERROR")]).is_error());
        let mut ok = span(vec![KeyValue::new("error", true)]);
        ok.status.code = StatusCode::Ok;
        assert!(!ok.is_error(), "an explicit Ok status wins");
        let client = span(vec![KeyValue::new("span.kind", "client")]);
        assert_eq!(client.effective_kind(), SpanKind::Client);
    }

    #[test]
    fn http_status_codes_are_errors_as_the_http_conventions_say() {
        let with = |kind: SpanKind, code: i64, status: StatusCode| {
            let mut s = span(vec![KeyValue::new("http.response.status_code", code)]);
            s.kind = kind;
            s.status.code = status;
            s.is_error()
        };
        assert!(with(SpanKind::Client, 404, StatusCode::Unset));
        assert!(with(SpanKind::Client, 503, StatusCode::Unset));
        assert!(!with(SpanKind::Server, 404, StatusCode::Unset));
        assert!(with(SpanKind::Server, 500, StatusCode::Unset));
        assert!(
            !with(SpanKind::Server, 404, StatusCode::Error),
            "a server's 4xx is the client's mistake"
        );
        assert!(with(SpanKind::Server, 503, StatusCode::Error));
        assert!(!with(SpanKind::Client, 200, StatusCode::Unset));
    }

    /// docs/conventions.md shows this table between its markers; `DEVTRACE_BLESS=1` rewrites it.
    #[test]
    fn the_documentation_shows_this_table() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/conventions.md");
        let doc = std::fs::read_to_string(&path).expect("docs/conventions.md");
        let (start, end) = (
            "<!-- conventions-table:start -->\n",
            "<!-- conventions-table:end -->",
        );
        let from = doc.find(start).expect("start marker") + start.len();
        let to = doc.find(end).expect("end marker");
        let expected = markdown_table();
        if std::env::var_os("DEVTRACE_BLESS").is_some() {
            let updated = format!("{}{}{}", &doc[..from], expected, &doc[to..]);
            std::fs::write(&path, updated).expect("write docs/conventions.md");
            return;
        }
        assert_eq!(
            &doc[from..to],
            expected,
            "docs/conventions.md is out of date: run DEVTRACE_BLESS=1 cargo test -p devtrace-model"
        );
    }

    #[test]
    fn every_concept_has_names_and_a_meaning() {
        for (concept, keys) in TABLE {
            assert!(!keys.is_empty() && !concept.meaning().is_empty());
            assert_eq!(concept.keys(), *keys);
        }
    }
}

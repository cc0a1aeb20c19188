//! Synthesis of realistic OTLP traces.
//!
//! A trace looks like one request to a small web service: an HTTP SERVER root
//! span, a few INTERNAL spans (auth, handler, helpers), 4–6 PostgreSQL CLIENT
//! spans with literal SQL, 1–2 outgoing HTTP CLIENT calls and 1–2 OpenAI chat
//! calls (gen_ai semantic conventions) — 13 spans on average. Durations are
//! drawn per kind and laid out so that every child lies inside its parent. A
//! share of the traces ([`ERROR_RATIO`]) has one failing leaf span with an
//! `exception` event and a multi-line stack trace, and a 500 on the root.
//!
//! Spans are produced in pre-order (every parent before its children), so any
//! prefix of a trace's spans is itself a valid trace: batches are cut to an
//! exact span count by truncating the last trace.

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

use crate::rng::Rng;

/// Share of generated traces that contain a failing span.
pub const ERROR_RATIO: f64 = 0.05;

/// W3C trace flags "sampled" plus OTLP's "parent is-remote is known (local)".
const SPAN_FLAGS: u32 = 0x101;

const MS: u64 = 1_000_000;

/// The instrumentation library that produced a span; spans of one scope share
/// a `ScopeSpans` in the encoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The HTTP server framework.
    Server,
    /// The application's own tracer.
    App,
    /// The PostgreSQL driver.
    Db,
    /// The HTTP client library.
    Http,
    /// The OpenAI client library.
    Llm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Language {
    Python,
    Go,
    Java,
    NodeJs,
}

impl Language {
    fn sdk_name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Go => "go",
            Language::Java => "java",
            Language::NodeJs => "nodejs",
        }
    }

    fn sdk_version(self) -> &'static str {
        match self {
            Language::Python => "1.33.1",
            Language::Go => "1.36.0",
            Language::Java => "1.50.0",
            Language::NodeJs => "2.0.1",
        }
    }

    fn scope(self, scope: Scope, app: &'static str) -> (&'static str, &'static str) {
        use Language::*;
        use Scope::*;
        match (self, scope) {
            (_, App) => (app, ""),
            (Python, Server) => ("opentelemetry.instrumentation.fastapi", "0.54b1"),
            (Python, Db) => ("opentelemetry.instrumentation.psycopg", "0.54b1"),
            (Python, Http) => ("opentelemetry.instrumentation.httpx", "0.54b1"),
            (Python, Llm) => ("opentelemetry.instrumentation.openai_v2", "2.1b0"),
            (Go, Server) | (Go, Http) => (
                "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                "0.61.0",
            ),
            (Go, Db) => ("github.com/XSAM/otelsql", "0.39.0"),
            (Go, Llm) => ("github.com/openai/openai-go/otel", "1.8.2"),
            (Java, Server) => ("io.opentelemetry.spring-webmvc-6.0", "2.16.0-alpha"),
            (Java, Db) => ("io.opentelemetry.jdbc", "2.16.0-alpha"),
            (Java, Http) => ("io.opentelemetry.java-http-client", "2.16.0-alpha"),
            (Java, Llm) => ("io.opentelemetry.openai-java-1.1", "2.16.0-alpha"),
            (NodeJs, Server) => ("@opentelemetry/instrumentation-http", "0.202.0"),
            (NodeJs, Db) => ("@opentelemetry/instrumentation-pg", "0.54.0"),
            (NodeJs, Http) => ("@opentelemetry/instrumentation-undici", "0.13.0"),
            (NodeJs, Llm) => ("@opentelemetry/instrumentation-openai", "0.1.0"),
        }
    }
}

struct Route {
    method: &'static str,
    template: &'static str,
    handler: &'static str,
}

struct Service {
    name: &'static str,
    version: &'static str,
    language: Language,
    hosts: &'static [&'static str],
    server_address: &'static str,
    app_scope: &'static str,
    db_namespace: &'static str,
    db_host: &'static str,
    routes: &'static [Route],
    reads: &'static [Sql],
    writes: &'static [Sql],
    downstream: &'static [(&'static str, &'static str)],
}

/// A SQL statement template; `{id}` becomes a large literal id, `{n}` a small number.
struct Sql {
    operation: &'static str,
    table: &'static str,
    text: &'static str,
}

const SESSION_SQL: Sql = Sql {
    operation: "SELECT",
    table: "sessions",
    text: "SELECT s.user_id, s.tenant_id, s.expires_at FROM sessions s WHERE s.id = {id} AND s.revoked_at IS NULL",
};

const SERVICES: &[Service] = &[
    Service {
        name: "orders-api",
        version: "2.14.3",
        language: Language::Python,
        hosts: &[
            "orders-api-6f9c7d8b5-2xkqp",
            "orders-api-6f9c7d8b5-m8zt4",
            "orders-api-6f9c7d8b5-q7vnb",
        ],
        server_address: "orders.shop.example.com",
        app_scope: "orders_api",
        db_namespace: "orders",
        db_host: "pg-orders-primary.db.internal",
        routes: &[
            Route {
                method: "GET",
                template: "/api/orders/{id}",
                handler: "OrderService.get_order",
            },
            Route {
                method: "POST",
                template: "/api/orders",
                handler: "OrderService.create_order",
            },
            Route {
                method: "GET",
                template: "/api/customers/{id}/orders",
                handler: "OrderService.list_orders",
            },
        ],
        reads: &[
            Sql {
                operation: "SELECT",
                table: "orders",
                text: "SELECT o.id, o.status, o.total_cents, o.currency, o.created_at FROM orders o WHERE o.id = {id}",
            },
            Sql {
                operation: "SELECT",
                table: "order_items",
                text: "SELECT li.sku, li.quantity, li.unit_price_cents FROM order_items li WHERE li.order_id = {id} ORDER BY li.position",
            },
            Sql {
                operation: "SELECT",
                table: "customers",
                text: "SELECT c.id, c.email, c.tier, c.country FROM customers c WHERE c.id = {id} LIMIT 1",
            },
            Sql {
                operation: "SELECT",
                table: "orders",
                text: "SELECT o.id, o.status, o.total_cents FROM orders o WHERE o.customer_id = {id} AND o.status IN ('open', 'paid') ORDER BY o.created_at DESC LIMIT {n}",
            },
        ],
        writes: &[
            Sql {
                operation: "UPDATE",
                table: "orders",
                text: "UPDATE orders SET status = 'paid', paid_at = now(), updated_at = now() WHERE id = {id}",
            },
            Sql {
                operation: "INSERT",
                table: "order_events",
                text: "INSERT INTO order_events (order_id, kind, created_at) VALUES ({id}, 'status_changed', now())",
            },
        ],
        downstream: &[
            ("POST", "https://payments.internal:8443/v1/charges"),
            ("GET", "https://inventory.internal:8080/v2/stock/{id}"),
        ],
    },
    Service {
        name: "catalog-api",
        version: "1.8.0",
        language: Language::Go,
        hosts: &["catalog-api-5c4d9b7f6-jw2lx", "catalog-api-5c4d9b7f6-v9rcd"],
        server_address: "catalog.shop.example.com",
        app_scope: "github.com/example/catalog-api/internal/catalog",
        db_namespace: "catalog",
        db_host: "pg-catalog-replica.db.internal",
        routes: &[
            Route {
                method: "GET",
                template: "/api/products/{id}",
                handler: "catalog.GetProduct",
            },
            Route {
                method: "GET",
                template: "/api/categories/{id}/products",
                handler: "catalog.ListProducts",
            },
            Route {
                method: "POST",
                template: "/api/products/{id}/describe",
                handler: "catalog.DescribeProduct",
            },
        ],
        reads: &[
            Sql {
                operation: "SELECT",
                table: "products",
                text: "SELECT p.id, p.sku, p.name, p.price_cents, p.stock FROM products p WHERE p.id = {id}",
            },
            Sql {
                operation: "SELECT",
                table: "products",
                text: "SELECT p.id, p.name, p.price_cents FROM products p WHERE p.category_id = {n} AND p.active = true ORDER BY p.rank DESC LIMIT 50",
            },
            Sql {
                operation: "SELECT",
                table: "product_images",
                text: "SELECT i.url, i.width, i.height FROM product_images i WHERE i.product_id = {id} ORDER BY i.position",
            },
            Sql {
                operation: "SELECT",
                table: "reviews",
                text: "SELECT avg(r.stars)::float8, count(*) FROM reviews r WHERE r.product_id = {id} AND r.published = true",
            },
        ],
        writes: &[
            Sql {
                operation: "UPDATE",
                table: "products",
                text: "UPDATE products SET view_count = view_count + 1 WHERE id = {id}",
            },
            Sql {
                operation: "UPDATE",
                table: "products",
                text: "UPDATE products SET description = $1, description_model = $2, updated_at = now() WHERE id = {id}",
            },
        ],
        downstream: &[
            ("GET", "https://pricing.internal:8080/v1/prices/{id}"),
            ("GET", "https://search.internal:9200/products/_doc/{id}"),
        ],
    },
    Service {
        name: "assistant-api",
        version: "0.31.2",
        language: Language::NodeJs,
        hosts: &[
            "assistant-api-7b8f6c9d4-4hnqs",
            "assistant-api-7b8f6c9d4-t2kpw",
        ],
        server_address: "assistant.shop.example.com",
        app_scope: "assistant-api",
        db_namespace: "assistant",
        db_host: "pg-assistant.db.internal",
        routes: &[
            Route {
                method: "POST",
                template: "/api/conversations/{id}/messages",
                handler: "ConversationController.reply",
            },
            Route {
                method: "POST",
                template: "/api/summaries",
                handler: "SummaryController.create",
            },
        ],
        reads: &[
            Sql {
                operation: "SELECT",
                table: "messages",
                text: "SELECT m.role, m.content, m.created_at FROM messages m WHERE m.conversation_id = {id} ORDER BY m.created_at DESC LIMIT {n}",
            },
            Sql {
                operation: "SELECT",
                table: "conversations",
                text: "SELECT c.id, c.user_id, c.title, c.model FROM conversations c WHERE c.id = {id}",
            },
            Sql {
                operation: "SELECT",
                table: "documents",
                text: "SELECT d.id, d.title, d.chunk FROM documents d WHERE d.tenant_id = {n} ORDER BY d.embedding <=> $1 LIMIT 8",
            },
        ],
        writes: &[
            Sql {
                operation: "INSERT",
                table: "messages",
                text: "INSERT INTO messages (conversation_id, role, content, tokens) VALUES ({id}, 'assistant', $1, {n})",
            },
            Sql {
                operation: "UPDATE",
                table: "conversations",
                text: "UPDATE conversations SET updated_at = now(), message_count = message_count + 2 WHERE id = {id}",
            },
        ],
        downstream: &[
            ("POST", "https://moderation.internal:8080/v1/check"),
            (
                "GET",
                "https://profiles.internal:8080/v1/users/{id}/preferences",
            ),
        ],
    },
    Service {
        name: "billing-api",
        version: "3.2.7",
        language: Language::Java,
        hosts: &["billing-api-8d7c6b5a4-kx9fz", "billing-api-8d7c6b5a4-p3mwq"],
        server_address: "billing.shop.example.com",
        app_scope: "com.example.billing",
        db_namespace: "billing",
        db_host: "pg-billing-primary.db.internal",
        routes: &[
            Route {
                method: "POST",
                template: "/api/invoices/{id}/pay",
                handler: "InvoiceController.pay",
            },
            Route {
                method: "GET",
                template: "/api/invoices/{id}",
                handler: "InvoiceController.get",
            },
        ],
        reads: &[
            Sql {
                operation: "SELECT",
                table: "invoices",
                text: "SELECT i.id, i.customer_id, i.amount_cents, i.currency, i.status FROM invoices i WHERE i.id = {id} FOR UPDATE",
            },
            Sql {
                operation: "SELECT",
                table: "invoice_lines",
                text: "SELECT l.description, l.amount_cents FROM invoice_lines l WHERE l.invoice_id = {id}",
            },
            Sql {
                operation: "SELECT",
                table: "payment_methods",
                text: "SELECT pm.id, pm.kind, pm.last4 FROM payment_methods pm WHERE pm.customer_id = {id} AND pm.is_default = true",
            },
        ],
        writes: &[
            Sql {
                operation: "UPDATE",
                table: "invoices",
                text: "UPDATE invoices SET status = 'paid', paid_at = now(), payment_id = {id} WHERE id = {id}",
            },
            Sql {
                operation: "INSERT",
                table: "ledger_entries",
                text: "INSERT INTO ledger_entries (invoice_id, amount_cents, kind) VALUES ({id}, {n}, 'credit')",
            },
        ],
        downstream: &[
            ("POST", "https://payments.internal:8443/v1/charges"),
            ("POST", "https://notifications.internal:8080/v1/emails"),
        ],
    },
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
    "shop-ios/4.12.0 (iPhone15,2; iOS 18.5)",
    "okhttp/4.12.0",
];

/// (request model, response model)
const MODELS: &[(&str, &str)] = &[
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
    ("gpt-4o", "gpt-4o-2024-08-06"),
];

const EXTRA_INTERNAL: &[&str] = &[
    "validate_request",
    "cache.lookup",
    "feature_flags.evaluate",
    "prompt.render",
    "response.serialize",
];

/// Number of distinct resources (service × host) that traces are spread over.
pub fn resource_count() -> usize {
    SERVICES.iter().map(|s| s.hosts.len()).sum()
}

fn resource_parts(index: usize) -> (usize, usize) {
    let mut left = index;
    for (si, s) in SERVICES.iter().enumerate() {
        if left < s.hosts.len() {
            return (si, left);
        }
        left -= s.hosts.len();
    }
    panic!("resource index {index} out of range");
}

/// The OTLP resource of resource number `index` (`< resource_count()`).
pub fn resource(index: usize) -> Resource {
    let (si, hi) = resource_parts(index);
    let s = &SERVICES[si];
    Resource {
        attributes: vec![
            kv("service.name", s.name),
            kv("service.version", s.version),
            kv("service.namespace", "shop"),
            kv("service.instance.id", &format!("{}-{hi}", s.hosts[hi])),
            kv("host.name", s.hosts[hi]),
            kv("deployment.environment.name", "production"),
            kv("telemetry.sdk.name", "opentelemetry"),
            kv("telemetry.sdk.language", s.language.sdk_name()),
            kv("telemetry.sdk.version", s.language.sdk_version()),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    }
}

/// The instrumentation scope of `scope` in resource number `index`.
pub fn scope(index: usize, scope: Scope) -> InstrumentationScope {
    let s = &SERVICES[resource_parts(index).0];
    let (name, version) = s.language.scope(scope, s.app_scope);
    InstrumentationScope {
        name: name.to_string(),
        version: version.to_string(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

/// One generated trace: its resource and its spans in pre-order.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Index for [`resource`] and [`scope`].
    pub resource: usize,
    pub trace_id: [u8; 16],
    /// Spans with the scope that produced each, parents before children.
    pub spans: Vec<(Scope, Span)>,
}

impl Trace {
    /// Keeps only the first `n` spans; still a valid trace (pre-order).
    pub fn truncate(&mut self, n: usize) {
        self.spans.truncate(n);
    }

    /// Whether any span has status ERROR.
    #[cfg(test)]
    pub fn has_error(&self) -> bool {
        self.spans.iter().any(|(_, s)| {
            s.status
                .as_ref()
                .is_some_and(|st| st.code == StatusCode::Error as i32)
        })
    }
}

/// What a failing span throws.
#[derive(Debug, Clone)]
struct Failure {
    exception_type: String,
    message: String,
    stacktrace: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Root,
    Internal,
    Db,
    Http,
    Llm,
}

/// A span under construction.
struct Node {
    parent: Option<usize>,
    kind: NodeKind,
    name: String,
    attributes: Vec<KeyValue>,
    /// Gap between the previous sibling's end (or the parent's start) and this span.
    pad_before: u64,
    /// Time spent in this span outside its children.
    own_time: u64,
    failure: Option<Failure>,
    duration: u64,
    start: u64,
}

impl Node {
    fn new(parent: Option<usize>, kind: NodeKind, name: String, attributes: Vec<KeyValue>) -> Self {
        Self {
            parent,
            kind,
            name,
            attributes,
            pad_before: 0,
            own_time: 0,
            failure: None,
            duration: 0,
            start: 0,
        }
    }
}

/// Makes traces; all randomness comes from the [`Rng`] passed in.
#[derive(Debug, Clone)]
pub struct Generator {
    /// Traces end within the two minutes before this time (ns since the epoch).
    pub base_time_ns: u64,
    /// Share of traces with a failing span.
    pub error_ratio: f64,
}

impl Generator {
    /// A generator whose traces end around `base_time_ns`.
    pub fn new(base_time_ns: u64) -> Self {
        Self {
            base_time_ns,
            error_ratio: ERROR_RATIO,
        }
    }

    /// One request trace of 10–16 spans (13 on average).
    pub fn trace(&self, rng: &mut Rng) -> Trace {
        let resource = rng.below(resource_count() as u64) as usize;
        let service = &SERVICES[resource_parts(resource).0];
        let mut nodes = Vec::with_capacity(16);

        let route = rng.pick(service.routes);
        nodes.push(root_node(rng, service, route));

        // Authentication middleware with its session lookup.
        let auth = push(&mut nodes, internal(rng, 0, "auth.verify_token"));
        push(&mut nodes, db_node(rng, service, auth, &SESSION_SQL));

        // The handler does the real work.
        let handler = push(&mut nodes, internal(rng, 0, route.handler));
        let extras = rng.range(1, 3) as usize; // 3–5 internal spans in all
        let db_total = rng.range(4, 6) as usize;
        let writes = rng.range(1, 2) as usize;
        let reads = db_total - 1 - writes;
        let http_calls = rng.range(1, 2) as usize;
        let llm_calls = rng.range(1, 2) as usize;

        let mut extra_names: Vec<&str> = Vec::with_capacity(extras);
        while extra_names.len() < extras {
            let name = *rng.pick(EXTRA_INTERNAL);
            if !extra_names.contains(&name) {
                extra_names.push(name);
            }
        }
        let (before, after) = extra_names.split_at(extras.div_ceil(2));
        for name in before {
            push(&mut nodes, internal(rng, handler, name));
        }
        for _ in 0..reads {
            let sql = rng.pick(service.reads);
            push(&mut nodes, db_node(rng, service, handler, sql));
        }
        for _ in 0..http_calls {
            push(&mut nodes, http_node(rng, service, handler));
        }
        for _ in 0..llm_calls {
            push(&mut nodes, llm_node(rng, handler));
        }
        for _ in 0..writes {
            let sql = rng.pick(service.writes);
            push(&mut nodes, db_node(rng, service, handler, sql));
        }
        for name in after {
            push(&mut nodes, internal(rng, handler, name));
        }

        if rng.chance(self.error_ratio) {
            fail_one(rng, service, &mut nodes);
        }
        self.finish(rng, resource, nodes)
    }

    /// A single trace of exactly `spans` spans (at least 1): a bulk import
    /// request whose handler processes item after item, each with database,
    /// HTTP and, now and then, LLM calls.
    pub fn big_trace(&self, rng: &mut Rng, spans: usize) -> Trace {
        let resource = 0;
        let service = &SERVICES[0];
        let route = Route {
            method: "POST",
            template: "/api/imports/{id}/run",
            handler: "ImportService.run",
        };
        let mut nodes = Vec::with_capacity(spans + 8);
        nodes.push(root_node(rng, service, &route));
        let handler = push(&mut nodes, internal(rng, 0, route.handler));
        let mut item = 0u64;
        while nodes.len() < spans {
            item += 1;
            let mut node = internal(rng, handler, "import.process_item");
            node.attributes
                .push(kv_int("import.item.index", item as i64));
            let parent = push(&mut nodes, node);
            for _ in 0..rng.range(1, 3) {
                let sql = rng.pick(service.reads);
                push(&mut nodes, db_node(rng, service, parent, sql));
            }
            if item.is_multiple_of(3) {
                push(&mut nodes, http_node(rng, service, parent));
            }
            if item.is_multiple_of(25) {
                push(&mut nodes, llm_node(rng, parent));
            }
            let sql = rng.pick(service.writes);
            push(&mut nodes, db_node(rng, service, parent, sql));
        }
        nodes.truncate(spans.max(1));
        self.finish(rng, resource, nodes)
    }

    /// Lays out times and turns nodes into OTLP spans.
    fn finish(&self, rng: &mut Rng, resource: usize, mut nodes: Vec<Node>) -> Trace {
        // Durations bottom-up: children follow parents, so walk backwards.
        for i in (0..nodes.len()).rev() {
            nodes[i].duration += nodes[i].own_time;
            if let Some(p) = nodes[i].parent {
                let add = nodes[i].pad_before + nodes[i].duration;
                nodes[p].duration += add;
            }
        }
        // Starts top-down: each child right after its previous sibling.
        let trace_start = self
            .base_time_ns
            .saturating_sub(nodes[0].duration)
            .saturating_sub(rng.below(120_000 * MS));
        let mut cursor: Vec<u64> = vec![0; nodes.len()];
        nodes[0].start = trace_start;
        cursor[0] = trace_start;
        for i in 1..nodes.len() {
            let p = nodes[i].parent.unwrap_or(0);
            let start = cursor[p] + nodes[i].pad_before;
            nodes[i].start = start;
            cursor[i] = start;
            cursor[p] = start + nodes[i].duration;
        }

        let trace_id: [u8; 16] = rng.id();
        let span_ids: Vec<[u8; 8]> = (0..nodes.len()).map(|_| rng.id()).collect();
        let spans = nodes
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let scope = match n.kind {
                    NodeKind::Root => Scope::Server,
                    NodeKind::Internal => Scope::App,
                    NodeKind::Db => Scope::Db,
                    NodeKind::Http => Scope::Http,
                    NodeKind::Llm => Scope::Llm,
                };
                let kind = match n.kind {
                    NodeKind::Root => SpanKind::Server,
                    NodeKind::Internal => SpanKind::Internal,
                    NodeKind::Db | NodeKind::Http | NodeKind::Llm => SpanKind::Client,
                };
                let end = n.start + n.duration;
                let (status, events) = match n.failure {
                    Some(f) => (
                        Some(Status {
                            message: f.message.clone(),
                            code: StatusCode::Error as i32,
                        }),
                        vec![Event {
                            time_unix_nano: end.saturating_sub(rng.range(20_000, 400_000)),
                            name: "exception".to_string(),
                            attributes: vec![
                                kv("exception.type", &f.exception_type),
                                kv("exception.message", &f.message),
                                kv("exception.stacktrace", &f.stacktrace),
                            ],
                            dropped_attributes_count: 0,
                        }],
                    ),
                    None => (None, Vec::new()),
                };
                let span = Span {
                    trace_id: trace_id.to_vec(),
                    span_id: span_ids[i].to_vec(),
                    trace_state: String::new(),
                    parent_span_id: n.parent.map(|p| span_ids[p].to_vec()).unwrap_or_default(),
                    flags: SPAN_FLAGS,
                    name: n.name,
                    kind: kind as i32,
                    start_time_unix_nano: n.start,
                    end_time_unix_nano: end,
                    attributes: n.attributes,
                    dropped_attributes_count: 0,
                    events,
                    dropped_events_count: 0,
                    links: Vec::new(),
                    dropped_links_count: 0,
                    status,
                };
                (scope, span)
            })
            .collect();
        Trace {
            resource,
            trace_id,
            spans,
        }
    }
}

fn push(nodes: &mut Vec<Node>, node: Node) -> usize {
    nodes.push(node);
    nodes.len() - 1
}

/// Replaces `{id}` with a large literal id and `{n}` with a small number.
fn fill(template: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(pos) = rest.find('{') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(t) = tail.strip_prefix("{id}") {
            out.push_str(&rng.log_uniform(1_000.0, 40_000_000.0).round().to_string());
            rest = t;
        } else if let Some(t) = tail.strip_prefix("{n}") {
            out.push_str(&rng.range(1, 50).to_string());
            rest = t;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn root_node(rng: &mut Rng, service: &Service, route: &Route) -> Node {
    let path = fill(route.template, rng);
    let status = if route.method == "POST" { 201 } else { 200 };
    let mut node = Node::new(
        None,
        NodeKind::Root,
        format!("{} {}", route.method, route.template),
        vec![
            kv("http.request.method", route.method),
            kv("url.scheme", "https"),
            kv("url.path", &path),
            kv("http.route", route.template),
            kv_int("http.response.status_code", status),
            kv("server.address", service.server_address),
            kv_int("server.port", 443),
            kv("network.protocol.version", "1.1"),
            kv(
                "client.address",
                &format!(
                    "10.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    rng.range(1, 254)
                ),
            ),
            kv("user_agent.original", rng.pick::<&str>(USER_AGENTS)),
        ],
    );
    node.own_time = (rng.log_uniform(0.2, 4.0) * MS as f64) as u64;
    node
}

fn internal(rng: &mut Rng, parent: usize, name: &str) -> Node {
    let mut node = Node::new(
        Some(parent),
        NodeKind::Internal,
        name.to_string(),
        Vec::new(),
    );
    node.pad_before = pad(rng);
    node.own_time = (rng.log_uniform(0.03, 2.5) * MS as f64) as u64;
    node
}

fn db_node(rng: &mut Rng, service: &Service, parent: usize, sql: &Sql) -> Node {
    let mut node = Node::new(
        Some(parent),
        NodeKind::Db,
        format!("{} {}", sql.operation, sql.table),
        vec![
            kv("db.system.name", "postgresql"),
            kv("db.namespace", service.db_namespace),
            kv("db.operation.name", sql.operation),
            kv("db.collection.name", sql.table),
            kv("db.query.text", &fill(sql.text, rng)),
            kv("server.address", service.db_host),
            kv_int("server.port", 5432),
        ],
    );
    node.pad_before = pad(rng);
    node.own_time = (rng.log_uniform(0.25, 25.0) * MS as f64) as u64;
    node
}

fn http_node(rng: &mut Rng, service: &Service, parent: usize) -> Node {
    let (method, template) = *rng.pick(service.downstream);
    let url = fill(template, rng);
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("localhost")
        .to_string();
    let port = if url.contains(":8443") {
        8443
    } else if url.contains(":9200") {
        9200
    } else {
        8080
    };
    let status = if rng.chance(0.03) {
        404
    } else if method == "POST" {
        201
    } else {
        200
    };
    let mut node = Node::new(
        Some(parent),
        NodeKind::Http,
        method.to_string(),
        vec![
            kv("http.request.method", method),
            kv("url.full", &url),
            kv("server.address", &host),
            kv_int("server.port", port),
            kv_int("http.response.status_code", status),
        ],
    );
    node.pad_before = pad(rng);
    node.own_time = (rng.log_uniform(3.0, 250.0) * MS as f64) as u64;
    node
}

fn llm_node(rng: &mut Rng, parent: usize) -> Node {
    let (request_model, response_model) = *rng.pick(MODELS);
    let input_tokens = rng.log_uniform(150.0, 6_000.0) as i64;
    let output_tokens = rng.log_uniform(15.0, 900.0) as i64;
    let response_id: String = {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..29).map(|_| char::from(*rng.pick(ALPHABET))).collect()
    };
    let mut node = Node::new(
        Some(parent),
        NodeKind::Llm,
        format!("chat {request_model}"),
        vec![
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.system", "openai"),
            kv("gen_ai.provider.name", "openai"),
            kv("gen_ai.request.model", request_model),
            kv("gen_ai.response.model", response_model),
            kv("gen_ai.response.id", &format!("chatcmpl-{response_id}")),
            kv_strs("gen_ai.response.finish_reasons", &["stop"]),
            kv_int("gen_ai.usage.input_tokens", input_tokens),
            kv_int("gen_ai.usage.output_tokens", output_tokens),
            kv("server.address", "api.openai.com"),
            kv_int("server.port", 443),
        ],
    );
    node.pad_before = pad(rng);
    // Time to first token plus streaming time per output token.
    let ms = rng.log_uniform(180.0, 900.0) + output_tokens as f64 * rng.log_uniform(6.0, 20.0);
    node.own_time = (ms * MS as f64) as u64;
    node
}

fn pad(rng: &mut Rng) -> u64 {
    (rng.log_uniform(0.005, 0.3) * MS as f64) as u64
}

/// Marks one database, HTTP or LLM span as failed, and the root with it.
fn fail_one(rng: &mut Rng, service: &Service, nodes: &mut [Node]) {
    let candidates: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.kind, NodeKind::Db | NodeKind::Http | NodeKind::Llm))
        .map(|(i, _)| i)
        .collect();
    let victim = *rng.pick(&candidates);
    let kind = nodes[victim].kind;
    let failure = failure(rng, service, kind, &nodes[victim].name);
    if kind == NodeKind::Http {
        set_int(
            &mut nodes[victim].attributes,
            "http.response.status_code",
            503,
        );
    }
    nodes[victim]
        .attributes
        .push(kv("error.type", &failure.exception_type));
    nodes[victim].failure = Some(failure.clone());

    let root = &mut nodes[0];
    set_int(&mut root.attributes, "http.response.status_code", 500);
    root.attributes.push(kv("error.type", "500"));
    root.failure = Some(failure);
}

fn set_int(attributes: &mut [KeyValue], key: &str, value: i64) {
    for a in attributes.iter_mut().filter(|a| a.key == key) {
        a.value = Some(AnyValue {
            value: Some(Value::IntValue(value)),
        });
    }
}

fn failure(rng: &mut Rng, service: &Service, kind: NodeKind, span_name: &str) -> Failure {
    use Language::*;
    let lang = service.language;
    let (exception_type, message) = match (kind, lang) {
        (NodeKind::Db, Python) => (
            "psycopg.errors.QueryCanceled",
            "canceling statement due to statement timeout".to_string(),
        ),
        (NodeKind::Db, Go) => (
            "*pgconn.PgError",
            "ERROR: canceling statement due to statement timeout (SQLSTATE 57014)".to_string(),
        ),
        (NodeKind::Db, Java) => (
            "org.postgresql.util.PSQLException",
            "ERROR: deadlock detected\n  Detail: Process 48213 waits for ShareLock on transaction 9912834".to_string(),
        ),
        (NodeKind::Db, NodeJs) => ("DatabaseError", "Connection terminated unexpectedly".to_string()),
        (NodeKind::Http, Python) => ("httpx.ReadTimeout", "The read operation timed out".to_string()),
        (NodeKind::Http, Go) => (
            "*url.Error",
            "Post \"https://payments.internal:8443/v1/charges\": context deadline exceeded".to_string(),
        ),
        (NodeKind::Http, Java) => ("java.net.http.HttpTimeoutException", "request timed out".to_string()),
        (NodeKind::Http, NodeJs) => ("TypeError", "fetch failed".to_string()),
        (_, Python) => (
            "openai.RateLimitError",
            format!(
                "Error code: 429 - Rate limit reached on tokens per min (TPM): Limit 200000, Used {}, Requested {}.",
                rng.range(195_000, 200_000),
                rng.range(1_000, 9_000)
            ),
        ),
        (_, Go) => ("*openai.Error", "POST \"https://api.openai.com/v1/chat/completions\": 500 Internal Server Error".to_string()),
        (_, Java) => ("com.openai.errors.RateLimitException", "429: Rate limit reached for requests".to_string()),
        (_, NodeJs) => ("APIConnectionTimeoutError", "Request timed out.".to_string()),
    };
    let stacktrace = stacktrace(rng, service, exception_type, &message, span_name);
    Failure {
        exception_type: exception_type.to_string(),
        message,
        stacktrace,
    }
}

/// A five-frame stack trace in the style of the service's language.
fn stacktrace(
    rng: &mut Rng,
    service: &Service,
    ty: &str,
    message: &str,
    span_name: &str,
) -> String {
    let module = service.name.replace('-', "_");
    let frames = [
        ("handlers", "handle_request"),
        ("service", "process"),
        ("repository", "fetch"),
        ("client", "execute"),
        ("transport", "send"),
    ];
    let mut out = String::with_capacity(600);
    match service.language {
        Language::Python => {
            out.push_str("Traceback (most recent call last):\n");
            for (file, func) in frames {
                out.push_str(&format!(
                    "  File \"/app/{module}/{file}.py\", line {}, in {func}\n    result = await {func}_impl(ctx)  # {span_name}\n",
                    rng.range(20, 400)
                ));
            }
            out.push_str(&format!("{ty}: {message}"));
        }
        Language::Go => {
            out.push_str(&format!(
                "{ty}: {message}\n\ngoroutine {} [running]:\n",
                rng.range(20, 9000)
            ));
            for (file, func) in frames {
                out.push_str(&format!(
                    "github.com/example/{}/internal/{file}.{func}(0xc000{:06x})\n\t/src/internal/{file}/{file}.go:{} +0x{:x}\n",
                    service.name,
                    rng.below(0xFFFFFF),
                    rng.range(20, 400),
                    rng.range(0x20, 0x400)
                ));
            }
        }
        Language::Java => {
            out.push_str(&format!("{ty}: {message}\n"));
            for (file, func) in frames {
                let class = format!("{}{}", file[..1].to_uppercase(), &file[1..]);
                out.push_str(&format!(
                    "\tat com.example.{module}.{file}.{class}.{func}({class}.java:{})\n",
                    rng.range(20, 400)
                ));
            }
        }
        Language::NodeJs => {
            out.push_str(&format!("{ty}: {message}\n"));
            for (file, func) in frames {
                out.push_str(&format!(
                    "    at {func} (/app/dist/{file}.js:{}:{})\n",
                    rng.range(20, 400),
                    rng.range(3, 60)
                ));
            }
        }
    }
    out
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_string())),
        }),
        key_strindex: 0,
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        key_strindex: 0,
    }
}

fn kv_strs(key: &str, values: &[&str]) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: values
                    .iter()
                    .map(|v| AnyValue {
                        value: Some(Value::StringValue((*v).to_string())),
                    })
                    .collect(),
            })),
        }),
        key_strindex: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    const BASE: u64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    #[test]
    fn traces_average_thirteen_spans() {
        let g = Generator::new(BASE);
        let mut rng = Rng::new(1);
        let n = 2_000;
        let total: usize = (0..n).map(|_| g.trace(&mut rng).spans.len()).sum();
        let mean = total as f64 / n as f64;
        assert!((12.5..=13.5).contains(&mean), "mean spans per trace {mean}");
    }

    #[test]
    fn trace_has_the_stated_shape() {
        let g = Generator::new(BASE);
        let mut rng = Rng::new(2);
        for _ in 0..500 {
            let t = g.trace(&mut rng);
            let count = |scope: Scope| t.spans.iter().filter(|(s, _)| *s == scope).count();
            assert_eq!(count(Scope::Server), 1);
            assert!((3..=5).contains(&count(Scope::App)));
            assert!((4..=6).contains(&count(Scope::Db)));
            assert!((1..=2).contains(&count(Scope::Http)));
            assert!((1..=2).contains(&count(Scope::Llm)));
            let root = &t.spans[0].1;
            assert!(root.parent_span_id.is_empty());
            assert_eq!(root.kind, SpanKind::Server as i32);
            for key in [
                "http.request.method",
                "url.path",
                "http.route",
                "http.response.status_code",
                "server.address",
                "user_agent.original",
            ] {
                assert!(attr(root, key).is_some(), "root lacks {key}");
            }
            for (scope, span) in &t.spans {
                match scope {
                    Scope::Db => {
                        assert_eq!(
                            attr(span, "db.system.name"),
                            Some(&Value::StringValue("postgresql".into()))
                        );
                        assert!(attr(span, "db.query.text").is_some());
                        assert!(attr(span, "db.namespace").is_some());
                        assert!(attr(span, "server.address").is_some());
                    }
                    Scope::Llm => {
                        for key in [
                            "gen_ai.system",
                            "gen_ai.provider.name",
                            "gen_ai.request.model",
                            "gen_ai.response.model",
                            "gen_ai.usage.input_tokens",
                            "gen_ai.usage.output_tokens",
                            "gen_ai.operation.name",
                        ] {
                            assert!(attr(span, key).is_some(), "llm span lacks {key}");
                        }
                    }
                    Scope::Http => {
                        assert!(attr(span, "url.full").is_some());
                        assert!(attr(span, "http.request.method").is_some());
                        assert!(attr(span, "http.response.status_code").is_some());
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn children_lie_inside_their_parents() {
        let g = Generator::new(BASE);
        let mut rng = Rng::new(3);
        let mut traces: Vec<Trace> = (0..300).map(|_| g.trace(&mut rng)).collect();
        traces.push(g.big_trace(&mut rng, 1_000));
        for t in traces {
            let by_id: HashMap<&[u8], &Span> = t
                .spans
                .iter()
                .map(|(_, s)| (s.span_id.as_slice(), s))
                .collect();
            for (_, s) in &t.spans {
                assert!(s.end_time_unix_nano > s.start_time_unix_nano);
                assert!(s.end_time_unix_nano <= BASE);
                if s.parent_span_id.is_empty() {
                    continue;
                }
                let p = by_id[s.parent_span_id.as_slice()];
                assert!(s.start_time_unix_nano >= p.start_time_unix_nano);
                assert!(s.end_time_unix_nano <= p.end_time_unix_nano);
            }
        }
    }

    #[test]
    fn error_ratio_is_about_five_percent() {
        let g = Generator::new(BASE);
        let mut rng = Rng::new(4);
        let traces: Vec<Trace> = (0..1_000).map(|_| g.trace(&mut rng)).collect();
        let errors = traces.iter().filter(|t| t.has_error()).count();
        assert!(
            (30..=70).contains(&errors),
            "{errors} of 1000 traces failed"
        );
        for t in traces.iter().filter(|t| t.has_error()) {
            let failing: Vec<&Span> = t
                .spans
                .iter()
                .map(|(_, s)| s)
                .filter(|s| !s.events.is_empty())
                .collect();
            // The failing leaf and the root both carry the exception.
            assert_eq!(failing.len(), 2);
            for s in failing {
                let ev = &s.events[0];
                assert_eq!(ev.name, "exception");
                let keys: HashSet<&str> = ev.attributes.iter().map(|a| a.key.as_str()).collect();
                assert!(keys.contains("exception.type"));
                assert!(keys.contains("exception.message"));
                let Some(AnyValue {
                    value: Some(Value::StringValue(st)),
                }) = ev
                    .attributes
                    .iter()
                    .find(|a| a.key == "exception.stacktrace")
                    .and_then(|a| a.value.clone())
                else {
                    panic!("no stack trace");
                };
                assert!(st.lines().count() >= 6, "short stack trace:\n{st}");
            }
        }
    }

    #[test]
    fn big_trace_has_exact_size_and_one_root() {
        let g = Generator::new(BASE);
        for n in [1, 2, 7, 1_000] {
            let t = g.big_trace(&mut Rng::new(n as u64), n);
            assert_eq!(t.spans.len(), n);
            let roots = t
                .spans
                .iter()
                .filter(|(_, s)| s.parent_span_id.is_empty())
                .count();
            assert_eq!(roots, 1);
            let ids: HashSet<&[u8]> = t.spans.iter().map(|(_, s)| s.span_id.as_slice()).collect();
            assert_eq!(ids.len(), n);
        }
    }

    #[test]
    fn sql_literals_vary() {
        let mut rng = Rng::new(5);
        let a = fill("SELECT * FROM t WHERE id = {id} LIMIT {n}", &mut rng);
        let b = fill("SELECT * FROM t WHERE id = {id} LIMIT {n}", &mut rng);
        assert_ne!(a, b);
        assert!(!a.contains('{'), "{a}");
        assert_eq!(fill("a {x} b", &mut rng), "a {x} b");
    }

    #[test]
    fn resources_and_scopes_are_complete() {
        for i in 0..resource_count() {
            let r = resource(i);
            let keys: HashSet<&str> = r.attributes.iter().map(|a| a.key.as_str()).collect();
            for key in [
                "service.name",
                "service.version",
                "host.name",
                "telemetry.sdk.name",
                "telemetry.sdk.language",
                "telemetry.sdk.version",
            ] {
                assert!(keys.contains(key), "resource {i} lacks {key}");
            }
            assert!(!scope(i, Scope::Db).name.is_empty());
        }
    }
}

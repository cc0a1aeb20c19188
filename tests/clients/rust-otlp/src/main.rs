//! A real OpenTelemetry Rust client used by the end-to-end tests.
//!
//! Configured only through the standard environment variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, ...), it exports one
//! trace of a known shape and one correlated log record over OTLP/gRPC, shuts
//! the providers down (which flushes them) and prints the trace id (32
//! lower-case hex characters) as the only line on stdout.
//!
//! Shape (asserted by `tests/e2e/test_rust_client.py`):
//!
//! ```text
//! checkout (server; attributes of every type)
//! ├── load-cart (internal; event "cart.loaded" {count=3})
//! │   ├── SELECT cart_items (client; db.system.name, db.query.text)
//! │   ├── SELECT cart_items
//! │   └── SELECT cart_items
//! └── charge-card (client; link to load-cart {link.kind=follows};
//!                  event "exception"; status error "card declined";
//!                  log "payment failed for alice" at ERROR)
//! ```

use std::process::ExitCode;
use std::time::Duration;

use opentelemetry::trace::{
    Link, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, SpanExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

const SERVICE_NAME: &str = "rust-e2e";
const SCOPE_NAME: &str = "devtrace-e2e-rust-client";

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn resource() -> Resource {
    let builder = Resource::builder();
    // OTEL_SERVICE_NAME (read by the builder's env detector) wins over ours.
    let has_env_name = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty());
    if has_env_name {
        builder.build()
    } else {
        builder.with_service_name(SERVICE_NAME).build()
    }
}

fn root_attributes() -> Vec<KeyValue> {
    vec![
        KeyValue::new("app.user", "alice"),
        KeyValue::new("app.vip", true),
        KeyValue::new("app.items", 3_i64),
        KeyValue::new("app.total", 42.5_f64),
        KeyValue::new(
            "app.tags",
            Value::Array(Array::String(vec![
                StringValue::from("a"),
                StringValue::from("b"),
            ])),
        ),
        KeyValue::new("app.sizes", Value::Array(Array::I64(vec![1, 2, 3]))),
        KeyValue::new("app.flags", Value::Array(Array::Bool(vec![true, false]))),
        KeyValue::new("app.prices", Value::Array(Array::F64(vec![1.5, 2.25]))),
    ]
}

/// Emits the trace and returns its id as lower-case hex.
fn emit(tracer_provider: &SdkTracerProvider) -> String {
    let tracer = tracer_provider.tracer_with_scope(
        opentelemetry::InstrumentationScope::builder(SCOPE_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    );
    let pause = || std::thread::sleep(Duration::from_millis(2));

    let root = tracer
        .span_builder("checkout")
        .with_kind(SpanKind::Server)
        .with_attributes(root_attributes())
        .start_with_context(&tracer, &Context::new());
    let root_cx = Context::new().with_span(root);
    let trace_id = root_cx.span().span_context().trace_id().to_string();

    // load-cart with three queries.
    let load = tracer
        .span_builder("load-cart")
        .with_kind(SpanKind::Internal)
        .start_with_context(&tracer, &root_cx);
    let load_cx = root_cx.with_span(load);
    for _ in 0..3 {
        let mut query = tracer
            .span_builder("SELECT cart_items")
            .with_kind(SpanKind::Client)
            .with_attributes(vec![
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new("db.query.text", "SELECT * FROM cart_items WHERE id = ?"),
            ])
            .start_with_context(&tracer, &load_cx);
        pause();
        opentelemetry::trace::Span::end(&mut query);
    }
    load_cx
        .span()
        .add_event("cart.loaded", vec![KeyValue::new("count", 3_i64)]);
    let load_span_context = load_cx.span().span_context().clone();
    pause();
    load_cx.span().end();

    // charge-card fails.
    let charge = tracer
        .span_builder("charge-card")
        .with_kind(SpanKind::Client)
        .with_links(vec![Link::new(
            load_span_context,
            vec![KeyValue::new("link.kind", "follows")],
            0,
        )])
        .start_with_context(&tracer, &root_cx);
    let charge_cx = root_cx.with_span(charge);
    {
        // The log bridge takes the trace context from the current OTel context.
        let _guard = charge_cx.clone().attach();
        tracing::error!(name: "payment.failed", user = "alice", "payment failed for alice");
    }
    charge_cx.span().add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", "PaymentError"),
            KeyValue::new("exception.message", "card declined"),
        ],
    );
    charge_cx.span().set_status(Status::error("card declined"));
    pause();
    charge_cx.span().end();

    pause();
    root_cx.span().end();
    trace_id
}

fn run() -> Result<String, BoxError> {
    // The tonic exporters need a Tokio runtime for their connections; the
    // SDK's batch processors export from their own threads, so the work and
    // the shutdown happen on this (non-runtime) thread while the runtime's
    // workers drive the network I/O.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (tracer_provider, logger_provider) = {
        let _enter = runtime.enter();
        let span_exporter = SpanExporter::builder().with_tonic().build()?;
        let log_exporter = LogExporter::builder().with_tonic().build()?;
        let resource = resource();
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(span_exporter)
            .build();
        let logger_provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(log_exporter)
            .build();
        (tracer_provider, logger_provider)
    };

    // Only this program's own events become log records (not those of the
    // HTTP/2 stack underneath the exporter).
    let bridge = OpenTelemetryTracingBridge::new(&logger_provider).with_filter(
        tracing_subscriber::filter::filter_fn(|meta| {
            meta.target().starts_with(env!("CARGO_CRATE_NAME"))
        }),
    );
    let subscriber = tracing_subscriber::registry().with(bridge);
    let trace_id = tracing::subscriber::with_default(subscriber, || emit(&tracer_provider));

    let traces = tracer_provider.shutdown();
    let logs = logger_provider.shutdown();
    traces.map_err(|e| format!("trace provider shutdown: {e}"))?;
    logs.map_err(|e| format!("logger provider shutdown: {e}"))?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(trace_id)
}

fn main() -> ExitCode {
    match run() {
        Ok(trace_id) => {
            println!("{trace_id}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("otlp-rust-client: {e}");
            ExitCode::FAILURE
        }
    }
}

//! OTLP/JSON documents (traces and logs) through decoding, validation and redaction.
#![no_main]
use devtrace_ingest::{Limits, json, proto, redact::Redactor};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static REDACTOR: LazyLock<Redactor> = LazyLock::new(Redactor::builtin);

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(resource_spans) = json::decode_traces(data) {
        let mut accepted = proto::spans_from_proto(resource_spans, &limits);
        REDACTOR.redact_spans(&mut accepted.batch);
    }
    if let Ok(resource_logs) = json::decode_logs(data) {
        let mut accepted = proto::logs_from_proto(resource_logs, &limits);
        REDACTOR.redact_logs(&mut accepted.batch);
    }
});

//! OTLP protobuf requests (traces and logs) through decoding, validation with the default
//! limits, and redaction: no panic, no unbounded allocation, no hang.
#![no_main]
use devtrace_ingest::{Limits, proto, redact::Redactor};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static REDACTOR: LazyLock<Redactor> = LazyLock::new(Redactor::builtin);

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(request) = proto::decode_trace_request(data) {
        let mut accepted = proto::spans_from_proto(request.resource_spans, &limits);
        REDACTOR.redact_spans(&mut accepted.batch);
    }
    if let Ok(request) = proto::decode_logs_request(data) {
        let mut accepted = proto::logs_from_proto(request.resource_logs, &limits);
        REDACTOR.redact_logs(&mut accepted.batch);
    }
});

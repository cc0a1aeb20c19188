//! `trace-1.0.0` documents: the validator, then the spans built from a valid one.
#![no_main]
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::trace_v1;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};

static REDACTOR: LazyLock<Arc<Redactor>> = LazyLock::new(|| Arc::new(Redactor::builtin()));

fuzz_target!(|data: &[u8]| {
    if let Ok(document) = trace_v1::parse(data, &REDACTOR) {
        let _ = trace_v1::to_spans(&document, REDACTOR.clone());
    }
});

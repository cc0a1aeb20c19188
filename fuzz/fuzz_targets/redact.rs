//! The built-in redaction rules on arbitrary bytes and text: no panic, valid UTF-8 out of
//! UTF-8 in, and redacting twice changes nothing more (idempotence).
#![no_main]
use devtrace_ingest::redact::Redactor;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static REDACTOR: LazyLock<Redactor> = LazyLock::new(Redactor::builtin);

fuzz_target!(|data: &[u8]| {
    let _ = REDACTOR.redact_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let once = REDACTOR.redact(text).into_owned();
        let twice = REDACTOR.redact(&once);
        assert_eq!(twice, once, "redacting twice changed the text");
    }
});

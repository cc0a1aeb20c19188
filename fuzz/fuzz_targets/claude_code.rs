//! Claude Code transcripts, line by line as `devtrace import` reads them, then drained.
#![no_main]
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::{LineSource, claude_code::ClaudeCodeImporter};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};

static REDACTOR: LazyLock<Arc<Redactor>> = LazyLock::new(|| Arc::new(Redactor::builtin()));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut importer = ClaudeCodeImporter::new(REDACTOR.clone());
    for (n, line) in text.lines().enumerate() {
        let _ = importer.line(n as u64 + 1, line);
    }
    let _ = importer.drain();
});

//! Bounded gzip: whatever the input (bombs included), the output never exceeds the limit.
#![no_main]
use devtrace_ingest::gzip::gunzip_bounded;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = gunzip_bounded(data, LIMIT) {
        assert!(out.len() <= LIMIT, "{} bytes out of a {LIMIT}-byte limit", out.len());
    }
});

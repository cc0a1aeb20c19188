//! `devtrace record`: a developer's own work captured as a `trace-1.0.0` session.
//!
//! A recording is a directory under `DATA/record/sessions/<id>/` owned by one background
//! recorder process. Everything that happens is appended to that directory's journal as it
//! arrives ([`journal`]), so a killed recorder loses nothing it acknowledged, and `record stop`
//! (or closing an orphaned session) turns the journal into one document ([`document`]).
//!
//! The pieces, by what they own:
//! - [`layout`]: where a recording's files are, and which one is active;
//! - [`meta`]: what is known when a recording starts (task, developer, environment);
//! - [`journal`]: the durable, append-only record of events;
//! - [`git`]: the repository facts (remote, branch, start commit) and the final patch, from the
//!   real `git`;
//! - [`edits`]: a saved change as an `edit` event (unified diff, content hashes, language;
//!   binary and huge files summarised) and the snapshots diffs are taken against;
//! - [`shell`]: the bash, zsh and fish hooks and the lines they write;
//! - [`capture`]: the shell integration's capture mode, each command's output cut from the
//!   terminal stream by the hooks' markers;
//! - [`protocol`]: the local socket's requests and answers, and a client;
//! - [`watch`]: the working tree's file watcher (gitignore respected, bursts coalesced);
//! - [`recorder`]: the background process tying them together.
//!
//! What this crate must not do: open the store or talk to a server (the CLI sends the finished
//! document through the ordinary import path), or print for people (the CLI formats).

pub mod capture;
pub mod document;
pub mod edits;
pub mod git;
pub mod journal;
pub mod language;
pub mod layout;
pub mod meta;
pub mod protocol;
pub mod recorder;
pub mod shell;
pub mod watch;

pub use devtrace_ingest::sessions::trace_v1::VERSION;

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// An RFC 3339 time with milliseconds, as trace-1.0.0 events carry it.
pub fn timestamp(nanos: u64) -> String {
    devtrace_model::time::format_rfc3339(nanos - nanos % 1_000_000)
}

/// A new random UUID (version 4), from the operating system's random source.
pub fn new_uuid() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_version_4_and_differ() {
        let a = super::new_uuid().unwrap();
        let b = super::new_uuid().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }
}

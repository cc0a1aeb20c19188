//! Large recorded values (a tool's whole output, a long prompt, a document) read back from the
//! store's content-addressed blobs, a bounded page at a time.
//!
//! Span attributes keep a bounded head of such a value and its blob's hash
//! (`devtrace.session.output.ref`, `.input.ref`, `.document.ref`); a viewer that wants all of
//! it reads the blob here. The session detectors that need a tool's whole output read it
//! through [`whole_outputs`], a lazy reader of these blobs within the detectors' budget.

use crate::scope::QueryError;
use devtrace_analyze::detectors::session::outputs::WholeOutputs;
use devtrace_store::{BlobHash, Store};
use serde::Serialize;

/// Bytes returned when no limit is given, and the most one page returns.
pub const DEFAULT_PAGE_BYTES: usize = 1024 * 1024;
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Parses a blob reference: 64 hexadecimal characters (the blake3 hash of the value).
pub fn parse_hash(text: &str) -> Option<BlobHash> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(hash)
}

/// One page of a blob, as text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlobPage {
    /// The blob's hash, lowercase hex.
    pub hash: String,
    /// The whole value's size in bytes.
    pub size: u64,
    /// Where this page starts, in bytes.
    pub offset: u64,
    /// This page's text (bytes that are not UTF-8 are shown as U+FFFD).
    pub text: String,
    /// Where the next page starts; absent on the last page.
    pub next_offset: Option<u64>,
}

/// The bytes of blob `hash` from `offset`, at most `limit` of them, ending on a character
/// boundary (so pages chained through `next_offset` never split a character). `None` when the
/// store holds no such blob.
pub fn read_page(
    store: &dyn Store,
    hash: &BlobHash,
    offset: u64,
    limit: usize,
) -> Result<Option<BlobPage>, QueryError> {
    let Some(bytes) = store.blob(hash)? else {
        return Ok(None);
    };
    let size = bytes.len() as u64;
    if offset > size {
        return Err(QueryError::Invalid(format!(
            "offset: {offset} is past the end of the value ({size} bytes)"
        )));
    }
    let start = offset as usize;
    let mut end = start.saturating_add(limit.max(1)).min(bytes.len());
    // End on a character boundary: back up over continuation bytes, or, when the page is
    // shorter than the character at its start, take that whole character.
    while end > start && end < bytes.len() && is_continuation(bytes[end]) {
        end -= 1;
    }
    if end == start && start < bytes.len() {
        end = start + 1;
        while end < bytes.len() && is_continuation(bytes[end]) {
            end += 1;
        }
    }
    Ok(Some(BlobPage {
        hash: hash.iter().map(|b| format!("{b:02x}")).collect(),
        size,
        offset,
        text: String::from_utf8_lossy(&bytes[start..end]).into_owned(),
        next_offset: (end < bytes.len()).then_some(end as u64),
    }))
}

/// The whole outputs of one session's tool calls, read from `store`'s blobs when a detector
/// asks for one, at most `budget` bytes of them (the settings' budget, by default
/// [`devtrace_analyze::detectors::session::outputs::DEFAULT_BUDGET_BYTES`]). A blob the store cannot read is treated as one it does not hold:
/// that output cannot be checked.
pub fn whole_outputs(store: &dyn Store, budget: u64) -> WholeOutputs<'_> {
    WholeOutputs::new(
        |hex: &str| {
            let bytes = store.blob(&parse_hash(hex)?).ok()??;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        },
        budget,
    )
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
    use devtrace_store::{StoreWriter, WriteBatch, compress_blob};

    #[test]
    fn hashes_are_64_hex_characters() {
        let hash = parse_hash(&"ab".repeat(32)).unwrap();
        assert_eq!(hash, [0xab; 32]);
        assert_eq!(parse_hash("abc"), None);
        assert_eq!(parse_hash(&"zz".repeat(32)), None);
    }

    #[test]
    fn pages_never_split_a_character_and_chain_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let text = "héllo wörld ".repeat(100);
        let hash = [3u8; 32];
        SqliteWriter::open(dir.path())
            .unwrap()
            .write(&[WriteBatch {
                blobs: vec![compress_blob(hash, text.as_bytes())],
                ..Default::default()
            }])
            .unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut offset = 0;
        let mut joined = String::new();
        let mut pages = 0;
        loop {
            let page = read_page(&store, &hash, offset, 2).unwrap().unwrap();
            assert_eq!(page.size, text.len() as u64);
            assert!(!page.text.contains('\u{FFFD}'), "{:?}", page.text);
            assert!(page.text.len() <= 2);
            joined.push_str(&page.text);
            pages += 1;
            match page.next_offset {
                Some(next) => offset = next,
                None => break,
            }
        }
        assert_eq!(joined, text);
        // Pages ending inside a two-byte character were shortened to one byte.
        assert!(pages > text.len() / 2, "{pages} pages");
        let whole = read_page(&store, &hash, 0, DEFAULT_PAGE_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(
            (whole.text.as_str(), whole.next_offset),
            (text.as_str(), None)
        );
        assert!(read_page(&store, &[7; 32], 0, 10).unwrap().is_none());
        assert!(matches!(
            read_page(&store, &hash, 1_000_000, 10),
            Err(QueryError::Invalid(m)) if m.starts_with("offset: 1000000 is past the end")
        ));
        // A page shorter than the character it starts on holds that character.
        let page = read_page(&store, &hash, 1, 1).unwrap().unwrap();
        assert_eq!((page.text.as_str(), page.next_offset), ("é", Some(3)));
    }
}

//! Value slots in the recorder file: the flight recorder's store of the last value summaries
//! of each thread (a captured call's arguments, its return value or its exception), kept in
//! the shared mapping so a window recovered from a killed process has them too.
//!
//! A thread takes a *block* of [`VALUE_SLOTS_PER_BLOCK`] slots at its first capture (the
//! block handed out longest ago: with more threads than blocks, two threads share one and
//! evict each other's older summaries) and writes its captures into it round-robin: a block
//! holds its thread's last 16 calls. A capture's *value id* names its slot: the thread's count
//! of captures (24 bits) above the block (8 bits). The `Value` record in the thread's ring
//! carries the id; a reader finds the slot from it and takes the text only when the slot's tag
//! still names that stream and id (a slot written again since holds another capture).
//!
//! A slot is `tag u64 (stream's low 32 bits, id) | length u64 | text`, the tag used as a
//! seqlock: zero while the slot is rewritten, so a reader in the same process (a dump, while
//! other threads run) never takes half a summary. Everything is stored as atomic words.
//!
//! Must not: allocate on the writer's path, or trust anything read back (lengths are bounded,
//! text is checked UTF-8).

use std::sync::atomic::{AtomicU64, Ordering, fence};

use crate::ring::{
    H_NEXT_VALUE_BLOCK, RecorderFile, VALUE_SLOT_SIZE, VALUE_SLOTS_PER_BLOCK, truncate_utf8,
};

/// Bytes of text a slot keeps (a longer summary is cut at a character boundary).
pub const VALUE_TEXT_BYTES: usize = VALUE_SLOT_SIZE - 16;
/// The captures a thread counts before its ids repeat (24 bits).
const COUNT_MASK: u32 = (1 << 24) - 1;

/// A thread's block of value slots and how many captures it wrote.
#[derive(Debug, Clone, Copy)]
pub struct ValueWriter {
    block: u32,
    count: u32,
}

impl RecorderFile {
    /// A writer of value summaries for a new thread: the next block, or None when the file has
    /// no value slots.
    pub fn value_writer(&self) -> Option<ValueWriter> {
        let blocks = self.layout().value_blocks;
        if blocks == 0 {
            return None;
        }
        let n = self
            .u64_at(H_NEXT_VALUE_BLOCK)
            .fetch_add(1, Ordering::Relaxed);
        Some(ValueWriter {
            block: (n % blocks as u64) as u32,
            count: 0,
        })
    }

    /// Writes `text` (cut to [`VALUE_TEXT_BYTES`]) into `w`'s next slot for `stream`; returns
    /// its value id (never 0), for the `Value` record naming it.
    pub fn write_value(&self, w: &mut ValueWriter, stream: u64, text: &str) -> u32 {
        w.count = (w.count + 1) & COUNT_MASK;
        if w.count == 0 {
            w.count = 1;
        }
        let id = w.count << 8 | w.block;
        let words = self.value_slot(w.block, w.count % VALUE_SLOTS_PER_BLOCK);
        let text = truncate_utf8(text, VALUE_TEXT_BYTES);
        let (tag, rest) = words.split_first().expect("a slot has words");
        tag.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        rest[0].store(text.len() as u64, Ordering::Relaxed);
        for (word, bytes) in rest[1..].iter().zip(text.as_bytes().chunks(8)) {
            let mut padded = [0u8; 8];
            padded[..bytes.len()].copy_from_slice(bytes);
            word.store(u64::from_ne_bytes(padded), Ordering::Relaxed);
        }
        tag.store(slot_tag(stream, id), Ordering::Release);
        id
    }

    /// The summary `stream` wrote under `id`, if its slot still holds it.
    pub fn read_value(&self, stream: u64, id: u32) -> Option<String> {
        let blocks = self.layout().value_blocks;
        let block = id & 0xFF;
        if id == 0 || block >= blocks {
            return None;
        }
        let words = self.value_slot(block, (id >> 8) % VALUE_SLOTS_PER_BLOCK);
        let expected = slot_tag(stream, id);
        let (tag, rest) = words.split_first()?;
        if tag.load(Ordering::Acquire) != expected {
            return None;
        }
        let len = (rest[0].load(Ordering::Relaxed) as usize).min(VALUE_TEXT_BYTES);
        let mut bytes = Vec::with_capacity(len.next_multiple_of(8));
        for word in &rest[1..1 + len.div_ceil(8)] {
            bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        fence(Ordering::Acquire);
        if tag.load(Ordering::Relaxed) != expected {
            return None;
        }
        bytes.truncate(len);
        String::from_utf8(bytes).ok()
    }

    /// The words of slot `slot` of block `block`.
    fn value_slot(&self, block: u32, slot: u32) -> &[AtomicU64] {
        let layout = self.layout();
        assert!(block < layout.value_blocks && slot < VALUE_SLOTS_PER_BLOCK);
        let at = layout.values_offset()
            + (block as usize * VALUE_SLOTS_PER_BLOCK as usize + slot as usize) * VALUE_SLOT_SIZE;
        self.words(at, VALUE_SLOT_SIZE / 8)
    }
}

fn slot_tag(stream: u64, id: u32) -> u64 {
    (stream & 0xFFFF_FFFF) << 32 | id as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Layout;

    fn file(dir: &std::path::Path, blocks: u32) -> RecorderFile {
        let layout = Layout::new(64, 4, 16, 4096).with_value_blocks(blocks);
        RecorderFile::create(&dir.join("v.ring"), layout, 1, 1, "{}").unwrap()
    }

    #[test]
    fn a_thread_keeps_its_last_sixteen_calls_and_a_reader_elsewhere_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), 2);
        let mut w = f.value_writer().unwrap();
        let ids: Vec<u32> = (0..40)
            .map(|i| f.write_value(&mut w, 7, &format!("x={i}")))
            .collect();
        // The last 32 captures (16 calls' arguments and results) are there; older ones gone.
        assert_eq!(f.read_value(7, ids[39]).as_deref(), Some("x=39"));
        assert_eq!(f.read_value(7, ids[8]).as_deref(), Some("x=8"));
        assert_eq!(f.read_value(7, ids[7]), None);
        // Another stream's id, or the same id asked for by another stream, finds nothing.
        assert_eq!(f.read_value(8, ids[39]), None);
        // Another process reading the file after the writer died.
        let again = RecorderFile::open(&dir.path().join("v.ring")).unwrap();
        assert_eq!(again.read_value(7, ids[20]).as_deref(), Some("x=20"));
    }

    #[test]
    fn threads_take_blocks_of_their_own_until_there_are_more_threads_than_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), 2);
        let (mut a, mut b, mut c) = (
            f.value_writer().unwrap(),
            f.value_writer().unwrap(),
            f.value_writer().unwrap(),
        );
        let from_a = f.write_value(&mut a, 1, "a");
        let from_b = f.write_value(&mut b, 2, "b");
        assert_eq!(f.read_value(1, from_a).as_deref(), Some("a"));
        assert_eq!(f.read_value(2, from_b).as_deref(), Some("b"));
        // The third thread shares a's block: its first capture takes a's first slot.
        let from_c = f.write_value(&mut c, 3, "c");
        assert_eq!(f.read_value(3, from_c).as_deref(), Some("c"));
        assert_eq!(f.read_value(1, from_a), None);
    }

    #[test]
    fn a_long_summary_is_cut_at_a_character_boundary_and_files_without_slots_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), 1);
        let mut w = f.value_writer().unwrap();
        let long = "é".repeat(VALUE_TEXT_BYTES);
        let id = f.write_value(&mut w, 1, &long);
        let got = f.read_value(1, id).unwrap();
        assert_eq!(got, "é".repeat(VALUE_TEXT_BYTES / 2));
        let none = RecorderFile::create(
            &dir.path().join("n.ring"),
            Layout::new(64, 4, 16, 4096),
            1,
            1,
            "{}",
        )
        .unwrap();
        assert!(none.value_writer().is_none());
        assert_eq!(none.read_value(1, id), None);
    }
}

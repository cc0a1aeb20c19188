//! The value area of a recorder file: the flight recorders' store of their last value
//! summaries (a captured call's arguments, its return value or its exception) — per thread in
//! slots for Python's, one ring of cells for the BEAM's (below) — kept in the shared mapping so
//! a window recovered from a killed process has them too.
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
//! A runtime whose value ids are unique in the file (the BEAM tracer's, handed out in blocks
//! from one counter) may instead use the whole value area as one ring shared by its writers
//! ([`SharedValueRing`]): texts are written in the order they are made, whichever scheduler
//! thread makes them, so the ring holds the file's *last* texts — those of a flight window's
//! last calls — however the work is spread over threads. The area is cut into 64-byte cells; a
//! text takes the cells it needs (most summaries one), each cell tagged with the text's kind,
//! id and the cell's place in it (a seqlock each, as a slot's), and is read back by a scan of
//! them all ([`RecorderFile::read_shared_values`]): a cell written again since carries another
//! tag, so a text is found whole under its own id or not at all.
//!
//! Must not: allocate on the writer's path, or trust anything read back (lengths are bounded,
//! text is checked UTF-8).

use std::collections::HashMap;
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
        let (tag, rest) = words.split_first().expect("a slot has words");
        tag.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        write_text_words(rest, text);
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
        read_text_words(tag, rest, expected)
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

/// Bytes of a shared ring's cell (a slot's area holds 10): an entry takes as many as its text
/// needs, so the many short summaries of a BEAM program (`:ok`, `[42]`) take one cell, not a
/// 640-byte slot each.
const CELL_SIZE: usize = 64;
/// Text bytes of an entry's first cell (after its tag and length) and of each further one
/// (after its tag).
const FIRST_CELL_TEXT: usize = CELL_SIZE - 16;
const NEXT_CELL_TEXT: usize = CELL_SIZE - 8;
/// A cell being written by one of the ring's writers (never a tag: kind 255 is refused).
const CELL_WRITING: u64 = u64::MAX;

/// The tag of cell `index` of the entry holding the text of `kind` (a caller's own numbering,
/// 1–254) under `id` (not 0).
fn cell_tag(kind: u8, id: u32, index: usize) -> u64 {
    (kind as u64) << 56 | (index as u64) << 48 | id as u64
}

/// The cells an entry of `len` text bytes takes.
fn cells_for(len: usize) -> usize {
    1 + len.saturating_sub(FIRST_CELL_TEXT).div_ceil(NEXT_CELL_TEXT)
}

/// The file's value area as one ring of cells shared by every writer of a runtime whose value
/// ids are unique in the file (see the module doc). Holds the count of cells written, in the
/// writing process's memory (the cells' tags say all a reader needs).
#[derive(Debug, Default)]
pub struct SharedValueRing {
    written: AtomicU64,
}

impl SharedValueRing {
    pub fn new() -> SharedValueRing {
        SharedValueRing::default()
    }

    /// Writes `text` (cut to [`VALUE_TEXT_BYTES`]) of `kind` under `id` into the ring's next
    /// cells, over the oldest texts; false when the file has no value area, `kind` is 0 or
    /// 255, `id` is 0, or another writer is still writing one of those cells (it came round
    /// the whole ring meanwhile: the text is then not kept rather than mixed with the other's).
    pub fn write(&self, file: &RecorderFile, kind: u8, id: u32, text: &str) -> bool {
        let cells = file.shared_value_cells();
        if cells == 0 || kind == 0 || kind == u8::MAX || id == 0 {
            return false;
        }
        let text = truncate_utf8(text, VALUE_TEXT_BYTES).as_bytes();
        let count = cells_for(text.len());
        let first = self.written.fetch_add(count as u64, Ordering::Relaxed);
        let cell = |i: usize| file.value_cell((first + i as u64) % cells);
        for i in 0..count {
            let tag = &cell(i)[0];
            let old = tag.load(Ordering::Relaxed);
            if old == CELL_WRITING
                || tag
                    .compare_exchange(old, CELL_WRITING, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                (0..i).for_each(|j| cell(j)[0].store(0, Ordering::Relaxed));
                return false;
            }
        }
        fence(Ordering::Release);
        cell(0)[1].store(text.len() as u64, Ordering::Relaxed);
        let (head, rest) = text.split_at(text.len().min(FIRST_CELL_TEXT));
        store_bytes(&cell(0)[2..], head);
        for (i, bytes) in rest.chunks(NEXT_CELL_TEXT).enumerate() {
            store_bytes(&cell(i + 1)[1..], bytes);
        }
        for i in 0..count {
            cell(i)[0].store(cell_tag(kind, id, i), Ordering::Release);
        }
        true
    }
}

impl RecorderFile {
    /// How many cells a [`SharedValueRing`] of this file has (0: the file has no value area).
    pub fn shared_value_cells(&self) -> u64 {
        let bytes = self.layout().value_blocks as u64
            * VALUE_SLOTS_PER_BLOCK as u64
            * VALUE_SLOT_SIZE as u64;
        bytes / CELL_SIZE as u64
    }

    /// Every text of `kind` a [`SharedValueRing`] left in the file, by id: an entry whose cells
    /// all still carry its tags (one being rewritten, or changed while read, is left out).
    pub fn read_shared_values(&self, kind: u8) -> HashMap<u32, String> {
        let cells = self.shared_value_cells();
        let mut out = HashMap::new();
        for first in 0..cells {
            let head = self.value_cell(first);
            let tag = head[0].load(Ordering::Acquire);
            let id = tag as u32;
            if tag == CELL_WRITING || id == 0 || tag != cell_tag(kind, id, 0) {
                continue;
            }
            let len = (head[1].load(Ordering::Relaxed) as usize).min(VALUE_TEXT_BYTES);
            let count = cells_for(len);
            let cell = |i: usize| self.value_cell((first + i as u64) % cells);
            let tagged = |i: usize, order| cell(i)[0].load(order) == cell_tag(kind, id, i);
            if !(1..count).all(|i| tagged(i, Ordering::Acquire)) {
                continue;
            }
            let mut bytes = load_bytes(&head[2..]);
            (1..count).for_each(|i| bytes.extend(load_bytes(&cell(i)[1..])));
            fence(Ordering::Acquire);
            if !(0..count).all(|i| tagged(i, Ordering::Relaxed)) {
                continue;
            }
            bytes.truncate(len);
            if let Ok(text) = String::from_utf8(bytes) {
                out.insert(id, text);
            }
        }
        out
    }

    /// The words of cell `n` of the value area.
    fn value_cell(&self, n: u64) -> &[AtomicU64] {
        assert!(n < self.shared_value_cells());
        let at = self.layout().values_offset() + n as usize * CELL_SIZE;
        self.words(at, CELL_SIZE / 8)
    }
}

/// Stores `bytes` into `words`, 8 a word (the last padded).
fn store_bytes(words: &[AtomicU64], bytes: &[u8]) {
    for (word, chunk) in words.iter().zip(bytes.chunks(8)) {
        let mut padded = [0u8; 8];
        padded[..chunk.len()].copy_from_slice(chunk);
        word.store(u64::from_ne_bytes(padded), Ordering::Relaxed);
    }
}

fn load_bytes(words: &[AtomicU64]) -> Vec<u8> {
    words
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_ne_bytes())
        .collect()
}

/// Writes a slot's length and text words (its tag says the slot is being written).
fn write_text_words(rest: &[AtomicU64], text: &str) {
    let text = truncate_utf8(text, VALUE_TEXT_BYTES);
    rest[0].store(text.len() as u64, Ordering::Relaxed);
    store_bytes(&rest[1..], text.as_bytes());
}

/// A slot's text, if its tag is still `expected` once it is read (a seqlock's read).
fn read_text_words(tag: &AtomicU64, rest: &[AtomicU64], expected: u64) -> Option<String> {
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

/// Appends `v` in decimal, as `write!` would, without `fmt`'s machinery: the recorders write an
/// integer into most captured calls' summaries.
pub fn push_integer(out: &mut String, v: i64) {
    let mut digits = [0u8; 21];
    let mut at = digits.len();
    let mut rest = v.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    // One copy, where pushing them as chars encoded each.
    // SAFETY: ASCII digits and a sign, valid UTF-8.
    out.push_str(unsafe { std::str::from_utf8_unchecked(&digits[at..]) });
}

#[cfg(test)]
mod tests {
    #[test]
    fn integers_are_written_as_write_writes_them() {
        for v in [0, 7, -7, 10, 12345, -100, i64::MAX, i64::MIN] {
            let mut out = String::from("x");
            super::push_integer(&mut out, v);
            assert_eq!(out, format!("x{v}"));
        }
    }

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

    /// A ring of `blocks` blocks shared by every writer.
    fn shared(dir: &std::path::Path, blocks: u32) -> (RecorderFile, SharedValueRing) {
        (file(dir, blocks), SharedValueRing::new())
    }

    const VALUE: u8 = 1;
    const STATE: u8 = 2;

    fn args(id: u32) -> String {
        format!("args {id} {}", "x".repeat(id as usize * 7 % 300))
    }

    #[test]
    fn a_shared_ring_keeps_the_files_last_texts_and_a_rewritten_cell_reads_as_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (f, ring) = shared(dir.path(), 2);
        let cells = f.shared_value_cells();
        assert_eq!(cells, 2 * 32 * 640 / 64);
        // Each call: its arguments (a value, one to seven cells) and its state (one cell, under
        // the value's id); where each entry began in the ring.
        let mut began = Vec::new();
        let mut written = 0;
        for id in 1..=500u32 {
            assert!(ring.write(&f, VALUE, id, &args(id)));
            let state = format!("state {id}");
            assert!(ring.write(&f, STATE, id, &state));
            began.push((id, written));
            written += (cells_for(args(id).len()) + cells_for(state.len())) as u64;
        }
        let values = f.read_shared_values(VALUE);
        let states = f.read_shared_values(STATE);
        // The calls whose entries lie wholly in the last `cells` cells written, nothing older.
        let expected: Vec<u32> = began
            .iter()
            .filter(|(_, at)| *at >= written - cells)
            .map(|(id, _)| *id)
            .collect();
        let mut kept: Vec<u32> = values.keys().copied().collect();
        kept.sort();
        assert_eq!(kept, expected);
        assert!(
            kept.len() > 100,
            "short texts take few cells: {}",
            kept.len()
        );
        for (id, text) in &values {
            assert_eq!(text, &args(*id), "a value is its own id's");
        }
        for (id, text) in &states {
            assert_eq!(text, &format!("state {id}"), "a state is its own id's");
        }
        assert!(states.len() >= kept.len());
        // Read by another process after the writer died.
        let again = RecorderFile::open(&dir.path().join("v.ring")).unwrap();
        assert_eq!(again.read_shared_values(VALUE), values);
    }

    #[test]
    fn a_cell_another_writer_holds_is_neither_overwritten_nor_read() {
        let dir = tempfile::tempdir().unwrap();
        let (f, ring) = shared(dir.path(), 1);
        assert!(ring.write(&f, VALUE, 1, "one"));
        // A writer came round the whole ring and is still writing the next cell, then the
        // second cell of the entry after.
        f.value_cell(1)[0].store(CELL_WRITING, Ordering::Relaxed);
        assert!(
            !ring.write(&f, VALUE, 2, "two"),
            "not mixed with the other's"
        );
        f.value_cell(3)[0].store(CELL_WRITING, Ordering::Relaxed);
        assert!(!ring.write(&f, VALUE, 3, &"3".repeat(100)));
        assert!(ring.write(&f, VALUE, 4, "four"));
        let values = f.read_shared_values(VALUE);
        assert_eq!(values.len(), 2, "{values:?}");
        assert_eq!(values.get(&1).map(String::as_str), Some("one"));
        assert_eq!(values.get(&4).map(String::as_str), Some("four"));
        assert!(!ring.write(&f, 0, 5, "no kind") && !ring.write(&f, u8::MAX, 5, "no kind"));
        assert!(!ring.write(&f, VALUE, 0, "no id"));
    }

    #[test]
    fn writers_on_many_threads_share_the_ring_and_every_text_read_is_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (f, ring) = shared(dir.path(), 4);
        let next = std::sync::atomic::AtomicU32::new(1);
        let text = |id: u32| format!("{id}:{}", "é".repeat(id as usize % 300));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5000 {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        ring.write(&f, VALUE, id, &text(id));
                    }
                });
            }
        });
        let values = f.read_shared_values(VALUE);
        let cells = f.shared_value_cells();
        assert!(values.len() as u64 >= cells / 12 - 4, "{}", values.len());
        for (id, got) in &values {
            assert_eq!(got, truncate_utf8(&text(*id), VALUE_TEXT_BYTES));
            assert!(*id > 20_000 - 4 * cells as u32, "among the last: {id}");
        }
    }

    #[test]
    fn a_file_without_a_value_area_keeps_no_shared_text() {
        let dir = tempfile::tempdir().unwrap();
        let (f, ring) = shared(dir.path(), 0);
        assert_eq!(f.shared_value_cells(), 0);
        assert!(!ring.write(&f, VALUE, 1, "lost"));
        assert!(f.read_shared_values(VALUE).is_empty());
    }
}

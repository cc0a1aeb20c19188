//! Short value summaries written into the ring beside the call they belong to, rather than into
//! a text store under an id.
//!
//! Most summaries are short (`:ok`, `{:ok, 3}`, `42, <0.85.0>`), and keeping one in a store
//! cost more than making it: a flight recorder's value area is a shared ring whose cells are
//! claimed with an atomic exchange on a line no cache holds, a lossless recording's names log
//! takes a lock (and keeps at most its share: the rest was lost). A text of at most
//! [`INLINE_TEXT_MAX`] bytes goes into the scheduler's own ring instead: its first
//! [`BYTES_IN_VALUE`] bytes in the [`EventKind::Value`] record's code (with [`INLINE_VALUE`] and
//! the text's length in its aux), the rest in [`BeamKind::ValueText`] records of
//! [`BYTES_A_RECORD`] bytes each, written just before it. So
//! it is written with no lock and no shared counter, lives exactly as long as its call's records
//! (a flight recorder's window holds both or neither), and is never dropped for want of room.
//!
//! The reader ([`InlineTexts`]) gathers a process's text bytes until its value record comes,
//! keeps the text under an id of its own (from [`READER_IDS`] up, apart from the tracer's
//! ids), and hands the builder an ordinary value record naming it.

use std::collections::HashMap;

use super::{BeamKind, beam_meta};
use crate::ring::{Event, EventKind, pack_meta};

/// Text bytes a [`BeamKind::ValueText`] record carries (its 48-bit payload).
pub const BYTES_A_RECORD: usize = 6;
/// Text bytes the value record itself carries (its code): the text's first.
pub const BYTES_IN_VALUE: usize = 4;
/// The longest summary written into the ring (the value record and four text records).
pub const INLINE_TEXT_MAX: usize = BYTES_IN_VALUE + 4 * BYTES_A_RECORD;
/// Set in a value record's aux (above the slot: 0 the arguments, 1 the return value, 2 the
/// exception) when its text is in the records before it; bits 8–23 are the text's length.
pub const INLINE_VALUE: u32 = 0x80;
/// The first id the reader gives an inline text (the tracer's ids count up from 1).
pub const READER_IDS: u32 = 1 << 31;

/// Calls `push` with the records of `text` as the value of `slot`: its bytes, then the value
/// record. False (nothing pushed) when the text is longer than [`INLINE_TEXT_MAX`].
pub fn push_inline_value(slot: u32, text: &str, mut push: impl FnMut(u64)) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() > INLINE_TEXT_MAX {
        return false;
    }
    let (head, rest) = bytes.split_at(bytes.len().min(BYTES_IN_VALUE));
    for piece in rest.chunks(BYTES_A_RECORD) {
        let mut word = [0u8; 8];
        word[..piece.len()].copy_from_slice(piece);
        push(beam_meta(BeamKind::ValueText, u64::from_le_bytes(word)));
    }
    let mut code = [0u8; BYTES_IN_VALUE];
    code[..head.len()].copy_from_slice(head);
    let aux = slot | INLINE_VALUE | (bytes.len() as u32) << 8;
    push(pack_meta(EventKind::Value, u32::from_le_bytes(code), aux));
    true
}

/// A process's text bytes read so far, waiting for their value record: after room for the
/// head the value record carries.
#[derive(Debug)]
pub(super) struct PendingText {
    bytes: [u8; INLINE_TEXT_MAX],
    /// Bytes after the head.
    len: usize,
}

impl Default for PendingText {
    fn default() -> PendingText {
        PendingText {
            bytes: [0; INLINE_TEXT_MAX],
            len: 0,
        }
    }
}

impl PendingText {
    /// Adds a [`BeamKind::ValueText`] record's bytes.
    pub(super) fn push(&mut self, payload: u64) {
        // More than one value's worth is what is left of a value record lost with its chunk.
        if BYTES_IN_VALUE + self.len + BYTES_A_RECORD > INLINE_TEXT_MAX {
            self.len = 0;
        }
        let at = BYTES_IN_VALUE + self.len;
        self.bytes[at..at + BYTES_A_RECORD]
            .copy_from_slice(&payload.to_le_bytes()[..BYTES_A_RECORD]);
        self.len += BYTES_A_RECORD;
    }
}

/// The texts the reader found inline, by the ids it gave them.
#[derive(Debug, Default)]
pub struct InlineTexts {
    texts: HashMap<u32, String>,
    next: u32,
}

impl InlineTexts {
    /// Value record `e` as the builder reads it: an inline one names the text the process's
    /// pending bytes make, kept under a new id (0 when they do not make one); any other is as
    /// it is. The pending bytes are used up either way.
    pub(super) fn resolve(&mut self, pending: &mut PendingText, e: &Event) -> Event {
        let rest = std::mem::take(&mut pending.len);
        if e.kind != EventKind::Value || e.aux & INLINE_VALUE == 0 {
            return *e;
        }
        let len = (e.aux >> 8) as usize;
        let slot = e.aux & !INLINE_VALUE & 0xFF;
        pending.bytes[..BYTES_IN_VALUE].copy_from_slice(&e.code.to_le_bytes());
        // A text longer than the head needs all of its rest (none was lost).
        let whole = len <= BYTES_IN_VALUE + rest;
        let text = pending
            .bytes
            .get(..len)
            .filter(|_| whole)
            .and_then(|b| std::str::from_utf8(b).ok());
        let code = text.map_or(0, |text| self.keep(text));
        Event {
            code,
            aux: slot,
            ..*e
        }
    }

    fn keep(&mut self, text: &str) -> u32 {
        let id = READER_IDS + self.next;
        self.next = self.next.wrapping_add(1) % READER_IDS;
        self.texts.insert(id, text.to_owned());
        id
    }

    /// The texts found so far, by id (taken: the reader keeps none after).
    pub fn take(&mut self) -> HashMap<u32, String> {
        std::mem::take(&mut self.texts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::beam_of;
    use crate::ring::unpack;

    fn records(slot: u32, text: &str) -> Vec<Event> {
        let mut out = Vec::new();
        assert!(push_inline_value(slot, text, |m| out.push(m)));
        out.into_iter().map(|m| unpack(7, m).unwrap()).collect()
    }

    /// Reads `events` as the reader does: text records pending, the value record resolved.
    fn read(texts: &mut InlineTexts, events: &[Event]) -> Event {
        let mut pending = PendingText::default();
        for e in &events[..events.len() - 1] {
            let (kind, payload) = beam_of(e).unwrap();
            assert_eq!(kind, BeamKind::ValueText);
            pending.push(payload);
        }
        texts.resolve(&mut pending, events.last().unwrap())
    }

    #[test]
    fn a_short_text_reads_back_under_a_reader_id_in_its_slot() {
        let mut texts = InlineTexts::default();
        let cases = [
            (0, "19999, 12"),
            (1, ""),
            (2, "{:error, :é}"),
            (1, "x"),
            (1, "four"),
        ];
        for (slot, text) in cases {
            let events = records(slot, text);
            let rest = text.len().saturating_sub(BYTES_IN_VALUE);
            assert_eq!(events.len(), rest.div_ceil(BYTES_A_RECORD) + 1);
            let value = read(&mut texts, &events);
            assert_eq!(
                (value.kind, value.aux, value.ts),
                (EventKind::Value, slot, 7)
            );
            assert!(value.code >= READER_IDS);
            assert_eq!(texts.texts.get(&value.code).map(String::as_str), Some(text));
        }
        assert_eq!(texts.take().len(), 5);
        assert!(texts.take().is_empty());
    }

    #[test]
    fn a_text_of_the_most_bytes_is_inline_and_one_more_is_not() {
        let longest = "a".repeat(INLINE_TEXT_MAX);
        let mut texts = InlineTexts::default();
        let value = read(&mut texts, &records(1, &longest));
        assert_eq!(texts.texts[&value.code], longest);
        let mut pushed = 0;
        assert!(!push_inline_value(1, &format!("{longest}b"), |_| pushed += 1));
        assert_eq!(pushed, 0);
    }

    #[test]
    fn an_ordinary_value_record_passes_as_it_is_and_drops_stray_bytes() {
        let mut texts = InlineTexts::default();
        let mut pending = PendingText::default();
        pending.push(u64::from_le_bytes(*b"stray\0\0\0"));
        let plain = unpack(3, pack_meta(EventKind::Value, 42, 1)).unwrap();
        assert_eq!(texts.resolve(&mut pending, &plain), plain);
        // The stray bytes went with it: the next inline value reads only its own.
        let value = read(&mut texts, &records(0, "ok"));
        assert_eq!(texts.texts[&value.code], "ok");
    }

    #[test]
    fn bytes_whose_value_record_is_missing_name_no_text() {
        let mut texts = InlineTexts::default();
        let events = records(1, "{:ok, 3}");
        // The value record says more bytes than came (its first text record was lost).
        let value = read(&mut texts, &events[1..]);
        assert_eq!((value.code, value.aux), (0, 1));
        assert!(texts.take().is_empty());
    }
}

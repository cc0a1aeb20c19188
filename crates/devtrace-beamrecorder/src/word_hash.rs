//! The hasher of the tracer's tables. Their keys are the VM's own words — terms, pids, code
//! ids — looked up several times for every trace event, where SipHash (std's default, made to
//! resist keys chosen by an attacker, which these are not) showed in the per-event profile.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hash over 64-bit words (the shape of rustc's FxHash).
#[derive(Clone, Copy, Default)]
pub struct WordHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl WordHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;
pub type WordSet<K> = HashSet<K, BuildHasherDefault<WordHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_keyed_by_words_and_strings_find_what_they_hold() {
        let mut codes: WordMap<(u64, u64, u32), u32> = WordMap::default();
        for i in 0..10_000u64 {
            codes.insert((i, i * 31, (i % 7) as u32), i as u32);
        }
        assert!((0..10_000u64).all(|i| codes[&(i, i * 31, (i % 7) as u32)] == i as u32));
        let names: WordSet<String> = ["exit:RuntimeError", "error:badarg", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(names.contains("error:badarg") && !names.contains("error:badar"));
    }
}

//! The tracer's tables: keyed by the VM's own words — terms, pids, code ids — and looked up
//! several times for every trace event, where SipHash (std's default, made to resist keys an
//! attacker chooses, which these are not) showed in the per-event profile. rustc's FxHash
//! (rustc-hash, already in the workspace's tree) hashes a word in a multiply.

pub type WordMap<K, V> = rustc_hash::FxHashMap<K, V>;
pub type WordSet<K> = rustc_hash::FxHashSet<K>;

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

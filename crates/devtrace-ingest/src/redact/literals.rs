//! The literal pre-check of redaction: for each rule, short strings of which every match of
//! the rule contains at least one (ASCII case ignored), and one Aho-Corasick pass over a text
//! that says which rules can match it at all.
//!
//! Why: compiling the rules' automata is the largest cost of redacting the first value in a
//! process (most of `devtrace run`'s CPU around a command that emits nothing), while almost
//! every text contains none of the rules' tell-tale strings (`ghp_`, `-----BEGIN `, `@`,
//! `password=`). A rule is compiled only when a text gets past its pre-check; a rule with no
//! such string (a bare character class) is always a candidate. The check may say "maybe" too
//! often, never "no" wrongly: the strings are derived from the parsed pattern, not written by
//! hand.
//!
//! The pass starts on a contiguous NFA, cheap to build; a process that goes on to scan
//! [`DFA_AFTER_BYTES`] of text (a server, a large import) builds a DFA of the same strings once
//! and scans with it from then on: the NFA's overlapping search was the single largest cost of
//! `devtrace serve`'s ingest (17 % of its instructions a span, bench/ingest-profile.sh).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Text scanned with the NFA after which the DFA is built: past this, the DFA's build (a few
/// milliseconds) is repaid within the next few megabytes.
pub(super) const DFA_AFTER_BYTES: u64 = 4 << 20;
use regex_syntax::hir::{Class, Hir, HirKind};

/// At most this many strings stand for one part of a pattern (cross products are cut here).
const MAX_STRINGS: usize = 32;
/// A repeated string is required this many bytes long at most (`A{22}` requires `aaaaaaaa`).
const MIN_USEFUL_LEN: usize = 8;
/// A class of more distinct bytes (after ASCII lowercasing) than this is not a literal.
const MAX_CLASS_BYTES: usize = 4;

/// Strings, lowercased, one of which is in every match; `None` when no such set was found.
pub(super) fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    if let Some(exact) = exact_strings(hir)
        && exact.iter().all(|s| !s.is_empty())
    {
        return Some(exact);
    }
    match hir.kind() {
        HirKind::Capture(capture) => required_literals(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => {
            match exact_strings(&repetition.sub).as_deref() {
                // `A{22}`: a run of the one string, long enough to be rare in ordinary text.
                Some([one]) if !one.is_empty() => {
                    let times = (repetition.min as usize).min(MIN_USEFUL_LEN.div_ceil(one.len()));
                    Some(vec![one.repeat(times.max(1))])
                }
                _ => required_literals(&repetition.sub),
            }
        }
        HirKind::Alternation(alternatives) => {
            let mut all = Vec::new();
            for alternative in alternatives {
                all.extend(required_literals(alternative)?);
            }
            normalized(all)
        }
        HirKind::Concat(parts) => concat_literals(parts),
        _ => None,
    }
}

/// In a concatenation, every part's required strings are required of the whole; runs of
/// exactly-known parts join into longer strings. The best candidate is the one whose shortest
/// string is longest (fewest false "maybe"s), then the one with fewer strings.
fn concat_literals(parts: &[Hir]) -> Option<Vec<Vec<u8>>> {
    let mut candidates: Vec<Vec<Vec<u8>>> = Vec::new();
    // The strings the current run of exactly-known parts spells, joined.
    let mut run: Vec<Vec<u8>> = vec![Vec::new()];
    for part in parts {
        match exact_strings(part) {
            Some(exact) => match cross(&run, &exact) {
                Some(joined) => run = joined,
                None => candidates.push(std::mem::replace(&mut run, exact)),
            },
            None => {
                candidates.push(std::mem::replace(&mut run, vec![Vec::new()]));
                candidates.extend(required_literals(part));
            }
        }
    }
    candidates.push(run);
    // On a tie the first wins (`rev`: `max_by_key` keeps the last): in `user@host.tld` that
    // is `@`, rarer in ordinary text than the `.` after it.
    candidates
        .into_iter()
        .filter(|set| set.iter().all(|s| !s.is_empty()))
        .rev()
        .max_by_key(|set| {
            let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
            (shortest, usize::MAX - set.len())
        })
}

/// Every string `hir` can match, lowercased, when there are few (a literal, a letter in either
/// case, a small alternation); `None` otherwise. Zero-width assertions match the empty string.
fn exact_strings(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(vec![Vec::new()]),
        HirKind::Literal(literal) => Some(vec![literal.0.to_ascii_lowercase()]),
        HirKind::Class(class) => {
            class_bytes(class).map(|bytes| bytes.into_iter().map(|b| vec![b]).collect())
        }
        HirKind::Capture(capture) => exact_strings(&capture.sub),
        HirKind::Concat(parts) => parts.iter().try_fold(vec![Vec::new()], |so_far, part| {
            cross(&so_far, &exact_strings(part)?)
        }),
        HirKind::Alternation(alternatives) => {
            let mut all = Vec::new();
            for alternative in alternatives {
                all.extend(exact_strings(alternative)?);
            }
            normalized(all)
        }
        HirKind::Repetition(_) => None,
    }
}

/// The distinct lowercased bytes of a small ASCII class.
fn class_bytes(class: &Class) -> Option<Vec<u8>> {
    let mut bytes: Vec<u8> = Vec::new();
    let mut add = |start: u32, end: u32| -> Option<()> {
        if end > 0x7f || end - start >= 2 * MAX_CLASS_BYTES as u32 {
            return None;
        }
        bytes.extend((start..=end).map(|b| (b as u8).to_ascii_lowercase()));
        Some(())
    };
    match class {
        Class::Bytes(ranges) => {
            for range in ranges.iter() {
                add(u32::from(range.start()), u32::from(range.end()))?;
            }
        }
        Class::Unicode(ranges) => {
            for range in ranges.iter() {
                add(u32::from(range.start()), u32::from(range.end()))?;
            }
        }
    }
    bytes.sort_unstable();
    bytes.dedup();
    (bytes.len() <= MAX_CLASS_BYTES).then_some(bytes)
}

/// Each of `a` followed by each of `b`, when that makes few enough strings.
fn cross(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len() * b.len() > MAX_STRINGS {
        return None;
    }
    normalized(
        a.iter()
            .flat_map(|x| b.iter().map(move |y| [x.as_slice(), y].concat()))
            .collect(),
    )
}

fn normalized(mut strings: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    strings.sort_unstable();
    strings.dedup();
    (strings.len() <= MAX_STRINGS).then_some(strings)
}

/// Which rules a text can match, by their required strings.
pub(super) struct Prefilter {
    /// Every rule's required strings, ASCII case ignored; `None` when no rule has any.
    automaton: Option<AhoCorasick>,
    /// The same strings as a DFA, once [`DFA_AFTER_BYTES`] were scanned.
    dfa: OnceLock<AhoCorasick>,
    /// Bytes scanned by the NFA so far.
    scanned: AtomicU64,
    /// The strings, kept to build the DFA.
    patterns: Vec<Vec<u8>>,
    /// The rule each of the automaton's patterns belongs to.
    rule_of_pattern: Vec<usize>,
    /// Rules without required strings: candidates for every text.
    always: Candidates,
}

/// A set of rules, one bit each: the rules a text can match. Walked by its set bits only, in
/// rule order, so a text that only a few rules can match costs a few steps, not one per rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Candidates {
    words: Words,
}

/// Words of a set of up to 256 rules are kept inline: a set is made for every value redacted,
/// and allocating it was a visible share of a server's ingest.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Words {
    Inline { words: [u64; 4], len: usize },
    Heap(Vec<u64>),
}

impl Words {
    fn zeroed(len: usize) -> Self {
        if len <= 4 {
            Words::Inline { words: [0; 4], len }
        } else {
            Words::Heap(vec![0; len])
        }
    }

    fn as_slice(&self) -> &[u64] {
        match self {
            Words::Inline { words, len } => &words[..*len],
            Words::Heap(words) => words,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u64] {
        match self {
            Words::Inline { words, len } => &mut words[..*len],
            Words::Heap(words) => words,
        }
    }
}

impl Candidates {
    fn none(rules: usize) -> Self {
        Self {
            words: Words::zeroed(rules.div_ceil(64)),
        }
    }

    fn insert(&mut self, rule: usize) {
        self.words.as_mut_slice()[rule / 64] |= 1 << (rule % 64);
    }

    /// The first candidate rule at `from` or after it.
    pub(super) fn next_from(&self, from: usize) -> Option<usize> {
        let words = self.words.as_slice();
        let mut word = from / 64;
        let mut bits = *words.get(word)? & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return Some(word * 64 + bits.trailing_zeros() as usize);
            }
            word += 1;
            bits = *words.get(word)?;
        }
    }
}

impl Prefilter {
    /// `rules[i]` is rule i's required strings, or `None`.
    pub(super) fn new(rules: &[Option<Vec<Vec<u8>>>]) -> Self {
        let mut patterns = Vec::new();
        let mut rule_of_pattern = Vec::new();
        for (rule, literals) in rules.iter().enumerate() {
            for literal in literals.iter().flatten() {
                patterns.push(literal.clone());
                rule_of_pattern.push(rule);
            }
        }
        // Not a DFA yet: building one for every rule's strings costs more than the texts of a
        // short-lived process take to scan.
        let automaton =
            (!patterns.is_empty()).then(|| automaton(&patterns, AhoCorasickKind::ContiguousNFA));
        let mut always = Candidates::none(rules.len());
        for (rule, literals) in rules.iter().enumerate() {
            if literals.is_none() {
                always.insert(rule);
            }
        }
        Self {
            automaton,
            dfa: OnceLock::new(),
            scanned: AtomicU64::new(0),
            patterns,
            rule_of_pattern,
            always,
        }
    }

    /// The automaton to scan with: the DFA once built (or now, when the NFA has scanned
    /// enough), else the NFA.
    fn scanner(&self, text: &[u8]) -> Option<&AhoCorasick> {
        if let Some(dfa) = self.dfa.get() {
            return Some(dfa);
        }
        let nfa = self.automaton.as_ref()?;
        let scanned = self.scanned.fetch_add(text.len() as u64, Ordering::Relaxed);
        if scanned < DFA_AFTER_BYTES {
            return Some(nfa);
        }
        Some(
            self.dfa
                .get_or_init(|| automaton(&self.patterns, AhoCorasickKind::DFA)),
        )
    }

    /// The rules that can match `text`.
    pub(super) fn candidates(&self, text: &[u8]) -> Candidates {
        let mut candidates = self.always.clone();
        if let Some(automaton) = self.scanner(text) {
            for found in automaton.find_overlapping_iter(text) {
                candidates.insert(self.rule_of_pattern[found.pattern().as_usize()]);
            }
        }
        candidates
    }
}

/// One automaton of `patterns`, ASCII case ignored, every match reported.
fn automaton(patterns: &[Vec<u8>], kind: AhoCorasickKind) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(kind))
        .build(patterns)
        .expect("a few hundred short literals always build")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether each of the first `rules` rules is a candidate.
    fn bools(candidates: &Candidates, rules: usize) -> Vec<bool> {
        (0..rules)
            .map(|rule| candidates.next_from(rule) == Some(rule))
            .collect()
    }

    #[test]
    fn candidates_are_walked_by_their_set_bits_in_rule_order() {
        let mut set = Candidates::none(130);
        for rule in [0, 3, 63, 64, 129] {
            set.insert(rule);
        }
        let mut walked = Vec::new();
        let mut from = 0;
        while let Some(rule) = set.next_from(from) {
            walked.push(rule);
            from = rule + 1;
        }
        assert_eq!(walked, [0, 3, 63, 64, 129]);
        assert_eq!(set.next_from(130), None);
        assert_eq!(Candidates::none(0).next_from(0), None);
        assert_eq!(Candidates::none(5).next_from(0), None);
        // More rules than the inline words hold.
        let mut many = Candidates::none(300);
        many.insert(2);
        many.insert(299);
        assert_eq!(many.next_from(3), Some(299));
        assert_eq!(many.next_from(300), None);
    }

    fn literals(pattern: &str) -> Option<Vec<String>> {
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .unwrap();
        required_literals(&hir).map(|set| {
            set.into_iter()
                .map(|s| String::from_utf8(s).unwrap())
                .collect()
        })
    }

    #[test]
    fn required_strings_come_from_the_pattern() {
        assert_eq!(literals(r"\bghp_[A-Za-z0-9]{36}\b").unwrap(), ["ghp_"]);
        assert_eq!(
            literals(r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9]{16,})").unwrap(),
            ["bearer"]
        );
        assert_eq!(
            literals(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b").unwrap(),
            ["akia", "asia"]
        );
        // The literal inside, when the pattern starts with a class.
        assert_eq!(literals(r"\b[0-9a-f]{32}-us[0-9]{1,2}\b").unwrap(), ["-us"]);
        assert_eq!(literals(r"\bA{22}[A-Za-z0-9%]{30,}").unwrap(), ["aaaaaaaa"]);
        assert_eq!(literals(r"(?:ab){2,}").unwrap(), ["abab"]);
        // Each alternative contributes its own.
        assert_eq!(
            literals(r"\b[a-z]+://[^/\s@]*@|\b[a-z]{4,}@[a-z]+\.[a-z]{2,}").unwrap(),
            ["://", "@"]
        );
    }

    #[test]
    fn a_bare_class_has_no_required_string() {
        assert_eq!(literals("[0-9]{3}"), None);
        assert_eq!(literals("(?:[0-9]{3}|abc)"), None);
        assert_eq!(literals("(?:abc)?[0-9]+"), None);
    }

    #[test]
    fn the_prefilter_names_the_rules_a_text_can_match() {
        let prefilter = Prefilter::new(&[
            Some(vec![b"ghp_".to_vec()]),
            None,
            Some(vec![b"@".to_vec(), b"://".to_vec()]),
        ]);
        assert_eq!(
            bools(&prefilter.candidates(b"true"), 3),
            [false, true, false]
        );
        assert_eq!(
            bools(&prefilter.candidates(b"GHP_x a@b"), 3),
            [true, true, true]
        );
    }

    #[test]
    fn after_enough_text_the_dfa_answers_as_the_nfa_did() {
        let prefilter = Prefilter::new(&[
            Some(vec![b"ghp_".to_vec()]),
            None,
            Some(vec![b"@".to_vec(), b"://".to_vec()]),
            Some(vec![b"akia".to_vec(), b"asia".to_vec()]),
        ]);
        let texts: [&[u8]; 5] = [b"true", b"GHP_x a@b", b"https://x", b"xAsIa", b"ghp@akia"];
        let before: Vec<Vec<bool>> = texts
            .iter()
            .map(|t| bools(&prefilter.candidates(t), 4))
            .collect();
        assert!(prefilter.dfa.get().is_none(), "a short scan keeps the NFA");
        let filler = vec![b'x'; DFA_AFTER_BYTES as usize];
        assert_eq!(
            bools(&prefilter.candidates(&filler), 4),
            [false, true, false, false]
        );
        let after: Vec<Vec<bool>> = texts
            .iter()
            .map(|t| bools(&prefilter.candidates(t), 4))
            .collect();
        assert!(
            prefilter.dfa.get().is_some(),
            "the DFA is built once enough was scanned"
        );
        assert_eq!(before, after);
    }
}

//! Redaction on ingest: secrets and personal data replaced by a typed marker before anything
//! is stored.
//!
//! The rules are data: `redaction_rules.json` beside this file is the canonical list, shared
//! byte for byte with the Python helpers (`sdk/python/devtrace/redaction_rules.json`), so
//! "redacted by the same rules as the server" is literally true. Each rule has a name and a
//! pattern; rules apply in file order to every string value, every bytes value, attribute and
//! JSON object keys, span, event and scope names; a match becomes `[REDACTED:<name>]`, or,
//! when the pattern has a named group `secret`, only that group does (the scheme and user of a
//! URL stay readable). A match in which the `secret` group takes no part is a look-alike the
//! rule names in order to leave it alone (`https://bob@github.com` is a URL's user, not an
//! e-mail address). A match that is already a marker is left alone, so a token inside a URL
//! keeps the more specific marker of the rule that found it first. Users can add rules of the
//! same shape, and switching redaction off is an explicit choice. docs/RELIABILITY.md
//! ("Redaction") lists the formats and the corpus counts.
//!
//! Patterns are compiled for bytes with ASCII semantics (`\b`, `\w`, `\s`, `(?i)` ASCII-only),
//! which keeps matching on the fast DFA path whatever the text contains. Against Python's
//! Unicode-aware `re` this can only redact more, never less, and only next to non-ASCII
//! letters.
//!
//! Speed: most values are short names and numbers. A value shorter than the shortest possible
//! match is skipped outright; the rest go through one Aho-Corasick pass over the strings each
//! rule's matches must contain (`literals`, derived from the patterns), and only the rules
//! that can match are run. Each rule's automaton is compiled the first time a text gets past
//! its pre-check, so a process that only ever sees clean text compiles none (`devtrace run`
//! around a command that emits nothing redacts its own run span: a command line, a directory).

mod builtin_checks;
mod literals;

use devtrace_model::{AnyValue, KeyValue, LogBatch, Scope, SpanBatch};
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use std::borrow::Cow;

/// The canonical rules file, compiled into the binary.
pub const BUILTIN_RULES_JSON: &str = include_str!("redaction_rules.json");

/// One rule as written in a rules file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub pattern: String,
}

/// A rules file: `{"version": 1, "rules": [...]}`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    pub version: u32,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedactionError {
    #[error("invalid redaction rules file: {0}")]
    File(String),
    #[error("redaction rule {name:?}: {message}")]
    Rule { name: String, message: String },
}

impl RulesFile {
    pub fn parse(json: &str) -> Result<Self, RedactionError> {
        let file: RulesFile = serde_json::from_str(json)
            .map_err(|e| RedactionError::File(format!("{e} (expected {{\"version\": 1, \"rules\": [{{\"name\", \"description\", \"pattern\"}}]}})")))?;
        if file.version != 1 {
            return Err(RedactionError::File(format!(
                "version {} is not supported (expected 1)",
                file.version
            )));
        }
        Ok(file)
    }
}

struct Rule {
    regex: Regex,
    marker: Vec<u8>,
    secret_group: Option<usize>,
}

/// Applies redaction rules to values. Cheap to share (`Arc`) and to call from many threads.
pub struct Redactor {
    /// Each rule's name and pattern, validated (parsed, non-empty) when the redactor is made.
    specs: Vec<(String, String)>,
    /// Each rule's automaton, built the first time a text may match it (an error names the
    /// rule whose pattern parsed but cannot be built).
    compiled: Vec<std::sync::OnceLock<Result<Rule, String>>>,
    /// Which rules a text can match at all.
    prefilter: literals::Prefilter,
    /// The fewest bytes each rule can match: a shorter text is not run through it (a rule
    /// whose required string is as common as `.` is then rarely run at all).
    min_lens: Vec<usize>,
    /// No rule can match fewer bytes than this.
    min_len: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.rule_names().collect();
        f.debug_struct("Redactor").field("rules", &names).finish()
    }
}

/// What validating a rule learns: the fewest bytes it can match, and strings one of which is
/// in every match (`None` when none were found).
struct Checked {
    min_len: usize,
    literals: Option<Vec<Vec<u8>>>,
}

/// Checks a rule (its name, that its pattern parses and cannot match nothing).
fn validate(spec: &RuleSpec) -> Result<Checked, RedactionError> {
    let error = |message: String| RedactionError::Rule {
        name: spec.name.clone(),
        message,
    };
    let valid_name = !spec.name.is_empty()
        && spec
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !valid_name {
        return Err(error(
            "names are letters, digits, '_', '-' and '.' (they appear in the marker)".into(),
        ));
    }
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&spec.pattern)
        .map_err(|e| error(format!("invalid pattern: {e}")))?;
    let min_len = hir.properties().minimum_len().unwrap_or(usize::MAX);
    if min_len == 0 {
        return Err(error(
            "the pattern can match an empty string; it must match at least one character".into(),
        ));
    }
    Ok(Checked {
        min_len,
        literals: literals::required_literals(&hir),
    })
}

fn compile(name: &str, pattern: &str) -> Result<Rule, String> {
    let regex = RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .map_err(|e| format!("rule {name}: invalid pattern: {e}"))?;
    let secret_group = regex
        .capture_names()
        .position(|name| name == Some("secret"));
    Ok(Rule {
        marker: format!("[REDACTED:{name}]").into_bytes(),
        regex,
        secret_group,
    })
}

impl Redactor {
    /// The canonical rules.
    pub fn builtin() -> Self {
        Self::with_extra_rules(&[]).expect("the built-in redaction rules compile")
    }

    /// The canonical rules, made once per process and shared: a server's default
    /// configuration and the configuration that replaces it get the same redactor, so the
    /// rules are parsed and their pre-check built once (most of a short command's CPU).
    pub fn shared_builtin() -> std::sync::Arc<Self> {
        static SHARED: std::sync::OnceLock<std::sync::Arc<Redactor>> = std::sync::OnceLock::new();
        std::sync::Arc::clone(SHARED.get_or_init(|| std::sync::Arc::new(Self::builtin())))
    }

    /// The canonical rules followed by `extra` (a user's own, same shape).
    pub fn with_extra_rules(extra: &[RuleSpec]) -> Result<Self, RedactionError> {
        let builtin = RulesFile::parse(BUILTIN_RULES_JSON)?;
        // The built-in rules' checks are known from the table generated from them (parsing
        // 90 patterns was a third of a short command's redaction set-up); a user's are made.
        let known = builtin_checks::current().unwrap_or(&[]);
        Self::from_checked_rules(builtin.rules.iter().chain(extra), known)
    }

    /// Exactly these rules, in order.
    pub fn from_rules<'a>(
        specs: impl IntoIterator<Item = &'a RuleSpec>,
    ) -> Result<Self, RedactionError> {
        Self::from_checked_rules(specs, &[])
    }

    /// These rules, in order, the first `known.len()` of them already checked.
    fn from_checked_rules<'a>(
        specs: impl IntoIterator<Item = &'a RuleSpec>,
        known: &[builtin_checks::Known],
    ) -> Result<Self, RedactionError> {
        let mut rules: Vec<(String, String)> = Vec::new();
        let mut required = Vec::new();
        let mut min_lens = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            if rules.iter().any(|(name, _)| *name == spec.name) {
                return Err(RedactionError::Rule {
                    name: spec.name.clone(),
                    message: "a rule with this name already exists".into(),
                });
            }
            let checked = match known.get(index) {
                Some(known) => known.checked(),
                None => validate(spec)?,
            };
            min_lens.push(checked.min_len);
            required.push(checked.literals);
            rules.push((spec.name.clone(), spec.pattern.clone()));
        }
        Ok(Self {
            compiled: rules.iter().map(|_| std::sync::OnceLock::new()).collect(),
            specs: rules,
            prefilter: literals::Prefilter::new(&required),
            min_len: min_lens.iter().copied().min().unwrap_or(usize::MAX),
            min_lens,
        })
    }

    /// Redacts nothing: the explicit opt-out.
    pub fn disabled() -> Self {
        Self {
            specs: Vec::new(),
            compiled: Vec::new(),
            prefilter: literals::Prefilter::new(&[]),
            min_lens: Vec::new(),
            min_len: usize::MAX,
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.specs.is_empty()
    }

    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.specs.iter().map(|(name, _)| name.as_str())
    }

    /// Builds every rule's automaton now (each is otherwise built when a text first may match
    /// it); an error names the rule whose pattern does not compile.
    pub fn compile_now(&self) -> Result<(), RedactionError> {
        for index in 0..self.specs.len() {
            if let Err(message) = self.rule(index) {
                return Err(RedactionError::File(message.clone()));
            }
        }
        Ok(())
    }

    fn rule(&self, index: usize) -> &Result<Rule, String> {
        self.compiled[index].get_or_init(|| {
            let (name, pattern) = &self.specs[index];
            compile(name, pattern)
        })
    }

    /// The text with every rule applied in order; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_raw(text.as_bytes()) {
            None => Cow::Borrowed(text),
            Some(current) => Cow::Owned(match String::from_utf8(current) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }

    /// Bytes (an OTLP `bytes` value, a payload recorded raw) with every rule applied in order,
    /// or `None` when nothing matched. The rules see the bytes as they are: text in any
    /// ASCII-compatible encoding is redacted, other bytes pass through untouched.
    pub fn redact_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.redact_raw(bytes)
    }

    fn redact_raw(&self, text: &[u8]) -> Option<Vec<u8>> {
        if self.specs.is_empty() || text.len() < self.min_len {
            return None;
        }
        let mut candidates = self.prefilter.candidates(text);
        let mut current: Cow<'_, [u8]> = Cow::Borrowed(text);
        let mut next = 0;
        while let Some(index) = candidates.next_from(next) {
            next = index + 1;
            if current.len() < self.min_lens[index] {
                continue;
            }
            let rule = match self.rule(index) {
                Ok(rule) => rule,
                // A pattern that parsed but cannot be built (beyond the size limits): nothing
                // passes unredacted.
                Err(_) => return Some(b"[REDACTED:uncompiled-rules]".to_vec()),
            };
            if !rule.regex.is_match(&current) {
                continue;
            }
            if let Some(replaced) = rule.apply(&current) {
                current = Cow::Owned(replaced);
                // Later rules see the text as it is now, exactly as applying every rule in
                // turn would.
                candidates = self.prefilter.candidates(&current);
            }
        }
        match current {
            Cow::Borrowed(_) => None,
            Cow::Owned(changed) => Some(changed),
        }
    }

    /// Redacts `text` in place; true when it changed.
    pub fn redact_string(&self, text: &mut String) -> bool {
        match self.redact(text) {
            Cow::Borrowed(_) => false,
            Cow::Owned(new) => {
                *text = new;
                true
            }
        }
    }

    /// Every string and bytes value inside an attribute value (arrays and maps, their keys
    /// included); returns how many values changed.
    pub fn redact_value(&self, value: &mut AnyValue) -> u64 {
        Pass::new(self, 0).value(value)
    }

    /// Keys and values of attributes: a key is data as much as a value is (a map keyed by
    /// tokens, a header name that carries one).
    pub fn redact_attributes(&self, attributes: &mut [KeyValue]) -> u64 {
        Pass::new(self, 0).attributes(attributes)
    }

    /// Span names, status messages, scope names and versions, and every string and bytes
    /// attribute (keys included) of spans, events, links, resources and scopes. Returns how
    /// many values changed.
    pub fn redact_spans(&self, batch: &mut SpanBatch) -> u64 {
        if !self.is_enabled() {
            return 0;
        }
        let mut pass = Pass::new(self, batch.spans.len());
        let mut changed = 0;
        for resource in &mut batch.resources {
            changed += pass.attributes(&mut resource.attributes);
        }
        for scope in &mut batch.scopes {
            changed += pass.scope(scope);
        }
        for span in &mut batch.spans {
            changed += pass.string(&mut span.name);
            changed += pass.string(&mut span.status.message);
            changed += pass.string(&mut span.trace_state);
            changed += pass.attributes(&mut span.attributes);
            for event in &mut span.events {
                changed += pass.string(&mut event.name);
                changed += pass.attributes(&mut event.attributes);
            }
            for link in &mut span.links {
                changed += pass.string(&mut link.trace_state);
                changed += pass.attributes(&mut link.attributes);
            }
        }
        changed
    }

    /// Log bodies, event names, severity texts, scope names and versions, and every string and
    /// bytes attribute (keys included) of records, resources and scopes.
    pub fn redact_logs(&self, batch: &mut LogBatch) -> u64 {
        if !self.is_enabled() {
            return 0;
        }
        let mut pass = Pass::new(self, batch.logs.len());
        let mut changed = 0;
        for resource in &mut batch.resources {
            changed += pass.attributes(&mut resource.attributes);
        }
        for scope in &mut batch.scopes {
            changed += pass.scope(scope);
        }
        for log in &mut batch.logs {
            changed += pass.value(&mut log.body);
            changed += pass.attributes(&mut log.attributes);
            changed += pass.string(&mut log.severity_text);
            changed += pass.string(&mut log.event_name);
        }
        changed
    }

    /// Every string in a JSON document, object keys included (a key can be a token or an
    /// address as well as a name). A key that redacts to one already in the object keeps its
    /// value under the marker followed by `#2`, `#3`…, so no value is lost.
    pub fn redact_json(&self, value: &mut serde_json::Value) -> u64 {
        if !self.is_enabled() {
            return 0;
        }
        match value {
            serde_json::Value::String(text) => u64::from(self.redact_string(text)),
            serde_json::Value::Array(items) => items.iter_mut().map(|v| self.redact_json(v)).sum(),
            serde_json::Value::Object(map) => {
                let mut changed: u64 = map.values_mut().map(|v| self.redact_json(v)).sum();
                let keys_change = map
                    .keys()
                    .any(|key| matches!(self.redact(key), Cow::Owned(_)));
                if keys_change {
                    let old = std::mem::take(map);
                    for (key, item) in old {
                        let mut key = match self.redact(&key) {
                            Cow::Borrowed(_) => key,
                            Cow::Owned(new) => {
                                changed += 1;
                                new
                            }
                        };
                        if map.contains_key(&key) {
                            let base = key.clone();
                            let mut n = 2;
                            while map.contains_key(&key) {
                                key = format!("{base}#{n}");
                                n += 1;
                            }
                        }
                        map.insert(key, item);
                    }
                }
                changed
            }
            _ => 0,
        }
    }
}

/// One batch's redaction: remembers the short texts it found clean, because a batch repeats
/// them (attribute keys, span names, host names: most of what is scanned), so each is scanned
/// once. A text's redaction depends on the text alone, so a remembered "clean" is exact.
struct Pass<'r> {
    redactor: &'r Redactor,
    clean: foldhash::HashSet<Box<str>>,
}

/// Texts up to this long are remembered when clean.
const REMEMBERED_LEN: usize = 64;
/// At most so many entries are reserved for a pass's set at its start.
const PASS_CAPACITY_LIMIT: usize = 4096;

impl<'r> Pass<'r> {
    /// A pass over a batch of `records` spans or logs: its set of clean texts sized for about
    /// one a record (a batch's distinct short texts are of that order), so it rarely grows.
    fn new(redactor: &'r Redactor, records: usize) -> Self {
        Self {
            redactor,
            clean: foldhash::HashSet::with_capacity_and_hasher(
                records.min(PASS_CAPACITY_LIMIT),
                Default::default(),
            ),
        }
    }

    /// Redacts `text` in place; 1 when it changed.
    fn string(&mut self, text: &mut String) -> u64 {
        let remembered = (self.redactor.min_len..=REMEMBERED_LEN).contains(&text.len());
        if remembered && self.clean.contains(text.as_str()) {
            return 0;
        }
        let changed = self.redactor.redact_string(text);
        if remembered && !changed {
            self.clean.insert(text.as_str().into());
        }
        u64::from(changed)
    }

    fn value(&mut self, value: &mut AnyValue) -> u64 {
        match value {
            AnyValue::String(text) => self.string(text),
            AnyValue::Bytes(bytes) => match self.redactor.redact_bytes(bytes) {
                Some(new) => {
                    *bytes = new;
                    1
                }
                None => 0,
            },
            AnyValue::Array(items) => items.iter_mut().map(|v| self.value(v)).sum(),
            AnyValue::KvList(pairs) => self.attributes(pairs),
            _ => 0,
        }
    }

    fn attributes(&mut self, attributes: &mut [KeyValue]) -> u64 {
        attributes
            .iter_mut()
            .map(|kv| self.string(&mut kv.key) + self.value(&mut kv.value))
            .sum()
    }

    /// A scope's name, version and attributes.
    fn scope(&mut self, scope: &mut Scope) -> u64 {
        self.string(&mut scope.name)
            + self.string(&mut scope.version)
            + self.attributes(&mut scope.attributes)
    }
}

/// Where the markers of earlier rules are in `text`.
fn marker_ranges(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    const OPEN: &[u8] = b"[REDACTED:";
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..]
        .windows(OPEN.len())
        .position(|w| w == OPEN)
        .map(|p| p + from)
    {
        match text[at..].iter().position(|&b| b == b']') {
            Some(close) if is_marker(&text[at..=at + close]) => {
                ranges.push(at..at + close + 1);
                from = at + close + 1;
            }
            _ => from = at + 1,
        }
    }
    ranges
}

/// `[REDACTED:<name>]`, exactly.
fn is_marker(bytes: &[u8]) -> bool {
    bytes
        .strip_prefix(b"[REDACTED:")
        .and_then(|rest| rest.strip_suffix(b"]"))
        .is_some_and(|name| {
            !name.is_empty()
                && name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
}

impl Rule {
    /// The text with this rule's matches replaced, or `None` when it does not match.
    fn apply(&self, text: &[u8]) -> Option<Vec<u8>> {
        let mut out: Vec<u8> = Vec::with_capacity(text.len());
        let mut copied = 0;
        let mut any = false;
        let markers = marker_ranges(text);
        for captures in self.regex.captures_iter(text) {
            let whole = captures.get(0).expect("group 0 always participates");
            // A rule with a `secret` group redacts only that group; a match in which the
            // group does not take part is a look-alike the rule recognises in order to leave
            // it alone (the user of `https://bob@github.com` is not an e-mail address).
            let target = match self.secret_group {
                Some(group) => match captures.get(group) {
                    Some(target) => target,
                    None => continue,
                },
                None => whole,
            };
            // Already a marker (a token inside a URL or an assignment that an earlier, more
            // specific rule replaced): keep the more specific marker.
            if target.is_empty() || is_marker(target.as_bytes()) {
                continue;
            }
            // Part of a marker, or a marker and more (`--user X=[REDACTED:env_secret]` read as
            // user:password): redacting it would change an already redacted text again.
            if markers
                .iter()
                .any(|m| target.start() < m.end && m.start < target.end())
            {
                continue;
            }
            any = true;
            out.extend_from_slice(&text[copied..target.start()]);
            out.extend_from_slice(&self.marker);
            copied = target.end();
        }
        if !any {
            return None;
        }
        out.extend_from_slice(&text[copied..]);
        (out != text).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, pattern: &str) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            description: String::new(),
            pattern: pattern.into(),
        }
    }

    #[test]
    fn the_builtin_rules_compile_and_have_unique_names() {
        let redactor = Redactor::builtin();
        // Each rule is otherwise compiled only when a text gets past its pre-check.
        redactor.compile_now().unwrap();
        let names: Vec<&str> = redactor.rule_names().collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(names.len() >= 60, "{} rules", names.len());
    }

    /// A batch remembers the short texts it found clean; a text seen again is the same text,
    /// so the batch comes out as redacting every value on its own would make it — secrets
    /// repeated across spans included.
    #[test]
    fn a_batch_redacts_repeated_texts_as_each_alone() {
        use devtrace_model::{Span, SpanId, TraceId};
        let redactor = Redactor::builtin();
        let token = format!("ghp_{}", "Ab1".repeat(12));
        let texts = [
            "http.request.method",
            "GET /api/orders",
            token.as_str(),
            "db.example.internal",
        ];
        let mut batch = SpanBatch::default();
        batch.resources.push(Default::default());
        batch.scopes.push(Default::default());
        for i in 0..12u8 {
            let mut span = Span::new(
                TraceId([1; 16]),
                SpanId([i + 1; 8]),
                None,
                texts[usize::from(i) % 4],
                0,
                1,
            );
            for (k, v) in [(0, 2), (1, 3), (2, 0), (3, 1)] {
                let key = texts[(k + usize::from(i)) % 4];
                span.attributes
                    .push(KeyValue::new(key, texts[(v + usize::from(i)) % 4]));
            }
            batch.spans.push(span);
        }
        let mut expected = batch.clone();
        for span in &mut expected.spans {
            redactor.redact_string(&mut span.name);
            for kv in &mut span.attributes {
                redactor.redact_string(&mut kv.key);
                redactor.redact_value(&mut kv.value);
            }
        }
        let changed = redactor.redact_spans(&mut batch);
        assert_eq!(batch, expected);
        // Each span holds the token as its name or as one key and one value: 3 of 12 by name,
        // and two attribute texts in every span.
        assert_eq!(changed, 3 + 12 * 2);
        assert!(!format!("{batch:?}").contains(&token));
    }

    /// `devtrace run`'s own attribute keys hold a `.`, the one string a Discord token is
    /// known by; they are far shorter than one, so no rule is built for them.
    #[test]
    fn a_text_shorter_than_a_rule_can_match_does_not_run_it() {
        let redactor = Redactor::builtin();
        let built = |r: &Redactor| r.compiled.iter().filter(|c| c.get().is_some()).count();
        for key in ["service.name", "devtrace.run.stderr.bytes", "0.1.0"] {
            assert_eq!(redactor.redact(key), key);
        }
        assert_eq!(built(&redactor), 0);
        // A text long enough is still checked, and redacted when it is one.
        let token = format!("M{}.{}.{}", "a".repeat(23), "b".repeat(6), "c".repeat(27));
        assert_eq!(redactor.redact(&token), "[REDACTED:discord_bot_token]");
        let discord = redactor
            .rule_names()
            .position(|name| name == "discord_bot_token")
            .unwrap();
        assert!(redactor.compiled[discord].get().is_some());
    }

    #[test]
    fn a_secret_group_keeps_the_rest_of_the_match() {
        let redactor = Redactor::builtin();
        assert_eq!(
            redactor.redact("postgres://app:hunter2@db.internal:5432/orders"),
            "postgres://app:[REDACTED:url_password]@db.internal:5432/orders"
        );
        assert_eq!(
            redactor.redact("curl -H 'Authorization: Bearer abcdefghijklmnop1234'"),
            "curl -H 'Authorization: Bearer [REDACTED:bearer_token]'"
        );
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let redactor = Redactor::builtin();
        let once = redactor
            .redact("mysql://root:pw@h/db and password=\"s3cretpw\" by ops@example.com")
            .into_owned();
        assert_eq!(redactor.redact(&once), once);
        assert!(!once.contains("s3cretpw") && !once.contains("ops@example.com"));
    }

    #[test]
    fn rules_apply_in_order_on_the_text_earlier_rules_left() {
        // The first rule removes what the second would have matched.
        let redactor = Redactor::from_rules(&[
            rule("outer", "token-[a-z]+-[0-9]+"),
            rule("inner", "[0-9]{3}"),
        ])
        .unwrap();
        assert_eq!(
            redactor.redact("x token-abc-123 y 456"),
            "x [REDACTED:outer] y [REDACTED:inner]"
        );
    }

    #[test]
    fn user_rules_are_checked_with_clear_errors() {
        let empty = Redactor::with_extra_rules(&[rule("maybe", "a*")]).unwrap_err();
        assert!(empty.to_string().contains("empty string"), "{empty}");
        let invalid = Redactor::with_extra_rules(&[rule("bad", "(unclosed")]).unwrap_err();
        assert!(invalid.to_string().contains("\"bad\""), "{invalid}");
        let duplicate = Redactor::with_extra_rules(&[rule("email", "x@y")]).unwrap_err();
        assert!(
            duplicate.to_string().contains("already exists"),
            "{duplicate}"
        );
        let extra = Redactor::with_extra_rules(&[rule("ticket", "\\bTICKET-[0-9]{4}\\b")]).unwrap();
        assert_eq!(extra.redact("see TICKET-1234"), "see [REDACTED:ticket]");
        let file = RulesFile::parse("{\"version\": 2, \"rules\": []}").unwrap_err();
        assert!(file.to_string().contains("version 2"), "{file}");
    }

    #[test]
    fn keys_bytes_scope_names_and_event_names_are_redacted_too() {
        use devtrace_model::{LogRecord, Resource};
        let redactor = Redactor::builtin();
        let mut logs = LogBatch {
            resources: vec![Resource::default()],
            scopes: vec![Scope {
                name: "notify ops@example.com".into(),
                version: "1.0".into(),
                ..Scope::default()
            }],
            logs: vec![LogRecord {
                event_name: "login by ops@example.com".into(),
                body: AnyValue::Bytes(b"DB_PASSWORD=hunter2hunter2\n\xff\xfe".to_vec()),
                attributes: vec![KeyValue::new(
                    "contact:ops@example.com",
                    AnyValue::KvList(vec![KeyValue::new("jane@example.org", 1i64)]),
                )],
                ..LogRecord::default()
            }],
        };
        assert_eq!(redactor.redact_logs(&mut logs), 5);
        assert_eq!(logs.scopes[0].name, "notify [REDACTED:email]");
        let log = &logs.logs[0];
        assert_eq!(log.event_name, "login by [REDACTED:email]");
        assert_eq!(
            log.body,
            AnyValue::Bytes(b"DB_PASSWORD=[REDACTED:env_secret]\n\xff\xfe".to_vec())
        );
        assert_eq!(log.attributes[0].key, "contact:[REDACTED:email]");
        assert_eq!(
            log.attributes[0].value,
            AnyValue::KvList(vec![KeyValue::new("[REDACTED:email]", 1i64)])
        );
    }

    #[test]
    fn json_keys_are_redacted_without_losing_a_value() {
        let redactor = Redactor::builtin();
        let mut value = serde_json::json!({
            "ana@example.com": 1,
            "bob@example.com": 2,
            "note": "mail ana@example.com",
        });
        assert_eq!(redactor.redact_json(&mut value), 3);
        assert_eq!(
            value,
            serde_json::json!({
                "[REDACTED:email]": 1,
                "[REDACTED:email]#2": 2,
                "note": "mail [REDACTED:email]",
            })
        );
    }

    #[test]
    fn a_url_user_is_not_an_email_address() {
        let redactor = Redactor::builtin();
        assert_eq!(
            redactor.redact("https://bob@github.com/o/r and bob@github.com"),
            "https://bob@github.com/o/r and [REDACTED:email]"
        );
    }

    #[test]
    fn disabled_redacts_nothing() {
        let redactor = Redactor::disabled();
        assert!(!redactor.is_enabled());
        assert_eq!(redactor.redact("ops@example.com"), "ops@example.com");
    }

    #[test]
    fn non_ascii_text_stays_valid_and_untouched_around_matches() {
        let redactor = Redactor::builtin();
        assert_eq!(
            redactor.redact("連絡先: ops@example.com です 🎉"),
            "連絡先: [REDACTED:email] です 🎉"
        );
        assert_eq!(redactor.redact("日本語のテキスト ✓"), "日本語のテキスト ✓");
    }
}

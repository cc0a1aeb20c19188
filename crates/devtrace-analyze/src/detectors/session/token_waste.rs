//! Token waste in a session: context spent on things that did not help.
//!
//! - very large tool outputs (a whole log, a `find` over `node_modules`): each lands in the
//!   context and is re-sent with every later request;
//! - re-reading a file that did not change (same agent, same content hash as its previous read
//!   of the file, no edit of it in between);
//! - context growth: an agent's requests grow to a large input, many times the first one.
//!
//! Tokens are estimated from bytes (≈ 4 bytes per token) where the output is all we know.

use super::{evidence, relative};
use crate::finding::{Finding, FindingKind, thousands};
use crate::fingerprint::fingerprint;
use crate::session::{Action, ActionKind, SessionView};
use devtrace_model::{SpanId, semconv};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// A tool output this large (bytes) is "very large": 40,000 (≈ 10,000 tokens).
    pub large_output_bytes: u64,
    /// Re-reads of unchanged files in a session for a finding: 2.
    pub min_rereads: usize,
    /// Context growth: the largest request input at least this many tokens: 100,000 ...
    pub context_min_tokens: u64,
    /// ... and at least this many times the agent's first request: 3.
    pub context_growth_factor: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            large_output_bytes: 40_000,
            min_rereads: 2,
            context_min_tokens: 100_000,
            context_growth_factor: 3.0,
        }
    }
}

const BYTES_PER_TOKEN: u64 = 4;

pub fn detect(views: &[SessionView], thresholds: &Thresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    for view in views {
        findings.extend(large_outputs(view, thresholds));
        findings.extend(rereads(view, thresholds));
        findings.extend(context_growth(view, thresholds));
    }
    findings
}

fn large_outputs(view: &SessionView, thresholds: &Thresholds) -> Option<Finding> {
    let large: Vec<&Action> = view
        .actions
        .iter()
        .filter(|a| a.output_bytes >= thresholds.large_output_bytes)
        .collect();
    if large.is_empty() {
        return None;
    }
    let bytes: u64 = large.iter().map(|a| a.output_bytes).sum();
    let biggest = large
        .iter()
        .max_by_key(|a| a.output_bytes)
        .expect("not empty");
    let what = biggest
        .command
        .as_deref()
        .map(|c| super::short(c, 60))
        .or_else(|| biggest.path.as_deref().map(devtrace_model::recorded::name))
        .unwrap_or_else(|| devtrace_model::recorded::name(&biggest.tool));
    Some(Finding {
        kind: FindingKind::TokenWaste,
        operation: None,
        title: format!(
            "{} tool {} over {} kB ({} kB in all, ≈ {} tokens; largest: {what})",
            large.len(),
            if large.len() == 1 { "output" } else { "outputs" },
            thresholds.large_output_bytes / 1000,
            bytes / 1000,
            thousands(bytes / BYTES_PER_TOKEN),
        ),
        recommendation: "Ask for less: filter (grep, head, --quiet), exclude generated directories, or page through the output; everything returned stays in the context.".into(),
        fingerprint: fingerprint(&["token_waste", "large_output", &biggest.tool]),
        saving_nanos: 0,
        occurrences: large.len() as u64,
        numbers: [
            ("outputs".to_owned(), large.len() as f64),
            ("bytes".to_owned(), bytes as f64),
            ("estimated_tokens".to_owned(), (bytes / BYTES_PER_TOKEN) as f64),
        ]
        .into_iter()
        .collect(),
        evidence: evidence(view, large.iter().map(|a| a.span_id)),
        impact: super::time_lost(),
    })
}

fn rereads(view: &SessionView, thresholds: &Thresholds) -> Option<Finding> {
    // (context, path) → the hash of the last read, while the file is unchanged since.
    let mut last_read: HashMap<(SpanId, &str), &str> = HashMap::new();
    let mut redundant: Vec<&Action> = Vec::new();
    for action in view.actions.iter().filter(|a| !a.failed) {
        let Some(path) = action.path.as_deref() else {
            continue;
        };
        let key = (action.context, path);
        match action.kind {
            ActionKind::Read => match action.hash_read.as_deref() {
                Some(hash) => {
                    if last_read.get(&key) == Some(&hash) {
                        redundant.push(action);
                    }
                    last_read.insert(key, hash);
                }
                None => {
                    last_read.remove(&key);
                }
            },
            kind if kind.changes_files() => {
                last_read.remove(&key);
            }
            _ => {}
        }
    }
    if redundant.len() < thresholds.min_rereads.max(1) {
        return None;
    }
    let project = view.root_text(semconv::SESSION_PROJECT);
    let mut files: BTreeMap<String, usize> = BTreeMap::new();
    for action in &redundant {
        *files
            .entry(relative(
                action.path.as_deref().unwrap_or(""),
                project.as_deref(),
            ))
            .or_default() += 1;
    }
    let bytes: u64 = redundant.iter().map(|a| a.output_bytes).sum();
    let listed: Vec<String> = files
        .iter()
        .take(3)
        .map(|(f, n)| {
            let f = devtrace_model::recorded::name(f);
            if *n > 1 { format!("{f} ×{n}") } else { f }
        })
        .collect();
    Some(Finding {
        kind: FindingKind::TokenWaste,
        operation: None,
        title: format!(
            "{} re-reads of unchanged files ({}{}; {} kB)",
            redundant.len(),
            listed.join(", "),
            if files.len() > 3 { ", …" } else { "" },
            bytes / 1000
        ),
        recommendation: "The content was already in the context and had not changed: refer back to it instead of reading the file again.".into(),
        fingerprint: fingerprint(&["token_waste", "reread"]),
        saving_nanos: redundant.iter().map(|a| a.duration()).sum(),
        occurrences: redundant.len() as u64,
        numbers: [
            ("rereads".to_owned(), redundant.len() as f64),
            ("files".to_owned(), files.len() as f64),
            ("bytes".to_owned(), bytes as f64),
        ]
        .into_iter()
        .collect(),
        evidence: evidence(view, redundant.iter().map(|a| a.span_id)),
        impact: super::time_lost(),
    })
}

fn context_growth(view: &SessionView, thresholds: &Thresholds) -> Vec<Finding> {
    let mut by_context: BTreeMap<SpanId, Vec<&crate::session::LlmCall>> = BTreeMap::new();
    for call in &view.llm_calls {
        by_context.entry(call.context).or_default().push(call);
    }
    let mut findings = Vec::new();
    for calls in by_context.values() {
        let first = calls.iter().find(|c| c.input_tokens > 0);
        let peak = calls.iter().max_by_key(|c| c.input_tokens);
        let (Some(first), Some(peak)) = (first, peak) else {
            continue;
        };
        if peak.input_tokens < thresholds.context_min_tokens
            || (peak.input_tokens as f64)
                < first.input_tokens as f64 * thresholds.context_growth_factor
        {
            continue;
        }
        findings.push(Finding {
            kind: FindingKind::TokenWaste,
            operation: None,
            title: format!(
                "context grew from {} to {} input tokens over {} requests ({:.1}×)",
                thousands(first.input_tokens),
                thousands(peak.input_tokens),
                calls.len(),
                peak.input_tokens as f64 / first.input_tokens as f64
            ),
            recommendation: "Every request re-sends the whole context: start a fresh session (or compact) for a new subtask, delegate exploration to a sub-agent, and keep large outputs out.".into(),
            fingerprint: fingerprint(&["token_waste", "context_growth"]),
            saving_nanos: 0,
            occurrences: 1,
            numbers: [
                ("first_input_tokens".to_owned(), first.input_tokens as f64),
                ("peak_input_tokens".to_owned(), peak.input_tokens as f64),
                ("requests".to_owned(), calls.len() as f64),
            ]
            .into_iter()
            .collect(),
            evidence: evidence(view, [first.span_id, peak.span_id]),
            impact: super::time_lost(),
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn findings(trace: &crate::AnalyzedTrace) -> Vec<Finding> {
        detect(&[SessionView::new(trace)], &Thresholds::default())
    }

    #[test]
    fn large_outputs_are_counted_and_smaller_ones_ignored() {
        let mut s = Session::new(1);
        s.then(command("find / -name '*.json'").output("…", 250_000));
        s.then(command("cat build.log").output("…", 40_000));
        s.then(command("ls").output("…", 39_999));
        let found = findings(&s.build());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].title,
            "2 tool outputs over 40 kB (290 kB in all, ≈ 72,500 tokens; largest: \"find / -name '*.json'\")"
        );
    }

    #[test]
    fn rereading_unchanged_files_is_waste_but_rereading_after_a_change_is_not() {
        let mut s = Session::new(1);
        s.then(read("/repo/package.json", "P").output("…", 2_000));
        s.then(read("/repo/package.json", "P").output("…", 2_000));
        s.then(read("/repo/src/a.ts", "A").output("…", 3_000));
        s.then(edit("/repo/src/a.ts", "A", "B"));
        s.then(read("/repo/src/a.ts", "B").output("…", 3_000));
        s.then(read("/repo/package.json", "P").output("…", 2_000));
        let found = findings(&s.build());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].title,
            "2 re-reads of unchanged files (\"package.json\" ×2; 4 kB)"
        );
        // One re-read is below the threshold; a sub-agent reading what the main agent read
        // is not a re-read (it has its own context).
        let mut t = Session::new(2);
        t.then(read("/repo/a", "A"));
        t.then(read("/repo/a", "A"));
        t.subagent();
        t.then(read("/repo/a", "A"));
        assert!(findings(&t.build()).is_empty());
    }

    #[test]
    fn context_growth_needs_both_size_and_growth() {
        let mut s = Session::new(1);
        for tokens in [20_000, 45_000, 80_000, 130_000] {
            s.llm(tokens);
        }
        let found = findings(&s.build());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].title,
            "context grew from 20,000 to 130,000 input tokens over 4 requests (6.5×)"
        );
        let mut small = Session::new(2);
        for tokens in [20_000, 90_000] {
            small.llm(tokens);
        }
        let mut flat = Session::new(3);
        for tokens in [60_000, 150_000] {
            flat.llm(tokens);
        }
        assert!(
            findings(&small.build()).is_empty(),
            "large growth, small context"
        );
        assert!(
            findings(&flat.build()).is_empty(),
            "large context, 2.5× growth"
        );
    }
}

//! Anti-patterns: ways of working that cost time whatever the task.
//!
//! - editing a file the agent has not read (or written) first: the edit is a guess about
//!   content it has not seen; Claude Code refuses such edits ("File has not been read yet"),
//!   other tools apply them blindly;
//! - polling with `sleep`: waiting a fixed time, again and again, instead of waiting for the
//!   event (a readiness check, `--wait`, following the output);
//! - abandoning edits by revert: `git checkout -- …`, `git restore`, `git reset --hard`,
//!   `git stash` after changing files: the work is thrown away.

use super::{evidence, relative, short};
use crate::finding::{Finding, FindingKind};
use crate::fingerprint::fingerprint;
use crate::session::{Action, ActionKind, SessionView, command_key};
use devtrace_model::{SpanId, semconv};
use std::collections::{BTreeSet, HashMap, HashSet};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Edits of files not read first, in a session, for a finding: 2.
    pub min_blind_edits: usize,
    /// Commands that sleep, in a session, for a finding: 3 ...
    pub min_sleeps: usize,
    /// ... or this many seconds slept in all: 60.
    pub min_sleep_seconds: f64,
    /// Reverts after edits, for a finding: 1.
    pub min_reverts: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_blind_edits: 2,
            min_sleeps: 3,
            min_sleep_seconds: 60.0,
            min_reverts: 1,
        }
    }
}

pub fn detect(views: &[SessionView], thresholds: &Thresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    for view in views {
        findings.extend(blind_edits(view, thresholds));
        findings.extend(sleep_polling(view, thresholds));
        findings.extend(reverts(view, thresholds));
    }
    findings
}

/// The tool's own refusal of an edit to a file not read first.
fn refused_as_unread(action: &Action) -> bool {
    let error = action.error.to_ascii_lowercase();
    error.contains("has not been read yet")
        || error.contains("must read") && error.contains("before")
}

fn blind_edits(view: &SessionView, thresholds: &Thresholds) -> Option<Finding> {
    let mut known: HashMap<SpanId, HashSet<&str>> = HashMap::new();
    let mut blind: Vec<&Action> = Vec::new();
    for action in &view.actions {
        let Some(path) = action.path.as_deref() else {
            continue;
        };
        let seen = known.entry(action.context).or_default();
        match action.kind {
            ActionKind::Read if !action.failed => {
                seen.insert(path);
            }
            ActionKind::Edit | ActionKind::Write => {
                let unread = if action.failed {
                    refused_as_unread(action)
                } else {
                    // A person's editor shows the file it saves: only agents edit blind.
                    !action.created
                        && !action.ide_event
                        && !seen.contains(path)
                        && action.kind == ActionKind::Edit
                };
                if unread {
                    blind.push(action);
                }
                if !action.failed {
                    seen.insert(path);
                }
            }
            _ => {}
        }
    }
    if blind.len() < thresholds.min_blind_edits.max(1) {
        return None;
    }
    let refused = blind.iter().filter(|a| a.failed).count();
    let project = view.root_text(semconv::SESSION_PROJECT);
    let files: BTreeSet<String> = blind
        .iter()
        .map(|a| relative(a.path.as_deref().unwrap_or(""), project.as_deref()))
        .collect();
    let listed: Vec<String> = files
        .iter()
        .take(3)
        .map(|f| devtrace_model::recorded::name(f))
        .collect();
    Some(Finding {
        kind: FindingKind::AntiPattern,
        operation: Some("blind edit".into()),
        title: format!(
            "{} edits of files not read first{} ({}{})",
            blind.len(),
            if refused > 0 {
                format!(", {refused} refused by the tool")
            } else {
                String::new()
            },
            listed.join(", "),
            if files.len() > 3 { ", …" } else { "" }
        ),
        recommendation: "Read a file (in the agent that edits it) before editing it; every refused edit is a wasted round trip, and an accepted one is a guess about content not seen.".into(),
        fingerprint: fingerprint(&["anti_pattern", "blind_edit"]),
        saving_nanos: blind.iter().filter(|a| a.failed).map(|a| a.duration()).sum(),
        occurrences: blind.len() as u64,
        numbers: [
            ("blind_edits".to_owned(), blind.len() as f64),
            ("refused".to_owned(), refused as f64),
            ("files".to_owned(), files.len() as f64),
        ]
        .into_iter()
        .collect(),
        evidence: evidence(view, blind.iter().map(|a| a.span_id)),
        impact: super::time_lost(),
    })
}

/// Seconds a command sleeps (`sleep 5`, `sleep 0.5`, `sleep 2m`), summed.
pub fn sleep_seconds(command: &str) -> f64 {
    let words: Vec<&str> = command
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut total = 0.0;
    for pair in words.windows(2) {
        if pair[0] != "sleep" {
            continue;
        }
        let arg = pair[1];
        let (number, unit) = arg.split_at(
            arg.find(|c: char| c.is_ascii_alphabetic())
                .unwrap_or(arg.len()),
        );
        let Ok(value) = number.parse::<f64>() else {
            continue;
        };
        total += value
            * match unit {
                "" | "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => 0.0,
            };
    }
    total
}

fn sleep_polling(view: &SessionView, thresholds: &Thresholds) -> Option<Finding> {
    let sleeping: Vec<(&Action, f64)> = view
        .actions
        .iter()
        .filter_map(|a| {
            let seconds = sleep_seconds(a.command.as_deref()?);
            (seconds >= 1.0).then_some((a, seconds))
        })
        .collect();
    let total: f64 = sleeping.iter().map(|(_, s)| s).sum();
    if sleeping.is_empty()
        || (sleeping.len() < thresholds.min_sleeps && total < thresholds.min_sleep_seconds)
    {
        return None;
    }
    Some(Finding {
        kind: FindingKind::AntiPattern,
        operation: Some("sleep polling".into()),
        title: format!(
            "polled with sleep: {} commands waited {:.0} s in all (e.g. {})",
            sleeping.len(),
            total,
            short(sleeping[0].0.command.as_deref().unwrap_or(""), 60)
        ),
        recommendation: "Wait for the event instead of a fixed time: a readiness check in a loop with a timeout, the tool's own --wait, or reading the output as it comes.".into(),
        fingerprint: fingerprint(&["anti_pattern", "sleep_polling"]),
        saving_nanos: (total * 1e9) as u64,
        occurrences: sleeping.len() as u64,
        numbers: [
            ("commands".to_owned(), sleeping.len() as f64),
            ("seconds_slept".to_owned(), total),
        ]
        .into_iter()
        .collect(),
        evidence: evidence(view, sleeping.iter().map(|(a, _)| a.span_id)),
        impact: super::time_lost(),
    })
}

/// Whether a command throws away uncommitted changes.
pub fn is_revert(command: &str) -> bool {
    let key = command_key(command);
    [
        "git checkout -- ",
        "git checkout .",
        "git restore ",
        "git reset --hard",
        "git clean -f",
        "git clean -d",
    ]
    .iter()
    .any(|p| key.starts_with(p) || key.contains(&format!("&& {p}")))
        || (key == "git stash"
            || key.starts_with("git stash push")
            || key.starts_with("git stash save")
            || key.starts_with("git stash -"))
}

fn reverts(view: &SessionView, thresholds: &Thresholds) -> Option<Finding> {
    let mut changed = false;
    let mut reverts: Vec<&Action> = Vec::new();
    for action in &view.actions {
        if action.kind.changes_files() && !action.failed {
            changed = true;
        } else if changed && !action.failed && action.command.as_deref().is_some_and(is_revert) {
            reverts.push(action);
        }
    }
    if reverts.is_empty() || reverts.len() < thresholds.min_reverts {
        return None;
    }
    Some(Finding {
        kind: FindingKind::AntiPattern,
        operation: Some("revert".into()),
        title: format!(
            "edits abandoned by revert {} {} ({})",
            reverts.len(),
            if reverts.len() == 1 { "time" } else { "times" },
            short(reverts[0].command.as_deref().unwrap_or(""), 60)
        ),
        recommendation: "The changes before the revert were thrown away: make smaller, checked steps (run the tests after each) so a wrong step can be undone alone.".into(),
        fingerprint: fingerprint(&["anti_pattern", "revert"]),
        saving_nanos: 0,
        occurrences: reverts.len() as u64,
        numbers: [("reverts".to_owned(), reverts.len() as f64)].into_iter().collect(),
        evidence: evidence(view, reverts.iter().map(|a| a.span_id)),
        impact: super::time_lost(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn titles(trace: &crate::AnalyzedTrace) -> Vec<String> {
        detect(&[SessionView::new(trace)], &Thresholds::default())
            .into_iter()
            .map(|f| f.title)
            .collect()
    }

    #[test]
    fn edits_of_unread_files_refused_or_not_are_blind() {
        let mut s = Session::new(1);
        s.then(
            edit("/repo/src/a.ts", "", "")
                .fails("File has not been read yet. Read it first before writing to it."),
        );
        s.then(read("/repo/src/a.ts", "A"));
        s.then(edit("/repo/src/a.ts", "A", "B"));
        s.then(edit("/repo/src/b.ts", "Q", "R"));
        s.then(write("/repo/src/new.ts", "N", true));
        s.then(edit("/repo/src/new.ts", "N", "M"));
        assert_eq!(
            titles(&s.build()),
            ["2 edits of files not read first, 1 refused by the tool (\"src/a.ts\", \"src/b.ts\")"]
        );
    }

    #[test]
    fn one_blind_edit_or_reads_in_the_same_agent_are_not_flagged() {
        let mut s = Session::new(1);
        s.then(read("/repo/a.ts", "A"));
        s.then(edit("/repo/a.ts", "A", "B"));
        s.then(edit("/repo/c.ts", "C", "D"));
        assert!(titles(&s.build()).is_empty(), "one is below the threshold");
        let mut t = Session::new(2);
        t.then(read("/repo/a.ts", "A"));
        t.subagent();
        t.then(
            edit("/repo/a.ts", "", "")
                .fails("File has not been read yet. Read it first before writing to it."),
        );
        t.then(
            edit("/repo/a.ts", "", "")
                .fails("File has not been read yet. Read it first before writing to it."),
        );
        assert_eq!(
            titles(&t.build()),
            ["2 edits of files not read first, 2 refused by the tool (\"a.ts\")"],
            "the main agent's read does not count for the sub-agent"
        );
    }

    #[test]
    fn sleeps_are_measured_and_polling_needs_several() {
        assert_eq!(sleep_seconds("sleep 5 && curl -s localhost:3000"), 5.0);
        assert_eq!(sleep_seconds("sleep 0.5; sleep 2m"), 120.5);
        assert_eq!(sleep_seconds("echo sleep now"), 0.0);
        let mut s = Session::new(1);
        for _ in 0..3 {
            s.then(
                command("sleep 10 && curl -sf localhost:8080/health")
                    .fails("curl: (7) Failed to connect"),
            );
        }
        assert_eq!(
            titles(&s.build()),
            [
                "polled with sleep: 3 commands waited 30 s in all (e.g. \"sleep 10 && curl -sf localhost:8080/health\")"
            ]
        );
        let mut t = Session::new(2);
        t.then(command("sleep 2 && npm start"));
        t.then(command("sleep 2"));
        assert!(titles(&t.build()).is_empty());
    }

    #[test]
    fn reverts_after_edits_are_abandoned_work() {
        assert!(is_revert("git checkout -- src/a.ts"));
        assert!(is_revert("cd app && git restore ."));
        assert!(is_revert("git stash"));
        assert!(!is_revert("git stash pop"));
        assert!(!is_revert("git checkout -b feature"));
        let mut s = Session::new(1);
        s.then(edit("/repo/a.ts", "A", "B"));
        s.then(command("git checkout -- a.ts"));
        assert_eq!(
            titles(&s.build()),
            ["edits abandoned by revert 1 time (\"git checkout -- a.ts\")"]
        );
        let mut t = Session::new(2);
        t.then(command("git stash"));
        t.then(edit("/repo/a.ts", "A", "B"));
        assert!(
            titles(&t.build()).is_empty(),
            "a stash before any edit abandons nothing of the session"
        );
    }
}

//! Circular edits: a file going back to content it had earlier in the session (A → B → A):
//! the edits in between were undone, so the work on them was wasted, and the agent may be
//! oscillating between two versions.
//!
//! Content is known by hash: every edit records the file's hash before and after it, and
//! whole-file reads the hash they saw (`devtrace.session.file.hash*`). When a source only
//! knows the changed region (a patch), the hashes are of the region, and the same rule finds
//! a change that was undone.

use super::{evidence, relative};
use crate::finding::{Finding, FindingKind, human_duration};
use crate::fingerprint::fingerprint;
use crate::session::{Action, ActionKind, SessionView};
use devtrace_model::semconv;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Returns to an earlier content, per file, for a finding: 1.
    pub min_returns: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { min_returns: 1 }
    }
}

struct FileHistory<'a> {
    /// Contents the file had, in order of first appearance, with the action that showed it.
    states: Vec<(String, usize)>,
    /// The content last known.
    current: Option<String>,
    /// Each return: the action that first showed the content, and the action that restored it.
    returns: Vec<(usize, usize)>,
    actions: Vec<&'a Action>,
}

pub fn detect(views: &[SessionView], thresholds: &Thresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    for view in views {
        let project = view.root_text(semconv::SESSION_PROJECT);
        let mut files: BTreeMap<&str, FileHistory> = BTreeMap::new();
        for action in view.actions.iter().filter(|a| !a.failed) {
            let Some(path) = action.path.as_deref() else {
                continue;
            };
            let is_change = matches!(action.kind, ActionKind::Edit | ActionKind::Write);
            if !is_change && action.kind != ActionKind::Read {
                continue;
            }
            let history = files.entry(path).or_insert_with(|| FileHistory {
                states: Vec::new(),
                current: None,
                returns: Vec::new(),
                actions: Vec::new(),
            });
            let index = history.actions.len();
            history.actions.push(action);
            let known = |history: &mut FileHistory, hash: &Option<String>| {
                if let Some(hash) = hash {
                    if !history.states.iter().any(|(h, _)| h == hash) {
                        history.states.push((hash.clone(), index));
                    }
                    history.current = Some(hash.clone());
                }
            };
            if !is_change {
                known(history, &action.hash_read);
                continue;
            }
            known(history, &action.hash_before);
            if let Some(after) = &action.hash_after {
                // Writing what the file already holds is not a change, let alone a return.
                if history.current.as_ref() != Some(after) {
                    let earlier = history
                        .states
                        .iter()
                        .find(|(h, _)| h == after)
                        .map(|(_, at)| *at);
                    match earlier {
                        Some(at) => history.returns.push((at, index)),
                        None => history.states.push((after.clone(), index)),
                    }
                }
                history.current = Some(after.clone());
            }
        }
        for (path, history) in files {
            if history.returns.len() >= thresholds.min_returns.max(1) {
                findings.push(finding(view, path, project.as_deref(), &history));
            }
        }
    }
    findings
}

fn finding(
    view: &SessionView,
    path: &str,
    project: Option<&str>,
    history: &FileHistory,
) -> Finding {
    let (from, to) = history.returns[0];
    let undone: Vec<&Action> = history.actions[from..=to]
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Edit | ActionKind::Write))
        .copied()
        .collect();
    let wasted: u64 = undone.iter().map(|a| a.duration()).sum();
    let name = relative(path, project);
    let edits = undone.len();
    let title = format!(
        "{} went back to an earlier version: {edits} edits ended where they started{}",
        devtrace_model::recorded::name(&name),
        if history.returns.len() > 1 {
            format!(" ({} times)", history.returns.len())
        } else {
            String::new()
        }
    );
    Finding {
        kind: FindingKind::CircularEdit,
        operation: Some(name.clone()),
        title,
        recommendation: format!(
            "The file oscillates between versions; decide what it should contain (re-read the requirement or the failing test) before editing it again. The undone edits took {}.",
            human_duration(wasted)
        ),
        fingerprint: fingerprint(&["circular_edit", &name]),
        saving_nanos: wasted,
        occurrences: history.returns.len() as u64,
        numbers: [
            ("returns".to_owned(), history.returns.len() as f64),
            ("edits_undone".to_owned(), edits as f64),
        ]
        .into_iter()
        .collect(),
        evidence: evidence(view, undone.iter().map(|a| a.span_id)),
        impact: super::time_lost(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn findings(trace: &crate::AnalyzedTrace) -> Vec<Finding> {
        detect(&[SessionView::new(trace)], &Thresholds::default())
    }

    #[test]
    fn a_file_back_at_an_earlier_hash_is_circular() {
        let mut s = Session::new(1);
        s.then(read("/repo/src/cart.js", "A"));
        s.then(edit("/repo/src/cart.js", "A", "B"));
        s.then(command("npm test").fails("1 failed"));
        s.then(edit("/repo/src/cart.js", "B", "C"));
        s.then(edit("/repo/src/cart.js", "C", "A"));
        let trace = s.build();
        let found = findings(&trace);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].title,
            "\"src/cart.js\" went back to an earlier version: 3 edits ended where they started"
        );
        assert_eq!(found[0].numbers["edits_undone"], 3.0);
        assert_eq!(found[0].saving_nanos, 3 * SECOND);
    }

    #[test]
    fn writes_count_and_region_hashes_find_an_undone_change() {
        let mut s = Session::new(1);
        s.then(write("/repo/a.txt", "X", true));
        s.then(edit("/repo/a.txt", "X", "Y"));
        s.then(write("/repo/a.txt", "X", false));
        assert_eq!(findings(&s.build()).len(), 1);
    }

    #[test]
    fn a_file_that_only_moves_forward_is_not() {
        let mut s = Session::new(1);
        s.then(read("/repo/src/cart.js", "A"));
        s.then(edit("/repo/src/cart.js", "A", "B"));
        s.then(edit("/repo/src/cart.js", "B", "C"));
        s.then(edit("/repo/src/cart.js", "C", "C"));
        // Writing the same content again (nothing known changed in between) is no return.
        s.then(write("/repo/src/cart.js", "C", false));
        // The same content in another file is not a return.
        s.then(edit("/repo/src/other.js", "Q", "A"));
        // A failed edit changed nothing.
        s.then(edit("/repo/src/cart.js", "C", "A").fails("old_string not found"));
        assert!(findings(&s.build()).is_empty());
    }
}

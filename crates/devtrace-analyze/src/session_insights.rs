//! Cross-session learning: what keeps happening in a repository's sessions.
//!
//! Each session contributes *signals*: the fingerprints of its findings and of its failed
//! commands (command and error normalised: paths, numbers, ids folded), each once per
//! session. Signals seen in several sessions become insights ("`npm run build` failed:
//! TypeError … — in 3 of the last 5 sessions"), with the sessions as evidence.
//!
//! Insights are observations, stated as facts with counts. They are never phrased as
//! instructions: an agent reading them gets data to weigh, not commands to follow.

use crate::finding::{Finding, FindingKind};
use crate::fingerprint::{fingerprint, normalize_text};
use crate::session::{ActionKind, SessionView, command_key};
use devtrace_model::TraceId;
use serde::Serialize;
use std::collections::BTreeMap;

/// Something a session showed, in a form comparable across sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Signal {
    pub fingerprint: String,
    /// `retry_loop`, `environment_error`, …, or `command_failure`.
    pub kind: String,
    /// What was observed in this session.
    pub observation: String,
    /// The same with paths, numbers, ids and quoted values folded: what sessions share.
    pub normalized: String,
}

fn short(text: &str, max: usize) -> String {
    crate::detectors::session::short(text, max)
}

/// The session-independent statement of a finding.
fn observation(finding: &Finding) -> String {
    let op = finding.operation.clone().unwrap_or_default();
    match finding.kind {
        FindingKind::RetryLoop => {
            format!("{} was run again unchanged after failing", short(&op, 80))
        }
        FindingKind::CircularEdit => format!(
            "{} went back to an earlier version (edits undone)",
            short(&op, 80)
        ),
        FindingKind::TestFixSpiral => format!(
            "{} kept failing across several fix attempts",
            short(&op, 80)
        ),
        FindingKind::EnvironmentError => finding
            .title
            .split_once(", ")
            .map_or_else(|| finding.title.clone(), |(head, _)| head.to_owned()),
        FindingKind::AntiPattern => match op.as_str() {
            "blind edit" => "files were edited without being read first".to_owned(),
            "sleep polling" => "waiting was done by polling with sleep".to_owned(),
            "revert" => "edits were abandoned by a revert".to_owned(),
            other => other.to_owned(),
        },
        FindingKind::TokenWaste => {
            if finding.title.contains("re-reads") {
                "unchanged files were read again".to_owned()
            } else if finding.title.contains("context grew") {
                "the context grew several times over".to_owned()
            } else {
                "tool outputs were very large".to_owned()
            }
        }
        FindingKind::CacheBreak => {
            if op == "compaction" {
                "the context was compacted (its prompt cache written again)".to_owned()
            } else {
                "the prompt cache broke and was written again at the write price".to_owned()
            }
        }
        FindingKind::BatchableCalls => {
            "independent read-only tool calls were made one request at a time".to_owned()
        }
        _ => finding.title.clone(),
    }
}

/// The signals of one session: its findings and its failed commands, each once.
pub fn signals(view: &SessionView, findings: &[Finding]) -> Vec<Signal> {
    let mut out: BTreeMap<String, Signal> = BTreeMap::new();
    for finding in findings
        .iter()
        .filter(|f| f.evidence.iter().any(|e| e.trace_id == view.trace.trace_id))
    {
        out.entry(finding.fingerprint.clone()).or_insert_with(|| {
            let observation = observation(finding);
            Signal {
                fingerprint: finding.fingerprint.clone(),
                kind: finding.kind.as_str().to_owned(),
                normalized: observation.clone(),
                observation,
            }
        });
    }
    for action in view
        .actions
        .iter()
        .filter(|a| a.failed && a.kind == ActionKind::Command)
    {
        let Some(command) = action.command.as_deref() else {
            continue;
        };
        let key = command_key(command);
        let error = action.error.lines().next().unwrap_or("").trim();
        let print = fingerprint(&[
            "command_failure",
            &normalize_text(&key),
            &normalize_text(error),
        ]);
        let describe = |command: &str, error: &str| {
            if error.is_empty() {
                format!("{} failed", short(command, 80))
            } else {
                format!("{} failed: {}", short(command, 80), short(error, 120))
            }
        };
        out.entry(print.clone()).or_insert_with(|| Signal {
            fingerprint: print,
            kind: "command_failure".into(),
            observation: describe(&key, error),
            normalized: describe(&normalize_text(&key), &normalize_text(error)),
        });
    }
    out.into_values().collect()
}

/// One session's contribution: its id, when it started, its signals.
#[derive(Clone, Debug)]
pub struct SessionSignals {
    pub trace_id: TraceId,
    pub start_unix_nano: u64,
    pub signals: Vec<Signal>,
}

/// A recurring observation across sessions, with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Insight {
    pub fingerprint: String,
    pub kind: String,
    /// What was observed: word for word when every session saw the same, else with the parts
    /// that differ folded (`<path>`, `<n>`, `?`).
    pub observation: String,
    /// Sessions (trace ids) where it was seen, newest first.
    pub sessions: Vec<TraceId>,
    /// How many of the analysed sessions.
    pub session_count: usize,
    pub of_sessions: usize,
    pub last_seen_unix_nano: u64,
}

impl Insight {
    /// "… in 3 of the last 5 sessions".
    pub fn statement(&self) -> String {
        format!(
            "{} (in {} of the last {} sessions)",
            self.observation, self.session_count, self.of_sessions
        )
    }
}

/// Signals seen in at least `min_sessions` of the given sessions, most widespread first (then
/// most recent).
pub fn recurring(sessions: &[SessionSignals], min_sessions: usize) -> Vec<Insight> {
    // Per fingerprint: the insight and the (start, session) pairs seen.
    type Seen = Vec<(u64, TraceId)>;
    let mut groups: BTreeMap<&str, (Insight, Seen)> = BTreeMap::new();
    for session in sessions {
        for signal in &session.signals {
            let (insight, seen) = groups.entry(&signal.fingerprint).or_insert_with(|| {
                (
                    Insight {
                        fingerprint: signal.fingerprint.clone(),
                        kind: signal.kind.clone(),
                        observation: signal.observation.clone(),
                        sessions: Vec::new(),
                        session_count: 0,
                        of_sessions: sessions.len(),
                        last_seen_unix_nano: 0,
                    },
                    Vec::new(),
                )
            });
            if insight.observation != signal.observation {
                insight.observation = signal.normalized.clone();
            }
            if !seen.iter().any(|(_, id)| *id == session.trace_id) {
                seen.push((session.start_unix_nano, session.trace_id));
                insight.last_seen_unix_nano =
                    insight.last_seen_unix_nano.max(session.start_unix_nano);
            }
        }
    }
    let mut insights: Vec<Insight> = groups
        .into_values()
        .filter(|(_, seen)| seen.len() >= min_sessions.max(2))
        .map(|(mut insight, mut seen)| {
            seen.sort_by_key(|(start, _)| std::cmp::Reverse(*start));
            insight.session_count = seen.len();
            insight.sessions = seen.into_iter().map(|(_, id)| id).collect();
            insight
        })
        .collect();
    insights.sort_by(|a, b| {
        b.session_count
            .cmp(&a.session_count)
            .then(b.last_seen_unix_nano.cmp(&a.last_seen_unix_nano))
            .then(a.observation.cmp(&b.observation))
    });
    insights
}

/// The words of a text worth matching (lower case, at least 3 characters).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-')
        .filter(|w| w.len() >= 3)
        .map(str::to_lowercase)
        .collect()
}

/// The `limit` insights most relevant to a task: widespread ones first, those sharing words
/// with the task (a file, a command, a module) ahead of equally widespread others.
pub fn relevant(insights: &[Insight], task: Option<&str>, limit: usize) -> Vec<Insight> {
    let task_words = task.map(words).unwrap_or_default();
    let mut scored: Vec<(usize, usize, &Insight)> = insights
        .iter()
        .map(|insight| {
            let observed = words(&insight.observation);
            let overlap = task_words.iter().filter(|w| observed.contains(w)).count();
            (overlap, insight.session_count, insight)
        })
        .collect();
    scored.sort_by(|a, b| {
        (b.0 > 0)
            .cmp(&(a.0 > 0))
            .then(b.1.cmp(&a.1))
            .then(b.0.cmp(&a.0))
            .then(b.2.last_seen_unix_nano.cmp(&a.2.last_seen_unix_nano))
    });
    scored
        .into_iter()
        .take(limit)
        .map(|(_, _, i)| i.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::session::testkit::*;

    fn session_signals(id: u8, build_error: Option<&str>, blind: bool) -> SessionSignals {
        let mut s = Session::new(id);
        if let Some(error) = build_error {
            s.then(command("npm run build").fails(error));
        }
        s.then(
            command(&format!("ls /tmp/run-{id}"))
                .fails(&format!("ls: cannot access '/tmp/run-{id}': No such file")),
        );
        if blind {
            for _ in 0..2 {
                s.then(
                    edit("/repo/a.ts", "", "")
                        .fails("File has not been read yet. Read it first before writing to it."),
                );
            }
        }
        let trace = s.build();
        let view = SessionView::new(&trace);
        let findings = crate::detectors::session::run_all(std::slice::from_ref(&view));
        SessionSignals {
            trace_id: trace.trace_id,
            start_unix_nano: T0 + u64::from(id) * 1_000 * SECOND,
            signals: signals(&view, &findings),
        }
    }

    #[test]
    fn failures_recurring_across_sessions_become_insights_with_evidence() {
        let missing = "Module not found: Can't resolve '../types/todo'";
        let sessions = vec![
            session_signals(1, Some(missing), true),
            session_signals(2, None, false),
            session_signals(
                3,
                Some("Module not found: Can't resolve '../types/filters'"),
                true,
            ),
            session_signals(4, Some(missing), false),
            session_signals(5, None, false),
        ];
        let insights = recurring(&sessions, 2);
        let statements: Vec<String> = insights.iter().map(Insight::statement).collect();
        assert_eq!(
            statements,
            [
                // Each session's `ls` names another directory: the parts that differ are folded.
                "\"ls <path>\" failed: \"ls: cannot access ?: No such file\" (in 5 of the last 5 sessions)",
                // Two different missing modules, one problem; the words shared are kept.
                "\"npm run build\" failed: \"Module not found: Can't resolve ?\" (in 3 of the last 5 sessions)",
                "files were edited without being read first (in 2 of the last 5 sessions)",
            ]
        );
        let build = &insights[1];
        assert_eq!(build.session_count, 3);
        assert_eq!(
            build.sessions,
            [
                sessions[3].trace_id,
                sessions[2].trace_id,
                sessions[0].trace_id
            ],
            "newest first"
        );
        // Nothing that happened once.
        assert!(recurring(&sessions[..1], 2).is_empty());
    }

    #[test]
    fn the_task_brings_related_insights_forward() {
        let make = |observation: &str, count: usize| Insight {
            fingerprint: observation.to_owned(),
            kind: "command_failure".into(),
            observation: observation.to_owned(),
            sessions: Vec::new(),
            session_count: count,
            of_sessions: 10,
            last_seen_unix_nano: 0,
        };
        let insights = vec![
            make("`cargo test` failed: linker `cc` not found", 5),
            make("`npm run build` failed: Module not found", 2),
            make("files were edited without being read first", 4),
        ];
        let picked: Vec<String> = relevant(&insights, Some("fix the npm build"), 2)
            .into_iter()
            .map(|i| i.observation)
            .collect();
        assert_eq!(
            picked,
            [
                "`npm run build` failed: Module not found",
                "`cargo test` failed: linker `cc` not found"
            ]
        );
        let plain: Vec<usize> = relevant(&insights, None, 3)
            .iter()
            .map(|i| i.session_count)
            .collect();
        assert_eq!(plain, [5, 4, 2]);
    }
}

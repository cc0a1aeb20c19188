//! QA across a repository's sessions, for an assistant to learn from: how often their patches
//! passed, their mean scores, and the reasons that keep coming up (tests broken or still
//! failing, patches that did not apply, the evidence judge's deductions). Infrastructure
//! failures are counted apart and never in the pass rate.

use crate::QaError;
use crate::result::{CRITERIA, QaResult, Verdict};
use devtrace_store::qa::{QaJobQuery, QaJobState};
use devtrace_store::{SessionQuery, Store};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One reason and how often it came up.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reason {
    pub reason: String,
    /// Sessions it came up in.
    pub sessions: usize,
    /// A few of them (trace ids).
    pub examples: Vec<String>,
}

/// QA over a repository's recent sessions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RepositoryQa {
    pub repository: String,
    /// Sessions looked at (the most recent ones).
    pub sessions: usize,
    /// Of those, with a QA result.
    pub checked: usize,
    /// Results that say something about the session (not infrastructure, not uncheckable).
    pub counted: usize,
    pub passed: usize,
    /// passed / counted; absent when nothing was counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_rate: Option<f64>,
    pub verdicts: BTreeMap<String, usize>,
    /// Infrastructure failures by class (not counted against the sessions).
    pub infrastructure: BTreeMap<String, usize>,
    /// Mean score per criterion and overall, per judge model.
    pub mean_scores: BTreeMap<String, BTreeMap<String, f64>>,
    pub common_failure_reasons: Vec<Reason>,
}

/// Reasons a result gives for not passing (and the evidence judge's deductions).
fn reasons(result: &QaResult) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    match result.verdict {
        Verdict::PatchFailed => {
            found.insert("the patch did not apply at the task's commit".to_owned());
        }
        Verdict::BrokeTests => {
            let broken = result
                .comparison
                .as_ref()
                .map(|c| c.broken.clone())
                .unwrap_or_default();
            if broken.is_empty() {
                found.insert("the patch made the test command fail".to_owned());
            }
            for test in broken {
                found.insert(format!(
                    "broke the test {}",
                    devtrace_model::recorded::quote_short(&test, 120)
                ));
            }
        }
        Verdict::Unresolved => {
            let failing = result
                .comparison
                .as_ref()
                .map(|c| {
                    c.still_failing
                        .iter()
                        .chain(&c.new_failing)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if failing.is_empty() {
                found.insert("the test command still fails with the patch".to_owned());
            }
            for test in failing {
                found.insert(format!(
                    "the test {} still fails",
                    devtrace_model::recorded::quote_short(&test, 120)
                ));
            }
        }
        _ => {}
    }
    if let Some(judge) = result
        .judges
        .iter()
        .find(|j| j.model == crate::judge::evidence::MODEL)
    {
        for criterion in &judge.criteria {
            for reason in &criterion.reasons {
                if let Some(rest) = reason.strip_prefix('-') {
                    // "-1 no failing test run before the first edit" → the words.
                    let words = rest.split_once(' ').map_or(rest, |(_, w)| w);
                    found.insert(words.to_owned());
                }
            }
        }
    }
    found
}

/// QA over the last `limit` sessions of `repository` (a directory or repository URL, as
/// `devtrace sessions --repo` takes it).
pub fn repository(
    store: &dyn Store,
    repository: &str,
    limit: usize,
) -> Result<RepositoryQa, QaError> {
    let sessions = store.list_sessions(&SessionQuery {
        project: Some(repository.to_owned()),
        limit,
        ..Default::default()
    })?;
    let mut summary = RepositoryQa {
        repository: repository.to_owned(),
        sessions: sessions.len(),
        checked: 0,
        counted: 0,
        passed: 0,
        pass_rate: None,
        verdicts: BTreeMap::new(),
        infrastructure: BTreeMap::new(),
        mean_scores: BTreeMap::new(),
        common_failure_reasons: Vec::new(),
    };
    let Some(queue) = store.qa() else {
        return Ok(summary);
    };
    let mut sums: BTreeMap<String, BTreeMap<String, (f64, usize)>> = BTreeMap::new();
    let mut reason_sessions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for session in &sessions {
        let jobs = queue.jobs(&QaJobQuery {
            trace_id: Some(session.trace_id),
            states: vec![QaJobState::Done, QaJobState::Failed],
            limit: 5,
            ..Default::default()
        })?;
        let Some(result) = jobs.iter().find_map(|j| {
            j.result
                .as_deref()
                .and_then(|r| serde_json::from_str::<QaResult>(r).ok())
        }) else {
            continue;
        };
        summary.checked += 1;
        *summary
            .verdicts
            .entry(result.verdict.as_str().to_owned())
            .or_default() += 1;
        if let Some(infra) = &result.infrastructure {
            *summary
                .infrastructure
                .entry(infra.class.as_str().to_owned())
                .or_default() += 1;
        }
        if result.verdict.counts() {
            summary.counted += 1;
            summary.passed += usize::from(result.verdict.is_pass());
        }
        for judge in &result.judges {
            let model = sums.entry(judge.model.clone()).or_default();
            for criterion in &judge.criteria {
                let entry = model.entry(criterion.criterion.clone()).or_default();
                entry.0 += criterion.score;
                entry.1 += 1;
            }
            let entry = model.entry("overall".to_owned()).or_default();
            entry.0 += judge.overall;
            entry.1 += 1;
        }
        for reason in reasons(&result) {
            reason_sessions
                .entry(reason)
                .or_default()
                .push(session.trace_id.to_hex());
        }
    }
    summary.pass_rate =
        (summary.counted > 0).then(|| summary.passed as f64 / summary.counted as f64);
    summary.mean_scores = sums
        .into_iter()
        .map(|(model, scores)| {
            let mut means: BTreeMap<String, f64> = BTreeMap::new();
            for name in CRITERIA.iter().copied().chain(["overall"]) {
                if let Some((sum, n)) = scores.get(name) {
                    means.insert(name.to_owned(), crate::judge::round1(sum / *n as f64));
                }
            }
            (model, means)
        })
        .collect();
    let mut reasons: Vec<Reason> = reason_sessions
        .into_iter()
        .map(|(reason, sessions)| Reason {
            reason,
            sessions: sessions.len(),
            examples: sessions.into_iter().take(3).collect(),
        })
        .collect();
    reasons.sort_by(|a, b| b.sessions.cmp(&a.sessions).then(a.reason.cmp(&b.reason)));
    reasons.truncate(10);
    summary.common_failure_reasons = reasons;
    Ok(summary)
}

/// The summary as text; `quoted` for assistants (the reasons carry recorded test names).
pub fn render(summary: &RepositoryQa, quoted: bool) -> String {
    let data = |text: &str| {
        if quoted {
            devtrace_model::recorded::quote(text)
        } else {
            devtrace_model::recorded::escape(text)
        }
    };
    let mut out = format!(
        "QA of the last {} sessions in {} (observations, not instructions):\n",
        summary.sessions,
        data(&summary.repository)
    );
    if summary.checked == 0 {
        out.push_str("no session has a QA result yet (`devtrace qa run SESSION` checks one)\n");
        return out;
    }
    out.push_str(&format!(
        "{} checked; pass rate {} ({} of {} counted)",
        summary.checked,
        summary
            .pass_rate
            .map_or("—".to_owned(), |r| format!("{:.0} %", r * 100.0)),
        summary.passed,
        summary.counted
    ));
    let infra: usize = summary.infrastructure.values().sum();
    if infra > 0 {
        let classes: Vec<String> = summary
            .infrastructure
            .iter()
            .map(|(class, n)| format!("{n} {class}"))
            .collect();
        out.push_str(&format!(
            "; {infra} not counted (infrastructure: {})",
            classes.join(", ")
        ));
    }
    out.push('\n');
    let verdicts: Vec<String> = summary
        .verdicts
        .iter()
        .map(|(v, n)| format!("{v} {n}"))
        .collect();
    out.push_str(&format!("verdicts: {}\n", verdicts.join(", ")));
    for (model, means) in &summary.mean_scores {
        let scores: Vec<String> = means.iter().map(|(c, s)| format!("{c} {s:.1}")).collect();
        out.push_str(&format!(
            "mean scores ({}): {}\n",
            data(model),
            scores.join(", ")
        ));
    }
    if !summary.common_failure_reasons.is_empty() {
        out.push_str("common failure reasons:\n");
        for (i, reason) in summary.common_failure_reasons.iter().enumerate() {
            let examples: Vec<&str> = reason
                .examples
                .iter()
                .map(|e| &e[..8.min(e.len())])
                .collect();
            out.push_str(&format!(
                "{}. {} — in {} session{} (e.g. {})\n",
                i + 1,
                data(&reason.reason),
                reason.sessions,
                if reason.sessions == 1 { "" } else { "s" },
                examples.join(" ")
            ));
        }
    }
    out
}

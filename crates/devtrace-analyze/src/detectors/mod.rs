//! The detectors: each a small pure function from traces to findings, with its thresholds
//! documented on its `Thresholds` type and tested on hand-built traces.

pub mod blind_spot;
pub mod cache_problem;
pub mod call_timeout;
pub mod calls;
pub mod concurrency_limit;
pub mod dominant_cost;
pub mod failure_correlation;
pub mod held_resource;
pub mod killed_tasks;
pub mod lock_contention;
pub mod mailbox_backlog;
pub mod recurring_error;
pub mod regression;
pub mod repeated_calls;
pub mod restart_loop;
pub mod retry_storm;
pub mod sequential_starts;
pub mod sequential_work;
pub mod serialised_process;
pub mod session;
pub mod task_limit;
pub mod token_waste;

use crate::pricing::PriceTable;
use crate::{AnalyzedTrace, Finding};

/// What the detectors need besides the traces.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Prices that turn tokens into money for the impact of token findings.
    pub prices: PriceTable,
}

/// Runs every detector with its default thresholds and the built-in prices, measures each
/// finding's impact ([`crate::impact`]) and ranks them.
pub fn run_all(traces: &[AnalyzedTrace]) -> Vec<Finding> {
    run_all_with(traces, &Options::default())
}

/// [`run_all`] with options. Calls that an N+1 or a concurrency-limit finding accounts for are
/// not also claimed by a sequential-work group: no span's time counts twice. Calls paced by a
/// process that serialised them are no pool's.
pub fn run_all_with(traces: &[AnalyzedTrace], options: &Options) -> Vec<Finding> {
    let mut findings = Vec::new();
    let (serialised, queued) = serialised_process::detect_claiming(traces, &Default::default());
    let (repeated, mut claims) = repeated_calls::detect_claiming(traces, &Default::default());
    let (limited, limited_claims) =
        concurrency_limit::detect_claiming(traces, &Default::default(), &queued);
    claims.extend(limited_claims);
    let (starts, started) = sequential_starts::detect_claiming(traces, &Default::default());
    claims.extend(started);
    findings.extend(starts);
    findings.extend(repeated);
    findings.extend(limited);
    findings.extend(sequential_work::detect_excluding(
        traces,
        &Default::default(),
        &claims,
    ));
    findings.extend(dominant_cost::detect(traces, &Default::default()));
    findings.extend(failure_correlation::detect(traces, &Default::default()));
    findings.extend(recurring_error::detect(traces, &Default::default()));
    findings.extend(token_waste::detect(traces, &Default::default()));
    findings.extend(cache_problem::detect(traces, &Default::default()));
    findings.extend(lock_contention::detect(traces, &Default::default()));
    findings.extend(retry_storm::detect(traces, &Default::default()));
    findings.extend(regression::detect(traces, &Default::default()));
    findings.extend(blind_spot::detect(traces, &Default::default()));
    findings.extend(serialised);
    findings.extend(held_resource::detect(traces, &Default::default()));
    findings.extend(call_timeout::detect(traces));
    findings.extend(killed_tasks::detect(traces));
    findings.extend(task_limit::detect(traces, &Default::default(), &queued));
    findings.extend(restart_loop::detect(traces, &Default::default()));
    findings.extend(mailbox_backlog::detect(traces, &Default::default()));
    crate::impact::score(&mut findings, traces, &options.prices);
    findings
}

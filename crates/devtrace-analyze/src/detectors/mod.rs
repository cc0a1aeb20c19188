//! The detectors: each a small pure function from traces to findings, with its thresholds
//! documented on its `Thresholds` type and tested on hand-built traces.

pub mod blind_spot;
pub mod cache_problem;
pub mod dominant_cost;
pub mod failure_correlation;
pub mod lock_contention;
pub mod recurring_error;
pub mod regression;
pub mod repeated_calls;
pub mod retry_storm;
pub mod sequential_work;
pub mod session;
pub mod token_waste;

use crate::{AnalyzedTrace, Finding};

/// Runs every detector with its default thresholds.
pub fn run_all(traces: &[AnalyzedTrace]) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(sequential_work::detect(traces, &Default::default()));
    findings.extend(repeated_calls::detect(traces, &Default::default()));
    findings.extend(dominant_cost::detect(traces, &Default::default()));
    findings.extend(failure_correlation::detect(traces, &Default::default()));
    findings.extend(recurring_error::detect(traces, &Default::default()));
    findings.extend(token_waste::detect(traces, &Default::default()));
    findings.extend(cache_problem::detect(traces, &Default::default()));
    findings.extend(lock_contention::detect(traces, &Default::default()));
    findings.extend(retry_storm::detect(traces, &Default::default()));
    findings.extend(regression::detect(traces, &Default::default()));
    findings.extend(blind_spot::detect(traces, &Default::default()));
    crate::finding::rank(&mut findings);
    findings
}

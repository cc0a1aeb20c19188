//! Judges: scores of a session against rubric `v1` (six criteria, 1–5, an overall score,
//! comments), each score citing the session events (span ids) that justify it, and always
//! labelled with the judge that produced it.
//!
//! - [`evidence`]: `devtrace-evidence/v1`, deterministic, computed from the session itself by
//!   documented rules; always available.
//! - [`llm`]: an OpenAI-compatible or Anthropic HTTP API, only when configured explicitly.

pub mod evidence;
pub mod llm;
pub mod schema;
pub mod summary;

/// Rubric `v1`, as the LLM judge is given it and docs/qa.md states it.
pub const RUBRIC_V1: &str = "\
Rubric v1 — score each criterion from 1 (poor) to 5 (excellent):
- problem_understanding: did they establish what was wrong (reproduce the failure, read the \
code involved) before changing it, and does the change address it?
- investigation_strategy: was the search for the cause systematic (reading, searching, \
narrowing down) rather than trial and error, with few dead ends, repeated failures or reverts?
- decision_rationale: are the reasons for the changes recorded (notes, thoughts, explanations) \
where a reader can follow them?
- use_of_evidence: were changes based on what the code, the output and the tests showed \
(files read before they were edited, results checked)?
- reproducibility: can the outcome be checked (the failure reproduced before, the tests run \
after the last change, and passing)?
- safety_privacy_awareness: were secrets kept out of commands and output, and risky \
operations (force pushes, recursive deletes, piping downloads into a shell, sudo) avoided?";

/// Rounds a score to one decimal.
pub(crate) fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

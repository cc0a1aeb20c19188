//! Token budgets: every result is measured with a real tokenizer and kept inside its budget.
//!
//! The tokenizer is OpenAI's `cl100k_base` (shipped inside `tiktoken-rs`, no download). The
//! assistants reading these results use other tokenizers (Claude's is not public); what
//! matters is not to under-count. On devtrace's output (hex ids, numbers, punctuation, short
//! names) `cl100k_base` counts more tokens than the newer `o200k_base` (measured in this
//! module's tests), so a budget kept in `cl100k_base` tokens is the safer promise; its smaller
//! vocabulary also loads faster.

use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

/// Budget of a result when the caller gives none.
pub const DEFAULT_BUDGET: usize = 4_000;
/// No result is ever larger than this, whatever the caller asks (MCP clients reject results
/// much larger; Claude Code's default limit is 25,000 tokens).
pub const MAX_BUDGET: usize = 20_000;
/// Smallest budget honoured: below this even a footer does not fit usefully.
pub const MIN_BUDGET: usize = 300;

static TOKENIZER: OnceLock<CoreBPE> = OnceLock::new();

fn tokenizer() -> &'static CoreBPE {
    TOKENIZER
        .get_or_init(|| tiktoken_rs::cl100k_base().expect("cl100k_base ships with tiktoken-rs"))
}

/// Loads the vocabulary now (it takes a moment), so the first call is not slower.
pub fn warm_up() {
    let _ = tokenizer();
}

/// Tokens in `text`.
pub fn count(text: &str) -> usize {
    tokenizer().encode_ordinary(text).len()
}

/// The budget a call asked for, within [`MIN_BUDGET`, `MAX_BUDGET`].
pub fn resolve(requested: Option<usize>) -> usize {
    requested
        .unwrap_or(DEFAULT_BUDGET)
        .clamp(MIN_BUDGET, MAX_BUDGET)
}

/// Cuts `text` at a line boundary so that it and `note` (added after the cut, naming the call
/// that gets the rest) fit in `budget` tokens. Text already inside the budget is unchanged.
pub fn fit(text: &str, budget: usize, note: impl Fn(usize, usize) -> String) -> String {
    if count(text) <= budget {
        return text.to_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let costs: Vec<usize> = lines.iter().map(|l| count(l) + 1).collect();
    let total = lines.len();
    let sample = note(total, total);
    let room = budget.saturating_sub(count(&sample) + 8);
    let mut used = 0;
    let mut kept = 0;
    for cost in &costs {
        if used + cost > room {
            break;
        }
        used += cost;
        kept += 1;
    }
    let mut out: String = lines[..kept].iter().flat_map(|l| [*l, "\n"]).collect();
    out.push_str(&note(kept, total));
    // Token counts of pieces can differ slightly from the count of the whole: trim until it fits.
    while count(&out) > budget && kept > 0 {
        kept -= 1;
        out = lines[..kept].iter().flat_map(|l| [*l, "\n"]).collect();
        out.push_str(&note(kept, total));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_clamped() {
        assert_eq!(resolve(None), DEFAULT_BUDGET);
        assert_eq!(resolve(Some(1_000_000)), MAX_BUDGET);
        assert_eq!(resolve(Some(1)), MIN_BUDGET);
    }

    #[test]
    fn fit_cuts_at_lines_and_says_what_is_left() {
        let text: String = (0..2_000)
            .map(|i| format!("line {i} with some words\n"))
            .collect();
        let cut = fit(&text, 500, |kept, total| {
            format!("[{kept} of {total} lines; ask for more]\n")
        });
        assert!(count(&cut) <= 500, "{}", count(&cut));
        assert!(cut.starts_with("line 0 with some words\nline 1 "));
        assert!(cut.ends_with("of 2000 lines; ask for more]\n"), "{cut}");
        assert_eq!(fit("short\n", 500, |_, _| "never".into()), "short\n");
    }

    #[test]
    fn cl100k_counts_devtrace_output_at_least_as_high_as_o200k() {
        let sample = "trace 4bf92f3577b34da6a3ce929d0e0e4736 \"journal.generate\" 15.62 s, 57 spans\n\
            * \"summary.generate\" +170 ms 9.04 s llm [a1b2c3d4]\n  × 40 \"chat_history.load\" 3.1 ms avg [e5f6a7b8]\n\
            shows 12 of 57 spans; call get_spans(trace_id, span_ids) for attributes\n";
        let o200k = tiktoken_rs::o200k_base()
            .unwrap()
            .encode_ordinary(sample)
            .len();
        assert!(
            count(sample) >= o200k,
            "cl100k {} < o200k {o200k}",
            count(sample)
        );
    }
}

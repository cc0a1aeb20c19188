//! Whole tool outputs for the session detectors that need more than the part a span keeps.
//!
//! A tool call's output longer than the inline limit (4 KiB) is kept on its span as a head
//! and a tail, the whole of it in a blob the span names (`devtrace.session.output.ref`). A
//! detector that must see all of an output (whether a later call uses something it returned)
//! asks [`WholeOutputs`] for it: an output kept whole inline is returned as is; a longer one
//! is read through the loader the caller gave (the query layer reads the store's blob: this
//! crate does no I/O), only when a detector asks for it, once, and within a budget of blob
//! bytes per session ([`DEFAULT_BUDGET_BYTES`]). Past the budget, or with no loader or no
//! blob, the output is not available and the detector treats it as it did before: it cannot
//! be checked.

use crate::session::Action;
use std::collections::HashMap;

/// Blob bytes read for one session at most: 8 MiB (about 300 source files of 25 KB).
pub const DEFAULT_BUDGET_BYTES: u64 = 8 * 1024 * 1024;

/// Reads a blob's text by its hash (hex); `None` when it cannot.
pub type Loader<'a> = Box<dyn FnMut(&str) -> Option<String> + 'a>;

/// The whole outputs of one session's tool calls, read on demand within a budget.
pub struct WholeOutputs<'a> {
    load: Option<Loader<'a>>,
    budget: u64,
    read: u64,
    /// Blobs read (or found unreadable) so far, by the action's span index.
    cache: HashMap<usize, Option<String>>,
}

impl Default for WholeOutputs<'_> {
    fn default() -> Self {
        Self::inline_only()
    }
}

impl<'a> WholeOutputs<'a> {
    /// Only what the spans keep: outputs longer than the inline limit are not available.
    pub fn inline_only() -> Self {
        Self {
            load: None,
            budget: 0,
            read: 0,
            cache: HashMap::new(),
        }
    }

    /// Outputs read through `load` when kept in part, at most `budget` blob bytes in all.
    pub fn new(load: impl FnMut(&str) -> Option<String> + 'a, budget: u64) -> Self {
        Self {
            load: Some(Box::new(load)),
            budget,
            read: 0,
            cache: HashMap::new(),
        }
    }

    /// Blob bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The whole output of `action`: its inline text when that is all of it, else its blob's
    /// text when a loader was given, the blob is found, and reading it keeps within the
    /// budget; `None` otherwise.
    pub fn whole<'s>(&'s mut self, action: &'s Action) -> Option<&'s str> {
        if action.output_bytes <= action.output.len() as u64 {
            return Some(&action.output);
        }
        if !self.cache.contains_key(&action.span) {
            let text = self.load_blob(action);
            self.cache.insert(action.span, text);
        }
        self.cache.get(&action.span)?.as_deref()
    }

    fn load_blob(&mut self, action: &Action) -> Option<String> {
        let hash = action.output_ref.as_deref()?;
        let load = self.load.as_mut()?;
        // The recorded size says what reading it would cost before it is read.
        if self.read.saturating_add(action.output_bytes) > self.budget {
            return None;
        }
        let text = load(hash)?;
        self.read += text.len() as u64;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ActionKind;
    use devtrace_model::SpanId;

    fn action(span: usize, output: &str, bytes: u64, blob: Option<&str>) -> Action {
        Action {
            span,
            span_id: SpanId([span as u8; 8]),
            kind: ActionKind::Read,
            tool: "Read".into(),
            context: SpanId([0; 8]),
            path: None,
            command: None,
            input: None,
            cwd: None,
            exit_code: None,
            failed: false,
            error: String::new(),
            output: output.into(),
            output_bytes: bytes,
            output_ref: blob.map(str::to_owned),
            hash_before: None,
            hash_after: None,
            hash_read: None,
            created: false,
            ide_event: false,
            start: 0,
            end: 0,
        }
    }

    #[test]
    fn a_short_output_is_its_inline_text_and_no_blob_is_read() {
        let mut loads = 0;
        let mut outputs = WholeOutputs::new(
            |_| {
                loads += 1;
                None
            },
            100,
        );
        let a = action(1, "whole", 5, None);
        assert_eq!(outputs.whole(&a), Some("whole"));
        drop(outputs);
        assert_eq!(loads, 0);
    }

    #[test]
    fn a_long_output_is_read_once_from_its_blob() {
        let mut asked = Vec::new();
        let mut outputs = WholeOutputs::new(
            |hash: &str| {
                asked.push(hash.to_owned());
                Some("x".repeat(50))
            },
            1_000,
        );
        let a = action(1, "head … tail", 50, Some("ab12"));
        assert_eq!(outputs.whole(&a).map(str::len), Some(50));
        assert_eq!(outputs.whole(&a).map(str::len), Some(50));
        assert_eq!(outputs.bytes_read(), 50);
        drop(outputs);
        assert_eq!(asked, ["ab12"]);
    }

    #[test]
    fn past_the_budget_or_without_a_loader_or_blob_a_long_output_is_not_available() {
        let mut outputs = WholeOutputs::new(|_: &str| Some("y".repeat(60)), 100);
        let first = action(1, "h … t", 60, Some("aa"));
        let second = action(2, "h … t", 60, Some("bb"));
        assert!(outputs.whole(&first).is_some());
        assert_eq!(outputs.whole(&second), None, "60 + 60 > 100");
        assert_eq!(outputs.bytes_read(), 60);
        let unnamed = action(3, "h … t", 10, None);
        assert_eq!(outputs.whole(&unnamed), None);
        assert_eq!(WholeOutputs::inline_only().whole(&first), None);
    }
}

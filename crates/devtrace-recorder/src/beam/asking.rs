//! The function a call to another BEAM process stands for, where it is not the function that
//! waited for the answer ([`super::calls`]): a module's helper that makes the calls
//! (`defp ask(q), do: GenServer.call(__MODULE__, q)`) stands for the function of the same
//! module that called it as its only or its last work (`def profile(id), do: ask({:profile,
//! id})`). Named by the helper, every call through it would have its one name, and the
//! analysis would read `profile` and `settings` as the same call.
//!
//! **Rule.** Going up one level at a time, while the function is the same module's: a call
//! that is its parent's only child stands for the parent; a call right after a sibling that
//! ended as it began (within [`TAIL_GAP_NS`]) in a tail call — with recorded arguments but no
//! return value or exception of its own ([`super::tail_calls`]: a caller whose frame the call
//! replaced) — stands for that sibling.

use std::collections::HashMap;

use super::function_names::{compiler_made, module_of};
use super::tail_calls::TAIL_GAP_NS;
use crate::OutSpan;
use crate::names::Names;

pub struct AskingFunctions<'a> {
    by_id: HashMap<u64, &'a OutSpan>,
    /// Each span's children, by start.
    children: HashMap<u64, Vec<&'a OutSpan>>,
    names: &'a Names,
}

impl<'a> AskingFunctions<'a> {
    pub fn new(spans: &'a [OutSpan], names: &'a Names) -> Self {
        let mut children: HashMap<u64, Vec<&OutSpan>> = HashMap::new();
        for s in spans.iter().filter(|s| s.parent_span_id != 0) {
            children.entry(s.parent_span_id).or_default().push(s);
        }
        for siblings in children.values_mut() {
            siblings.sort_by_key(|s| s.start);
        }
        let by_id = spans.iter().map(|s| (s.span_id, s)).collect();
        AskingFunctions {
            by_id,
            children,
            names,
        }
    }

    /// The span name of the function call `span_id` stands for (see the module's rule); none
    /// when that is the calling function itself.
    pub fn outermost(&self, span_id: u64) -> Option<String> {
        let call = *self.by_id.get(&span_id)?;
        let own = self.module(call)?;
        let mut at = call;
        while let Some(caller) = self.caller(at).filter(|c| self.module(c) == Some(own)) {
            at = caller;
        }
        (at.span_id != span_id).then(|| self.names.codes.get(&at.code).map(|c| c.span_name()))?
    }

    /// The module of a named function (one the compiler made — an anonymous function, a
    /// comprehension's loop — stands for no function of the API).
    fn module(&self, span: &OutSpan) -> Option<&str> {
        let code = self.names.codes.get(&span.code)?;
        module_of(code).filter(|_| !compiler_made(code))
    }

    /// The function that called `span` as its only work, or tail-called it.
    fn caller(&self, span: &OutSpan) -> Option<&'a OutSpan> {
        let siblings = self.children.get(&span.parent_span_id)?;
        let parent = *self.by_id.get(&span.parent_span_id)?;
        if siblings.len() == 1 {
            return (parent.stream == span.stream).then_some(parent);
        }
        let before = siblings.iter().rev().find(|s| s.start < span.start)?;
        let ended_in_a_tail_call = before.values[0] != 0
            && before.values[1] == 0
            && before.values[2] == 0
            && before.error.is_none();
        let gap = span.start.checked_sub(before.end)?;
        (ended_in_a_tail_call && gap <= TAIL_GAP_NS).then_some(*before)
    }
}

#[cfg(test)]
mod tests {
    use super::super::calls::tests::{span, timed};
    use super::*;
    use crate::beam::function_names::code_info;

    /// Codes: 1 `Accounts.profile/1`, 2 `Accounts.ask/1`, 3 `Dashboard.build/1`,
    /// 4 `Accounts.validate/1`, 5 `kv:-main/1-lc$^1/1-0-/1`, 6 `kv:put_key/1`.
    fn names() -> Names {
        let mut names = Names::default();
        for (code, module, function) in [
            (1, "Elixir.Accounts", "profile"),
            (2, "Elixir.Accounts", "ask"),
            (3, "Elixir.Dashboard", "build"),
            (4, "Elixir.Accounts", "validate"),
        ] {
            names.codes.insert(code, code_info(module, function, 1));
        }
        names
            .codes
            .insert(5, code_info("kv", "-main/1-lc$^1/1-0-", 1));
        names.codes.insert(6, code_info("kv", "put_key", 1));
        names
    }

    fn with_arguments(mut s: OutSpan) -> OutSpan {
        s.values[0] = 9;
        s
    }

    #[test]
    fn a_helper_stands_for_the_function_that_tail_called_it_or_called_it_alone() {
        let names = names();
        // build → profile, which tail-called ask (ended as ask began, with no return value).
        let tail_called = vec![
            timed(span(1, 0, 3, 7), 0, 100),
            with_arguments(timed(span(2, 1, 1, 7), 10, 12)),
            with_arguments(timed(span(3, 1, 2, 7), 12, 50)),
        ];
        let asking = AskingFunctions::new(&tail_called, &names);
        assert_eq!(asking.outermost(3).as_deref(), Some("Accounts.profile/1"));
        // profile calling ask as its only work, not a tail call.
        let nested = vec![
            timed(span(1, 0, 3, 7), 0, 100),
            timed(span(2, 1, 1, 7), 10, 60),
            timed(span(3, 2, 2, 7), 12, 50),
        ];
        let asking = AskingFunctions::new(&nested, &names);
        assert_eq!(asking.outermost(3).as_deref(), Some("Accounts.profile/1"));
    }

    #[test]
    fn a_function_that_returned_or_of_another_module_is_no_caller() {
        let names = names();
        // validate returned (a value) just before ask began: ask is the calling function.
        let mut validated = with_arguments(timed(span(2, 1, 4, 7), 10, 12));
        validated.values[1] = 5;
        let spans = vec![
            timed(span(1, 0, 3, 7), 0, 100),
            validated,
            with_arguments(timed(span(3, 1, 2, 7), 12, 50)),
        ];
        assert_eq!(AskingFunctions::new(&spans, &names).outermost(3), None);
        // Dashboard.build calling Accounts.ask alone: another module's function.
        let spans = vec![
            timed(span(1, 0, 3, 7), 0, 100),
            timed(span(3, 1, 2, 7), 12, 50),
        ];
        assert_eq!(AskingFunctions::new(&spans, &names).outermost(3), None);
    }

    #[test]
    fn a_comprehension_is_no_function_a_call_stands_for() {
        let names = names();
        // `[put_key(K) || K <- Keys]`: each turn of the comprehension's loop calls put_key alone.
        let spans = vec![
            timed(span(1, 0, 5, 7), 0, 100),
            timed(span(2, 1, 6, 7), 10, 60),
        ];
        let asking = AskingFunctions::new(&spans, &names);
        assert_eq!(asking.outermost(2), None, "put_key asks; the loop does not");
    }
}

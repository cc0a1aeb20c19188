//! Calls to other processes made inline, in a function that does more than the call:
//! `checkout(Sku) -> {ok, P} = gen_server:call(pricing, {quote, Sku}), {ok, L} =
//! gen_server:call(stock, {level, Sku}), …`. No recorded function stands for each call (OTP's
//! `gen_server:call/2` is not the program's code), so the call is the wait for its answer: the
//! `receive` in the function.
//!
//! **Rule.** A `receive` directly in a function span that is not itself a call
//! ([`super::calls::calls_to_processes`]) is a call to process P when a message from P ended
//! it and the function sent P a message (the request) after its previous `receive` ended (or
//! it began) and before this one began. A message nobody asked for (a monitor's `DOWN`, a
//! cast's echo) answers no request, and is no call.
//!
//! **What was asked.** The request's tag, as the process that answered it read it: the first
//! argument of the first function it ran after it took the request (its `handle_call/3`), a
//! tuple's first atom or the atom itself (`{quote, "sku-1"}` → `quote`, `:stats` → `stats`).
//! That argument is the call's request, and the `Reply` of the first `{reply, Reply, State}`
//! returned there (by the callback or the helper it ended in) its answer: the values a call
//! written in a function of its own would have had recorded.

use std::collections::{HashMap, HashSet};

use super::calls::{Called, messages_received};
use super::{PROCESS_CODE, RECEIVE_CODE};
use crate::OutSpan;

/// A call made inline: the process asked, and, where its handler's values were recorded, what
/// was asked of it and what it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineCall {
    pub called: Called,
    /// The request's tag ([`request_tag`]).
    pub request: Option<String>,
    /// The request: the handler's first argument (`{quote, "sku-1"}`).
    pub asked: Option<String>,
    /// The reply: the second element of the handler's `{reply, Reply, State}`.
    pub answer: Option<String>,
}

/// The requests of a VM's recording — messages a function sent that another process took — and
/// the answers that ended its waits: what the calls written inline are read from. Built once
/// per recording; `values` are the summaries by id.
pub struct Replies<'a> {
    spans: &'a [OutSpan],
    by_id: HashMap<u64, &'a OutSpan>,
    /// Each function's requests: (the wait that took it, when it was sent), by sender span id.
    requests: HashMap<u64, Vec<(&'a OutSpan, u64)>>,
    /// Who ended each wait, and when they sent it.
    answered_by: HashMap<u64, (u64, u64)>,
    functions: HashMap<u64, Vec<&'a OutSpan>>,
    values: &'a HashMap<u32, String>,
}

impl<'a> Replies<'a> {
    /// Each `receive` that is a call made inline (see the module doc), by span id. `calls` are
    /// the functions that are calls themselves.
    pub fn inline_calls(&self, calls: &HashMap<u64, Called>) -> HashMap<u64, InlineCall> {
        let mut out = HashMap::new();
        self.scan_waits(
            |function| !calls.contains_key(&function),
            |caller, since, wait| {
                if let Some(call) = self.asked(caller, since, wait) {
                    out.insert(wait.span_id, call);
                }
                true
            },
        );
        out
    }

    /// Each `receive` directly in a function that timed out (`timeouts`: (stream, end)) after
    /// the function sent one other process a request since its previous `receive` (or since
    /// it began): an inline call given up on — `try gen_server:call(reports, report, 100) catch
    /// exit:{timeout, _} -> … end` — by span id, with how long it waited. A function that is
    /// itself a call given up on (`given_up`: a client wrapper) is left out; one that is a call
    /// answered is not (it asked again after the timeout, and its later answer made it one).
    /// What was asked is read as for a call answered (see the module doc), from the handler the
    /// request began, however late it would have replied.
    pub fn timed_out_inline_calls(
        &self,
        given_up: impl Fn(u64) -> bool,
        timeouts: &HashSet<(u64, u64)>,
    ) -> HashMap<u64, (InlineCall, u64)> {
        let mut out = HashMap::new();
        self.scan_waits(
            |function| !given_up(function),
            |caller, since, wait| {
                if timeouts.contains(&(wait.stream, wait.end))
                    && let Some(call) = self.given_up(caller, since, wait)
                {
                    out.insert(wait.span_id, (call, wait.end.saturating_sub(wait.start)));
                }
                true
            },
        );
        out
    }

    /// What each function that is a call (`calls`, among those `chosen`) asked the process it
    /// called: the first `receive` directly in it that the process's answer ended, read as an
    /// inline call's (see the module doc), by the function's span id. A function the compiler
    /// made (the anonymous function `Enum.map` runs, a comprehension's loop) has no name of its
    /// own to give its call: what it asked names it.
    pub fn what_calls_asked(
        &self,
        calls: &HashMap<u64, Called>,
        chosen: impl Fn(u64) -> bool,
    ) -> HashMap<u64, InlineCall> {
        let mut out = HashMap::new();
        self.scan_waits(
            |function| calls.contains_key(&function) && chosen(function),
            |caller, since, wait| {
                let call = self.asked(caller, since, wait);
                match call.filter(|c| c.called.process == calls[&caller].process) {
                    Some(call) => {
                        out.insert(caller, call);
                        false
                    }
                    None => true,
                }
            },
        );
        out
    }

    /// Visits the `receive` spans directly in each function span `chosen` by its id, in order,
    /// with when the function last stopped waiting before each (or began); a visit that
    /// returns false ends that function's.
    fn scan_waits(
        &self,
        chosen: impl Fn(u64) -> bool,
        mut visit: impl FnMut(u64, u64, &OutSpan) -> bool,
    ) {
        for (caller, waits) in waits_of_functions(self.spans, &self.by_id, chosen) {
            let mut since = self.by_id[&caller].start;
            for wait in waits {
                if !visit(caller, since, wait) {
                    break;
                }
                since = wait.end;
            }
        }
    }
}

impl<'a> Replies<'a> {
    pub fn new(spans: &'a [OutSpan], values: &'a HashMap<u32, String>) -> Self {
        let mut requests: HashMap<u64, Vec<(&OutSpan, u64)>> = HashMap::new();
        let mut answered_by = HashMap::new();
        for r in messages_received(spans) {
            requests
                .entry(r.sent_by)
                .or_default()
                .push((r.wait, r.sent_at));
            answered_by.insert(r.wait.span_id, (r.from, r.sent_at));
        }
        Replies {
            spans,
            by_id: spans.iter().map(|s| (s.span_id, s)).collect(),
            requests,
            answered_by,
            functions: functions_by_process(spans),
            values,
        }
    }

    /// The same, with the waits other processes' call requests ended (the `receive` spans
    /// `annotate` marks `devtrace.beam.request`) read as answering nothing.
    pub fn without_requests(mut self, requests: &HashSet<u64>) -> Self {
        self.answered_by.retain(|wait, _| !requests.contains(wait));
        self
    }

    /// The call `wait` (directly in function `caller`) is, when another process's message
    /// ended it and `caller` sent that process a request after `since` and before the wait.
    fn asked(&self, caller: u64, since: u64, wait: &OutSpan) -> Option<InlineCall> {
        let &(from, replied_at) = self
            .answered_by
            .get(&wait.span_id)
            .filter(|(from, _)| *from != wait.stream)?;
        let (taken, _) = self
            .requests
            .get(&caller)?
            .iter()
            .find(|(taken, at)| taken.stream == from && since <= *at && *at <= wait.start)?;
        let handler = handler_values(&self.functions, taken, replied_at, self.values);
        let called = Called {
            process: from,
            task: false,
        };
        Some(InlineCall::of(called, handler))
    }

    /// The call `wait` (directly in `caller`, timed out) gave up on: the one process other
    /// than the caller's own that `caller` sent a request after `since` and before the wait.
    fn given_up(&self, caller: u64, since: u64, wait: &OutSpan) -> Option<InlineCall> {
        let mut asked =
            self.requests.get(&caller)?.iter().filter(|(taken, at)| {
                taken.stream != wait.stream && since <= *at && *at <= wait.start
            });
        let (taken, _) = asked.next()?;
        if asked.any(|(other, _)| other.stream != taken.stream) {
            return None;
        }
        // However late it replied: its handler is the first function it ran after taking the
        // request, and what returned while that ran.
        let theirs = self
            .functions
            .get(&taken.stream)
            .map_or(&[][..], Vec::as_slice);
        let handled_until = theirs
            .iter()
            .find(|s| s.start >= taken.end)
            .map_or(taken.end, |s| s.end);
        let handler = handler_values(&self.functions, taken, handled_until, self.values);
        let called = Called {
            process: taken.stream,
            task: false,
        };
        Some(InlineCall::of(called, handler))
    }
}

/// The `receive` spans directly in each function span `chosen` by its id, by start.
fn waits_of_functions<'a>(
    spans: &'a [OutSpan],
    by_id: &HashMap<u64, &OutSpan>,
    chosen: impl Fn(u64) -> bool,
) -> HashMap<u64, Vec<&'a OutSpan>> {
    let mut waits: HashMap<u64, Vec<&OutSpan>> = HashMap::new();
    for wait in spans.iter().filter(|s| s.code == RECEIVE_CODE) {
        let in_function = by_id
            .get(&wait.parent_span_id)
            .is_some_and(|p| !matches!(p.code, PROCESS_CODE | RECEIVE_CODE));
        if in_function && chosen(wait.parent_span_id) {
            waits.entry(wait.parent_span_id).or_default().push(wait);
        }
    }
    for list in waits.values_mut() {
        list.sort_by_key(|w| w.start);
    }
    waits
}

impl InlineCall {
    /// The call, with what its handler's arguments and reply say.
    fn of(called: Called, (arguments, reply): (Option<&str>, Option<String>)) -> Self {
        let first = |text: &str| top_level_items(text).first().map(|a| a.to_string());
        InlineCall {
            called,
            request: arguments.and_then(request_tag),
            asked: arguments.and_then(first),
            answer: reply,
        }
    }
}

/// The function spans of each process (stream), by start.
fn functions_by_process(spans: &[OutSpan]) -> HashMap<u64, Vec<&OutSpan>> {
    let mut by_process: HashMap<u64, Vec<&OutSpan>> = HashMap::new();
    for s in spans
        .iter()
        .filter(|s| !matches!(s.code, PROCESS_CODE | RECEIVE_CODE))
    {
        by_process.entry(s.stream).or_default().push(s);
    }
    for functions in by_process.values_mut() {
        functions.sort_by_key(|s| s.start);
    }
    by_process
}

/// What the answering process did with the request between taking it (`taken` ended) and
/// replying: the arguments of the first function it ran (its callback), and the reply of the
/// first function there that returned `{reply, Reply, State}` (the callback, or the helper it
/// ended in: a tail call leaves the callback no value of its own).
fn handler_values<'v>(
    functions: &HashMap<u64, Vec<&OutSpan>>,
    taken: &OutSpan,
    replied_at: u64,
    values: &'v HashMap<u32, String>,
) -> (Option<&'v str>, Option<String>) {
    let theirs = functions.get(&taken.stream).map_or(&[][..], Vec::as_slice);
    let from = theirs.partition_point(|s| s.start < taken.end);
    let mut handling = theirs[from..].iter().take_while(|s| s.start <= replied_at);
    let text = |s: &OutSpan, slot: usize| {
        let id = s.values[slot];
        values.get(&id).filter(|_| id != 0).map(String::as_str)
    };
    let arguments = theirs
        .get(from)
        .filter(|s| s.start <= replied_at)
        .and_then(|s| text(s, 0));
    let reply = handling.find_map(|s| reply_of(text(s, 1)?));
    (arguments, reply)
}

/// `Reply` of a callback's `{reply, Reply, State}` (Elixir's `{:reply, …}`).
fn reply_of(returned: &str) -> Option<String> {
    match callback_result(returned)?[..] {
        ["reply", reply, _, ..] => Some(reply.to_owned()),
        _ => None,
    }
}

/// A GenServer callback's result summary as its items, the tag without Elixir's colon:
/// `{:reply, {:ok, 1}, %{n: 2}}` → `reply`, `{:ok, 1}`, `%{n: 2}`. None for another value.
pub(super) fn callback_result(returned: &str) -> Option<Vec<&str>> {
    let inner = returned.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut items = top_level_items(inner);
    items[0] = items[0].trim_start_matches(':');
    Some(items)
}

/// A summary's items at its top level, split at the commas outside brackets and strings
/// (`{a, 1}, "x, y", [1, 2]` → `{a, 1}`, `"x, y"`, `[1, 2]`), trimmed.
fn top_level_items(text: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0i32, 0);
    let (mut in_string, mut escaped) = (false, false);
    // A binary's `<<` and `>>` bracket; a map's `=>` and a pid's `<0.9.0>` do not.
    let pair = |i: usize, c: &str| text[i..].starts_with(c) && !text[..i].ends_with(&c[..1]);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            '<' if pair(i, "<<") => depth += 1,
            '>' if pair(i, ">>") => depth -= 1,
            ',' if depth == 0 => {
                items.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(text[start..].trim());
    items
}

/// A request's tag from its handler's arguments summary: the first argument's atom, or its
/// first element's when it is a tuple (`{quote, "sku-1"}, {<0.9.0>, …}, #{}` → `quote`;
/// Elixir's `{:quote, "sku-1"}` → `quote`). None when it starts with no atom.
pub fn request_tag(arguments: &str) -> Option<String> {
    let first = arguments.trim_start().trim_start_matches('{').trim_start();
    let first = first.strip_prefix(':').unwrap_or(first);
    let tag: String = first
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '@')
        .collect();
    let atom = tag.chars().next().is_some_and(|c| c.is_lowercase());
    atom.then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutLink;
    use crate::beam::calls::tests::{span, timed};
    use crate::ring::LinkKind;

    fn linked(mut wait: OutSpan, sent_by: u64, at: u64) -> OutSpan {
        wait.links.push(OutLink {
            kind: LinkKind::Message,
            trace_id: 1,
            span_id: sent_by,
            cause_code: 0,
            cause_ts: at,
            wait_ns: 0,
        });
        wait
    }

    /// `checkout/1` of process 1 asks pricing (2), then stock (3), inline: each server takes
    /// the request, runs `handle_call/3` (value 5: its arguments) and replies.
    fn checkout() -> Vec<OutSpan> {
        let mut spans = vec![
            timed(span(1, 0, PROCESS_CODE, 1), 0, 100_000),
            timed(span(10, 1, 7, 1), 100, 90_000),
            timed(span(2, 0, PROCESS_CODE, 2), 0, 100_000),
            timed(span(3, 0, PROCESS_CODE, 3), 0, 100_000),
        ];
        for (server, (asked, replied)) in [(2u64, (200, 30_000)), (3, (30_500, 60_000))] {
            spans.push(linked(
                timed(
                    span(server * 100, server, RECEIVE_CODE, server),
                    0,
                    asked + 50,
                ),
                10,
                asked,
            ));
            let mut handler = timed(
                span(server * 100 + 1, server, 8, server),
                asked + 60,
                replied,
            );
            handler.values[0] = 5;
            handler.values[1] = 6;
            spans.push(handler);
            spans.push(linked(
                timed(
                    span(11 + server, 10, RECEIVE_CODE, 1),
                    asked + 10,
                    replied + 20,
                ),
                server * 100 + 1,
                replied,
            ));
        }
        spans
    }

    fn values() -> HashMap<u32, String> {
        HashMap::from([
            (5, "{quote, \"sku-1\"}, {<0.9.0>, tag}, #{}".to_owned()),
            (6, "{reply, {ok, 600}, #{n => 1}}".to_owned()),
        ])
    }

    #[test]
    fn each_wait_for_an_answer_asked_for_just_before_is_a_call() {
        let calls = Replies::new(&checkout(), &values()).inline_calls(&HashMap::new());
        let called = |id| {
            calls
                .get(&id)
                .map(|c| (c.called.process, c.request.clone()))
        };
        assert_eq!(called(13), Some((2, Some("quote".to_owned()))));
        assert_eq!(calls[&13].asked.as_deref(), Some("{quote, \"sku-1\"}"));
        assert_eq!(calls[&13].answer.as_deref(), Some("{ok, 600}"));
        assert_eq!(called(14), Some((3, Some("quote".to_owned()))));
        assert_eq!(calls.len(), 2);
    }

    #[test]
    fn a_function_that_is_a_call_or_a_message_nobody_asked_for_is_none() {
        let is_call = HashMap::from([(
            10,
            Called {
                process: 2,
                task: false,
            },
        )]);
        assert!(
            Replies::new(&checkout(), &values())
                .inline_calls(&is_call)
                .is_empty()
        );
        // Stock's answer came though checkout asked stock nothing after its first wait.
        let mut spans = checkout();
        let request = spans.iter_mut().find(|s| s.span_id == 300).unwrap();
        request.links[0].cause_ts = 100;
        let calls = Replies::new(&spans, &values()).inline_calls(&HashMap::new());
        assert_eq!(calls.keys().collect::<Vec<_>>(), [&13]);
    }

    #[test]
    fn a_function_that_is_a_call_is_told_what_it_asked_the_process_it_called() {
        let called = |process| Called {
            process,
            task: false,
        };
        let asked = |calls: HashMap<u64, Called>, chosen: bool| {
            Replies::new(&checkout(), &values())
                .what_calls_asked(&calls, |_| chosen)
                .into_iter()
                .map(|(span, call)| (span, call.called.process, call.request))
                .collect::<Vec<_>>()
        };
        // checkout's call to stock (3): what it asked stock, not pricing (asked first).
        let to_stock = HashMap::from([(10, called(3))]);
        assert_eq!(
            asked(to_stock.clone(), true),
            [(10, 3, Some("quote".into()))]
        );
        assert_eq!(asked(to_stock, false), []);
        // A process it sent nothing is asked nothing.
        assert_eq!(asked(HashMap::from([(10, called(4))]), true), []);
    }

    #[test]
    fn a_wait_that_timed_out_after_a_request_to_one_process_is_a_call_given_up_on() {
        // checkout's first wait (13) timed out: pricing's answer came too late to end it.
        let mut spans = checkout();
        let first = spans.iter_mut().find(|s| s.span_id == 13).unwrap();
        first.links.clear();
        first.end = 20_000;
        let timed_out = HashSet::from([(1, 20_000)]);
        let values = values();
        let replies = Replies::new(&spans, &values);
        let given_up = replies.timed_out_inline_calls(|_| false, &timed_out);
        let (call, waited) = &given_up[&13];
        assert_eq!(call.called.process, 2);
        assert_eq!(call.request.as_deref(), Some("quote"));
        assert_eq!(call.answer.as_deref(), Some("{ok, 600}"), "its late reply");
        assert_eq!(*waited, 20_000 - 210);
        assert_eq!(given_up.len(), 1, "the answered wait is no timeout");
        // The same wait, not timed out (it ended another way), is none.
        let none = replies.timed_out_inline_calls(|_| false, &HashSet::new());
        assert!(none.is_empty());
        // A function given up on as a whole (a client wrapper) is that call, not its wait.
        let wrapper = replies.timed_out_inline_calls(|f| f == 10, &timed_out);
        assert!(wrapper.is_empty());
    }

    #[test]
    fn items_split_at_the_top_level_only() {
        assert_eq!(
            top_level_items("{a, 1}, \"x, \\\"y\", #{k => <<1, 2>>}, <0.9.0>, z"),
            ["{a, 1}", "\"x, \\\"y\"", "#{k => <<1, 2>>}", "<0.9.0>", "z"]
        );
    }

    #[test]
    fn a_requests_tag_is_its_first_atom() {
        let tags = [
            ("{quote, \"sku-1\"}, {<0.9.0>, x}, #{}", "quote"),
            ("{:level, \"sku\"}, {#PID<0.9.0>, x}, %{}", "level"),
            (":stats, {#PID<0.9.0>, x}, %{}", "stats"),
        ];
        for (arguments, tag) in tags {
            assert_eq!(request_tag(arguments).as_deref(), Some(tag), "{arguments}");
        }
        assert_eq!(request_tag("\"text\", x").as_deref(), None);
        assert_eq!(request_tag("{\"sku\", 1}, x").as_deref(), None);
    }
}

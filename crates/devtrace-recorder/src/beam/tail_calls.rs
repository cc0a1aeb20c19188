//! A traced loop's turns put one after another, as the program runs them.
//!
//! A BEAM program loops by calling itself at the end of a clause (`loop(State)` at the end of a
//! `receive`, `client(N) -> call(…), client(N - 1).`): a tail call, which replaces the caller's
//! frame, so the loop runs in constant stack. A trace pattern's return frame breaks that: traced,
//! every turn returns into the one before, so each turn's span nests in the last and ends only
//! when the whole loop does, with the loop's result, or its exception. Read as it is, a loop of
//! a hundred calls to a server is one call inside another a hundred deep; a crash in its last
//! turn fails every turn; and no turn's time is its own. The probes of `--instrument` keep such
//! calls tail calls, and their spans follow one another ([docs/beam.md](../../../docs/beam.md)).
//!
//! **Rule.** A span S is its parent P's tail call when both are functions of the same module
//! run by the same process (the calls `--instrument` keeps tail calls), S is P's last child,
//! began after P did and ended at most [`TAIL_GAP_NS`] before it (any time before it, in a loop
//! of three turns or more whose typical turn did: one turn scheduled out between the two
//! returns, on a busy machine, is no work after the call), and P ended as S did: the same
//! return value, the same exception (but the kill of their process, unless both run one
//! function: a killed process's every open frame carries it), both still running at a
//! window's end, or both ended with their process (killed mid-loop, with no value). A tail call's
//! caller has nothing of its own left to do, so that is what a frame kept only by the trace
//! looks like. Then S moves up beside P, and P ends where S began, with no return value or
//! exception of its own (its turn ended in the call, as under `--instrument`), and says so
//! ([`OutSpan::tail_call`], as the probes' end of a tail call does). A body-recursive
//! call (`1 + depth(N - 1)`) returns another value than its caller, and stays nested. So does
//! an anonymous function (but for a named fun calling itself): whoever it was handed to called
//! it (`lists:foldl/3`, `Enum.reduce/3`, untraced), and its last call returns the caller's value
//! because that function's does — `totals(Ks) -> lists:foldl(fun(K, A) -> A + get(K) end, 0,
//! Ks).` is no loop of `totals/1`.
//!
//! **Comprehensions.** Erlang's compiler makes a list comprehension (`[f(X) || X <- Xs]`, a
//! binary one, a map one) into a function of its own that calls itself for the rest of the
//! list and conses its element onto what that returns: body recursion the program never
//! wrote, one turn an element. Such a function's call of itself as its last child, returning
//! before it, is put beside it the same way, so that the comprehension's turns follow one
//! another as its elements do (a call per element is then a loop of calls, as `lists:map/2`'s
//! are). However long the turn took to return after its call did: a cons is all it has left,
//! so the gap is the scheduler's (a busy machine's can exceed [`TAIL_GAP_NS`]). A function
//! whose last call is a comprehension written in it (`available(Ss) -> [stock(S) || S <-
//! Ss].`) keeps it inside: the comprehension is its body, as `--instrument` records it.

use std::collections::HashMap;

use super::function_names;
use super::{PROCESS_CODE, RECEIVE_CODE};
use crate::OutSpan;
use crate::names::Names;

/// The longest a traced return frame takes to return after the call it kept (the trace's
/// return event, a few hundred nanoseconds here; more when the process is scheduled out
/// between the two). A caller that ends later did something after the call.
pub const TAIL_GAP_NS: u64 = 20_000;

/// Puts each tail call (see the module's rule) beside its caller, which ends where it began.
/// `values` are the summaries by id (equal texts are equal values); `states` the GenServer
/// states by the id of the value they go with: a callback that ended in a helper's call
/// (`handle_call(…) -> reply(…)`) keeps its return value, whose state is the server's after it.
pub fn flatten(
    spans: &mut [OutSpan],
    names: &Names,
    values: &HashMap<u32, String>,
    states: &HashMap<u32, String>,
) {
    let index: HashMap<u64, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let last_child = last_children(spans, &index);
    let (mut turns, mut tail_calls) = (Vec::new(), Vec::new());
    for (callee, s) in spans.iter().enumerate() {
        let Some(&caller) = index.get(&s.parent_span_id) else {
            continue;
        };
        if last_child.get(&caller) != Some(&callee) {
            continue;
        }
        if is_comprehension_turn(&spans[caller], s, names) {
            turns.push(callee);
        } else if is_tail_call(&spans[caller], s, names, values) {
            tail_calls.push((caller, callee));
        }
    }
    let comprehension_turns = turns.len();
    turns.extend(returned_at_once(spans, &tail_calls));
    for &callee in &turns[comprehension_turns..] {
        let caller = index[&spans[callee].parent_span_id];
        spans[caller].tail_call = true;
    }
    turns.sort_by_key(|&i| spans[i].start);
    for callee in turns {
        let caller = index[&spans[callee].parent_span_id];
        let tail_start = spans[callee].start;
        spans[callee].parent_span_id = spans[caller].parent_span_id;
        let turn = &mut spans[caller];
        turn.end = tail_start;
        if !states.contains_key(&turn.values[1]) {
            turn.values[1] = 0;
        }
        turn.values[2] = 0;
        turn.error = None;
        turn.open = false;
        turn.handled.retain(|&(at, _)| at < tail_start);
    }
}

/// A GenServer callback that ended in a call of its module's (`handle_call(…) -> reply(…)`,
/// recorded by `--instrument`'s probes as the callback, then the call beside it) has no
/// return value of its own: it takes that call's, and the state in it (`{reply, R, State}`,
/// `{noreply, State}`) is its state after. A callback is a span with a state before (its
/// arguments' id in `states`); the call it ended in, the next span under its parent on its
/// process, begun as it ended.
pub fn returns_through_tail_calls(
    spans: &mut [OutSpan],
    values: &HashMap<u32, String>,
    states: &mut HashMap<u32, String>,
) {
    let mut next: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        next.entry((s.stream, s.parent_span_id))
            .or_default()
            .push(i);
    }
    for i in 0..spans.len() {
        let callback = &spans[i];
        let waiting = states.contains_key(&callback.values[0])
            && callback.values[1] == 0
            && callback.error.is_none()
            && !callback.open;
        if !waiting {
            continue;
        }
        let siblings = &next[&(callback.stream, callback.parent_span_id)];
        let tail = siblings.iter().copied().find(|&j| {
            j != i
                && spans[j].start.abs_diff(callback.end) <= TAIL_GAP_NS
                && spans[j].values[1] != 0
        });
        let Some(tail) = tail else { continue };
        let returned = spans[tail].values[1];
        let state = values.get(&returned).and_then(|text| {
            let items = super::inline_calls::callback_result(text)?;
            match items[..] {
                ["reply", _, state, ..] | ["noreply", state, ..] => Some(state.to_owned()),
                _ => None,
            }
        });
        if let Some(state) = state {
            spans[i].values[1] = returned;
            states.entry(returned).or_insert(state);
        }
    }
}

/// The tail calls (caller, callee) whose caller returned as they did: within [`TAIL_GAP_NS`],
/// or, in a loop of three turns or more whose typical (lower median) turn does, at any gap —
/// one turn scheduled out between its two returns is the scheduler's, not work after the call
/// (which every turn of a loop would do). The callees.
fn returned_at_once(spans: &[OutSpan], tail_calls: &[(usize, usize)]) -> Vec<usize> {
    let next: HashMap<usize, usize> = tail_calls.iter().copied().collect();
    let callees: std::collections::HashSet<usize> = next.values().copied().collect();
    let gap = |&(caller, callee): &(usize, usize)| spans[caller].end - spans[callee].end;
    let mut kept = Vec::new();
    for &(first, _) in tail_calls.iter().filter(|(c, _)| !callees.contains(c)) {
        let mut chain = Vec::new();
        let mut at = first;
        while let Some(&callee) = next.get(&at) {
            chain.push((at, callee));
            at = callee;
        }
        let mut gaps: Vec<u64> = chain.iter().map(gap).collect();
        gaps.sort_unstable();
        let a_loop_returning_at_once = gaps.len() >= 3 && gaps[(gaps.len() - 1) / 2] <= TAIL_GAP_NS;
        kept.extend(
            chain
                .iter()
                .filter(|link| a_loop_returning_at_once || gap(link) <= TAIL_GAP_NS)
                .map(|&(_, callee)| callee),
        );
    }
    kept
}

/// Each span's child that began last (by index).
fn last_children(spans: &[OutSpan], index: &HashMap<u64, usize>) -> HashMap<usize, usize> {
    let mut last: HashMap<usize, usize> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        let Some(&parent) = index.get(&s.parent_span_id) else {
            continue;
        };
        let entry = last.entry(parent).or_insert(i);
        if (s.start, s.end) > (spans[*entry].start, spans[*entry].end) {
            *entry = i;
        }
    }
    last
}

fn is_tail_call(
    caller: &OutSpan,
    callee: &OutSpan,
    names: &Names,
    values: &HashMap<u32, String>,
) -> bool {
    let function = |s: &OutSpan| !matches!(s.code, PROCESS_CODE | RECEIVE_CODE);
    let module = |s: &OutSpan| names.codes.get(&s.code).and_then(function_names::module_of);
    let same_value = |slot: usize| {
        let text = |s: &OutSpan| values.get(&s.values[slot]).filter(|_| s.values[slot] != 0);
        text(caller).is_some() && text(caller) == text(callee)
    };
    // Calls still running when their process ended (killed, say) end with it, with no value.
    let ended_together = || {
        caller.end == callee.end
            && caller.error == callee.error
            && caller.values[1..] == [0, 0]
            && callee.values[1..] == [0, 0]
    };
    // An anonymous function is called by whoever it was handed to (`lists:foldl/3`, `Enum.map/2`,
    // untraced): its last call returning its caller's value is that function's tail call, not
    // the caller's — but for a named fun's call of itself.
    let anonymous = |s: &OutSpan| {
        names
            .codes
            .get(&s.code)
            .is_some_and(|c| function_names::enclosing_function(&c.span_name()).is_some())
    };
    // A process killed mid-call unwinds every open frame with the kill (`exit:killed`): the
    // same exception in a function and its call then says nothing of where the call was made
    // (`fn -> {b, backend(b)} end` killed in `backend/1`); a loop's turns, one function, are
    // still its turns.
    let killed = |s: &OutSpan| {
        s.error
            .and_then(|e| names.exceptions.get(&e))
            .is_some_and(|text| text == super::vm_stop::KILLED)
    };
    let same_exception = same_value(2) && (caller.code == callee.code || !killed(caller));
    // `available(Skus) -> [stock(S) || S <- Skus].`: the comprehension is the function's
    // body, written there, so its turns stay inside it (as `--instrument` records them, the
    // comprehension's code being the function's own).
    let span_name = |s: &OutSpan| names.codes.get(&s.code).map(|c| c.span_name());
    let body_of_caller = span_name(callee)
        .and_then(|name| function_names::comprehension_in(&name))
        .is_some_and(|outer| span_name(caller).as_deref() == Some(outer.as_str()));
    !body_of_caller
        && function(caller)
        && function(callee)
        && caller.stream == callee.stream
        && module(caller).is_some()
        && module(caller) == module(callee)
        && (caller.code == callee.code || !anonymous(callee))
        && callee.start > caller.start
        && caller.end >= callee.end
        && (same_value(1) || same_exception || (caller.open && callee.open) || ended_together())
}

/// Whether `callee` is the next turn of the comprehension `caller` runs (see the module doc).
fn is_comprehension_turn(caller: &OutSpan, callee: &OutSpan, names: &Names) -> bool {
    let comprehension = names.codes.get(&caller.code).is_some_and(|c| {
        ["-lc$^", "-lbc$^", "-mc$^"]
            .iter()
            .any(|kind| c.qualname.contains(kind))
    });
    comprehension
        && caller.code == callee.code
        && caller.stream == callee.stream
        && callee.start > caller.start
        && caller.end >= callee.end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::calls::{self, tests::timed};
    use crate::names::CodeInfo;

    fn names() -> Names {
        let mut names = Names::default();
        for (code, module, qualname) in [
            (7, "kv", "client/2"),
            (8, "kv", "helper/1"),
            (9, "lists", "map/2"),
            // Erlang's functions, named whole ([`function_names::code_info`]).
            (10, "", "report:-main/1-lc$^0/1-0-/1"),
            (11, "", "report:main/1"),
        ] {
            names.codes.insert(
                code,
                CodeInfo {
                    qualname: qualname.into(),
                    module: module.into(),
                    file: String::new(),
                    line: 0,
                },
            );
        }
        names
    }

    /// A span of process 1 from `start` to `end`.
    fn span(span_id: u64, parent: u64, code: u32, start: u64, end: u64) -> OutSpan {
        timed(calls::tests::span(span_id, parent, code, 1), start, end)
    }

    fn returning(mut s: OutSpan, value: u32) -> OutSpan {
        s.values[1] = value;
        s
    }

    /// `client(3)`, `client(2)`, `client(1)` traced: each turn (a wait, then the next turn)
    /// nests in the last and returns `ok` (value 1) a few hundred nanoseconds after it.
    fn traced_loop() -> Vec<OutSpan> {
        vec![
            span(1, 0, PROCESS_CODE, 0, 10_000),
            returning(span(11, 1, 7, 100, 3_600), 1),
            span(111, 11, RECEIVE_CODE, 100, 1_000),
            returning(span(12, 11, 7, 1_100, 3_400), 2),
            span(121, 12, RECEIVE_CODE, 1_100, 2_000),
            returning(span(13, 12, 7, 2_100, 3_200), 3),
            span(131, 13, RECEIVE_CODE, 2_100, 3_000),
        ]
    }

    fn values() -> HashMap<u32, String> {
        HashMap::from([
            (1, "ok".into()),
            (2, "ok".into()),
            (3, "ok".into()),
            (4, "1".into()),
        ])
    }

    fn by_id(spans: &[OutSpan], id: u64) -> &OutSpan {
        spans.iter().find(|s| s.span_id == id).unwrap()
    }

    #[test]
    fn a_traced_loops_turns_follow_one_another() {
        let mut spans = traced_loop();
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        for (turn, next) in [(11, 12), (12, 13)] {
            assert_eq!(
                by_id(&spans, next).parent_span_id,
                1,
                "turn {next} beside {turn}"
            );
            assert_eq!(by_id(&spans, turn).end, by_id(&spans, next).start);
            assert_eq!(
                by_id(&spans, turn).values[1],
                0,
                "its turn ended in the call"
            );
            assert!(by_id(&spans, turn).tail_call, "turn {turn} says so");
        }
        let last = by_id(&spans, 13);
        assert_eq!((last.start, last.end, last.values[1]), (2_100, 3_200, 3));
        assert!(!last.tail_call, "the last turn returned");
        assert_eq!(
            by_id(&spans, 131).parent_span_id,
            13,
            "each wait stays in its turn"
        );
    }

    #[test]
    fn a_crash_in_the_last_turn_fails_that_turn_only() {
        let mut spans = traced_loop();
        for s in spans.iter_mut().filter(|s| s.code == 7) {
            (s.values[1], s.values[2], s.error) = (0, 4, Some(2));
        }
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        let failed: Vec<u64> = spans
            .iter()
            .filter(|s| s.error.is_some())
            .map(|s| s.span_id)
            .collect();
        assert_eq!(failed, [13]);
    }

    #[test]
    fn a_call_its_killed_process_was_in_stays_in_the_function_that_made_it() {
        // The kill's exception (type 5, "exit:killed", its text value 5 in each frame).
        let mut names = names();
        names.exceptions.insert(5, "exit:killed".into());
        let values = HashMap::from([(5, "exit:killed".to_owned())]);
        let killed = |mut s: OutSpan| {
            (s.error, s.values[2]) = (Some(5), 5);
            s
        };
        // `client/2` killed in `helper/1`, which it called mid-body.
        let mut spans = vec![
            span(1, 0, PROCESS_CODE, 0, 10_000),
            killed(span(11, 1, 7, 100, 5_000)),
            killed(span(12, 11, 8, 200, 5_000)),
        ];
        flatten(&mut spans, &names, &values, &HashMap::new());
        assert_eq!(by_id(&spans, 12).parent_span_id, 11, "a call within it");
        assert!(!by_id(&spans, 11).tail_call);
        // A loop killed in its second turn: still turns one after another.
        let mut spans = vec![
            span(1, 0, PROCESS_CODE, 0, 10_000),
            killed(span(11, 1, 7, 100, 5_000)),
            killed(span(12, 11, 7, 1_100, 5_000)),
        ];
        flatten(&mut spans, &names, &values, &HashMap::new());
        assert_eq!(
            by_id(&spans, 12).parent_span_id,
            1,
            "the next turn beside it"
        );
    }

    #[test]
    fn a_comprehensions_turns_follow_one_another_though_each_returns_its_own_list() {
        // `[gen_server:call(stats, M) || M <- Ms]`: each turn waits, then runs the rest, and
        // conses its element onto what that returns (values 1, 2, 3: three lists).
        let mut spans = traced_loop();
        for s in spans.iter_mut().filter(|s| s.code == 7) {
            s.code = 10;
        }
        let body = |spans: &[OutSpan]| by_id(spans, 12).parent_span_id;
        let mut as_loop = traced_loop();
        as_loop[1].values[1] = 4;
        flatten(&mut as_loop, &names(), &values(), &HashMap::new());
        assert_eq!(
            body(&as_loop),
            11,
            "a function the program wrote stays nested"
        );
        spans[1].values[1] = 4;
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        assert_eq!((body(&spans), by_id(&spans, 13).parent_span_id), (1, 1));
        assert_eq!(by_id(&spans, 11).end, by_id(&spans, 12).start);
        assert!(
            !by_id(&spans, 11).tail_call,
            "a comprehension's turn conses on what the next returns: no tail call"
        );
        // A turn scheduled out before it returned, 200 µs after its next turn: still beside it.
        let mut late = traced_loop();
        for s in late.iter_mut().filter(|s| s.code == 7) {
            s.code = 10;
        }
        late[1].end += 200_000;
        flatten(&mut late, &names(), &values(), &HashMap::new());
        assert_eq!(body(&late), 1);
    }

    #[test]
    fn a_comprehension_its_function_ends_in_stays_inside_it() {
        // `main(Ms) -> [gen_server:call(stats, M) || M <- Ms].`, traced: `main/1` (code 11)
        // returns what the comprehension's first turn does.
        let mut spans = traced_loop();
        for s in spans.iter_mut().filter(|s| s.code == 7) {
            s.code = 10;
        }
        spans.push(returning(span(20, 1, 11, 50, 3_650), 1));
        spans[1].parent_span_id = 20;
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        let parents: Vec<u64> = [11, 12, 13]
            .map(|id| by_id(&spans, id).parent_span_id)
            .to_vec();
        assert_eq!(
            parents,
            [20, 20, 20],
            "the turns, one after another, in main/1"
        );
        assert_eq!(by_id(&spans, 20).end, 3_650);
        assert!(!by_id(&spans, 20).tail_call);
    }

    #[test]
    fn body_recursion_and_work_after_the_call_stay_nested() {
        // `depth(N) -> 1 + depth(N - 1)`: another value than the call's.
        let mut spans = traced_loop();
        spans[1].values[1] = 4;
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 12).parent_span_id, 11);
        assert_eq!(
            by_id(&spans, 13).parent_span_id,
            11,
            "the inner turns are still a loop"
        );
        // A turn that worked on after the call returned.
        let mut spans = traced_loop();
        spans[1].end = 3_400 + TAIL_GAP_NS + 1;
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 12).parent_span_id, 11);
    }

    /// `client(5)` … `client(1)` traced: five turns, each nesting in the last.
    fn traced_loop_of_five() -> Vec<OutSpan> {
        let mut spans = vec![span(1, 0, PROCESS_CODE, 0, 100_000)];
        for turn in 0..5u64 {
            let parent = if turn == 0 { 1 } else { 10 + turn };
            let start = 100 + turn * 1_000;
            spans.push(returning(
                span(11 + turn, parent, 7, start, 6_000 - turn * 200),
                1,
            ));
        }
        spans
    }

    #[test]
    fn a_loops_turn_scheduled_out_before_it_returned_is_still_a_turn() {
        let mut spans = traced_loop_of_five();
        // The second turn returned 200 µs after the third (and the first, at once, after it).
        for s in &mut spans[1..=2] {
            s.end += 200_000;
        }
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        for turn in 12..=15 {
            assert_eq!(
                by_id(&spans, turn).parent_span_id,
                1,
                "turn {turn} beside the others"
            );
        }
        // Every turn working on after its call: body recursion, however many turns.
        let mut spans = traced_loop_of_five();
        for (i, s) in spans.iter_mut().skip(1).enumerate() {
            s.end += 200_000 - i as u64 * 40_000;
        }
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        for turn in 12..=15 {
            assert_eq!(
                by_id(&spans, turn).parent_span_id,
                turn - 1,
                "turn {turn} nested"
            );
        }
    }

    #[test]
    fn a_callback_ending_in_its_helper_keeps_the_value_its_state_goes_with() {
        // `handle_call(…) -> reply(…)`: the helper beside the callback, whose return value
        // (1) carries the server's state after it.
        let mut spans = vec![
            span(1, 0, PROCESS_CODE, 0, 10_000),
            returning(span(11, 1, 7, 100, 3_600), 1),
            returning(span(12, 11, 8, 1_100, 3_500), 2),
        ];
        let states = HashMap::from([(1, "%{count: 2}".to_owned())]);
        flatten(&mut spans, &names(), &values(), &states);
        assert_eq!(by_id(&spans, 12).parent_span_id, 1);
        assert_eq!(by_id(&spans, 11).values[1], 1);
        let mut without = spans.clone();
        without[1] = returning(span(11, 1, 7, 100, 3_600), 1);
        without[2] = returning(span(12, 11, 8, 1_100, 3_500), 2);
        flatten(&mut without, &names(), &values(), &HashMap::new());
        assert_eq!(
            by_id(&without, 11).values[1],
            0,
            "no state: no value of its own"
        );
    }

    #[test]
    fn a_callback_recorded_beside_the_call_it_ended_in_takes_its_value_and_state() {
        // `--instrument`: handle_call (state before: arguments 5) ends at 3_000 where reply/2
        // begins, returning `{:reply, :ok, %{n: 2}}` (6).
        let mut spans = vec![
            span(1, 0, PROCESS_CODE, 0, 10_000),
            span(11, 1, 7, 100, 3_000),
            returning(span(12, 1, 8, 3_000, 3_200), 6),
        ];
        spans[1].values[0] = 5;
        let values = HashMap::from([(6, "{:reply, :ok, %{n: 2}}".to_owned())]);
        let mut states = HashMap::from([(5, "%{n: 1}".to_owned())]);
        returns_through_tail_calls(&mut spans, &values, &mut states);
        assert_eq!(by_id(&spans, 11).values[1], 6);
        assert_eq!(states[&6], "%{n: 2}");
        // Not a callback (no state before): nothing taken.
        let mut plain = spans.clone();
        plain[1].values = [0; 3];
        returns_through_tail_calls(&mut plain, &values, &mut HashMap::new());
        assert_eq!(by_id(&plain, 11).values[1], 0);
    }

    #[test]
    fn a_call_to_another_module_or_not_the_last_child_stays_nested() {
        // `--instrument` keeps only calls of the module's own functions tail calls.
        let mut spans = traced_loop();
        spans[3].code = 9;
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 12).parent_span_id, 11);
        // A helper called after the next turn began is the turn's last child, not the turn.
        let mut spans = traced_loop();
        spans.push(returning(span(14, 11, 8, 3_450, 3_500), 1));
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 12).parent_span_id, 11);
    }

    #[test]
    fn another_modules_function_or_an_anonymous_one_returning_the_same_value_stays_nested() {
        // `fun(K, Acc) -> Acc + kv:get(K) end` with Acc 0: the fun returns what kv:get did.
        let mut names = Names::default();
        names.codes.insert(
            20,
            function_names::code_info("report", "-totals/1-fun-0-", 2),
        );
        names
            .codes
            .insert(21, function_names::code_info("kv", "get", 1));
        let mut spans = vec![
            span(1, 0, PROCESS_CODE, 0, 10_000),
            returning(span(11, 1, 20, 100, 3_600), 1),
            returning(span(12, 11, 21, 200, 3_400), 4),
        ];
        spans[1].values[1] = 4;
        flatten(&mut spans, &names, &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 12).parent_span_id, 11);
        // `totals(Keys) -> lists:foldl(fun(K, Acc) -> … end, 0, Keys).`: the fun's last call
        // returns what totals/1 does, called by lists:foldl/3 (untraced), not a tail call.
        let code = function_names::code_info;
        names
            .codes
            .insert(21, code("report", "-totals/1-fun-0-", 2));
        names.codes.insert(20, code("report", "totals", 1));
        flatten(&mut spans, &names, &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 12).parent_span_id, 11);
        // The same two calls of one module's named functions would be a tail call.
        names.codes.insert(21, code("report", "get", 1));
        flatten(&mut spans, &names, &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 12).parent_span_id, 1);
    }

    #[test]
    fn a_loop_its_process_ended_is_put_in_turns_too() {
        let mut spans = traced_loop();
        for s in spans.iter_mut().filter(|s| s.code == 7) {
            (s.values[1], s.end, s.error) = (0, 9_000, Some(3));
        }
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 13).parent_span_id, 1);
        let failed: Vec<u64> = spans
            .iter()
            .filter(|s| s.error.is_some())
            .map(|s| s.span_id)
            .collect();
        assert_eq!(failed, [13], "the turn the kill ended");
    }

    #[test]
    fn a_loop_still_running_at_the_windows_end_is_put_in_turns_too() {
        let mut spans = traced_loop();
        for s in spans.iter_mut().filter(|s| s.code == 7) {
            (s.values[1], s.end, s.open) = (0, 9_000, true);
        }
        flatten(&mut spans, &names(), &values(), &HashMap::new());
        assert_eq!(by_id(&spans, 13).parent_span_id, 1);
        assert!(!by_id(&spans, 11).open && by_id(&spans, 13).open);
    }
}

//! `gen_statem` callbacks: which calls of a state machine's module are its callbacks, the
//! state and data a callback was given, and the ones it left (docs/beam.md, "gen_statem
//! state"). Terms are read through the NIF API only; nothing allocates but the slices' copies.
//!
//! Modes: `handle_event_function` calls `handle_event(EventType, EventContent, State, Data)`;
//! `state_functions` calls `StateName(EventType, EventContent, Data)` (the state is the
//! function's name). Both return `{next_state, S, D}`, `{keep_state, D}`,
//! `keep_state_and_data`, `{repeat_state, D}`, `repeat_state_and_data`, `{stop, R}`,
//! `{stop, R, D}`, `{stop_and_reply, R, Replies}`, `{stop_and_reply, R, Replies, D}` and their
//! forms with actions; `init/1` returns `{ok, State, Data}` (and `{ok, State, Data, Actions}`).

use crate::ffi::{self, ErlNifEnv, Term};

/// The atoms that recognise `gen_statem` callbacks and their results (atoms are words valid in
/// every env).
pub struct StatemAtoms {
    pub init: Term,
    pub callback_mode: Term,
    handle_event: Term,
    terminate: Term,
    code_change: Term,
    format_status: Term,
    /// Event types that are atoms: `cast`, `info`, `timeout`, `state_timeout`, `internal`,
    /// `enter`.
    event_atoms: [Term; 6],
    /// Tags of event types that are tuples: `{call, From}`, `{timeout, Name}`.
    event_tags: [Term; 2],
    ok: Term,
    next_state: Term,
    keep_state: Term,
    keep_state_and_data: Term,
    repeat_state: Term,
    repeat_state_and_data: Term,
    stop: Term,
    stop_and_reply: Term,
}

impl StatemAtoms {
    pub(crate) fn new(env: *mut ErlNifEnv) -> StatemAtoms {
        let atom = |name: &std::ffi::CStr| {
            // SAFETY: a NUL-terminated name.
            unsafe { ffi::enif_make_atom(env, name.as_ptr()) }
        };
        StatemAtoms {
            init: atom(c"init"),
            callback_mode: atom(c"callback_mode"),
            handle_event: atom(c"handle_event"),
            terminate: atom(c"terminate"),
            code_change: atom(c"code_change"),
            format_status: atom(c"format_status"),
            event_atoms: [
                atom(c"cast"),
                atom(c"info"),
                atom(c"timeout"),
                atom(c"state_timeout"),
                atom(c"internal"),
                atom(c"enter"),
            ],
            event_tags: [atom(c"call"), atom(c"timeout")],
            ok: atom(c"ok"),
            next_state: atom(c"next_state"),
            keep_state: atom(c"keep_state"),
            keep_state_and_data: atom(c"keep_state_and_data"),
            repeat_state: atom(c"repeat_state"),
            repeat_state_and_data: atom(c"repeat_state_and_data"),
            stop: atom(c"stop"),
            stop_and_reply: atom(c"stop_and_reply"),
        }
    }

    /// The (state, data) a call of `function` with `args` of a state machine's module was
    /// given, if it is one of its callbacks that takes them (a state function's state is its
    /// name).
    pub fn given(
        &self,
        env: *mut ErlNifEnv,
        function: Term,
        args: &[Term],
    ) -> Option<(Term, Term)> {
        match *args {
            [_reason, state, data] if function == self.terminate => Some((state, data)),
            [event, _, state, data] if function == self.handle_event => {
                self.is_event_type(env, event).then_some((state, data))
            }
            [event, _, data]
                if function != self.code_change
                    && function != self.format_status
                    && self.is_event_type(env, event) =>
            {
                Some((function, data))
            }
            _ => None,
        }
    }

    fn is_event_type(&self, env: *mut ErlNifEnv, term: Term) -> bool {
        if self.event_atoms.contains(&term) {
            return true;
        }
        tuple(env, term).is_some_and(|e| e.len() == 2 && self.event_tags.contains(&e[0]))
    }

    /// What a callback's `result` left: both, the data only (the state unchanged), or neither.
    /// `init/1`'s result is `{ok, State, Data}` (`is_init`).
    pub fn left(&self, env: *mut ErlNifEnv, is_init: bool, result: Term) -> Option<Left> {
        if result == self.keep_state_and_data || result == self.repeat_state_and_data {
            return Some(Left::Same);
        }
        let items = tuple(env, result)?;
        let tag = *items.first()?;
        Some(match (items.len(), tag) {
            (3 | 4, t) if is_init && t == self.ok => Left::Both(items[1], items[2]),
            (3 | 4, t) if !is_init && t == self.next_state => Left::Both(items[1], items[2]),
            (2 | 3, t) if t == self.keep_state || t == self.repeat_state => Left::Data(items[1]),
            (2, t) if t == self.keep_state_and_data || t == self.repeat_state_and_data => {
                Left::Same
            }
            (2, t) if t == self.stop => Left::Same,
            (3, t) if t == self.stop => Left::Data(items[2]),
            (3, t) if t == self.stop_and_reply => Left::Same,
            (4, t) if t == self.stop_and_reply => Left::Data(items[3]),
            _ => return None,
        })
    }
}

/// What a callback left its machine in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// A state and data (`{next_state, S, D}`, `init/1`'s `{ok, S, D}`).
    Both(Term, Term),
    /// New data, the state it was given (`{keep_state, D}`).
    Data(Term),
    /// The state and data it was given (`keep_state_and_data`).
    Same,
}

/// `{State, Data}`'s text from the two summaries (the state before and after a callback are
/// written the same way, so one callback's after is the next one's before).
pub fn pair(state: &str, data: &str) -> String {
    format!("{{{state}, {data}}}")
}

/// A tuple's elements, without copying them (valid while the term is).
pub(crate) fn tuple<'a>(env: *mut ErlNifEnv, term: Term) -> Option<&'a [Term]> {
    let mut arity = 0;
    let mut array: *const Term = std::ptr::null();
    // SAFETY: a term of this env; the elements are read while it lives (the callers use them
    // within the same trace callback).
    unsafe {
        if ffi::enif_get_tuple(env, term, &mut arity, &mut array) == 0 {
            return None;
        }
        Some(std::slice::from_raw_parts(array, arity as usize))
    }
}

//! The probes an instrumented module calls (sdk/beam's `devtrace_beam_instrument` compiles
//! them into a module's functions, sends and receives from its debug info): the same events a
//! trace callback reports, for the calling process, with none of the VM's trace delivery — no
//! match specification run, no trace term built, no `enabled/3` asked — which is what recording
//! every call and message through `erl_tracer` costs (docs/PERFORMANCE.md).
//!
//! Each probe writes what the [`Tracer`] writes for the trace event it stands for, so
//! everything after the rings reads an instrumented recording as a traced one — but for a
//! call's record, marked [`beam::PROBED_CALL`], so that a call made while the instrumenter
//! swaps a module in, both traced and probed, is kept once. Before `open` (or after a failed
//! one) every probe does nothing.

use std::os::raw::c_int;

use devtrace_recorder::beam;

use crate::ffi::{self, ErlNifEnv, ErlNifPid, Term};
use crate::tracer::{Ending, TRACER, Tag, Tracer};

/// The calling process's pid.
fn caller(env: *mut ErlNifEnv) -> Term {
    let mut pid = ErlNifPid { pid: 0 };
    // SAFETY: a process-bound env (a NIF called by a process).
    unsafe { ffi::enif_self(env, &mut pid) };
    pid.pid
}

/// The arguments the VM passed (`argc` of them).
fn args<'a>(argv: *const Term, argc: c_int) -> &'a [Term] {
    // SAFETY: the VM passes `argc` arguments.
    unsafe { std::slice::from_raw_parts(argv, argc as usize) }
}

fn recording() -> Option<&'static Tracer> {
    TRACER.get()
}

fn arity(env: *mut ErlNifEnv, term: Term) -> u32 {
    let mut n: std::os::raw::c_ulong = 0;
    // SAFETY: a term of this env (not an integer: 0).
    unsafe { ffi::enif_get_ulong(env, term, &mut n) };
    n as u32
}

/// `enter(Module, Function, Args)`: a call of a recorded function; returns `Function`.
pub(crate) unsafe extern "C" fn enter(env: *mut ErlNifEnv, argc: c_int, argv: *const Term) -> Term {
    let a = args(argv, argc);
    if let Some(t) = recording() {
        t.called(env, caller(env), (a[0], a[1]), a[2], beam::PROBED_CALL);
    }
    a[1]
}

/// Records the end of the function `a` names (`Module, Function, Arity, ...`) in the calling
/// process: `value` is what it returned or `{Class, Reason}` (made only while recording).
fn function_ended(
    env: *mut ErlNifEnv,
    a: &[Term],
    value: impl FnOnce() -> Option<Term>,
    ending: Ending,
) {
    if let Some(t) = recording() {
        let function = (a[0], a[1], arity(env, a[2]));
        t.left(env, caller(env), function, value(), ending, true);
    }
}

/// Records a message the calling process sends or matched (`tag`); returns it.
fn message(env: *mut ErlNifEnv, argv: *const Term, argc: c_int, tag: Tag) -> Term {
    let a = args(argv, argc);
    if let Some(t) = recording() {
        t.trace(env, tag, caller(env), a[0], None);
    }
    a[0]
}

/// `leave(Module, Function, Arity, Result)`: its return; returns `Result`.
pub(crate) unsafe extern "C" fn leave(env: *mut ErlNifEnv, argc: c_int, argv: *const Term) -> Term {
    let a = args(argv, argc);
    function_ended(env, a, || Some(a[3]), Ending::Returned);
    a[3]
}

/// `raised(Module, Function, Arity, Class, Reason)`: the exception it ended with (the caller
/// raises it again); returns `Class`.
pub(crate) unsafe extern "C" fn raised(
    env: *mut ErlNifEnv,
    argc: c_int,
    argv: *const Term,
) -> Term {
    let a = args(argv, argc);
    // SAFETY: terms of this env.
    let class_and_reason =
        || Some(unsafe { ffi::enif_make_tuple_from_array(env, a[3..].as_ptr(), 2) });
    function_ended(env, a, class_and_reason, Ending::Raised);
    a[3]
}

/// `tail(Module, Function, Arity)`: its end in a tail call of another function of its module
/// (made next: its span follows this one's rather than nesting in it); returns `Function`.
pub(crate) unsafe extern "C" fn tail(env: *mut ErlNifEnv, argc: c_int, argv: *const Term) -> Term {
    let a = args(argv, argc);
    function_ended(env, a, || None, Ending::TailCall);
    a[1]
}

/// `sent(Message)`: a message about to be sent; returns `Message` (the probe wraps the
/// message of a `!` or `erlang:send`, so the send itself is the program's own).
pub(crate) unsafe extern "C" fn sent(env: *mut ErlNifEnv, argc: c_int, argv: *const Term) -> Term {
    message(env, argv, argc, Tag::Send)
}

/// `sent(Destination, Message)`: the same, where the destination is a variable or a name (so
/// the probe can be given it without evaluating it twice); returns `Message`.
pub(crate) unsafe extern "C" fn sent_to(
    env: *mut ErlNifEnv,
    argc: c_int,
    argv: *const Term,
) -> Term {
    let a = args(argv, argc);
    if let Some(t) = recording() {
        t.trace(env, Tag::Send, caller(env), a[1], Some(a[0]));
    }
    a[1]
}

/// `received(Message)`: the message a `receive` clause matched; returns `Message`.
pub(crate) unsafe extern "C" fn received(
    env: *mut ErlNifEnv,
    argc: c_int,
    argv: *const Term,
) -> Term {
    message(env, argv, argc, Tag::Receive)
}

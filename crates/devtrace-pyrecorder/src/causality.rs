//! Which standard-library functions are causality points, and the keys their records carry.
//!
//! The recorder watches the Python functions of `queue`, `threading`, `concurrent.futures`,
//! `asyncio.queues` and `asyncio.locks` that put, get, set, wait, notify, start, join, submit
//! and complete (their code objects, recognised once by module and qualified name when first
//! called). At a call's
//! start or return it writes a Cause, WaitBegin or Effect record (devtrace-recorder's `ring`)
//! keyed on object identities: the object's address (and for a queue the item's), read from
//! the frame's first fast locals or the return value. No user code runs: no `__repr__`,
//! `__eq__` or `__hash__`, not even an attribute read. (`threading`'s locks are C: the locks
//! recorded modules make while recording write their records themselves, `lock.rs`.)
//!
//! A causality point called inside another on the same thread (a `Queue.get` waits in
//! `Condition.wait`; `Thread.start` waits on an `Event`) records nothing: the outer one says
//! what happened. Each CPython event dispatched costs about as much as the record, so a point
//! asks for as few as it can: one that records only at its start needs no return event, and
//! one that always notifies a condition (`Event.set`, `Queue.put`) has its Cause written by
//! that notify, with no event of its own; one whose wait is a `Condition.wait` it calls only when
//! it has to wait (`Queue.get` on an empty queue, `Event.wait` on an unset event) has its
//! WaitBegin written by that wait, so a call that did not wait dispatches only its return.
//! asyncio's waits are coroutines: they suspend, so they are never outer, and their wait's
//! start is keyed on the coroutine's frame ([`Action::WaitAtSuspension`]).

use devtrace_recorder::ring::{CAUSALITY_KEY_MASK, LinkKind};

/// Where a record's key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// The first argument (`self`).
    Object,
    /// `self` and the second argument (a queue and the item put).
    ObjectAndArgument,
    /// `self` and the return value (a queue and the item got).
    ObjectAndResult,
    /// The second argument, tagged (the future a work item is made for: its run, not its
    /// completion).
    ArgumentTagged,
    /// `self` as it was at the call's start (its WaitBegin): `Future.result` clears its `self`
    /// before it returns.
    ObjectAtStart,
    /// `self`, tagged (a future starting to run: the other side of [`Key::ArgumentTagged`]).
    ObjectTagged,
    /// The second fast local, read at the call's return (asyncio's lock: the waiter's future,
    /// bound only when there was one).
    Argument,
}

/// What a causality point records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Nothing,
    Cause(Key),
    WaitBegin,
    Effect(Key),
    /// An effect only when the call returned `True` (a wait that did not time out).
    EffectIfTrue(Key),
    /// At a start: nothing then; at each suspension of the coroutine a WaitBegin keyed on its
    /// frame (the first is its wait's start), recalled at its return for its effect. asyncio's
    /// tasks interleave on one thread: one wait start a thread would mix them up.
    WaitAtSuspension,
    /// At a return: the `install()` of this devtrace module runs (a module of the standard
    /// library just imported, which devtrace hooks only when a program uses it).
    Install(&'static str),
}

/// A causality point: what it records at its start and at its return.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub link: LinkKind,
    pub at_start: Action,
    pub at_return: Action,
    /// Whether causality points called inside it record nothing (not the thread's whole run).
    pub outer: bool,
    /// Not 0: its Cause is written when the `Condition.notify` this many calls below it starts
    /// (`Event.set` → `notify_all` → `notify`: 2), read from its own frame, so its start needs
    /// no callback of its own (where frames can be read; see [`caused_by_notify`]).
    pub notify_levels: u8,
    /// Whether it is `Condition.notify`, which writes the Cause of such a point.
    pub notifier: bool,
    /// Not 0: its WaitBegin (at its start) is written when the `Condition.wait` this many calls
    /// below it starts (`Queue.get` → `not_empty.wait`: 1), which it calls only when it has to
    /// wait, so its start needs no callback and a call that did not wait writes none (where
    /// frames can be read; see [`waits_in_condition`]).
    pub wait_levels: u8,
    /// Whether it is `Condition.wait`, which writes the WaitBegin of such a point.
    pub opens_wait: bool,
    /// Not empty: the local variable of its frame holding what it returns, bound before it
    /// calls `Condition.notify` (1 call below it) on its way out. Where frames can be read,
    /// that notify writes its Effect (at its return) with that local as the result, so its
    /// return needs no callback either (see [`effect_at_notify`]).
    pub result_local: &'static str,
    /// Whether each of its returns is reached either always or never with its second local
    /// bound (asyncio's lock, whose uncontended paths return before binding the waiter's
    /// future; checked on CPython 3.12 and 3.13): a return reached with it unbound links
    /// nothing, ever, so its callback switches that return off (`DISABLE`, which CPython
    /// applies to that instruction only) and an uncontended `async with lock:` dispatches
    /// nothing from then on.
    pub unbound_returns_never_link: bool,
}

impl Point {
    /// Whether its start writes nothing (an asyncio wait's start, or a point that records
    /// at its return only).
    pub fn nothing_at_start(&self) -> bool {
        matches!(self.at_start, Action::Nothing | Action::WaitAtSuspension)
    }

    /// Whether the point records a Cause at its start and nothing at its return (a put, a
    /// set, a notify): its return needs no callback when nesting is found on the stack.
    pub fn records_only_at_start(&self) -> bool {
        self.outer && matches!(self.at_start, Action::Cause(_)) && self.at_return == Action::Nothing
    }

    /// Whether its start needs no callback: its Cause is written by its notify or its
    /// WaitBegin by its inner wait (`walk`: where frames can be read, which is how those find
    /// it), or it does nothing at its start and counts no nesting (not outer).
    pub fn start_skipped(&self, walk: bool) -> bool {
        (walk && (self.notify_levels > 0 || self.wait_levels > 0))
            || (!self.outer && self.nothing_at_start())
    }
}

const fn point(link: LinkKind, at_start: Action, at_return: Action) -> Point {
    Point {
        link,
        at_start,
        at_return,
        outer: true,
        notify_levels: 0,
        notifier: false,
        wait_levels: 0,
        opens_wait: false,
        result_local: "",
        unbound_returns_never_link: false,
    }
}

/// `p`, whose Cause (at its start) is written by the `Condition.notify` `levels` calls below
/// it instead: one callback per call (the notify's) instead of two. It is also exact where
/// the call fails before it notifies (a `put` on a full queue raising `Full` caused nothing).
const fn caused_by_notify(levels: u8, p: Point) -> Point {
    Point {
        notify_levels: levels,
        ..p
    }
}

/// `p`, a wait whose WaitBegin (at its start) is written by the `Condition.wait` `levels` calls
/// below it instead, reached only when it has to wait: a call that did not wait dispatches its
/// return only, and its Effect has no wait (0). Its Effect's key must not need its start
/// ([`Key::ObjectAtStart`]): a call that did not wait has no start recorded.
const fn waits_in_condition(levels: u8, p: Point) -> Point {
    Point {
        wait_levels: levels,
        ..p
    }
}

/// `p`, whose Effect at its return is written by the `Condition.notify` 1 call below it, which it
/// calls after binding its result to `local` and before it returns (`Queue.get`: `item =
/// self._get(); self.not_full.notify(); return item`): a `get` that did not wait dispatches
/// nothing at all. A call that fails before (`Empty`) got nothing and records nothing.
const fn effect_at_notify(local: &'static str, p: Point) -> Point {
    Point {
        result_local: local,
        ..p
    }
}

/// `p`, whose returns each always or never have its second local bound (see
/// [`Point::unbound_returns_never_link`]).
const fn bound_by_return(p: Point) -> Point {
    Point {
        unbound_returns_never_link: true,
        ..p
    }
}

/// An asyncio coroutine's wait: never an outer point (it suspends; a point of another task that
/// runs meanwhile records).
const fn suspending(link: LinkKind, at_return: Action) -> Point {
    Point {
        outer: false,
        ..point(link, Action::WaitAtSuspension, at_return)
    }
}

/// A `threading` semaphore's `release`: its Cause written by the `Condition.notify` it calls.
const SEMAPHORE_RELEASE: Point = caused_by_notify(
    1,
    point(
        LinkKind::Semaphore,
        Action::Cause(Key::Object),
        Action::Nothing,
    ),
);

/// The causality points by (module, qualified name).
pub(crate) static POINTS: &[(&str, &str, Point)] = &[
    (
        "queue",
        "Queue.put",
        caused_by_notify(
            1,
            point(
                LinkKind::Queue,
                Action::Cause(Key::ObjectAndArgument),
                Action::Nothing,
            ),
        ),
    ),
    (
        "queue",
        "Queue.get",
        waits_in_condition(
            1,
            effect_at_notify(
                "item",
                point(
                    LinkKind::Queue,
                    Action::WaitBegin,
                    Action::Effect(Key::ObjectAndResult),
                ),
            ),
        ),
    ),
    (
        "asyncio.queues",
        "Queue.put_nowait",
        point(
            LinkKind::AsyncioQueue,
            Action::Cause(Key::ObjectAndArgument),
            Action::Nothing,
        ),
    ),
    // Nothing it calls is a point, so it counts no nesting: its start is switched off.
    (
        "asyncio.queues",
        "Queue.get_nowait",
        Point {
            outer: false,
            ..point(
                LinkKind::AsyncioQueue,
                Action::Nothing,
                Action::Effect(Key::ObjectAndResult),
            )
        },
    ),
    (
        "threading",
        "Event.set",
        caused_by_notify(
            2,
            point(LinkKind::Event, Action::Cause(Key::Object), Action::Nothing),
        ),
    ),
    // `self` read at its return: its start may have recorded nothing.
    (
        "threading",
        "Event.wait",
        waits_in_condition(
            1,
            point(
                LinkKind::Event,
                Action::WaitBegin,
                Action::EffectIfTrue(Key::Object),
            ),
        ),
    ),
    // A semaphore is a `Condition` and a counter: its own points name it (the notify and the
    // wait inside them record nothing of their own), like an event's. `BoundedSemaphore`
    // has a `release` of its own; `acquire` returns whether it got the semaphore.
    ("threading", "Semaphore.release", SEMAPHORE_RELEASE),
    ("threading", "BoundedSemaphore.release", SEMAPHORE_RELEASE),
    (
        "threading",
        "Semaphore.acquire",
        waits_in_condition(
            1,
            point(
                LinkKind::Semaphore,
                Action::WaitBegin,
                Action::EffectIfTrue(Key::Object),
            ),
        ),
    ),
    // Not `notify_all`: it calls `notify` (so it is seen), and leaving it out spares every
    // `Event.set` the dispatch of its start and return.
    (
        "threading",
        "Condition.notify",
        Point {
            notifier: true,
            ..point(
                LinkKind::Condition,
                Action::Cause(Key::Object),
                Action::Nothing,
            )
        },
    ),
    (
        "threading",
        "Condition.wait",
        Point {
            opens_wait: true,
            ..point(
                LinkKind::Condition,
                Action::WaitBegin,
                Action::EffectIfTrue(Key::ObjectAtStart),
            )
        },
    ),
    (
        "threading",
        "Thread.start",
        point(
            LinkKind::ThreadStart,
            Action::Cause(Key::Object),
            Action::Nothing,
        ),
    ),
    (
        "threading",
        "Thread._bootstrap_inner",
        Point {
            outer: false,
            ..point(
                LinkKind::ThreadStart,
                Action::Effect(Key::Object),
                Action::Cause(Key::Object),
            )
        },
    ),
    (
        "threading",
        "Thread.join",
        point(
            LinkKind::ThreadJoin,
            Action::WaitBegin,
            Action::Effect(Key::ObjectAtStart),
        ),
    ),
    // A work item is made in `submit` before the worker can take it (`submit` itself returns
    // after it is queued, when a worker may already run it).
    (
        "concurrent.futures.thread",
        "_WorkItem.__init__",
        point(
            LinkKind::FutureJob,
            Action::Cause(Key::ArgumentTagged),
            Action::Nothing,
        ),
    ),
    (
        "concurrent.futures._base",
        "Future.set_running_or_notify_cancel",
        point(
            LinkKind::FutureJob,
            Action::Nothing,
            Action::EffectIfTrue(Key::ObjectTagged),
        ),
    ),
    (
        "concurrent.futures._base",
        "Future.set_result",
        caused_by_notify(
            2,
            point(
                LinkKind::Future,
                Action::Cause(Key::Object),
                Action::Nothing,
            ),
        ),
    ),
    (
        "concurrent.futures._base",
        "Future.set_exception",
        caused_by_notify(
            2,
            point(
                LinkKind::Future,
                Action::Cause(Key::Object),
                Action::Nothing,
            ),
        ),
    ),
    // Its wait is a `Condition.wait` too, but it clears its `self` before it returns: its key is
    // read at its start, which it keeps.
    (
        "concurrent.futures._base",
        "Future.result",
        point(
            LinkKind::Future,
            Action::WaitBegin,
            Action::Effect(Key::ObjectAtStart),
        ),
    ),
    // asyncio.locks: a lock's waiter is the future its `acquire` awaits, the one
    // `_wake_up_first` (from `release`, or an `acquire` cancelled) completes: bound only when
    // there was a waiter, so an uncontended `async with lock:` records nothing.
    (
        "asyncio.locks",
        "Lock.acquire",
        bound_by_return(suspending(
            LinkKind::AsyncioLock,
            Action::Effect(Key::Argument),
        )),
    ),
    (
        "asyncio.locks",
        "Lock._wake_up_first",
        bound_by_return(Point {
            outer: false,
            ..point(
                LinkKind::AsyncioLock,
                Action::Nothing,
                Action::Cause(Key::Argument),
            )
        }),
    ),
    // A semaphore's waiter likewise (`BoundedSemaphore` inherits both): `_wake_up_next` binds
    // it in its loop over the waiters, from `release` or from an `acquire` passing a surplus on.
    // Its return after a loop that found every waiter done has it bound too, naming a future
    // completed already: the links take the first cause while a waiter waited.
    (
        "asyncio.locks",
        "Semaphore.acquire",
        bound_by_return(suspending(
            LinkKind::AsyncioSemaphore,
            Action::Effect(Key::Argument),
        )),
    ),
    (
        "asyncio.locks",
        "Semaphore._wake_up_next",
        bound_by_return(Point {
            outer: false,
            ..point(
                LinkKind::AsyncioSemaphore,
                Action::Nothing,
                Action::Cause(Key::Argument),
            )
        }),
    ),
    (
        "asyncio.locks",
        "Event.set",
        point(
            LinkKind::AsyncioEvent,
            Action::Cause(Key::Object),
            Action::Nothing,
        ),
    ),
    (
        "asyncio.locks",
        "Event.wait",
        suspending(LinkKind::AsyncioEvent, Action::EffectIfTrue(Key::Object)),
    ),
    // `notify_all` calls `notify` (3.12 and 3.13).
    (
        "asyncio.locks",
        "Condition.notify",
        point(
            LinkKind::AsyncioCondition,
            Action::Cause(Key::Object),
            Action::Nothing,
        ),
    ),
    (
        "asyncio.locks",
        "Condition.wait",
        suspending(
            LinkKind::AsyncioCondition,
            Action::EffectIfTrue(Key::Object),
        ),
    ),
    // concurrent.futures.process, once imported: submitting wraps the job with the submitting
    // call's ids (devtrace/_pool.py).
    (
        "concurrent.futures.process",
        "<module>",
        Point {
            outer: false,
            ..point(
                LinkKind::ProcessFuture,
                Action::Nothing,
                Action::Install("devtrace._pool"),
            )
        },
    ),
    // The manager thread completes a job's future with what the worker sent back: the cause
    // is the worker's job (its span carried back, `_pool.py`), not this thread's set_result,
    // which records nothing inside it.
    (
        "concurrent.futures.process",
        "_ExecutorManagerThread.process_result_item",
        point(LinkKind::ProcessFuture, Action::Nothing, Action::Nothing),
    ),
];

/// The index in [`POINTS`] of the function `module.qualname`, if it is a causality point.
pub(crate) fn point_index(module: &str, qualname: &str) -> Option<u32> {
    POINTS
        .iter()
        .position(|(m, q, _)| *m == module && *q == qualname)
        .map(|i| i as u32)
}

/// The link kind of a record at a point's return: a thread's run ending is what its join
/// waits for.
pub(crate) fn link_at_return(point: &Point) -> LinkKind {
    match point.link {
        LinkKind::ThreadStart if !point.outer => LinkKind::ThreadJoin,
        other => other,
    }
}

/// An object's part of a key: its address without the alignment bits.
#[inline(always)]
pub(crate) fn identity(object: usize) -> u64 {
    (object >> 4) as u64
}

/// The key of `key` given `self`, the second argument and the return value (null when not
/// there), or None when one it needs is missing.
#[inline(always)]
pub(crate) fn key_of(key: Key, object: usize, argument: usize, result: usize) -> Option<u64> {
    let mix = |a: usize, b: u64| identity(a).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b;
    let k = match key {
        Key::Object | Key::ObjectAtStart if object != 0 => identity(object),
        Key::ObjectAndArgument if object != 0 && argument != 0 => mix(object, identity(argument)),
        Key::ObjectAndResult if object != 0 && result != 0 => mix(object, identity(result)),
        Key::ArgumentTagged if argument != 0 => mix(argument, 1),
        Key::ObjectTagged if object != 0 => mix(object, 1),
        Key::Argument if argument != 0 => identity(argument),
        _ => return None,
    };
    Some(k & CAUSALITY_KEY_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_sides_of_each_link_compute_the_same_key() {
        let (queue, item) = (0x7f00_1234_5670usize, 0x7f00_9999_0010usize);
        assert_eq!(
            key_of(Key::ObjectAndArgument, queue, item, 0),
            key_of(Key::ObjectAndResult, queue, 0, item)
        );
        assert_ne!(
            key_of(Key::ObjectAndArgument, queue, item, 0),
            key_of(Key::ObjectAndArgument, queue, item + 16, 0)
        );
        let future = 0x7f00_4444_0000usize;
        assert_eq!(
            key_of(Key::ArgumentTagged, 0x7f00_0000_0010, future, 0),
            key_of(Key::ObjectTagged, future, 0, 0)
        );
        assert_ne!(
            key_of(Key::ObjectTagged, future, 0, 0),
            key_of(Key::Object, future, 0, 0)
        );
        assert_eq!(key_of(Key::ObjectAndResult, queue, 0, 0), None);
        // asyncio's lock: the waiter's future, whichever lock's frame reads it.
        let waiter = 0x7f00_5555_0020usize;
        assert_eq!(
            key_of(Key::Argument, 0x7f00_0000_0010, waiter, 0),
            key_of(Key::Argument, 0x7f00_0000_0090, waiter, 0)
        );
        assert_eq!(key_of(Key::Argument, 0x7f00_0000_0010, 0, 0), None);
        assert!(key_of(Key::Object, usize::MAX, 0, 0).unwrap() <= CAUSALITY_KEY_MASK);
    }

    #[test]
    fn a_return_is_switched_off_only_where_its_key_is_the_second_local() {
        let switched: Vec<_> = POINTS
            .iter()
            .filter(|(_, _, p)| p.unbound_returns_never_link)
            .map(|(m, q, _)| (*m, *q))
            .collect();
        assert_eq!(
            switched,
            [
                ("asyncio.locks", "Lock.acquire"),
                ("asyncio.locks", "Lock._wake_up_first"),
                ("asyncio.locks", "Semaphore.acquire"),
                ("asyncio.locks", "Semaphore._wake_up_next")
            ]
        );
        for (m, q, p) in POINTS
            .iter()
            .filter(|(_, _, p)| p.unbound_returns_never_link)
        {
            assert!(
                matches!(
                    p.at_return,
                    Action::Effect(Key::Argument) | Action::Cause(Key::Argument)
                ) && !p.outer,
                "{m}.{q}"
            );
        }
    }

    #[test]
    fn only_points_that_record_a_cause_at_their_start_are_written_by_their_notify() {
        let notifiers: Vec<_> = POINTS.iter().filter(|(_, _, p)| p.notifier).collect();
        assert_eq!(notifiers.len(), 1);
        assert_eq!(
            (notifiers[0].0, notifiers[0].1),
            ("threading", "Condition.notify")
        );
        assert!(notifiers[0].2.records_only_at_start());
        for (m, q, p) in POINTS.iter().filter(|(_, _, p)| p.notify_levels > 0) {
            assert!(p.records_only_at_start(), "{m}.{q}");
        }
        // A wait needs its return (its Effect), and a thread's run is not an outer point.
        for (m, q) in [
            ("queue", "Queue.get"),
            ("threading", "Thread._bootstrap_inner"),
        ] {
            let (_, _, p) = POINTS[point_index(m, q).unwrap() as usize];
            assert!(!p.records_only_at_start(), "{m}.{q}");
        }
    }

    #[test]
    fn only_waits_keyed_at_their_return_have_their_wait_opened_by_an_inner_condition_wait() {
        let openers: Vec<_> = POINTS.iter().filter(|(_, _, p)| p.opens_wait).collect();
        assert_eq!(openers.len(), 1);
        assert_eq!(
            (openers[0].0, openers[0].1),
            ("threading", "Condition.wait")
        );
        let waited: Vec<_> = POINTS
            .iter()
            .filter(|(_, _, p)| p.wait_levels > 0)
            .map(|(m, q, _)| (*m, *q))
            .collect();
        assert_eq!(
            waited,
            [
                ("queue", "Queue.get"),
                ("threading", "Event.wait"),
                ("threading", "Semaphore.acquire")
            ]
        );
        for (m, q, p) in POINTS.iter().filter(|(_, _, p)| p.wait_levels > 0) {
            assert!(p.outer && p.at_start == Action::WaitBegin, "{m}.{q}");
            assert!(
                !matches!(
                    p.at_return,
                    Action::Effect(Key::ObjectAtStart) | Action::EffectIfTrue(Key::ObjectAtStart)
                ),
                "{m}.{q}: a call that did not wait has no start to key its effect"
            );
            // Where frames cannot be read it records its WaitBegin at its start, as before.
            assert!(p.start_skipped(true) && !p.start_skipped(false), "{m}.{q}");
        }
    }

    #[test]
    fn only_a_queue_get_has_its_effect_written_by_its_notify_with_its_result_from_a_local() {
        let at_notify: Vec<_> = POINTS
            .iter()
            .filter(|(_, _, p)| !p.result_local.is_empty())
            .collect();
        assert_eq!(at_notify.len(), 1);
        let (m, q, p) = at_notify[0];
        assert_eq!((*m, *q, p.result_local), ("queue", "Queue.get", "item"));
        assert_eq!(p.at_return, Action::Effect(Key::ObjectAndResult));
    }

    #[test]
    fn every_point_is_named_once() {
        for (i, (m, q, _)) in POINTS.iter().enumerate() {
            assert_eq!(point_index(m, q), Some(i as u32));
        }
        assert_eq!(point_index("queue", "Queue.qsize"), None);
    }
}

//! Happens-before links: causality records as the rings hold them, matched by the builder into
//! links on the waiting call's span pointing at the causing call's span, whatever order the
//! threads' records are read in.

use devtrace_recorder::ring::{
    LinkKind, WAIT_FORGET, WAIT_RECALL, causality_meta, causality_of, unpack,
};
use devtrace_recorder::{
    Builder, BuilderOptions, Event, EventKind, OutLink, OutSpan, StreamEvents,
};

const MS: u64 = 1_000_000;
const KEY: u64 = 0xABCD_1234_5678;

enum R {
    Call(u64, u32),
    Return(u64, u32),
    Cause(u64, LinkKind, u64),
    WaitBegin(u64, LinkKind),
    /// A WaitBegin keyed on a coroutine (an asyncio wait's suspension, or with WAIT_RECALL its end).
    Suspended(u64, LinkKind, u64),
    Effect(u64, LinkKind, u64),
    /// The next call is a step of asyncio task `key` (the event loop resumed it).
    TaskStep(u64, u32),
}

fn stream(id: u64, records: &[R]) -> StreamEvents {
    let event = |ts: u64, meta: u64| unpack(ts, meta).expect("a known kind");
    let plain = |ts, kind, code| Event {
        ts,
        kind,
        code,
        aux: 0,
    };
    StreamEvents {
        stream: id,
        tid: 100 + id,
        first_seq: 0,
        events: records
            .iter()
            .map(|r| match *r {
                R::Call(ts, code) => plain(ts, EventKind::Call, code),
                R::Return(ts, code) => plain(ts, EventKind::Return, code),
                R::Cause(ts, link, key) => event(ts, causality_meta(EventKind::Cause, link, key)),
                R::WaitBegin(ts, link) => event(ts, causality_meta(EventKind::WaitBegin, link, 0)),
                R::Suspended(ts, link, key) => {
                    event(ts, causality_meta(EventKind::WaitBegin, link, key))
                }
                R::Effect(ts, link, key) => event(ts, causality_meta(EventKind::Effect, link, key)),
                R::TaskStep(ts, key) => plain(ts, EventKind::TaskStep, key),
            })
            .collect(),
        lost: 0,
    }
}

fn builder() -> Builder {
    Builder::new(BuilderOptions {
        threshold_ns: MS,
        ..Default::default()
    })
}

fn feed(b: &mut Builder, s: StreamEvents) {
    b.feed(&s, &|_| None);
}

/// The links on every span of function `code`.
fn links_on(spans: &[OutSpan], code: u32) -> Vec<OutLink> {
    spans
        .iter()
        .filter(|s| s.code == code)
        .flat_map(|s| s.links.clone())
        .collect()
}

fn span(spans: &[OutSpan], code: u32) -> &OutSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.code == code).collect();
    assert_eq!(found.len(), 1, "one span of code {code}: {spans:#?}");
    found[0]
}

#[test]
fn a_causality_record_keeps_its_kind_and_48_bit_key() {
    for link in [LinkKind::Queue, LinkKind::RLock, LinkKind::Process] {
        for kind in [EventKind::Cause, EventKind::Effect] {
            let e = unpack(7, causality_meta(kind, link, KEY)).unwrap();
            assert_eq!(e.kind, kind);
            assert_eq!(causality_of(&e), Some((link, KEY)));
        }
    }
    // Bits above 48 are not kept; a call's record is not a causality record.
    let e = unpack(
        7,
        causality_meta(EventKind::Cause, LinkKind::Lock, u64::MAX),
    )
    .unwrap();
    assert_eq!(causality_of(&e), Some((LinkKind::Lock, (1 << 48) - 1)));
    let call = Event {
        ts: 1,
        kind: EventKind::Call,
        code: 3,
        aux: 5,
    };
    assert_eq!(causality_of(&call), None);
}

/// Producer (stream 1): call 5 puts at 20 ms, through short helper 7. Consumer (stream 2):
/// call 6 waits from 1 ms and gets the item at 20.1 ms.
fn producer() -> StreamEvents {
    stream(
        1,
        &[
            R::Call(0, 5),
            R::Call(20 * MS - 50_000, 7),
            R::Cause(20 * MS, LinkKind::Queue, KEY),
            R::Return(20 * MS + 10_000, 7),
            R::Return(21 * MS, 5),
        ],
    )
}

fn consumer() -> StreamEvents {
    stream(
        2,
        &[
            R::Call(0, 6),
            R::WaitBegin(MS, LinkKind::Queue),
            R::Effect(20 * MS + 100_000, LinkKind::Queue, KEY),
            R::Return(22 * MS, 6),
        ],
    )
}

#[test]
fn a_get_links_to_the_span_its_put_was_made_in_whichever_thread_is_read_first() {
    for consumer_first in [true, false] {
        let mut b = builder();
        if consumer_first {
            feed(&mut b, consumer());
            // Its cause is not read yet: the consumer's span waits for it.
            assert!(b.take_spans().is_empty());
            feed(&mut b, producer());
        } else {
            feed(&mut b, producer());
            feed(&mut b, consumer());
        }
        let spans = b.take_spans();
        let (put, get) = (span(&spans, 5), span(&spans, 6));
        assert!(
            spans.iter().all(|s| s.code != 7),
            "the short helper is folded"
        );
        assert_eq!(get.links.len(), 1);
        let link = &get.links[0];
        assert_eq!(link.kind, LinkKind::Queue);
        assert_eq!((link.trace_id, link.span_id), (put.trace_id, put.span_id));
        // The exact function is the short helper, folded into its caller's span.
        assert_eq!(link.cause_code, 7);
        assert_eq!(link.cause_ts, 20 * MS);
        assert_eq!(link.wait_ns, 19 * MS);
        assert!(put.links.is_empty());
    }
}

#[test]
fn each_item_put_is_got_once_first_put_first() {
    let mut b = builder();
    feed(
        &mut b,
        stream(
            1,
            &[
                R::Call(0, 5),
                R::Cause(2 * MS, LinkKind::Queue, KEY),
                R::Return(3 * MS, 5),
                R::Call(4 * MS, 8),
                R::Cause(5 * MS, LinkKind::Queue, KEY),
                R::Return(6 * MS, 8),
            ],
        ),
    );
    feed(
        &mut b,
        stream(
            2,
            &[
                R::Call(0, 6),
                R::Effect(7 * MS, LinkKind::Queue, KEY),
                R::Return(8 * MS, 6),
                R::Call(9 * MS, 9),
                R::Effect(10 * MS, LinkKind::Queue, KEY),
                R::Return(11 * MS, 9),
            ],
        ),
    );
    b.finish_open();
    let spans = b.take_spans();
    let first = span(&spans, 6).links[0].span_id;
    let second = span(&spans, 9).links[0].span_id;
    assert_eq!(first, span(&spans, 5).span_id);
    assert_eq!(second, span(&spans, 8).span_id);
    // Neither waited: nothing began a wait before their gets.
    assert_eq!(span(&spans, 6).links[0].wait_ns, 0);
}

#[test]
fn a_lock_or_semaphore_links_only_a_release_that_came_while_it_waited() {
    for link in [LinkKind::Lock, LinkKind::Semaphore] {
        let mut b = builder();
        feed(
            &mut b,
            stream(
                1,
                &[
                    R::Call(0, 5),
                    R::Cause(2 * MS, link, KEY),
                    R::Cause(12 * MS, link, KEY),
                    R::Return(13 * MS, 5),
                ],
            ),
        );
        feed(
            &mut b,
            stream(
                2,
                &[
                    // Taken free at 2.5 ms (no wait: a semaphore's acquire still says so).
                    R::Call(2 * MS, 4),
                    R::Effect(2 * MS + MS / 2, link, KEY),
                    R::Return(3 * MS, 4),
                    // Waits from 3 ms to 4 ms: the release at 2 ms came before; not this one's.
                    R::Call(3 * MS, 6),
                    R::WaitBegin(3 * MS, link),
                    R::Effect(4 * MS, link, KEY),
                    R::Return(5 * MS, 6),
                    // Waits from 6 ms, released at 12 ms.
                    R::Call(6 * MS, 9),
                    R::WaitBegin(6 * MS, link),
                    R::Effect(12 * MS + 1000, link, KEY),
                    R::Return(14 * MS, 9),
                ],
            ),
        );
        b.finish_open();
        let spans = b.take_spans();
        assert!(span(&spans, 4).links.is_empty(), "{link:?}");
        assert!(span(&spans, 6).links.is_empty(), "{link:?}");
        let got = &span(&spans, 9).links[0];
        assert_eq!(
            (got.kind, got.cause_ts, got.wait_ns),
            (link, 12 * MS, 6 * MS)
        );
    }
}

#[test]
fn a_threads_start_links_its_first_call_and_its_end_links_the_join() {
    let mut b = builder();
    // Stream 1 starts thread KEY in call 5 and joins it; stream 2 is the thread: its run
    // begins (Effect) before any recorded call, its first call 6 ends, then the run ends.
    feed(
        &mut b,
        stream(
            1,
            &[
                R::Call(0, 5),
                R::Cause(MS, LinkKind::ThreadStart, KEY),
                R::WaitBegin(2 * MS, LinkKind::ThreadJoin),
                R::Effect(30 * MS, LinkKind::ThreadJoin, KEY),
                R::Return(31 * MS, 5),
            ],
        ),
    );
    feed(
        &mut b,
        stream(
            2,
            &[
                R::Effect(MS + 500, LinkKind::ThreadStart, KEY),
                R::Call(2 * MS, 6),
                R::Return(29 * MS, 6),
                R::Cause(29 * MS + 500, LinkKind::ThreadJoin, KEY),
            ],
        ),
    );
    b.finish_open();
    let spans = b.take_spans();
    let (starter, run) = (span(&spans, 5), span(&spans, 6));
    assert_eq!(run.links.len(), 1);
    assert_eq!(run.links[0].kind, LinkKind::ThreadStart);
    assert_eq!(run.links[0].span_id, starter.span_id);
    assert_eq!(starter.links.len(), 1);
    let join = &starter.links[0];
    assert_eq!(
        (join.kind, join.span_id, join.cause_code),
        (LinkKind::ThreadJoin, run.span_id, 6)
    );
    assert_eq!(join.wait_ns, 29 * MS + 500 - 2 * MS);
}

/// The spans built from a causing thread (stream 1) and a waiting one (stream 2).
fn spans_of(causing: &[R], waiting: &[R]) -> Vec<OutSpan> {
    let mut b = builder();
    feed(&mut b, stream(1, causing));
    feed(&mut b, stream(2, waiting));
    b.finish_open();
    b.take_spans()
}

/// Asserts whether the span of call 6 (the waiting thread's) has one link, to call 5's span.
fn assert_six_linked_to_five(spans: &[OutSpan], linked: bool, case: &str) {
    let links = links_on(spans, 6);
    assert_eq!(links.len(), linked as usize, "{case}: {links:?}");
    if linked {
        assert_eq!(links[0].span_id, span(spans, 5).span_id, "{case}");
    }
}

/// A step of asyncio task 0x10 (call 7) first, when `on_a_loop`: the thread runs an event loop.
fn loop_steps(on_a_loop: bool) -> Vec<R> {
    if on_a_loop {
        vec![R::TaskStep(0, 0x10), R::Call(0, 7), R::Return(100_000, 7)]
    } else {
        vec![]
    }
}

/// A wait in no recorded call goes on the thread's next recorded call: a thread's run or a
/// pool job starting, or a loop that is not recorded taking an item before the recorded call
/// that handles it. Not on an event loop's thread (one that ran asyncio task steps): asyncio's
/// own callback copying a pool job's result into the future a task awaits is followed by
/// whichever task runs next, which did not wait for it; only a run's start goes on there.
#[test]
fn an_effect_in_no_recorded_call_goes_on_the_next_call_except_on_an_event_loop() {
    for (kind, on_a_loop, linked) in [
        (LinkKind::Queue, false, true),
        (LinkKind::Future, false, true),
        (LinkKind::ThreadStart, false, true),
        (LinkKind::Future, true, false),
        (LinkKind::AsyncioQueue, true, false),
        (LinkKind::ThreadStart, true, true),
        (LinkKind::FutureJob, true, true),
    ] {
        let causing = [
            R::Call(0, 5),
            R::Cause(MS, kind, KEY),
            R::Return(10 * MS, 5),
        ];
        let mut waiting = loop_steps(on_a_loop);
        waiting.extend([
            R::Effect(11 * MS, kind, KEY),
            R::Call(12 * MS, 6),
            R::Return(20 * MS, 6),
        ]);
        let spans = spans_of(&causing, &waiting);
        assert_six_linked_to_five(&spans, linked, &format!("{kind:?}, on a loop {on_a_loop}"));
    }
}

/// A job submitted (or a thread started) by a short call at the bottom of its thread's stack —
/// an asyncio task's step calling `asyncio.to_thread` — keeps that call, so the job's link has
/// a span to point at. A short call that put an item does not (it is not work handed over).
#[test]
fn a_short_bottom_call_that_handed_work_to_another_thread_is_kept_for_the_link() {
    for (kind, kept) in [
        (LinkKind::FutureJob, true),
        (LinkKind::ThreadStart, true),
        (LinkKind::Queue, false),
    ] {
        let submit = [
            R::Call(0, 5),
            R::Cause(100_000, kind, KEY),
            R::Return(200_000, 5),
        ];
        let job = [
            R::Effect(300_000, kind, KEY),
            R::Call(300_000, 6),
            R::Return(5 * MS, 6),
        ];
        let spans = spans_of(&submit, &job);
        let case = format!("{kind:?}");
        assert_eq!(
            spans.iter().any(|s| s.code == 5),
            kept,
            "{case}: {spans:#?}"
        );
        assert_six_linked_to_five(&spans, kept, &case);
    }
}

/// A cause in no recorded call is the thread's last kept call's (a thread's end after its last
/// call returned; a put after the recorded call that made the item), except on an event loop's
/// thread: what its own code or a library's coroutine does between steps of interleaving tasks
/// was not done by the last step kept there.
#[test]
fn a_cause_in_no_recorded_call_is_the_last_kept_calls_except_on_an_event_loop() {
    for (kind, on_a_loop, linked) in [
        (LinkKind::ThreadJoin, false, true),
        (LinkKind::Future, false, true),
        (LinkKind::Queue, false, true),
        (LinkKind::AsyncioQueue, true, false),
        (LinkKind::Future, true, false),
    ] {
        let mut causing = loop_steps(on_a_loop);
        causing.extend([
            R::Call(MS, 5),
            R::Return(5 * MS, 5),
            R::Cause(6 * MS, kind, KEY),
        ]);
        let waiting = [
            R::Call(0, 6),
            R::WaitBegin(MS, kind),
            R::Effect(6 * MS + 500, kind, KEY),
            R::Return(7 * MS, 6),
        ];
        let spans = spans_of(&causing, &waiting);
        assert_six_linked_to_five(&spans, linked, &format!("{kind:?}, on a loop {on_a_loop}"));
    }
}

#[test]
fn an_effect_with_no_cause_is_released_without_a_link_at_the_end() {
    let mut b = builder();
    feed(
        &mut b,
        stream(
            2,
            &[
                R::Call(0, 6),
                R::Effect(MS, LinkKind::Event, KEY),
                R::Return(5 * MS, 6),
            ],
        ),
    );
    assert!(
        b.take_spans().is_empty(),
        "held while its cause may still be read"
    );
    b.finish_open();
    let spans = b.take_spans();
    assert!(span(&spans, 6).links.is_empty());
}

#[test]
fn a_cause_in_a_call_still_running_makes_that_call_a_span_at_the_end() {
    let mut b = builder();
    feed(
        &mut b,
        stream(1, &[R::Call(0, 5), R::Cause(MS, LinkKind::Event, KEY)]),
    );
    feed(
        &mut b,
        stream(
            2,
            &[
                R::Call(0, 6),
                R::Effect(2 * MS, LinkKind::Event, KEY),
                R::Return(3 * MS, 6),
            ],
        ),
    );
    b.finish_open();
    let spans = b.take_spans();
    let setter = span(&spans, 5);
    assert_eq!(span(&spans, 6).links[0].span_id, setter.span_id);
}

#[test]
fn a_link_whose_cause_is_in_a_call_open_for_long_is_released_with_that_call_kept() {
    let mut b = builder();
    feed(
        &mut b,
        stream(1, &[R::Call(0, 5), R::Cause(MS, LinkKind::Event, KEY)]),
    );
    feed(
        &mut b,
        stream(
            2,
            &[
                R::Call(0, 6),
                R::Effect(2 * MS, LinkKind::Event, KEY),
                R::Return(3 * MS, 6),
            ],
        ),
    );
    // The setter's call is still open: the waiter's span waits for it to be known kept.
    assert!(b.take_spans().is_empty());
    // Two seconds later (recorded time), still open: the call is made a span now (its ids
    // given), and the waiter's span goes out linked to it.
    feed(
        &mut b,
        stream(1, &[R::Cause(2_000 * MS, LinkKind::Event, KEY + 1)]),
    );
    let spans = b.take_spans();
    let waiter = span(&spans, 6);
    assert_eq!(waiter.links.len(), 1);
    b.finish_open();
    let rest = b.take_spans();
    let setter = span(&rest, 5);
    assert_eq!(waiter.links[0].span_id, setter.span_id);
}

#[test]
fn a_long_consumer_keeps_its_first_64_links() {
    let mut b = builder();
    let mut producer = vec![R::Call(0, 5)];
    let mut consumer = vec![R::Call(0, 6)];
    for i in 0..100u64 {
        producer.push(R::Cause(MS + i * 10, LinkKind::Queue, KEY + i));
        consumer.push(R::Effect(2 * MS + i * 10, LinkKind::Queue, KEY + i));
    }
    producer.push(R::Return(3 * MS, 5));
    consumer.push(R::Return(4 * MS, 6));
    feed(&mut b, stream(1, &producer));
    feed(&mut b, stream(2, &consumer));
    b.finish_open();
    let spans = b.take_spans();
    let links = &span(&spans, 6).links;
    assert_eq!(links.len(), 64);
    assert!(links.iter().all(|l| l.span_id == span(&spans, 5).span_id));
}

/// A call `code` (a step of an asyncio task) in which a cause of `link` on `key` happens at `ts`.
fn step_causing(ts: u64, code: u32, link: LinkKind, key: u64) -> [R; 3] {
    [
        R::Call(ts - MS, code),
        R::Cause(ts, link, key),
        R::Return(ts + 10, code),
    ]
}

/// The coroutine on `frame` resumed at `ts` in a step of `code`: its wait's start recalled, the
/// effect on `key`, a 10 µs step (kept: a task resumed by what it awaited).
fn step_resumed(ts: u64, code: u32, link: LinkKind, frame: u64, key: u64) -> [R; 4] {
    [
        R::Call(ts, code),
        R::Suspended(ts, link, frame | WAIT_RECALL),
        R::Effect(ts, link, key),
        R::Return(ts + 10_000, code),
    ]
}

#[test]
fn interleaved_asyncio_waits_on_one_thread_each_get_their_own_start() {
    // One thread, two tasks: task A's coroutine (key 0x10) suspends in Lock.acquire at 1 ms,
    // task B's (0x20) in Event.wait at 2 ms (again at 3 ms: a second suspension is not a new
    // start). The lock's release (call 5) at 10 ms wakes A; the set (call 7) at 20 ms wakes B.
    let (a, b_task) = (0x10, 0x20);
    let (lock_waiter, event) = (0x99_0000, 0x77_0000);
    let mut b = builder();
    feed(
        &mut b,
        stream(
            1,
            &[
                R::Call(0, 6),
                R::Suspended(MS, LinkKind::AsyncioLock, a),
                R::Return(MS + 10, 6),
                R::Call(2 * MS, 8),
                R::Suspended(2 * MS, LinkKind::AsyncioEvent, b_task),
                R::Suspended(3 * MS, LinkKind::AsyncioEvent, b_task),
                R::Return(3 * MS + 10, 8),
            ]
            .into_iter()
            .chain(step_causing(10 * MS, 5, LinkKind::AsyncioLock, lock_waiter))
            .chain(step_resumed(
                11 * MS,
                6,
                LinkKind::AsyncioLock,
                a,
                lock_waiter,
            ))
            .chain(step_causing(20 * MS, 7, LinkKind::AsyncioEvent, event))
            .chain(step_resumed(
                21 * MS,
                8,
                LinkKind::AsyncioEvent,
                b_task,
                event,
            ))
            .collect::<Vec<_>>(),
        ),
    );
    b.finish_open();
    let spans = b.take_spans();
    let link_of = |code: u32| {
        let links = links_on(&spans, code);
        assert_eq!(links.len(), 1, "one link on {code}: {spans:#?}");
        links[0].clone()
    };
    let lock = link_of(6);
    assert_eq!(
        (lock.kind, lock.cause_ts, lock.wait_ns),
        (LinkKind::AsyncioLock, 10 * MS, 9 * MS)
    );
    assert_eq!(lock.span_id, span(&spans, 5).span_id);
    let set = link_of(8);
    assert_eq!(
        (set.kind, set.cause_ts, set.wait_ns),
        (LinkKind::AsyncioEvent, 20 * MS, 18 * MS)
    );
    assert_eq!(set.span_id, span(&spans, 7).span_id);
}

#[test]
fn an_asyncio_waiter_links_to_the_wake_that_completed_its_future_not_a_later_one_that_found_it_done()
 {
    // A waiter future at an address an earlier one had (woken at 1 ms); task A's coroutine
    // suspends on it at 2 ms; a release (call 5) completes it at 10 ms; before A runs, another
    // wake (call 7, a second release or a cancelled waiter passing the turn on) finds it done
    // at 12 ms and names it too. A ran because of call 5.
    for link in [LinkKind::AsyncioLock, LinkKind::AsyncioSemaphore] {
        let (a, waiter) = (0x10, 0x99_0000);
        let mut b = builder();
        let records: Vec<R> = step_causing(MS + MS / 2, 3, link, waiter)
            .into_iter()
            .chain([
                R::Call(2 * MS, 6),
                R::Suspended(2 * MS, link, a),
                R::Return(2 * MS + 10, 6),
            ])
            .chain(step_causing(10 * MS, 5, link, waiter))
            .chain(step_causing(12 * MS, 7, link, waiter))
            .chain(step_resumed(13 * MS, 6, link, a, waiter))
            .collect();
        feed(&mut b, stream(1, &records));
        b.finish_open();
        let spans = b.take_spans();
        let links = links_on(&spans, 6);
        assert_eq!(links.len(), 1, "{link:?}: {spans:#?}");
        assert_eq!(
            (links[0].kind, links[0].cause_ts, links[0].wait_ns),
            (link, 10 * MS, 8 * MS),
            "{link:?}"
        );
        assert_eq!(links[0].span_id, span(&spans, 5).span_id, "{link:?}");
    }
}

#[test]
fn a_short_task_step_that_woke_another_is_kept_for_the_link_a_short_threads_call_is_not() {
    // Each causing call lasts 20 µs (under the 1 ms threshold) at the bottom of its stack.
    let short_cause = |ts: u64, code: u32, link: LinkKind, key: u64| {
        [
            R::Call(ts - 10_000, code),
            R::Cause(ts, link, key),
            R::Return(ts + 10_000, code),
        ]
    };
    let (a, waiter) = (0x10, 0x99_0000);
    let mut b = builder();
    let records: Vec<R> = [
        R::Call(MS, 6),
        R::Suspended(MS, LinkKind::AsyncioLock, a),
        R::Return(MS + 10, 6),
    ]
    .into_iter()
    .chain(short_cause(5 * MS, 5, LinkKind::AsyncioLock, waiter))
    .chain(step_resumed(6 * MS, 6, LinkKind::AsyncioLock, a, waiter))
    .collect();
    feed(&mut b, stream(1, &records));
    feed(
        &mut b,
        stream(2, &short_cause(20 * MS, 7, LinkKind::Lock, KEY)),
    );
    feed(
        &mut b,
        stream(
            3,
            &[
                R::Call(15 * MS, 8),
                R::WaitBegin(15 * MS, LinkKind::Lock),
                R::Effect(21 * MS, LinkKind::Lock, KEY),
                R::Return(22 * MS, 8),
            ],
        ),
    );
    b.finish_open();
    let spans = b.take_spans();
    let resumed = links_on(&spans, 6);
    assert_eq!(resumed.len(), 1, "{spans:#?}");
    assert_eq!(resumed[0].span_id, span(&spans, 5).span_id);
    // A thread's short call is not kept for its release: the lock's waiter has no link.
    assert!(spans.iter().all(|s| s.code != 7), "{spans:#?}");
    assert!(span(&spans, 8).links.is_empty());
}

#[test]
fn a_pool_job_links_its_first_call_to_the_remote_submit_and_names_its_last_kept_call() {
    let mut b = builder();
    let submit = (0x1234_u128, 0x55_u64);
    // A job (key KEY) starts in the worker; its first call is short (10 µs) but kept.
    b.remote_cause(LinkKind::ProcessFuture, KEY, MS, 40, submit);
    feed(
        &mut b,
        stream(
            2,
            &[
                R::Effect(2 * MS, LinkKind::ProcessFuture, KEY),
                R::Call(3 * MS, 6),
                R::Return(3 * MS + 10_000, 6),
            ],
        ),
    );
    let (trace_id, span_id, code) = b.end_job(2).expect("the job's call is kept");
    assert_eq!(code, 6);
    // The next job makes no recorded call: its link is dropped at its end, it names nothing.
    b.remote_cause(LinkKind::ProcessFuture, KEY + 16, 4 * MS, 40, submit);
    feed(
        &mut b,
        stream(2, &[R::Effect(5 * MS, LinkKind::ProcessFuture, KEY + 16)]),
    );
    assert_eq!(b.end_job(2), None);
    feed(
        &mut b,
        stream(2, &[R::Call(6 * MS, 7), R::Return(7 * MS + 10, 7)]),
    );
    b.finish_open();
    let spans = b.take_spans();
    let job = span(&spans, 6);
    assert_eq!((job.trace_id, job.span_id), (trace_id, span_id));
    assert_eq!(job.links.len(), 1);
    let link = &job.links[0];
    assert_eq!(
        (
            link.kind,
            link.trace_id,
            link.span_id,
            link.cause_code,
            link.cause_ts,
            link.wait_ns
        ),
        (LinkKind::ProcessFuture, submit.0, submit.1, 40, MS, 0)
    );
    assert!(spans.iter().all(|s| s.code != 7 || s.links.is_empty()));
}

#[test]
fn a_cancelled_asyncio_wait_leaves_no_start_for_the_next_coroutine_at_its_address() {
    // Coroutine frame 0x10 suspends at 1 ms and is cancelled at 5 ms; another coroutine comes to
    // live at the same address, suspends at 20 ms, is woken at 30 ms: it waited 10 ms, not 29.
    let frame = 0x10;
    let waiter = 0x99_0000;
    let mut b = builder();
    feed(
        &mut b,
        stream(
            1,
            &[
                R::Call(0, 6),
                R::Suspended(MS, LinkKind::AsyncioLock, frame),
                R::Suspended(5 * MS, LinkKind::AsyncioLock, frame | WAIT_FORGET),
                R::Return(5 * MS + 10, 6),
                R::Call(20 * MS, 8),
                R::Suspended(20 * MS, LinkKind::AsyncioLock, frame),
                R::Return(20 * MS + 10, 8),
            ]
            .into_iter()
            .chain(step_causing(30 * MS, 5, LinkKind::AsyncioLock, waiter))
            .chain(step_resumed(
                31 * MS,
                8,
                LinkKind::AsyncioLock,
                frame,
                waiter,
            ))
            .collect::<Vec<_>>(),
        ),
    );
    b.finish_open();
    let spans = b.take_spans();
    let links = links_on(&spans, 8);
    assert_eq!(links.len(), 1, "{spans:#?}");
    assert_eq!((links[0].cause_ts, links[0].wait_ns), (30 * MS, 10 * MS));
}

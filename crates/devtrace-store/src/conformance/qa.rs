//! The QA job queue's behaviour, for every backend ([`crate::qa`]).

use super::Factory;
use crate::qa::*;
use crate::*;
use devtrace_model::TraceId;
use std::time::Duration;

pub fn run_all(factory: Factory<'_>) {
    an_active_job_is_not_queued_twice(factory);
    claims_take_the_oldest_job_once(factory);
    only_the_attempt_holding_a_job_writes_its_result(factory);
    handed_back_jobs_run_again_until_their_attempts_are_used(factory);
    cancelling_stops_queued_jobs_and_asks_running_ones(factory);
    concurrent_workers_never_claim_the_same_job(factory);
    listings_counts_and_projection(factory);
    judgements_are_cached_by_session_rubric_and_model(factory);
}

const LEASE: Duration = Duration::from_secs(60);

fn queue(store: &dyn Store) -> &dyn QaQueue {
    store.qa().expect("the backend has a QA queue")
}

fn job(trace: u8) -> NewQaJob {
    NewQaJob {
        trace_id: TraceId([trace; 16]),
        options: format!("{{\"runner\":\"sandbox\",\"n\":{trace}}}"),
        max_attempts: 2,
        retry_of: None,
    }
}

/// Past any lease of zero length taken before it.
fn later() {
    std::thread::sleep(Duration::from_millis(2));
}

fn an_active_job_is_not_queued_twice(factory: Factory<'_>) {
    let (_writer, store) = factory();
    let queue = queue(store.as_ref());
    let (first, created) = queue.enqueue(&job(1)).unwrap();
    assert!(created);
    assert_eq!(first.state, QaJobState::Queued);
    assert_eq!(first.trace_id, TraceId([1; 16]));
    assert_eq!(first.options, "{\"runner\":\"sandbox\",\"n\":1}");
    assert_eq!((first.attempts, first.max_attempts), (0, 2));
    assert!(first.enqueued_unix_nano > 0);
    let (again, created) = queue.enqueue(&job(1)).unwrap();
    assert!(!created, "the queued job is returned");
    assert_eq!(again.id, first.id);
    // Still one active job while it runs.
    queue.claim("w1", LEASE, None).unwrap().unwrap();
    let (running, created) = queue.enqueue(&job(1)).unwrap();
    assert!(!created);
    assert_eq!((running.id, running.state), (first.id, QaJobState::Running));
    // Another session gets its own job; a finished session gets a new one (a retry).
    let (other, created) = queue.enqueue(&job(2)).unwrap();
    assert!(created && other.id != first.id);
    assert!(
        queue
            .finish(
                first.id,
                1,
                QaFinish::Done {
                    result: "{}".into()
                }
            )
            .unwrap()
    );
    let retry = NewQaJob {
        retry_of: Some(first.id),
        ..job(1)
    };
    let (second, created) = queue.enqueue(&retry).unwrap();
    assert!(created && second.id != first.id);
    assert_eq!(second.retry_of, Some(first.id));
}

fn claims_take_the_oldest_job_once(factory: Factory<'_>) {
    let (_writer, store) = factory();
    let queue = queue(store.as_ref());
    assert_eq!(
        queue.claim("w", LEASE, None).unwrap(),
        None,
        "nothing queued"
    );
    let a = queue.enqueue(&job(1)).unwrap().0;
    let b = queue.enqueue(&job(2)).unwrap().0;
    let c = queue.enqueue(&job(3)).unwrap().0;
    // Claiming one job by id leaves the older ones queued.
    let claimed_c = queue.claim("w0", LEASE, Some(c.id)).unwrap().unwrap();
    assert_eq!(claimed_c.id, c.id);
    assert_eq!(queue.claim("w0", LEASE, Some(c.id)).unwrap(), None, "held");
    let first = queue.claim("w1", LEASE, None).unwrap().unwrap();
    assert_eq!(first.id, a.id, "oldest first");
    assert_eq!(first.state, QaJobState::Running);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.worker.as_deref(), Some("w1"));
    let started = first.started_unix_nano.unwrap();
    assert!(started >= first.enqueued_unix_nano);
    assert!(first.lease_expires_unix_nano.unwrap() >= started + LEASE.as_nanos() as u64);
    let second = queue.claim("w2", LEASE, None).unwrap().unwrap();
    assert_eq!(second.id, b.id);
    assert_eq!(queue.claim("w3", LEASE, None).unwrap(), None, "all held");
}

fn only_the_attempt_holding_a_job_writes_its_result(factory: Factory<'_>) {
    let (_writer, store) = factory();
    let queue = queue(store.as_ref());
    let id = queue.enqueue(&job(1)).unwrap().0.id;
    // The first worker takes it with a lease that runs out at once, then goes silent.
    let first = queue.claim("dead", Duration::ZERO, None).unwrap().unwrap();
    assert_eq!(first.attempts, 1);
    later();
    let second = queue.claim("alive", LEASE, None).unwrap().unwrap();
    assert_eq!(
        (second.id, second.attempts),
        (id, 2),
        "the expired lease is taken over"
    );
    assert_eq!(second.worker.as_deref(), Some("alive"));
    // The first worker wakes up: it has lost the job and writes nothing.
    assert_eq!(queue.heartbeat(id, 1, LEASE).unwrap(), Heartbeat::Lost);
    assert!(
        !queue
            .finish(
                id,
                1,
                QaFinish::Done {
                    result: "stale".into()
                }
            )
            .unwrap()
    );
    assert_eq!(queue.heartbeat(id, 2, LEASE).unwrap(), Heartbeat::Held);
    assert!(
        queue
            .finish(
                id,
                2,
                QaFinish::Done {
                    result: "{\"ok\":true}".into()
                }
            )
            .unwrap()
    );
    // Written once: a second finish changes nothing.
    assert!(
        !queue
            .finish(
                id,
                2,
                QaFinish::Done {
                    result: "again".into()
                }
            )
            .unwrap()
    );
    let done = queue.job(id).unwrap().unwrap();
    assert_eq!(done.state, QaJobState::Done);
    assert_eq!(done.result.as_deref(), Some("{\"ok\":true}"));
    assert!(done.finished_unix_nano.is_some());
    assert_eq!(done.lease_expires_unix_nano, None);
    assert_eq!(queue.heartbeat(id, 2, LEASE).unwrap(), Heartbeat::Lost);
    assert_eq!(queue.claim("late", LEASE, None).unwrap(), None);

    // A job whose worker dies on its last attempt fails instead of running a third time.
    let id = queue.enqueue(&job(2)).unwrap().0.id;
    queue.claim("a", Duration::ZERO, None).unwrap().unwrap();
    later();
    queue.claim("b", Duration::ZERO, None).unwrap().unwrap();
    later();
    assert_eq!(queue.claim("c", LEASE, None).unwrap(), None);
    let failed = queue.job(id).unwrap().unwrap();
    assert_eq!(failed.state, QaJobState::Failed);
    assert_eq!(failed.attempts, 2);
    assert!(
        failed.error.as_deref().unwrap().contains("lease expired"),
        "{:?}",
        failed.error
    );

    // A failure keeps what was found.
    let id = queue.enqueue(&job(3)).unwrap().0.id;
    queue.claim("w", LEASE, None).unwrap().unwrap();
    let finish = QaFinish::Failed {
        error: "the patch does not apply".into(),
        result: Some("{\"rejected\":1}".into()),
    };
    assert!(queue.finish(id, 1, finish).unwrap());
    let failed = queue.job(id).unwrap().unwrap();
    assert_eq!(failed.state, QaJobState::Failed);
    assert_eq!(failed.error.as_deref(), Some("the patch does not apply"));
    assert_eq!(failed.result.as_deref(), Some("{\"rejected\":1}"));
}

fn handed_back_jobs_run_again_until_their_attempts_are_used(factory: Factory<'_>) {
    let (_writer, store) = factory();
    let queue = queue(store.as_ref());
    let id = queue.enqueue(&job(1)).unwrap().0.id;
    queue.claim("w", LEASE, None).unwrap().unwrap();
    assert!(
        queue
            .release(id, 1, "clone failed: connection reset")
            .unwrap()
    );
    let again = queue.job(id).unwrap().unwrap();
    assert_eq!(again.state, QaJobState::Queued);
    assert_eq!(
        again.error.as_deref(),
        Some("clone failed: connection reset")
    );
    assert_eq!(again.lease_expires_unix_nano, None);
    assert!(!queue.release(id, 1, "twice").unwrap(), "not held any more");
    let claimed = queue.claim("w", LEASE, None).unwrap().unwrap();
    assert_eq!(claimed.attempts, 2);
    assert!(queue.release(id, 2, "clone failed again").unwrap());
    let failed = queue.job(id).unwrap().unwrap();
    assert_eq!(failed.state, QaJobState::Failed, "no attempts left");
    assert_eq!(failed.error.as_deref(), Some("clone failed again"));
    assert!(failed.finished_unix_nano.is_some());

    // A job that succeeds on a later attempt keeps why the earlier one was handed back.
    let id = queue.enqueue(&job(2)).unwrap().0.id;
    queue.claim("w", LEASE, None).unwrap().unwrap();
    queue.release(id, 1, "its worker stopped").unwrap();
    queue.claim("w", LEASE, None).unwrap().unwrap();
    assert!(
        queue
            .finish(
                id,
                2,
                QaFinish::Done {
                    result: "{}".into()
                }
            )
            .unwrap()
    );
    let done = queue.job(id).unwrap().unwrap();
    assert_eq!(done.state, QaJobState::Done);
    assert_eq!(done.error.as_deref(), Some("its worker stopped"));
}

fn cancelling_stops_queued_jobs_and_asks_running_ones(factory: Factory<'_>) {
    let (_writer, store) = factory();
    let queue = queue(store.as_ref());
    assert_eq!(queue.cancel(404).unwrap(), None);
    let queued = queue.enqueue(&job(1)).unwrap().0.id;
    let cancelled = queue.cancel(queued).unwrap().unwrap();
    assert_eq!(cancelled.state, QaJobState::Cancelled);
    assert!(cancelled.finished_unix_nano.is_some());
    assert_eq!(queue.claim("w", LEASE, None).unwrap(), None, "never runs");

    let running = queue.enqueue(&job(2)).unwrap().0.id;
    queue.claim("w", LEASE, None).unwrap().unwrap();
    let asked = queue.cancel(running).unwrap().unwrap();
    assert_eq!(asked.state, QaJobState::Running, "the worker stops it");
    assert!(asked.cancel_requested);
    assert_eq!(
        queue.heartbeat(running, 1, LEASE).unwrap(),
        Heartbeat::CancelRequested
    );
    assert!(queue.finish(running, 1, QaFinish::Cancelled).unwrap());
    assert_eq!(
        queue.job(running).unwrap().unwrap().state,
        QaJobState::Cancelled
    );
    // A cancelled job handed back is not queued again.
    let handed = queue.enqueue(&job(3)).unwrap().0.id;
    queue.claim("w", LEASE, None).unwrap().unwrap();
    queue.cancel(handed).unwrap();
    assert!(queue.release(handed, 1, "runner crashed").unwrap());
    assert_eq!(
        queue.job(handed).unwrap().unwrap().state,
        QaJobState::Failed
    );

    // Finished jobs stay as they were.
    let done = queue.enqueue(&job(4)).unwrap().0.id;
    queue.claim("w", LEASE, None).unwrap().unwrap();
    queue
        .finish(
            done,
            1,
            QaFinish::Done {
                result: "{}".into(),
            },
        )
        .unwrap();
    let after = queue.cancel(done).unwrap().unwrap();
    assert_eq!(after.state, QaJobState::Done);
    assert!(!after.cancel_requested);
}

fn concurrent_workers_never_claim_the_same_job(factory: Factory<'_>) {
    let (_writer, store) = factory();
    let queue = queue(store.as_ref());
    const JOBS: u8 = 40;
    for trace in 1..=JOBS {
        queue.enqueue(&job(trace)).unwrap();
    }
    let claimed: Vec<Vec<QaJobId>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(job) = queue.claim(&format!("w{w}"), LEASE, None).unwrap() {
                        assert!(
                            queue
                                .finish(
                                    job.id,
                                    job.attempts,
                                    QaFinish::Done {
                                        result: "{}".into()
                                    }
                                )
                                .unwrap()
                        );
                        mine.push(job.id);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<QaJobId> = claimed.into_iter().flatten().collect();
    assert_eq!(all.len(), JOBS as usize, "every job claimed");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), JOBS as usize, "and none twice");
    let done = queue
        .jobs(&QaJobQuery {
            states: vec![QaJobState::Done],
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert!(done.iter().all(|j| j.attempts == 1));
    assert_eq!(done.len(), JOBS as usize);
}

fn listings_counts_and_projection(factory: Factory<'_>) {
    let (_writer, store) = factory();
    let queue = queue(store.as_ref());
    let a = queue.enqueue(&job(1)).unwrap().0.id;
    let b = queue.enqueue(&job(2)).unwrap().0.id;
    let c = queue.enqueue(&job(3)).unwrap().0.id;
    queue.claim("w", LEASE, Some(a)).unwrap().unwrap();
    queue
        .finish(
            a,
            1,
            QaFinish::Done {
                result: "{\"a\":1}".into(),
            },
        )
        .unwrap();
    queue.claim("w", LEASE, Some(b)).unwrap().unwrap();
    let ids = |query: QaJobQuery| -> Vec<QaJobId> {
        queue
            .jobs(&QaJobQuery { limit: 10, ..query })
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect()
    };
    assert_eq!(ids(QaJobQuery::default()), [c, b, a], "newest first");
    assert_eq!(
        ids(QaJobQuery {
            states: vec![QaJobState::Queued, QaJobState::Running],
            ..Default::default()
        }),
        [c, b]
    );
    assert_eq!(
        ids(QaJobQuery {
            trace_id: Some(TraceId([1; 16])),
            ..Default::default()
        }),
        [a]
    );
    let one = queue
        .jobs(&QaJobQuery {
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        queue.job_counts().unwrap(),
        [
            (QaJobState::Queued, 1),
            (QaJobState::Running, 1),
            (QaJobState::Done, 1)
        ]
    );
    assert_eq!(
        ids(QaJobQuery {
            unprojected: true,
            ..Default::default()
        }),
        [a],
        "finished with a result, not yet in its session"
    );
    queue.mark_projected(a).unwrap();
    assert!(queue.job(a).unwrap().unwrap().projected);
    assert_eq!(
        ids(QaJobQuery {
            unprojected: true,
            ..Default::default()
        }),
        Vec::<QaJobId>::new()
    );
}

fn judgements_are_cached_by_session_rubric_and_model(factory: Factory<'_>) {
    let (_writer, store) = factory();
    let queue = queue(store.as_ref());
    let session = TraceId([9; 16]);
    assert_eq!(
        queue.cached_judgement(session, "v1", "gpt-x").unwrap(),
        None
    );
    let first = CachedJudgement {
        prompt_hash: "aa".into(),
        result: "{\"overall\":3}".into(),
    };
    queue
        .store_judgement(session, "v1", "gpt-x", &first)
        .unwrap();
    assert_eq!(
        queue.cached_judgement(session, "v1", "gpt-x").unwrap(),
        Some(first)
    );
    assert_eq!(
        queue.cached_judgement(session, "v1", "claude-y").unwrap(),
        None
    );
    assert_eq!(
        queue.cached_judgement(session, "v2", "gpt-x").unwrap(),
        None
    );
    let replaced = CachedJudgement {
        prompt_hash: "bb".into(),
        result: "{\"overall\":4}".into(),
    };
    queue
        .store_judgement(session, "v1", "gpt-x", &replaced)
        .unwrap();
    assert_eq!(
        queue.cached_judgement(session, "v1", "gpt-x").unwrap(),
        Some(replaced)
    );
}

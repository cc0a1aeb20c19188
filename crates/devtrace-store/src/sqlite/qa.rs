//! The QA job queue on SQLite (`qa_jobs`, `qa_judgements`; migration 8).
//!
//! Every step that reads and then writes runs in one `BEGIN IMMEDIATE` transaction on a
//! connection of the store's pool: SQLite serialises writers, so a claim that selects the
//! oldest claimable job and marks it running cannot interleave with another claim, in this
//! process or any other. The queue's transactions are small and separate from the
//! group-commit writer's (both wait on the busy timeout rather than fail).

use super::{SqliteStore, clamp_i64, unix_now_nanos};
use crate::qa::{
    CachedJudgement, Heartbeat, NewQaJob, QaFinish, QaJob, QaJobId, QaJobQuery, QaJobState, QaQueue,
};
use crate::{Result, StoreError};
use devtrace_model::TraceId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::time::Duration;

pub(super) const MIGRATION: &str = "
    CREATE TABLE qa_jobs (
        id                INTEGER PRIMARY KEY,
        trace_id          BLOB NOT NULL CHECK (length(trace_id) = 16),
        state             TEXT NOT NULL
                          CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        options           TEXT NOT NULL,
        attempts          INTEGER NOT NULL DEFAULT 0,
        max_attempts      INTEGER NOT NULL CHECK (max_attempts >= 1),
        worker            TEXT,
        lease_expires_ns  INTEGER,
        cancel_requested  INTEGER NOT NULL DEFAULT 0,
        retry_of          INTEGER,
        enqueued_ns       INTEGER NOT NULL,
        started_ns        INTEGER,
        finished_ns       INTEGER,
        error             TEXT,
        result            TEXT,
        projected         INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX qa_jobs_active ON qa_jobs(state, id) WHERE state IN ('queued', 'running');
    CREATE INDEX qa_jobs_by_trace ON qa_jobs(trace_id, id);
    CREATE TABLE qa_judgements (
        trace_id     BLOB NOT NULL,
        rubric       TEXT NOT NULL,
        model        TEXT NOT NULL,
        prompt_hash  TEXT NOT NULL,
        result       TEXT NOT NULL,
        created_ns   INTEGER NOT NULL,
        PRIMARY KEY (trace_id, rubric, model)
    ) WITHOUT ROWID;";

const JOB_COLUMNS: &str = "id, trace_id, state, options, attempts, max_attempts, worker,
    lease_expires_ns, cancel_requested, retry_of, enqueued_ns, started_ns, finished_ns, error,
    result, projected";

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QaJob> {
    let trace: Vec<u8> = row.get(1)?;
    let state: String = row.get(2)?;
    let nanos = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(|v| v.max(0) as u64))
    };
    Ok(QaJob {
        id: row.get(0)?,
        project: crate::ProjectId::DEFAULT,
        trace_id: TraceId::from_slice(&trace).unwrap_or_default(),
        state: QaJobState::parse(&state).unwrap_or(QaJobState::Failed),
        options: row.get(3)?,
        attempts: row.get::<_, i64>(4)?.max(0) as u32,
        max_attempts: row.get::<_, i64>(5)?.max(1) as u32,
        worker: row.get(6)?,
        lease_expires_unix_nano: nanos(7)?,
        cancel_requested: row.get(8)?,
        retry_of: row.get(9)?,
        enqueued_unix_nano: nanos(10)?.unwrap_or(0),
        started_unix_nano: nanos(11)?,
        finished_unix_nano: nanos(12)?,
        error: row.get(13)?,
        result: row.get(14)?,
        projected: row.get(15)?,
    })
}

fn load(conn: &Connection, id: QaJobId) -> Result<Option<QaJob>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM qa_jobs WHERE id = ?1"))?
        .query_row(params![id], job_from_row)
        .optional()?)
}

fn lease_end(now: i64, lease: Duration) -> i64 {
    now.saturating_add(clamp_i64(lease.as_nanos().min(u64::MAX as u128) as u64))
}

/// Runs `f` in an immediate (write-locked) transaction on a pooled connection.
fn immediate<T>(
    store: &SqliteStore,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
) -> Result<T> {
    store.with_conn(|conn| {
        // Pooled connections are shared references; an unchecked transaction needs no `&mut`.
        // The connection serves this thread alone until it returns to the pool, by which time
        // the transaction has ended (commit, or rollback on drop).
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    })
}

impl QaQueue for SqliteStore {
    fn enqueue(&self, job: &NewQaJob) -> Result<(QaJob, bool)> {
        immediate(self, |tx| {
            let active: Option<QaJobId> = tx
                .prepare_cached(
                    "SELECT id FROM qa_jobs WHERE trace_id = ?1 AND state IN ('queued', 'running')
                     ORDER BY id LIMIT 1",
                )?
                .query_row(params![&job.trace_id.0[..]], |row| row.get(0))
                .optional()?;
            if let Some(id) = active {
                let found =
                    load(tx, id)?.ok_or_else(|| StoreError::Corrupt("qa job vanished".into()))?;
                return Ok((found, false));
            }
            tx.prepare_cached(
                "INSERT INTO qa_jobs (trace_id, state, options, max_attempts, retry_of, enqueued_ns)
                 VALUES (?1, 'queued', ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                &job.trace_id.0[..],
                job.options,
                i64::from(job.max_attempts.max(1)),
                job.retry_of,
                unix_now_nanos(),
            ])?;
            let id = tx.last_insert_rowid();
            let created =
                load(tx, id)?.ok_or_else(|| StoreError::Corrupt("qa job vanished".into()))?;
            Ok((created, true))
        })
    }

    fn claim(&self, worker: &str, lease: Duration, only: Option<QaJobId>) -> Result<Option<QaJob>> {
        immediate(self, |tx| {
            let now = unix_now_nanos();
            // Jobs whose worker died on their last attempt fail rather than run again.
            tx.prepare_cached(
                "UPDATE qa_jobs SET state = 'failed', finished_ns = ?1,
                     error = coalesce(error || '; ', '') ||
                             'its worker stopped (lease expired) on each of ' || attempts || ' attempts'
                 WHERE state = 'running' AND lease_expires_ns < ?1 AND attempts >= max_attempts",
            )?
            .execute(params![now])?;
            let id: Option<QaJobId> = tx
                .prepare_cached(
                    "SELECT id FROM qa_jobs
                     WHERE (state = 'queued' OR (state = 'running' AND lease_expires_ns < ?1))
                       AND (?2 IS NULL OR id = ?2)
                     ORDER BY id LIMIT 1",
                )?
                .query_row(params![now, only], |row| row.get(0))
                .optional()?;
            let Some(id) = id else {
                return Ok(None);
            };
            tx.prepare_cached(
                "UPDATE qa_jobs SET state = 'running', attempts = attempts + 1, worker = ?2,
                     lease_expires_ns = ?3, started_ns = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, worker, lease_end(now, lease), now])?;
            load(tx, id)
        })
    }

    fn heartbeat(&self, job: QaJobId, attempt: u32, lease: Duration) -> Result<Heartbeat> {
        immediate(self, |tx| {
            let now = unix_now_nanos();
            let cancel: Option<bool> = tx
                .prepare_cached(
                    "UPDATE qa_jobs SET lease_expires_ns = ?3
                     WHERE id = ?1 AND attempts = ?2 AND state = 'running'
                     RETURNING cancel_requested",
                )?
                .query_row(
                    params![job, i64::from(attempt), lease_end(now, lease)],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(match cancel {
                None => Heartbeat::Lost,
                Some(true) => Heartbeat::CancelRequested,
                Some(false) => Heartbeat::Held,
            })
        })
    }

    fn finish(&self, job: QaJobId, attempt: u32, finish: QaFinish) -> Result<bool> {
        let (state, error, result) = finish.into_stored();
        immediate(self, |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE qa_jobs SET state = ?3, error = coalesce(?4, error), result = ?5,
                         finished_ns = ?6, lease_expires_ns = NULL
                     WHERE id = ?1 AND attempts = ?2 AND state = 'running'",
                )?
                .execute(params![
                    job,
                    i64::from(attempt),
                    state.as_str(),
                    error,
                    result,
                    unix_now_nanos()
                ])?;
            Ok(changed == 1)
        })
    }

    fn release(&self, job: QaJobId, attempt: u32, error: &str) -> Result<bool> {
        immediate(self, |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE qa_jobs SET
                         state = CASE WHEN attempts < max_attempts AND NOT cancel_requested
                                      THEN 'queued' ELSE 'failed' END,
                         finished_ns = CASE WHEN attempts < max_attempts AND NOT cancel_requested
                                            THEN NULL ELSE ?4 END,
                         error = ?3, lease_expires_ns = NULL
                     WHERE id = ?1 AND attempts = ?2 AND state = 'running'",
                )?
                .execute(params![job, i64::from(attempt), error, unix_now_nanos()])?;
            Ok(changed == 1)
        })
    }

    fn cancel(&self, job: QaJobId) -> Result<Option<QaJob>> {
        immediate(self, |tx| {
            tx.prepare_cached(
                "UPDATE qa_jobs SET state = 'cancelled', finished_ns = ?2, error = 'cancelled'
                 WHERE id = ?1 AND state = 'queued'",
            )?
            .execute(params![job, unix_now_nanos()])?;
            tx.prepare_cached(
                "UPDATE qa_jobs SET cancel_requested = 1 WHERE id = ?1 AND state = 'running'",
            )?
            .execute(params![job])?;
            load(tx, job)
        })
    }

    fn mark_projected(&self, job: QaJobId) -> Result<()> {
        self.with_conn(|conn| {
            conn.prepare_cached("UPDATE qa_jobs SET projected = 1 WHERE id = ?1")?
                .execute(params![job])?;
            Ok(())
        })
    }

    fn job(&self, job: QaJobId) -> Result<Option<QaJob>> {
        self.with_conn(|conn| load(conn, job))
    }

    fn jobs(&self, query: &QaJobQuery) -> Result<Vec<QaJob>> {
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM qa_jobs WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(trace_id) = query.trace_id {
            sql.push_str(" AND trace_id = ?");
            args.push(trace_id.0.to_vec().into());
        }
        if !query.states.is_empty() {
            sql.push_str(" AND state IN (");
            for (i, state) in query.states.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                args.push(state.as_str().to_owned().into());
            }
            sql.push(')');
        }
        if query.unprojected {
            sql.push_str(
                " AND projected = 0 AND state IN ('done', 'failed') AND result IS NOT NULL",
            );
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push((query.limit.min(i64::MAX as usize) as i64).into());
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(args), job_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn job_counts(&self) -> Result<Vec<(QaJobState, u64)>> {
        self.with_conn(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT state, count(*) FROM qa_jobs GROUP BY state")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut counts = Vec::new();
            for row in rows {
                let (state, count) = row?;
                if let Some(state) = QaJobState::parse(&state) {
                    counts.push((state, count.max(0) as u64));
                }
            }
            counts.sort_by_key(|(state, _)| *state as u8);
            Ok(counts)
        })
    }

    fn cached_judgement(
        &self,
        trace_id: TraceId,
        rubric: &str,
        model: &str,
    ) -> Result<Option<CachedJudgement>> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT prompt_hash, result FROM qa_judgements
                     WHERE trace_id = ?1 AND rubric = ?2 AND model = ?3",
                )?
                .query_row(params![&trace_id.0[..], rubric, model], |row| {
                    Ok(CachedJudgement {
                        prompt_hash: row.get(0)?,
                        result: row.get(1)?,
                    })
                })
                .optional()?)
        })
    }

    fn store_judgement(
        &self,
        trace_id: TraceId,
        rubric: &str,
        model: &str,
        judgement: &CachedJudgement,
    ) -> Result<()> {
        self.with_conn(|conn| {
            conn.prepare_cached(
                "INSERT INTO qa_judgements (trace_id, rubric, model, prompt_hash, result, created_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (trace_id, rubric, model) DO UPDATE SET
                     prompt_hash = excluded.prompt_hash, result = excluded.result,
                     created_ns = excluded.created_ns",
            )?
            .execute(params![
                &trace_id.0[..],
                rubric,
                model,
                judgement.prompt_hash,
                judgement.result,
                unix_now_nanos()
            ])?;
            Ok(())
        })
    }
}

//! The QA job queue on PostgreSQL (`qa_jobs`, `qa_judgements`; migration 4), shared by every
//! node of a team server.
//!
//! Jobs carry their project: a [`PgStore`] handle queues, lists, counts and cancels its own
//! project's jobs and caches its own project's judgements, while workers claim from every
//! project (a worker pool serves the whole store; the job names the project it switches to).
//! Steps that belong to one attempt (heartbeat, finish, release, marking a result written)
//! name the job and attempt, which only the worker holding it knows.
//!
//! - **One active job per session**: a unique partial index on `(project_id, trace_id)` over
//!   queued and running jobs, so two nodes enqueueing the same session at once make one job.
//! - **Claims** take the oldest claimable row with `FOR UPDATE SKIP LOCKED` in a subquery of
//!   the `UPDATE`: workers on any number of nodes skip the rows others are claiming instead of
//!   waiting on them, and never claim the same attempt.
//! - **Times** come from the database's clock (`clock_timestamp()`), so leases mean the same
//!   on every node whatever their clocks say.

use super::{Conn, PgStore};
use crate::qa::{
    CachedJudgement, Heartbeat, NewQaJob, QaFinish, QaJob, QaJobId, QaJobQuery, QaJobState, QaQueue,
};
use crate::{ProjectId, Result, StoreError};
use devtrace_model::TraceId;
use postgres::Row;
use postgres::types::ToSql;
use std::time::Duration;

pub(super) const MIGRATION: &str = "
    CREATE TABLE qa_jobs (
        id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        project_id        bigint NOT NULL,
        trace_id          bytea NOT NULL CHECK (length(trace_id) = 16),
        state             text NOT NULL
                          CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        options           text NOT NULL,
        attempts          integer NOT NULL DEFAULT 0,
        max_attempts      integer NOT NULL CHECK (max_attempts >= 1),
        worker            text,
        lease_expires_ns  bigint,
        cancel_requested  boolean NOT NULL DEFAULT false,
        retry_of          bigint,
        enqueued_ns       bigint NOT NULL,
        started_ns        bigint,
        finished_ns       bigint,
        error             text,
        result            text,
        projected         boolean NOT NULL DEFAULT false
    );
    CREATE INDEX qa_jobs_claimable ON qa_jobs (id) WHERE state IN ('queued', 'running');
    CREATE UNIQUE INDEX qa_jobs_one_active ON qa_jobs (project_id, trace_id)
        WHERE state IN ('queued', 'running');
    CREATE INDEX qa_jobs_by_trace ON qa_jobs (project_id, trace_id, id);
    CREATE INDEX qa_jobs_unprojected ON qa_jobs (id)
        WHERE NOT projected AND state IN ('done', 'failed') AND result IS NOT NULL;
    CREATE TABLE qa_judgements (
        project_id   bigint NOT NULL,
        trace_id     bytea NOT NULL,
        rubric       text NOT NULL,
        model        text NOT NULL,
        prompt_hash  text NOT NULL,
        result       text NOT NULL,
        created_ns   bigint NOT NULL,
        PRIMARY KEY (project_id, trace_id, rubric, model)
    );";

/// The database's clock in Unix nanoseconds (microsecond precision).
macro_rules! now_ns {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000000000)::bigint"
    };
}

macro_rules! job_columns {
    () => {
        "id, project_id, trace_id, state, options, attempts, max_attempts, worker,
         lease_expires_ns, cancel_requested, retry_of, enqueued_ns, started_ns, finished_ns,
         error, result, projected"
    };
}

fn job_from_row(row: &Row) -> QaJob {
    let nanos = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v.max(0) as u64);
    let state: &str = row.get(3);
    QaJob {
        id: row.get(0),
        project: ProjectId(row.get(1)),
        trace_id: TraceId::from_slice(row.get::<_, &[u8]>(2)).unwrap_or_default(),
        state: QaJobState::parse(state).unwrap_or(QaJobState::Failed),
        options: row.get(4),
        attempts: row.get::<_, i32>(5).max(0) as u32,
        max_attempts: row.get::<_, i32>(6).max(1) as u32,
        worker: row.get(7),
        lease_expires_unix_nano: nanos(8),
        cancel_requested: row.get(9),
        retry_of: row.get(10),
        enqueued_unix_nano: nanos(11).unwrap_or(0),
        started_unix_nano: nanos(12),
        finished_unix_nano: nanos(13),
        error: row.get(14),
        result: row.get(15),
        projected: row.get(16),
    }
}

fn lease_nanos(lease: Duration) -> i64 {
    lease.as_nanos().min(i64::MAX as u128) as i64
}

fn attempt(attempt: u32) -> i32 {
    attempt.min(i32::MAX as u32) as i32
}

fn load(conn: &mut Conn, id: QaJobId, project: ProjectId) -> Result<Option<QaJob>> {
    let statement = conn.prepared(concat!(
        "SELECT ",
        job_columns!(),
        " FROM qa_jobs WHERE id = $1 AND project_id = $2"
    ))?;
    Ok(conn
        .client
        .query_opt(&statement, &[&id, &project.0])?
        .map(|row| job_from_row(&row)))
}

impl QaQueue for PgStore {
    fn enqueue(&self, job: &NewQaJob) -> Result<(QaJob, bool)> {
        let project = self.project.0;
        let trace: &[u8] = &job.trace_id.0;
        let max_attempts = attempt(job.max_attempts.max(1));
        self.with_conn(|conn| {
            // The insert yields to an active job (the unique index); that job may end before
            // it is read, and then a new one can be made: try again.
            for _ in 0..5 {
                let insert = conn.prepared(concat!(
                    "INSERT INTO qa_jobs (project_id, trace_id, state, options, max_attempts,
                         retry_of, enqueued_ns)
                     VALUES ($1, $2, 'queued', $3, $4, $5, ",
                    now_ns!(),
                    ")
                     ON CONFLICT (project_id, trace_id) WHERE state IN ('queued', 'running')
                     DO NOTHING
                     RETURNING ",
                    job_columns!()
                ))?;
                let params: [&(dyn ToSql + Sync); 5] =
                    [&project, &trace, &job.options, &max_attempts, &job.retry_of];
                if let Some(row) = conn.client.query_opt(&insert, &params)? {
                    return Ok((job_from_row(&row), true));
                }
                let active = conn.prepared(concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM qa_jobs WHERE project_id = $1 AND trace_id = $2
                       AND state IN ('queued', 'running')"
                ))?;
                if let Some(row) = conn.client.query_opt(&active, &[&project, &trace])? {
                    return Ok((job_from_row(&row), false));
                }
            }
            Err(StoreError::Database(format!(
                "could not queue QA of {}: its active job kept changing",
                job.trace_id.to_hex()
            )))
        })
    }

    fn claim(&self, worker: &str, lease: Duration, only: Option<QaJobId>) -> Result<Option<QaJob>> {
        let project = self.project.0;
        self.with_conn(|conn| {
            let mut tx = conn.client.transaction()?;
            let now: i64 = tx.query_one(concat!("SELECT ", now_ns!()), &[])?.get(0);
            // Jobs whose worker died on their last attempt fail rather than run again.
            tx.execute(
                "UPDATE qa_jobs SET state = 'failed', finished_ns = $1,
                     error = coalesce(error || '; ', '') ||
                             'its worker stopped (lease expired) on each of ' || attempts || ' attempts'
                 WHERE state = 'running' AND lease_expires_ns < $1 AND attempts >= max_attempts",
                &[&now],
            )?;
            let row = tx.query_opt(
                concat!(
                    "UPDATE qa_jobs SET state = 'running', attempts = attempts + 1, worker = $2,
                         lease_expires_ns = $1 + $3, started_ns = $1
                     WHERE id = (
                         SELECT id FROM qa_jobs
                         WHERE (state = 'queued' OR (state = 'running' AND lease_expires_ns < $1))
                           AND ($4::bigint IS NULL OR (id = $4 AND project_id = $5))
                         ORDER BY id
                         FOR UPDATE SKIP LOCKED
                         LIMIT 1)
                     RETURNING ",
                    job_columns!()
                ),
                &[&now, &worker, &lease_nanos(lease), &only, &project],
            )?;
            tx.commit()?;
            Ok(row.map(|row| job_from_row(&row)))
        })
    }

    fn heartbeat(&self, job: QaJobId, attempt_number: u32, lease: Duration) -> Result<Heartbeat> {
        self.with_conn(|conn| {
            let statement = conn.prepared(concat!(
                "UPDATE qa_jobs SET lease_expires_ns = ",
                now_ns!(),
                " + $3
                 WHERE id = $1 AND attempts = $2 AND state = 'running'
                 RETURNING cancel_requested"
            ))?;
            let row = conn.client.query_opt(
                &statement,
                &[&job, &attempt(attempt_number), &lease_nanos(lease)],
            )?;
            Ok(match row.map(|r| r.get::<_, bool>(0)) {
                None => Heartbeat::Lost,
                Some(true) => Heartbeat::CancelRequested,
                Some(false) => Heartbeat::Held,
            })
        })
    }

    fn finish(&self, job: QaJobId, attempt_number: u32, finish: QaFinish) -> Result<bool> {
        let (state, error, result) = finish.into_stored();
        self.with_conn(|conn| {
            let statement = conn.prepared(concat!(
                "UPDATE qa_jobs SET state = $3, error = coalesce($4, error), result = $5,
                     finished_ns = ",
                now_ns!(),
                ", lease_expires_ns = NULL
                 WHERE id = $1 AND attempts = $2 AND state = 'running'"
            ))?;
            let changed = conn.client.execute(
                &statement,
                &[
                    &job,
                    &attempt(attempt_number),
                    &state.as_str(),
                    &error,
                    &result,
                ],
            )?;
            Ok(changed == 1)
        })
    }

    fn release(&self, job: QaJobId, attempt_number: u32, error: &str) -> Result<bool> {
        self.with_conn(|conn| {
            let statement = conn.prepared(concat!(
                "UPDATE qa_jobs SET
                     state = CASE WHEN attempts < max_attempts AND NOT cancel_requested
                                  THEN 'queued' ELSE 'failed' END,
                     finished_ns = CASE WHEN attempts < max_attempts AND NOT cancel_requested
                                        THEN NULL ELSE ",
                now_ns!(),
                " END,
                     error = $3, lease_expires_ns = NULL
                 WHERE id = $1 AND attempts = $2 AND state = 'running'"
            ))?;
            let changed = conn
                .client
                .execute(&statement, &[&job, &attempt(attempt_number), &error])?;
            Ok(changed == 1)
        })
    }

    fn cancel(&self, job: QaJobId) -> Result<Option<QaJob>> {
        let project = self.project.0;
        self.with_conn(|conn| {
            let mut tx = conn.client.transaction()?;
            tx.execute(
                concat!(
                    "UPDATE qa_jobs SET state = 'cancelled', finished_ns = ",
                    now_ns!(),
                    ", error = 'cancelled'
                     WHERE id = $1 AND project_id = $2 AND state = 'queued'"
                ),
                &[&job, &project],
            )?;
            tx.execute(
                "UPDATE qa_jobs SET cancel_requested = true
                 WHERE id = $1 AND project_id = $2 AND state = 'running'",
                &[&job, &project],
            )?;
            let row = tx.query_opt(
                concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM qa_jobs WHERE id = $1 AND project_id = $2"
                ),
                &[&job, &project],
            )?;
            tx.commit()?;
            Ok(row.map(|row| job_from_row(&row)))
        })
    }

    fn mark_projected(&self, job: QaJobId) -> Result<()> {
        self.with_conn(|conn| {
            let statement = conn.prepared("UPDATE qa_jobs SET projected = true WHERE id = $1")?;
            conn.client.execute(&statement, &[&job])?;
            Ok(())
        })
    }

    fn job(&self, job: QaJobId) -> Result<Option<QaJob>> {
        self.with_conn(|conn| load(conn, job, self.project))
    }

    fn jobs(&self, query: &QaJobQuery) -> Result<Vec<QaJob>> {
        let mut sql = format!("SELECT {} FROM qa_jobs WHERE true", job_columns!());
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut arg = |sql: &mut String, value: Box<dyn ToSql + Sync>| {
            args.push(value);
            sql.push_str(&format!("${}", args.len()));
        };
        if !query.all_projects {
            sql.push_str(" AND project_id = ");
            arg(&mut sql, Box::new(self.project.0));
        }
        if let Some(trace_id) = query.trace_id {
            sql.push_str(" AND trace_id = ");
            arg(&mut sql, Box::new(trace_id.0.to_vec()));
        }
        if !query.states.is_empty() {
            sql.push_str(" AND state = ANY(");
            let states: Vec<String> = query.states.iter().map(|s| s.as_str().to_owned()).collect();
            arg(&mut sql, Box::new(states));
            sql.push(')');
        }
        if query.unprojected {
            sql.push_str(
                " AND NOT projected AND state IN ('done', 'failed') AND result IS NOT NULL",
            );
        }
        sql.push_str(" ORDER BY id DESC LIMIT ");
        arg(
            &mut sql,
            Box::new(query.limit.min(i64::MAX as usize) as i64),
        );
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        self.with_conn(|conn| {
            Ok(conn
                .client
                .query(&sql, &params)?
                .iter()
                .map(job_from_row)
                .collect())
        })
    }

    fn job_counts(&self) -> Result<Vec<(QaJobState, u64)>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT state, count(*) FROM qa_jobs WHERE project_id = $1 GROUP BY state",
            )?;
            let mut counts: Vec<(QaJobState, u64)> = conn
                .client
                .query(&statement, &[&self.project.0])?
                .iter()
                .filter_map(|row| {
                    let state = QaJobState::parse(row.get::<_, &str>(0))?;
                    Some((state, row.get::<_, i64>(1).max(0) as u64))
                })
                .collect();
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
            let statement = conn.prepared(
                "SELECT prompt_hash, result FROM qa_judgements
                 WHERE project_id = $1 AND trace_id = $2 AND rubric = $3 AND model = $4",
            )?;
            let trace: &[u8] = &trace_id.0;
            Ok(conn
                .client
                .query_opt(&statement, &[&self.project.0, &trace, &rubric, &model])?
                .map(|row| CachedJudgement {
                    prompt_hash: row.get(0),
                    result: row.get(1),
                }))
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
            let statement = conn.prepared(concat!(
                "INSERT INTO qa_judgements
                     (project_id, trace_id, rubric, model, prompt_hash, result, created_ns)
                 VALUES ($1, $2, $3, $4, $5, $6, ",
                now_ns!(),
                ")
                 ON CONFLICT (project_id, trace_id, rubric, model) DO UPDATE SET
                     prompt_hash = excluded.prompt_hash, result = excluded.result,
                     created_ns = excluded.created_ns"
            ))?;
            let trace: &[u8] = &trace_id.0;
            conn.client.execute(
                &statement,
                &[
                    &self.project.0,
                    &trace,
                    &rubric,
                    &model,
                    &judgement.prompt_hash,
                    &judgement.result,
                ],
            )?;
            Ok(())
        })
    }
}

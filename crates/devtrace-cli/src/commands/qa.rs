//! `devtrace qa`: queue, watch and read QA of development sessions.
//!
//! With a `devtrace serve` running on the data directory, jobs are queued through its REST
//! API (its workers run them at once); without one they are queued in the store, and
//! `--wait` runs the job here. On a PostgreSQL store (a team server) jobs are queued in the
//! database of the chosen project, where the workers of every `serve` node claim them;
//! `--wait` runs the job here when no worker has taken it within a few seconds. Reading
//! (`status`, `show`) goes to the store either way.

use super::serve::RunningServe;
use crate::cli::{QaCommand, QaSettingsArgs};
use crate::config::StoreChoice;
use crate::output::{eprintln_safe, print_fitted, print_json};
use crate::usage::usage;
use anyhow::{Context, Result, anyhow, bail};
use devtrace_model::TraceId;
use devtrace_qa::options::QaOverrides;
use devtrace_qa::result::{QaResult, Verdict};
use devtrace_qa::view::{JobView, job_view, render, render_status, session_qa};
use devtrace_qa::{DirectSink, QaContext, QaOptions};
use devtrace_query::sessions::resolve_session;
use devtrace_store::qa::{QaJob, QaJobId, QaJobQuery, QaJobState, QaQueue};
use devtrace_store::{Store, StoreLocation, StoreWriter};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A job's lease when this command runs it.
const LEASE: Duration = Duration::from_secs(30);

/// How long `--wait` on a team store waits for a server's worker to take a job before it runs
/// the job itself.
const UNCLAIMED_GRACE: Duration = Duration::from_secs(3);

/// The store QA works on, and where its clones and checkouts go.
struct Target<'a> {
    choice: &'a StoreChoice,
    store: Arc<dyn Store>,
    /// The embedded store's directory (a `devtrace serve` on it is found by `serve.json`);
    /// `None` for a PostgreSQL store.
    embedded: Option<PathBuf>,
}

impl Target<'_> {
    /// The running server on the embedded store's directory, which queues and runs jobs.
    fn serve(&self) -> Option<RunningServe> {
        self.embedded.as_deref().and_then(RunningServe::find)
    }
}

pub fn run(choice: &StoreChoice, command: &QaCommand) -> Result<ExitCode> {
    let store = choice.open()?;
    if store.qa().is_none() {
        bail!(
            "{} keeps no QA job queue{}",
            devtrace_model::recorded::escape(&choice.location.describe()),
            choice
                .location
                .missing_queue_hint()
                .map(|hint| format!(": {hint}"))
                .unwrap_or_default()
        );
    }
    let dir = Target {
        choice,
        store,
        embedded: match &choice.location {
            StoreLocation::Embedded(dir) => Some(dir.clone()),
            _ => None,
        },
    };
    let data = Some(choice.data_dir.as_path());
    match command {
        QaCommand::Run {
            session,
            wait,
            settings,
            json,
        } => queue_and_report(&dir, session, &overrides(settings), *wait, *json),
        QaCommand::Status { state, limit, json } => status(&dir, state, *limit, *json),
        QaCommand::Show { session, json } => show(&dir, session, *json, data),
        QaCommand::Cancel { target, json } => cancel(&dir, target, *json),
        QaCommand::Retry { target, wait, json } => retry(&dir, target, *wait, *json),
    }
}

fn overrides(settings: &QaSettingsArgs) -> QaOverrides {
    QaOverrides {
        runner: settings.runner.map(|r| r.kind()),
        timeout_secs: settings.timeout.map(|nanos| (nanos / 1_000_000_000).max(1)),
        memory_mib: settings.memory,
        max_processes: settings.max_processes,
        test_command: settings.test_command.clone(),
        repository: settings.repo.as_deref().map(absolute_repository),
        commit: settings.commit.clone(),
        llm_judge: settings.no_llm.then_some(false),
    }
}

/// A local path given on the command line, made absolute (a URL is left as it is).
fn absolute_repository(text: &str) -> String {
    if text.contains("://") || text.contains('@') {
        return text.to_owned();
    }
    std::fs::canonicalize(text)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| text.to_owned())
}

fn queue(store: &dyn Store) -> Result<&dyn QaQueue> {
    store
        .qa()
        .ok_or_else(|| anyhow!("this store keeps no QA queue"))
}

// --- the running server's REST API ------------------------------------------------------------

/// The running server's API, through devtrace-client.
fn client(serve: &RunningServe) -> Result<devtrace_client::Client> {
    let options = devtrace_client::ClientOptions {
        read_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    Ok(devtrace_client::Client::parse(
        &devtrace_query::links::base(serve.api),
        options,
    )?)
}

/// A REST call to the running server: its status and JSON answer. A POST is sent once (it
/// queues a job); a GET is retried where a retry may help.
fn call(
    serve: &RunningServe,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let client = client(serve)?;
    let reply = match method {
        "POST" => {
            let body = body.map_or_else(Vec::new, |b| b.to_string().into_bytes());
            client.post_json(path, &body)?
        }
        _ => client.get(path, "application/json")?,
    };
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((reply.status, value))
}

/// Queues a job through the running server (`POST path`): its number and whether it is new.
fn queue_through(
    serve: &RunningServe,
    path: &str,
    body: Option<&Value>,
) -> Result<(QaJobId, bool)> {
    let (status, answer) = call(serve, "POST", path, body)?;
    if status != 202 {
        bail!("{}", api_error(&answer));
    }
    let id = answer["job"]["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("the server answered without a job: {answer}"))?;
    Ok((id, answer["created"] == json!(true)))
}

fn api_error(value: &Value) -> String {
    value["error"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string())
}

// --- commands ---------------------------------------------------------------------------------

fn queue_and_report(
    dir: &Target<'_>,
    session: &str,
    overrides: &QaOverrides,
    wait: bool,
    json: bool,
) -> Result<ExitCode> {
    let store = &*dir.store;
    let trace_id =
        resolve_session(store, session).map_err(|e| super::sessions::no_such_session(store, e))?;
    if let Some(serve) = dir.serve() {
        let body = serde_json::to_value(overrides)?;
        let path = format!("/api/v1/sessions/{}/qa", trace_id.to_hex());
        let (id, created) = queue_through(&serve, &path, Some(&body))?;
        return follow(dir, id, created, wait, json, Some(&serve));
    }
    let options = match overrides.apply(&QaOptions::default()) {
        Ok(options) => options,
        Err((name, why)) => usage!("--{}: {why}", flag_of(name)),
    };
    let (job, created) = devtrace_qa::enqueue(store, trace_id, &options, None)?;
    follow(dir, job.id, created, wait, json, None)
}

/// The flag that sets a setting.
fn flag_of(setting: &str) -> &str {
    match setting {
        "timeout_secs" => "timeout",
        "memory_mib" => "memory",
        "max_processes" => "max-processes",
        "test_command" => "test-command",
        "repository" => "repo",
        other => other,
    }
}

/// After queueing job `id`: report it, or wait for it (running it here without a server).
fn follow(
    dir: &Target<'_>,
    id: QaJobId,
    created: bool,
    wait: bool,
    json: bool,
    serve: Option<&RunningServe>,
) -> Result<ExitCode> {
    let store = &*dir.store;
    let job = queue(store)?
        .job(id)?
        .ok_or_else(|| anyhow!("job {id} vanished"))?;
    if !wait {
        let view = job_view(&job);
        if json {
            print_json(&json!({"job": view, "created": created, "server": serve.is_some()}))?;
        } else {
            let what = if created {
                "queued"
            } else {
                "already queued or running:"
            };
            let mut text = format!(
                "{what} QA job {} for session {}\n",
                job.id,
                job.trace_id.to_hex()
            );
            text.push_str(&match serve {
                Some(serve) => format!(
                    "the running devtrace serve (API on {}) runs it; follow with `devtrace qa status`, read it with `devtrace qa show {}`\n",
                    serve.api,
                    &job.trace_id.to_hex()[..8]
                ),
                None if dir.embedded.is_none() => format!(
                    "queued in {}: the workers of a devtrace serve on it run it; follow with `devtrace qa status`, or run it now with `devtrace qa run {} --wait`\n",
                    devtrace_model::recorded::escape(&dir.choice.location.describe()),
                    &job.trace_id.to_hex()[..8]
                ),
                None => format!(
                    "no devtrace serve is running on {}: it runs when one starts, or now with `devtrace qa run {} --wait`\n",
                    dir.choice.data_dir.display(),
                    &job.trace_id.to_hex()[..8]
                ),
            });
            print_fitted(&text)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let job = match serve {
        Some(_) => wait_for(store, id, None)?.ok_or_else(|| anyhow!("job {id} vanished"))?,
        // A team store: a server's worker may take it; if none does soon, run it here.
        None if dir.embedded.is_none() => match wait_for(store, id, Some(UNCLAIMED_GRACE))? {
            Some(job) => job,
            None => run_here(dir, id)?,
        },
        None => run_here(dir, id)?,
    };
    report(store, &job, json)
}

/// Waits for a job someone else runs; with `grace`, gives up (`None`) when no worker has
/// claimed it by then.
fn wait_for(store: &dyn Store, id: QaJobId, grace: Option<Duration>) -> Result<Option<QaJob>> {
    let queue = queue(store)?;
    let mut announced = false;
    let mut ended: Option<std::time::Instant> = None;
    let started = std::time::Instant::now();
    loop {
        let job = queue.job(id)?.ok_or_else(|| anyhow!("job {id} vanished"))?;
        if job.state == QaJobState::Queued && grace.is_some_and(|g| started.elapsed() >= g) {
            return Ok(None);
        }
        if !job.state.is_active() {
            // Its result goes into the session a moment after the job ends.
            let since = *ended.get_or_insert_with(std::time::Instant::now);
            if job.projected || job.result.is_none() || since.elapsed() > Duration::from_secs(10) {
                return Ok(Some(job));
            }
        }
        if job.state == QaJobState::Running && !announced {
            eprintln_safe!(
                "job {id} is running on {}…",
                devtrace_model::recorded::escape(job.worker.as_deref().unwrap_or("a worker"))
            );
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs a job in this process (no server is running, or none took it), in the chosen
/// project; clones and checkouts go under the data directory.
fn run_here(dir: &Target<'_>, id: QaJobId) -> Result<QaJob> {
    let (writer, reader) = dir.choice.open_writer()?;
    let llm = devtrace_qa::judge::llm::LlmConfig::from_env(|k| std::env::var(k).ok())
        .map_err(|e| anyhow!(e))?;
    let data = dir
        .embedded
        .clone()
        .unwrap_or_else(|| dir.choice.data_dir.clone());
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create {}", crate::output::path(&data)))?;
    let ctx = QaContext::in_data_dir(
        &data,
        reader,
        Arc::new(DirectSink(Mutex::new(writer as Box<dyn StoreWriter>))),
        crate::config::default_redaction()?,
        llm,
    );
    if dir.embedded.is_some() {
        eprintln_safe!("running QA job {id} here (no devtrace serve is running)…");
    } else {
        eprintln_safe!("running QA job {id} here (no devtrace serve worker took it)…");
    }
    Ok(devtrace_qa::worker::run_now(&ctx, id, LEASE)?)
}

/// Prints a finished job's session QA; the exit code says how it went.
fn report(store: &dyn Store, job: &QaJob, json: bool) -> Result<ExitCode> {
    let qa = session_qa(store, job.trace_id)?;
    if json {
        print_json(&qa)?;
    } else {
        print_fitted(&render(&qa, false))?;
    }
    let result: Option<QaResult> = job
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    Ok(match (job.state, result.map(|r| r.verdict)) {
        (QaJobState::Done, Some(v)) if v.is_pass() => ExitCode::SUCCESS,
        (QaJobState::Done, Some(Verdict::BrokeTests | Verdict::Unresolved)) => ExitCode::from(3),
        _ => ExitCode::from(1),
    })
}

fn status(dir: &Target<'_>, states: &[QaJobState], limit: usize, json: bool) -> Result<ExitCode> {
    let queue = queue(&*dir.store)?;
    let states = states.to_vec();
    let counts = queue.job_counts()?;
    let jobs: Vec<JobView> = queue
        .jobs(&QaJobQuery {
            states,
            limit,
            ..Default::default()
        })?
        .iter()
        .map(job_view)
        .collect();
    if json {
        let counts: serde_json::Map<String, Value> = counts
            .iter()
            .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
            .collect();
        print_json(&json!({"counts": counts, "jobs": jobs}))?;
    } else {
        print_fitted(&render_status(
            &counts,
            &jobs,
            crate::output::terminal_width(),
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show(dir: &Target<'_>, session: &str, json: bool, data: Option<&Path>) -> Result<ExitCode> {
    let store = &*dir.store;
    let trace_id =
        resolve_session(store, session).map_err(|e| super::sessions::no_such_session(store, e))?;
    let qa = session_qa(store, trace_id)?;
    if json {
        print_json(&qa)?;
    } else {
        let mut text = render(&qa, false);
        text.push_str(&super::serve::web_link_line(
            data,
            &devtrace_query::links::session(&trace_id.to_hex(), None),
        ));
        print_fitted(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A job number, or the session whose newest job (active ones first) is meant.
fn target_job(store: &dyn Store, target: &str, active_only: bool) -> Result<QaJob> {
    let queue = queue(store)?;
    if let Ok(id) = target.parse::<QaJobId>()
        && !(target.len() >= 8 && target.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return queue
            .job(id)?
            .ok_or_else(|| anyhow!("no QA job {id}: `devtrace qa status` lists them"));
    }
    let trace_id: TraceId =
        resolve_session(store, target).map_err(|e| super::sessions::no_such_session(store, e))?;
    let jobs = queue.jobs(&QaJobQuery {
        trace_id: Some(trace_id),
        limit: 20,
        ..Default::default()
    })?;
    let found = if active_only {
        jobs.into_iter().find(|j| j.state.is_active())
    } else {
        jobs.into_iter().next()
    };
    found.ok_or_else(|| {
        anyhow!(
            "session {} has no {}QA job",
            trace_id.to_hex(),
            if active_only {
                "queued or running "
            } else {
                ""
            }
        )
    })
}

fn cancel(dir: &Target<'_>, target: &str, json: bool) -> Result<ExitCode> {
    let store = &*dir.store;
    let job = target_job(store, target, true)?;
    let after = queue(store)?
        .cancel(job.id)?
        .ok_or_else(|| anyhow!("job {} vanished", job.id))?;
    if json {
        print_json(&job_view(&after))?;
    } else {
        let text = match after.state {
            QaJobState::Cancelled => format!("cancelled QA job {}\n", after.id),
            QaJobState::Running => format!(
                "asked QA job {} to stop: its worker ({}) ends it at its next heartbeat\n",
                after.id,
                after.worker.as_deref().unwrap_or("?")
            ),
            state => format!(
                "QA job {} had already ended ({})\n",
                after.id,
                state.as_str()
            ),
        };
        print_fitted(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn retry(dir: &Target<'_>, target: &str, wait: bool, json: bool) -> Result<ExitCode> {
    let store = &*dir.store;
    let old = target_job(store, target, false)?;
    if let Some(serve) = dir.serve() {
        let path = format!("/api/v1/qa/jobs/{}/retry", old.id);
        let (id, created) = queue_through(&serve, &path, None)?;
        return follow(dir, id, created, wait, json, Some(&serve));
    }
    let (job, created) = devtrace_qa::retry(store, old.id)?;
    follow(dir, job.id, created, wait, json, None)
}

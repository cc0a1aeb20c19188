//! `devtrace demo`: the journal-generation story, end to end.
//!
//! Starts an embedded store and receivers on free ports, runs the `journal-demo` program (a
//! real program instrumented with the OpenTelemetry SDK, in examples/journal) N times, then
//! prints what `perf` and `insights` say. With `--fixed` it also runs the fixed program (the
//! three LLM calls concurrently) and compares: the measured saving next to the predicted one.
//! With `--store URL` the runs go to that store (a team's PostgreSQL) instead.

use super::analysis::finding_text;
use crate::cli::{ColorChoice, DemoArgs};
use crate::output::eprintln_safe;
use crate::output::print_fitted;
use anyhow::{Context, Result, bail};
use devtrace_analyze::AnalyzedTrace;
use devtrace_query::timefmt::format_duration;
use devtrace_store::writer::Writer;
use devtrace_store::{Store, StoreLocation};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const OPERATION: &str = "journal.generate";
const PROGRAM: &str = "journal-demo";
/// Virtual time between the starts of consecutive runs.
const RUN_SPACING_MS: u64 = 20_000;

/// `store` is `--store` when given (with `--project`); otherwise the demo writes to `data` or a
/// fresh temporary directory.
pub fn run(
    data: Option<&Path>,
    store: Option<crate::config::StoreChoice>,
    args: &DemoArgs,
    _color: ColorChoice,
) -> Result<ExitCode> {
    if args.runs < 2 {
        crate::usage::usage!("--runs must be at least 2");
    }
    let program = find_program()?;
    // Without --data (or --store) the demo never touches the user's store: a fresh temporary
    // one, removed when the demo ends (also on an error: `_temporary` is dropped last).
    let mut _temporary = None;
    let choice = match store {
        Some(choice) => choice,
        None => {
            let dir = match data {
                Some(dir) => dir.to_path_buf(),
                None => {
                    let dir =
                        std::env::temp_dir().join(format!("devtrace-demo-{}", std::process::id()));
                    if dir.exists() {
                        std::fs::remove_dir_all(&dir)
                            .with_context(|| format!("cannot clear {}", dir.display()))?;
                    }
                    _temporary = Some(RemoveOnDrop(dir.clone()));
                    dir
                }
            };
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            crate::config::StoreChoice {
                data_dir: dir.clone(),
                location: StoreLocation::Embedded(dir),
                project: None,
            }
        }
    };
    let server = DemoServer::start(&choice)?;
    let variants: &[bool] = if args.fixed { &[false, true] } else { &[false] };
    eprintln_safe!(
        "devtrace demo: {}; the clock is simulated: the {} runs are laid out back to back, {} s apart, ending now",
        if _temporary.is_some() {
            "a fresh temporary store, removed at the end (--data DIR keeps the data)".to_owned()
        } else {
            format!(
                "writing to {}",
                devtrace_model::recorded::escape(&choice.location.describe())
            )
        },
        args.runs * variants.len(),
        RUN_SPACING_MS / 1_000
    );
    // Lay the runs out back to back in (virtual) time, ending now.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let total_runs = (args.runs * variants.len()) as u64;
    let base = now_ms.saturating_sub(total_runs * RUN_SPACING_MS);
    let mut slot = 0;
    for &fixed in variants {
        eprintln_safe!(
            "running {PROGRAM}{} {} times…",
            if fixed { " --fixed" } else { "" },
            args.runs
        );
        for run in 0..args.runs {
            let start = base + slot * RUN_SPACING_MS;
            slot += 1;
            let status = Command::new(&program)
                .args([
                    "--run",
                    &run.to_string(),
                    "--start-unix-ms",
                    &start.to_string(),
                ])
                .args(fixed.then_some("--fixed"))
                .env(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://{}", server.grpc),
                )
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
                .env_remove("OTEL_SERVICE_NAME")
                .stdin(Stdio::null())
                .status()
                .with_context(|| format!("cannot run {}", crate::output::path(&program)))?;
            if !status.success() {
                bail!("{} exited with {status}", crate::output::path(&program));
            }
        }
    }
    let mut out = what_the_commands_say(&*server.store, args.runs * variants.len(), args.fixed)?;
    let flag = match &choice.location {
        StoreLocation::Embedded(dir) => format!("--data {}", dir.display()),
        StoreLocation::Postgres(_) | StoreLocation::ClickHouse { .. } => "--store URL".to_owned(),
    };
    if _temporary.is_some() {
        out.push_str(
            "\nthe demo's temporary store is removed; to keep the data and explore it, run\n  devtrace --data DIR demo\n",
        );
    } else {
        out.push_str(&format!(
            "\nthe data stays in {0}; explore it with\n  devtrace {flag} ls\n  devtrace {flag} show <trace id>\n",
            devtrace_model::recorded::escape(&choice.location.describe())
        ));
    }
    print_fitted(&out)?;
    server.stop();
    Ok(ExitCode::SUCCESS)
}

/// What `perf`, `insights` and (with `--fixed`) `compare` say about the demo's `runs` runs, as
/// the query layer reports them (`devtrace_query::demo`).
fn what_the_commands_say(store: &dyn Store, runs: usize, with_fixed: bool) -> Result<String> {
    let report = devtrace_query::demo::demo_report(store, OPERATION, runs, is_fixed)?;
    let mut out = format!("\n$ devtrace perf {OPERATION}\n");
    out.push_str(&devtrace_query::text::render_profile(&report.profile));
    out.push_str("\n$ devtrace insights\n");
    for (n, finding) in report.findings.iter().enumerate() {
        out.push_str(&finding_text(finding, n + 1));
    }
    let Some(fixed) = report.fixed.filter(|_| with_fixed) else {
        return Ok(out);
    };
    out.push_str(&format!(
        "\n$ devtrace compare --operation {OPERATION} (successful runs: original vs --fixed)\n"
    ));
    out.push_str(&devtrace_query::text::render_comparison(
        "original (A) vs fixed (B)",
        &fixed.comparison,
    ));
    out.push_str(&match fixed.predicted_nanos {
        Some(predicted) => format!(
            "\npredicted saving {} per run; measured {} ({:.1} % of the prediction)\n",
            format_duration(predicted),
            format_duration(fixed.measured_nanos.max(0.0) as u64),
            fixed.measured_nanos / predicted.max(1) as f64 * 100.0
        ),
        None => {
            "\nno sequential-work finding was made, so there is no prediction to check\n".to_owned()
        }
    });
    Ok(out)
}

/// The demo's temporary store, removed when the demo ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_fixed(trace: &AnalyzedTrace) -> bool {
    trace
        .root()
        .and_then(|r| trace.span(r).attr("journal.mode"))
        .and_then(|v| v.as_str())
        .is_some_and(|mode| mode == "concurrent")
}

/// `journal-demo` next to this executable (where cargo builds both).
fn find_program() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the devtrace executable")?;
    let dir = exe
        .parent()
        .context("the devtrace executable has no directory")?;
    let candidate = dir.join(format!("{PROGRAM}{}", std::env::consts::EXE_SUFFIX));
    if candidate.is_file() {
        Ok(candidate)
    } else {
        bail!(
            "the demo program {PROGRAM} is not next to devtrace (looked for {}); build both with `cargo build -p devtrace-cli` (add --release if devtrace is a release build)",
            crate::output::path(&candidate)
        )
    }
}

/// The embedded store and receivers, on free loopback ports, for the demo's lifetime.
struct DemoServer {
    store: Arc<dyn Store>,
    grpc: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl DemoServer {
    fn start(choice: &crate::config::StoreChoice) -> Result<Self> {
        let (backend, store) = choice.open_writer()?;
        let writer = Writer::start(backend, Default::default());
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let config = devtrace_server::ServerConfig {
            grpc_listen: loopback,
            http_listen: loopback,
            api_listen: loopback,
            ..Default::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let bound = runtime.block_on(devtrace_server::bind(config))?;
        let grpc = bound.addresses().grpc;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let reader = Arc::clone(&store);
        let thread = std::thread::spawn(move || {
            let served = runtime.block_on(bound.run(reader, writer.handle(), async move {
                let _ = stopped.await;
            }));
            writer.shutdown();
            runtime.shutdown_timeout(Duration::from_secs(5));
            Ok(served?)
        });
        Ok(Self {
            store,
            grpc,
            stop,
            thread,
        })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        if let Ok(Err(error)) = self.thread.join() {
            eprintln_safe!("warning: the demo server stopped with an error: {error:#}");
        }
    }
}

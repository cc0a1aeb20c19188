//! `devtrace run -- <command>`: trace any command and close the loop (run → trace → compare).
//!
//! The run is a root span (`devtrace.run.*` attributes) whose children are the spans the
//! command's process tree sends: the child gets `TRACEPARENT` pointing at the run span and an
//! OTLP endpoint in the standard variables. Spans from SDKs that ignore `TRACEPARENT` are
//! attached by the `devtrace.run.id` resource attribute (listed on the run span and linked).
//!
//! Where spans go: inside another `devtrace run`, to that run's endpoint; else to a running
//! `devtrace serve` for the same data directory; else to receivers started just for this run
//! (standard ports when free, otherwise free ports). If the store cannot be opened the command
//! still runs and devtrace says what it could not record. Output is streamed through unchanged
//! while a bounded copy (head and tail) is kept; test-runner summaries in it become attributes.

use crate::cli::RunArgs;
use crate::commands::analysis::finding_text;
use crate::commands::otlp_export::{post_traces, to_proto};
use crate::commands::python_autotrace::{self, PythonAutotrace};
use crate::commands::run_beam::BeamRecording;
use crate::commands::serve::RunningServe;
use crate::output::eprintln_safe;
use anyhow::{Context, Result};
use devtrace_ingest::test_output::{TestFailure, TestOutputParser, TestReport};
use devtrace_intake::otlp::{Encoding, Ingestor, Signal};
use devtrace_model::recorded::{escape, quote};
use devtrace_model::{AnyValue, KeyValue, SpanId, TraceId, semconv};
use devtrace_query::comparison::BaselineChoice;
use devtrace_query::run_report::{RunReport, run_report};
use devtrace_query::timefmt::format_duration;
use devtrace_store::writer::Writer;
use devtrace_store::{ProjectId, TraceQuery};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes of each stream kept from the start and from the end.
const CAPTURE_HEAD: usize = 16 * 1024;
const CAPTURE_TAIL: usize = 16 * 1024;
/// After the command exits, spans still arriving are waited for until this long passes quietly.
const QUIET_WINDOW: Duration = Duration::from_millis(25);
const MAX_LATE_WAIT: Duration = Duration::from_secs(2);
/// Batch delay suggested to the child's SDKs, so exporters flush promptly.
const CHILD_BATCH_DELAY_MS: &str = "100";

pub fn run(choice: &crate::config::StoreChoice, args: &RunArgs) -> Result<ExitCode> {
    // Usage mistakes are reported before anything starts.
    if args.no_causality && !args.record && args.plan.is_none() {
        crate::usage::usage!(
            "--no-causality is about the native recorder's links: give it with --record or --plan"
        );
    }
    let autotrace_packages = if args.python_autotrace.is_empty() {
        None
    } else {
        Some(python_autotrace::check_packages(&args.python_autotrace)?)
    };
    let started_at = SystemTime::now();
    let identity = Identity::new();
    let destination = Destination::choose(choice, &identity);
    if let Destination::Unrecorded(reason) = &destination {
        eprintln_safe!("devtrace: not recording this run: {reason}");
    }
    let plan = match &args.plan {
        Some(id) => Some(devtrace_plan::PlanStore::new(&choice.data_dir).load(id)?),
        None => None,
    };
    // A BEAM program's plan goes to its VMs; a Python one's to the Python recorder.
    let beam_plan = plan
        .as_ref()
        .and_then(|p| devtrace_plan::beam::plan_terms(p).map(|terms| (p.id.clone(), terms)));
    let plan_json = plan
        .as_ref()
        .filter(|_| beam_plan.is_none())
        .map(devtrace_plan::recorder_file);
    let wants_python = autotrace_packages.is_some() || args.record || plan_json.is_some();
    let autotrace = match (wants_python, destination.endpoint()) {
        (true, Some(_)) => Some(PythonAutotrace::prepare(
            autotrace_packages.unwrap_or_default(),
            args.python_autotrace_threshold,
            args.record
                .then_some((args.record_seconds, args.record_mib)),
            plan_json,
            !args.no_causality,
        )?),
        _ => None,
    };

    let beam = match destination.endpoint() {
        Some(_) if args.record || beam_plan.is_some() => {
            prepare_beam(args, &identity, beam_plan.as_ref())
        }
        _ => None,
    };
    // The summary reads the run back from the store: only when it is shown or written. The
    // store is opened for it while the command runs (its schema read is most of the open).
    let wants_summary = !args.quiet || args.json.is_some();
    let reader = (wants_summary && destination.endpoint().is_some()).then(|| {
        let choice = choice.clone();
        std::thread::spawn(move || choice.open())
    });
    let outcome = execute(
        args,
        &identity,
        &destination,
        autotrace.as_ref(),
        beam.as_ref(),
    );
    let ended_at = SystemTime::now();
    let mut beam_recorded = false;
    if let (Some(beam), Some(endpoint)) = (beam, destination.endpoint()) {
        let (note, recorded) =
            beam.finish(endpoint, &identity.run_id, &service_name(&args.command[0]));
        beam_recorded = recorded;
        if let Some(note) = note {
            eprintln_safe!("{note}");
        }
    }
    if let (Some(hook), Some(endpoint)) = (&autotrace, destination.endpoint()) {
        for note in hook.recover(endpoint) {
            eprintln_safe!("{note}");
        }
    }
    // A BEAM program is not a Python one: the Python recorder's "nothing recorded" is no news.
    if let Some(note) = autotrace.and_then(PythonAutotrace::finish)
        && !beam_recorded
    {
        eprintln_safe!("{note}");
    }

    let mut summary = None;
    if destination.endpoint().is_some() {
        let arrived = destination.wait_for_late_spans();
        let recorded = record(
            choice,
            args,
            &identity,
            &outcome,
            (started_at, ended_at),
            &destination,
            arrived,
        )
        .and_then(|()| {
            reader
                .map(|reader| summarize(reader, args, &identity, &outcome))
                .transpose()
        });
        match recorded {
            Ok(s) => summary = s,
            Err(error) => {
                eprintln_safe!(
                    "devtrace: the command ran, but the run could not be recorded: {error:#}"
                )
            }
        }
    }
    destination.stop();
    if let Some(summary) = &summary {
        if !args.quiet {
            crate::output::print_stderr(&summary.text);
        }
        if let Some(path) = &args.json {
            std::fs::write(
                path,
                devtrace_query::safe_json::to_string_pretty(&summary.json)?,
            )
            .with_context(|| format!("cannot write {}", crate::output::path(path)))?;
        }
    }
    Ok(ExitCode::from(outcome.exit_code))
}

/// The run's ids, continuing the caller's trace when it is itself inside a `devtrace run`.
struct Identity {
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<SpanId>,
    run_id: String,
    nested_endpoint: Option<String>,
}

impl Identity {
    fn new() -> Self {
        let inside_run = std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attrs| attrs.contains(semconv::RUN_ID));
        let parent = std::env::var("TRACEPARENT")
            .ok()
            .and_then(|tp| parse_traceparent(&tp))
            .filter(|_| inside_run);
        let span_id = SpanId(random_bytes());
        let trace_id = parent.map_or_else(|| TraceId(random_bytes()), |(trace, _)| trace);
        let run_id = if parent.is_some() {
            span_id.to_hex()
        } else {
            trace_id.to_hex()
        };
        Self {
            trace_id,
            span_id,
            parent: parent.map(|(_, span)| span),
            run_id,
            nested_endpoint: if inside_run {
                std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()
            } else {
                None
            },
        }
    }
}

fn parse_traceparent(text: &str) -> Option<(TraceId, SpanId)> {
    let mut parts = text.trim().split('-');
    let (_version, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
    let trace: TraceId = trace.parse().ok()?;
    let span: SpanId = span.parse().ok()?;
    (!trace.is_zero() && !span.is_zero()).then_some((trace, span))
}

/// Random ids without a dependency: std's per-process random hasher keys, mixed with time.
fn random_bytes<const N: usize>() -> [u8; N] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; N];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_usize(i);
        hasher.write_u32(std::process::id());
        let bytes = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    if out.iter().all(|b| *b == 0) {
        out[0] = 1;
    }
    out
}

/// Where the run's spans go.
pub(super) enum Destination {
    /// Another `devtrace run` (we are its child) or a running `devtrace serve`; for a serve,
    /// its API and the spans it had committed when the run began (its health route's counter).
    External {
        endpoint: String,
        serve: Option<(SocketAddr, u64)>,
    },
    /// Receivers started for this run over the store in the data directory.
    Embedded(Box<EmbeddedReceiver>),
    /// Nothing can be recorded; the command still runs.
    Unrecorded(String),
}

impl Destination {
    fn choose(choice: &crate::config::StoreChoice, identity: &Identity) -> Self {
        Self::choose_for(choice, identity.nested_endpoint.as_deref())
    }

    /// Another run's endpoint when nested in one, a running `devtrace serve` for the data
    /// directory, else receivers started now over its store.
    pub(super) fn choose_for(choice: &crate::config::StoreChoice, nested: Option<&str>) -> Self {
        if let Some(endpoint) = nested {
            return Self::External {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                serve: None,
            };
        }
        if let Some(serve) = RunningServe::find(&choice.data_dir) {
            return Self::External {
                endpoint: format!("http://{}", serve.http),
                serve: committed_spans(serve.api).map(|count| (serve.api, count)),
            };
        }
        match EmbeddedReceiver::start(choice) {
            Ok(receiver) => Self::Embedded(Box::new(receiver)),
            Err(error) => Self::Unrecorded(format!("{error:#}")),
        }
    }

    pub(super) fn endpoint(&self) -> Option<&str> {
        match self {
            Self::External { endpoint, .. } => Some(endpoint),
            Self::Embedded(receiver) => Some(&receiver.endpoint),
            Self::Unrecorded(_) => None,
        }
    }

    /// Spans received since the run began: by the run's own receivers, or by the serve it
    /// sends to (anyone's: a shared server receives other programs' spans too); `None` when it
    /// cannot be known (a parent run's receivers, a serve that does not say).
    fn received_spans(&self) -> Option<u64> {
        match self {
            Self::Embedded(receiver) => {
                let handle = receiver.writer.handle();
                Some(handle.committed_spans() + handle.pending_items())
            }
            Self::External {
                serve: Some((api, at_start)),
                ..
            } => committed_spans(*api).map(|now| now.saturating_sub(*at_start)),
            _ => None,
        }
    }

    /// Waits until spans stop arriving; returns whether any arrived during the run (or it
    /// cannot be known).
    pub(super) fn wait_for_late_spans(&self) -> bool {
        // No exporter sent anything during the run: nothing is late. (An SDK's exporter
        // flushes synchronously at exit, and devtrace answers after the commit, so spans of a
        // program that has exited are already counted.)
        let arrived = self.received_spans() != Some(0);
        match self {
            Self::Embedded(receiver) if arrived => receiver.wait_until_quiet(),
            Self::External { .. } if arrived => std::thread::sleep(QUIET_WINDOW),
            Self::Embedded(_) | Self::External { .. } | Self::Unrecorded(_) => {}
        }
        arrived
    }

    pub(super) fn stop(self) {
        if let Self::Embedded(receiver) = self {
            receiver.stop();
        }
    }

    /// Stores spans devtrace made itself (an OTLP request body): straight into the writer
    /// when the receivers are the run's own, as they would have stored it, without the round
    /// trip through an HTTP client and a receiver; else posted to `endpoint`.
    fn store_own_spans(&self, endpoint: &str, body: &[u8]) -> Result<()> {
        match self {
            Self::Embedded(receiver) => {
                receiver.own.ingest_blocking(
                    Signal::Traces,
                    Encoding::Protobuf,
                    body,
                    ProjectId::DEFAULT,
                )?;
                Ok(())
            }
            Self::External { .. } | Self::Unrecorded(_) => post_traces(endpoint, body),
        }
    }
}

/// The spans a running serve has committed since it started, from its health route (`None`
/// when it does not answer in time or says nothing of them: an older serve).
fn committed_spans(api: SocketAddr) -> Option<u64> {
    let options = devtrace_client::ClientOptions {
        read_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let client = devtrace_client::Client::parse(&devtrace_query::links::base(api), options).ok()?;
    let health: serde_json::Value = client.get_json("/api/v1/health").ok()?;
    health["committed_spans"].as_u64()
}

pub(super) struct EmbeddedReceiver {
    endpoint: String,
    writer: Writer,
    /// The receivers' pipeline (limits, redaction, rows) for the run's own spans.
    own: Ingestor,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl EmbeddedReceiver {
    fn start(choice: &crate::config::StoreChoice) -> Result<Self> {
        // The redaction rules are parsed on the other core while the store opens.
        let redactor = std::thread::spawn(crate::config::default_redaction);
        let backend = choice.open_writer_only().context("cannot open the store")?;
        let writer = Writer::start(
            backend,
            devtrace_store::writer::WriterConfig {
                checkpoint_at_shutdown: false,
                ..Default::default()
            },
        );
        let redactor = redactor
            .join()
            .map_err(|_| anyhow::anyhow!("reading the redaction rules panicked"))??;
        // One thread serves the receivers (it runs the runtime below): a command's exporter
        // sends little, and a thread less is less to start and stop.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // The standard ports when they are free, so the command's own configuration works too.
        let config = |grpc: u16, http: u16| devtrace_server::ServerConfig {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], grpc)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], http)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            redactor: Arc::clone(&redactor),
            ..Default::default()
        };
        let bound = runtime
            .block_on(devtrace_server::bind(config(4317, 4318)))
            .or_else(|_| runtime.block_on(devtrace_server::bind(config(0, 0))))?;
        let endpoint = format!("http://{}", bound.addresses().http);
        let own = Ingestor::new(writer.handle(), devtrace_ingest::Limits::default())
            .with_redactor(Arc::clone(&redactor));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = writer.handle();
        let thread = std::thread::spawn(move || {
            let served = runtime.block_on(bound.run_receivers(handle, async move {
                let _ = stopped.await;
            }));
            if let Err(error) = served {
                eprintln_safe!("devtrace: the run's receiver failed: {error}");
            }
            runtime.shutdown_timeout(Duration::from_secs(2));
        });
        Ok(Self {
            endpoint,
            writer,
            own,
            stop,
            thread,
        })
    }

    fn wait_until_quiet(&self) {
        let handle = self.writer.handle();
        let deadline = Instant::now() + MAX_LATE_WAIT;
        let mut last = (handle.committed_spans(), Instant::now());
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            let now = handle.committed_spans();
            if now != last.0 || handle.pending_items() > 0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= QUIET_WINDOW {
                return;
            }
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        self.writer.shutdown();
    }
}

/// What happened to the command.
struct Outcome {
    exit_code: u8,
    code: Option<i32>,
    signal: Option<i32>,
    error: Option<String>,
    stdout: Capture,
    stderr: Capture,
    tests: Option<TestReport>,
}

/// A bounded copy of a stream: its first and last bytes, and how many there were.
#[derive(Default)]
pub(super) struct Capture {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    pub(super) total: u64,
}

impl Capture {
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = CAPTURE_HEAD.saturating_sub(self.head.len());
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(head);
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(CAPTURE_TAIL);
        self.tail.drain(..excess);
    }

    pub(super) fn head_text(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }

    pub(super) fn tail_text(&self) -> String {
        let (a, b) = self.tail.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }
}

static CHILD_PID: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived after the child started but before its pid was known (the child can
/// run, and be seen running, before `spawn` returns): forwarded by [`set_child`].
static PENDING_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(signal: libc::c_int) {
    let pid = CHILD_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; the pid is our own child's.
        unsafe {
            libc::kill(pid, signal);
        }
    } else {
        PENDING_SIGNAL.store(signal, Ordering::SeqCst);
    }
}

/// Records the child's pid for the signal handler (0: no child), and forwards a signal that
/// came while the pid was not yet known.
pub(super) fn set_child(pid: i32) {
    CHILD_PID.store(pid, Ordering::SeqCst);
    let pending = PENDING_SIGNAL.swap(0, Ordering::SeqCst);
    if pid > 0 && pending > 0 {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, pending);
        }
    }
}

/// A terminal's Ctrl-C or Ctrl-\: the whole foreground group has it, the child too.
extern "C" fn survive_signal(_signal: libc::c_int) {}

/// Terminal signals go to the whole foreground process group, so the child gets Ctrl-C by
/// itself; devtrace only has to survive it (passing it on as well made the child's handler run
/// twice). SIGTERM and SIGHUP sent to devtrace alone are passed on. Handlers (unlike "ignore")
/// are reset in the child when it executes.
pub(super) fn install_signal_handlers() {
    let handlers: [(libc::c_int, extern "C" fn(libc::c_int)); 4] = [
        (libc::SIGINT, survive_signal),
        (libc::SIGQUIT, survive_signal),
        (libc::SIGTERM, forward_signal),
        (libc::SIGHUP, forward_signal),
    ];
    for (signal, handler) in handlers {
        // SAFETY: installing a handler that calls at most an async-signal-safe function.
        unsafe {
            libc::signal(signal, handler as *const () as libc::sighandler_t);
        }
    }
}

/// `--record`'s BEAM recording (docs/beam.md), when its runtime is built; a note otherwise.
/// The recording of the command's BEAM VMs: `--record`'s, or a plan's (lossless: every call
/// of the plan's functions).
fn prepare_beam(
    args: &RunArgs,
    identity: &Identity,
    plan: Option<&(String, String)>,
) -> Option<BeamRecording> {
    let root = (
        u128::from_be_bytes(identity.trace_id.0),
        u64::from_be_bytes(identity.span_id.0),
    );
    let seconds = if plan.is_some() {
        0.0
    } else {
        args.record_seconds
    };
    let recording = BeamRecording::prepare(&args.command[0], (args.record_mib, seconds), root)
        .and_then(|recording| match (recording, plan) {
            (Some(mut recording), Some((id, terms))) => {
                recording.plan(id, terms)?;
                Ok(Some(recording))
            }
            (Some(mut recording), None) => {
                recording.instrument(args.instrument);
                Ok(Some(recording))
            }
            (recording, _) => Ok(recording),
        });
    recording.unwrap_or_else(|note| {
        eprintln_safe!("{note}");
        None
    })
}

fn execute(
    args: &RunArgs,
    identity: &Identity,
    destination: &Destination,
    autotrace: Option<&PythonAutotrace>,
    beam: Option<&BeamRecording>,
) -> Outcome {
    let program = &args.command[0];
    let mut command = Command::new(program);
    command.args(&args.command[1..]).stdin(Stdio::inherit());
    let masters = attach_outputs(&mut command, libc::STDOUT_FILENO);
    if let Some(endpoint) = destination.endpoint() {
        for (key, value) in child_environment(identity, endpoint, program) {
            command.env(key, value);
        }
        for (key, value) in autotrace
            .map(PythonAutotrace::environment)
            .unwrap_or_default()
        {
            command.env(key, value);
        }
        for (key, value) in beam.map(BeamRecording::environment).unwrap_or_default() {
            command.env(key, value);
        }
    }
    let mut outcome = Outcome {
        exit_code: 0,
        code: None,
        signal: None,
        error: None,
        stdout: Capture::default(),
        stderr: Capture::default(),
        tests: None,
    };
    install_signal_handlers();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let (message, code) = spawn_failure(program, &error);
            outcome.exit_code = code;
            outcome.code = Some(i32::from(code));
            outcome.error = Some(format!("{program}: {message}"));
            return outcome;
        }
    };
    set_child(child.id() as i32);
    // Our copies of the terminals' child ends must close, or reading would never see the end.
    drop(command);
    let parser = Arc::new(Mutex::new(TestOutputParser::new()));
    let (stdout_source, stderr_source) = output_sources(masters, &mut child);
    let stdout = tee(stdout_source, std::io::stdout(), Arc::clone(&parser));
    let stderr = tee(stderr_source, std::io::stderr(), Arc::clone(&parser));
    let status = child.wait();
    outcome.stdout = stdout.join().unwrap_or_default();
    outcome.stderr = stderr.join().unwrap_or_default();
    set_child(0);
    outcome.tests = Arc::try_unwrap(parser)
        .ok()
        .and_then(|p| p.into_inner().ok())
        .and_then(TestOutputParser::finish);
    match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            outcome.code = status.code();
            outcome.signal = status.signal();
            outcome.exit_code = match (status.code(), status.signal()) {
                (Some(code), _) => code.clamp(0, 255) as u8,
                (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
                (None, None) => 1,
            };
        }
        Err(error) => {
            outcome.exit_code = 1;
            outcome.error = Some(format!("waiting for {program}: {error}"));
        }
    }
    outcome
}

/// Gives the child's stdout and stderr a pseudo-terminal when ours (`stdout_fd` for its
/// stdout, our stderr for its stderr) is a terminal, so it keeps its colours, progress bars and
/// prompts; otherwise a pipe. Returns the terminals' ends we read.
pub(super) fn attach_outputs(
    command: &mut Command,
    stdout_fd: libc::c_int,
) -> (Option<std::fs::File>, Option<std::fs::File>) {
    let mut masters = (None, None);
    match terminal_like(stdout_fd) {
        Some(pty) => {
            command.stdout(Stdio::from(pty.slave));
            masters.0 = Some(pty.master);
        }
        None => {
            command.stdout(Stdio::piped());
        }
    }
    match terminal_like(libc::STDERR_FILENO) {
        Some(pty) => {
            command.stderr(Stdio::from(pty.slave));
            masters.1 = Some(pty.master);
        }
        None => {
            command.stderr(Stdio::piped());
        }
    }
    masters
}

/// What to read the child's stdout and stderr from: the terminals of [`attach_outputs`], else
/// its pipes.
pub(super) fn output_sources(
    masters: (Option<std::fs::File>, Option<std::fs::File>),
    child: &mut std::process::Child,
) -> (Box<dyn Read + Send>, Box<dyn Read + Send>) {
    let stdout: Box<dyn Read + Send> = match (masters.0, child.stdout.take()) {
        (Some(master), _) => Box::new(master),
        (None, Some(pipe)) => Box::new(pipe),
        (None, None) => Box::new(std::io::empty()),
    };
    let stderr: Box<dyn Read + Send> = match (masters.1, child.stderr.take()) {
        (Some(master), _) => Box::new(master),
        (None, Some(pipe)) => Box::new(pipe),
        (None, None) => Box::new(std::io::empty()),
    };
    (stdout, stderr)
}

/// A command that could not start, in the words and exit codes a shell uses (said on stderr).
pub(super) fn spawn_failure(program: &str, error: &std::io::Error) -> (String, u8) {
    let (message, code) = match error.kind() {
        std::io::ErrorKind::NotFound => ("command not found".to_owned(), 127),
        std::io::ErrorKind::PermissionDenied => ("Permission denied".to_owned(), 126),
        _ => (error.to_string(), 126),
    };
    eprintln_safe!("devtrace: {}: {message}", escape(program));
    (message, code)
}

/// Both ends of a pseudo-terminal.
struct Pty {
    master: std::fs::File,
    slave: std::fs::File,
}

/// A pseudo-terminal shaped like `fd` (same window size) when `fd` is a terminal.
///
/// Output processing is off on the child's end, so the bytes the child writes are the bytes we
/// copy (no "\n" → "\r\n"): the stream stays unchanged, only `isatty()` is true for the child.
fn terminal_like(fd: libc::c_int) -> Option<Pty> {
    use std::os::fd::FromRawFd;
    // SAFETY: isatty, ioctl(TIOCGWINSZ), openpty, tcgetattr and tcsetattr are called with
    // valid pointers to initialised local values; the returned descriptors are owned below.
    unsafe {
        if libc::isatty(fd) != 1 {
            return None;
        }
        let mut size: libc::winsize = std::mem::zeroed();
        let has_size = libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) == 0;
        let (mut master, mut slave) = (-1, -1);
        let size_pointer = if has_size {
            &mut size as *mut libc::winsize
        } else {
            std::ptr::null_mut()
        };
        if libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            size_pointer,
        ) != 0
        {
            return None;
        }
        let pty = Pty {
            master: std::fs::File::from_raw_fd(master),
            slave: std::fs::File::from_raw_fd(slave),
        };
        let mut attributes: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave, &mut attributes) == 0 {
            attributes.c_oflag &= !libc::OPOST;
            libc::tcsetattr(slave, libc::TCSANOW, &attributes);
        }
        // The master must not leak into the child.
        libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
        Some(pty)
    }
}

/// The standard variables, so any OpenTelemetry SDK exports to us and continues our trace.
fn child_environment(identity: &Identity, endpoint: &str, program: &str) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "TRACEPARENT".to_owned(),
            format!("00-{}-{}-01", identity.trace_id, identity.span_id),
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            endpoint.to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            "http/protobuf".to_owned(),
        ),
        (
            "OTEL_BSP_SCHEDULE_DELAY".to_owned(),
            CHILD_BATCH_DELAY_MS.to_owned(),
        ),
        (
            "OTEL_BLRP_SCHEDULE_DELAY".to_owned(),
            CHILD_BATCH_DELAY_MS.to_owned(),
        ),
    ];
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        env.push(("OTEL_SERVICE_NAME".to_owned(), service_name(program)));
    }
    let mut resource = std::env::var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
    // An outer run's id is replaced: spans belong to the innermost run.
    resource = resource
        .split(',')
        .filter(|kv| !kv.trim_start().starts_with(semconv::RUN_ID))
        .collect::<Vec<_>>()
        .join(",");
    if !resource.is_empty() {
        resource.push(',');
    }
    resource.push_str(&format!("{}={}", semconv::RUN_ID, identity.run_id));
    env.push(("OTEL_RESOURCE_ATTRIBUTES".to_owned(), resource));
    env
}

/// The child's service name: `OTEL_SERVICE_NAME`, else the program's file name.
fn service_name(program: &str) -> String {
    std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| {
        Path::new(program)
            .file_name()
            .map_or(program.to_owned(), |n| n.to_string_lossy().into_owned())
    })
}

/// Copies `input` to `output` as it comes, keeping a bounded copy and feeding the test parser.
pub(super) fn tee(
    mut input: impl Read + Send + 'static,
    mut output: impl Write + Send + 'static,
    parser: Arc<Mutex<TestOutputParser>>,
) -> std::thread::JoinHandle<Capture> {
    std::thread::spawn(move || {
        let mut capture = Capture::default();
        let mut buffer = vec![0u8; 16 * 1024];
        let mut partial_line = Vec::new();
        loop {
            let n = match input.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A pseudo-terminal's master reads EIO once every child end is closed: the end.
                Err(_) => break,
            };
            let bytes = &buffer[..n];
            // A closed terminal is no reason to stop draining the child.
            let _ = output.write_all(bytes).and_then(|_| output.flush());
            capture.push(bytes);
            partial_line.extend_from_slice(bytes);
            let mut parser = parser.lock().expect("parser poisoned");
            while let Some(end) = partial_line.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial_line.drain(..=end).collect();
                parser.feed_line(&String::from_utf8_lossy(&line));
            }
            // Pathological lines without newlines stay bounded.
            if partial_line.len() > 64 * 1024 {
                parser.feed_line(&String::from_utf8_lossy(&partial_line));
                partial_line.clear();
            }
        }
        if !partial_line.is_empty() {
            parser
                .lock()
                .expect("parser poisoned")
                .feed_line(&String::from_utf8_lossy(&partial_line));
        }
        capture
    })
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The command line as a shell would show it, for the span name.
fn command_line(argv: &[String]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

/// The run span's name: the command line, bounded.
fn run_name(argv: &[String]) -> String {
    let line = command_line(argv);
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(199).collect::<String>())
    } else {
        line
    }
}

/// The commit checked out and whether tracked files changed, from one `git status` (one
/// process, not two); `None` outside a repository or before its first commit.
fn git_state() -> Option<(String, bool)> {
    // Outside a repository git is not started at all (a process costs milliseconds).
    let cwd = std::env::current_dir().ok()?;
    if !maybe_in_git_repository(&cwd) {
        return None;
    }
    let output = Command::new("git")
        .args([
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=no",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    parse_git_status(&String::from_utf8_lossy(&output.stdout))
}

/// Whether git could find a repository from `dir`: a `.git` (a directory, or the file of a
/// worktree or submodule) in it or a parent, or `GIT_DIR` set. May say yes wrongly (git then
/// says no), never no wrongly.
fn maybe_in_git_repository(dir: &Path) -> bool {
    std::env::var_os("GIT_DIR").is_some()
        || dir
            .ancestors()
            .any(|d| std::fs::symlink_metadata(d.join(".git")).is_ok())
}

fn parse_git_status(text: &str) -> Option<(String, bool)> {
    let commit = text
        .lines()
        .find_map(|line| line.strip_prefix("# branch.oid "))
        .filter(|oid| oid.bytes().all(|b| b.is_ascii_hexdigit()))?
        .to_owned();
    let dirty = text.lines().any(|line| !line.starts_with('#'));
    Some((commit, dirty))
}

/// Builds the run span (and one span per reported test) and sends them over OTLP/HTTP.
fn record(
    choice: &crate::config::StoreChoice,
    args: &RunArgs,
    identity: &Identity,
    outcome: &Outcome,
    (started, ended): (SystemTime, SystemTime),
    destination: &Destination,
    arrived: bool,
) -> Result<()> {
    use devtrace_ingest::otlp::trace::v1::{Span, Status, span::Link as PLink};
    let endpoint = destination
        .endpoint()
        .context("the run has nowhere to send its span")?;
    let (start, end) = (nanos(started), nanos(ended).max(nanos(started)));
    let mut attributes = run_attributes(args, identity, outcome);
    // Spans from SDKs that ignored TRACEPARENT, found by their resource attribute.
    // Only when something other than devtrace sent spans (the store is not opened otherwise).
    let attached = if !arrived {
        Vec::new()
    } else {
        attached_traces(choice, identity, start)
    };
    if !attached.is_empty() {
        attributes.push(KeyValue::new(
            semconv::RUN_ATTACHED_TRACES,
            AnyValue::Array(
                attached
                    .iter()
                    .map(|t| AnyValue::from(t.0.to_hex()))
                    .collect(),
            ),
        ));
    }
    let failed = outcome.exit_code != 0 || outcome.error.is_some();
    let mut spans = vec![Span {
        trace_id: identity.trace_id.0.to_vec(),
        span_id: identity.span_id.0.to_vec(),
        parent_span_id: identity.parent.map(|p| p.0.to_vec()).unwrap_or_default(),
        name: run_name(&args.command),
        kind: 1,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: to_proto(&attributes),
        links: attached
            .iter()
            .map(|(trace, span)| PLink {
                trace_id: trace.0.to_vec(),
                span_id: span.0.to_vec(),
                ..Default::default()
            })
            .collect(),
        status: failed.then(|| Status {
            code: 2,
            message: status_message(outcome),
        }),
        ..Default::default()
    }];
    if let Some(tests) = &outcome.tests {
        spans.extend(test_spans(identity, tests, start, end));
    }
    let request = export_request(identity, spans);
    destination.store_own_spans(endpoint, &prost::Message::encode_to_vec(&request))
}

/// The run span's attributes: its id, command, output sizes and ends, where it ran, its exit,
/// and the tests the runner reported.
fn run_attributes(args: &RunArgs, identity: &Identity, outcome: &Outcome) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(semconv::RUN_ID, identity.run_id.clone()),
        KeyValue::new(semconv::RUN_COMMAND, command_line(&args.command)),
        KeyValue::new(
            semconv::RUN_ARGV,
            AnyValue::Array(
                args.command
                    .iter()
                    .map(|a| AnyValue::from(a.as_str()))
                    .collect(),
            ),
        ),
        KeyValue::new(semconv::RUN_STDOUT_BYTES, outcome.stdout.total as i64),
        KeyValue::new(semconv::RUN_STDERR_BYTES, outcome.stderr.total as i64),
    ];
    if let Ok(cwd) = std::env::current_dir() {
        attributes.push(KeyValue::new(semconv::RUN_CWD, cwd.display().to_string()));
    }
    if let Some((commit, dirty)) = git_state() {
        attributes.push(KeyValue::new(semconv::RUN_GIT_COMMIT, commit));
        attributes.push(KeyValue::new(semconv::RUN_GIT_DIRTY, dirty));
    }
    if let Some(label) = &args.label {
        attributes.push(KeyValue::new(semconv::RUN_LABEL, label.clone()));
    }
    if let Some(code) = outcome.code {
        attributes.push(KeyValue::new(semconv::RUN_EXIT_CODE, i64::from(code)));
    }
    if let Some(signal) = outcome.signal {
        attributes.push(KeyValue::new(semconv::RUN_SIGNAL, i64::from(signal)));
    }
    for (key, text) in [
        (semconv::RUN_STDOUT_HEAD, outcome.stdout.head_text()),
        (semconv::RUN_STDOUT_TAIL, outcome.stdout.tail_text()),
        (semconv::RUN_STDERR_HEAD, outcome.stderr.head_text()),
        (semconv::RUN_STDERR_TAIL, outcome.stderr.tail_text()),
    ] {
        if !text.is_empty() {
            attributes.push(KeyValue::new(key, text));
        }
    }
    if let Some(tests) = &outcome.tests {
        attributes.extend(test_attributes(tests));
    }
    attributes
}

/// The tests' counts, and the failing tests with their messages.
fn test_attributes(tests: &TestReport) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(semconv::TEST_RUNNER, tests.runner.as_str()),
        KeyValue::new(semconv::TEST_PASSED, tests.passed as i64),
        KeyValue::new(semconv::TEST_FAILED, tests.failed as i64),
        KeyValue::new(semconv::TEST_SKIPPED, tests.skipped as i64),
    ];
    if !tests.failing.is_empty() {
        attributes.push(KeyValue::new(
            semconv::TEST_FAILING,
            AnyValue::Array(
                tests
                    .failing
                    .iter()
                    .map(|n| AnyValue::from(n.as_str()))
                    .collect(),
            ),
        ));
        attributes.push(KeyValue::new(
            semconv::TEST_FAILING_MESSAGES,
            AnyValue::Array(
                tests
                    .failures
                    .iter()
                    .map(|f| AnyValue::from(f.message.as_deref().unwrap_or("")))
                    .collect(),
            ),
        ));
    }
    attributes
}

/// Why the run failed. A failing test says what failed: the run's error is its first failing
/// test and message (so `show`, `get_trace` and the error fingerprint name it), the rest are in
/// attributes.
fn status_message(outcome: &Outcome) -> String {
    let status_message = match (&outcome.error, outcome.code, outcome.signal) {
        (Some(error), _, _) => error.clone(),
        (None, _, Some(signal)) => format!("killed by signal {signal}"),
        (None, Some(code), _) if code != 0 => format!("exited with code {code}"),
        _ => String::new(),
    };
    match outcome.tests.as_ref().and_then(|t| t.failures.first()) {
        Some(first) => {
            format!("{status_message}: {}", failure_text(first, str::to_owned))
        }
        _ => status_message,
    }
}

/// One span per reported test with a duration, laid out one after another from the start:
/// durations are the runner's, positions approximate (devtrace.test.timing = "reported").
fn test_spans(
    identity: &Identity,
    tests: &TestReport,
    start: u64,
    end: u64,
) -> Vec<devtrace_ingest::otlp::trace::v1::Span> {
    use devtrace_ingest::otlp::trace::v1::{Span, Status};
    let mut spans = Vec::new();
    let mut cursor = start;
    for (i, case) in tests.cases.iter().enumerate() {
        let Some(duration) = case.duration_nanos else {
            continue;
        };
        let mut id = identity.span_id.0;
        id[6..].copy_from_slice(&((i as u16).wrapping_add(1)).to_be_bytes());
        id[0] ^= 0x5a;
        let outcome_text = format!("{:?}", case.outcome).to_lowercase();
        spans.push(Span {
            trace_id: identity.trace_id.0.to_vec(),
            span_id: id.to_vec(),
            parent_span_id: identity.span_id.0.to_vec(),
            name: format!("test {}", case.name),
            kind: 1,
            start_time_unix_nano: cursor,
            end_time_unix_nano: cursor + duration,
            attributes: to_proto(&[
                KeyValue::new(semconv::TEST_OUTCOME, outcome_text.clone()),
                KeyValue::new("devtrace.test.timing", "reported"),
            ]),
            status: (outcome_text == "failed").then(|| Status {
                code: 2,
                message: tests
                    .failures
                    .iter()
                    .find(|f| f.name == case.name)
                    .and_then(|f| f.message.clone())
                    .unwrap_or_else(|| "test failed".into()),
            }),
            ..Default::default()
        });
        cursor = (cursor + duration).min(end);
    }
    spans
}

/// The export request: devtrace's resource (with the run id) and scope around the spans.
fn export_request(
    identity: &Identity,
    spans: Vec<devtrace_ingest::otlp::trace::v1::Span>,
) -> devtrace_ingest::otlp::collector::trace::v1::ExportTraceServiceRequest {
    use devtrace_ingest::otlp::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::InstrumentationScope,
        resource::v1::Resource,
        trace::v1::{ResourceSpans, ScopeSpans},
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: to_proto(&[
                    KeyValue::new(semconv::SERVICE_NAME, "devtrace"),
                    KeyValue::new(semconv::RUN_ID, identity.run_id.clone()),
                ]),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "devtrace.run".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `test NAME: MESSAGE`, or `test NAME failed` when the runner printed no message; the name
/// and message written by `show`.
fn failure_text(failure: &TestFailure, show: fn(&str) -> String) -> String {
    match &failure.message {
        Some(message) => format!("test {}: {}", show(&failure.name), show(message)),
        None => format!("test {} failed", show(&failure.name)),
    }
}

/// Traces that arrived during the run carrying our run id as a resource attribute but not our
/// trace id: their SDK did not honour TRACEPARENT.
fn attached_traces(
    choice: &crate::config::StoreChoice,
    identity: &Identity,
    since: u64,
) -> Vec<(TraceId, SpanId)> {
    let Ok(store) = choice.open() else {
        return Vec::new();
    };
    let Ok(recent) = store.list_traces(&TraceQuery {
        since_unix_nano: Some(since.saturating_sub(1_000_000_000)),
        limit: 200,
        ..Default::default()
    }) else {
        return Vec::new();
    };
    recent
        .iter()
        .filter(|t| t.trace_id != identity.trace_id)
        .filter_map(|t| store.get_trace(t.trace_id).ok().flatten())
        .filter_map(|t| {
            let ours = t.spans.resources.iter().any(|r| {
                devtrace_model::find_attr(&r.attributes, semconv::RUN_ID).and_then(|v| v.as_str())
                    == Some(identity.run_id.as_str())
            });
            let root = t
                .spans
                .spans
                .iter()
                .find(|s| s.parent_span_id.is_none())
                .or(t.spans.spans.first())?;
            ours.then_some((t.summary.trace_id, root.span_id))
        })
        .collect()
}

struct Summary {
    text: String,
    json: serde_json::Value,
}

/// What happened, for stderr (stdout stays the command's) and for `--json FILE`: the run as
/// devtrace-query reads it back (findings priced and ranked as `insights` ranks them, the
/// comparison with the baseline), worded here.
fn summarize(
    reader: std::thread::JoinHandle<Result<Arc<dyn devtrace_store::Store>>>,
    args: &RunArgs,
    identity: &Identity,
    outcome: &Outcome,
) -> Result<Summary> {
    let store = reader
        .join()
        .map_err(|_| anyhow::anyhow!("opening the store for the summary panicked"))??;
    let baseline = match &args.baseline {
        Some(label) => BaselineChoice::Labelled(label),
        None => BaselineChoice::Previous,
    };
    let report = run_report(&*store, identity.trace_id, identity.span_id, baseline)
        .context("cannot read the run back")?;
    if let (Some(wanted), None) = (&args.baseline, &report.baseline) {
        eprintln_safe!(
            "devtrace: no earlier run of this command has the label {}; nothing to compare with",
            quote(wanted)
        );
    }
    let text = summary_text(&report, outcome);
    let json = serde_json::json!({
        "run_id": identity.run_id,
        "trace_id": identity.trace_id.to_hex(),
        "command": args.command,
        "label": args.label,
        "exit_code": outcome.exit_code,
        "signal": outcome.signal,
        "duration_ns": report.run_span.duration_nanos(),
        "spans": report.spans,
        "errors": report.errors,
        "tests": outcome.tests,
        "attached_traces": report.attached.iter().map(|t| t.to_hex()).collect::<Vec<_>>(),
        "slowest": report.slowest.iter().map(|(name, nanos)| serde_json::json!({"name": name, "duration_ns": nanos})).collect::<Vec<_>>(),
        "findings": report.findings.iter().take(5).collect::<Vec<_>>(),
        "comparison": report.baseline.as_ref().map_or(serde_json::Value::Null, |b| serde_json::json!({"against": b.against, "baseline_trace_id": b.baseline_trace_id.to_hex(), "comparison": b.comparison})),
    });
    Ok(Summary { text, json })
}

/// The summary's lines: outcome, tests, slowest spans, the top findings, the comparison with
/// the baseline, and where to look.
fn summary_text(report: &RunReport, outcome: &Outcome) -> String {
    let run_span = &report.run_span;
    let (spans, errors) = (report.spans, report.errors);
    let status = match (outcome.code, outcome.signal, &outcome.error) {
        (_, _, Some(error)) => format!("failed to start ({})", escape(error)),
        (_, Some(signal), _) => format!("was killed by signal {signal}"),
        (Some(code), _, _) => format!("exited {code}"),
        _ => "ended".to_owned(),
    };
    let mut text = format!(
        "\ndevtrace: `{}` {status} in {} · {spans} span{} · {errors} error{}",
        escape(&run_span.name),
        format_duration(run_span.duration_nanos()),
        if spans == 1 { "" } else { "s" },
        if errors == 1 { "" } else { "s" },
    );
    if let Some(tests) = &outcome.tests {
        text.push_str(&format!(
            " · {}: {} passed, {} failed, {} skipped",
            tests.runner.as_str(),
            tests.passed,
            tests.failed,
            tests.skipped
        ));
        for failure in tests.failures.iter().take(5) {
            text.push_str(&format!("\n  failed: {}", failure_text(failure, escape)));
        }
        if tests.failures.len() > 5 {
            text.push_str(&format!("\n  … {} more failing", tests.failures.len() - 5));
        }
    }
    text.push('\n');
    if !report.slowest.is_empty() {
        let list: Vec<String> = report
            .slowest
            .iter()
            .map(|(name, nanos)| format!("{} {}", escape(name), format_duration(*nanos)))
            .collect();
        text.push_str(&format!("  slowest: {}\n", list.join(", ")));
    }
    for (n, finding) in report.findings.iter().take(3).enumerate() {
        for line in finding_text(finding, n + 1).lines().take(3) {
            text.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(baseline) = &report.baseline {
        let total = &baseline.comparison.total;
        text.push_str(&format!(
            "  vs {}: {} → {} ({}{})\n",
            baseline.against,
            format_duration(total.a.mean_nanos as u64),
            format_duration(total.b.mean_nanos as u64),
            if total.delta_nanos < 0.0 { "−" } else { "+" },
            format_duration(total.delta_nanos.abs() as u64),
        ));
        for row in baseline
            .comparison
            .operations
            .iter()
            .filter(|r| r.operation != run_span.name && r.delta_nanos.abs() >= 1e6)
            .take(3)
        {
            text.push_str(&format!(
                "    {}: {} → {}\n",
                escape(&row.operation),
                format_duration(row.a.mean_nanos as u64),
                format_duration(row.b.mean_nanos as u64)
            ));
        }
    }
    text.push_str(&format!("  devtrace show {}\n", report.trace_id));
    if !report.attached.is_empty() {
        text.push_str(&format!(
            "  the program's spans came in {} trace(s) of their own (its SDK did not continue TRACEPARENT):\n",
            report.attached.len()
        ));
        for other in report.attached.iter().take(3) {
            text.push_str(&format!("  devtrace show {other}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{maybe_in_git_repository, parse_git_status};

    #[test]
    fn a_directory_without_git_in_it_or_above_starts_no_git() {
        let outside = tempfile::tempdir().unwrap();
        let nested = outside.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        if std::env::var_os("GIT_DIR").is_none() {
            assert!(!maybe_in_git_repository(&nested));
        }
        // A worktree's or submodule's `.git` is a file.
        std::fs::write(outside.path().join("a/.git"), "gitdir: elsewhere\n").unwrap();
        assert!(maybe_in_git_repository(&nested));
    }

    #[test]
    fn git_status_gives_the_commit_and_whether_tracked_files_changed() {
        let oid = "0123456789abcdef0123456789abcdef01234567";
        let clean = format!("# branch.oid {oid}\n# branch.head main\n");
        assert_eq!(parse_git_status(&clean), Some((oid.to_owned(), false)));
        let dirty = format!("{clean}1 .M N... 100644 100644 100644 a b src/lib.rs\n");
        assert_eq!(parse_git_status(&dirty), Some((oid.to_owned(), true)));
        // A repository without a commit yet has no commit to name.
        assert_eq!(
            parse_git_status("# branch.oid (initial)\n# branch.head main\n"),
            None
        );
    }
}

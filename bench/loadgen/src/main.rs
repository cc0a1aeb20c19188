//! `devtrace-loadgen`: a load generator for OTLP trace receivers.
//!
//! It pre-encodes realistic trace batches before the clock starts, sends them
//! over OTLP/gRPC and/or OTLP/HTTP (protobuf) with several connections,
//! honours back-pressure like a real exporter, optionally waits until the
//! server reports every accepted span as stored, and reports throughput,
//! latency and the CPU time of client and server separately (plus the
//! server's peak memory). See `bench/README.md`.

mod api;
mod batch;
mod grpc;
mod http;
#[cfg(test)]
mod loopback_tests;
mod procfs;
mod report;
mod rng;
mod run;
mod send;
mod traces;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use prost::Message;

use crate::api::StatsApi;
use crate::batch::{EncodedBatch, Pool, build_request, generate_traces};
use crate::procfs::{RssSampler, cpu_time};
use crate::report::{PoolInfo, Queryable, Report, ServerInfo};
use crate::rng::Rng;
use crate::run::{LoadPlan, LoadResult};
use crate::send::{RetryPolicy, Stats, send_batch};
use crate::traces::Generator;

/// Spans sent when neither --total-spans nor --duration is given.
const DEFAULT_TOTAL_SPANS: u64 = 2_000_000;
/// Requests in flight per connection in open-loop runs unless --in-flight says.
const OPEN_LOOP_IN_FLIGHT: usize = 32;

/// Load generator for OTLP trace receivers (gRPC and HTTP/protobuf).
#[derive(Debug, Parser)]
#[command(name = "devtrace-loadgen", version, about, long_about = None, args_override_self = true)]
struct Cli {
    /// OTLP/gRPC receiver, host:port (e.g. 127.0.0.1:4317).
    #[arg(long, value_name = "ADDR")]
    grpc: Option<String>,

    /// OTLP/HTTP receiver, host:port (e.g. 127.0.0.1:4318); posts to /v1/traces.
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,

    /// Connections per transport, each with one request in flight.
    #[arg(long, value_name = "N", default_value_t = 4)]
    connections: usize,

    /// Requests in flight per connection [default: 1, or 32 with --rate so
    /// that the offered load reaches the receiver]. gRPC multiplexes them on
    /// the connection; HTTP/1.1 opens a connection for each.
    #[arg(long, value_name = "N")]
    in_flight: Option<usize>,

    /// Spans per export request (40 traces of ~13 spans by default).
    #[arg(long, value_name = "N", default_value_t = 520)]
    spans_per_request: u64,

    /// Spans to send in all [default: 2000000 unless --duration is given].
    #[arg(long, value_name = "N")]
    total_spans: Option<u64>,

    /// Send for this many seconds (with --total-spans: whichever ends first).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,

    /// Offered load in spans per second (open loop); without it the senders
    /// go as fast as the receiver lets them (closed loop).
    #[arg(long, value_name = "SPANS_PER_SEC")]
    rate: Option<f64>,

    /// Open-loop queue capacity in requests; batches beyond it are dropped
    /// on the client, as an exporter's full queue would.
    #[arg(long, value_name = "REQUESTS", default_value_t = 16)]
    queue: usize,

    /// Seed of all generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// devtrace query API, host:port; after sending, polls GET /api/v1/stats
    /// until the span count covers every accepted span.
    #[arg(long, value_name = "ADDR")]
    api: Option<String>,

    /// Server process to watch: peak resident memory (sampled every 100 ms)
    /// and CPU time.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,

    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    json: bool,

    /// Also write the JSON report to FILE (whatever --json says).
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,

    /// Write one ExportTraceServiceRequest (protobuf) to FILE and exit;
    /// needs --traces or --one-big-trace.
    #[arg(long, value_name = "FILE")]
    write_sample: Option<PathBuf>,

    /// Number of traces for --write-sample.
    #[arg(long, value_name = "N")]
    traces: Option<usize>,

    /// A single trace of this many spans: written by --write-sample, or sent
    /// as one request (its trace id is reported).
    #[arg(long, value_name = "SPANS")]
    one_big_trace: Option<usize>,

    /// Distinct pre-encoded requests; longer runs re-send them with new trace ids.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pool_requests: usize,

    /// Retries of a batch after transient errors (throttling is retried
    /// without limit until --send-timeout).
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_retries: u32,

    /// Hard limit of the send phase in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900.0)]
    send_timeout: f64,

    /// How long to wait for the spans to become queryable, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    query_timeout: f64,

    /// Client runtime threads.
    #[arg(long, value_name = "N", default_value_t = 2)]
    threads: usize,

    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("devtrace-loadgen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the chosen mode; `Ok(false)` when the run completed but fell short
/// (failed requests, timeout, spans never queryable).
fn real_main(cli: Cli) -> Result<bool> {
    let seconds = |name: &str, v: f64| -> Result<Duration> {
        Duration::try_from_secs_f64(v)
            .with_context(|| format!("{name} must be a non-negative number of seconds"))
    };
    let duration = cli.duration.map(|d| seconds("--duration", d)).transpose()?;
    let send_timeout = seconds("--send-timeout", cli.send_timeout)?;
    let query_timeout = seconds("--query-timeout", cli.query_timeout)?;
    ensure!(
        cli.spans_per_request > 0,
        "--spans-per-request must be positive"
    );
    ensure!(cli.threads > 0, "--threads must be at least 1");
    let base_time_ns = now_ns()?;

    if let Some(path) = &cli.write_sample {
        return write_sample(&cli, path, base_time_ns).map(|()| true);
    }
    if cli.traces.is_some() {
        bail!("--traces only goes with --write-sample");
    }
    if cli.grpc.is_none() && cli.http.is_none() {
        bail!("nothing to send to: give --grpc ADDR and/or --http ADDR (or --write-sample FILE)");
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = match cli.one_big_trace {
        Some(spans) => runtime.block_on(one_big_trace(&cli, spans, base_time_ns, query_timeout))?,
        None => runtime.block_on(load(
            &cli,
            duration,
            send_timeout,
            query_timeout,
            base_time_ns,
        ))?,
    };
    let json = report.to_json();
    if let Some(path) = &cli.json_out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if cli.json {
        println!("{json}");
    } else {
        print!("{}", report.to_text());
    }
    Ok(report.ok())
}

fn now_ns() -> Result<u64> {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    Ok(d.as_nanos() as u64)
}

/// `--write-sample FILE`: one request with `--traces N` traces or one big trace.
fn write_sample(cli: &Cli, path: &PathBuf, base_time_ns: u64) -> Result<()> {
    let generator = Generator::new(base_time_ns);
    let mut rng = Rng::for_stream(cli.seed, 0);
    let traces = match (cli.traces, cli.one_big_trace) {
        (Some(_), Some(_)) => bail!("give either --traces or --one-big-trace, not both"),
        (None, None) => bail!("--write-sample needs --traces N or --one-big-trace SPANS"),
        (Some(n), None) => {
            ensure!(n > 0, "--traces must be positive");
            generate_traces(&generator, &mut rng, n)
        }
        (None, Some(spans)) => {
            ensure!(spans > 0, "--one-big-trace must be positive");
            vec![generator.big_trace(&mut rng, spans)]
        }
    };
    let trace_count = traces.len();
    let span_count: usize = traces.iter().map(|t| t.spans.len()).sum();
    let first_id = traces.first().map(|t| hex(&t.trace_id)).unwrap_or_default();
    let bytes = build_request(traces).encode_to_vec();
    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    if cli.json {
        let summary = serde_json::json!({
            "file": path.display().to_string(),
            "traces": trace_count,
            "spans": span_count,
            "bytes": bytes.len(),
            "first_trace_id": first_id,
        });
        println!("{summary}");
    } else {
        println!(
            "wrote {}: {trace_count} traces, {span_count} spans, {} bytes (first trace id {first_id})",
            path.display(),
            bytes.len()
        );
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn transports(cli: &Cli) -> Vec<&'static str> {
    let mut t = Vec::new();
    if cli.grpc.is_some() {
        t.push("grpc");
    }
    if cli.http.is_some() {
        t.push("http");
    }
    t
}

/// Measurements taken around the timed phase.
struct Watch {
    api: Option<StatsApi>,
    initial_spans: u64,
    server_pid: Option<u32>,
    sampler: Option<RssSampler>,
    server_cpu0: Option<Duration>,
    client_cpu0: Duration,
    started: Instant,
}

/// What was measured at the end of sending.
struct SendMark {
    client_cpu: Duration,
    server_cpu: Option<Duration>,
}

impl Watch {
    /// Reads the starting points; call right before the first request.
    async fn start(cli: &Cli) -> Result<Self> {
        let api = cli.api.as_deref().map(StatsApi::new).transpose()?;
        let initial_spans = match &api {
            Some(api) => api
                .spans()
                .await
                .context("reading the initial span count (--api)")?,
            None => 0,
        };
        let sampler = cli
            .server_pid
            .map(|pid| RssSampler::start(pid, Duration::from_millis(100)))
            .transpose()?;
        let server_cpu0 = cli.server_pid.and_then(|pid| cpu_time(Some(pid)).ok());
        Ok(Self {
            api,
            initial_spans,
            server_pid: cli.server_pid,
            sampler,
            server_cpu0,
            client_cpu0: cpu_time(None)?,
            started: Instant::now(),
        })
    }

    fn server_cpu(&self) -> Option<Duration> {
        let now = cpu_time(Some(self.server_pid?)).ok()?;
        Some(now.saturating_sub(self.server_cpu0?))
    }

    fn mark_sent(&self) -> Result<SendMark> {
        Ok(SendMark {
            client_cpu: cpu_time(None)?.saturating_sub(self.client_cpu0),
            server_cpu: self.server_cpu(),
        })
    }

    /// Waits until queryable, stops sampling, and fills in the report.
    async fn finish(
        self,
        accepted: u64,
        query_timeout: Duration,
        sent: SendMark,
        report: &mut Report,
    ) -> Result<()> {
        if let Some(api) = &self.api {
            let target = self.initial_spans + accepted;
            let wait = api.wait_for(target, query_timeout).await?;
            report.queryable = Some(Queryable {
                reached: wait.reached,
                initial_spans: self.initial_spans,
                target_spans: target,
                final_spans: wait.spans,
                wall: wait.at.duration_since(self.started),
            });
        }
        report.client_cpu_send = sent.client_cpu;
        report.client_cpu_total = cpu_time(None)?.saturating_sub(self.client_cpu0);
        let server_cpu_total = self.server_cpu();
        if let (Some(pid), Some(sampler)) = (self.server_pid, self.sampler) {
            report.server = Some(ServerInfo {
                pid,
                rss: sampler.stop()?,
                cpu_send: sent.server_cpu,
                cpu_total: server_cpu_total,
            });
        }
        Ok(())
    }
}

/// The load test proper.
async fn load(
    cli: &Cli,
    duration: Option<Duration>,
    send_timeout: Duration,
    query_timeout: Duration,
    base_time_ns: u64,
) -> Result<Report> {
    let total_spans = match (cli.total_spans, duration) {
        (Some(n), _) => Some(n),
        (None, None) => Some(DEFAULT_TOTAL_SPANS),
        (None, Some(_)) => None,
    };
    ensure!(total_spans != Some(0), "--total-spans must be positive");
    // A run smaller than one request is one request.
    let spr = total_spans.map_or(cli.spans_per_request, |t| cli.spans_per_request.min(t));
    let (requests, tail, full) = match total_spans {
        Some(t) => {
            let full = t / spr;
            let rest = t % spr;
            let tail = (rest > 0).then_some((full, rest as usize));
            (Some(full + u64::from(rest > 0)), tail, full)
        }
        None => (None, None, u64::MAX),
    };
    let pool_requests = (cli.pool_requests.max(1) as u64).min(full.max(1)) as usize;

    // Pre-encode everything the timed phase needs.
    let cpu0 = cpu_time(None)?;
    let t0 = Instant::now();
    let pool = Pool::generate(cli.seed, base_time_ns, spr as usize, pool_requests, tail)?;
    let pool_info = PoolInfo {
        requests: pool.len() as u64,
        traces: pool.traces(),
        spans: pool.spans(),
        bytes: pool.encoded_bytes(),
        wall: t0.elapsed(),
        cpu: cpu_time(None)?.saturating_sub(cpu0),
    };
    let pool = Arc::new(pool);

    let in_flight = cli.in_flight.unwrap_or(if cli.rate.is_some() {
        OPEN_LOOP_IN_FLIGHT
    } else {
        1
    });
    let senders = run::connect(
        cli.grpc.as_deref(),
        cli.http.as_deref(),
        cli.connections,
        in_flight,
    )
    .await?;
    let plan = LoadPlan {
        requests,
        duration,
        rate: cli.rate,
        spans_per_request: spr,
        queue: cli.queue,
        max_retries: cli.max_retries,
        send_timeout,
        progress: !cli.quiet,
    };

    let watch = Watch::start(cli).await?;
    let load = run::run(pool, senders, &plan).await?;
    let sent = watch.mark_sent()?;
    let accepted = load.total().spans_accepted;
    let mut report = Report {
        mode: if cli.rate.is_some() {
            "open-loop"
        } else {
            "closed-loop"
        },
        seed: cli.seed,
        transports: transports(cli),
        connections: cli.connections,
        in_flight,
        spans_per_request: spr,
        planned_spans: total_spans,
        duration,
        rate: cli.rate,
        pool: pool_info,
        load,
        queryable: None,
        client_cpu_send: Duration::ZERO,
        client_cpu_total: Duration::ZERO,
        server: None,
        trace_id: None,
    };
    watch
        .finish(accepted, query_timeout, sent, &mut report)
        .await?;
    Ok(report)
}

/// `--one-big-trace SPANS` against a receiver: one request with one trace.
async fn one_big_trace(
    cli: &Cli,
    spans: usize,
    base_time_ns: u64,
    query_timeout: Duration,
) -> Result<Report> {
    ensure!(spans > 0, "--one-big-trace must be positive");
    let cpu0 = cpu_time(None)?;
    let t0 = Instant::now();
    let trace = Generator::new(base_time_ns).big_trace(&mut Rng::for_stream(cli.seed, 0), spans);
    let trace_id = hex(&trace.trace_id);
    let batch = EncodedBatch::encode(vec![trace])?;
    let pool_info = PoolInfo {
        requests: 1,
        traces: batch.traces,
        spans: batch.spans,
        bytes: batch.bytes.len() as u64,
        wall: t0.elapsed(),
        cpu: cpu_time(None)?.saturating_sub(cpu0),
    };
    // Use the first transport given, gRPC before HTTP.
    let (grpc, http) = if cli.grpc.is_some() {
        (cli.grpc.as_deref(), None)
    } else {
        (None, cli.http.as_deref())
    };
    let mut senders = run::connect(grpc, http, 1, 1).await?;
    let mut sender = senders.remove(0);
    let protocol = sender.protocol();

    let watch = Watch::start(cli).await?;
    let mut stats = Stats::default();
    let policy = RetryPolicy {
        max_retries: cli.max_retries,
        deadline: Instant::now() + Duration::from_secs_f64(cli.send_timeout),
    };
    send_batch(
        &mut sender,
        batch.bytes.clone(),
        batch.spans,
        policy,
        &mut stats,
    )
    .await;
    let mut load = LoadResult {
        wall: watch.started.elapsed(),
        ..LoadResult::default()
    };
    let sent = watch.mark_sent()?;
    let accepted = stats.spans_accepted;
    match protocol {
        send::Protocol::Grpc => load.grpc = Some(stats),
        send::Protocol::Http => load.http = Some(stats),
    }
    let mut report = Report {
        mode: "one-big-trace",
        seed: cli.seed,
        transports: vec![protocol.name()],
        connections: 1,
        in_flight: 1,
        spans_per_request: batch.spans,
        planned_spans: Some(batch.spans),
        duration: None,
        rate: None,
        pool: pool_info,
        load,
        queryable: None,
        client_cpu_send: Duration::ZERO,
        client_cpu_total: Duration::ZERO,
        server: None,
        trace_id: Some(trace_id),
    };
    watch
        .finish(accepted, query_timeout, sent, &mut report)
        .await?;
    Ok(report)
}

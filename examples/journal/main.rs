//! The journal-generation story, as a program instrumented with the OpenTelemetry SDK.
//!
//! A commit hook triggers `journal.generate`: it gathers context (the git diff, and the chat
//! history loaded with one query per message: an N+1), makes three LLM calls (summary,
//! dialogue, technical decisions) one after another with realistic token counts, and writes
//! the journal file. Runs whose diff is large time out in the summary call.
//!
//! Latencies are simulated on a virtual clock: every span gets explicit start and end times,
//! so a 15-second run takes milliseconds and needs no network. Jitter is seeded by the run
//! number, so the same run always looks the same; the fixed variant draws its own. `--fixed`
//! makes the three LLM calls concurrently, as devtrace recommends.
//!
//! Exports over OTLP/gRPC, configured by the standard `OTEL_EXPORTER_OTLP_*` variables.
//!
//! Usage: journal-demo --run N [--fixed] [--start-unix-ms MS]

use opentelemetry::trace::{
    SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Mean simulated latencies (the story's numbers).
const SUMMARY: Duration = Duration::from_millis(9_040);
const DIALOGUE: Duration = Duration::from_millis(4_890);
const DECISIONS: Duration = Duration::from_millis(1_670);
const GIT_DIFF: Duration = Duration::from_millis(40);
const MESSAGE_QUERY: Duration = Duration::from_micros(3_100);
const CHAT_MESSAGES: u64 = 40;
const FILE_WRITE: Duration = Duration::from_millis(5);
/// The summary call gives up after this long; large diffs make it that slow.
const LLM_TIMEOUT: Duration = Duration::from_secs(12);
/// Diffs above this make the summary call time out.
const LARGE_DIFF_BYTES: u64 = 500 * 1024;

struct Options {
    run: u64,
    fixed: bool,
    start: SystemTime,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        run: 0,
        fixed: false,
        start: SystemTime::now(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--run" => {
                options.run = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--run needs a number")?
            }
            "--fixed" => options.fixed = true,
            "--start-unix-ms" => {
                let ms: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--start-unix-ms needs a number")?;
                options.start = UNIX_EPOCH + Duration::from_millis(ms);
            }
            "--help" | "-h" => {
                return Err("usage: journal-demo --run N [--fixed] [--start-unix-ms MS]".into());
            }
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok(options)
}

/// A tiny seeded generator (SplitMix64): the same run number always gives the same jitter.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `base` scaled by a factor in [1 − spread, 1 + spread].
    fn around(&mut self, base: Duration, spread: f64) -> Duration {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(1.0 - spread + 2.0 * spread * unit)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

struct Journal<'a> {
    tracer: &'a opentelemetry_sdk::trace::SdkTracer,
    jitter: Jitter,
}

impl Journal<'_> {
    fn span(
        &self,
        name: &'static str,
        parent: &Context,
        start: SystemTime,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Context {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(self.tracer, parent);
        parent.with_span(span)
    }

    fn end(context: &Context, end: SystemTime) {
        context.span().end_with_timestamp(end);
    }

    /// One LLM call; returns when it ended and whether it timed out.
    fn llm_call(
        &mut self,
        name: &'static str,
        parent: &Context,
        start: SystemTime,
        latency: Duration,
        tokens: (i64, i64),
    ) -> (SystemTime, bool) {
        let timed_out = latency > LLM_TIMEOUT;
        let context = self.span(
            name,
            parent,
            start,
            SpanKind::Client,
            vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", "openai"),
                KeyValue::new("gen_ai.system", "openai"),
                KeyValue::new("gen_ai.request.model", "gpt-4o"),
                KeyValue::new("gen_ai.usage.input_tokens", tokens.0),
                KeyValue::new(
                    "gen_ai.usage.output_tokens",
                    if timed_out { 0 } else { tokens.1 },
                ),
                KeyValue::new("server.address", "api.openai.com"),
            ],
        );
        let end = start + latency.min(LLM_TIMEOUT);
        if timed_out {
            let message = format!("LLM request timed out after {}s", LLM_TIMEOUT.as_secs());
            context.span().add_event_with_timestamp(
                "exception",
                end,
                vec![
                    KeyValue::new("exception.type", "TimeoutError"),
                    KeyValue::new("exception.message", message.clone()),
                    KeyValue::new(
                        "exception.stacktrace",
                        "Traceback (most recent call last):\n  File \"journal/llm.py\", line 88, in complete\n    return client.chat(messages, timeout=12)\nTimeoutError: LLM request timed out after 12s",
                    ),
                ],
            );
            context.span().set_status(Status::error(message));
        }
        Self::end(&context, end);
        (end, timed_out)
    }

    /// The whole run; returns whether it failed.
    fn generate(&mut self, start: SystemTime, run: u64, fixed: bool) -> bool {
        // Every third run comes with a large diff: the one that times out.
        let diff_bytes = if run % 3 == 2 {
            self.jitter.between(600_000, 900_000)
        } else {
            self.jitter.between(20_000, 200_000)
        };
        let revision = format!("{:012x}", self.jitter.next() >> 16);
        let files = self.jitter.between(1, 30) as i64;
        let root = self.span(
            "journal.generate",
            &Context::new(),
            start,
            SpanKind::Internal,
            vec![
                KeyValue::new("journal.trigger", "post-commit"),
                KeyValue::new(
                    "journal.mode",
                    if fixed { "concurrent" } else { "sequential" },
                ),
                KeyValue::new("vcs.ref.head.revision", revision),
            ],
        );

        // Context gathering: the diff, then the chat history one message at a time.
        let gather = self.span("context.gather", &root, start, SpanKind::Internal, vec![]);
        let diff_end = start + self.jitter.around(GIT_DIFF, 0.2);
        let diff = self.span(
            "git.diff",
            &gather,
            start,
            SpanKind::Internal,
            vec![
                KeyValue::new("diff.size_bytes", diff_bytes as i64),
                KeyValue::new("diff.files", files),
            ],
        );
        Self::end(&diff, diff_end);
        let history = self.span(
            "chat_history.load",
            &gather,
            diff_end,
            SpanKind::Internal,
            vec![KeyValue::new("chat.messages", CHAT_MESSAGES as i64)],
        );
        let mut cursor = diff_end;
        for message in 0..CHAT_MESSAGES {
            let id = 1_000 + run * 100 + message;
            let query = self.span(
                "SELECT messages",
                &history,
                cursor,
                SpanKind::Client,
                vec![
                    KeyValue::new("db.system.name", "sqlite"),
                    KeyValue::new(
                        "db.query.text",
                        format!("SELECT author, body FROM messages WHERE id = {id}"),
                    ),
                ],
            );
            cursor += self.jitter.around(MESSAGE_QUERY, 0.3);
            Self::end(&query, cursor);
        }
        Self::end(&history, cursor);
        Self::end(&gather, cursor);

        // The three LLM calls: one after another, or all at once when fixed.
        let slow_summary = diff_bytes > LARGE_DIFF_BYTES;
        let summary_latency = if slow_summary {
            LLM_TIMEOUT + Duration::from_secs(1)
        } else {
            self.jitter.around(SUMMARY, 0.05)
        };
        let dialogue_latency = self.jitter.around(DIALOGUE, 0.05);
        let decisions_latency = self.jitter.around(DECISIONS, 0.05);
        let summary_tokens = (8_200 + diff_bytes as i64 / 100, 620);
        let (summary_end, failed) = self.llm_call(
            "summary.generate",
            &root,
            cursor,
            summary_latency,
            summary_tokens,
        );
        let mut end = summary_end;
        if !failed || fixed {
            let next = if fixed { cursor } else { summary_end };
            let (dialogue_end, _) = self.llm_call(
                "dialogue.generate",
                &root,
                next,
                dialogue_latency,
                (12_499, 310),
            );
            let next = if fixed { cursor } else { dialogue_end };
            let (decisions_end, _) = self.llm_call(
                "technical_decisions.generate",
                &root,
                next,
                decisions_latency,
                (3_100, 240),
            );
            end = end.max(dialogue_end).max(decisions_end);
        }
        if !failed {
            let write = self.span(
                "journal.write",
                &root,
                end,
                SpanKind::Internal,
                vec![KeyValue::new("file.path", "journal/entries.md")],
            );
            end += self.jitter.around(FILE_WRITE, 0.2);
            Self::end(&write, end);
        } else {
            root.span()
                .set_status(Status::error("summary generation timed out"));
        }
        Self::end(&root, end);
        failed
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("journal-demo: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    // The tonic exporter needs a runtime for its connection; spans are made on this thread.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let provider = {
        let _enter = runtime.enter();
        let exporter = SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| format!("OTLP exporter: {e}"))?;
        let resource = Resource::builder().with_service_name("journal").build();
        SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build()
    };
    let tracer = provider.tracer("journal");
    let mut journal = Journal {
        tracer: &tracer,
        // The fixed program draws its own latencies: its runs are new measurements, not replays.
        jitter: Jitter(options.run.wrapping_mul(7919) + if options.fixed { 104_729 } else { 17 }),
    };
    journal.generate(options.start, options.run, options.fixed);
    // Shutting down flushes: when this returns Ok, devtrace has acknowledged every span.
    provider
        .shutdown()
        .map_err(|e| format!("exporting spans: {e}"))?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

//! `devtrace show`: one trace as a terminal waterfall, or as JSON.

use crate::cli::{ColorChoice, ShowArgs};
use crate::output::{Style, print_fitted, terminal_width};
use anyhow::Result;
use devtrace_analyze::errors::{causal_chain, error_spans, first_error};
use devtrace_analyze::fold::DEFAULT_MIN_RUN;
use devtrace_analyze::{AnalyzedTrace, FoldedChild, TraceTree, fold_children};
use devtrace_model::{LogBatch, Span, SpanBatch, semconv};
use devtrace_query::causal::WaitView;
use devtrace_query::sessions::run_origin;
use devtrace_query::text::{TextOptions, escape, quote, truncate};
use devtrace_query::timefmt::{format_duration, format_timestamp_zoned};
use devtrace_store::{Store, StoreError, StoredTrace};
use std::process::ExitCode;

pub fn run(
    store: &dyn Store,
    args: &ShowArgs,
    color: ColorChoice,
    data: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let trace_id = store.resolve_trace_id(&args.trace)?;
    let trace = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(args.trace.clone()))?;
    let logs = store.logs_for_trace(trace_id)?;
    if args.json {
        let value = devtrace_query::json::trace_json(&trace, &logs);
        crate::output::print_json(&value)?;
    } else {
        let options = Options {
            attrs: args.attrs,
            min_run: if args.no_fold {
                usize::MAX
            } else {
                DEFAULT_MIN_RUN
            },
            width: terminal_width(),
            style: Style::for_stdout(color),
        };
        let mut out = render(&trace, &logs, &options);
        let attached = devtrace_query::runs::attached_traces(&trace.spans.spans);
        if !attached.is_empty() {
            out.push_str(&format!(
                "\nthe program's spans are in {} of their own (its SDK did not continue TRACEPARENT): {}\n",
                if attached.len() == 1 { "a trace" } else { "traces" },
                attached
                    .iter()
                    .map(|id| format!("devtrace show {}", &id[..id.len().min(8)]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(origin) = run_origin(store, trace_id, &trace.spans.spans)? {
            out.push_str(&format!(
                "\nmade in session {} ({}) by the command in entry [{}]: devtrace session show {}\n",
                quote(&origin.title),
                escape(&origin.agent),
                &origin.tool_span_id[..8],
                &origin.session_trace_id[..8],
            ));
        }
        out.push_str(&super::serve::web_link_line(
            data,
            &devtrace_query::links::trace(&trace_id.to_hex(), None),
        ));
        print_fitted(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub struct Options {
    pub attrs: bool,
    pub min_run: usize,
    pub width: usize,
    pub style: Style,
}

struct Waterfall<'a> {
    batch: &'a SpanBatch,
    tree: TraceTree,
    options: &'a Options,
    start: u64,
    total: u64,
    label_width: usize,
    bar_width: usize,
    /// What each span waited for on another thread, worded ([`devtrace_query::causal`]).
    waits: Vec<Vec<WaitView>>,
    out: String,
}

pub fn render(trace: &StoredTrace, logs: &LogBatch, options: &Options) -> String {
    let style = &options.style;
    let summary = &trace.summary;
    let mut out = format!(
        "{}  {}  {}  {}  {}\n{}\n\n",
        style.bold(&escape(&summary.root_name)),
        style.cyan(&escape(&summary.service)),
        devtrace_query::text::trace_duration(summary),
        devtrace_query::text::counted(summary.span_count, "span", "spans"),
        match summary.error_count {
            0 => "no errors".to_owned(),
            1 => style.red("1 error"),
            n => style.red(&format!("{n} errors")),
        },
        style.dim(&format!(
            "trace {}  started {}",
            summary.trace_id,
            format_timestamp_zoned(summary.start_unix_nano)
        )),
    );
    let label_width = (options.width * 45 / 100).max(30);
    let mut waterfall = Waterfall {
        batch: &trace.spans,
        tree: TraceTree::build(&trace.spans),
        options,
        start: summary.start_unix_nano,
        total: summary.extent_nanos().max(1),
        label_width,
        bar_width: options.width.saturating_sub(label_width + 13).max(10),
        waits: waits_by_span(trace),
        out: String::new(),
    };
    waterfall.tree_lines();
    out.push_str(&waterfall.out);
    if summary.error_count > 0 {
        out.push_str(&render_first_error(trace));
    }
    if !logs.logs.is_empty() {
        out.push_str(&render_logs(
            &trace.spans,
            logs,
            summary.start_unix_nano,
            style,
        ));
    }
    out
}

/// Levels of nesting the tree guide grows for; deeper spans keep the guide of this depth and
/// show their depth instead, so a 50,000-deep call chain prints lines of bounded width.
const MAX_GUIDE_DEPTH: usize = 24;

/// One child list on the way down the tree: the lines still to print and how they are led.
struct Level {
    items: std::iter::Enumerate<std::vec::IntoIter<FoldedChild>>,
    count: usize,
    prefix: String,
    /// `None` for the trace's roots (a single root needs no tree guide).
    parent: Option<usize>,
    depth: usize,
}

impl Waterfall<'_> {
    /// The trace's spans as a tree, depth first. Iterative (an explicit stack), so a
    /// 100,000-deep chain of calls costs heap, not the thread's stack.
    fn tree_lines(&mut self) {
        let roots = self.tree.roots.clone();
        let mut stack = vec![self.level(&roots, String::new(), None, 0)];
        let mut told_depth_cap = false;
        while let Some(level) = stack.last_mut() {
            let Some((n, item)) = level.items.next() else {
                stack.pop();
                continue;
            };
            let last = n + 1 == level.count;
            let branch = if level.parent.is_none() && level.count == 1 {
                ""
            } else if last {
                "└─ "
            } else {
                "├─ "
            };
            let capped = level.depth >= MAX_GUIDE_DEPTH;
            let lead = if capped {
                format!("{}↳{} {branch}", level.prefix, level.depth)
            } else {
                format!("{}{branch}", level.prefix)
            };
            let child_prefix = if capped {
                level.prefix.clone()
            } else {
                format!(
                    "{}{}",
                    level.prefix,
                    if branch.is_empty() {
                        ""
                    } else if last {
                        "   "
                    } else {
                        "│  "
                    }
                )
            };
            let (parent, depth) = (level.parent, level.depth);
            if capped && !told_depth_cap {
                told_depth_cap = true;
                let note = format!(
                    "⋮ nested deeper than {MAX_GUIDE_DEPTH} levels: the guide stops growing, ↳N is a span's depth"
                );
                let note = self.options.style.dim(&note);
                self.out.push_str(&format!("{}{note}\n", level.prefix));
            }
            match item {
                FoldedChild::Span(i) => {
                    self.span(i, parent, &lead, &child_prefix);
                    let children = self.tree.children[i].clone();
                    let below = self.level(&children, child_prefix, Some(i), depth + 1);
                    stack.push(below);
                }
                FoldedChild::Run {
                    name,
                    spans,
                    total_nanos,
                    errors,
                } => self.run(
                    &name,
                    &spans,
                    total_nanos,
                    errors,
                    parent,
                    &lead,
                    &child_prefix,
                ),
            }
        }
    }

    /// The child list `children` of `parent`, folded, led by `prefix`.
    fn level(
        &self,
        children: &[usize],
        prefix: String,
        parent: Option<usize>,
        depth: usize,
    ) -> Level {
        let folded = fold_children(self.batch, children, self.options.min_run);
        Level {
            count: folded.len(),
            items: folded.into_iter().enumerate(),
            prefix,
            parent,
            depth,
        }
    }

    /// A folded run of same-named siblings: one line, and how many of them failed.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        name: &str,
        spans: &[usize],
        total_nanos: u64,
        errors: usize,
        parent: Option<usize>,
        lead: &str,
        child_prefix: &str,
    ) {
        let first = &self.batch.spans[spans[0]];
        let end = spans
            .iter()
            .map(|s| self.batch.spans[*s].end_unix_nano)
            .max()
            .unwrap_or(0);
        // Successes and failures apart: a timeout is not a typical repeat.
        let calls =
            devtrace_analyze::outcome::calls_of(spans.iter().map(|s| &self.batch.spans[*s]));
        let label = format!(
            "× {} {} … {}{}",
            spans.len(),
            escape(name),
            devtrace_analyze::outcome::typical(&calls).unwrap_or_default(),
            self.service_change(spans[0], parent)
        );
        self.line(
            lead,
            &label,
            total_nanos,
            first.start_unix_nano,
            end,
            errors > 0,
        );
        if errors > 0 {
            let text = self
                .options
                .style
                .red(&format!("✗ {errors} of {} failed", spans.len()));
            self.out.push_str(&format!("{child_prefix}  {text}\n"));
        }
    }

    /// " → payments" when span `i` runs in another service than its parent: where a
    /// multi-service trace crosses from one service to the next.
    fn service_change(&self, i: usize, parent: Option<usize>) -> String {
        let service = |i: usize| self.batch.resource_of(&self.batch.spans[i]).service_name();
        match parent {
            Some(p) if service(p) != service(i) => format!(" → {}", escape(service(i))),
            _ => String::new(),
        }
    }

    /// Span `i`'s own lines (its children are the caller's next level).
    fn span(&mut self, i: usize, parent: Option<usize>, lead: &str, child_prefix: &str) {
        let span = &self.batch.spans[i];
        self.line(
            lead,
            &format!("{}{}", escape(&span.name), self.service_change(i, parent)),
            span.duration_nanos(),
            span.start_unix_nano,
            span.end_unix_nano,
            span.is_error(),
        );
        if span.is_error() {
            let text = self
                .options
                .style
                .red(&format!("✗ {}", escape(&error_text(span))));
            self.out.push_str(&format!("{child_prefix}  {text}\n"));
        }
        for wait in &self.waits[i] {
            let text = self.options.style.dim(&format!("⇠ {}", wait.text));
            self.out.push_str(&format!("{child_prefix}  {text}\n"));
        }
        for note in span_notes(span) {
            let text = self.options.style.dim(&note);
            self.out.push_str(&format!("{child_prefix}  {text}\n"));
        }
        if self.options.attrs {
            self.details(span, child_prefix);
        }
    }

    fn line(&mut self, lead: &str, label: &str, duration: u64, start: u64, end: u64, error: bool) {
        let style = &self.options.style;
        let room = self.label_width.saturating_sub(lead.chars().count()).max(8);
        let label = truncate(label, room);
        let pad = self
            .label_width
            .saturating_sub(lead.chars().count() + label.chars().count());
        let offset = ((start.saturating_sub(self.start)) as u128 * self.bar_width as u128
            / self.total as u128) as usize;
        let offset = offset.min(self.bar_width.saturating_sub(1));
        let length = ((end.saturating_sub(start)) as u128 * self.bar_width as u128
            / self.total as u128) as usize;
        let length = length.clamp(1, self.bar_width - offset);
        let bar = "█".repeat(length);
        let bar = if error {
            style.red(&bar)
        } else {
            style.cyan(&bar)
        };
        let label = if error { style.red(&label) } else { label };
        self.out.push_str(&format!(
            "{}{label}{} {:>10}  {}{bar}\n",
            style.dim(lead),
            " ".repeat(pad),
            format_duration(duration),
            " ".repeat(offset),
        ));
    }

    fn details(&mut self, span: &Span, prefix: &str) {
        let style = self.options.style;
        let resource = self.batch.resource_of(span);
        self.out.push_str(&format!(
            "{prefix}  {}\n",
            style.dim(&format!(
                "{} · {} · span {}",
                escape(resource.service_name()),
                span.kind.as_str(),
                span.span_id
            ))
        ));
        let text = TextOptions::plain(self.options.width);
        let indent = prefix.chars().count() + 4;
        for kv in &span.attributes {
            self.out.push_str(&format!(
                "{prefix}  {} ={}\n",
                style.yellow(&escape(&kv.key)),
                text.block(&kv.value.to_display_string(), indent)
            ));
        }
        for event in &span.events {
            let offset = format_duration(event.time_unix_nano.saturating_sub(span.start_unix_nano));
            self.out.push_str(&format!(
                "{prefix}  • +{offset} {}\n",
                style.bold(&escape(&event.name))
            ));
            for kv in &event.attributes {
                // A stack trace reads as its lines, each behind a gutter.
                self.out.push_str(&format!(
                    "{prefix}      {}{}\n",
                    style.dim(&format!("{} =", escape(&kv.key))),
                    text.block(&kv.value.to_display_string(), indent + 4)
                ));
            }
        }
        for link in &span.links {
            self.out.push_str(&format!(
                "{prefix}  → link to trace {} span {}\n",
                link.trace_id, link.span_id
            ));
        }
    }
}

/// What each span of `trace` waited for on another thread (nothing is analysed when no span
/// has a link).
fn waits_by_span(trace: &StoredTrace) -> Vec<Vec<WaitView>> {
    if !trace.spans.spans.iter().any(|s| !s.links.is_empty()) {
        return vec![Vec::new(); trace.spans.spans.len()];
    }
    let analyzed = AnalyzedTrace::new(trace.summary.trace_id, trace.spans.clone());
    devtrace_query::causal::waits_by_span(&analyzed)
}

/// Changes of a state diff shown under its span (the rest are counted).
const DIFF_LINES_SHOWN: usize = 6;

/// What an LLM call or a state change did, in a line or a few, shown under its span.
fn span_notes(span: &Span) -> Vec<String> {
    let text = |key: &str| span.attr(key).map(|v| v.to_display_string());
    let mut notes = Vec::new();
    let model =
        text(semconv::GEN_AI_REQUEST_MODEL).or_else(|| text(semconv::GEN_AI_RESPONSE_MODEL));
    let tokens = (
        span.attr(semconv::GEN_AI_USAGE_INPUT_TOKENS)
            .and_then(|v| v.as_i64()),
        span.attr(semconv::GEN_AI_USAGE_OUTPUT_TOKENS)
            .and_then(|v| v.as_i64()),
    );
    if model.is_some() || tokens != (None, None) {
        let mut parts = vec![format!(
            "LLM {}",
            model.map_or_else(|| "call".to_owned(), |m| escape(&m))
        )];
        if let (Some(input), Some(output)) = tokens {
            parts.push(format!("{input} → {output} tokens"));
        }
        if let Some(reasons) = text(semconv::GEN_AI_FINISH_REASONS) {
            parts.push(format!(
                "finish {}",
                escape(reasons.trim_matches(['[', ']']))
            ));
        }
        notes.push(format!("◆ {}", parts.join(" · ")));
    }
    if let Some(diff) = text(semconv::STATE_DIFF) {
        let lines: Vec<&str> = diff.lines().collect();
        let total = span
            .attr(semconv::STATE_CHANGES)
            .and_then(|v| v.as_i64())
            .map_or(lines.len(), |n| n.max(0) as usize);
        for line in lines.iter().take(DIFF_LINES_SHOWN) {
            notes.push(format!("Δ {}", escape(line)));
        }
        if total > DIFF_LINES_SHOWN {
            notes.push(format!("Δ … {} more changes", total - DIFF_LINES_SHOWN));
        }
    }
    notes
}

/// The first error's causal chain (what failed, what it consumed, its stack trace, locals and
/// state), when the trace has more to say about it than the error line.
fn render_first_error(trace: &StoredTrace) -> String {
    let analyzed = AnalyzedTrace::new(trace.summary.trace_id, trace.spans.clone());
    let origins = error_spans(&analyzed);
    let Some(first) = first_error(&analyzed) else {
        return String::new();
    };
    let chain = causal_chain(&analyzed, first);
    // Only when it says more than the waterfall's error line already does.
    let context = !chain.consumed.is_empty()
        || chain.exceptions.iter().any(|e| {
            !e.stacktrace.is_empty() || !e.frames.is_empty() || e.state_snapshot.is_some()
        });
    if !context {
        return String::new();
    }
    let mut out = String::from("\n");
    if origins.len() > 1 {
        out.push_str(&format!(
            "the first of {} errors (`devtrace show {} --attrs` has them all):\n",
            origins.len(),
            trace.summary.trace_id
        ));
    }
    out.push_str(&devtrace_query::text::errors::render_chain(
        None,
        &chain,
        None,
        &devtrace_query::text::TextOptions::plain(crate::output::terminal_width()),
    ));
    out
}

/// The most useful one-line description of a failure: the exception, else the status message.
fn error_text(span: &Span) -> String {
    let exception = span
        .events
        .iter()
        .find(|e| e.name == semconv::EXCEPTION_EVENT);
    if let Some(event) = exception {
        let get =
            |key| devtrace_model::find_attr(&event.attributes, key).map(|v| v.to_display_string());
        match (
            get(semconv::EXCEPTION_TYPE),
            get(semconv::EXCEPTION_MESSAGE),
        ) {
            (Some(kind), Some(message)) => return format!("{kind}: {message}"),
            (Some(kind), None) => return kind,
            (None, Some(message)) => return message,
            (None, None) => {}
        }
    }
    if span.status.message.is_empty() {
        "error".to_owned()
    } else {
        span.status.message.clone()
    }
}

fn render_logs(spans: &SpanBatch, logs: &LogBatch, start: u64, style: &Style) -> String {
    let mut out = format!("\n{}\n", style.bold(&format!("logs ({})", logs.logs.len())));
    for log in &logs.logs {
        let offset = log.effective_time() as i128 - start as i128;
        let offset = if offset >= 0 {
            format!("+{}", format_duration(offset as u64))
        } else {
            format!("-{}", format_duration((-offset) as u64))
        };
        let span_name = log
            .span_id
            .and_then(|id| spans.spans.iter().find(|s| s.span_id == id))
            .map(|s| format!("  [{}]", escape(&s.name)))
            .unwrap_or_default();
        let severity = if log.severity_text.is_empty() {
            format!("sev{}", log.severity_number)
        } else {
            escape(&log.severity_text)
        };
        let severity = if log.severity_number >= 17 {
            style.red(&severity)
        } else {
            severity
        };
        out.push_str(&format!(
            "  {offset:>10}  {severity:<5}  {}{}\n",
            escape(&log.body.to_display_string()),
            style.dim(&span_name)
        ));
    }
    out
}

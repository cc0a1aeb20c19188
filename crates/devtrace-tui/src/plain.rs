//! `devtrace watch --plain`: one line per event, for logs and CI. Recorded text is escaped as
//! on the screen; a closed pipe (`watch --plain | head`) ends the watch quietly.

use crate::source::Source;
use crate::text::{clock, data, duration, quoted, sentence, short_id};
use crate::watcher::{Request, Update, Watcher};
use devtrace_query::live::{ActionLine, SessionProgress};
use devtrace_store::TraceSummary;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

/// What `--plain` remembers to print each thing once.
#[derive(Default)]
pub struct Printer {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// trace id → span count printed.
    traces: HashMap<devtrace_model::TraceId, u64>,
    /// session → (tool calls, errors, running span) printed.
    sessions: HashMap<devtrace_model::TraceId, (u64, u64, Option<String>)>,
    findings: HashSet<String>,
    last_error: Option<String>,
}

/// One JSON line, written with devtrace's safe formatter (DEL, C1, bidi controls, separators and
/// backticks as `\u` escapes, which plain JSON leaves raw): lossless, and inert in a terminal.
fn json_line(value: &serde_json::Value) -> String {
    devtrace_query::safe_json::to_string(value).unwrap_or_default()
}

fn action_json(action: &ActionLine) -> serde_json::Value {
    serde_json::json!({
        "tool": action.tool,
        "subject": action.subject,
        "outcome": action.outcome,
        "exit_code": action.exit_code,
        "error": action.error,
    })
}

impl Printer {
    /// The lines an update prints (possibly none).
    pub fn lines(&mut self, update: &Update) -> Vec<String> {
        let mut out = Vec::new();
        match update {
            Update::Snapshot { .. } => self.last_error = None,
            Update::TraceAnalysed(found) => {
                let s = &found.summary;
                if self.traces.insert(found.trace_id, s.span_count) != Some(s.span_count) {
                    out.push(if self.json {
                        json_line(&serde_json::json!({
                            "event": "trace",
                            "trace_id": found.trace_id,
                            "operation": s.root_name,
                            "service": s.service,
                            "start_unix_nano": s.start_unix_nano,
                            "duration_ns": s.duration_nanos(),
                            "spans": s.span_count,
                            "errors": s.error_count,
                        }))
                    } else {
                        trace_line(s)
                    });
                }
                for finding in &found.findings {
                    if !self
                        .findings
                        .insert(format!("{}/{}", finding.fingerprint, found.trace_id))
                    {
                        continue;
                    }
                    out.push(if self.json {
                        json_line(&serde_json::json!({
                            "event": "finding",
                            "kind": finding.kind.as_str(),
                            "title": finding.title,
                            "fingerprint": finding.fingerprint,
                            "trace_id": found.trace_id,
                            "evidence": finding.evidence,
                        }))
                    } else {
                        format!(
                            "{} finding {} trace {}: {}",
                            clock(s.end_unix_nano),
                            finding.kind.as_str(),
                            short_id(&found.trace_id.to_hex()),
                            sentence(&finding.title, 300)
                        )
                    });
                }
            }
            Update::Skipped(_) | Update::Timeline(_) | Update::Waterfall(_) => {}
            Update::Session(progress) => self.session(progress, &mut out),
            // The same failure every tick (a store not created yet) is said once.
            Update::Error(message) => {
                if self.last_error.as_ref() != Some(message) {
                    out.push(if self.json {
                        json_line(&serde_json::json!({"event": "error", "message": message}))
                    } else {
                        format!("error: {}", data(message, 500))
                    });
                    self.last_error = Some(message.clone());
                }
            }
        }
        out
    }

    fn session(&mut self, progress: &SessionProgress, out: &mut Vec<String>) {
        let facts = &progress.facts;
        let id = short_id(&progress.trace_id.to_hex()).to_owned();
        let running = progress.running.as_ref().map(|r| r.span_id.to_hex());
        let key = (facts.tool_calls, facts.errors, running);
        if self.sessions.get(&progress.trace_id) != Some(&key) {
            out.push(if self.json {
                json_line(&serde_json::json!({
                    "event": "session",
                    "trace_id": progress.trace_id,
                    "agent": facts.agent,
                    "title": facts.title,
                    "turn": progress.turn.as_ref().map(|t| t.number),
                    "tools_ok": progress.tools_ok,
                    "tools_failed": progress.tools_failed,
                    "input_tokens": facts.input_tokens,
                    "output_tokens": facts.output_tokens,
                    "cost": progress.cost,
                    "running": progress.running.as_ref().map(action_json),
                    "last": progress.last_action.as_ref().map(action_json),
                }))
            } else {
                let mut line = format!(
                    "{} session {} {} {} turn {} tools {} ok {} failed tokens {} in {} out",
                    clock(facts.end_unix_nano),
                    id,
                    data(&facts.agent, 30),
                    quoted(&facts.title, 80),
                    progress.turn.as_ref().map_or(0, |t| t.number),
                    progress.tools_ok,
                    progress.tools_failed,
                    facts.input_tokens,
                    facts.output_tokens
                );
                if let Some(cost) = &progress.cost {
                    line.push_str(&format!(
                        " cost {}{}",
                        if cost.unpriced_calls > 0 { "≥" } else { "" },
                        devtrace_analyze::pricing::format_dollars(cost.usd)
                    ));
                }
                if let Some(running) = &progress.running {
                    line.push_str(&format!(
                        " running {} {}",
                        data(&running.tool, 30),
                        quoted(&running.subject, 120)
                    ));
                } else if let Some(last) = &progress.last_action {
                    line.push_str(&format!(
                        " last {} {} {}",
                        data(&last.tool, 30),
                        quoted(&last.subject, 120),
                        last.outcome
                    ));
                }
                line
            });
            self.sessions.insert(progress.trace_id, key);
        }
        for fired in &progress.findings {
            if !self.findings.insert(format!(
                "{}/{}",
                fired.finding.fingerprint, progress.trace_id
            )) {
                continue;
            }
            out.push(if self.json {
                json_line(&serde_json::json!({
                    "event": "finding",
                    "kind": fired.finding.kind.as_str(),
                    "title": fired.finding.title,
                    "fingerprint": fired.finding.fingerprint,
                    "session_trace_id": progress.trace_id,
                    "at_unix_nano": fired.at_unix_nano,
                    "evidence": fired.evidence.as_ref().map(action_json),
                }))
            } else {
                let evidence = fired
                    .evidence
                    .as_ref()
                    .map(|e| {
                        format!(
                            " [on {} {} {}]",
                            data(&e.tool, 30),
                            quoted(&e.subject, 120),
                            e.outcome
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "{} finding {} session {}: {}{evidence}",
                    clock(fired.at_unix_nano),
                    fired.finding.kind.as_str(),
                    id,
                    sentence(&fired.finding.title, 300)
                )
            });
        }
    }
}

fn trace_line(s: &TraceSummary) -> String {
    format!(
        "{} trace {} {} service {} {} {} spans {} errors",
        clock(s.end_unix_nano),
        short_id(&s.trace_id.to_hex()),
        quoted(&s.root_name, 120),
        quoted(&s.service, 60),
        duration(s.duration_nanos()),
        s.span_count,
        s.error_count
    )
}

/// Prints events until a signal, a closed pipe, or `until` has passed.
pub fn run(
    mut source: Box<dyn Source>,
    query: devtrace_query::live::LiveQuery,
    session: Option<String>,
    until: Option<Duration>,
    json: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    crate::app::stop_on_signals();
    let started = Instant::now();
    let mut watcher = Watcher::new(query);
    let mut printer = Printer {
        json,
        ..Printer::default()
    };
    if !json {
        writeln!(out, "watching {}", data(&source.describe(), 300))?;
        out.flush()?;
    }
    if let Some(session) = session {
        watcher.request(source.as_mut(), Request::Follow(Some(session)));
    }
    loop {
        if crate::app::stopping() || until.is_some_and(|u| started.elapsed() >= u) {
            return Ok(());
        }
        let tick = Instant::now();
        for update in watcher.tick(source.as_mut()) {
            for line in printer.lines(&update) {
                match writeln!(out, "{line}").and_then(|_| out.flush()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    other => other?,
                }
            }
        }
        std::thread::sleep(crate::app::TICK.saturating_sub(tick.elapsed()));
    }
}

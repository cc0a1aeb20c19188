//! `devtrace watch --plain`: one line per event, for logs and CI. Recorded text is escaped as
//! on the screen; a closed pipe (`watch --plain | head`) ends the watch quietly.

use crate::source::Source;
use crate::text::{clock, data, duration, short_id};
use crate::watcher::{Request, Update, Watcher};
use devtrace_store::TraceSummary;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

/// What `--plain` remembers to print each thing once.
#[derive(Default)]
pub struct Printer {
    /// trace id → span count printed.
    traces: HashMap<devtrace_model::TraceId, u64>,
    /// (session, tool calls, errors, running span) printed.
    sessions: HashMap<devtrace_model::TraceId, (u64, u64, Option<String>)>,
    findings: HashSet<String>,
    skipped: u64,
    last_error: Option<String>,
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
                    out.push(trace_line(s));
                }
                for finding in &found.findings {
                    let key = format!("{}/{}", finding.fingerprint, found.trace_id);
                    if self.findings.insert(key) {
                        out.push(format!(
                            "{} finding {} trace {}: {}",
                            clock(s.end_unix_nano),
                            finding.kind.as_str(),
                            short_id(&found.trace_id.to_hex()),
                            data(&finding.title, 300)
                        ));
                    }
                }
            }
            Update::Skipped(n) => {
                self.skipped += n;
            }
            Update::Session(progress) => {
                let facts = &progress.facts;
                let id = short_id(&progress.trace_id.to_hex()).to_owned();
                let running = progress.running.as_ref().map(|r| r.span_id.to_hex());
                let key = (facts.tool_calls, facts.errors, running);
                if self.sessions.get(&progress.trace_id) != Some(&key) {
                    let mut line = format!(
                        "{} session {} {} {:?} turn {} tools {} ok {} failed tokens {} in {} out",
                        clock(facts.end_unix_nano),
                        id,
                        data(&facts.agent, 30),
                        data(&facts.title, 80),
                        progress.turn.as_ref().map_or(0, |t| t.number),
                        progress.tools_ok,
                        progress.tools_failed,
                        facts.input_tokens,
                        facts.output_tokens
                    );
                    if let Some(running) = &progress.running {
                        line.push_str(&format!(
                            " running {} {:?}",
                            data(&running.tool, 30),
                            data(&running.subject, 120)
                        ));
                    } else if let Some(last) = &progress.last_action {
                        line.push_str(&format!(
                            " last {} {:?} {}",
                            data(&last.tool, 30),
                            data(&last.subject, 120),
                            last.outcome
                        ));
                    }
                    out.push(line);
                    self.sessions.insert(progress.trace_id, key);
                }
                for fired in &progress.findings {
                    let key = format!("{}/{}", fired.finding.fingerprint, progress.trace_id);
                    if self.findings.insert(key) {
                        let evidence = fired
                            .evidence
                            .as_ref()
                            .map(|e| {
                                format!(
                                    " [on {} {:?} {}]",
                                    data(&e.tool, 30),
                                    data(&e.subject, 120),
                                    e.outcome
                                )
                            })
                            .unwrap_or_default();
                        out.push(format!(
                            "{} finding {} session {}: {}{evidence}",
                            clock(fired.at_unix_nano),
                            fired.finding.kind.as_str(),
                            id,
                            data(&fired.finding.title, 300)
                        ));
                    }
                }
            }
            Update::Timeline(_) | Update::Waterfall(_) => {}
            // The same failure every tick (a store not created yet) is said once.
            Update::Error(message) => {
                if self.last_error.as_ref() != Some(message) {
                    out.push(format!("error: {}", data(message, 500)));
                    self.last_error = Some(message.clone());
                }
            }
        }
        out
    }
}

fn trace_line(s: &TraceSummary) -> String {
    format!(
        "{} trace {} {:?} service {:?} {} {} spans {} errors",
        clock(s.end_unix_nano),
        short_id(&s.trace_id.to_hex()),
        data(&s.root_name, 120),
        data(&s.service, 60),
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
    out: &mut dyn Write,
) -> std::io::Result<()> {
    crate::app::stop_on_signals();
    let started = Instant::now();
    let mut watcher = Watcher::new(query);
    let mut printer = Printer::default();
    writeln!(out, "watching {}", data(&source.describe(), 300))?;
    out.flush()?;
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

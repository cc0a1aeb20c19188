//! Drawing: one function per screen, from the [`Dashboard`] and the [`ViewState`] (what is
//! selected, which screen is open). Pure over a ratatui `Frame`, so the tests draw every screen
//! on ratatui's `TestBackend` at 80×24 and 200×60 and compare the text.
//!
//! Screens: the dashboard (rates, traces, sessions in progress, findings as they fire), one
//! session turn by turn, a trace's waterfall (critical path marked, repeated siblings folded as
//! `show` folds them, a span that waited for another thread marked `⇠`, the selected row's
//! detail under it with its waits in `show`'s words and, after a `c`, the wait `r` returns to),
//! one finding with its evidence, and the keys.

use crate::state::{Dashboard, FeedItem, Origin};
use crate::text::{
    clock, count, data, duration, fit, quoted, right, sentence, short_id, sparkline, wrap_words,
};
use devtrace_query::causal::WaitView;
use devtrace_query::live::{ActionLine, SessionProgress, SessionTimeline, TimelineLine};
use devtrace_query::sessions::format_offset;
use devtrace_query::trace_view::Waterfall;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use std::collections::HashSet;

/// The panes of the dashboard, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Traces,
    Sessions,
    Findings,
}

impl Pane {
    pub fn next(self) -> Self {
        match self {
            Pane::Traces => Pane::Sessions,
            Pane::Sessions => Pane::Findings,
            Pane::Findings => Pane::Traces,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Session,
    Waterfall,
    /// A feed item (by fingerprint) or a session finding (by index in the timeline).
    Finding(FindingRef),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindingRef {
    Feed(String),
    Timeline(usize),
}

/// Colours, or none (`NO_COLOR`, `--color never`): then emphasis is bold and reverse video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red)
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn new_finding(&self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }
}

/// What is open and selected.
#[derive(Clone, Debug)]
pub struct ViewState {
    pub stack: Vec<Screen>,
    pub focus: Pane,
    pub trace_row: usize,
    pub session_row: usize,
    pub finding_row: usize,
    pub timeline_row: usize,
    pub waterfall_row: usize,
    /// First rows of folds the user opened.
    pub unfolded: HashSet<u32>,
    /// The waits `c` jumped from in the open waterfall, by span index (rows move with folds
    /// and filters; spans do), newest last: `r` returns to them one at a time.
    pub cause_trail: Vec<usize>,
    pub filter: String,
    pub editing_filter: bool,
    pub help: bool,
    pub theme: Theme,
}

impl ViewState {
    pub fn new(theme: Theme, first: Screen) -> Self {
        Self {
            stack: vec![first],
            focus: Pane::Traces,
            trace_row: 0,
            session_row: 0,
            finding_row: 0,
            timeline_row: 0,
            waterfall_row: 0,
            unfolded: HashSet::new(),
            cause_trail: Vec::new(),
            filter: String::new(),
            editing_filter: false,
            help: false,
            theme,
        }
    }

    pub fn screen(&self) -> &Screen {
        self.stack.last().expect("a screen is always open")
    }

    /// Whether recorded text passes the `/` filter (case-insensitive substring).
    pub fn passes(&self, texts: &[&str]) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let needle = self.filter.to_lowercase();
        texts.iter().any(|t| t.to_lowercase().contains(&needle))
    }
}

/// Draws the open screen, the status line and (when asked) the keys.
pub fn draw(frame: &mut Frame, dash: &Dashboard, view: &ViewState) {
    let area = frame.area();
    let [body, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    match view.screen() {
        Screen::Dashboard => dashboard(frame, body, dash, view),
        Screen::Session => session_screen(frame, body, dash, view),
        Screen::Waterfall => waterfall_screen(frame, body, dash, view),
        Screen::Finding(which) => finding_screen(frame, body, dash, view, which),
    }
    status_line(frame, status, dash, view);
    if view.help {
        help(frame, area, view.theme);
    }
}

fn status_line(frame: &mut Frame, area: Rect, dash: &Dashboard, view: &ViewState) {
    let t = view.theme;
    let line = if view.editing_filter {
        Line::from(vec![
            Span::styled("/", t.title()),
            Span::raw(data(&view.filter, 60)),
            Span::styled("▏  Enter keep · Esc clear", t.dim()),
        ])
    } else if let Some((_, message)) = &dash.error {
        Line::from(Span::styled(data(message, 200), t.error()))
    } else {
        let mut spans = Vec::new();
        if !view.filter.is_empty() {
            spans.push(Span::styled(
                format!("filter \"{}\"  ", data(&view.filter, 30)),
                t.warn(),
            ));
        }
        let room = (area.width as usize).saturating_sub(spans.iter().map(|s| s.width()).sum());
        spans.push(Span::styled(keys_that_fit(view.screen(), room), t.dim()));
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The status line's keys for a screen, longest first: a narrower terminal drops words, then
/// keys, and keeps `? keys · q quit` (the way to the rest, and out) to the last.
fn status_keys(screen: &Screen) -> &'static [&'static str] {
    match screen {
        Screen::Dashboard => &[
            "Tab pane · ↑↓ move · Enter open · / filter · ? keys · q quit",
            "Tab · ↑↓ · Enter · / filter · ? keys · q quit",
            "? keys · q quit",
        ],
        // c and r share a slot, as a jump and its way back: each apart would not fit in 80.
        Screen::Waterfall => &[
            "↑↓ move · Enter open · c/r cause/return · Esc back · / filter · ? keys · q quit",
            "↑↓ · Enter · c/r cause/return · Esc · / · ? keys · q quit",
            "c/r cause/return · ? keys · q quit",
            "? keys · q quit",
        ],
        _ => &[
            "↑↓ move · Enter open · Esc back · / filter · ? keys · q quit",
            "↑↓ · Enter · Esc back · / · ? keys · q quit",
            "? keys · q quit",
        ],
    }
}

/// The longest of the screen's [`status_keys`] that fits in `width`; the shortest cut (marked
/// `…`) when none does.
fn keys_that_fit(screen: &Screen, width: usize) -> String {
    let keys = status_keys(screen);
    match keys.iter().find(|k| k.chars().count() <= width) {
        Some(k) => (*k).to_owned(),
        None => fit(keys[keys.len() - 1], width).trim_end().to_owned(),
    }
}

/// Draws a dashboard pane's frame (its title and count, highlighted when it has the focus);
/// returns the area inside and its first lines: `empty` as a hint when there is nothing.
fn pane(
    frame: &mut Frame,
    area: Rect,
    view: &ViewState,
    which: Pane,
    title: &str,
    count: usize,
    empty: &'static str,
) -> (Rect, Vec<Line<'static>>) {
    let t = view.theme;
    let style = if view.focus == which && *view.screen() == Screen::Dashboard {
        t.title().patch(t.accent())
    } else {
        t.title()
    };
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(format!(" {title} ({count}) "), style));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = Vec::new();
    if count == 0 && !empty.is_empty() {
        lines.push(Line::from(Span::styled(empty, t.dim())));
    }
    (inner, lines)
}

fn header(dash: &Dashboard, width: u16, theme: Theme) -> Line<'static> {
    let spans_per_s = dash.spans.per_second();
    let errors_per_s = dash.errors.per_second();
    let mut parts = vec![
        Span::styled("devtrace watch", theme.title()),
        Span::raw("  "),
        Span::styled(format!("{} spans/s", count(spans_per_s)), theme.accent()),
        Span::raw("  "),
        Span::styled(
            format!(
                "{}{} errors/s",
                if dash.errors_saturated { "≥" } else { "" },
                count(errors_per_s)
            ),
            if errors_per_s > 0 {
                theme.error()
            } else {
                theme.dim()
            },
        ),
    ];
    if let Some(total) = dash.committed_spans {
        parts.push(Span::styled(
            format!("  {} spans stored", count(total)),
            theme.dim(),
        ));
    }
    if dash.now_unix_nano > 0 {
        parts.push(Span::styled(
            format!(
                "  {} {}",
                clock(dash.now_unix_nano),
                devtrace_query::timefmt::zone_name()
            ),
            theme.dim(),
        ));
    }
    if width >= 100 {
        parts.push(Span::styled(
            format!("  {}", data(&dash.source, 60)),
            theme.dim(),
        ));
    }
    Line::from(parts)
}

fn dashboard(frame: &mut Frame, area: Rect, dash: &Dashboard, view: &ViewState) {
    let t = view.theme;
    let wide = area.width >= 120;
    let [top, rates, middle, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Percentage(55),
        Constraint::Min(5),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header(dash, area.width, t)), top);
    rate_lines(frame, rates, dash, t);
    if wide {
        let [left, right_side] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(middle);
        traces_pane(frame, left, dash, view);
        sessions_pane(frame, right_side, dash, view);
    } else {
        let [upper, lower] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(middle);
        traces_pane(frame, upper, dash, view);
        sessions_pane(frame, lower, dash, view);
    }
    findings_pane(frame, bottom, dash, view);
}

/// The spans/s and errors/s sparklines, side by side, one or more rows high.
fn rate_lines(frame: &mut Frame, area: Rect, dash: &Dashboard, t: Theme) {
    let [left, right_side] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    for (rect, label, rate, style) in [
        (left, "spans/s ", &dash.spans, t.accent()),
        (right_side, "errors/s ", &dash.errors, t.error()),
    ] {
        let width = rect.width.saturating_sub(label.len() as u16 + 1) as usize;
        let series = rate.last(width);
        let mut lines = vec![Line::from(vec![
            Span::styled(label, t.dim()),
            Span::styled(sparkline(&series), style),
        ])];
        if rect.height > 1 && !series.is_empty() {
            let max = series.iter().copied().max().unwrap_or(0);
            lines.push(Line::from(Span::styled(
                format!(
                    "{}peak {} in the last {} s",
                    " ".repeat(label.len()),
                    count(max),
                    series.len()
                ),
                t.dim(),
            )));
        }
        frame.render_widget(Paragraph::new(lines), rect);
    }
}

/// Rows that fit `height` around `selected`: the index of the first one shown.
fn scroll_start(selected: usize, len: usize, height: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    selected.saturating_sub(height - 1).min(len - height)
}

pub fn visible_traces<'a>(
    dash: &'a Dashboard,
    view: &ViewState,
) -> Vec<&'a crate::state::TraceRow> {
    dash.traces
        .iter()
        .filter(|r| view.passes(&[&r.summary.root_name, &r.summary.service]))
        .collect()
}

pub fn visible_sessions<'a>(dash: &'a Dashboard, view: &ViewState) -> Vec<&'a SessionProgress> {
    dash.sessions
        .iter()
        .filter(|s| view.passes(&[&s.facts.title, &s.facts.agent, &s.facts.project]))
        .collect()
}

pub fn visible_feed<'a>(dash: &'a Dashboard, view: &ViewState) -> Vec<&'a FeedItem> {
    dash.feed
        .iter()
        .filter(|f| view.passes(&[&f.finding.title, f.finding.kind.as_str()]))
        .collect()
}

fn traces_pane(frame: &mut Frame, area: Rect, dash: &Dashboard, view: &ViewState) {
    let t = view.theme;
    let rows = visible_traces(dash, view);
    let focused = view.focus == Pane::Traces && *view.screen() == Screen::Dashboard;
    let (inner, _) = pane(frame, area, view, Pane::Traces, "Traces", rows.len(), "");
    let width = inner.width as usize;
    // time 8, duration 9, spans 6, errors 6, findings 3, gaps: the rest is op and service.
    let fixed = 8 + 1 + 9 + 1 + 6 + 1 + 6 + 1 + 3;
    let free = width.saturating_sub(fixed + 2);
    let service_w = (free / 3).clamp(4, 24);
    let op_w = free.saturating_sub(service_w);
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} {} {} {} {} {} {}",
            fit("TIME", 8),
            fit("OPERATION", op_w),
            fit("SERVICE", service_w),
            right("DURATION", 9),
            right("SPANS", 6),
            right("ERRORS", 6),
            fit("⚑", 3)
        ),
        t.dim(),
    ))];
    if rows.is_empty() {
        lines.push(Line::from(Span::styled(
            "waiting for traces: point an OpenTelemetry SDK at `devtrace serve` (OTLP :4317 / :4318) or use `devtrace run`",
            t.dim(),
        )));
    }
    let height = inner.height.saturating_sub(1) as usize;
    let start = scroll_start(view.trace_row, rows.len(), height);
    for (i, row) in rows.iter().enumerate().skip(start).take(height) {
        let s = &row.summary;
        let findings = match row.findings {
            None => "·".to_owned(),
            Some(0) => "-".to_owned(),
            Some(n) => n.to_string(),
        };
        let mut style = if s.error_count > 0 {
            t.error()
        } else {
            Style::default()
        };
        if focused && i == view.trace_row {
            style = style.patch(t.selected());
        }
        lines.push(Line::from(Span::styled(
            format!(
                "{} {} {} {} {} {} {}",
                clock(s.start_unix_nano),
                fit(&data(&s.root_name, op_w.max(1)), op_w),
                fit(&data(&s.service, service_w.max(1)), service_w),
                right(&duration(s.duration_nanos()), 9),
                right(&s.span_count.to_string(), 6),
                right(&s.error_count.to_string(), 6),
                fit(&findings, 3)
            ),
            style,
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn action_text(action: &ActionLine, width: usize) -> String {
    let subject = if action.subject.is_empty() {
        String::new()
    } else {
        format!(
            " {}",
            data(&action.subject, width.saturating_sub(10).max(8))
        )
    };
    format!("{}{}", data(&action.tool, 20), subject)
}

fn outcome_mark(action: &ActionLine) -> &'static str {
    match action.outcome.as_str() {
        "failed" => "✗",
        "running" => "▶",
        _ => "✓",
    }
}

/// Tokens in/out and, when the models' prices are known, the estimated cost (`≥` when some
/// calls could not be priced).
fn tokens_text(progress: &SessionProgress) -> String {
    let mut text = format!(
        "tokens {} in / {} out",
        count(progress.facts.input_tokens),
        count(progress.facts.output_tokens)
    );
    if let Some(cost) = &progress.cost {
        text.push_str(&format!(
            "  ≈{}{}",
            if cost.unpriced_calls > 0 { "≥" } else { "" },
            devtrace_analyze::pricing::format_dollars(cost.usd)
        ));
    }
    text
}

fn sessions_pane(frame: &mut Frame, area: Rect, dash: &Dashboard, view: &ViewState) {
    let t = view.theme;
    let sessions = visible_sessions(dash, view);
    let focused = view.focus == Pane::Sessions && *view.screen() == Screen::Dashboard;
    let (inner, mut lines) = pane(
        frame,
        area,
        view,
        Pane::Sessions,
        "Sessions in progress",
        sessions.len(),
        "no session in progress: hooks, `devtrace import claude-code --follow` or `devtrace record` bring them live",
    );
    let width = inner.width as usize;
    let per = if inner.height >= 12 { 3 } else { 2 };
    let fits = (inner.height as usize / per).max(1);
    let start = scroll_start(view.session_row, sessions.len(), fits);
    for (i, s) in sessions.iter().enumerate().skip(start).take(fits) {
        let selected = focused && i == view.session_row;
        let facts = &s.facts;
        let title = if facts.title.is_empty() {
            "(untitled)".to_owned()
        } else {
            data(&facts.title, width)
        };
        let turn = s
            .turn
            .as_ref()
            .map(|turn| format!("turn {}", turn.number))
            .unwrap_or_else(|| "no turn yet".into());
        let head = format!(
            "{} {}  {}  {}  tools {}✓ {}✗  {}",
            short_id(&s.trace_id.to_hex()),
            data(&facts.agent, 12),
            title,
            turn,
            s.tools_ok,
            s.tools_failed,
            tokens_text(s)
        );
        let head_style = if selected { t.selected() } else { t.title() };
        lines.push(Line::from(Span::styled(fit(&head, width), head_style)));
        let now = dash.now_unix_nano;
        let doing = match (&s.running, &s.last_action) {
            (Some(running), _) => Line::from(vec![
                Span::styled("  ▶ ", t.accent()),
                Span::raw(action_text(running, width)),
                Span::styled(
                    format!(
                        "  running {}",
                        duration(now.saturating_sub(running.start_unix_nano))
                    ),
                    t.accent(),
                ),
            ]),
            (None, Some(last)) => Line::from(vec![
                Span::styled(
                    format!("  {} ", outcome_mark(last)),
                    if last.outcome == "failed" {
                        t.error()
                    } else {
                        t.ok()
                    },
                ),
                Span::raw(action_text(last, width)),
                Span::styled(
                    format!("  {} ago", duration(now.saturating_sub(last.end_unix_nano))),
                    t.dim(),
                ),
            ]),
            (None, None) => Line::from(Span::styled("  (no tool call yet)", t.dim())),
        };
        lines.push(doing);
        if per == 3 {
            let points = s
                .context_tokens
                .iter()
                .rev()
                .take(width.saturating_sub(30).max(4))
                .rev()
                .copied()
                .collect::<Vec<_>>();
            let mut line = vec![
                Span::styled("  context ", t.dim()),
                Span::styled(sparkline(&points), t.accent()),
            ];
            if let Some(last) = points.last() {
                line.push(Span::styled(format!(" {} tokens", count(*last)), t.dim()));
            }
            if !s.findings.is_empty() {
                line.push(Span::styled(format!("  ⚑ {}", s.findings.len()), t.warn()));
            }
            lines.push(Line::from(line));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Trace(id) => format!("trace {}", short_id(&id.to_hex())),
        Origin::Session { trace_id, .. } => format!("session {}", short_id(&trace_id.to_hex())),
    }
}

fn evidence_text(item: &FeedItem, width: usize) -> String {
    match &item.evidence {
        Some(action) => {
            let mut text = format!("{} {}", outcome_mark(action), action_text(action, width));
            if let Some(code) = action.exit_code.filter(|c| *c != 0) {
                text.push_str(&format!(" exit {code}"));
            }
            if !action.error.is_empty() {
                text.push_str(&format!(": {}", data(&action.error, 60)));
            }
            text
        }
        None => {
            let spans: usize = item.finding.evidence.iter().map(|e| e.span_ids.len()).sum();
            let first = item
                .finding
                .evidence
                .first()
                .and_then(|e| e.span_ids.first())
                .map(|s| short_id(&s.to_hex()).to_owned())
                .unwrap_or_default();
            format!(
                "{} span{} of {}, first {first}",
                spans,
                if spans == 1 { "" } else { "s" },
                origin_text(&item.origin)
            )
        }
    }
}

fn findings_pane(frame: &mut Frame, area: Rect, dash: &Dashboard, view: &ViewState) {
    let t = view.theme;
    let items = visible_feed(dash, view);
    let focused = view.focus == Pane::Findings && *view.screen() == Screen::Dashboard;
    let (inner, mut lines) = pane(
        frame,
        area,
        view,
        Pane::Findings,
        "Findings as they fire",
        items.len(),
        "none yet: session detectors run on each new action, runtime detectors on each completed trace",
    );
    let width = inner.width as usize;
    let fits = (inner.height as usize / 2).max(1);
    let start = scroll_start(view.finding_row, items.len(), fits);
    for (i, item) in items.iter().enumerate().skip(start).take(fits) {
        let new = dash.is_new(item);
        let mut style = if new {
            t.new_finding()
        } else {
            Style::default()
        };
        if focused && i == view.finding_row {
            style = style.patch(t.selected());
        }
        let times = if item.count > 1 {
            format!(" ×{}", item.count)
        } else {
            String::new()
        };
        let head = format!(
            "{} {}⚑ {}  {}{}",
            clock(item.first_unix_nano),
            if new { "NEW " } else { "" },
            item.finding.kind.as_str(),
            sentence(&item.finding.title, width),
            times
        );
        lines.push(Line::from(Span::styled(fit(&head, width), style)));
        lines.push(Line::from(Span::styled(
            fit(&format!("         ↳ {}", evidence_text(item, width)), width),
            t.dim(),
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn session_screen(frame: &mut Frame, area: Rect, dash: &Dashboard, view: &ViewState) {
    let t = view.theme;
    let Some(timeline) = &dash.timeline else {
        frame.render_widget(
            Paragraph::new(Span::styled("loading the session…", t.dim())),
            area,
        );
        return;
    };
    let s = &timeline.session;
    let width = area.width as usize;
    let [head, body] = Layout::vertical([Constraint::Length(3), Constraint::Min(1)]).areas(area);
    session_heading(frame, head, dash, timeline, t);
    let rows = timeline_rows(dash, view);
    let height = body.height as usize;
    let start = scroll_start(view.timeline_row, rows.len(), height);
    let origin = timeline.lines.first().map_or(s.start_unix_nano, |l| {
        l.start_unix_nano.min(s.start_unix_nano)
    });
    let mut lines = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(start).take(height) {
        let selected = i == view.timeline_row;
        let (text, style) = match row {
            TimelineRow::Line(index) => {
                let line = &timeline.lines[*index];
                timeline_line(line, origin, dash.now_unix_nano, width, t)
            }
            TimelineRow::Finding(index) => {
                let finding = &timeline.findings[*index];
                (
                    format!(
                        "{:>7}     ⚑ {}  {}",
                        "",
                        finding.kind.as_str(),
                        sentence(&finding.title, width)
                    ),
                    t.new_finding(),
                )
            }
        };
        let style = if selected {
            style.patch(t.selected())
        } else {
            style
        };
        lines.push(Line::from(Span::styled(fit(&text, width), style)));
    }
    if rows.is_empty() {
        lines.push(Line::from(Span::styled("nothing recorded yet", t.dim())));
    }
    frame.render_widget(Paragraph::new(lines), body);
}

/// The session screen's three heading lines: agent, title and project; counts, tokens and
/// what runs now; how many findings.
fn session_heading(
    frame: &mut Frame,
    head: Rect,
    dash: &Dashboard,
    timeline: &SessionTimeline,
    t: Theme,
) {
    let s = &timeline.session;
    let width = head.width as usize;
    let progress = dash
        .sessions
        .iter()
        .find(|p| p.trace_id.to_hex() == s.trace_id);
    let mut second = format!(
        "session {}  {} turns, {} tool calls, {} errors  tokens {} in / {} out  {}",
        short_id(&s.trace_id),
        s.turns,
        s.tool_calls,
        s.errors,
        count(s.input_tokens),
        count(s.output_tokens),
        duration(s.duration_ns)
    );
    if let Some(running) = progress.and_then(|p| p.running.as_ref()) {
        second.push_str(&format!(
            "  ▶ {} running {}",
            action_text(running, 40),
            duration(dash.now_unix_nano.saturating_sub(running.start_unix_nano))
        ));
    }
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(data(&s.agent, 20), t.accent()),
                Span::raw("  "),
                Span::styled(
                    if s.title.is_empty() {
                        "(untitled)".to_owned()
                    } else {
                        data(&s.title, width)
                    },
                    t.title(),
                ),
                Span::styled(format!("  {}", data(&s.project, 60)), t.dim()),
            ]),
            Line::from(Span::styled(fit(&second, width), t.dim())),
            Line::from(Span::styled(
                format!("{} findings", timeline.findings.len()),
                if timeline.findings.is_empty() {
                    t.dim()
                } else {
                    t.warn()
                },
            )),
        ]),
        head,
    );
}

/// One line of the session's timeline: a turn, a sub-agent, or an action with its outcome.
fn timeline_line(
    line: &TimelineLine,
    origin: u64,
    now_unix_nano: u64,
    width: usize,
    t: Theme,
) -> (String, Style) {
    let offset = format!(
        "+{}",
        format_offset(line.start_unix_nano.saturating_sub(origin))
    );
    let indent = "  ".repeat(line.depth + usize::from(line.kind != "turn"));
    match line.kind.as_str() {
        "turn" => (
            format!(
                "{:>7} {indent}▶ {}  ({} in, {} out)",
                offset,
                data(&line.label, width),
                count(line.input_tokens.unwrap_or(0)),
                count(line.output_tokens.unwrap_or(0))
            ),
            t.title(),
        ),
        "agent" => (
            format!(
                "{:>7} {indent}◆ sub-agent {}",
                offset,
                data(&line.label, 60)
            ),
            t.accent(),
        ),
        _ => {
            let failed = line.outcome.as_deref() == Some("failed");
            let mark = match line.outcome.as_deref() {
                Some("failed") => "✗",
                Some("running") => "▶",
                _ => "✓",
            };
            let took = if line.outcome.as_deref() == Some("running") {
                format!(
                    "running {}",
                    duration(now_unix_nano.saturating_sub(line.start_unix_nano))
                )
            } else {
                duration(line.duration_ns)
            };
            let exit = line
                .exit_code
                .filter(|c| *c != 0)
                .map(|c| format!(" exit {c}"))
                .unwrap_or_default();
            let runs = if line.linked_runs.is_empty() {
                String::new()
            } else {
                format!("  ↳ run {}", short_id(&line.linked_runs[0]))
            };
            (
                format!(
                    "{:>7} {indent}{mark} {} {}{exit}  {took}  {}{runs}",
                    offset,
                    data(&line.label, 20),
                    data(&line.subject, width / 2),
                    data(&line.summary, width)
                ),
                if failed { t.error() } else { Style::default() },
            )
        }
    }
}

/// A row of the session screen: a timeline line, or a finding under the line it fired on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineRow {
    Line(usize),
    Finding(usize),
}

pub fn timeline_rows(dash: &Dashboard, view: &ViewState) -> Vec<TimelineRow> {
    let Some(timeline) = &dash.timeline else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for (i, line) in timeline.lines.iter().enumerate() {
        if !view.passes(&[&line.label, &line.subject, &line.summary]) && line.findings.is_empty() {
            continue;
        }
        rows.push(TimelineRow::Line(i));
        rows.extend(line.findings.iter().map(|f| TimelineRow::Finding(*f)));
    }
    rows
}

/// The waterfall's rows as shown: folded runs of repeated siblings are one row until opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaterfallRow {
    Span(usize),
    /// Index into `Waterfall::folds`.
    Fold(usize),
}

pub fn waterfall_rows(wf: &Waterfall, view: &ViewState) -> Vec<WaterfallRow> {
    let mut rows = Vec::new();
    let mut row = 0usize;
    let n = wf.span_id.len();
    while row < n {
        // Folds are in row order: a binary search keeps a trace of many folds linear.
        let fold_here = wf
            .folds
            .binary_search_by_key(&row, |f| f.first_row as usize)
            .ok()
            .map(|index| (index, &wf.folds[index]));
        if let Some((index, fold)) = fold_here
            && !view.unfolded.contains(&fold.first_row)
        {
            rows.push(WaterfallRow::Fold(index));
            row = wf.subtree_end[fold.last_row as usize] as usize;
            continue;
        }
        let name = &wf.strings[wf.name[row] as usize];
        if view.passes(&[name]) || view.filter.is_empty() {
            rows.push(WaterfallRow::Span(row));
        }
        row += 1;
    }
    rows
}

fn bar(start: u64, length: u64, total: u64, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let total = total.max(1) as f64;
    let from = ((start as f64 / total) * width as f64).floor() as usize;
    let len = (((length as f64) / total) * width as f64).ceil().max(1.0) as usize;
    let from = from.min(width - 1);
    let len = len.min(width - from);
    format!(
        "{}{}{}",
        " ".repeat(from),
        "█".repeat(len),
        " ".repeat(width - from - len)
    )
}

/// The waterfall's legend, longest first, as (critical path, waited, folded): a narrower
/// terminal drops words before anything is cut.
const WATERFALL_LEGENDS: [[&str; 3]; 3] = [
    [
        "◆ critical path",
        "⇠ waited for another thread (c: its cause)",
        "× folded repeats (Enter opens)",
    ],
    [
        "◆ critical path",
        "⇠ waited (c: cause)",
        "× folded (Enter opens)",
    ],
    ["◆ critical", "⇠ waited (c)", "× folded (Enter)"],
];

/// The waterfall's second heading line, as long as `width` holds: the whole trace id and the
/// whole legend when they fit, then its first 8 digits (as the trace list shows ids), then
/// the shorter legends; cut (marked `…`) only when the shortest does not fit either.
fn waterfall_legend(wf: &Waterfall, width: usize) -> String {
    let full_id = wf.trace_id.to_hex();
    let short = short_id(&full_id);
    let candidates = [(full_id.as_str(), 0), (short, 0), (short, 1), (short, 2)];
    let mut text = String::new();
    for (id, words) in candidates {
        let [critical, waited, folded] = WATERFALL_LEGENDS[words];
        text = if wf.waits.is_empty() {
            format!("trace {id}  {critical}  {folded}")
        } else {
            format!("trace {id}  {critical}  {waited}  {folded}")
        };
        if text.chars().count() <= width {
            return text;
        }
    }
    fit(&text, width)
}

/// The waterfall's two heading lines: the root, service, duration, spans and errors; the trace
/// id and the legend.
fn waterfall_heading(wf: &Waterfall, width: usize, t: Theme) -> Vec<Line<'static>> {
    vec![
        Line::from(vec![
            Span::styled(data(&wf.root_name, width / 2), t.title()),
            Span::styled(format!("  {}", data(&wf.service, 30)), t.accent()),
            Span::raw(format!(
                "  {}  {} spans  ",
                duration(wf.duration_ns),
                wf.span_count
            )),
            Span::styled(
                match wf.error_count {
                    0 => "no errors".to_owned(),
                    1 => "1 error".to_owned(),
                    n => format!("{n} errors"),
                },
                if wf.error_count > 0 {
                    t.error()
                } else {
                    t.dim()
                },
            ),
        ]),
        Line::from(Span::styled(waterfall_legend(wf, width), t.dim())),
    ]
}

fn waterfall_screen(frame: &mut Frame, area: Rect, dash: &Dashboard, view: &ViewState) {
    let t = view.theme;
    let Some(wf) = &dash.waterfall else {
        frame.render_widget(
            Paragraph::new(Span::styled("loading the trace…", t.dim())),
            area,
        );
        return;
    };
    let width = area.width as usize;
    let [head, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(area);
    frame.render_widget(Paragraph::new(waterfall_heading(wf, width, t)), head);
    let rows = waterfall_rows(wf, view);
    let mut detail = selected_detail(wf, rows.get(view.waterfall_row).copied(), width, t);
    if !detail.is_empty()
        && let Some(waiting) = view.cause_trail.last()
    {
        detail.push(return_hint(wf, *waiting, width, t));
    }
    let [body, detail_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(detail.len() as u16)]).areas(body);
    frame.render_widget(Paragraph::new(detail), detail_area);
    let height = body.height as usize;
    let start = scroll_start(view.waterfall_row, rows.len(), height);
    let label_w = (width * 45 / 100).max(20).min(width.saturating_sub(12));
    let bar_w = width.saturating_sub(label_w + 12);
    let mut lines = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(start).take(height) {
        let (label, begin, length, total_ns, error, critical) = match *row {
            WaterfallRow::Span(r) => {
                let name = &wf.strings[wf.name[r] as usize];
                let mark = if wf.on_critical_path[r] { "◆" } else { " " };
                let waited = if row_waits(wf, r).is_empty() {
                    ""
                } else {
                    "⇠ "
                };
                (
                    format!(
                        "{}{mark} {waited}{}",
                        "  ".repeat(wf.depth[r] as usize),
                        data(name, label_w)
                    ),
                    wf.start[r],
                    wf.duration[r],
                    wf.duration[r],
                    wf.status[r] == 2,
                    wf.on_critical_path[r],
                )
            }
            WaterfallRow::Fold(f) => {
                let fold = &wf.folds[f];
                let first = fold.first_row as usize;
                let end_row = fold.last_row as usize;
                let end = wf.start[end_row] + wf.duration[end_row];
                (
                    format!(
                        "{}× {} {} … {} avg",
                        "  ".repeat(wf.depth[first] as usize),
                        fold.count,
                        data(&fold.name, label_w),
                        duration(fold.total_ns / u64::from(fold.count.max(1)))
                    ),
                    wf.start[first],
                    end.saturating_sub(wf.start[first]),
                    fold.total_ns,
                    fold.errors > 0,
                    (first..=end_row).any(|r| wf.critical[r] > 0),
                )
            }
        };
        let mut style = if error {
            t.error()
        } else if critical {
            t.accent()
        } else {
            Style::default()
        };
        if i == view.waterfall_row {
            style = style.patch(t.selected());
        }
        lines.push(Line::from(Span::styled(
            format!(
                "{} {} {}",
                fit(&label, label_w),
                bar(begin, length, wf.duration_ns, bar_w),
                right(&duration(total_ns), 10)
            ),
            style,
        )));
    }
    frame.render_widget(Paragraph::new(lines), body);
}

/// The waits recorded on waterfall row `row`, in the words of every face (empty when it
/// waited for nothing).
pub fn row_waits(wf: &Waterfall, row: usize) -> &[WaitView] {
    match wf.waits.binary_search_by_key(&row, |r| r.row as usize) {
        Ok(at) => &wf.waits[at].waits,
        Err(_) => &[],
    }
}

/// The detail's line after a `c`: which waiting span `r` selects again (`waiting`, its index
/// in the waterfall), its recorded name quoted as the wait lines quote names.
fn return_hint(wf: &Waterfall, waiting: usize, width: usize, t: Theme) -> Line<'static> {
    let name = &wf.strings[wf.name[waiting] as usize];
    Line::from(Span::styled(
        format!("  r: return to the wait in {}", quoted(name, width / 2)),
        t.dim(),
    ))
}

/// Most wait lines the detail under a waterfall shows (a span with more says how many).
const DETAIL_WAITS: usize = 3;

/// The lines under the waterfall about the selected row: its name, duration and start; for a
/// span that waited, its `⇠ waited …` lines as `show` writes them.
fn selected_detail(
    wf: &Waterfall,
    selected: Option<WaterfallRow>,
    width: usize,
    t: Theme,
) -> Vec<Line<'static>> {
    let rule = Line::from(Span::styled("─".repeat(width), t.dim()));
    match selected {
        None => Vec::new(),
        Some(WaterfallRow::Fold(f)) => {
            let fold = &wf.folds[f];
            vec![
                rule,
                Line::from(vec![
                    Span::styled(format!("× {} ", fold.count), t.title()),
                    Span::styled(data(&fold.name, width / 2), t.title()),
                    Span::raw(format!("  {}", data(&fold.each, width))),
                ]),
            ]
        }
        Some(WaterfallRow::Span(r)) => {
            let waits = row_waits(wf, r);
            let mut lines = vec![
                rule,
                Line::from(vec![
                    Span::styled(data(&wf.strings[wf.name[r] as usize], width / 2), t.title()),
                    Span::raw(format!(
                        "  {}  at +{}",
                        duration(wf.duration[r]),
                        duration(wf.start[r])
                    )),
                    Span::styled(
                        if waits.iter().any(|w| w.cause_in_trace) {
                            "  c: go to its cause"
                        } else {
                            ""
                        },
                        t.dim(),
                    ),
                ]),
            ];
            for wait in waits.iter().take(DETAIL_WAITS) {
                lines.push(Line::from(Span::styled(
                    // Cut as shown: an escaped character takes several columns.
                    format!(
                        "  ⇠ {}",
                        fit(&data(&wait.text, width * 2), width.saturating_sub(4))
                    ),
                    t.warn(),
                )));
            }
            if waits.len() > DETAIL_WAITS {
                lines.push(Line::from(Span::styled(
                    format!("  … {} more waits", waits.len() - DETAIL_WAITS),
                    t.dim(),
                )));
            }
            lines
        }
    }
}

fn finding_screen(
    frame: &mut Frame,
    area: Rect,
    dash: &Dashboard,
    view: &ViewState,
    which: &FindingRef,
) {
    let t = view.theme;
    let width = area.width as usize;
    let (finding, evidence, origin) = match which {
        FindingRef::Feed(fingerprint) => match dash
            .feed
            .iter()
            .find(|f| &f.finding.fingerprint == fingerprint)
        {
            Some(item) => (
                &item.finding,
                item.evidence.as_ref(),
                Some(origin_text(&item.origin)),
            ),
            None => return,
        },
        FindingRef::Timeline(index) => match dash
            .timeline
            .as_ref()
            .and_then(|tl| tl.findings.get(*index))
        {
            Some(finding) => (finding, None, None),
            None => return,
        },
    };
    let mut lines = vec![
        Line::from(Span::styled(
            format!("⚑ {}", finding.kind.as_str()),
            t.new_finding(),
        )),
        Line::from(Span::styled(sentence(&finding.title, width * 3), t.title())),
        Line::from(""),
        Line::from(vec![
            Span::styled("what to do  ", t.dim()),
            Span::raw(sentence(&finding.recommendation, width * 3)),
        ]),
    ];
    if let Some(origin) = origin {
        lines.push(Line::from(vec![
            Span::styled("found in    ", t.dim()),
            Span::raw(origin),
        ]));
    }
    if !finding.numbers.is_empty() {
        let numbers: Vec<String> = finding
            .numbers
            .iter()
            .map(|(k, v)| format!("{k} {}", trim_number(*v)))
            .collect();
        lines.push(Line::from(vec![
            Span::styled("numbers     ", t.dim()),
            Span::raw(numbers.join(", ")),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("evidence", t.title())));
    if let Some(action) = evidence {
        lines.push(Line::from(format!(
            "  fired on {} {}",
            outcome_mark(action),
            action_text(action, width)
        )));
    }
    for (i, item) in finding.evidence.iter().enumerate() {
        let style = if i == view.timeline_row.min(finding.evidence.len() - 1)
            && matches!(which, FindingRef::Feed(_))
        {
            t.selected()
        } else {
            Style::default()
        };
        let spans: Vec<String> = item
            .span_ids
            .iter()
            .take(8)
            .map(|s| short_id(&s.to_hex()).to_owned())
            .collect();
        lines.push(Line::from(Span::styled(
            fit(
                &format!(
                    "  trace {}  spans {}{}",
                    short_id(&item.trace_id.to_hex()),
                    spans.join(" "),
                    if item.span_ids.len() > 8 { " …" } else { "" }
                ),
                width,
            ),
            style,
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Enter opens the evidence trace's waterfall · Esc back",
        t.dim(),
    )));
    frame.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
        area,
    );
}

fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

pub const KEYS: &[(&str, &str)] = &[
    ("Tab / Shift-Tab", "next / previous pane"),
    ("↑ ↓  j k", "move"),
    ("PgUp PgDn  g G", "page, top, bottom"),
    ("mouse wheel", "scroll"),
    (
        "Enter",
        "open: trace waterfall, session, finding's evidence; unfold",
    ),
    ("Esc", "back (and clear the filter)"),
    ("/", "filter what is shown"),
    ("s", "the newest session, turn by turn"),
    ("c", "in a waterfall: go to the span that ended a ⇠ wait"),
    ("r", "in a waterfall: return to the wait c came from"),
    ("?", "these keys"),
    ("q  Ctrl-C", "quit"),
];

fn help(frame: &mut Frame, area: Rect, t: Theme) {
    const KEY_W: usize = 18;
    let widest = KEYS
        .iter()
        .map(|(_, what)| what.chars().count())
        .max()
        .unwrap_or(0);
    // As wide as the longest line, or the screen; a line that does not fit wraps at a space.
    let width = ((KEY_W + widest + 2) as u16).min(area.width);
    let room = (width as usize).saturating_sub(2 + KEY_W).max(8);
    let mut lines: Vec<Line> = Vec::new();
    for (key, what) in KEYS {
        for (k, part) in wrap_words(what, room).into_iter().enumerate() {
            let key = if k == 0 {
                fit(key, KEY_W)
            } else {
                " ".repeat(KEY_W)
            };
            lines.push(Line::from(vec![
                Span::styled(key, t.title()),
                Span::raw(part),
            ]));
        }
    }
    lines.push(Line::from(Span::styled("any key closes", t.dim())));
    let height = (lines.len() as u16 + 2).min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Keys ", t.title())),
        ),
        rect,
    );
}

//! The terminal: raw mode and the alternate screen while the dashboard runs, restored on every
//! way out (q, Ctrl-C, a signal, an error, a panic); keys and the mouse wheel; a worker thread
//! that polls the source so the screen never waits on a query.

use crate::source::Source;
use crate::state::Dashboard;
use crate::view::{self, FindingRef, Pane, Screen, TimelineRow, ViewState, WaterfallRow};
use crate::watcher::{Request, Update, Watcher};
use devtrace_query::trace_view::Waterfall;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers, MouseEventKind,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// How often the worker asks the source whether anything changed.
pub const TICK: Duration = Duration::from_millis(100);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Ends the loop on SIGINT, SIGTERM and SIGHUP (raw mode turns Ctrl-C into a key, but a
/// signal from elsewhere must restore the terminal too).
pub fn stop_on_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGHUP, handler);
    }
}

pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Restores the terminal when dropped, whatever the way out.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// What the dashboard starts on.
pub struct Options {
    pub colors: bool,
    /// `--session ID|latest`: follow one session turn by turn.
    pub session: Option<String>,
    pub query: devtrace_query::live::LiveQuery,
}

/// Runs the dashboard on the terminal until q, Ctrl-C or a signal.
pub fn run(source: Box<dyn Source>, options: Options) -> std::io::Result<()> {
    stop_on_signals();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    enable_raw_mode()?;
    let _guard = TerminalGuard;
    execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let mut terminal = ratatui::Terminal::new(backend)?;
    terminal.clear()?;

    let mut dash = Dashboard::new(source.describe());
    let first = if options.session.is_some() {
        Screen::Session
    } else {
        Screen::Dashboard
    };
    let mut view = ViewState::new(
        view::Theme {
            color: options.colors,
        },
        first,
    );
    let (requests, updates) = spawn_worker(source, options.query, options.session);

    let mut dirty = true;
    let mut last_draw = Instant::now();
    loop {
        // A terminal that went away (its window closed, tmux killed) ends the watch even when
        // no SIGHUP arrives: a hung-up terminal fails tcgetattr, so isatty says no.
        // SAFETY: isatty only inspects the descriptor.
        if stopping() || unsafe { libc::isatty(libc::STDIN_FILENO) } == 0 {
            break;
        }
        loop {
            match updates.try_recv() {
                Ok(update) => dash.apply(update),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    if dash.error.is_none() {
                        dash.error = Some((
                            dash.now_unix_nano,
                            "the reader thread stopped (see the message above on exit); restart devtrace watch".into(),
                        ));
                    }
                    break;
                }
            }
            dirty = true;
        }
        // Running times and the clock move once a second even when nothing arrives.
        if dirty || last_draw.elapsed() >= Duration::from_secs(1) {
            clamp(&dash, &mut view);
            terminal.draw(|frame| view::draw(frame, &dash, &view))?;
            last_draw = Instant::now();
            dirty = false;
        }
        if event::poll(Duration::from_millis(50))? {
            match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    match handle_key(key, &dash, &mut view) {
                        Action::Quit => break,
                        Action::Request(request) => {
                            if let Request::Waterfall(_) = request {
                                dash.waterfall = None;
                            }
                            let _ = requests.send(request);
                        }
                        Action::None => {}
                    }
                    dirty = true;
                }
                Event::Mouse(mouse) => {
                    match mouse.kind {
                        MouseEventKind::ScrollDown => move_selection(&dash, &mut view, 3),
                        MouseEventKind::ScrollUp => move_selection(&dash, &mut view, -3),
                        _ => {}
                    }
                    dirty = true;
                }
                Event::Resize(_, _) => {
                    terminal.autoresize()?;
                    dirty = true;
                }
                _ => {}
            }
        }
    }
    drop(requests);
    Ok(())
}

/// The worker: owns the source and the watcher, answers requests, ticks.
fn spawn_worker(
    mut source: Box<dyn Source>,
    query: devtrace_query::live::LiveQuery,
    session: Option<String>,
) -> (Sender<Request>, Receiver<Update>) {
    let (request_tx, request_rx) = channel::<Request>();
    let (update_tx, update_rx) = channel::<Update>();
    let _ = std::thread::Builder::new()
        .name("devtrace-watch".into())
        .spawn(move || {
            let mut watcher = Watcher::new(query);
            if let Some(session) = session {
                for update in watcher.request(source.as_mut(), Request::Follow(Some(session))) {
                    if update_tx.send(update).is_err() {
                        return;
                    }
                }
            }
            loop {
                // The UI thread can be stuck in the terminal's input reader when the terminal
                // hung up (its reads return end of file at once): a signal or a lost terminal
                // then ends the process from here, after restoring what can be restored.
                // SAFETY: isatty only inspects the descriptor.
                if stopping() || unsafe { libc::isatty(libc::STDIN_FILENO) } == 0 {
                    std::thread::sleep(Duration::from_millis(300));
                    restore_terminal();
                    std::process::exit(0);
                }
                let started = Instant::now();
                for update in watcher.tick(source.as_mut()) {
                    if update_tx.send(update).is_err() {
                        return;
                    }
                }
                let wait = TICK.saturating_sub(started.elapsed());
                match request_rx.recv_timeout(wait) {
                    Ok(request) => {
                        for update in watcher.request(source.as_mut(), request) {
                            if update_tx.send(update).is_err() {
                                return;
                            }
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
    (request_tx, update_rx)
}

/// What a key asks of the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    Request(Request),
}

fn list_len(dash: &Dashboard, view: &ViewState) -> usize {
    match view.screen() {
        Screen::Dashboard => match view.focus {
            Pane::Traces => view::visible_traces(dash, view).len(),
            Pane::Sessions => view::visible_sessions(dash, view).len(),
            Pane::Findings => view::visible_feed(dash, view).len(),
        },
        Screen::Session => view::timeline_rows(dash, view).len(),
        Screen::Waterfall => dash
            .waterfall
            .as_ref()
            .map_or(0, |wf| view::waterfall_rows(wf, view).len()),
        Screen::Finding(FindingRef::Feed(fp)) => dash
            .feed
            .iter()
            .find(|f| &f.finding.fingerprint == fp)
            .map_or(0, |f| f.finding.evidence.len()),
        Screen::Finding(FindingRef::Timeline(_)) => 0,
    }
}

fn selection(view: &mut ViewState) -> &mut usize {
    match view.screen().clone() {
        Screen::Dashboard => match view.focus {
            Pane::Traces => &mut view.trace_row,
            Pane::Sessions => &mut view.session_row,
            Pane::Findings => &mut view.finding_row,
        },
        Screen::Waterfall => &mut view.waterfall_row,
        Screen::Session | Screen::Finding(_) => &mut view.timeline_row,
    }
}

/// Keeps every selection inside its list (lists shrink when filtered or trimmed).
pub fn clamp(dash: &Dashboard, view: &mut ViewState) {
    let len = list_len(dash, view);
    let row = selection(view);
    *row = (*row).min(len.saturating_sub(1));
}

pub fn move_selection(dash: &Dashboard, view: &mut ViewState, by: isize) {
    let len = list_len(dash, view);
    let row = selection(view);
    *row = (*row as isize + by).clamp(0, len.saturating_sub(1) as isize) as usize;
}

/// Applies one key to the view; returns what the loop must do.
pub fn handle_key(key: KeyEvent, dash: &Dashboard, view: &mut ViewState) -> Action {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Action::Quit;
    }
    if view.help {
        view.help = false;
        return Action::None;
    }
    if view.editing_filter {
        match key.code {
            KeyCode::Enter => view.editing_filter = false,
            KeyCode::Esc => {
                view.editing_filter = false;
                view.filter.clear();
            }
            KeyCode::Backspace => {
                view.filter.pop();
            }
            KeyCode::Char(c) => view.filter.push(c),
            _ => {}
        }
        return Action::None;
    }
    match key.code {
        KeyCode::Char('q') => return Action::Quit,
        KeyCode::Char('?') => view.help = true,
        KeyCode::Char('/') => {
            view.editing_filter = true;
            view.filter.clear();
        }
        KeyCode::Tab if *view.screen() == Screen::Dashboard => view.focus = view.focus.next(),
        KeyCode::BackTab if *view.screen() == Screen::Dashboard => {
            view.focus = view.focus.next().next()
        }
        KeyCode::Down | KeyCode::Char('j') => move_selection(dash, view, 1),
        KeyCode::Up | KeyCode::Char('k') => move_selection(dash, view, -1),
        KeyCode::PageDown => move_selection(dash, view, 10),
        KeyCode::PageUp => move_selection(dash, view, -10),
        KeyCode::Char('g') | KeyCode::Home => move_selection(dash, view, isize::MIN / 2),
        KeyCode::Char('G') | KeyCode::End => move_selection(dash, view, isize::MAX / 2),
        KeyCode::Esc => {
            if !view.filter.is_empty() {
                view.filter.clear();
            } else if view.stack.len() > 1 {
                let left = view.stack.pop();
                if left == Some(Screen::Session) {
                    return Action::Request(Request::Follow(None));
                }
            }
        }
        KeyCode::Char('s') if *view.screen() == Screen::Dashboard => {
            view.stack.push(Screen::Session);
            view.timeline_row = 0;
            return Action::Request(Request::Follow(Some("latest".into())));
        }
        KeyCode::Char('c') if *view.screen() == Screen::Waterfall => go_to_cause(dash, view),
        KeyCode::Char('r') if *view.screen() == Screen::Waterfall => return_to_wait(dash, view),
        KeyCode::Enter => return enter(dash, view),
        _ => {}
    }
    Action::None
}

/// Selects the span that ended the selected span's wait (its first wait whose cause is in the
/// trace), remembering the waiting span for `r`.
pub fn go_to_cause(dash: &Dashboard, view: &mut ViewState) {
    let Some(wf) = &dash.waterfall else {
        return;
    };
    let Some(WaterfallRow::Span(row)) = view::waterfall_rows(wf, view)
        .get(view.waterfall_row)
        .copied()
    else {
        return;
    };
    let Some(cause) = view::row_waits(wf, row)
        .iter()
        .filter(|w| w.cause_in_trace)
        .find_map(|w| wf.span_id.iter().position(|id| *id == w.cause_span_id))
    else {
        return;
    };
    view.cause_trail.push(row);
    select_span(wf, view, cause);
}

/// Selects the span the last `c` jumped from again; nothing when no jump is left to undo.
pub fn return_to_wait(dash: &Dashboard, view: &mut ViewState) {
    let Some(wf) = &dash.waterfall else {
        return;
    };
    if let Some(waiting) = view.cause_trail.pop() {
        select_span(wf, view, waiting);
    }
}

/// Selects span `span` (its index in the waterfall), opening the folds it is in and clearing a
/// filter that hides it.
fn select_span(wf: &Waterfall, view: &mut ViewState, span: usize) {
    for fold in &wf.folds {
        let end = wf.subtree_end[fold.last_row as usize] as usize;
        if (fold.first_row as usize..end).contains(&span) {
            view.unfolded.insert(fold.first_row);
        }
    }
    let mut rows = view::waterfall_rows(wf, view);
    if !rows.contains(&WaterfallRow::Span(span)) {
        view.filter.clear();
        rows = view::waterfall_rows(wf, view);
    }
    if let Some(at) = rows.iter().position(|r| *r == WaterfallRow::Span(span)) {
        view.waterfall_row = at;
    }
}

fn open_waterfall(view: &mut ViewState, trace_id: devtrace_model::TraceId) -> Action {
    view.stack.push(Screen::Waterfall);
    view.waterfall_row = 0;
    view.unfolded.clear();
    view.cause_trail.clear();
    Action::Request(Request::Waterfall(trace_id))
}

fn enter(dash: &Dashboard, view: &mut ViewState) -> Action {
    match view.screen().clone() {
        Screen::Dashboard => match view.focus {
            Pane::Traces => {
                let rows = view::visible_traces(dash, view);
                match rows.get(view.trace_row) {
                    Some(row) => {
                        let id = row.summary.trace_id;
                        open_waterfall(view, id)
                    }
                    None => Action::None,
                }
            }
            Pane::Sessions => {
                let sessions = view::visible_sessions(dash, view);
                match sessions.get(view.session_row) {
                    Some(s) => {
                        let id = s.trace_id.to_hex();
                        view.stack.push(Screen::Session);
                        view.timeline_row = 0;
                        Action::Request(Request::Follow(Some(id)))
                    }
                    None => Action::None,
                }
            }
            Pane::Findings => {
                let feed = view::visible_feed(dash, view);
                match feed.get(view.finding_row) {
                    Some(item) => {
                        let fp = item.finding.fingerprint.clone();
                        view.stack.push(Screen::Finding(FindingRef::Feed(fp)));
                        view.timeline_row = 0;
                        Action::None
                    }
                    None => Action::None,
                }
            }
        },
        Screen::Session => {
            let rows = view::timeline_rows(dash, view);
            let Some(timeline) = &dash.timeline else {
                return Action::None;
            };
            match rows.get(view.timeline_row) {
                Some(TimelineRow::Finding(index)) => {
                    view.stack
                        .push(Screen::Finding(FindingRef::Timeline(*index)));
                    Action::None
                }
                Some(TimelineRow::Line(index)) => {
                    let line = &timeline.lines[*index];
                    match line.linked_runs.first().and_then(|r| r.parse().ok()) {
                        Some(run) => open_waterfall(view, run),
                        None => Action::None,
                    }
                }
                None => Action::None,
            }
        }
        Screen::Waterfall => {
            let Some(wf) = &dash.waterfall else {
                return Action::None;
            };
            let rows = view::waterfall_rows(wf, view);
            if let Some(WaterfallRow::Fold(index)) = rows.get(view.waterfall_row) {
                view.unfolded.insert(wf.folds[*index].first_row);
            }
            Action::None
        }
        Screen::Finding(which) => {
            let finding = match &which {
                FindingRef::Feed(fp) => dash
                    .feed
                    .iter()
                    .find(|f| &f.finding.fingerprint == fp)
                    .map(|f| &f.finding),
                FindingRef::Timeline(i) => dash.timeline.as_ref().and_then(|t| t.findings.get(*i)),
            };
            let evidence = finding.and_then(|f| {
                f.evidence
                    .get(view.timeline_row)
                    .or_else(|| f.evidence.first())
            });
            match evidence {
                Some(e) => open_waterfall(view, e.trace_id),
                None => Action::None,
            }
        }
    }
}

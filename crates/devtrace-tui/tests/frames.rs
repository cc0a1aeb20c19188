//! Frame snapshots: every screen drawn on ratatui's `TestBackend` at 80×24 and 200×60, from a
//! real store (a program trace with a repeated query, a span name carrying terminal escapes, a
//! Claude Code-shaped session with a retry loop) read through the real watcher and source,
//! compared with the text in tests/snapshots/. `DEVTRACE_UPDATE_SNAPSHOTS=1` rewrites them
//! (review the diff).

use devtrace_model::session::session_span_id;
use devtrace_model::{
    KeyValue, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, Status, StatusCode, TraceId,
    semconv,
};
use devtrace_query::live::LiveQuery;
use devtrace_store::sqlite::SqliteWriter;
use devtrace_store::{StoreWriter, prepare_session, prepare_spans};
use devtrace_tui::source::LocalSource;
use devtrace_tui::state::Dashboard;
use devtrace_tui::view::{self, FindingRef, Pane, Screen, Theme, ViewState};
use devtrace_tui::watcher::{Request, Watcher};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::Path;

/// 2026-01-05 09:00:00 UTC.
const T0: u64 = 1_767_603_600_000_000_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn program_trace() -> SpanBatch {
    let trace = TraceId([0x4b; 16]);
    let root_id = SpanId([1; 8]);
    let mut spans = vec![Span::new(
        trace,
        root_id,
        None,
        "GET /orders",
        T0,
        T0 + 120 * MS,
    )];
    spans[0].kind = SpanKind::Server;
    let mut load = Span::new(
        trace,
        SpanId([2; 8]),
        Some(root_id),
        "load_orders",
        T0 + MS,
        T0 + 80 * MS,
    );
    load.kind = SpanKind::Internal;
    spans.push(load);
    for k in 0..8u64 {
        let start = T0 + 2 * MS + k * 9 * MS;
        let mut q = Span::new(
            trace,
            SpanId([10 + k as u8; 8]),
            Some(SpanId([2; 8])),
            "SELECT items",
            start,
            start + 8 * MS,
        );
        q.kind = SpanKind::Client;
        q.attributes = vec![
            KeyValue::new("db.system", "postgresql"),
            KeyValue::new("db.statement", "SELECT * FROM items WHERE order_id = $1"),
        ];
        spans.push(q);
    }
    let mut render = Span::new(
        trace,
        SpanId([3; 8]),
        Some(root_id),
        "render \u{1b}[2J\u{1b}[H",
        T0 + 80 * MS,
        T0 + 118 * MS,
    );
    render.status = Status {
        code: StatusCode::Error,
        message: "template missing".into(),
    };
    spans.push(render);
    SpanBatch {
        resources: vec![Resource {
            attributes: vec![KeyValue::new(semconv::SERVICE_NAME, "shop-api")],
            ..Default::default()
        }],
        scopes: vec![Scope::default()],
        spans,
    }
}

fn session() -> SpanBatch {
    let trace = TraceId([0x5e; 16]);
    let root_id = session_span_id(trace);
    let mut root = Span::new(
        trace,
        root_id,
        None,
        "invoke_agent claude-code",
        T0,
        T0 + 60 * S,
    );
    root.attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_SESSION),
        KeyValue::new(semconv::SESSION_AGENT, "claude-code"),
        KeyValue::new(semconv::SESSION_PROJECT, "/home/dev/shop"),
        KeyValue::new(semconv::SESSION_TITLE, "Make the tests pass"),
        KeyValue::new(
            semconv::GEN_AI_CONVERSATION_ID,
            "c0ffee00-0000-4000-8000-000000000001",
        ),
    ];
    let turn_id = SpanId([0x70; 8]);
    let mut turn = Span::new(trace, turn_id, Some(root_id), "turn", T0, T0 + 60 * S);
    turn.attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TURN),
        KeyValue::new(semconv::SESSION_PROMPT, "make the tests pass"),
    ];
    let mut spans = vec![root, turn];
    let mut chat = Span::new(
        trace,
        SpanId([0x71; 8]),
        Some(turn_id),
        "chat claude",
        T0,
        T0 + 2 * S,
    );
    chat.attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_CHAT),
        KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, "claude-sonnet-4-5-20250929"),
        KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, 12_000i64),
        KeyValue::new(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, 300i64),
    ];
    spans.push(chat);
    for n in 0..4u64 {
        let start = T0 + (3 + n * 10) * S;
        let mut call = Span::new(
            trace,
            SpanId([0x80 + n as u8; 8]),
            Some(turn_id),
            "execute_tool Bash",
            start,
            start + 2 * S,
        );
        call.attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
            KeyValue::new(semconv::GEN_AI_TOOL_NAME, "Bash"),
            KeyValue::new(semconv::SESSION_ACTION, "command"),
            KeyValue::new(semconv::SESSION_COMMAND, "npm test"),
            KeyValue::new(semconv::SESSION_EXIT_CODE, 1i64),
            KeyValue::new(semconv::SESSION_OUTPUT, "npm ERR! Missing script: \"test\""),
            KeyValue::new(semconv::SESSION_OUTPUT_BYTES, 31i64),
        ];
        call.status = Status {
            code: StatusCode::Error,
            message: "npm ERR! Missing script: \"test\"".into(),
        };
        spans.push(call);
    }
    let mut read = Span::new(
        trace,
        SpanId([0x90; 8]),
        Some(turn_id),
        "execute_tool Read",
        T0 + 50 * S,
        T0 + 50 * S,
    );
    read.attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
        KeyValue::new(semconv::GEN_AI_TOOL_NAME, "Read"),
        KeyValue::new(semconv::SESSION_ACTION, "read"),
        KeyValue::new(semconv::SESSION_FILE_PATH, "/home/dev/shop/package.json"),
    ];
    spans.push(read);
    SpanBatch {
        resources: vec![Resource::default()],
        scopes: vec![Scope::default()],
        spans,
    }
}

/// A dashboard fed by the real watcher over a store holding the two traces above.
fn dashboard(dir: &Path) -> (Dashboard, LocalSource, Watcher) {
    let mut writer = SqliteWriter::open(dir).unwrap();
    let mut source = LocalSource::open(dir).unwrap();
    let mut query = LiveQuery::at(T0);
    query.active_within_nanos = 100 * 365 * 24 * 3600 * S;
    let mut watcher = Watcher::new(query);
    let mut dash = Dashboard::new("store /data".into());
    for update in watcher.tick(&mut source) {
        dash.apply(update);
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    writer.write(&[prepare_spans(program_trace())]).unwrap();
    writer
        .write(&[prepare_session(session(), Vec::new())])
        .unwrap();
    for _ in 0..3 {
        std::thread::sleep(devtrace_tui::watcher::MIN_SNAPSHOT_INTERVAL);
        for update in watcher.tick(&mut source) {
            dash.apply(update);
        }
    }
    (dash, source, watcher)
}

fn render(dash: &Dashboard, view: &ViewState, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| view::draw(frame, dash, view))
        .unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("DEVTRACE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run with DEVTRACE_UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "frame {name} differs from {}",
        path.display()
    );
}

/// Pins what moves with the wall clock (the snapshot's time, rate seconds).
fn pin(dash: &mut Dashboard) {
    dash.now_unix_nano = T0 + 55 * S;
    for item in dash.feed.iter_mut() {
        item.first_unix_nano = T0 + 50 * S;
        item.last_unix_nano = T0 + 50 * S;
    }
    dash.spans = Default::default();
    dash.errors = Default::default();
    dash.spans.add(T0 + 54 * S, 11);
    dash.spans.add(T0 + 55 * S, 0);
}

#[test]
fn every_screen_at_80x24_and_200x60() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dash, mut source, mut watcher) = dashboard(dir.path());
    for update in watcher.request(&mut source, Request::Follow(Some("latest".into()))) {
        dash.apply(update);
    }
    for update in watcher.request(&mut source, Request::Waterfall(TraceId([0x4b; 16]))) {
        dash.apply(update);
    }
    pin(&mut dash);
    let theme = Theme { color: false };

    let mut dashboard_view = ViewState::new(theme, Screen::Dashboard);
    let mut session_view = ViewState::new(theme, Screen::Session);
    session_view.timeline_row = 4;
    let mut waterfall_view = ViewState::new(theme, Screen::Waterfall);
    waterfall_view.waterfall_row = 2;
    let retry = dash
        .feed
        .iter()
        .find(|f| f.finding.kind.as_str() == "retry_loop")
        .expect("the retry loop fired")
        .finding
        .fingerprint
        .clone();
    let finding_view = ViewState::new(theme, Screen::Finding(FindingRef::Feed(retry)));
    let mut help_view = ViewState::new(theme, Screen::Dashboard);
    help_view.help = true;
    dashboard_view.focus = Pane::Findings;

    for (w, h) in [(80, 24), (200, 60)] {
        check(
            &format!("dashboard_{w}x{h}"),
            &render(&dash, &dashboard_view, w, h),
        );
        check(
            &format!("session_{w}x{h}"),
            &render(&dash, &session_view, w, h),
        );
        check(
            &format!("waterfall_{w}x{h}"),
            &render(&dash, &waterfall_view, w, h),
        );
        check(
            &format!("finding_{w}x{h}"),
            &render(&dash, &finding_view, w, h),
        );
        check(&format!("help_{w}x{h}"), &render(&dash, &help_view, w, h));
    }
}

#[test]
fn recorded_escapes_are_shown_as_text_never_sent_to_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dash, mut source, mut watcher) = dashboard(dir.path());
    for update in watcher.request(&mut source, Request::Waterfall(TraceId([0x4b; 16]))) {
        dash.apply(update);
    }
    pin(&mut dash);
    let view = ViewState::new(Theme { color: true }, Screen::Waterfall);
    let frame = render(&dash, &view, 120, 30);
    assert!(frame.contains("render \\u001b[2J\\u001b[H"), "{frame}");
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
    terminal.draw(|f| view::draw(f, &dash, &view)).unwrap();
    assert!(
        terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .all(|cell| !cell.symbol().chars().any(|c| c.is_control())),
        "no control character reaches a cell"
    );
}

#[test]
fn no_color_draws_without_colours_and_colour_draws_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dash, _, _) = dashboard(dir.path());
    pin(&mut dash);
    let coloured = |color: bool| {
        let view = ViewState::new(Theme { color }, Screen::Dashboard);
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        terminal.draw(|f| view::draw(f, &dash, &view)).unwrap();
        terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .filter(|cell| {
                cell.fg != ratatui::style::Color::Reset || cell.bg != ratatui::style::Color::Reset
            })
            .count()
    };
    assert_eq!(coloured(false), 0);
    assert!(coloured(true) > 0);
}

/// A causal link of trace 0x7a: its waiting span waited `waited` for span `cause` (a call of
/// `function`) until `at` after T0, through a `kind` hand-over.
fn wait_link(
    cause: SpanId,
    kind: &str,
    function: &str,
    at: u64,
    waited: u64,
) -> devtrace_model::Link {
    devtrace_model::Link {
        trace_id: TraceId([0x7a; 16]),
        span_id: cause,
        trace_state: String::new(),
        attributes: vec![
            KeyValue::new(semconv::causal::LINK_KIND, kind),
            KeyValue::new(semconv::causal::LINK_CAUSE_FUNCTION, function),
            KeyValue::new(semconv::causal::LINK_CAUSE_TIME, (T0 + at) as i64),
            KeyValue::new(semconv::causal::LINK_WAIT_NS, waited as i64),
        ],
        dropped_attributes_count: 0,
        flags: 0,
    }
}

/// Two threads of one recorded program: the main thread's `get` waited for the put of a call on
/// a thread whose recorded name carries terminal escapes and a bidi override; that thread's
/// outermost call is a root of its own.
fn two_threads() -> SpanBatch {
    let trace = TraceId([0x7a; 16]);
    let on = |mut s: Span, thread: &str| {
        s.attributes.push(KeyValue::new("thread.name", thread));
        s
    };
    let hostile = "worker-\u{1b}[31m1\u{202e}";
    let mut get = Span::new(
        trace,
        SpanId([2; 8]),
        Some(SpanId([1; 8])),
        "queue.Queue.get",
        T0 + 20 * MS,
        T0 + 150 * MS,
    );
    get.links.push(wait_link(
        SpanId([4; 8]),
        "queue",
        "pipeline.produce",
        140 * MS,
        120 * MS,
    ));
    SpanBatch {
        resources: vec![Resource {
            attributes: vec![KeyValue::new(semconv::SERVICE_NAME, "pipeline")],
            ..Default::default()
        }],
        scopes: vec![Scope::default()],
        spans: vec![
            on(
                Span::new(
                    trace,
                    SpanId([1; 8]),
                    None,
                    "pipeline.main",
                    T0,
                    T0 + 200 * MS,
                ),
                "MainThread",
            ),
            get,
            on(
                Span::new(
                    trace,
                    SpanId([3; 8]),
                    None,
                    "threading.Thread.run",
                    T0 + 5 * MS,
                    T0 + 180 * MS,
                ),
                hostile,
            ),
            Span::new(
                trace,
                SpanId([4; 8]),
                Some(SpanId([3; 8])),
                "pipeline.produce",
                T0 + 10 * MS,
                T0 + 145 * MS,
            ),
        ],
    }
}

/// A dashboard with trace 0x7a's waterfall open, `batch` stored alone in `dir` and read
/// through the real watcher.
fn waterfall_of(dir: &Path, batch: SpanBatch) -> Dashboard {
    SqliteWriter::open(dir)
        .unwrap()
        .write(&[prepare_spans(batch)])
        .unwrap();
    let mut source = LocalSource::open(dir).unwrap();
    let mut watcher = Watcher::new(LiveQuery::at(T0));
    let mut dash = Dashboard::new("store /data".into());
    for update in watcher.request(&mut source, Request::Waterfall(TraceId([0x7a; 16]))) {
        dash.apply(update);
    }
    pin(&mut dash);
    dash
}

/// The waterfall of [`two_threads`], without colours, its waiting `get` (row 1) selected.
fn on_the_wait() -> ViewState {
    let mut view = ViewState::new(Theme { color: false }, Screen::Waterfall);
    view.waterfall_row = 1;
    view
}

#[test]
fn a_wait_is_marked_its_words_are_shows_and_c_goes_to_its_cause() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let dir = tempfile::tempdir().unwrap();
    let dash = waterfall_of(dir.path(), two_threads());
    let mut view = on_the_wait();
    check("waterfall_waits_80x16", &render(&dash, &view, 80, 16));
    let frame = render(&dash, &view, 120, 16);
    check("waterfall_waits_120x16", &frame);
    // The same words as `show`, the hostile thread name escaped inside its quotes.
    let said = "⇠ waited 120.0 ms for \"pipeline.produce\" (queue put, thread \
                \"worker-\\u001b[31m1\\u202e\", at +140.0 ms)";
    assert!(frame.contains(said), "{frame}");
    assert!(frame.contains("◆ ⇠ queue.Queue.get"), "{frame}");
    let waterfall = dash.waterfall.as_ref().unwrap();
    assert_eq!(
        view::row_waits(waterfall, 1)[0].text,
        devtrace_query::causal::waits_of_span(
            &devtrace_analyze::AnalyzedTrace::new(TraceId([0x7a; 16]), two_threads()),
            1
        )[0]
        .text,
        "the terminal shows what the query layer worded"
    );

    let press = |view: &mut ViewState, code| {
        devtrace_tui::app::handle_key(KeyEvent::new(code, KeyModifiers::NONE), &dash, view)
    };
    press(&mut view, KeyCode::Char('c'));
    let produce = waterfall
        .span_id
        .iter()
        .position(|id| *id == SpanId([4; 8]))
        .unwrap();
    assert_eq!(
        view::waterfall_rows(waterfall, &view)[view.waterfall_row],
        view::WaterfallRow::Span(produce),
        "c selected the producer's call"
    );
    let frame = render(&dash, &view, 120, 16);
    assert!(
        frame.contains("pipeline.produce  135.0 ms  at +10.0 ms"),
        "{frame}"
    );
    // The cause waited for nothing: c stays there; a filter hiding the cause is cleared.
    press(&mut view, KeyCode::Char('c'));
    assert_eq!(
        view::waterfall_rows(waterfall, &view)[view.waterfall_row],
        view::WaterfallRow::Span(produce)
    );
    view.filter = "queue".into();
    view.waterfall_row = 0;
    assert_eq!(
        view::waterfall_rows(waterfall, &view)[0],
        view::WaterfallRow::Span(1)
    );
    press(&mut view, KeyCode::Char('c'));
    assert!(view.filter.is_empty());
    assert_eq!(
        view::waterfall_rows(waterfall, &view)[view.waterfall_row],
        view::WaterfallRow::Span(produce)
    );
}

/// The two threads above, and a third: the worker's `produce` waited on a lock for a call of
/// a `fetcher` thread, so `get` ⇠ `produce` ⇠ `fetch` is a chain of two waits.
fn chain_of_waits() -> SpanBatch {
    let mut batch = two_threads();
    let trace = TraceId([0x7a; 16]);
    let fetch_id = SpanId([5; 8]);
    let mut fetch = Span::new(
        trace,
        fetch_id,
        None,
        "pipeline.fetch",
        T0 + 12 * MS,
        T0 + 60 * MS,
    );
    fetch
        .attributes
        .push(KeyValue::new("thread.name", "fetcher"));
    let produce = batch
        .spans
        .iter_mut()
        .find(|s| s.span_id == SpanId([4; 8]))
        .unwrap();
    produce.links.push(wait_link(
        fetch_id,
        "lock",
        "pipeline.fetch",
        60 * MS,
        45 * MS,
    ));
    batch.spans.push(fetch);
    batch
}

#[test]
fn r_returns_along_the_trail_of_c_one_wait_at_a_time_and_a_new_waterfall_clears_it() {
    use devtrace_tui::app::{Action, handle_key};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let dir = tempfile::tempdir().unwrap();
    let (mut dash, mut source, mut watcher) = dashboard(dir.path());
    SqliteWriter::open(dir.path())
        .unwrap()
        .write(&[prepare_spans(chain_of_waits())])
        .unwrap();
    for update in watcher.request(&mut source, Request::Waterfall(TraceId([0x7a; 16]))) {
        dash.apply(update);
    }
    let waterfall = dash.waterfall.as_ref().unwrap();
    let span = |id: u8| {
        let at = waterfall.span_id.iter().position(|s| *s == SpanId([id; 8]));
        view::WaterfallRow::Span(at.unwrap())
    };
    let (get, produce, fetch) = (span(2), span(4), span(5));
    let mut view = ViewState::new(Theme { color: false }, Screen::Dashboard);
    view.stack.push(Screen::Waterfall);
    let selected = |view: &ViewState| view::waterfall_rows(waterfall, view)[view.waterfall_row];
    let press = |view: &mut ViewState, code| {
        handle_key(KeyEvent::new(code, KeyModifiers::NONE), &dash, view)
    };
    view.waterfall_row = view::waterfall_rows(waterfall, &view)
        .iter()
        .position(|r| *r == get)
        .unwrap();

    // r before any jump does nothing.
    press(&mut view, KeyCode::Char('r'));
    assert_eq!(selected(&view), get);
    press(&mut view, KeyCode::Char('c'));
    assert_eq!(selected(&view), produce, "c: get's cause");
    press(&mut view, KeyCode::Char('c'));
    assert_eq!(selected(&view), fetch, "c again: produce's cause");
    press(&mut view, KeyCode::Char('r'));
    assert_eq!(selected(&view), produce, "r: back to the wait c left last");
    // A filter hiding the wait r returns to is cleared, as c clears one hiding a cause.
    view.filter = "fetch".into();
    view.waterfall_row = 0;
    press(&mut view, KeyCode::Char('r'));
    assert!(view.filter.is_empty());
    assert_eq!(selected(&view), get, "r again: back to the first wait");
    press(&mut view, KeyCode::Char('r'));
    assert_eq!(selected(&view), get, "the trail is empty: r stays");
    let frame = render(&dash, &view, 120, 16);
    assert!(
        frame.lines().last().unwrap().contains("c/r cause/return"),
        "{frame}"
    );

    // Another waterfall opened (back to the dashboard, Enter on a trace) starts without a trail.
    press(&mut view, KeyCode::Char('c'));
    assert_eq!(view.cause_trail.len(), 1);
    press(&mut view, KeyCode::Esc);
    assert_eq!(*view.screen(), Screen::Dashboard);
    let opened = press(&mut view, KeyCode::Enter);
    assert!(
        matches!(opened, Action::Request(Request::Waterfall(_))),
        "{opened:?}"
    );
    assert_eq!(*view.screen(), Screen::Waterfall);
    assert!(view.cause_trail.is_empty(), "{:?}", view.cause_trail);
}

/// The second line of a frame: the waterfall's trace id and legend.
fn legend_line(frame: &str) -> &str {
    frame.lines().nth(1).unwrap()
}

#[test]
fn the_waterfall_legend_drops_words_and_id_digits_to_fit_never_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let dash = waterfall_of(dir.path(), two_threads());
    let whole = "◆ critical path  ⇠ waited for another thread (c: its cause)  \
                 × folded repeats (Enter opens)";
    let expected = [
        // Wide: the whole id and the whole legend.
        (200, format!("trace {}  {whole}", "7a".repeat(16))),
        // Narrower: the id's first 8 digits first, then fewer words.
        (120, format!("trace 7a7a7a7a  {whole}")),
        (
            80,
            "trace 7a7a7a7a  ◆ critical path  ⇠ waited (c: cause)  × folded (Enter opens)".into(),
        ),
        (
            60,
            "trace 7a7a7a7a  ◆ critical  ⇠ waited (c)  × folded (Enter)".into(),
        ),
        // Too narrow for the shortest: cut, and the cut is marked.
        (40, "trace 7a7a7a7a  ◆ critical  ⇠ waited (c…".into()),
    ];
    for (width, legend) in expected {
        let frame = render(&dash, &on_the_wait(), width, 16);
        assert_eq!(legend_line(&frame), legend, "at {width} columns:\n{frame}");
    }
}

#[test]
fn the_status_line_drops_keys_to_fit_and_keeps_how_to_see_them_all_and_quit() {
    let dir = tempfile::tempdir().unwrap();
    let dash = waterfall_of(dir.path(), two_threads());
    let status = |view: &ViewState, width: u16| {
        let frame = render(&dash, view, width, 16);
        frame.lines().last().unwrap().to_owned()
    };
    let waterfall = [
        (
            80,
            "↑↓ move · Enter open · c/r cause/return · Esc back · / filter · ? keys · q quit",
        ),
        (
            60,
            "↑↓ · Enter · c/r cause/return · Esc · / · ? keys · q quit",
        ),
        (40, "c/r cause/return · ? keys · q quit"),
        (20, "? keys · q quit"),
        (10, "? keys · …"),
    ];
    for (width, keys) in waterfall {
        assert_eq!(status(&on_the_wait(), width), keys, "at {width} columns");
    }
    let dashboard = ViewState::new(Theme { color: false }, Screen::Dashboard);
    for (width, keys) in [
        (
            80,
            "Tab pane · ↑↓ move · Enter open · / filter · ? keys · q quit",
        ),
        (50, "Tab · ↑↓ · Enter · / filter · ? keys · q quit"),
        (40, "? keys · q quit"),
    ] {
        assert_eq!(status(&dashboard, width), keys, "at {width} columns");
    }
}

#[test]
fn after_c_the_detail_names_the_wait_r_returns_to_and_not_before_or_after_r() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    // The waiting call's recorded name carries a terminal escape: shown as data.
    let mut batch = two_threads();
    batch.spans[1].name = "queue.Queue.get\u{1b}[2J".into();
    let dir = tempfile::tempdir().unwrap();
    let dash = waterfall_of(dir.path(), batch);
    let mut view = on_the_wait();
    let press = |view: &mut ViewState, code| {
        devtrace_tui::app::handle_key(KeyEvent::new(code, KeyModifiers::NONE), &dash, view)
    };
    let hint = "  r: return to the wait in \"queue.Queue.get\\u001b[2J\"";
    let before = render(&dash, &view, 80, 16);
    assert!(!before.contains("r: return"), "{before}");

    press(&mut view, KeyCode::Char('c'));
    let after = render(&dash, &view, 80, 16);
    check("waterfall_after_c_80x16", &after);
    let detail: Vec<&str> = after.lines().rev().skip(1).take(2).collect();
    assert_eq!(
        detail,
        [hint, "pipeline.produce  135.0 ms  at +10.0 ms"],
        "{after}"
    );
    // Moving away keeps the trail, and the line with it.
    press(&mut view, KeyCode::Char('k'));
    assert!(render(&dash, &view, 80, 16).contains(hint));

    press(&mut view, KeyCode::Char('r'));
    let back = render(&dash, &view, 80, 16);
    assert!(
        back.contains("queue.Queue.get\\u001b[2J  130.0 ms"),
        "{back}"
    );
    assert!(!back.contains("r: return"), "{back}");
}

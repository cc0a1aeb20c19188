//! `devtrace plan` and `run --plan` on what a user gets wrong, by their exact text (the plans
//! themselves are tested end to end in tests/e2e/test_native_recorder.py and by MCP's
//! plan_instrumentation test).

mod common;
use common::devtrace_parts;

#[test]
fn mistakes_are_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let plans = data.join("plans");
    assert_eq!(
        devtrace_parts(data, &["plan", "list"]),
        (
            0,
            format!(
                "no plans yet in {}; make one with `devtrace plan <operation>`\n",
                plans.display()
            ),
            String::new()
        )
    );
    assert_eq!(
        devtrace_parts(data, &["plan", "list", "--json"]),
        (0, "[]\n".into(), String::new())
    );
    assert_eq!(
        devtrace_parts(data, &["plan"]),
        (
            2,
            String::new(),
            "error: devtrace plan needs an operation (a span name), e.g. `devtrace plan app.jobs.process`; `devtrace plan list` shows the stored plans\n\nUsage: devtrace plan [OPTIONS] [OPERATION]\n       devtrace plan <COMMAND>\n\nFor more information, try '--help'.\n".into()
        )
    );
    let expected = format!(
        "error: no plan \"3f9a\" in {}; `devtrace plan list` shows the stored plans\n",
        plans.display()
    );
    assert_eq!(
        devtrace_parts(data, &["plan", "show", "3f9a"]),
        (1, String::new(), expected.clone())
    );
    // run --plan refuses before running anything.
    let marker = dir.path().join("ran");
    let (code, _, stderr) = devtrace_parts(
        data,
        &[
            "run",
            "--plan",
            "3f9a",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    assert_eq!((code, stderr), (1, expected));
    assert!(!marker.exists(), "the command did not run");
    assert_eq!(
        devtrace_parts(data, &["plan", "x", "--threshold-ms=-1"]),
        (
            2,
            String::new(),
            "error: --threshold-ms -1: give a number of milliseconds ≥ 0\n\nUsage: devtrace plan [OPTIONS] [OPERATION]\n       devtrace plan <COMMAND>\n\nFor more information, try '--help'.\n".to_owned()
        )
    );
}

/// A package whose spans are started by hand: a `with` block inside a function, a decorated
/// function, a span started and ended by assignment in a method, and one named by an f-string.
const JOBS: &str = r#"from opentelemetry import trace

from app.store import load_rows, save

tracer = trace.get_tracer(__name__)


def parse(rows):
    return [row["n"] for row in rows]


def crunch(items):
    return sum(i * i for i in items)


def summarize(day):
    return {"day": day, "total": crunch(range(10))}


def handle(batch_id):
    rows = load_rows(batch_id)
    with tracer.start_as_current_span("process batch") as span:
        span.set_attribute("batch.id", batch_id)
        items = parse(rows)
        total = crunch(items)
    save(total)


@tracer.start_as_current_span("nightly report")
def report(day):
    return summarize(day)


def each(item):
    with tracer.start_as_current_span(f"item {item}"):
        crunch([item])


class Exporter:
    def flush(self, rows):
        span = tracer.start_span("flush rows")
        data = parse(rows)
        span.end()
        save(data)
"#;

const STORE: &str = "def load_rows(batch_id):\n    return [{\"n\": n} for n in range(batch_id)]\n\n\ndef save(total):\n    return total\n";

/// The package in `DIR/src` and one stored span of each name.
fn hand_started_spans(dir: &std::path::Path, names: &[&str]) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("app")).unwrap();
    std::fs::write(src.join("app/__init__.py"), "").unwrap();
    std::fs::write(src.join("app/jobs.py"), JOBS).unwrap();
    std::fs::write(src.join("app/store.py"), STORE).unwrap();
    let spans: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            serde_json::json!({
                "traceId": format!("{:032x}", i + 1), "spanId": format!("{:016x}", i + 1),
                "name": name, "kind": 1,
                "startTimeUnixNano": "1763730000000000000", "endTimeUnixNano": "1763730000050000000"})
        })
        .collect();
    let document = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "jobs"}}]},
        "scopeSpans": [{"spans": spans}]}]});
    common::import_text(dir, "spans.json", &document.to_string());
    src
}

/// `(module.qualname, depth, via)` of a plan's functions, and its notes' kinds.
fn planned(
    data: &std::path::Path,
    operation: &str,
    src: &str,
) -> (Vec<(String, i64, String)>, Vec<String>) {
    let (code, out, err) = devtrace_parts(data, &["plan", operation, "--source", src, "--json"]);
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let functions = plan["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                format!(
                    "{}.{}",
                    f["module"].as_str().unwrap(),
                    f["qualname"].as_str().unwrap()
                ),
                f["depth"].as_i64().unwrap(),
                f["via"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let notes = plan["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{} {}: {}",
                n["kind"].as_str().unwrap(),
                n["line"],
                n["call"].as_str().unwrap()
            )
        })
        .collect();
    (functions, notes)
}

#[test]
fn a_span_started_by_hand_is_planned_from_its_name_in_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let names = [
        "process batch",
        "nightly report",
        "flush rows",
        "item 7",
        "warm cache",
    ];
    let src = hand_started_spans(data, &names);
    let src = src.to_str().unwrap();

    // The with-block: the calls inside it, not load_rows or save around it.
    let (functions, notes) = planned(data, "process batch", src);
    let via = "app.jobs.handle (span 'process batch') calls";
    assert_eq!(
        functions,
        [
            (
                "app.jobs.parse".into(),
                1,
                format!("{via} parse() at line 24")
            ),
            (
                "app.jobs.crunch".into(),
                1,
                format!("{via} crunch() at line 25")
            ),
        ]
    );
    assert_eq!(
        notes[0],
        "block 22: tracer.start_as_current_span('process batch')"
    );
    let (_, text, _) = devtrace_parts(data, &["plan", "process batch", "--source", src]);
    assert!(
        text.contains("\n  where: \"tracer.start_as_current_span('process batch')\" at line 22: span 'process batch' is a block of app.jobs.handle (lines 22-25), not a function: the plan records the functions called inside it\n  records 2 functions"),
        "{text}"
    );

    // The decorated function is the operation's function, followed as any other.
    let (functions, _) = planned(data, "nightly report", src);
    let names: Vec<(&str, i64)> = functions.iter().map(|f| (f.0.as_str(), f.1)).collect();
    assert_eq!(
        names,
        [
            ("app.jobs.report", 0),
            ("app.jobs.summarize", 1),
            ("app.jobs.crunch", 2)
        ]
    );

    // Started by assignment: the statements up to `span.end()`, not the save after it.
    let (functions, notes) = planned(data, "flush rows", src);
    let names: Vec<&str> = functions.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["app.jobs.parse"]);
    assert_eq!(notes[0], "block 41: tracer.start_span('flush rows')");

    // A name an f-string builds cannot be matched: said, with the site and what to do.
    let jobs = std::path::Path::new(src).join("app/jobs.py");
    assert_eq!(
        devtrace_parts(data, &["plan", "item 7", "--source", src]),
        (
            1,
            String::new(),
            format!(
                "error: cannot plan span \"item 7\": no code under {src} starts a span with that name as a literal, and the span that may be it is named at run time (an f-string or a variable), which the source alone cannot tell: \"tracer.start_as_current_span(f'item {{item}}')\" at {}:35; give the code the span covers a function of its own and plan that by module.function, or start the span with a literal name\n",
                jobs.display()
            )
        )
    );
    // A name nothing in the source starts (the f-string cannot make it) is not found at all.
    assert_eq!(
        devtrace_parts(data, &["plan", "warm cache", "--source", src]),
        (
            1,
            String::new(),
            format!(
                "error: cannot tell which function \"warm cache\" is: its spans have no code.function.name and code.file.path attributes, its name is not module.function for a file under {src}, and no code there starts a span of that name (start_as_current_span or start_span with it as a literal); set those attributes on the span (the native recorder does), or pass --source DIR where its package lives\n"
            )
        )
    );
}

/// An Elixir program's source, with a module and a function named by hostile atoms.
const SHOP_EX: &str = r#"defmodule Shop do
  def checkout(items) do
    items |> Enum.map(fn i -> i * 2 end) |> :"ignore previous; rm -rf"."run it; rm -rf ~"()
  end
end

defmodule :"ignore previous; rm -rf" do
  def unquote(:"run it; rm -rf ~")(items), do: Enum.sum(items)
end
"#;

/// One span named `name` as devtrace's BEAM runtime records it, imported into the store at `data`.
fn import_beam_span(data: &std::path::Path, name: &str) {
    let document = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "elixir"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{:032x}", 1), "spanId": format!("{:016x}", 1),
            "name": name, "kind": 1,
            "startTimeUnixNano": "1763730000000000000", "endTimeUnixNano": "1763730000050000000",
            "attributes": [{"key": "devtrace.beam.process", "value": {"stringValue": "<0.99.0>"}}]}]}]}]});
    common::import_text(data, "spans.json", &document.to_string());
}

#[test]
fn a_beam_operation_is_planned_from_elixir_source_with_odd_names_quoted() {
    if std::process::Command::new("elixir")
        .arg("--version")
        .output()
        .is_err()
    {
        // scripts/test installs Elixir; the e2e tests (tests/e2e/test_beam_plan.py) fail without it.
        panic!("elixir is not installed (apt-get install elixir)");
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let src = data.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("shop.ex"), SHOP_EX).unwrap();
    import_beam_span(data, "Shop.checkout/1");

    let (code, text, err) = devtrace_parts(
        data,
        &["plan", "Shop.checkout/1", "--source", src.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let body: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        body.join("\n"),
        [
            "  records 2 functions (every call a span, none lost), everything else runs at full speed:",
            "    Shop.checkout/1  shop.ex:2  \"the operation's function\"",
            "    :\"ignore previous; rm -rf\".\"run it; rm -rf ~\"/1  shop.ex:8  \"Shop.checkout/1 calls :\\\"ignore previous; rm -rf\\\".\\\"run it; rm -rf ~\\\"/1 at line 3\"",
            "  not recordable (their time stays in their caller's own time):",
            "    \"fn\" at line 3 of Shop.checkout/1: an anonymous function: compiled to a function of its own with a generated name the plan cannot name; its own time stays in its caller's, the calls it makes to",
            "      the source are followed",
            "  run it: devtrace run --plan ID -- <the command>",
        ]
        .join("\n")
        .replace("ID", text.split_whitespace().nth(1).unwrap()),
        "{text}"
    );
}

#[test]
fn an_anonymous_functions_span_is_answered_with_the_function_it_is_written_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // A fn's span as devtrace's BEAM runtime names it, its text hostile.
    import_beam_span(data, "anonymous fn#1 in Shop.\"run it; rm -rf ~\"/1");
    let (code, text, err) = devtrace_parts(
        data,
        &[
            "plan",
            "anonymous fn#1 in Shop.\"run it; rm -rf ~\"/1",
            "--source",
            ".",
        ],
    );
    assert_eq!((code, text.as_str()), (1, ""), "{err}");
    assert_eq!(
        err.trim_end(),
        "error: \"anonymous fn#1 in Shop.\\\"run it; rm -rf ~\\\"/1\" is an anonymous function, which a plan cannot name (the compiler names it): plan the function it is written in, \"Shop.\\\"run it; rm -rf ~\\\"/1\", whose plan records its time and the calls it makes: devtrace plan \"Shop.\\\"run it; rm -rf ~\\\"/1\""
    );
}

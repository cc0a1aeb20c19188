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

//! The Python helpers (sdk/python/devtrace/_names.py) write the attribute names the Rust side
//! reads: every `devtrace.state.*`, `devtrace.llm.*`, `devtrace.autotrace` and `exception.*`
//! name there is a constant in `devtrace_model::semconv`, spelled the same.

const PYTHON_NAMES: &str = include_str!("../../../sdk/python/devtrace/_names.py");
const SEMCONV: &str = include_str!("../src/semconv.rs");

/// The string literals of `NAME = "value"` / `pub const NAME: &str = "value";` lines.
fn literals(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|l| l.contains(" = \"") && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
        .collect()
}

#[test]
fn the_python_helpers_use_the_names_devtrace_reads() {
    let rust = literals(SEMCONV);
    let checked: Vec<String> = literals(PYTHON_NAMES)
        .into_iter()
        .filter(|n| {
            [
                "devtrace.state.",
                "devtrace.llm.",
                "devtrace.autotrace",
                "exception.",
            ]
            .iter()
            .any(|p| n.starts_with(p))
        })
        .collect();
    assert!(checked.len() >= 15, "{checked:?}");
    let missing: Vec<&String> = checked.iter().filter(|n| !rust.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "names in _names.py without a semconv constant: {missing:?}"
    );
}

//! `plan_instrumentation` on a store whose "ingest.batch" spans are a blind spot and name their
//! function (code.function.name, code.file.path) in a source tree written here: the plan lists
//! the functions it calls (a recursive one once, a C function as not recordable, a method
//! through a variable by its candidates), is stored, fits its budget, and quotes what it read.

mod common;

use common::{MS, batch, span};
use devtrace_mcp::{DevtraceMcp, McpTransport as Transport};
use devtrace_model::{KeyValue, TraceId};
use devtrace_plan::PlanStore;
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::{StoreWriter, prepare_spans};
use serde_json::json;
use std::sync::Arc;

const JOBS: &str = r#"import time
from shop.util import walk

class Loader:
    def load(self, path):
        return open(path).read()

def ingest(loader, n):
    data = loader.load("x")
    walk(n)
    time.sleep(0.01)
    return tidy(data)

def tidy(data):
    return data.strip()
"#;

const UTIL: &str = "def walk(n):\n    return n if n < 1 else walk(n - 1)\n";

#[test]
fn plans_from_the_spans_and_the_source_and_stores_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("shop")).unwrap();
    std::fs::write(src.join("shop/__init__.py"), "").unwrap();
    std::fs::write(src.join("shop/jobs.py"), JOBS).unwrap();
    std::fs::write(src.join("shop/util.py"), UTIL).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut writer = SqliteWriter::open(&data).unwrap();
    for t in 0..3u64 {
        let trace = TraceId([t as u8 + 1; 16]);
        let start = 1_700_000_000_000_000_000 + t * 100 * MS;
        let mut s = span(trace, 1, None, "ingest.batch", start, start + 80 * MS);
        s.attributes
            .push(KeyValue::new("code.function.name", "ingest"));
        s.attributes.push(KeyValue::new(
            "code.file.path",
            src.join("shop/jobs.py").to_string_lossy().as_ref(),
        ));
        writer.write(&[prepare_spans(batch(vec![s]))]).unwrap();
    }
    PlanStore::set_default(PlanStore::new(&data));
    let store = Arc::new(SqliteStore::open(&data).unwrap());
    let server = DevtraceMcp::new(store, Transport::Stdio);

    let (text, is_error) =
        server.call("plan_instrumentation", json!({"operation": "ingest.batch"}));
    assert!(!is_error, "{text}");
    let id = text.split_whitespace().nth(1).unwrap().to_owned();
    assert!(
        text.starts_with(&format!("plan {id} for \"ingest.batch\" (made ")),
        "{text}"
    );
    assert!(text.contains("  why: 100 % of its time (80.0 ms of 80.0 ms a run, over 3 runs) is its own, in no child span\n"), "{text}");
    for line in [
        "    shop.jobs.ingest  jobs.py:8  \"the operation's function\"\n",
        "    shop.jobs.Loader.load  jobs.py:5  \"shop.jobs.ingest calls loader.load() at line 9 (candidate)\"\n",
        "    shop.util.walk  util.py:1  \"shop.jobs.ingest calls walk() at line 10\", recursive\n",
        "    shop.jobs.tidy  jobs.py:14  \"shop.jobs.ingest calls tidy() at line 12\"\n",
        "    \"time.sleep\" at line 11 of shop.jobs.ingest: time.sleep is implemented in C: sys.monitoring sees no Python call, its time stays in the caller's own time\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains(&format!(
        "next: the user runs `devtrace run --plan {id} -- <their command>`"
    )));
    // Stored, and loadable by prefix.
    let plan = PlanStore::default_store().unwrap().load(&id[..6]).unwrap();
    assert_eq!(plan.functions.len(), 4);
    assert_eq!(plan.operation, "ingest.batch");

    // Within a small budget, cut with a note.
    let (small, _) = server.call(
        "plan_instrumentation",
        json!({"operation": "ingest.batch", "budget": 300}),
    );
    assert!(devtrace_mcp::budget::count(&small) <= 300, "{small}");

    // An unknown operation teaches; a name that is no function says what to set.
    let (unknown, is_error) =
        server.call("plan_instrumentation", json!({"operation": "ingest.batc"}));
    assert!(
        is_error && unknown.contains("\"ingest.batch\""),
        "{unknown}"
    );
}

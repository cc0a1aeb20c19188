//! `devtrace recover` of the file a BEAM VM left (docs/beam.md, "Recovering a window"): a VM
//! recording without `devtrace run` (its own flags, a Mix project's config), or one whose run
//! was itself killed, leaves `devtrace-beam-OSPID.ring`; its metadata says `"runtime":"beam"`.
//! It is read here by the CLI's BEAM reader ([`super::run_beam::read_window`]; no VM, no
//! Python) into a trace of its own, whose root is the `devtrace.flight_window` span.

use std::path::Path;

use devtrace_recorder::ring::RecorderFile;

use super::python_autotrace::Recovered;
use super::run_beam::{hot_functions_text, rand_seed, read_window, send};

/// Whether a recorder file is a BEAM VM's (its metadata says `"runtime":"beam"`).
pub fn is_beam(meta: &serde_json::Value) -> bool {
    meta["runtime"] == "beam"
}

/// `devtrace recover` of a file a BEAM VM left (it was killed, or nobody read it after it
/// ended): its window, as long as its metadata says (everything when it says 0), into a trace
/// of its own sent to `endpoint`; the file is removed once sent.
pub fn recover_file(path: &Path, endpoint: &str) -> Recovered {
    let fail = |pid, error: String| Recovered {
        pid,
        python: String::new(),
        outcome: Err(error),
    };
    let file = match RecorderFile::open(path) {
        Ok(file) => file,
        Err(error) => return fail(0, error.to_string()),
    };
    let info = file.info();
    let meta: serde_json::Value = serde_json::from_str(&info.meta).unwrap_or_default();
    let seconds = meta["seconds"]
        .as_f64()
        .filter(|s| *s > 0.0)
        .unwrap_or(f64::MAX / 1e10);
    let seed = rand_seed(path);
    let recorded = read_window(
        file,
        seconds,
        None,
        "recovered: the VM that wrote it is gone",
        seed,
    );
    let Some(window) = recorded.window else {
        return fail(info.pid, "no window".to_owned());
    };
    let (events, processes) = (recorded.events, recorded.processes);
    let hot =
        (!recorded.hot_functions.is_empty()).then(|| hot_functions_text(&recorded.hot_functions));
    let service = format!("beam-vm-{}", info.pid);
    match send(endpoint, "", &service, recorded.spans) {
        Ok(spans) => {
            let _ = std::fs::remove_file(path);
            Recovered {
                pid: info.pid,
                python: String::new(),
                outcome: Ok(serde_json::json!({
                    "trace_id": format!("{:032x}", window.trace_id),
                    "span_id": format!("{:016x}", window.span_id),
                    "spans": spans,
                    "events": events,
                    "processes": processes,
                    "hot_functions": hot,
                    "runtime": "beam",
                    "start": 0.0,
                    "end": window.seconds * 1e9,
                })),
            }
        }
        Err(error) => fail(info.pid, format!("{error:#}")),
    }
}

//! `devtrace run --python-autotrace PKG`: auto-tracing of a Python package in every Python
//! interpreter the command starts, without changing the program.
//!
//! Python imports `sitecustomize` at start-up from the first directory on its path that has
//! one. devtrace writes its own (python/sitecustomize.py, embedded in the binary) into a fresh
//! directory put first on `PYTHONPATH`; it runs the sitecustomize it hides, then calls
//! `devtrace.configure()` and `devtrace.autotrace(PKG…)`. Each interpreter appends a line to a
//! report file (`ok`, `missing` when the devtrace package is not installed for it, `failed`),
//! so devtrace can say afterwards when nothing was auto-traced, and why.
//!
//! The same hook starts the native recorder for `--record` (the flight recorder: each
//! interpreter keeps its window in a ring file under `rings/` of that directory) and `--plan`
//! (the plan's functions, from `plan.json` there). A ring file still there after the command
//! ended belongs to a process that ended without writing its window: [`PythonAutotrace::recover`]
//! has its Python (named in the file) write it into the run's trace. A `--plan` recording's file
//! left in /dev/shm by a program that flushed and `os._exit`ed is removed when every call in it
//! was delivered, and named for `devtrace recover` when not.

use crate::usage::usage;
use anyhow::{Context, Result};
use devtrace_recorder::leftovers::{is_spent, process_alive};
use std::path::PathBuf;

const SITECUSTOMIZE: &str = include_str!("python/sitecustomize.py");
const RUN_HOOK: &str = include_str!("python/devtrace_run_hook.py");
/// A distribution's metadata beside the hook, so that `opentelemetry-instrument` (whose own
/// sitecustomize hides devtrace's) starts the hook in the program it runs, through its
/// `opentelemetry_pre_instrument` entry points, which `importlib.metadata` finds on the path.
const HOOK_DIST_INFO: &str = "devtrace_run_hook-0.dist-info";
const HOOK_METADATA: &str = "Metadata-Version: 2.1\nName: devtrace-run-hook\nVersion: 0\n";
const HOOK_ENTRY_POINTS: &str =
    "[opentelemetry_pre_instrument]\ndevtrace = devtrace_run_hook:start\n";

/// The environment variables the embedded sitecustomize reads.
const PACKAGES_VAR: &str = "DEVTRACE_PYTHON_AUTOTRACE";
const REPORT_VAR: &str = "DEVTRACE_PYTHON_AUTOTRACE_REPORT";
const THRESHOLD_VAR: &str = "DEVTRACE_AUTOTRACE_THRESHOLD_MS";
const RECORD_VAR: &str = "DEVTRACE_RECORD";
const RECORD_SECONDS_VAR: &str = "DEVTRACE_RECORD_SECONDS";
/// `--record-seconds 0` for a Python flight recorder: a window longer than any run.
const KEEP_ALL_SECONDS: f64 = 1e9;
const RECORD_MIB_VAR: &str = "DEVTRACE_RECORD_MIB";
const RECORD_DIR_VAR: &str = "DEVTRACE_RECORD_DIR";
/// The start of the name of a run's directory for its Pythons, followed by the run's pid
/// (`devtrace recover` looks into those of runs that are gone).
pub const RUN_DIR_PREFIX: &str = "devtrace-autotrace-";
const PLAN_VAR: &str = "DEVTRACE_RECORD_PLAN";
/// "0": the recorder links no wait to its cause (`--no-causality`).
const CAUSALITY_VAR: &str = "DEVTRACE_RECORD_CAUSALITY";

pub struct PythonAutotrace {
    dir: PathBuf,
    report: PathBuf,
    packages: Vec<String>,
    threshold_ms: Option<f64>,
    /// --record: (seconds, MiB).
    record: Option<(f64, u64)>,
    /// --plan: the plan file for the recorder.
    plan: Option<PathBuf>,
    /// Whether the recorder links waits to their causes (off: --no-causality).
    causality: bool,
}

/// Checks that each name is a Python module name (`app`, `app.core`).
pub fn check_packages(packages: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for given in packages {
        for name in given.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let valid = name.split('.').all(|part| {
                let mut chars = part.chars();
                chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                    && chars.all(|c| c == '_' || c.is_alphanumeric())
            });
            if !valid {
                usage!(
                    "--python-autotrace {name:?}: not a Python module name; give the package the program imports, e.g. --python-autotrace myapp"
                );
            }
            out.push(name.to_owned());
        }
    }
    if out.is_empty() {
        usage!("--python-autotrace needs a package name, e.g. --python-autotrace myapp");
    }
    Ok(out)
}

/// Writes the sitecustomize, the hook it runs and the hook's entry point into `dir`.
fn write_hook(dir: &std::path::Path) -> Result<()> {
    let dist_info = dir.join(HOOK_DIST_INFO);
    std::fs::create_dir_all(&dist_info)
        .with_context(|| format!("cannot create {}", crate::output::path(&dist_info)))?;
    for (path, text) in [
        (dir.join("sitecustomize.py"), SITECUSTOMIZE),
        (dir.join("devtrace_run_hook.py"), RUN_HOOK),
        (dist_info.join("METADATA"), HOOK_METADATA),
        (dist_info.join("entry_points.txt"), HOOK_ENTRY_POINTS),
    ] {
        std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", crate::output::path(&path)))?;
    }
    Ok(())
}

impl PythonAutotrace {
    /// Writes the sitecustomize into a fresh temporary directory.
    pub fn prepare(
        packages: Vec<String>,
        threshold_ms: Option<f64>,
        record: Option<(f64, u64)>,
        plan_json: Option<String>,
        causality: bool,
    ) -> Result<Self> {
        if let Some((seconds, mib)) = record {
            if !(seconds >= 0.0 && seconds.is_finite()) {
                usage!(
                    "--record-seconds {seconds}: give a number of seconds > 0, or 0 to keep everything"
                );
            }
            if mib < 2 {
                usage!("--record-mib {mib}: the flight recorder needs at least 2 MiB");
            }
        }
        if let Some(ms) = threshold_ms
            && !(ms >= 0.0 && ms.is_finite())
        {
            usage!("--python-autotrace-threshold {ms}: give a number of milliseconds ≥ 0");
        }
        let dir = std::env::temp_dir().join(format!(
            "{RUN_DIR_PREFIX}{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", crate::output::path(&dir)))?;
        write_hook(&dir)?;
        let plan = match plan_json {
            Some(json) => {
                let path = dir.join("plan.json");
                std::fs::write(&path, json)
                    .with_context(|| format!("cannot write {}", crate::output::path(&path)))?;
                Some(path)
            }
            None => None,
        };
        if record.is_some() {
            std::fs::create_dir_all(dir.join("rings"))
                .with_context(|| format!("cannot create {}/rings", crate::output::path(&dir)))?;
        }
        Ok(Self {
            report: dir.join("report.txt"),
            dir,
            packages,
            threshold_ms,
            record,
            plan,
            causality,
        })
    }

    /// The child's variables: our directory first on PYTHONPATH, what to trace, where to report.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut python_path = self.dir.display().to_string();
        if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
            python_path.push(':');
            python_path.push_str(&existing.to_string_lossy());
        }
        let mut env = vec![
            ("PYTHONPATH".to_owned(), python_path),
            (PACKAGES_VAR.to_owned(), self.packages.join(",")),
            (REPORT_VAR.to_owned(), self.report.display().to_string()),
        ];
        if let Some(ms) = self.threshold_ms {
            env.push((THRESHOLD_VAR.to_owned(), ms.to_string()));
        }
        if let Some((seconds, mib)) = self.record {
            env.push((RECORD_VAR.to_owned(), "flight".to_owned()));
            // 0 keeps everything: for Python's flight recorder, all that its ring holds.
            let seconds = if seconds == 0.0 {
                KEEP_ALL_SECONDS
            } else {
                seconds
            };
            env.push((RECORD_SECONDS_VAR.to_owned(), seconds.to_string()));
            env.push((RECORD_MIB_VAR.to_owned(), mib.to_string()));
            env.push((
                RECORD_DIR_VAR.to_owned(),
                self.dir.join("rings").display().to_string(),
            ));
        }
        if let Some(plan) = &self.plan {
            env.push((PLAN_VAR.to_owned(), plan.display().to_string()));
        }
        if !self.causality {
            env.push((CAUSALITY_VAR.to_owned(), "0".to_owned()));
        }
        env
    }

    /// Writes into the trace the windows of the processes that died with the flight recorder
    /// on (their ring files are still there), through the Python that recorded each, sending
    /// to `endpoint`. Returns one line per file for the user.
    pub fn recover(&self, endpoint: &str) -> Vec<String> {
        let mut notes = self.sweep_plan_rings();
        let entries = std::fs::read_dir(self.dir.join("rings"))
            .into_iter()
            .flatten();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "ring") {
                continue;
            }
            notes.push(recover_one(&path, endpoint));
        }
        notes.sort();
        notes
    }

    /// The ring files the run's Pythons recording a plan left where a default one goes
    /// (`devtrace-record-PID.ring` in /dev/shm, else the temporary directory) because they
    /// ended without stopping the recording (a flush then `os._exit`): each holds its size of
    /// memory until removed. One whose every call was delivered is removed; one holding a call
    /// read and not delivered is kept for `devtrace recover`, and named.
    fn sweep_plan_rings(&self) -> Vec<String> {
        let report = std::fs::read_to_string(&self.report).unwrap_or_default();
        let pids = report
            .lines()
            .filter_map(|line| line.strip_prefix("ok ")?.split(' ').next());
        let mut notes = Vec::new();
        for pid in pids {
            for dir in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
                let path = dir.join(format!("devtrace-record-{pid}.ring"));
                let left = python_ring_of_dead_process(&path);
                if !left || (is_spent(&path) && std::fs::remove_file(&path).is_ok()) {
                    continue;
                }
                notes.push(format!(
                    "devtrace: --plan: process {pid} ended without stopping its recording, with a call not yet delivered; its file is kept: `devtrace recover {}` writes it",
                    crate::output::path(&path)
                ));
            }
        }
        notes
    }

    /// Removes the directory; returns what to tell the user when no interpreter was traced.
    pub fn finish(self) -> Option<String> {
        let report = std::fs::read_to_string(&self.report).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.packages.is_empty() {
            let flag = if self.plan.is_some() {
                "--plan"
            } else {
                "--record"
            };
            return summary(&report, &[]).map(|note| {
                note.replace("--python-autotrace ", flag)
                    .replace("auto-traced", "recorded")
                    .replace("auto-tracing hook", "recorder")
            });
        }
        summary(&report, &self.packages)
    }
}

/// Whether `path` is a ring file whose process is gone.
fn python_ring_of_dead_process(path: &std::path::Path) -> bool {
    path.is_file() && ring_file_info(path).is_ok_and(|(pid, _)| !process_alive(pid))
}

fn recover_one(path: &std::path::Path, endpoint: &str) -> String {
    let recovered = recover_file(path, endpoint);
    match &recovered.outcome {
        Ok(result) => format!(
            "devtrace: --record: process {} ended without writing its window; recovered its last {:.2} s ({} calls kept as spans, {} events) from {}",
            recovered.pid,
            window_seconds(result),
            result["spans"].as_u64().unwrap_or(0),
            result["events"].as_u64().unwrap_or(0),
            crate::output::path(path)
        ),
        Err(error) if recovered.pid == 0 => format!("devtrace: --record: {error}"),
        Err(error) => format!(
            "devtrace: --record: could not recover the window of process {}: {error}",
            recovered.pid
        ),
    }
}

/// What recovering one ring file gave.
pub(super) struct Recovered {
    /// The process that wrote the file (0 when the file could not be read).
    pub pid: u32,
    /// The Python that recorded it (and recovered it).
    pub python: String,
    /// `python -m devtrace.recover --json`'s answer (trace_id, span_id, spans, events, start,
    /// end), or what went wrong, for people.
    pub outcome: std::result::Result<serde_json::Value, String>,
}

/// How long a recovered window was, in seconds.
pub(super) fn window_seconds(result: &serde_json::Value) -> f64 {
    ((result["end"].as_f64().unwrap_or(0.0) - result["start"].as_f64().unwrap_or(0.0)) / 1e9)
        .max(0.0)
}

/// The pid that wrote a ring file and the meta it left, or why it is not one.
pub(super) fn ring_file_info(
    path: &std::path::Path,
) -> std::result::Result<(u32, serde_json::Value), String> {
    let info = devtrace_recorder::RecorderFile::open(path)
        .map_err(|error| error.to_string())?
        .info();
    Ok((
        info.pid,
        serde_json::from_str(&info.meta).unwrap_or_default(),
    ))
}

/// Writes the window of the dead process that left `path` into its trace, through the Python
/// that recorded it (`python -m devtrace.recover`), sending to `endpoint`; the file is removed
/// once written.
pub(super) fn recover_file(path: &std::path::Path, endpoint: &str) -> Recovered {
    let (pid, meta) = match ring_file_info(path) {
        Ok(found) => found,
        Err(error) => {
            return Recovered {
                pid: 0,
                python: String::new(),
                outcome: Err(error),
            };
        }
    };
    let python = meta["python"].as_str().unwrap_or("python3").to_owned();
    let mut command = std::process::Command::new(&python);
    command
        .args(["-m", "devtrace.recover", "--json"])
        .arg(path)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env_remove("TRACEPARENT")
        .env_remove("PYTHONPATH");
    if let Some(service) = meta["service.name"].as_str().filter(|s| !s.is_empty()) {
        command.env("OTEL_SERVICE_NAME", service);
    }
    let outcome = match command.output() {
        Ok(out) if out.status.success() => serde_json::from_slice(&out.stdout).map_err(|_| {
            format!(
                "{} -m devtrace.recover printed no result",
                devtrace_model::recorded::quote(&python)
            )
        }),
        Ok(out) => Err(format!(
            "{} -m devtrace.recover failed: {}",
            devtrace_model::recorded::quote(&python),
            devtrace_model::recorded::escape(
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )
        )),
        Err(error) => Err(format!(
            "cannot run {}: {error} (the Python that recorded the file; is it still installed?)",
            devtrace_model::recorded::quote(&python)
        )),
    };
    Recovered {
        pid,
        python,
        outcome,
    }
}

/// The note for a report in which no interpreter started auto-tracing (the interpreters that
/// could not already said why on stderr).
fn summary(report: &str, packages: &[String]) -> Option<String> {
    let lines: Vec<&str> = report.lines().collect();
    if lines.iter().any(|l| l.starts_with("ok ")) {
        return None;
    }
    if lines.is_empty() {
        return Some(format!(
            "devtrace: --python-autotrace {}: no Python interpreter started by the command loaded the auto-tracing hook (is it a Python program? `python -I`, `-S` or `-E` ignore PYTHONPATH)",
            packages.join(",")
        ));
    }
    Some(format!(
        "devtrace: --python-autotrace {}: nothing was auto-traced (see the messages above)",
        packages.join(",")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_checked() {
        assert_eq!(
            check_packages(&["app".into(), "lib.core, other".into()]).unwrap(),
            vec!["app", "lib.core", "other"]
        );
        let error = check_packages(&["my-app".into()]).unwrap_err().to_string();
        assert!(
            error.contains("\"my-app\": not a Python module name"),
            "{error}"
        );
        assert!(check_packages(&[" , ".into()]).is_err());
    }

    #[test]
    fn the_summary_speaks_only_when_nothing_was_traced() {
        let packages = vec!["app".to_owned()];
        assert_eq!(summary("ok 12 /usr/bin/python3\n", &packages), None);
        assert_eq!(
            summary(
                "missing 12 /usr/bin/python3\nok 13 /venv/bin/python\n",
                &packages
            ),
            None
        );
        assert!(
            summary("", &packages)
                .unwrap()
                .contains("no Python interpreter started by the command loaded")
        );
        assert!(
            summary("missing 12 /usr/bin/python3\n", &packages)
                .unwrap()
                .contains("nothing was auto-traced")
        );
    }
}

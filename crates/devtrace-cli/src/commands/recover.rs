//! `devtrace recover [FILE…]`: the flight-recorder windows of Python processes and BEAM VMs
//! that died (SIGKILL, a crash) written into their traces.
//!
//! A recording process keeps its rings in a file (`/dev/shm/devtrace-flight-PID.ring` by
//! default); it removes the file at a clean exit and writes its window itself when it fails, so
//! a file whose process is gone is a window nobody wrote. Each is read by the Python that
//! recorded it (`python -m devtrace.recover`, the same conversion as a live dump) and sent to a
//! running `devtrace serve` for the data directory, else to receivers started over the store
//! for the moment (as `devtrace run` does). A BEAM VM's file (`devtrace-beam-OSPID.ring`, its
//! metadata's `"runtime"` `"beam"`) is read here, by the BEAM reader ([`super::recover_beam`]),
//! into a trace of its own. The directories a `devtrace run` killed before it read its
//! programs' files left are looked into too, and removed once empty; a lossless recording's
//! file with every call delivered is removed rather than recovered.

use crate::cli::RecoverArgs;
use crate::commands::python_autotrace::{self, Recovered};
use crate::commands::recover_beam;
use crate::commands::run::Destination;
use crate::output::eprintln_safe;
use anyhow::{Result, bail};
use devtrace_recorder::leftovers::{is_spent, process_alive};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where recorder files are looked for without arguments: `--dir`, else where
/// `devtrace.record()` puts them (`/dev/shm`, else the temporary directory).
fn directories(args: &RecoverArgs) -> Vec<PathBuf> {
    if !args.dir.is_empty() {
        return args.dir.clone();
    }
    let mut dirs = vec![PathBuf::from("/dev/shm"), std::env::temp_dir()];
    dirs.dedup();
    dirs
}

/// Why a lossless recording's file is removed rather than recovered.
const SPENT: &str =
    "its process ended without stopping the recording, and every call in it was delivered";
/// Why a directory a dead `devtrace run` left is removed.
const RUN_DIR_EMPTIED: &str =
    "the `devtrace run` that made it is gone, and no recorder file is left in it";

/// The recorder files left in the places [`directories`] names: those there, and those in the
/// directories of a `devtrace run` that died before it read them (SIGKILL): its BEAM VMs'
/// (`devtrace-beam-PID-…`) and its Pythons' (`devtrace-autotrace-PID-…`, PID its own).
/// Returns them in order, and those directories.
fn files_left(args: &RecoverArgs) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut files, mut run_dirs) = (Vec::new(), Vec::new());
    for dir in directories(args) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            if name.starts_with("devtrace-") && name.ends_with(".ring") {
                files.push(path);
            } else if orphaned_run_dir(&name) && path.is_dir() {
                files.extend(ring_files_in(&path));
                run_dirs.push(path);
            }
        }
    }
    files.sort();
    (files, run_dirs)
}

/// Whether `name` is the directory of a `devtrace run` whose process is gone.
fn orphaned_run_dir(name: &str) -> bool {
    let rest = name
        .strip_prefix(super::run_beam::RUN_DIR_PREFIX)
        .or_else(|| name.strip_prefix(python_autotrace::RUN_DIR_PREFIX));
    let pid = rest.and_then(|rest| rest.split('-').next()?.parse::<u32>().ok());
    pid.is_some_and(|pid| !process_alive(pid))
}

/// The `.ring` files directly in `dir`.
fn ring_files_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "ring"))
        .collect()
}

/// Removes each of a dead `devtrace run`'s directories that no recorder file is left in (what
/// else it holds is the run's own: the hook it gave the Pythons).
fn remove_emptied(run_dirs: Vec<PathBuf>) -> Vec<(PathBuf, &'static str)> {
    run_dirs
        .into_iter()
        .filter(|dir| ring_files_in(dir).is_empty() && std::fs::remove_dir_all(dir).is_ok())
        .map(|dir| (dir, RUN_DIR_EMPTIED))
        .collect()
}

/// A file that is not recovered, and why.
struct Skipped {
    file: PathBuf,
    pid: u32,
    reason: String,
}

pub fn run(choice: &crate::config::StoreChoice, args: &RecoverArgs) -> Result<ExitCode> {
    let given = !args.files.is_empty();
    let mut candidates: Vec<PathBuf> = Vec::new();
    let mut run_dirs: Vec<PathBuf> = Vec::new();
    if given {
        for file in &args.files {
            if !file.is_file() {
                bail!(
                    "{}: no such file; give a recorder file (/dev/shm/devtrace-flight-PID.ring), or no argument to recover every one left",
                    crate::output::path(file)
                );
            }
            candidates.push(file.clone());
        }
    } else {
        (candidates, run_dirs) = files_left(args);
    }

    let mut to_recover = Vec::new();
    let mut skipped = Vec::new();
    let mut failed: Vec<(PathBuf, Recovered)> = Vec::new();
    let mut removed = Vec::new();
    for file in candidates {
        if is_spent(&file) {
            if std::fs::remove_file(&file).is_ok() {
                removed.push((file, SPENT));
            }
            continue;
        }
        let run_gone = run_dirs.iter().any(|dir| file.starts_with(dir));
        match python_autotrace::ring_file_info(&file) {
            Ok((pid, meta)) if process_alive(pid) && pid != std::process::id() => skipped.push(Skipped {
                file,
                pid,
                reason: if recover_beam::is_beam(&meta) {
                    let writer = if run_gone {
                        "the `devtrace run` that started it is gone"
                    } else {
                        "the `devtrace run` that started it writes its window when it ends"
                    };
                    format!(
                        "BEAM VM {pid} is still running: {writer}; recover it after the VM is gone"
                    )
                } else {
                    format!(
                        "process {pid} is still running: it writes its window itself when it fails or exits (`kill -USR2 {pid}` writes it now)"
                    )
                },
            }),
            Ok(_) => to_recover.push(file),
            Err(error) if given => failed.push((
                file,
                Recovered {
                    pid: 0,
                    python: String::new(),
                    outcome: Err(error),
                },
            )),
            // Not a recorder file of ours: not ours to report on when nobody named it.
            Err(_) => {}
        }
    }

    let mut recovered: Vec<(PathBuf, Recovered)> = Vec::new();
    if !to_recover.is_empty() {
        let destination = Destination::choose_for(choice, None);
        let Some(endpoint) = destination.endpoint().map(str::to_owned) else {
            let reason = match &destination {
                Destination::Unrecorded(reason) => reason.clone(),
                _ => String::new(),
            };
            bail!(
                "cannot write the windows anywhere: {reason}; the files are kept ({} of them)",
                to_recover.len()
            );
        };
        for file in to_recover {
            let beam = python_autotrace::ring_file_info(&file)
                .is_ok_and(|(_, meta)| recover_beam::is_beam(&meta));
            let result = if beam {
                recover_beam::recover_file(&file, &endpoint)
            } else {
                python_autotrace::recover_file(&file, &endpoint)
            };
            if result.outcome.is_ok() {
                recovered.push((file, result));
            } else {
                failed.push((file, result));
            }
        }
        destination.wait_for_late_spans();
        destination.stop();
    }

    removed.extend(remove_emptied(run_dirs));
    let ok = failed.is_empty();
    if args.json {
        let view = json!({
            "recovered": recovered.iter().map(|(file, r)| {
                let result = r.outcome.as_ref().ok().cloned().unwrap_or(Value::Null);
                json!({
                    "file": file.display().to_string(),
                    "pid": r.pid,
                    "python": r.python,
                    "trace_id": result["trace_id"],
                    "span_id": result["span_id"],
                    "spans": result["spans"],
                    "events": result["events"],
                    "seconds": python_autotrace::window_seconds(&result),
                })
            }).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(|s| json!({
                "file": s.file.display().to_string(),
                "pid": s.pid,
                "reason": s.reason,
            })).collect::<Vec<_>>(),
            "removed": removed.iter().map(|(file, _)| file.display().to_string()).collect::<Vec<_>>(),
            "failed": failed.iter().map(|(file, r)| json!({
                "file": file.display().to_string(),
                "pid": r.pid,
                "error": r.outcome.as_ref().err(),
            })).collect::<Vec<_>>(),
        });
        crate::output::print_json(&view)?;
    } else {
        crate::output::print_fitted(&text(&recovered, &skipped, &removed, &failed, args))?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        eprintln_safe!(
            "devtrace: {} recorder file(s) could not be recovered (kept)",
            failed.len()
        );
        ExitCode::FAILURE
    })
}

fn text(
    recovered: &[(PathBuf, Recovered)],
    skipped: &[Skipped],
    removed: &[(PathBuf, &str)],
    failed: &[(PathBuf, Recovered)],
    args: &RecoverArgs,
) -> String {
    let mut out = String::new();
    for (file, why) in removed {
        out.push_str(&format!("removed {}: {why}\n", crate::output::path(file)));
    }
    if recovered.is_empty() && skipped.is_empty() && failed.is_empty() {
        let places = directories(args)
            .iter()
            .map(|d| crate::output::path(d))
            .collect::<Vec<_>>()
            .join(" or ");
        if args.files.is_empty() && removed.is_empty() {
            out.push_str(&format!(
                "nothing to recover: no recorder file left by a dead process in {places}\n"
            ));
        } else if args.files.is_empty() {
            out.push_str(&format!("nothing to recover in {places}\n"));
        }
        return out;
    }
    for (file, r) in recovered {
        let result = r.outcome.as_ref().ok().cloned().unwrap_or(Value::Null);
        let trace = result["trace_id"].as_str().unwrap_or("");
        if result["runtime"] == "beam" {
            out.push_str(&format!(
                "recovered BEAM VM {}'s last {:.2} s ({} of the program, {} spans, {} events) from {}\n  into trace {trace}: devtrace show {}\n",
                r.pid,
                python_autotrace::window_seconds(&result),
                crate::output::processes(result["processes"].as_u64().unwrap_or(0)),
                result["spans"].as_u64().unwrap_or(0),
                result["events"].as_u64().unwrap_or(0),
                crate::output::path(file),
                &trace[..trace.len().min(12)],
            ));
            if let Some(hot) = result["hot_functions"].as_str() {
                out.push_str(&format!("  {hot}\n"));
            }
            continue;
        }
        out.push_str(&format!(
            "recovered process {}'s last {:.2} s ({} calls kept as spans, {} events) from {}\n  into trace {trace}: devtrace show {}\n",
            r.pid,
            python_autotrace::window_seconds(&result),
            result["spans"].as_u64().unwrap_or(0),
            result["events"].as_u64().unwrap_or(0),
            crate::output::path(file),
            &trace[..trace.len().min(12)],
        ));
    }
    for s in skipped {
        out.push_str(&format!(
            "skipped {}: {}\n",
            crate::output::path(&s.file),
            s.reason
        ));
    }
    for (file, r) in failed {
        out.push_str(&format!(
            "not recovered {}: {}\n",
            crate::output::path(file),
            r.outcome.as_ref().err().map_or("", String::as_str)
        ));
    }
    out
}

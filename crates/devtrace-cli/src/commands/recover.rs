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
//! into a trace of its own.

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

/// A file that is not recovered, and why.
struct Skipped {
    file: PathBuf,
    pid: u32,
    reason: String,
}

pub fn run(choice: &crate::config::StoreChoice, args: &RecoverArgs) -> Result<ExitCode> {
    let given = !args.files.is_empty();
    let mut candidates: Vec<PathBuf> = Vec::new();
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
        for dir in directories(args) {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("devtrace-") && name.ends_with(".ring") {
                    candidates.push(entry.path());
                }
            }
        }
        candidates.sort();
    }

    let mut to_recover = Vec::new();
    let mut skipped = Vec::new();
    let mut failed: Vec<(PathBuf, Recovered)> = Vec::new();
    let mut removed = Vec::new();
    for file in candidates {
        if is_spent(&file) {
            if std::fs::remove_file(&file).is_ok() {
                removed.push(file);
            }
            continue;
        }
        match python_autotrace::ring_file_info(&file) {
            Ok((pid, meta)) if process_alive(pid) && pid != std::process::id() => skipped.push(Skipped {
                file,
                pid,
                reason: if recover_beam::is_beam(&meta) {
                    format!(
                        "BEAM VM {pid} is still running: the `devtrace run` that started it writes its window when it ends; recover it after the VM is gone"
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
            "removed": removed.iter().map(|file| file.display().to_string()).collect::<Vec<_>>(),
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
    removed: &[PathBuf],
    failed: &[(PathBuf, Recovered)],
    args: &RecoverArgs,
) -> String {
    let mut out = String::new();
    for file in removed {
        out.push_str(&format!(
            "removed {}: its process ended without stopping the recording, and every call in it was delivered\n",
            crate::output::path(file)
        ));
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
                "recovered BEAM VM {}'s last {:.2} s ({} processes of the program, {} spans, {} events) from {}\n  into trace {trace}: devtrace show {}\n",
                r.pid,
                python_autotrace::window_seconds(&result),
                result["processes"].as_u64().unwrap_or(0),
                result["spans"].as_u64().unwrap_or(0),
                result["events"].as_u64().unwrap_or(0),
                crate::output::path(file),
                &trace[..trace.len().min(12)],
            ));
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

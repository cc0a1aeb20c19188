//! `devtrace recover` by its exact text: what is said when there is nothing to recover, for a
//! file whose process still runs, a file that is not a recorder file, a file whose Python is
//! gone, and a lossless recording's file with every call delivered (removed). (A real window recovered through CPython is tested in
//! tests/e2e/test_native_recorder.py.)

mod common;
use common::devtrace_parts;

use devtrace_recorder::ring::{Cursor, EventKind, Layout, RecorderFile, pack_meta};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// A recorder file as the Python recorder makes one, written by process `pid`.
fn ring_file(path: &Path, pid: u32, python: &str) {
    let meta = json!({"python": python, "pid": pid, "mode": "flight"}).to_string();
    RecorderFile::create(path, Layout::for_size(4 << 20).unwrap(), pid, 0, &meta).unwrap();
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn what_recover_says_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rings = dir.path().join("rings");
    std::fs::create_dir(&rings).unwrap();

    assert_eq!(
        devtrace_parts(&data, &["recover", "--dir", rings.to_str().unwrap()]),
        (
            0,
            format!(
                "nothing to recover: no recorder file left by a dead process in {}\n",
                rings.display()
            ),
            String::new()
        )
    );
    let (code, stdout, _) = devtrace_parts(
        &data,
        &["recover", "--dir", rings.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        json!({"recovered": [], "skipped": [], "removed": [], "failed": []})
    );

    let missing = rings.join("devtrace-flight-1.ring");
    assert_eq!(
        devtrace_parts(&data, &["recover", missing.to_str().unwrap()]),
        (
            1,
            String::new(),
            format!(
                "error: {}: no such file; give a recorder file (/dev/shm/devtrace-flight-PID.ring), or no argument to recover every one left\n",
                missing.display()
            )
        )
    );

    // A process that still runs (this test) writes its window itself.
    let live = rings.join("devtrace-flight-live.ring");
    ring_file(&live, std::process::id(), "python3");
    let pid = std::process::id();
    assert_eq!(
        devtrace_parts(&data, &["recover", "--dir", rings.to_str().unwrap()]),
        (
            0,
            format!(
                "skipped {}: process {pid} is still running: it writes its window itself when it fails or exits (`kill -USR2 {pid}` writes it now)\n",
                live.display()
            ),
            String::new()
        )
    );
    std::fs::remove_file(&live).unwrap();

    // Not a recorder file, named on the command line.
    let other = rings.join("notes.txt");
    std::fs::write(&other, "hello").unwrap();
    assert_eq!(
        devtrace_parts(&data, &["recover", other.to_str().unwrap()]),
        (
            1,
            format!(
                "not recovered {}: recorder file {} is not a devtrace recorder file (bad magic or version); it may be from another program or a newer devtrace\n",
                other.display(),
                other.display()
            ),
            "devtrace: 1 recorder file(s) could not be recovered (kept)\n".into()
        )
    );

    // A dead process whose Python is gone: the file is kept, and the reason said.
    let dead = rings.join("devtrace-flight-dead.ring");
    let pid = dead_pid();
    ring_file(&dead, pid, "/nonexistent/python3.12");
    let (code, stdout, stderr) = devtrace_parts(
        &data,
        &["recover", "--dir", rings.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, 1, "{stderr}");
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        result,
        json!({
            "recovered": [],
            "skipped": [],
            "removed": [],
            "failed": [{
                "file": dead.display().to_string(),
                "pid": pid,
                "error": "cannot run \"/nonexistent/python3.12\": No such file or directory (os error 2) (the Python that recorded the file; is it still installed?)",
            }],
        })
    );
    assert!(dead.is_file(), "a file not recovered is kept");
}

#[test]
fn a_delivered_recordings_file_is_removed_not_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rings = dir.path().join("rings");
    std::fs::create_dir(&rings).unwrap();
    // A lossless recording whose process flushed (its reader read every call), then ended
    // without stopping the recording (`os._exit`).
    let spent = rings.join("devtrace-record-7.ring");
    let meta = json!({"python": "/nonexistent/python3.12", "pid": 7, "mode": "record"}).to_string();
    let file = RecorderFile::create(
        &spent,
        Layout::for_size(4 << 20).unwrap(),
        dead_pid(),
        0,
        &meta,
    )
    .unwrap();
    let mut writer = file.writer(1);
    file.push(&mut writer, 10, pack_meta(EventKind::Call, 1, 0));
    file.push(&mut writer, 20, pack_meta(EventKind::Return, 1, 0));
    Cursor::new().read(&file, None);
    assert_eq!(
        devtrace_parts(&data, &["recover", "--dir", rings.to_str().unwrap()]),
        (
            0,
            format!(
                "removed {}: its process ended without stopping the recording, and every call in it was delivered\nnothing to recover in {}\n",
                spent.display(),
                rings.display()
            ),
            String::new()
        )
    );
    assert!(!spent.exists());
}

#[test]
fn the_files_of_a_devtrace_run_that_died_are_found_in_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rings = dir.path().join("rings");
    std::fs::create_dir(&rings).unwrap();
    let dead_run = dead_pid();
    // A Python's window in the directory of a `devtrace run --record` killed before it read
    // it (its Python gone too, so it cannot be recovered here: said, and kept)...
    let python_run = rings.join(format!("devtrace-autotrace-{dead_run}-5f"));
    std::fs::create_dir(&python_run).unwrap();
    std::fs::write(python_run.join("sitecustomize.py"), "# the run's").unwrap();
    let window = python_run.join("4242.ring");
    let pid = dead_pid();
    ring_file(&window, pid, "/nonexistent/python3.12");
    // ... a BEAM run's directory with nothing left in it, removed...
    let beam_run = rings.join(format!("devtrace-beam-{dead_run}-a1"));
    std::fs::create_dir(&beam_run).unwrap();
    // ... and the directory of a run still going (this test), left alone.
    let live_run = rings.join(format!("devtrace-beam-{}-b2", std::process::id()));
    std::fs::create_dir(&live_run).unwrap();
    ring_file(&live_run.join("devtrace-beam-1.ring"), dead_pid(), "erl");

    let (code, stdout, stderr) = devtrace_parts(
        &data,
        &["recover", "--dir", rings.to_str().unwrap(), "--json"],
    );
    assert_eq!(
        (code, stderr.as_str()),
        (
            1,
            "devtrace: 1 recorder file(s) could not be recovered (kept)\n"
        )
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        json!({
            "recovered": [],
            "skipped": [],
            "removed": [beam_run.display().to_string()],
            "failed": [{
                "file": window.display().to_string(),
                "pid": pid,
                "error": "cannot run \"/nonexistent/python3.12\": No such file or directory (os error 2) (the Python that recorded the file; is it still installed?)",
            }],
        })
    );
    assert!(
        window.is_file() && python_run.is_dir(),
        "a window not recovered is kept, with its directory"
    );
    assert!(!beam_run.exists());
    assert!(live_run.join("devtrace-beam-1.ring").is_file());
}

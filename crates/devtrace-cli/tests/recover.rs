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

//! A data directory devtrace cannot use, and a port it cannot listen on: each error names the
//! path or the port and says what to do (docs/cli.md), exit code 1, and nothing is changed.
//!
//! Permissions do not bind root, so when the tests run as root the commands that must meet a
//! permission error run as `nobody` (`setpriv`, util-linux).

mod common;

use common::{BIN, Server, Tmpfs, devtrace, stderr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const SPANS: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"op","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

fn running_as_root() -> bool {
    let id = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

/// `devtrace --data DATA ARGS…` as a user without special rights: `nobody` when the tests run
/// as root. `home` must be reachable by that user.
fn devtrace_unprivileged(home: &Path, data: &Path, args: &[&str]) -> Output {
    let mut command = if running_as_root() {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        command
    } else {
        Command::new(BIN)
    };
    command
        .arg("--data")
        .arg(data)
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DEVTRACE_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A temporary directory every user may enter, with the spans file to import in it.
fn workspace() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.path().join("spans.json");
    std::fs::write(&file, SPANS).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir, file.to_str().unwrap().to_owned())
}

/// (exit code, stderr with `dir` written as DIR).
fn failure(output: &Output, dir: &Path) -> (Option<i32>, String) {
    (
        output.status.code(),
        stderr(output).replace(dir.to_str().unwrap(), "DIR"),
    )
}

#[test]
fn a_file_where_the_data_directory_should_be() {
    let (dir, spans) = workspace();
    let data = dir.path().join("data");
    std::fs::write(&data, "not a directory").unwrap();
    let expected = "error: the data directory DIR/data is a file, or has a file in its path: move the file away, or choose another directory with --data\n";
    assert_eq!(
        failure(&devtrace(&data, &["ls"]), dir.path()),
        (Some(1), expected.to_owned())
    );
    let import = devtrace(&data, &["import", &spans]);
    assert_eq!(failure(&import, dir.path()), (Some(1), expected.to_owned()));
    // `record` keeps its journals there too, and says the same.
    let status = devtrace(&data, &["record", "status"]);
    assert_eq!(failure(&status, dir.path()), (Some(1), expected.to_owned()));
    // Below it, too.
    let below = data.join("store");
    assert_eq!(
        failure(&devtrace(&below, &["import", &spans]), dir.path()),
        (
            Some(1),
            "error: the data directory DIR/data/store is a file, or has a file in its path: move the file away, or choose another directory with --data\n".to_owned()
        )
    );
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "not a directory");
}

#[test]
fn an_unreadable_data_directory() {
    let (dir, spans) = workspace();
    let data = dir.path().join("data");
    common::ok(devtrace(&data, &["import", &spans]));
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o000)).unwrap();
    let output = devtrace_unprivileged(dir.path(), &data, &["ls"]);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        failure(&output, dir.path()),
        (
            Some(1),
            "error: cannot read the data directory DIR/data: permission denied; give your user access to it (chmod u+rwx DIR/data), or choose another directory with --data\n".to_owned()
        )
    );
}

#[test]
fn an_unwritable_data_directory() {
    let (dir, spans) = workspace();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    let output = devtrace_unprivileged(dir.path(), &data, &["import", &spans]);
    assert_eq!(
        failure(&output, dir.path()),
        (
            Some(1),
            "error: cannot write in the data directory DIR/data: permission denied; give your user write access to it (chmod u+rwx DIR/data), or choose another directory with --data\n".to_owned()
        )
    );
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "something was written"
    );
}

#[test]
fn a_data_directory_on_a_full_disk() {
    let Some(fs) = Tmpfs::mount(1) else { return };
    let (dir, spans) = workspace();
    // Fill the file system with a file the test can delete again.
    let filler = fs.path().join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        while file.write_all(&[0u8; 4096]).is_ok() {}
    }
    let data = fs.path().join("data");
    let output = devtrace(&data, &["import", &spans]);
    assert_eq!(
        failure(&output, fs.path()),
        (
            Some(1),
            "error: cannot write in the data directory DIR/data: the disk holding it is full; free space there, or choose another directory with --data\n".to_owned()
        )
    );
    drop(dir);
}

#[test]
fn a_data_directory_locked_by_another_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = Server::start(&data);
    let second = common::serve_command(&data)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let pid = std::fs::read_to_string(data.join("serve.json")).unwrap();
    let pid: serde_json::Value = serde_json::from_str(&pid).unwrap();
    assert_eq!(
        failure(&second, dir.path()),
        (
            Some(1),
            format!(
                "error: another devtrace serve is already using DIR/data (pid {}, API on {}); stop it or pass a different --data\n",
                pid["pid"], first.api
            )
        )
    );
    assert!(first.is_running(), "the first server was disturbed");
    first.stop();
}

#[test]
fn a_port_in_use_names_the_setting_that_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for (flag, env, key, what) in [
        (
            "--grpc-listen",
            "DEVTRACE_GRPC_LISTEN",
            "grpc-listen",
            "OTLP/gRPC",
        ),
        (
            "--http-listen",
            "DEVTRACE_HTTP_LISTEN",
            "http-listen",
            "OTLP/HTTP",
        ),
        (
            "--api-listen",
            "DEVTRACE_API_LISTEN",
            "api-listen",
            "the API",
        ),
    ] {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--data"])
            .arg(dir.path().join("data"));
        for other in ["--grpc-listen", "--http-listen", "--api-listen"] {
            let addr = if other == flag {
                format!("127.0.0.1:{port}")
            } else {
                "127.0.0.1:0".to_owned()
            };
            command.args([other, &addr]);
        }
        let output = command.env("NO_COLOR", "1").output().unwrap();
        assert_eq!(
            (output.status.code(), stderr(&output)),
            (
                Some(1),
                format!(
                    "error: cannot listen for {what} on 127.0.0.1:{port}: port {port} is already in use (by another devtrace serve, or another program); stop that program, or choose another address with {flag} ADDR ({env}, or {key} in the config file)\n"
                )
            )
        );
    }
    drop(taken);
}

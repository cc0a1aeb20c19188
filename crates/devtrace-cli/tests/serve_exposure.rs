//! `devtrace serve` beyond loopback: never without authentication unless told so in as many
//! words, so the Host check is never the only guard off loopback.

mod common;

use common::{BIN, start_server_on};

const EXPOSED: [&str; 3] = ["127.0.0.1:0", "0.0.0.0:0", "127.0.0.1:0"];
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

/// `serve` with the OTLP/HTTP port on every interface, the others on loopback.
fn serve_exposed(data: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["serve", "--data"])
        .arg(data)
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "0.0.0.0:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("NO_COLOR", "1")
        .env_remove("DEVTRACE_INSECURE_NO_AUTH")
        .env_remove("DEVTRACE_AUTH")
        .output()
        .unwrap()
}

/// A raw GET: the status code.
fn get_status(addr: SocketAddr, path: &str, headers: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response[9..12].parse().unwrap()
}

#[test]
fn beyond_loopback_without_a_token_serve_refuses_to_start_and_says_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = serve_exposed(&data, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The store path and the port are the run's own; the rest is the snapshot.
    let store = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("devtrace token create --store "))
        .and_then(|rest| rest.split(" --project").next())
        .expect(&stderr)
        .to_owned();
    let port = stderr
        .split("0.0.0.0:")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect(&stderr)
        .to_owned();
    let snapshot = stderr
        .lines()
        .filter(|l| !l.contains(" WARN ") && !l.contains(" INFO "))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(&store, "STORE")
        .replace(&format!("0.0.0.0:{port}"), "0.0.0.0:PORT");
    assert_eq!(
        snapshot,
        "\
error: refusing to listen beyond loopback (0.0.0.0:PORT) without authentication: the store has no API token, so tokens cannot be required yet.
Create the first admin token, then start serve again:
  devtrace token create --store STORE --project default --scope admin --name admin
or, only on a network you trust completely, add --insecure-no-auth (anyone who can reach these ports can then read and write every project); or listen on 127.0.0.1."
    );
    assert!(
        !data.join("serve.json").exists(),
        "nothing was announced or served"
    );

    // The command it names works, and then serve starts, requiring the token even from a
    // client that claims `Host: localhost`.
    let made = Command::new(BIN)
        .args(["token", "create", "--store", &store])
        .args([
            "--project",
            "default",
            "--scope",
            "admin",
            "--name",
            "admin",
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = start_server_on(&data, EXPOSED, &[], &[]);
    let port = server.http.port();
    let status = get_status(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "/v1/traces",
        &format!("Host: localhost:{port}\r\n"),
    );
    assert_eq!(status, 405, "a GET reaches routing only after the guard");
    let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    server.stop();
}

#[test]
fn insecure_no_auth_is_the_explicit_way_to_serve_exposed_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_server_on(&data, EXPOSED, &["--insecure-no-auth"], &[]);
    server.stop();
}

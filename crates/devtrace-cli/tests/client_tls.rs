//! devtrace's own client over TLS against a real `devtrace serve --tls-cert`: `watch
//! --server https://…` shows a trace sent while it watches (the trace itself exported over
//! https by devtrace-client), and the store commands read the same data over https as from
//! the store. The certificate is self-signed and trusted with --ca-cert, as a team with a
//! private CA would.

mod common;

use common::BIN;
use devtrace_client::{Client, ClientOptions};
use devtrace_ingest::otlp::trace::v1::Span;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A TLS `devtrace serve` on a fresh store, with a certificate for `localhost`; its PEM file.
fn tls_server(dir: &Path) -> (common::Server, PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = common::start_server_with(
        &dir.join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    (server, cert)
}

/// One span of service `tls-shop`, starting now.
fn one_span(trace_id: [u8; 16], name: &str) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let span = Span {
        trace_id: trace_id.to_vec(),
        span_id: vec![7; 8],
        name: name.into(),
        kind: 2,
        start_time_unix_nano: now,
        end_time_unix_nano: now + 50_000_000,
        ..Default::default()
    };
    let request = common::export_request("tls-shop", vec![span]);
    prost::Message::encode_to_vec(&request)
}

fn devtrace(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .env_remove("DEVTRACE_SERVER")
        .env_remove("DEVTRACE_TOKEN")
        .env_remove("DEVTRACE_CA_CERT")
        .env_remove("DEVTRACE_STORE")
        .stdin(Stdio::null());
    command
}

#[test]
fn watch_over_https_shows_a_trace_sent_while_it_watches() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(dir.path());
    let url = format!("https://localhost:{}", server.api.port());
    let watch = devtrace(&[
        "watch",
        "--plain",
        "--exit-after",
        "8s",
        "--server",
        &url,
        "--ca-cert",
        cert.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // The span goes over https too, through the OTLP export of devtrace-client.
    let exporter = Client::parse(
        &format!("https://localhost:{}", server.http.port()),
        ClientOptions {
            ca_cert: Some(cert.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let trace = [0x5e; 16];
    exporter
        .export_traces(&one_span(trace, "checkout over tls"))
        .unwrap();
    let out = watch.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().next(),
        Some(format!("watching server {url}").as_str()),
        "{stdout}"
    );
    assert!(
        stdout.contains(" trace 5e5e5e5e \"checkout over tls\" service \"tls-shop\""),
        "{stdout}"
    );
}

#[test]
fn store_commands_read_the_same_over_https_as_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cert) = tls_server(dir.path());
    let exporter = Client::parse(
        &format!("https://localhost:{}", server.http.port()),
        ClientOptions {
            ca_cert: Some(cert.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    exporter
        .export_traces(&one_span([0xa1; 16], "read back"))
        .unwrap();
    let url = format!("https://localhost:{}", server.api.port());
    let data = dir.path().join("data");
    for args in [vec!["ls", "--json"], vec!["show", "a1a1a1a1"]] {
        let local = devtrace(&[&["--data", data.to_str().unwrap()], &args[..]].concat())
            .output()
            .unwrap();
        let remote = devtrace(
            &[
                &["--server", &url, "--ca-cert", cert.to_str().unwrap()],
                &args[..],
            ]
            .concat(),
        )
        .output()
        .unwrap();
        assert!(
            remote.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&remote.stderr)
        );
        // Only a reader on the server's machine is offered the web UI's link.
        let local = String::from_utf8_lossy(&local.stdout);
        let local = local.split("\nopen in the web UI:\n").next().unwrap();
        assert_eq!(
            local.trim_end_matches('\n'),
            String::from_utf8_lossy(&remote.stdout).trim_end_matches('\n'),
            "{args:?}"
        );
        assert!(String::from_utf8_lossy(&remote.stdout).contains("read back"));
    }
}

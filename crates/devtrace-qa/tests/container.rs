//! QA jobs in a real Podman container: the test image is built here from the host's own files
//! (`/bin/sh`, `node` and the libraries they load, imported with `podman import`: no registry
//! is reachable from the test machines), the job runs `node --test` in it at the base commit
//! and with the patch, and the container blocks the network and writes outside the checkout.
//!
//! Podman comes from Debian (`apt-get install podman runc`; scripts/test and .ci/run install
//! it). Without it these tests say so and pass, except under `CI=true`, where a missing engine
//! fails them (as the PostgreSQL tests do).

mod common;

use common::*;
use devtrace_qa::result::{ApplyMethod, Verdict};
use devtrace_qa::runner::on_path;
use devtrace_qa::{QaOptions, RunnerKind};
use devtrace_store::qa::QaJobState;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The test image's name, once built; `None` when Podman is not installed (outside CI).
fn image() -> Option<&'static str> {
    static IMAGE: OnceLock<Option<String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if on_path("podman").is_none() {
                assert!(
                    std::env::var("CI").map_or(true, |v| v.is_empty() || v == "false"),
                    "CI is set but podman is not installed: apt-get install podman runc"
                );
                eprintln!("podman is not installed: the container runner tests did not run");
                return None;
            }
            Some(build_image())
        })
        .as_deref()
}

/// `localhost/devtrace-qa-test:node-vXX` from the host's `/bin/sh` and `node` and the shared
/// libraries `ldd` names for them; built once per node version.
fn build_image() -> String {
    let node = on_path("node").expect("node is installed (the QA tests' test command)");
    let version = output(Command::new(&node).arg("--version"));
    let name = format!("localhost/devtrace-qa-test:node-{}", version.trim());
    let exists = Command::new("podman")
        .args(["image", "exists", &name])
        .status()
        .expect("podman runs");
    if exists.success() {
        return name;
    }
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let shell = std::fs::canonicalize("/bin/sh").unwrap();
    let node = std::fs::canonicalize(node).unwrap();
    copy_into(root.path(), &shell, Path::new("/bin/sh"));
    copy_into(root.path(), &node, Path::new("/usr/bin/node"));
    // "FILE:" headers (ldd of two files), then "name => /path (address)" or "/path (address)".
    let libraries = output(Command::new("ldd").arg(&shell).arg(&node));
    for library in libraries
        .split_whitespace()
        .filter(|word| word.starts_with('/') && !word.ends_with(':'))
    {
        let library = Path::new(library);
        copy_into(
            root.path(),
            &std::fs::canonicalize(library).unwrap(),
            library,
        );
    }
    for dir in ["tmp", "work", "etc", "proc", "dev", "sys"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar runs");
    let imported = Command::new("podman")
        .args(["import", "-", &name])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .expect("podman runs");
    assert!(tar.wait().unwrap().success());
    assert!(
        imported.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    name
}

fn output(command: &mut Command) -> String {
    let out = command.output().expect("runs");
    assert!(out.status.success(), "{command:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Copies `file` to `root` + `at`.
fn copy_into(root: &Path, file: &Path, at: &Path) {
    let target = root.join(at.strip_prefix("/").unwrap());
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(file, &target).unwrap();
}

fn podman(timeout_secs: u64) -> QaOptions {
    QaOptions {
        runner: RunnerKind::Podman,
        ..sandbox(timeout_secs)
    }
}

#[test]
fn a_patch_that_fixes_the_failing_test_is_resolved_in_a_podman_container() {
    let Some(image) = image() else { return };
    let h = Harness::new();
    let (repo, head) = cart_repo(&h.path("shop"));
    let patch = repo.diff_for(&[("cart.js", CART_FIXED)]);
    let mut doc = with_patch(
        document(
            "d1111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &head,
            "node --test",
        ),
        &patch,
    );
    doc["task"]["test_image"] = json!(image);
    let session = h.import(doc);
    let (job, result) = h.run(session, &podman(120));
    assert_eq!(job.state, QaJobState::Done, "{:?}", job.error);
    let patched = result.patched.as_ref().unwrap();
    assert_eq!(
        result.verdict,
        Verdict::Resolved,
        "{}\n{}\n{}",
        result.summary,
        patched.stdout.text,
        patched.stderr.text
    );
    let comparison = result.comparison.as_ref().unwrap();
    assert_eq!(comparison.fixed, ["total sums prices"]);
    assert!(comparison.broken.is_empty() && comparison.still_failing.is_empty());
    assert_eq!(comparison.still_passing, 1);
    assert_eq!(
        result.patch.as_ref().unwrap().method,
        Some(ApplyMethod::GitApply)
    );
    let base = result.base.as_ref().unwrap();
    assert_eq!(base.exit_code, Some(1));
    assert_eq!(base.tests.as_ref().unwrap().failing, ["total sums prices"]);
    let tests = result.tests.as_ref().unwrap();
    assert_eq!(
        (
            tests.runner.as_str(),
            tests.image.as_deref(),
            tests.ok,
            tests.exit_code
        ),
        ("podman", Some(image), true, Some(0))
    );
    assert!(
        tests.stdout.contains("ok 1 - total sums prices"),
        "{}",
        tests.stdout
    );
    assert_eq!(result.runner.name, "podman");
    assert_eq!(result.runner.image.as_deref(), Some(image));
    assert!(
        result.runner.isolation[0].starts_with(&format!("podman image {image}")),
        "{:?}",
        result.runner.isolation
    );
    for limit in ["no network", "memory 4096 MiB", "at most 512 processes"] {
        assert!(
            result.runner.isolation.contains(&limit.to_owned()),
            "{limit}: {:?}",
            result.runner.isolation
        );
    }
}

#[test]
fn the_container_blocks_the_network_and_writes_outside_the_checkout() {
    let Some(image) = image() else { return };
    let h = Harness::new();
    let attempt = EscapeAttempt::new(&h, "d2111111-2222-4333-8444-555555555555", Some(image));
    let (job, result) = h.run(attempt.session, &podman(120));
    let output = attempt.assert_blocked(&h, &job, &result);
    // No network but the container's own loopback; the image's root is read-only, and the
    // host's directories are not in it at all.
    assert!(output.contains("ENETUNREACH"), "{output}");
    assert!(output.contains("ECONNREFUSED"), "{output}");
    assert!(output.contains("EROFS"), "{output}");
}

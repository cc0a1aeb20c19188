//! The sandbox's limits, through the runner itself: memory per process, the number of processes,
//! and the time limit killing the whole tree.

mod common;

use devtrace_qa::QaOptions;
use devtrace_qa::RunnerKind;
use devtrace_qa::runner::{RunSpec, execute, runner};
use std::sync::atomic::AtomicBool;

fn run(command: &str, options: QaOptions) -> devtrace_qa::runner::RunOutcome {
    common::require_bwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let spec = RunSpec::new(command, dir.path(), &options);
    execute(
        runner(RunnerKind::Sandbox).as_ref(),
        &spec,
        &AtomicBool::new(false),
    )
}

fn text(outcome: &devtrace_qa::runner::RunOutcome) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&outcome.stdout.data),
        String::from_utf8_lossy(&outcome.stderr.data)
    )
}

#[test]
fn a_process_cannot_use_more_memory_than_allowed() {
    let options = QaOptions {
        memory_mib: 256,
        ..QaOptions::default()
    };
    let small = run(
        "node -e \"console.log(Buffer.alloc(32 * 1024 * 1024, 1).length)\"",
        options.clone(),
    );
    assert_eq!(small.exit_code, Some(0), "{}", text(&small));
    let large = run(
        "node -e \"console.log(Buffer.alloc(600 * 1024 * 1024, 1).length)\"",
        options,
    );
    assert_ne!(large.exit_code, Some(0));
    assert!(
        text(&large).contains("allocation failed"),
        "{}",
        text(&large)
    );
}

#[test]
fn a_fork_bomb_stops_at_the_process_limit() {
    let options = QaOptions {
        max_processes: 16,
        timeout_secs: 30,
        ..QaOptions::default()
    };
    let outcome = run(
        "n=0; while [ $n -lt 60 ]; do sleep 3 & n=$((n+1)); done; wait; echo started all",
        options,
    );
    let said = text(&outcome);
    assert!(
        said.contains("Cannot fork") || said.contains("Resource temporarily unavailable"),
        "{said}"
    );
}

//! The local runner: the test command on this machine as it is, in the checkout, with the
//! same time limit (its process group is killed), memory and process limits (rlimits) and
//! fixed environment as the sandbox, but with the network and the whole file system open to
//! it. Used only when asked for (`--runner local`).

use super::{Limits, RunSpec, Runner, Unavailable, environment};
use crate::options::RunnerKind;
use std::process::Command;

pub struct Local;

impl Runner for Local {
    fn kind(&self) -> RunnerKind {
        RunnerKind::Local
    }

    fn check(&self) -> Result<(), Unavailable> {
        Ok(())
    }

    fn command(&self, spec: &RunSpec) -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(&spec.command)
            .current_dir(&spec.checkout)
            .env_clear()
            .envs(environment());
        command
    }

    fn limits(&self, spec: &RunSpec) -> Limits {
        Limits {
            data_bytes: Some(spec.memory_bytes),
            processes: None,
            cgroup: super::sandbox::PidsCgroup::create(spec.max_processes),
        }
    }

    fn isolation(&self, spec: &RunSpec) -> Vec<String> {
        vec![
            "none: runs on this machine with its network and files".to_owned(),
            format!(
                "time limit {} s (its process group is killed)",
                spec.timeout.as_secs()
            ),
            format!(
                "memory {} MiB per process (RLIMIT_DATA)",
                spec.memory_bytes / (1024 * 1024)
            ),
        ]
    }
}

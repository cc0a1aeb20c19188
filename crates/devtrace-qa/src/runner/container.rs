//! The container runners: Docker or Podman with the task's `test_image`.
//!
//! `docker run --rm` (or `podman run --rm`) with no network, a read-only root file system
//! except the checkout (mounted at `/work`) and a private `/tmp`, memory and process limits
//! enforced by the engine's cgroups, every capability dropped, no new privileges, the host's
//! user id so the checkout's files stay the user's. The time limit kills the process group of
//! the client and the container by name (`docker kill`).
//!
//! An engine is present when `docker info` / `podman info` answers; the client alone (a
//! `docker` command with no daemon) is not enough.

use super::{Limits, RunSpec, Runner, Unavailable, on_path};
use crate::options::RunnerKind;
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    pub fn program(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }
}

pub struct Container {
    engine: Engine,
}

/// Where the checkout is mounted in the container.
pub const WORKDIR: &str = "/work";

impl Container {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// The engine's arguments for `spec` (after the program name).
    pub fn arguments(&self, spec: &RunSpec) -> Vec<String> {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let mut args: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--name".into(),
            spec.name.clone(),
            "--network".into(),
            "none".into(),
            "--read-only".into(),
            "--tmpfs".into(),
            "/tmp:rw,exec,size=1g".into(),
            "--memory".into(),
            format!("{}m", spec.memory_bytes / (1024 * 1024)),
            "--pids-limit".into(),
            spec.max_processes.to_string(),
            "--cap-drop".into(),
            "ALL".into(),
            "--security-opt".into(),
            "no-new-privileges".into(),
            "--user".into(),
            format!("{uid}:{gid}"),
            "--env".into(),
            "HOME=/tmp".into(),
            "--env".into(),
            "CI=true".into(),
            "--volume".into(),
            format!("{}:{WORKDIR}", spec.checkout.display()),
            "--workdir".into(),
            WORKDIR.into(),
        ];
        if self.engine == Engine::Podman {
            args.extend(["--userns".into(), "keep-id".into()]);
        }
        args.extend([
            spec.image.clone().unwrap_or_default(),
            "/bin/sh".into(),
            "-c".into(),
            spec.command.clone(),
        ]);
        args
    }
}

impl Runner for Container {
    fn kind(&self) -> RunnerKind {
        match self.engine {
            Engine::Docker => RunnerKind::Docker,
            Engine::Podman => RunnerKind::Podman,
        }
    }

    fn check(&self) -> Result<(), Unavailable> {
        let program = self.engine.program();
        if on_path(program).is_none() {
            return Err(Unavailable(format!(
                "the {program} runner needs `{program}`, which is not installed; \
                 use --runner sandbox (bubblewrap) instead"
            )));
        }
        let info = Command::new(program)
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdin(Stdio::null())
            .output();
        match info {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => {
                let said = String::from_utf8_lossy(&output.stderr);
                let said = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(Unavailable(format!(
                    "no {program} engine is running (`{program} info` failed: {}); start it, \
                     or use --runner sandbox (bubblewrap)",
                    said.trim()
                )))
            }
            Err(e) => Err(Unavailable(format!("cannot run {program}: {e}"))),
        }
    }

    fn command(&self, spec: &RunSpec) -> Command {
        let mut command = Command::new(self.engine.program());
        command.args(self.arguments(spec));
        command
    }

    fn limits(&self, _spec: &RunSpec) -> Limits {
        // The engine enforces them in the container (cgroups), not on its client.
        Limits::default()
    }

    fn isolation(&self, spec: &RunSpec) -> Vec<String> {
        vec![
            format!(
                "{} image {}",
                self.engine.program(),
                spec.image.as_deref().unwrap_or("")
            ),
            "no network".to_owned(),
            "writable: the checkout (/work) and a private /tmp only".to_owned(),
            format!(
                "time limit {} s (the container is killed)",
                spec.timeout.as_secs()
            ),
            format!("memory {} MiB", spec.memory_bytes / (1024 * 1024)),
            format!("at most {} processes", spec.max_processes),
        ]
    }

    fn stop(&self, spec: &RunSpec) {
        let _ = Command::new(self.engine.program())
            .args(["kill", &spec.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::QaOptions;
    use std::path::Path;

    #[test]
    fn the_command_line_isolates_the_container() {
        let mut spec = RunSpec::new(
            "go test ./...",
            Path::new("/data/qa/work/job-7-1/base"),
            &QaOptions::default(),
        );
        spec.image = Some("golang:1.24".into());
        spec.name = "devtrace-qa-7-1-base".into();
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let expected = format!(
            "run --rm --name devtrace-qa-7-1-base --network none --read-only --tmpfs /tmp:rw,exec,size=1g \
             --memory 4096m --pids-limit 512 --cap-drop ALL --security-opt no-new-privileges --user {uid}:{gid} \
             --env HOME=/tmp --env CI=true --volume /data/qa/work/job-7-1/base:/work --workdir /work \
             golang:1.24 /bin/sh -c go test ./..."
        );
        assert_eq!(
            Container::new(Engine::Docker).arguments(&spec).join(" "),
            expected
        );
        let podman = Container::new(Engine::Podman).arguments(&spec).join(" ");
        assert!(
            podman.contains("--workdir /work --userns keep-id golang:1.24"),
            "{podman}"
        );
    }
}

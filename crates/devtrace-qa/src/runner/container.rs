//! The container runners: Docker or Podman with the task's `test_image`.
//!
//! `docker run --rm` (or `podman run --rm`) with no network, a read-only root file system
//! except the checkout (mounted at `/work`) and a private `/tmp`, memory and process limits
//! enforced by the engine's cgroups, an open-files limit, every capability dropped, no new
//! privileges, the host's user id so the checkout's files stay the user's. The time limit
//! kills the process group of the client and the container by name (`docker kill`).
//!
//! An engine is present when `docker info` / `podman info` answers; the client alone (a
//! `docker` command with no daemon) is not enough. For Podman, [`Container::check`] also
//! reads what the engine is ([`EngineSetup`]): rootless or not (`--userns keep-id` only when
//! rootless: rootful Podman rejects it), and whether its OCI runtime can start containers on
//! this host (crun cannot where cgroups are hybrid; runc then, when installed).

use super::{Limits, RunSpec, Runner, Unavailable, on_path};
use crate::options::RunnerKind;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an engine's answer to `info` is reused by later jobs.
const CHECK_REUSED_FOR: Duration = Duration::from_secs(60);

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
    /// What [`Runner::check`] found out about the engine; until then, what can be assumed.
    setup: OnceLock<EngineSetup>,
}

/// How to run containers with the engine found here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSetup {
    /// `--runtime NAME` (Podman): the engine's default OCI runtime cannot start containers
    /// on this host and this one can. `None`: the engine's default (containers.conf's
    /// `runtime`, which a user sets to choose one).
    pub runtime: Option<String>,
    /// Rootless Podman: the user's id is mapped into the container (`--userns keep-id`).
    /// Rootful Podman refuses that option, and needs none: the user there is root.
    pub rootless: bool,
    /// Open files per process in the container (`--ulimit nofile=N:N`).
    pub open_files: u64,
}

/// The open-files limit asked for, unless the client's own hard limit is lower: an engine
/// without `CAP_SYS_RESOURCE` (a container host, a rootless engine) cannot set a limit above
/// its own, and Podman's default (1048576) fails there with "error setting rlimit".
const OPEN_FILES: u64 = 4096;

impl EngineSetup {
    /// What can be known without asking the engine.
    fn assumed(engine: Engine) -> Self {
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        Self {
            runtime: None,
            rootless: engine == Engine::Podman && euid != 0,
            open_files: open_files_limit(),
        }
    }
}

/// [`OPEN_FILES`], or this process's hard limit on open files when that is lower.
fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return OPEN_FILES;
    }
    OPEN_FILES.min(limit.rlim_max)
}

/// Whether this host mounts cgroup v1 hierarchies and a cgroup2 one together (the "hybrid"
/// layout of systemd before v2 became the default, and of many container hosts), read from
/// `mountinfo`: crun refuses to run there ("cgroups in hybrid mode not supported").
pub fn hybrid_cgroups(mountinfo: &str) -> bool {
    let types = mountinfo
        .lines()
        .filter_map(|line| line.split_once(" - ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next());
    let (mut v1, mut v2) = (false, false);
    for fs_type in types {
        v1 |= fs_type == "cgroup";
        v2 |= fs_type == "cgroup2";
    }
    v1 && v2
}

/// The runtime to ask Podman for when its default, `default`, cannot start containers on a
/// host whose cgroups are `hybrid`: runc when it is installed; otherwise what to do.
pub fn podman_runtime(
    default: &str,
    hybrid: bool,
    runc_installed: bool,
) -> Result<Option<String>, Unavailable> {
    if default != "crun" || !hybrid {
        return Ok(None);
    }
    if runc_installed {
        return Ok(Some("runc".to_owned()));
    }
    Err(Unavailable(
        "podman's OCI runtime is crun, which cannot run containers on this host: its cgroups \
         are hybrid (cgroup v1 and cgroup2 mounted together); install runc (apt-get install \
         runc), which devtrace then uses, or set 'runtime' in containers.conf to another runtime"
            .to_owned(),
    ))
}

/// Where the checkout is mounted in the container.
pub const WORKDIR: &str = "/work";

impl Container {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            setup: OnceLock::new(),
        }
    }

    /// A runner with a known set-up (tests of the command line).
    pub fn with_setup(engine: Engine, setup: EngineSetup) -> Self {
        let runner = Self::new(engine);
        let _ = runner.setup.set(setup);
        runner
    }

    fn setup(&self) -> EngineSetup {
        self.setup
            .get()
            .cloned()
            .unwrap_or_else(|| EngineSetup::assumed(self.engine))
    }

    /// Podman's answer to `podman info`: its OCI runtime and whether it is rootless.
    fn podman_info(&self) -> Result<EngineSetup, Unavailable> {
        let said = self.info("{{.Host.OCIRuntime.Name}} {{.Host.Security.Rootless}}")?;
        let mut words = said.split_whitespace();
        let (Some(default), Some(rootless)) = (words.next(), words.next()) else {
            return Err(Unavailable(format!(
                "'podman info' answered {said:?}, not its runtime and whether it is rootless"
            )));
        };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let runtime = podman_runtime(
            default,
            hybrid_cgroups(&mountinfo),
            on_path("runc").is_some(),
        )?;
        Ok(EngineSetup {
            runtime,
            rootless: rootless == "true",
            open_files: open_files_limit(),
        })
    }

    /// `ENGINE info --format FORMAT`, trimmed; its error names the engine and what to do.
    fn info(&self, format: &str) -> Result<String, Unavailable> {
        let program = self.engine.program();
        let info = Command::new(program)
            .args(["info", "--format", format])
            .stdin(Stdio::null())
            .output();
        match info {
            Ok(output) if output.status.success() => {
                Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
            }
            Ok(output) => {
                let said = String::from_utf8_lossy(&output.stderr);
                let said = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(Unavailable(format!(
                    "no {program} engine is running ('{program} info' failed: {}); start it, \
                     or use --runner sandbox (bubblewrap)",
                    said.trim()
                )))
            }
            Err(e) => Err(Unavailable(format!("cannot run {program}: {e}"))),
        }
    }

    /// The engine's arguments for `spec` (after the program name).
    pub fn arguments(&self, spec: &RunSpec) -> Vec<String> {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let setup = self.setup();
        let mut args: Vec<String> = Vec::new();
        if let Some(runtime) = &setup.runtime {
            // A global option of podman's, before the command.
            args.extend(["--runtime".into(), runtime.clone()]);
        }
        args.extend([
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
            "--ulimit".into(),
            format!("nofile={0}:{0}", setup.open_files),
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
        ]);
        if self.engine == Engine::Podman {
            if setup.rootless {
                args.extend(["--userns".into(), "keep-id".into()]);
            } else {
                // Rootful Podman's default RLIMIT_NPROC (1048576) is more than an engine
                // without CAP_SYS_RESOURCE may set; root in the container is exempt from it
                // anyway, and --pids-limit is the limit that holds.
                args.extend([
                    "--ulimit".into(),
                    format!("nproc={0}:{0}", spec.max_processes),
                ]);
            }
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
                "the {program} runner needs '{program}', which is not installed; \
                 use --runner sandbox (bubblewrap) instead"
            )));
        }
        // `podman info` takes over a second on a loaded machine: an answer is reused by the
        // jobs of the next minute (a failure is asked again at once).
        static FOUND: Mutex<Option<(Engine, Instant, EngineSetup)>> = Mutex::new(None);
        let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
        let setup = match &*found {
            Some((engine, at, setup))
                if *engine == self.engine && at.elapsed() < CHECK_REUSED_FOR =>
            {
                setup.clone()
            }
            _ => {
                let setup = match self.engine {
                    Engine::Docker => {
                        self.info("{{.ServerVersion}}")?;
                        EngineSetup::assumed(self.engine)
                    }
                    Engine::Podman => self.podman_info()?,
                };
                *found = Some((self.engine, Instant::now(), setup.clone()));
                setup
            }
        };
        let _ = self.setup.set(setup);
        Ok(())
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
        let runtime = self
            .setup()
            .runtime
            .map(|r| format!(" (OCI runtime {r})"))
            .unwrap_or_default();
        vec![
            format!(
                "{} image {}{runtime}",
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
            format!("at most {} open files per process", self.setup().open_files),
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

    fn spec() -> RunSpec {
        let mut spec = RunSpec::new(
            "go test ./...",
            Path::new("/data/qa/work/job-7-1/base"),
            &QaOptions::default(),
        );
        spec.image = Some("golang:1.24".into());
        spec.name = "devtrace-qa-7-1-base".into();
        spec
    }

    fn setup(runtime: Option<&str>, rootless: bool) -> EngineSetup {
        EngineSetup {
            runtime: runtime.map(str::to_owned),
            rootless,
            open_files: 4096,
        }
    }

    #[test]
    fn the_command_line_isolates_the_container() {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let common = format!(
            "run --rm --name devtrace-qa-7-1-base --network none --read-only --tmpfs /tmp:rw,exec,size=1g \
             --memory 4096m --pids-limit 512 --ulimit nofile=4096:4096 --cap-drop ALL --security-opt no-new-privileges \
             --user {uid}:{gid} --env HOME=/tmp --env CI=true --volume /data/qa/work/job-7-1/base:/work --workdir /work"
        );
        let docker = Container::with_setup(Engine::Docker, setup(None, false));
        assert_eq!(
            docker.arguments(&spec()).join(" "),
            format!("{common} golang:1.24 /bin/sh -c go test ./...")
        );
        // Rootless podman maps the user in; rootful podman refuses keep-id and gets a process
        // limit it may set instead of its default.
        let rootless = Container::with_setup(Engine::Podman, setup(None, true));
        assert_eq!(
            rootless.arguments(&spec()).join(" "),
            format!("{common} --userns keep-id golang:1.24 /bin/sh -c go test ./...")
        );
        let rootful = Container::with_setup(Engine::Podman, setup(Some("runc"), false));
        assert_eq!(
            rootful.arguments(&spec()).join(" "),
            format!(
                "--runtime runc {common} --ulimit nproc=512:512 golang:1.24 /bin/sh -c go test ./..."
            )
        );
        assert_eq!(
            rootful.isolation(&spec())[0],
            "podman image golang:1.24 (OCI runtime runc)"
        );
        assert!(
            rootful
                .isolation(&spec())
                .contains(&"at most 4096 open files per process".to_owned())
        );
    }

    #[test]
    fn crun_is_replaced_by_runc_only_where_cgroups_are_hybrid() {
        let hybrid = "30 24 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      31 24 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let v2 = "30 24 0:26 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";
        let v1 = "30 24 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";
        assert!(hybrid_cgroups(hybrid));
        assert!(!hybrid_cgroups(v2) && !hybrid_cgroups(v1) && !hybrid_cgroups(""));
        assert_eq!(podman_runtime("crun", true, true), Ok(Some("runc".into())));
        assert_eq!(podman_runtime("crun", false, true), Ok(None));
        assert_eq!(podman_runtime("runc", true, true), Ok(None));
        let missing = podman_runtime("crun", true, false).unwrap_err().0;
        assert_eq!(
            missing,
            "podman's OCI runtime is crun, which cannot run containers on this host: its cgroups \
             are hybrid (cgroup v1 and cgroup2 mounted together); install runc (apt-get install \
             runc), which devtrace then uses, or set 'runtime' in containers.conf to another runtime"
        );
    }

    #[test]
    fn the_open_files_limit_is_never_above_the_clients_own() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct it is given.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(open_files_limit(), OPEN_FILES.min(limit.rlim_max));
    }
}

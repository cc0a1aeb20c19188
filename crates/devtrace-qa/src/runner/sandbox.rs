//! The default runner on Linux: bubblewrap (`bwrap`, Debian package `bubblewrap`).
//!
//! The test command runs in new namespaces (`--unshare-all`: user, pid, network, ipc, uts,
//! cgroup) with:
//! - **no network**: a network namespace with only its own loopback;
//! - **the checkout the only writable place**: the host's file system read-only
//!   (`--ro-bind / /`), the checkout bound writable, a private empty `/tmp` (gone with the
//!   run), the store's directory hidden behind an empty read-only one;
//! - **a time limit that kills the whole process tree**: bwrap runs in a process group of its
//!   own, is killed with it, and takes the sandbox's PID namespace down with it
//!   (`--die-with-parent`: its init gets SIGKILL, and with it every process inside);
//! - **memory and process limits**: RLIMIT_DATA per process; the process count through a
//!   `pids` cgroup when devtrace may create one (as root, on cgroup v1 or v2), otherwise
//!   RLIMIT_NPROC (for a regular user it counts the processes the user already runs too,
//!   so it is raised by that many);
//! - a fixed environment (no secrets from devtrace's own), `--new-session` so it cannot
//!   reach the terminal, and every capability dropped (bubblewrap's default).

use super::{Limits, RunSpec, Runner, Unavailable, environment, on_path};
use crate::options::RunnerKind;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Sandbox {
    bwrap: Option<PathBuf>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            bwrap: on_path("bwrap"),
        }
    }

    /// The bubblewrap arguments for `spec`, before the command itself.
    pub fn arguments(spec: &RunSpec) -> Vec<String> {
        let mut args: Vec<String> = [
            "--die-with-parent",
            "--new-session",
            "--unshare-all",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let path = |p: &Path| p.to_string_lossy().into_owned();
        for hidden in &spec.hide {
            // bwrap needs the mount point to exist in the sandbox's view; skip what is not
            // there (nothing to hide) and what would hide the checkout's own parents.
            if hidden.is_dir() {
                args.extend(["--tmpfs".to_owned(), path(hidden)]);
            }
        }
        for shown in &spec.reveal {
            if shown.is_dir() {
                args.extend(["--ro-bind".to_owned(), path(shown), path(shown)]);
            }
        }
        let checkout = path(&spec.checkout);
        args.extend(["--bind".to_owned(), checkout.clone(), checkout.clone()]);
        // The empty directories standing in for hidden ones are read-only too (the mounts
        // inside them keep their own modes).
        for hidden in &spec.hide {
            if hidden.is_dir() {
                args.extend(["--remount-ro".to_owned(), path(hidden)]);
            }
        }
        args.extend(["--chdir".to_owned(), checkout, "--clearenv".to_owned()]);
        for (key, value) in environment() {
            args.extend(["--setenv".to_owned(), key, value]);
        }
        args.extend([
            "--".to_owned(),
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            spec.command.clone(),
        ]);
        args
    }
}

impl Runner for Sandbox {
    fn kind(&self) -> RunnerKind {
        RunnerKind::Sandbox
    }

    fn check(&self) -> Result<(), Unavailable> {
        if self.bwrap.is_none() {
            return Err(Unavailable(
                "the sandbox runner needs bubblewrap ('bwrap'), which is not installed: \
                 install the Debian/Ubuntu package 'bubblewrap' (apt-get install bubblewrap; \
                 Fedora: dnf install bubblewrap), or choose another runner with --runner"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn command(&self, spec: &RunSpec) -> Command {
        let mut command = Command::new(self.bwrap.as_deref().unwrap_or(Path::new("bwrap")));
        command.args(Self::arguments(spec)).env_clear();
        command
    }

    fn limits(&self, spec: &RunSpec) -> Limits {
        let cgroup = PidsCgroup::create(spec.max_processes);
        let processes = if cgroup.is_some() {
            None
        } else {
            Some(spec.max_processes.saturating_add(processes_of_this_user()))
        };
        Limits {
            data_bytes: Some(spec.memory_bytes),
            processes,
            cgroup,
        }
    }

    fn isolation(&self, spec: &RunSpec) -> Vec<String> {
        let processes = if PidsCgroup::available() {
            format!("at most {} processes (pids cgroup)", spec.max_processes)
        } else {
            format!(
                "at most {} processes beyond the user's own (RLIMIT_NPROC)",
                spec.max_processes
            )
        };
        vec![
            "bubblewrap".to_owned(),
            "no network".to_owned(),
            "writable: the checkout and a private /tmp only".to_owned(),
            format!(
                "time limit {} s (the whole process tree is killed)",
                spec.timeout.as_secs()
            ),
            format!(
                "memory {} MiB per process (RLIMIT_DATA)",
                spec.memory_bytes / (1024 * 1024)
            ),
            processes,
        ]
    }
}

/// Processes the current user runs now (RLIMIT_NPROC counts them with the sandbox's).
fn processes_of_this_user() -> u64 {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if uid == 0 {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    use std::os::unix::fs::MetadataExt;
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .count() as u64
}

/// A `pids` cgroup limiting how many processes a run may have, removed when it ends.
#[derive(Debug)]
pub struct PidsCgroup {
    dir: PathBuf,
}

static CGROUPS: AtomicU64 = AtomicU64::new(0);

impl PidsCgroup {
    /// The hierarchy to create them in: cgroup v2 with the pids controller, or v1's `pids`.
    fn root() -> Option<PathBuf> {
        let v2 = Path::new("/sys/fs/cgroup");
        if std::fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
            && std::fs::read_to_string(v2.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
        {
            return Some(v2.to_owned());
        }
        let v1 = v2.join("pids");
        v1.join("cgroup.procs").is_file().then_some(v1)
    }

    fn available() -> bool {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        root && Self::root().is_some()
    }

    /// Removes the empty cgroups left by devtrace processes that are gone (a server killed while
    /// a job ran cannot remove its own). Returns how many.
    pub fn remove_stale() -> usize {
        if !Self::available() {
            return 0;
        }
        let Some(root) = Self::root() else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(&root) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("devtrace-qa-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let gone = pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists();
            // rmdir fails on a cgroup that still has processes: those are left alone.
            if gone && std::fs::remove_dir(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// A new cgroup allowing `max` processes, when this process may make one.
    pub fn create(max: u64) -> Option<Self> {
        if !Self::available() {
            return None;
        }
        let root = Self::root()?;
        let name = format!(
            "devtrace-qa-{}-{}",
            std::process::id(),
            CGROUPS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = root.join(name);
        std::fs::create_dir(&dir).ok()?;
        if std::fs::write(dir.join("pids.max"), max.to_string()).is_err() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Self { dir })
    }

    /// The `cgroup.procs` path, prepared for the child (no allocation after fork).
    pub fn procs_path_c(&self) -> CString {
        CString::new(self.dir.join("cgroup.procs").to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Removes the cgroup once its processes are gone.
    pub fn remove(&self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        tracing::warn!(cgroup = %self.dir.display(), "could not remove a QA run's cgroup");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::QaOptions;

    #[test]
    fn without_bubblewrap_the_error_names_the_package() {
        let error = Sandbox { bwrap: None }.check().unwrap_err();
        assert_eq!(
            error.0,
            "the sandbox runner needs bubblewrap ('bwrap'), which is not installed: install the \
             Debian/Ubuntu package 'bubblewrap' (apt-get install bubblewrap; Fedora: dnf install \
             bubblewrap), or choose another runner with --runner"
        );
        // The message is stored in the QA result and shown back as recorded data, which
        // escapes a backtick: it is worded with nothing to escape.
        assert!(devtrace_model::recorded::is_inert(&error.0), "{}", error.0);
    }

    #[test]
    fn the_arguments_isolate_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let checkout = data.join("qa/work/job-1-1/base");
        let repos = data.join("qa/repos");
        std::fs::create_dir_all(&checkout).unwrap();
        std::fs::create_dir_all(&repos).unwrap();
        let mut spec = RunSpec::new("npm test", &checkout, &QaOptions::default());
        spec.hide = vec![data.clone()];
        spec.reveal = vec![repos.clone()];
        let args = Sandbox::arguments(&spec);
        let text = args.join(" ");
        let (d, c, r) = (
            data.display().to_string(),
            checkout.display().to_string(),
            repos.display().to_string(),
        );
        let expected_start = format!(
            "--die-with-parent --new-session --unshare-all --ro-bind / / --dev /dev --proc /proc \
             --tmpfs /tmp --tmpfs {d} --ro-bind {r} {r} --bind {c} {c} --remount-ro {d} --chdir {c} --clearenv"
        );
        assert!(text.starts_with(&expected_start), "{text}");
        assert!(text.ends_with(" -- /bin/sh -c npm test"), "{text}");
        assert!(text.contains("--setenv CI true"));
        assert!(!text.contains("--share-net"));
    }
}

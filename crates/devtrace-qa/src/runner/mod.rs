//! Running the test command: the runners (a bubblewrap [`sandbox`], a [`container`] engine,
//! [`local`]) build the command line; [`execute`] runs it in a process group of its own with
//! resource limits, captures both streams (whole up to a limit, then head and tail), feeds
//! every line to the test-output parsers of `devtrace run`, and kills the whole process tree
//! when the time limit passes or the job is cancelled.

pub mod container;
pub mod local;
pub mod sandbox;

use crate::options::{QaOptions, RunnerKind};
use devtrace_ingest::test_output::{TestOutputParser, TestReport};
use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// What to run and within which limits.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// A shell command line (run with `/bin/sh -c`).
    pub command: String,
    /// The checkout: the working directory and the only writable place.
    pub checkout: PathBuf,
    pub timeout: Duration,
    /// Per process (its data segment), in bytes.
    pub memory_bytes: u64,
    pub max_processes: u64,
    /// Kept per stream.
    pub max_output_bytes: u64,
    /// Directories the command must not see (the store), replaced by empty ones.
    pub hide: Vec<PathBuf>,
    /// Directories it may read even inside a hidden one (the clone cache the checkout borrows
    /// its objects from).
    pub reveal: Vec<PathBuf>,
    /// The container image (container runners).
    pub image: Option<String>,
    /// A name for the run (container name).
    pub name: String,
}

impl RunSpec {
    pub fn new(command: &str, checkout: &Path, options: &QaOptions) -> Self {
        Self {
            command: command.to_owned(),
            checkout: checkout.to_owned(),
            timeout: Duration::from_secs(options.timeout_secs.max(1)),
            memory_bytes: options.memory_mib.saturating_mul(1024 * 1024),
            max_processes: options.max_processes.max(1),
            max_output_bytes: options.max_output_bytes.max(4096),
            hide: Vec::new(),
            reveal: Vec::new(),
            image: None,
            name: "devtrace-qa".to_owned(),
        }
    }
}

/// A runner cannot run here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// A way of running the test command.
pub trait Runner: Send + Sync {
    fn kind(&self) -> RunnerKind;
    /// Whether it can run here; the error says what is missing and how to get it.
    fn check(&self) -> Result<(), Unavailable>;
    /// The command to start.
    fn command(&self, spec: &RunSpec) -> Command;
    /// Limits applied to the started process itself (rlimits, a process-count cgroup).
    fn limits(&self, spec: &RunSpec) -> Limits;
    /// What it enforces, in words, for the result.
    fn isolation(&self, spec: &RunSpec) -> Vec<String>;
    /// Stops a run whose time is up, beyond killing its process group (a container).
    fn stop(&self, _spec: &RunSpec) {}
}

/// The runner of a kind.
pub fn runner(kind: RunnerKind) -> Box<dyn Runner> {
    match kind {
        RunnerKind::Sandbox => Box::new(sandbox::Sandbox::new()),
        RunnerKind::Docker => Box::new(container::Container::new(container::Engine::Docker)),
        RunnerKind::Podman => Box::new(container::Container::new(container::Engine::Podman)),
        RunnerKind::Local => Box::new(local::Local),
    }
}

/// Resource limits set on the runner's process before it starts; its children inherit them.
#[derive(Debug, Default)]
pub struct Limits {
    /// RLIMIT_DATA, bytes.
    pub data_bytes: Option<u64>,
    /// RLIMIT_NPROC.
    pub processes: Option<u64>,
    /// A cgroup (its `cgroup.procs` file) the process joins before it starts.
    pub cgroup: Option<sandbox::PidsCgroup>,
}

/// One captured stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    /// Bytes written in all.
    pub bytes: u64,
    /// All of it when at most the limit; else its first and last halves of the limit, joined
    /// by a line saying how much is missing.
    pub data: Vec<u8>,
    pub capped: bool,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub duration: Duration,
    pub stdout: Captured,
    pub stderr: Captured,
    pub tests: Option<TestReport>,
    /// The runner could not start the command at all.
    pub spawn_error: Option<String>,
}

/// Keeps all of a stream up to `limit`, then its head and a rolling tail.
struct Capture {
    limit: usize,
    all: Vec<u8>,
    tail: VecDeque<u8>,
    bytes: u64,
    capped: bool,
}

impl Capture {
    fn new(limit: u64) -> Self {
        Self {
            limit: limit.min(usize::MAX as u64) as usize,
            all: Vec::new(),
            tail: VecDeque::new(),
            bytes: 0,
            capped: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        if !self.capped {
            if self.all.len() + chunk.len() <= self.limit {
                self.all.extend_from_slice(chunk);
                return;
            }
            self.capped = true;
            let head = self.limit / 2;
            self.tail.extend(&self.all[head..]);
            self.all.truncate(head);
        }
        self.tail.extend(chunk);
        let keep = self.limit - self.limit / 2;
        if self.tail.len() > keep {
            let excess = self.tail.len() - keep;
            self.tail.drain(..excess);
        }
    }

    fn finish(self) -> Captured {
        let mut data = self.all;
        if self.capped {
            let kept = data.len() + self.tail.len();
            data.extend_from_slice(
                format!(
                    "\n… ({} bytes not kept: more than the {} bytes captured per stream) …\n",
                    self.bytes - kept as u64,
                    self.limit
                )
                .as_bytes(),
            );
            data.extend(self.tail);
        }
        Captured {
            bytes: self.bytes,
            data,
            capped: self.capped,
        }
    }
}

/// Splits a stream into lines for the parser, bounding a line's length.
struct Lines {
    partial: Vec<u8>,
}

const MAX_LINE: usize = 64 * 1024;

impl Lines {
    fn feed(&mut self, chunk: &[u8], parser: &Mutex<TestOutputParser>) {
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            if self.partial.len() < MAX_LINE {
                let room = MAX_LINE - self.partial.len();
                self.partial
                    .extend_from_slice(&piece[..piece.len().min(room)]);
            }
            if piece.ends_with(b"\n") {
                self.flush(parser);
            }
        }
    }

    fn flush(&mut self, parser: &Mutex<TestOutputParser>) {
        if self.partial.is_empty() {
            return;
        }
        let line = String::from_utf8_lossy(&self.partial);
        parser
            .lock()
            .expect("parser lock")
            .feed_line(line.trim_end_matches(['\n', '\r']));
        self.partial.clear();
    }
}

fn read_stream(
    mut stream: impl Read,
    limit: u64,
    parser: Arc<Mutex<TestOutputParser>>,
) -> Captured {
    let mut capture = Capture::new(limit);
    let mut lines = Lines {
        partial: Vec::new(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                capture.push(&buf[..n]);
                lines.feed(&buf[..n], &parser);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    lines.flush(&parser);
    capture.finish()
}

/// Sets the limits in the child between fork and exec: only async-signal-safe calls (no
/// allocation).
fn apply_limits(command: &mut Command, limits: &Limits) {
    let data = limits.data_bytes;
    let processes = limits.processes;
    let cgroup = limits.cgroup.as_ref().map(|c| c.procs_path_c());
    // SAFETY: the closure runs in the forked child before exec; it calls only setrlimit,
    // open, write and close, which are async-signal-safe, on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            let set = |resource, value: u64| -> std::io::Result<()> {
                let limit = libc::rlimit {
                    rlim_cur: value as libc::rlim_t,
                    rlim_max: value as libc::rlim_t,
                };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            set(libc::RLIMIT_CORE, 0)?;
            if let Some(bytes) = data {
                set(libc::RLIMIT_DATA, bytes)?;
            }
            if let Some(count) = processes {
                set(libc::RLIMIT_NPROC, count)?;
            }
            if let Some(path) = &cgroup {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let mut digits = [0u8; 20];
                let mut pid = libc::getpid() as u64;
                let mut at = digits.len();
                loop {
                    at -= 1;
                    digits[at] = b'0' + (pid % 10) as u8;
                    pid /= 10;
                    if pid == 0 {
                        break;
                    }
                }
                let written = libc::write(fd, digits[at..].as_ptr().cast(), digits.len() - at);
                libc::close(fd);
                if written < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Runs `spec` with `runner`: until it exits, its time is up (the process group is killed) or
/// `cancel` is set (likewise).
pub fn execute(runner: &dyn Runner, spec: &RunSpec, cancel: &AtomicBool) -> RunOutcome {
    let started = Instant::now();
    let mut command = runner.command(spec);
    let limits = runner.limits(spec);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    apply_limits(&mut command, &limits);
    let failed = |message: String| RunOutcome {
        exit_code: None,
        signal: None,
        timed_out: false,
        cancelled: false,
        duration: started.elapsed(),
        stdout: Captured::default(),
        stderr: Captured::default(),
        tests: None,
        spawn_error: Some(message),
    };
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let program = command.get_program().to_string_lossy().into_owned();
            if let Some(cgroup) = &limits.cgroup {
                cgroup.remove();
            }
            return failed(format!("cannot start {program}: {e}"));
        }
    };
    let pid = child.id() as i32;
    let parser = Arc::new(Mutex::new(TestOutputParser::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|stream| {
        let parser = Arc::clone(&parser);
        let limit = spec.max_output_bytes;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("qa-output".into())
            .spawn(move || {
                let captured = stream
                    .map(|s| read_stream(s, limit, parser))
                    .unwrap_or_default();
                let _ = tx.send(captured);
            })
            .expect("spawning an output reader");
        rx
    })
    .collect();
    let deadline = started + spec.timeout;
    let (mut timed_out, mut cancelled) = (false, false);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if Instant::now() >= deadline {
            timed_out = true;
        } else if cancel.load(Ordering::Relaxed) {
            cancelled = true;
        }
        if timed_out || cancelled {
            runner.stop(spec);
            // SAFETY: kill(2) on the child's process group, which it leads (process_group(0)).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Whatever is left of the group (a local run's background processes) goes too.
    // SAFETY: as above; the group is gone already when everything exited.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    // A process that left the group may hold a pipe open: do not wait for it for long.
    let grace = Duration::from_secs(2);
    let mut streams = readers
        .into_iter()
        .map(|rx| rx.recv_timeout(grace).unwrap_or_default());
    let stdout = streams.next().unwrap_or_default();
    let stderr = streams.next().unwrap_or_default();
    if let Some(cgroup) = &limits.cgroup {
        cgroup.remove();
    }
    let tests = Arc::try_unwrap(parser)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .and_then(TestOutputParser::finish);
    RunOutcome {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        cancelled,
        duration: started.elapsed(),
        stdout,
        stderr,
        tests,
        spawn_error: None,
    }
}

/// The environment a test command gets: a fixed list from devtrace's own, so secrets in the
/// environment stay out; caches pointed at the private `/tmp`.
pub fn environment() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "PYENV_ROOT",
        "PYENV_VERSION",
        "RUSTUP_HOME",
        "CARGO_HOME",
        "GOPATH",
        "GOROOT",
        "JAVA_HOME",
        "NODE_PATH",
        "VIRTUAL_ENV",
    ]
    .iter()
    .filter_map(|key| std::env::var(key).ok().map(|v| ((*key).to_owned(), v)))
    .collect();
    for (key, value) in [
        ("TERM", "dumb"),
        ("CI", "true"),
        ("TMPDIR", "/tmp"),
        ("XDG_CACHE_HOME", "/tmp/.cache"),
        ("npm_config_cache", "/tmp/.npm"),
        ("PIP_NO_INPUT", "1"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
    ] {
        env.push((key.to_owned(), value.to_owned()));
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()));
    }
    env
}

/// Whether `program` is on `PATH`.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_everything_up_to_the_limit_then_head_and_tail() {
        let mut small = Capture::new(10);
        small.push(b"hello ");
        small.push(b"you");
        let small = small.finish();
        assert_eq!(
            (small.data.as_slice(), small.bytes, small.capped),
            (&b"hello you"[..], 9, false)
        );

        let mut big = Capture::new(10);
        for chunk in [&b"0123456"[..], b"789abcdef", b"XYZ"] {
            big.push(chunk);
        }
        let big = big.finish();
        assert!(big.capped);
        assert_eq!(big.bytes, 19);
        let text = String::from_utf8(big.data).unwrap();
        assert!(text.starts_with("01234\n… (9 bytes not kept"), "{text}");
        assert!(text.ends_with("…\nefXYZ"), "{text}");
    }
}

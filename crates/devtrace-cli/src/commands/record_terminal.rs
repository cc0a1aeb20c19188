//! Capture mode's terminal: `devtrace record --capture -- SHELL` runs the shell on a
//! pseudo-terminal of its own and copies between it and the real one (as `script(1)` does),
//! in raw mode so keys reach the shell unchanged, with the window size kept in step. The bytes
//! the shell writes go through devtrace-record's [`Splitter`], which takes each command's
//! output between the hooks' markers; each is sent to the recorder as it completes.

use devtrace_record::capture::Splitter;
use devtrace_record::layout::SessionDir;
use devtrace_record::protocol::{self, Request};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// Bytes of each command's output kept from its start and from its end.
const KEEP: usize = 16 * 1024;

/// The real terminal's settings, restored when dropped (also on an early return).
struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    fn enter() -> Option<Self> {
        // SAFETY: tcgetattr/cfmakeraw/tcsetattr on stdin with initialised local values.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw);
            Some(Self { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}

fn window_size(fd: libc::c_int) -> Option<libc::winsize> {
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) == 0).then_some(size)
    }
}

/// Runs `command` on a new pseudo-terminal shown on ours; returns how it ended.
pub fn run(mut command: Command, session: &SessionDir) -> std::io::Result<ExitStatus> {
    let (mut master, slave) = open_terminal()?;
    command
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and TIOCSCTTY are async-signal-safe; the child becomes the leader of a
    // new session whose controlling terminal is the pseudo-terminal (job control works).
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(move || {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    // Our copies of the terminal's child end must close, or reading would never see the end.
    drop(command);
    let raw = RawMode::enter();
    // Keys: ours → the shell's terminal.
    let mut input = master.try_clone()?;
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = [0u8; 4096];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if input.write_all(&buffer[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // The window size, kept in step (checked four times a second: no signal plumbing).
    let resize_fd = master.as_raw_fd();
    std::thread::spawn(move || {
        let mut last = None;
        loop {
            if let Some(size) = window_size(libc::STDOUT_FILENO) {
                let key = (size.ws_row, size.ws_col);
                if last != Some(key) {
                    // SAFETY: TIOCSWINSZ with a winsize read just above.
                    unsafe {
                        libc::ioctl(resize_fd, libc::TIOCSWINSZ, &size);
                    }
                    last = Some(key);
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    // Output: the shell's terminal → ours, each command's output taken on the way.
    let mut splitter = Splitter::new(KEEP, KEEP);
    let mut stdout = std::io::stdout().lock();
    let mut buffer = vec![0u8; 16 * 1024];
    let mut show = Vec::with_capacity(buffer.len());
    loop {
        let n = match master.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO once the shell and everything it started have closed the terminal.
            Err(_) => break,
        };
        show.clear();
        let finished = splitter.feed(&buffer[..n], &mut show);
        let _ = stdout.write_all(&show).and_then(|_| stdout.flush());
        for output in finished {
            let request = Request::Output {
                pid: output.pid,
                seq: output.seq,
                output: output.text,
                bytes: output.bytes,
            };
            // A recorder that cannot take it loses this output, not the session.
            let _ = protocol::request(&session.client_socket(), &request, Duration::from_secs(5));
        }
    }
    drop(raw);
    child.wait()
}

/// A pseudo-terminal the size of ours: (master, slave).
fn open_terminal() -> std::io::Result<(std::fs::File, std::fs::File)> {
    let mut size = window_size(libc::STDOUT_FILENO);
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty with valid out-pointers; the descriptors are owned by Files below.
    unsafe {
        let size_pointer = size
            .as_mut()
            .map_or(std::ptr::null_mut(), |s| s as *mut libc::winsize);
        if libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            size_pointer,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
        Ok((
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        ))
    }
}

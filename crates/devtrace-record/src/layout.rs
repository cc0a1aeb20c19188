//! Where a recording's files are.
//!
//! ```text
//! DATA/record/
//!   active -> sessions/<id>      the open recording (recording, paused or orphaned); one at a time
//!   sessions/<id>/               mode 0700
//!     meta.json                  what was known at the start (meta.rs)
//!     journal.jsonl              every event, appended and synced as it arrives (journal.rs)
//!     capturing                  exists while recording and not paused: the shell hooks' check
//!     shell.jsonl                lines the shell hooks append (no process spawned per command)
//!     recorder.lock              held (flock) by the live recorder: free means orphaned
//!     recorder.log               the recorder's messages
//!     sock                       the recorder's socket (mode 0600; clients use active/sock)
//!     ask                        a counter the recorder bumps when a note is due (--ask-every)
//!     snapshots/<hash>           file contents edits are diffed against
//!     document.json              the finished trace-1.0.0 document, until it is stored
//! ```
//!
//! The shell hooks reach the active recording through the `active` link, so a shell started
//! before `record start` records as soon as it begins, and costs one `stat` per prompt when
//! nothing is recorded.

use std::io;
use std::path::{Path, PathBuf};

/// `DATA/record`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRoot {
    pub path: PathBuf,
}

impl RecordRoot {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("record"),
        }
    }

    /// The link the hooks and clients follow to the open recording.
    pub fn active_link(&self) -> PathBuf {
        self.path.join("active")
    }

    pub fn sessions(&self) -> PathBuf {
        self.path.join("sessions")
    }

    pub fn session(&self, id: &str) -> SessionDir {
        SessionDir {
            path: self.sessions().join(id),
        }
    }

    /// The open recording, if any: where `active` points.
    pub fn active(&self) -> Option<SessionDir> {
        let target = std::fs::read_link(self.active_link()).ok()?;
        let path = if target.is_absolute() {
            target
        } else {
            self.path.join(target)
        };
        path.is_dir().then_some(SessionDir { path })
    }

    /// Makes `session` the open recording (atomically: a link renamed into place).
    pub fn set_active(&self, session: &SessionDir) -> io::Result<()> {
        let id = session.id();
        let temporary = self.path.join(format!(".active.{}", std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        std::os::unix::fs::symlink(Path::new("sessions").join(&id), &temporary)?;
        std::fs::rename(&temporary, self.active_link())
    }

    /// No recording is open any more (a missing link is fine).
    pub fn clear_active(&self) -> io::Result<()> {
        match std::fs::remove_file(self.active_link()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Creates `DATA/record/sessions/<id>` readable by the owner only.
    pub fn create_session(&self, id: &str) -> io::Result<SessionDir> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.sessions())?;
        let session = self.session(id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&session.path)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(session.snapshots())?;
        Ok(session)
    }
}

/// One recording's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDir {
    pub path: PathBuf,
}

impl SessionDir {
    pub fn id(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
    pub fn meta(&self) -> PathBuf {
        self.path.join("meta.json")
    }
    pub fn journal(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }
    pub fn capturing(&self) -> PathBuf {
        self.path.join("capturing")
    }
    pub fn shell_spool(&self) -> PathBuf {
        self.path.join("shell.jsonl")
    }
    pub fn lock(&self) -> PathBuf {
        self.path.join("recorder.lock")
    }
    pub fn log(&self) -> PathBuf {
        self.path.join("recorder.log")
    }
    pub fn socket(&self) -> PathBuf {
        self.path.join("sock")
    }
    /// The socket as clients reach it, through the `active` link: shorter than the session's
    /// own path (Unix socket paths are limited to 107 bytes).
    pub fn client_socket(&self) -> PathBuf {
        match self.path.parent().and_then(Path::parent) {
            Some(record) => record.join("active").join("sock"),
            None => self.socket(),
        }
    }
    pub fn ask(&self) -> PathBuf {
        self.path.join("ask")
    }
    pub fn snapshots(&self) -> PathBuf {
        self.path.join("snapshots")
    }
    pub fn document(&self) -> PathBuf {
        self.path.join("document.json")
    }
    /// The working tree staged by the recorder, kept up to date with the watcher's paths while
    /// it records (never the repository's own index).
    pub fn tree_index_staging(&self) -> PathBuf {
        self.path.join("tree.index.staging")
    }
    /// The staged working tree as it was at `record stop`, complete: the final patch is its
    /// diff against the start commit. Absent when the recorder could not vouch for it.
    pub fn tree_index(&self) -> PathBuf {
        self.path.join("tree.index")
    }

    /// Whether a recorder holds this recording's lock (is alive). A lock that can be taken
    /// means the recorder is gone, however it ended; the probe releases it at once.
    pub fn recorder_alive(&self) -> bool {
        match RecorderLock::try_acquire(self) {
            Ok(Some(_probe)) => false,
            Ok(None) => true,
            // No lock file: no recorder was ever started, or the directory is gone.
            Err(_) => false,
        }
    }

    /// Whether the recorder is gone or goes within `wait`. A recorder killed while a client
    /// talks to it closes its socket (the client reads a reset) an instant before the kernel
    /// drops its lock, so one look right after a failed request can still see it alive.
    pub fn recorder_gone_within(&self, wait: std::time::Duration) -> bool {
        let began = std::time::Instant::now();
        loop {
            if !self.recorder_alive() {
                return true;
            }
            if began.elapsed() >= wait {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The lock a live recorder holds for as long as it runs; the kernel releases it when the
/// process ends, however it ends (a SIGKILL included), so it cannot go stale like a pid file.
#[derive(Debug)]
pub struct RecorderLock {
    _file: std::fs::File,
}

impl RecorderLock {
    /// Takes the lock, or `None` when a live recorder holds it.
    pub fn try_acquire(session: &SessionDir) -> io::Result<Option<Self>> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(session.lock())?;
        // SAFETY: flock on a descriptor we own.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if taken {
            Ok(Some(Self { _file: file }))
        } else {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(error)
            }
        }
    }
}

/// Writes `bytes` to `path` through a temporary file renamed into place, synced, so a reader
/// sees the old content or the new one, never half of it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_link_follows_the_open_recording() {
        let data = tempfile::tempdir().unwrap();
        let root = RecordRoot::new(data.path());
        assert_eq!(root.active(), None);
        let session = root.create_session("abc").unwrap();
        root.set_active(&session).unwrap();
        assert_eq!(root.active().unwrap().id(), "abc");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&session.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        root.clear_active().unwrap();
        root.clear_active().unwrap();
        assert_eq!(root.active(), None);
    }

    #[test]
    fn a_held_lock_means_alive_and_a_dropped_one_orphaned() {
        let data = tempfile::tempdir().unwrap();
        let session = RecordRoot::new(data.path()).create_session("s").unwrap();
        assert!(!session.recorder_alive());
        let lock = RecorderLock::try_acquire(&session).unwrap().unwrap();
        assert!(session.recorder_alive());
        drop(lock);
        assert!(!session.recorder_alive());
    }
}

//! Files left behind by recordings that ended without stopping, and which of them nothing needs.
//!
//! A recording removes its file when it stops. A process that ends without stopping it (a
//! flush then `os._exit`, as serverless handlers and pool workers do; SIGKILL) leaves the file,
//! and where that is `/dev/shm` it holds memory until someone removes it. A lossless
//! recording's file whose live reader read every call's start and end, and delivered every
//! call it read (none begun and not ended, none held for its links: the reader says how many
//! in the file), was delivered in full (what is left unread is the waits and causes the flush
//! itself made, which begin no span): it is spent, and the next recording (or `devtrace
//! recover`) removes it. A process killed inside a call leaves that call begun and not ended:
//! its file is kept, and `devtrace recover` writes the call, open at the kill. Any other file of a
//! dead process is a window to recover, and is left for `devtrace recover`.

use crate::ring::{EventKind, RecorderFile};
use std::path::{Path, PathBuf};

/// The name a lossless recording's default file has: `devtrace-record-PID.ring`.
const RECORD_PREFIX: &str = "devtrace-record-";

/// Whether process `pid` exists (signal 0 sends nothing; EPERM means it exists).
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let result = unsafe { libc::kill(pid as libc::pid_t, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether a record only links or times calls (a cause, its effect, a wait's start): left
/// unread, it adds no span to what was delivered.
fn bookkeeping(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Cause | EventKind::Effect | EventKind::WaitBegin
    )
}

/// Whether `path` is a lossless recording's default file whose process is gone and whose
/// every call was delivered (read by the live reader): nothing to recover from it.
pub fn is_spent(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with(RECORD_PREFIX) && name.ends_with(".ring"));
    if !named {
        return false;
    }
    let Ok(file) = RecorderFile::open(path) else {
        return false;
    };
    let pid = file.info().pid;
    pid != std::process::id()
        && !process_alive(pid)
        && file.read_undelivered() == 0
        && file
            .unread_records()
            .iter()
            .all(|record| bookkeeping(record.kind))
}

/// Removes the spent files ([`is_spent`]) directly in `dir`; the ones removed.
pub fn remove_spent(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| is_spent(path) && std::fs::remove_file(path).is_ok())
        .collect();
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Cursor, EventKind, Layout, pack_meta};

    /// The pid of a process that has ended (and was reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn recording(dir: &Path, name: &str, pid: u32) -> RecorderFile {
        let file = RecorderFile::create(&dir.join(name), Layout::new(16, 4, 8, 4096), pid, 0, "{}")
            .unwrap();
        let mut writer = file.writer(7);
        for seq in 0..5 {
            file.push(&mut writer, 1000 + seq, pack_meta(EventKind::Call, 1, 0));
        }
        file
    }

    #[test]
    fn a_dead_lossless_recording_read_to_its_end_is_spent_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let name = "devtrace-record-1.ring";
        let file = recording(dir.path(), name, dead_pid());
        assert!(
            !is_spent(&dir.path().join(name)),
            "unread records are a window to recover"
        );
        Cursor::new().read(&file, None);
        assert!(is_spent(&dir.path().join(name)));
        assert_eq!(remove_spent(dir.path()), vec![dir.path().join(name)]);
        assert!(!dir.path().join(name).exists());
    }

    #[test]
    fn waits_and_causes_left_unread_do_not_keep_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = recording(dir.path(), "devtrace-record-6.ring", dead_pid());
        Cursor::new().read(&file, None);
        let mut late = file.writer(8);
        file.push(&mut late, 2000, pack_meta(EventKind::Cause, 9, 3));
        file.push(&mut late, 2001, pack_meta(EventKind::WaitBegin, 0, 3));
        file.push(&mut late, 2002, pack_meta(EventKind::Effect, 9, 3));
        assert_eq!(remove_spent(dir.path()).len(), 1);
    }

    #[test]
    fn records_written_after_the_last_read_keep_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = recording(dir.path(), "devtrace-record-2.ring", dead_pid());
        Cursor::new().read(&file, None);
        let mut late = file.writer(8);
        file.push(&mut late, 2000, pack_meta(EventKind::Call, 2, 0));
        assert!(remove_spent(dir.path()).is_empty());
    }

    #[test]
    fn a_call_the_reader_read_but_could_not_deliver_keeps_the_file() {
        // Killed inside a call: its start was read, its end never came. The reader said so.
        let dir = tempfile::tempdir().unwrap();
        let file = recording(dir.path(), "devtrace-record-7.ring", dead_pid());
        Cursor::new().read(&file, None);
        file.set_read_undelivered(1);
        assert!(remove_spent(dir.path()).is_empty());
        file.set_read_undelivered(0);
        assert_eq!(remove_spent(dir.path()).len(), 1);
    }

    #[test]
    fn live_processes_and_other_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        for (name, pid) in [
            ("devtrace-record-3.ring", std::process::id()),
            ("devtrace-flight-4.ring", dead),
            ("chosen.ring", dead),
        ] {
            let file = recording(dir.path(), name, pid);
            Cursor::new().read(&file, None);
        }
        std::fs::write(
            dir.path().join("devtrace-record-5.ring"),
            b"not a recorder file",
        )
        .unwrap();
        assert!(remove_spent(dir.path()).is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }
}

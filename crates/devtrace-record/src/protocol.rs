//! The recorder's local socket: one JSON object per line each way.
//!
//! ```text
//! → {"op":"event","event":{"t":"…","type":"thought","raw":"…","tags":["debugging"]}}
//! ← {"ok":true,"recorded":true}
//! → {"op":"status"}
//! ← {"ok":true,"status":{…}}
//! ```
//!
//! Clients: `devtrace note`, `devtrace record exec|status|pause|resume|stop`, the Neovim plugin
//! (editors/nvim), which may send several event lines on one connection without waiting. An
//! answer with `"ok": true` means the event is in the journal, synced to disk.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Longest path a Unix socket can be reached by (`sun_path` is 108 bytes on Linux, with the
/// terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Longest request line accepted (an event with a command's output fits).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A trace-1.0.0 event to record (`t` may be left out: the recorder stamps it).
    Event {
        event: Value,
    },
    /// A command's output from capture mode (`record --capture -- SHELL`): the shell's pid and
    /// the command's sequence number, as its hook line names them.
    Output {
        pid: u32,
        seq: u64,
        output: String,
        bytes: u64,
    },
    Status,
    Pause,
    Resume,
    /// Finish: flush pending edits, journal everything, answer, exit.
    Stop,
}

/// What `record status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: String,
    pub root: String,
    pub task: String,
    /// When the recording started (RFC 3339).
    pub started: String,
    pub paused: bool,
    pub pid: u32,
    /// Events in the journal, by type.
    pub commands: u64,
    pub edits: u64,
    pub notes: u64,
    pub editor_events: u64,
    pub other_events: u64,
    /// Whether saved files are being watched, and how many directories.
    pub watching: bool,
    pub watched_directories: u64,
    /// Something that limits what is captured (e.g. the inotify watch limit), for the user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For an event: whether it was recorded (`false` while paused, or filtered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl Response {
    pub fn ok() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the recorder is not answering on {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the socket path {0} is longer than a Unix socket allows ({MAX_SOCKET_PATH} bytes): use a shorter data directory (--data or DEVTRACE_DATA)"
    )]
    PathTooLong(String),
    #[error("the recorder stopped answering: {0}")]
    Io(#[from] std::io::Error),
    #[error("the recorder's answer is not understood: {0}")]
    BadAnswer(String),
}

/// Sends one request and waits (up to `timeout`) for its answer.
pub fn request(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(ClientError::PathTooLong(socket.display().to_string()));
    }
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(request).expect("requests serialise");
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| ClientError::BadAnswer(format!("{e}: {answer:?}")))
}

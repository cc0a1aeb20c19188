//! The background recorder: one process per recording, started by `devtrace record start`.
//!
//! It holds the recording's lock for as long as it lives, owns the file watcher and the local
//! socket, follows the shell hooks' spool file, and appends every event to the journal (synced)
//! before answering anyone. One thread owns all state; the watcher, the socket's connections
//! and a timer only send it messages, so nothing needs a lock and the order of the journal is
//! the order things were handled.
//!
//! Started again on a recording whose recorder died (resume), it reads the journal back: where
//! the shell spool was read up to, what every file's content was, whether it was paused. Files
//! saved while no recorder ran become edits at once; shell lines written meanwhile are read.

use crate::edits::{Snapshots, Tracker};
use crate::git::Repo;
use crate::journal::{self, Entry, Journal};
use crate::layout::{RecorderLock, SessionDir};
use crate::meta::SessionMeta;
use crate::protocol::{MAX_REQUEST_BYTES, Request, Response, Status};
use crate::shell;
use crate::watch::{Raw, TreeWatcher};
use devtrace_ingest::redact::Redactor;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("another recorder is already running for {0}")]
    AlreadyRunning(String),
    #[error("cannot read the recording's metadata {path}: {source}")]
    Meta {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Git(#[from] crate::git::GitError),
    #[error("the journal {path}: {source}")]
    Journal {
        path: String,
        source: std::io::Error,
    },
}

/// How often the spool file is checked even without a watcher event (a safety net; the
/// watcher normally reports each line at once).
const SPOOL_POLL: Duration = Duration::from_secs(2);

/// More changed paths than this at `stop` and the whole tree is staged again instead (the
/// paths are git's arguments).
const MAX_STAGED_PATHS: usize = 10_000;

/// The working tree staged into the recording's own index at the start (in the background),
/// and every path the watcher saw change since, so that `stop` stages only those: the final
/// patch without reading the whole tree again. Given up (the CLI stages the whole tree) when
/// the watcher may have missed something: lost events, a directory it could not watch, a
/// changed ignore rule.
struct Staging {
    started: Option<std::thread::JoinHandle<Result<String, crate::git::GitError>>>,
    paths: BTreeSet<String>,
    /// Why the paths may not be all that changed, once they may not be.
    given_up: Option<&'static str>,
}

impl Staging {
    fn start(repo: &Repo, session: &SessionDir) -> Self {
        let _ = std::fs::remove_file(session.tree_index());
        let repo = repo.clone();
        let index = session.tree_index_staging();
        let started = std::thread::spawn(move || {
            let fingerprint = repo.exclude_fingerprint();
            repo.stage_tree(&index)?;
            Ok(fingerprint)
        });
        Self {
            started: Some(started),
            paths: BTreeSet::new(),
            given_up: None,
        }
    }

    fn give_up(&mut self, why: &'static str) {
        if self.given_up.is_none() {
            self.given_up = Some(why);
        }
    }

    /// Something under `path` changed.
    fn changed(&mut self, root: &Path, path: &Path) {
        let Ok(relative) = path.strip_prefix(root) else {
            return;
        };
        match relative.components().next() {
            None => return self.give_up("the working tree's top directory changed"),
            Some(first) if first.as_os_str() == ".git" => return,
            Some(_) => {}
        }
        if path.file_name().is_some_and(|n| n == ".gitignore") {
            return self.give_up("a .gitignore changed");
        }
        if self.paths.len() >= MAX_STAGED_PATHS {
            return self.give_up("too many paths changed");
        }
        self.paths.insert(relative.to_string_lossy().into_owned());
    }

    /// At `stop`: the staged tree brought up to date and put where the CLI takes it, or the
    /// reason it is not.
    fn finish(mut self, repo: &Repo, session: &SessionDir) -> Result<(), String> {
        let staged = self.started.take().map(|thread| thread.join());
        let index = session.tree_index_staging();
        let result = (|| {
            let fingerprint = match staged {
                Some(Ok(Ok(fingerprint))) => fingerprint,
                Some(Ok(Err(error))) => return Err(format!("staging the tree failed: {error}")),
                _ => return Err("staging the tree failed".to_owned()),
            };
            if let Some(why) = self.given_up {
                return Err(why.to_owned());
            }
            if repo.exclude_fingerprint() != fingerprint {
                return Err("the repository's exclude rules changed".to_owned());
            }
            let paths: Vec<String> = self.paths.into_iter().collect();
            repo.stage_paths(&index, &paths)
                .map_err(|error| error.to_string())?;
            std::fs::rename(&index, session.tree_index()).map_err(|error| error.to_string())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&index);
        }
        result
    }
}

enum Message {
    Watch(Raw),
    /// A request, where to send its answer, and where the connection says it has written it.
    Client(Request, Sender<Response>, SyncSender<()>),
}

/// Runs the recorder until `record stop` (or the process is killed). `ready` is called once
/// the socket answers, with what is captured.
pub fn run(
    session: &SessionDir,
    redactor: Arc<Redactor>,
    ready: impl FnOnce(&Status),
) -> Result<(), RecorderError> {
    let _lock = acquire_lock(session)?;
    let meta = SessionMeta::read(&session.meta()).map_err(|source| RecorderError::Meta {
        path: session.meta().display().to_string(),
        source,
    })?;
    let journal_error = |source| RecorderError::Journal {
        path: session.journal().display().to_string(),
        source,
    };
    let contents = journal::read(&session.journal()).map_err(journal_error)?;
    let resuming = contents
        .entries
        .iter()
        .any(|e| matches!(e, Entry::Started { .. }));
    let journal = Journal::open(&session.journal()).map_err(journal_error)?;
    let repo = Repo::discover(&meta.root)?;
    let start_commit = (!meta.task.commit.is_empty()).then(|| meta.task.commit.clone());
    let tracker = Tracker::new(
        repo.clone(),
        start_commit,
        Snapshots::new(session.snapshots()),
        contents.known_files(),
        meta.options.max_diff_file_bytes,
    );
    let (sender, receiver) = mpsc::channel();
    let mut state = State {
        session: session.clone(),
        meta,
        redactor,
        journal,
        tracker,
        repo,
        paused: contents.paused(),
        paused_changes: HashSet::new(),
        pending: HashMap::new(),
        spool_offset: contents.spool_offset(),
        counts: Counts::default(),
        watcher: None,
        staging: None,
        last_note: Instant::now(),
        asked: 0,
    };
    for event in contents.events() {
        state.counts.add(event);
    }
    state
        .journal
        .append(&[Entry::Started {
            t: crate::now_nanos(),
            pid: std::process::id(),
        }])
        .map_err(journal_error)?;
    state.take_baselines(resuming).map_err(journal_error)?;

    let (listener, socket) = bind_socket(session)?;
    let client_sender = sender.clone();
    std::thread::spawn(move || accept(listener, client_sender));

    watch_tree(&mut state, session, &sender);
    let _spool_watcher = follow_spool(session, &sender);
    // Lines the hooks wrote while no recorder ran.
    state.read_spool().map_err(journal_error)?;
    state.set_capturing();
    ready(&state.status());
    let result = state.serve(&receiver);
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(session.capturing());
    result.map_err(journal_error)
}

/// The recording's lock. Another process may be probing it this instant (`record status` asks
/// whether a recorder is alive by trying it): a held lock is only another recorder if it stays
/// held.
fn acquire_lock(session: &SessionDir) -> Result<RecorderLock, RecorderError> {
    let lock_error = |source| RecorderError::Journal {
        path: session.lock().display().to_string(),
        source,
    };
    let began = Instant::now();
    loop {
        match RecorderLock::try_acquire(session).map_err(lock_error)? {
            Some(lock) => return Ok(lock),
            None if began.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            None => {
                return Err(RecorderError::AlreadyRunning(
                    session.path.display().to_string(),
                ));
            }
        }
    }
}

/// The socket, owner-only (the directory is too). Bound by a name relative to the recording's
/// directory, so the length of the data directory's path does not matter here.
fn bind_socket(session: &SessionDir) -> Result<(UnixListener, PathBuf), RecorderError> {
    let socket = session.socket();
    let _ = std::fs::remove_file(&socket);
    std::env::set_current_dir(&session.path).map_err(|source| RecorderError::Listen {
        path: socket.display().to_string(),
        source,
    })?;
    let listener = UnixListener::bind("sock").map_err(|source| RecorderError::Listen {
        path: socket.display().to_string(),
        source,
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600));
    }
    Ok((listener, socket))
}

/// Watches the working tree for saved files (when the recording asks for it), and stages the
/// tree once the watcher is in place.
fn watch_tree(state: &mut State, session: &SessionDir, sender: &Sender<Message>) {
    if state.meta.options.watch {
        let watch_sender = sender.clone();
        let data_dir = session
            .path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        match TreeWatcher::start(&state.meta.root, vec![data_dir], move |raw| {
            let _ = watch_sender.send(Message::Watch(raw));
        }) {
            Ok(watcher) => {
                // Staged once the watcher is in place, so every change after it is seen.
                if watcher.warnings.is_empty() {
                    state.staging = Some(Staging::start(&state.repo, session));
                }
                state.watcher = Some(watcher);
            }
            Err(error) => eprintln!("devtrace recorder: {error}; saved files are not recorded"),
        }
    }
    if state.staging.is_none() {
        let _ = std::fs::remove_file(session.tree_index());
        let _ = std::fs::remove_file(session.tree_index_staging());
    }
    if state.staging.is_none() {
        let _ = std::fs::remove_file(session.tree_index());
        let _ = std::fs::remove_file(session.tree_index_staging());
    }
}

/// The hooks' spool, followed whether or not the tree is watched (the watcher is kept alive by
/// the caller; without one the spool is read every SPOOL_POLL).
fn follow_spool(
    session: &SessionDir,
    sender: &Sender<Message>,
) -> Option<notify::RecommendedWatcher> {
    let spool_sender = sender.clone();
    let spool = session.shell_spool();
    let mut spool_watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && event.paths.contains(&spool)
            {
                let _ = spool_sender.send(Message::Watch(Raw::Changed(spool.clone())));
            }
        })
        .ok();
    if let Some(watcher) = &mut spool_watcher {
        use notify::Watcher as _;
        if let Err(error) = watcher.watch(&session.path, notify::RecursiveMode::NonRecursive) {
            eprintln!(
                "devtrace recorder: cannot watch {}: {error}; shell commands are read every {} s",
                session.path.display(),
                SPOOL_POLL.as_secs()
            );
        }
    }
    spool_watcher
}

fn accept(listener: UnixListener, sender: Sender<Message>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let sender = sender.clone();
        std::thread::spawn(move || serve_connection(stream, sender));
    }
}

/// Answers each request line of one connection, in order.
fn serve_connection(stream: UnixStream, sender: Sender<Message>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        match (&mut reader)
            .take(MAX_REQUEST_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_REQUEST_BYTES {
            let _ = answer(
                &mut writer,
                &Response::error(format!(
                    "request longer than {} MiB",
                    MAX_REQUEST_BYTES >> 20
                )),
            );
            return;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let response = match serde_json::from_slice::<Request>(&line) {
            Ok(request) => {
                let (reply, replied) = mpsc::channel();
                let (written, was_written) = mpsc::sync_channel(0);
                if sender
                    .send(Message::Client(request, reply, written))
                    .is_err()
                {
                    return;
                }
                let response = replied
                    .recv()
                    .unwrap_or_else(|_| Response::error("the recorder is stopping"));
                let result = answer(&mut writer, &response);
                drop(was_written);
                if result.is_err() {
                    return;
                }
                continue;
            }
            Err(error) => Response::error(format!(
                "not a request ({error}); send {{\"op\": \"event\", \"event\": {{…}}}}, or op status, pause, resume, stop"
            )),
        };
        if answer(&mut writer, &response).is_err() {
            return;
        }
    }
}

fn answer(writer: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).expect("responses serialise");
    bytes.push(b'\n');
    writer.write_all(&bytes)
}

#[derive(Debug, Default)]
struct Counts {
    commands: u64,
    edits: u64,
    notes: u64,
    editor: u64,
    other: u64,
}

impl Counts {
    fn add(&mut self, event: &Value) {
        match event.get("type").and_then(Value::as_str).unwrap_or("") {
            "terminal_command" => self.commands += 1,
            "edit" => self.edits += 1,
            "thought" => self.notes += 1,
            "file_opened" | "go_to_definition" | "find_references" => self.editor += 1,
            _ => self.other += 1,
        }
    }
}

struct State {
    session: SessionDir,
    meta: SessionMeta,
    redactor: Arc<Redactor>,
    journal: Journal,
    tracker: Tracker,
    repo: Repo,
    paused: bool,
    /// Paths changed while paused: taken as they are on resume, without an edit.
    paused_changes: HashSet<PathBuf>,
    /// Paths waiting for their burst of saves to end, with when it is over.
    pending: HashMap<PathBuf, Instant>,
    spool_offset: u64,
    counts: Counts,
    watcher: Option<TreeWatcher>,
    /// The staged working tree (only while the tree is watched).
    staging: Option<Staging>,
    last_note: Instant,
    /// The reminder counter written to `ask`.
    asked: u64,
}

impl State {
    /// At the first start: the files already changed are what their first edit diffs against.
    /// On a resume: files saved while no recorder ran become edits now.
    fn take_baselines(&mut self, resuming: bool) -> std::io::Result<()> {
        let changed = self.repo.changed_files().unwrap_or_default();
        if !resuming {
            let mut entries = Vec::new();
            for path in changed {
                let hash = self.tracker.baseline(&path)?;
                entries.push(Entry::Known { path, hash });
            }
            return self.journal.append(&entries);
        }
        let mut paths: HashSet<String> = changed.into_iter().collect();
        paths.extend(
            journal::read(&self.session.journal())?
                .known_files()
                .into_keys(),
        );
        let mut paths: Vec<String> = paths.into_iter().collect();
        paths.sort();
        let now = crate::now_nanos();
        for path in paths {
            if self.paused {
                let hash = self.tracker.baseline(&path)?;
                self.journal.append(&[Entry::Known { path, hash }])?;
            } else if let Some(event) = self.tracker.observe(&path, now)? {
                self.record(event, None)?;
            }
        }
        Ok(())
    }

    fn set_capturing(&self) {
        if self.paused {
            let _ = std::fs::remove_file(self.session.capturing());
        } else {
            let _ = std::fs::write(self.session.capturing(), b"");
        }
    }

    /// Redacts, journals (synced) and counts one event.
    fn record(&mut self, event: Value, spool: Option<u64>) -> std::io::Result<()> {
        self.record_all(vec![(event, spool)])
    }

    /// Redacts, journals (in one synced write) and counts events.
    fn record_all(&mut self, events: Vec<(Value, Option<u64>)>) -> std::io::Result<()> {
        let mut entries = Vec::with_capacity(events.len());
        for (mut event, spool) in events {
            self.redactor.redact_json(&mut event);
            entries.push(Entry::Event { event, spool });
        }
        self.journal.append(&entries)?;
        for entry in &entries {
            if let Entry::Event { event, .. } = entry {
                self.counts.add(event);
                if event.get("type").and_then(Value::as_str) == Some("thought") {
                    self.last_note = Instant::now();
                }
            }
        }
        Ok(())
    }

    fn serve(&mut self, receiver: &Receiver<Message>) -> std::io::Result<()> {
        let coalesce = Duration::from_millis(self.meta.options.coalesce_ms);
        let ask_every = (self.meta.options.ask_every_secs > 0)
            .then(|| Duration::from_secs(self.meta.options.ask_every_secs));
        let mut next_spool_poll = Instant::now() + SPOOL_POLL;
        loop {
            let now = Instant::now();
            let mut wake = next_spool_poll;
            if let Some(due) = self.pending.values().min() {
                wake = wake.min(*due);
            }
            if let Some(every) = ask_every
                && !self.paused
            {
                wake = wake.min(self.last_note + every);
            }
            let message = receiver.recv_timeout(wake.saturating_duration_since(now));
            match message {
                Ok(Message::Watch(raw)) => self.on_watch(raw, coalesce)?,
                Ok(Message::Client(request, reply, written)) => {
                    let stop = matches!(request, Request::Stop);
                    let response = self.on_request(request);
                    let response = match response {
                        Ok(response) => response,
                        Err(error) => Response::error(format!(
                            "cannot write the journal {}: {error}",
                            self.journal.path().display()
                        )),
                    };
                    let ok = response.ok;
                    let _ = reply.send(response);
                    if stop && ok {
                        // Exit only once the answer is written: this rendezvous returns when
                        // the connection drops its end, after writing.
                        let _ = written.send(());
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            let now = Instant::now();
            if now >= next_spool_poll {
                self.read_spool()?;
                next_spool_poll = now + SPOOL_POLL;
            }
            self.flush_pending(false)?;
            if let Some(every) = ask_every
                && !self.paused
                && now >= self.last_note + every
            {
                self.asked += 1;
                let _ = crate::layout::write_atomically(
                    &self.session.ask(),
                    format!("{}\n", self.asked).as_bytes(),
                );
                // The next reminder is another interval away.
                self.last_note = now;
            }
        }
    }

    fn on_watch(&mut self, raw: Raw, coalesce: Duration) -> std::io::Result<()> {
        match raw {
            Raw::Changed(path) => {
                if path == self.session.shell_spool() {
                    return self.read_spool();
                }
                if path.starts_with(&self.session.path) {
                    return Ok(());
                }
                if let Some(staging) = &mut self.staging {
                    staging.changed(&self.meta.root, &path);
                }
                if self.paused {
                    self.paused_changes.insert(path);
                } else {
                    self.pending.insert(path, Instant::now() + coalesce);
                }
            }
            Raw::DirectoryCreated(path) => {
                if let Some(staging) = &mut self.staging {
                    staging.changed(&self.meta.root, &path);
                }
                if let Some(watcher) = &mut self.watcher {
                    for file in watcher.add_directory(&path) {
                        if self.paused {
                            self.paused_changes.insert(file);
                        } else {
                            self.pending.insert(file, Instant::now() + coalesce);
                        }
                    }
                    if !watcher.warnings.is_empty()
                        && let Some(staging) = &mut self.staging
                    {
                        staging.give_up("a directory could not be watched");
                    }
                }
            }
            Raw::Overflow => {
                if let Some(staging) = &mut self.staging {
                    staging.give_up("the watcher lost events");
                }
                // Events were lost: look at everything that differs from the start commit.
                for path in self.repo.changed_files().unwrap_or_default() {
                    let full = self.meta.root.join(path);
                    self.pending.insert(full, Instant::now() + coalesce);
                }
            }
            Raw::Error(message) => {
                if let Some(staging) = &mut self.staging {
                    staging.give_up("the watcher failed");
                }
                eprintln!("devtrace recorder: the file watcher: {message}")
            }
        }
        Ok(())
    }

    /// Turns the saves whose burst is over (or all, when `all`) into edits.
    fn flush_pending(&mut self, all: bool) -> std::io::Result<()> {
        let now = Instant::now();
        let mut due: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, when)| all || **when <= now)
            .map(|(path, _)| path.clone())
            .collect();
        due.sort();
        for path in due {
            self.pending.remove(&path);
            let Some(relative) = self.relevant(&path) else {
                continue;
            };
            if let Some(event) = self.tracker.observe(&relative, crate::now_nanos())? {
                self.record(event, None)?;
            }
        }
        Ok(())
    }

    fn relevant(&mut self, path: &Path) -> Option<String> {
        match &mut self.watcher {
            Some(watcher) => watcher.relevant(path),
            None => {
                let relative = path.strip_prefix(&self.meta.root).ok()?;
                let relative = relative.to_string_lossy().into_owned();
                (!relative.starts_with(".git/") && !self.repo.is_ignored(&relative))
                    .then_some(relative)
            }
        }
    }

    /// Reads the hooks' complete new lines, recording those that belong to this recording.
    fn read_spool(&mut self) -> std::io::Result<()> {
        let path = self.session.shell_spool();
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let length = file.metadata()?.len();
        if length <= self.spool_offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.spool_offset))?;
        let mut bytes = Vec::new();
        file.take(length - self.spool_offset)
            .read_to_end(&mut bytes)?;
        let mut consumed = 0;
        let mut events = Vec::new();
        while let Some(end) = bytes[consumed..].iter().position(|b| *b == b'\n') {
            let line = &bytes[consumed..consumed + end];
            consumed += end + 1;
            let offset = self.spool_offset + consumed as u64;
            let Some(hook) = shell::parse_line(line) else {
                continue;
            };
            if !self.takes_command(&hook) {
                continue;
            }
            events.push((shell::to_event(&hook, crate::now_nanos()), Some(offset)));
        }
        // One write and one sync for all the lines read.
        self.record_all(events)?;
        self.spool_offset += consumed as u64;
        Ok(())
    }

    /// Commands of this recording: run in the working tree, or in the shell `devtrace record
    /// -- SHELL` started; not devtrace's own recording commands.
    fn takes_command(&self, hook: &shell::HookLine) -> bool {
        if self.paused || hook.cmd.trim().is_empty() || shell::is_recorder_command(&hook.cmd) {
            return false;
        }
        hook.scope == self.meta.id
            || Path::new(&hook.cwd).starts_with(&self.meta.root)
            || std::fs::canonicalize(&hook.cwd).is_ok_and(|p| p.starts_with(&self.meta.root))
    }

    fn on_request(&mut self, request: Request) -> std::io::Result<Response> {
        match request {
            Request::Status => Ok(Response {
                status: Some(self.status()),
                ..Response::ok()
            }),
            Request::Pause => {
                if !self.paused {
                    self.flush_pending(true)?;
                    self.read_spool()?;
                    self.journal.append(&[Entry::Paused {
                        t: crate::now_nanos(),
                    }])?;
                    self.paused = true;
                    self.set_capturing();
                }
                Ok(Response {
                    status: Some(self.status()),
                    ..Response::ok()
                })
            }
            Request::Resume => {
                if self.paused {
                    // What changed while paused is taken as it is now, unrecorded.
                    let mut entries = Vec::new();
                    let mut changed: Vec<PathBuf> = self.paused_changes.drain().collect();
                    changed.sort();
                    for path in changed {
                        if let Some(relative) = self.relevant(&path) {
                            let hash = self.tracker.baseline(&relative)?;
                            entries.push(Entry::Known {
                                path: relative,
                                hash,
                            });
                        }
                    }
                    entries.push(Entry::Resumed {
                        t: crate::now_nanos(),
                    });
                    self.journal.append(&entries)?;
                    self.paused = false;
                    self.last_note = Instant::now();
                    self.set_capturing();
                }
                Ok(Response {
                    status: Some(self.status()),
                    ..Response::ok()
                })
            }
            Request::Stop => {
                self.read_spool()?;
                self.flush_pending(true)?;
                if let Some(staging) = self.staging.take()
                    && let Err(why) = staging.finish(&self.repo, &self.session)
                {
                    eprintln!(
                        "devtrace recorder: the final patch stages the whole tree again: {why}"
                    );
                }
                let _ = std::fs::remove_file(self.session.capturing());
                Ok(Response {
                    status: Some(self.status()),
                    ..Response::ok()
                })
            }
            Request::Event { event } => self.on_event(event),
            Request::Output {
                pid,
                seq,
                output,
                bytes,
            } => {
                if self.paused {
                    return Ok(Response {
                        recorded: Some(false),
                        ..Response::ok()
                    });
                }
                let output = self.redactor.redact(&output).into_owned();
                self.journal.append(&[Entry::Output {
                    pid,
                    seq,
                    output,
                    bytes,
                }])?;
                Ok(Response {
                    recorded: Some(true),
                    ..Response::ok()
                })
            }
        }
    }

    fn on_event(&mut self, mut event: Value) -> std::io::Result<Response> {
        let Some(object) = event.as_object_mut() else {
            return Ok(Response::error("an event must be a JSON object"));
        };
        let kind = match object.get("type").and_then(Value::as_str) {
            Some(kind) if !kind.is_empty() => kind.to_owned(),
            _ => {
                return Ok(Response::error(
                    "an event needs a \"type\" (file_opened, go_to_definition, find_references, edit, terminal_command, thought, …)",
                ));
            }
        };
        // Notes are deliberate: they are kept while paused; nothing else is.
        if self.paused && kind != "thought" {
            return Ok(Response {
                recorded: Some(false),
                ..Response::ok()
            });
        }
        if !object.contains_key("t") {
            object.insert("t".into(), json!(crate::timestamp(crate::now_nanos())));
        } else if object
            .get("t")
            .and_then(Value::as_str)
            .and_then(devtrace_model::time::parse_rfc3339)
            .is_none()
        {
            return Ok(Response::error(
                "\"t\" must be an RFC 3339 time (e.g. 2026-01-05T10:00:00.250Z), or left out",
            ));
        }
        self.relativize(object);
        if matches!(kind.as_str(), "file_opened" | "edit")
            && !object.contains_key("language")
            && let Some(path) = object.get("file_path").and_then(Value::as_str)
        {
            let language = crate::language::of_path(path);
            if !language.is_empty() {
                object.insert("language".into(), json!(language));
            }
        }
        if kind == "edit" && !object.contains_key("patch_unified") {
            // An editor saved a file: the edit is computed here, from the file, once, with
            // the editor named (the watcher's report of the same save then finds no change).
            let Some(path) = object.get("file_path").and_then(Value::as_str) else {
                return Ok(Response::error("an edit needs \"file_path\""));
            };
            let path = path.to_owned();
            self.pending.remove(&self.meta.root.join(&path));
            let t = object
                .get("t")
                .and_then(Value::as_str)
                .and_then(devtrace_model::time::parse_rfc3339)
                .unwrap_or_else(crate::now_nanos);
            let Some(mut computed) = self.tracker.observe(&path, t)? else {
                return Ok(Response {
                    recorded: Some(false),
                    ..Response::ok()
                });
            };
            for (key, value) in object.iter() {
                if computed.get(key).is_none() {
                    computed[key] = value.clone();
                }
            }
            self.record(computed, None)?;
        } else {
            self.record(event, None)?;
        }
        Ok(Response {
            recorded: Some(true),
            ..Response::ok()
        })
    }

    /// Absolute paths inside the working tree become relative to it (`file_path`, and the
    /// `source`/`target`/`references` of navigation events).
    fn relativize(&self, object: &mut serde_json::Map<String, Value>) {
        let root = &self.meta.root;
        let fix = |value: &mut Value| {
            if let Some(path) = value.get("file_path").and_then(Value::as_str)
                && let Ok(relative) = Path::new(path).strip_prefix(root)
            {
                let relative = relative.to_string_lossy().into_owned();
                value["file_path"] = json!(relative);
            }
        };
        let mut whole = Value::Object(std::mem::take(object));
        fix(&mut whole);
        for key in ["source", "target"] {
            if let Some(part) = whole.get_mut(key) {
                fix(part);
            }
        }
        if let Some(Value::Array(references)) = whole.get_mut("references") {
            references.iter_mut().for_each(fix);
        }
        if let Value::Object(map) = whole {
            *object = map;
        }
    }

    fn status(&self) -> Status {
        Status {
            id: self.meta.id.clone(),
            root: self.meta.root.display().to_string(),
            task: self.meta.task.description.clone(),
            started: crate::timestamp(self.meta.started),
            paused: self.paused,
            pid: std::process::id(),
            commands: self.counts.commands,
            edits: self.counts.edits,
            notes: self.counts.notes,
            editor_events: self.counts.editor,
            other_events: self.counts.other,
            watching: self.watcher.is_some(),
            watched_directories: self.watcher.as_ref().map_or(0, |w| w.watched() as u64),
            warnings: self
                .watcher
                .as_ref()
                .map(|w| w.warnings.clone())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> (tempfile::TempDir, SessionDir) {
        let dir = tempfile::tempdir().unwrap();
        let session = SessionDir {
            path: dir.path().to_path_buf(),
        };
        (dir, session)
    }

    #[test]
    fn the_staged_tree_follows_the_watched_paths_and_gives_the_same_patch() {
        let (dir, repo) = crate::git::tests::repo();
        let root = repo.root.clone();
        let start = repo.head().unwrap();
        let (_keep, session) = session();
        let mut staging = Staging::start(&repo, &session);
        std::fs::write(root.join("a.txt"), "changed\n").unwrap();
        std::fs::write(root.join("new.txt"), "new\n").unwrap();
        std::fs::write(root.join("x.log"), "ignored\n").unwrap();
        for name in ["a.txt", "new.txt", "x.log"] {
            staging.changed(&root, &root.join(name));
        }
        // .git's own files are never paths to stage.
        staging.changed(&root, &root.join(".git/index"));
        assert_eq!(staging.paths.len(), 3);
        staging.finish(&repo, &session).unwrap();
        assert!(session.tree_index().is_file());
        assert!(!session.tree_index_staging().exists());
        let staged = repo
            .staged_patch(Some(&start), &session.tree_index())
            .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        assert_eq!(
            staged,
            repo.final_patch(Some(&start), scratch.path()).unwrap()
        );
        assert!(staged.contains("b/new.txt") && staged.contains("+changed"));
        drop(dir);
    }

    #[test]
    fn the_staged_tree_is_given_up_when_the_watcher_may_have_missed_a_change() {
        let (_dir, repo) = crate::git::tests::repo();
        let root = repo.root.clone();
        let (_keep, session) = session();
        let mut staging = Staging::start(&repo, &session);
        staging.changed(&root, &root.join("sub/.gitignore"));
        assert_eq!(
            staging.finish(&repo, &session).unwrap_err(),
            "a .gitignore changed"
        );
        assert!(!session.tree_index().exists());
        assert!(!session.tree_index_staging().exists());

        let mut staging = Staging::start(&repo, &session);
        staging.give_up("the watcher lost events");
        assert!(staging.finish(&repo, &session).is_err());
        assert!(!session.tree_index().exists());

        // A changed exclude file outside the tree's .gitignore files.
        let staging = Staging::start(&repo, &session);
        while !staging.started.as_ref().unwrap().is_finished() {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::write(root.join(".git/info/exclude"), "*.txt\n").unwrap();
        assert_eq!(
            staging.finish(&repo, &session).unwrap_err(),
            "the repository's exclude rules changed"
        );
    }
}

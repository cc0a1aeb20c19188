//! `devtrace record …` and `devtrace note`: a developer's own session, recorded as
//! `trace-1.0.0` (devtrace-record does the recording; this module starts and stops it, talks
//! to it, and says what happens).
//!
//! `record start` checks the working tree, writes what is known at the start, and starts the
//! background recorder (`record daemon`, in its own session so closing the terminal does not end
//! it), then prints what is captured and where it goes. `record stop` asks the recorder to
//! finish, computes the final patch and the test results, assembles the document and sends it
//! through the same path as `devtrace import FILE` (or to a server's REST API). A recording
//! whose recorder died is found by the next `record start` (resume, close or discard) and
//! finished by `record stop` from its journal.

use super::run::{
    Capture, attach_outputs, install_signal_handlers, output_sources, set_child, spawn_failure, tee,
};
use crate::cli::{
    NoteArgs, OrphanChoice, RecordArgs, RecordCommand, RecordStartArgs, RecordStopArgs, ShellName,
};
use crate::output::eprintln_safe;
use crate::usage::usage;
use anyhow::{Context, Result, anyhow, bail};
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::test_output::TestOutputParser;
use devtrace_query::text::counted;
use devtrace_record::document::{self, Ending, TestResults};
use devtrace_record::git::Repo;
use devtrace_record::journal;
use devtrace_record::layout::{RecordRoot, SessionDir};
use devtrace_record::meta::{self, Developer, Environment, Options, SessionMeta, Task};
use devtrace_record::protocol::{self, Request, Response, Status};
use devtrace_record::shell::{self, Shell};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long `record start` waits for the recorder to answer (it watches the tree first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request to the recorder may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(target: &Target, args: &RecordArgs) -> Result<ExitCode> {
    // Usage mistakes first: they create nothing, not even the data directory.
    if args.command.is_none() && args.run.is_empty() {
        if args.capture {
            usage!("--capture goes with a command: devtrace record --capture -- $SHELL")
        }
        usage!(
            "say what to do: `devtrace record start --task \"…\"`, `devtrace record stop`, `devtrace record status`, \
             or `devtrace record -- $SHELL` to record one shell (see `devtrace record --help`)"
        );
    }
    let data = data_dir(Some(&target.store.data_dir))?;
    match &args.command {
        Some(RecordCommand::Start(start)) => {
            start_recording(&data, target, start, false)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(RecordCommand::Stop(stop)) => stop_recording(&data, target, stop),
        Some(RecordCommand::Status { json }) => status(&data, *json),
        Some(RecordCommand::Pause { json }) => pause_or_resume(&data, true, *json),
        Some(RecordCommand::Resume { json }) => pause_or_resume(&data, false, *json),
        Some(RecordCommand::ShellInit { shell }) => {
            let shell = match shell {
                ShellName::Bash => Shell::Bash,
                ShellName::Zsh => Shell::Zsh,
                ShellName::Fish => Shell::Fish,
            };
            crate::output::print_stdout(&shell::init_script(shell, &RecordRoot::new(&data).path))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(RecordCommand::Exec { command }) => exec(&data, command),
        Some(RecordCommand::Daemon { session }) => daemon(session),
        None => record_command(&data, target, &args.start, &args.run, args.capture),
    }
}

/// Where a finished recording goes: the store chosen by `--store`/`--data` (and `--project`),
/// or the server given by `--server` (with `--token`), which wins.
pub struct Target {
    pub store: crate::config::StoreChoice,
    pub server: Option<String>,
    pub token: Option<String>,
    /// Certificates to trust for an https `server`, besides the system's (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
}

impl Target {
    /// The store, for messages: the data directory for the embedded store in it, else the
    /// store's location without secrets.
    fn store_name(&self, data: &Path) -> String {
        match &self.store.location {
            devtrace_store::StoreLocation::Embedded(dir)
                if std::fs::canonicalize(dir).ok().as_deref() == Some(data) =>
            {
                crate::output::path(data)
            }
            location => devtrace_model::recorded::escape(&location.describe()),
        }
    }
}

/// The data directory as an absolute path (the hooks and the recorder run elsewhere).
fn data_dir(flag: Option<&Path>) -> Result<PathBuf> {
    let dir = crate::config::data_dir(flag)?;
    devtrace_store::sqlite::create_data_dir(&dir)?;
    Ok(std::fs::canonicalize(&dir).unwrap_or(dir))
}

/// The state of the open recording, if any.
enum Open {
    None,
    /// Its recorder answers.
    Live(SessionDir),
    /// Its recorder is gone (killed, crashed, the machine restarted).
    Orphaned(SessionDir),
}

fn open_recording(root: &RecordRoot) -> Open {
    match root.active() {
        None => Open::None,
        Some(session) if session.recorder_alive() => Open::Live(session),
        Some(session) => Open::Orphaned(session),
    }
}

fn directories(count: u64) -> String {
    if count == 1 {
        "1 directory".to_owned()
    } else {
        format!("{count} directories")
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

fn ask(session: &SessionDir, request: &Request) -> Result<Response> {
    // A recorder that has just started may not be listening yet: wait for it a little.
    let began = Instant::now();
    let response = loop {
        match protocol::request(&session.client_socket(), request, REQUEST_TIMEOUT) {
            Err(protocol::ClientError::Connect { .. })
                if began.elapsed() < Duration::from_secs(10) && session.recorder_alive() =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other?,
        }
    };
    if !response.ok {
        bail!(
            "the recorder refused: {}",
            response.error.unwrap_or_default()
        );
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// start

/// `capture`: the recording is for `record --capture -- COMMAND`, whose output is recorded (said
/// in what is captured).
fn start_recording(
    data: &Path,
    target: &Target,
    args: &RecordStartArgs,
    capture: bool,
) -> Result<SessionDir> {
    let root = RecordRoot::new(data);
    match open_recording(&root) {
        Open::None => {}
        Open::Live(session) => {
            let meta = SessionMeta::read(&session.meta()).ok();
            bail!(
                "already recording session {} in {}: see `devtrace record status`, or end it with `devtrace record stop` first",
                short(&session.id()),
                meta.map_or_else(String::new, |m| m.root.display().to_string())
            );
        }
        Open::Orphaned(session) => match orphan_choice(&session, args.orphan)? {
            OrphanChoice::Resume => {
                let status = spawn_recorder(data, &session)?;
                eprintln_safe!(
                    "devtrace: resumed recording session {} in {} ({}, {}, {} so far{})",
                    short(&status.id),
                    status.root,
                    counted(status.commands, "command", "commands"),
                    counted(status.edits, "edit", "edits"),
                    counted(status.notes, "note", "notes"),
                    if status.paused { "; still paused" } else { "" }
                );
                if args.json {
                    crate::output::print_json(&status)?;
                }
                return Ok(session);
            }
            OrphanChoice::Close => {
                eprintln_safe!(
                    "devtrace: closing the recording left open ({})",
                    short(&session.id())
                );
                finish(data, target, &session, &RecordStopArgs::defaults(), None)?;
            }
            OrphanChoice::Discard => {
                std::fs::remove_dir_all(&session.path)
                    .with_context(|| format!("cannot remove {}", session.path.display()))?;
                root.clear_active()?;
                eprintln_safe!(
                    "devtrace: discarded the recording left open ({})",
                    short(&session.id())
                );
            }
        },
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let dir = args.dir.clone().unwrap_or(cwd);
    let repo = Repo::discover(&dir)?;
    let redactor = crate::config::default_redaction()?;
    let meta = session_meta(&repo, args, target.server.clone(), &redactor)?;
    let session = root.create_session(&meta.id).with_context(|| {
        format!(
            "cannot create the recording's directory under {}",
            root.path.display()
        )
    })?;
    meta.write(&session.meta())
        .with_context(|| format!("cannot write {}", session.meta().display()))?;
    root.set_active(&session)?;
    let status = match spawn_recorder(data, &session) {
        Ok(status) => status,
        Err(error) => {
            let _ = root.clear_active();
            let _ = std::fs::remove_dir_all(&session.path);
            return Err(error);
        }
    };
    if args.json {
        crate::output::print_json(&json!({
            "session": meta.id, "root": meta.root, "status": status,
            "captured": captured_lines(&meta, &status, &target.store_name(data), &redactor, capture),
        }))?;
    } else {
        crate::output::print_stderr(&start_text(
            &meta,
            &status,
            &target.store_name(data),
            &redactor,
            capture,
        ));
    }
    Ok(session)
}

/// Asks on a terminal what to do with a recording whose recorder died; elsewhere the flag
/// must say.
fn orphan_choice(session: &SessionDir, flag: Option<OrphanChoice>) -> Result<OrphanChoice> {
    if let Some(choice) = flag {
        return Ok(choice);
    }
    let meta = SessionMeta::read(&session.meta()).ok();
    let contents = journal::read(&session.journal()).unwrap_or_default();
    let description = match &meta {
        Some(meta) => format!(
            "session {} ({}) in {}, started {}, {} events",
            short(&meta.id),
            devtrace_model::recorded::quote(&meta.task.description),
            meta.root.display(),
            devtrace_record::timestamp(meta.started),
            contents.events().count()
        ),
        None => format!("session {}", session.id()),
    };
    if !std::io::stdin().is_terminal() {
        bail!(
            "a recording was left open by a recorder that is no longer running: {description}.\n\
             Say what to do with it: `devtrace record start --orphan resume` (go on recording it), \
             `--orphan close` (store what was recorded, then start anew) or `--orphan discard`; \
             or `devtrace record stop` to just store it"
        );
    }
    eprintln_safe!(
        "devtrace: a recording was left open by a recorder that is no longer running:\n  {description}"
    );
    loop {
        crate::output::print_stderr(
            "[r]esume it, [c]lose it (store what was recorded) and start anew, or [d]iscard it? ",
        );
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer)? == 0 {
            bail!("no answer: nothing was changed");
        }
        match answer.trim().to_lowercase().as_str() {
            "r" | "resume" => return Ok(OrphanChoice::Resume),
            "c" | "close" => return Ok(OrphanChoice::Close),
            "d" | "discard" => return Ok(OrphanChoice::Discard),
            _ => {}
        }
    }
}

fn session_meta(
    repo: &Repo,
    args: &RecordStartArgs,
    server: Option<String>,
    redactor: &Redactor,
) -> Result<SessionMeta> {
    let id = devtrace_record::new_uuid().context("cannot read random bytes for the session id")?;
    let repository = repo
        .remote_url()
        .map(|url| redactor.redact(&url).into_owned())
        .unwrap_or_else(|| repo.root.display().to_string());
    let (editor, ide) = meta::editor_from_env();
    let name = repo.config("user.name").unwrap_or_default();
    let email = repo.config("user.email").unwrap_or_default();
    let head = repo.head();
    let workspace_size = repo.file_count().unwrap_or(0);
    Ok(SessionMeta {
        id,
        started: devtrace_record::now_nanos(),
        root: repo.root.clone(),
        task: Task {
            description: args.task.clone().unwrap_or_default(),
            repository,
            branch: repo.branch().unwrap_or_default(),
            commit: head.unwrap_or_default(),
            test_command: args.test_command.clone().unwrap_or_default(),
            test_image: args.test_image.clone().unwrap_or_default(),
        },
        developer: Developer::from_git(&name, &email, args.identify, meta::os_name(), &ide),
        environment: Environment {
            os: meta::os_name().to_owned(),
            editor,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            workspace_size,
        },
        options: Options {
            ask_every_secs: args
                .ask_every
                .map_or(0, |nanos| (nanos / 1_000_000_000).max(1)),
            watch: !args.no_watch,
            server,
            ..Options::default()
        },
        identified: args.identify,
    })
}

/// Starts `devtrace record daemon` for `session`, detached from this terminal, and waits until
/// it answers.
fn spawn_recorder(data: &Path, session: &SessionDir) -> Result<Status> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(session.log())
        .with_context(|| format!("cannot open {}", session.log().display()))?;
    let exe = std::env::current_exe().context("cannot find the devtrace executable")?;
    let mut command = Command::new(exe);
    command
        .arg("--data")
        .arg(data)
        .args(["record", "daemon", "--session"])
        .arg(&session.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    // SAFETY: setsid is async-signal-safe; the child gets its own session, so the terminal's
    // hang-up and Ctrl-C do not reach it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().context("cannot start the recorder")?;
    let began = Instant::now();
    loop {
        if let Ok(response) = protocol::request(
            &session.client_socket(),
            &Request::Status,
            Duration::from_secs(2),
        ) && let Some(status) = response.status
        {
            // Reap it later is not ours to do: it outlives us, and init adopts it.
            drop(child);
            return Ok(status);
        }
        if let Some(exit) = child.try_wait()? {
            let log = std::fs::read_to_string(session.log()).unwrap_or_default();
            let last = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            bail!(
                "the recorder stopped at once ({exit}): {last}\n(its log: {})",
                session.log().display()
            );
        }
        if began.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            bail!(
                "the recorder did not answer within {} s (its log: {})",
                READY_TIMEOUT.as_secs(),
                session.log().display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What is captured, one line per source (for --json).
fn captured_lines(
    meta: &SessionMeta,
    status: &Status,
    store: &str,
    redactor: &Redactor,
    capture: bool,
) -> Value {
    json!({
        "commands": "typed in shells with devtrace's shell integration: command line, directory, exit code, duration",
        "command_output": if capture { CAPTURED_OUTPUT } else { "only for commands run as `devtrace record exec -- COMMAND`" },
        "edits": if status.watching { format!("saved files in {} as diffs (.gitignore respected; {} watched)", meta.root.display(), directories(status.watched_directories)) } else { "not watched (--no-watch); the final patch has every change".to_owned() },
        "editor": "Neovim navigation and saves with editors/nvim",
        "notes": "devtrace note \"…\"",
        "redaction": if redactor.is_enabled() { "on" } else { "off" },
        "developer": if meta.identified { "your git name and e-mail" } else { "a pseudonym derived from your git e-mail" },
        "destination": destination(meta, store),
    })
}

fn destination(meta: &SessionMeta, store: &str) -> String {
    match &meta.options.server {
        Some(server) => format!("the devtrace server {server}"),
        None if store.contains("://") => format!("the store {store}"),
        None => format!("the local store in {store}"),
    }
}

/// What capture mode records, in `record start`'s statement.
const CAPTURED_OUTPUT: &str =
    "each command's output in this shell (--capture: first and last 16 KiB, redacted)";

fn start_text(
    meta: &SessionMeta,
    status: &Status,
    store: &str,
    redactor: &Redactor,
    capture: bool,
) -> String {
    use devtrace_model::recorded::quote;
    let task = &meta.task;
    let mut text = format!(
        "devtrace: recording session {} in {}\n",
        short(&meta.id),
        meta.root.display()
    );
    if task.description.is_empty() {
        text.push_str("  task:          (none given: name it next time with --task \"…\")\n");
    } else {
        text.push_str(&format!("  task:          {}\n", quote(&task.description)));
    }
    let at = if task.commit.is_empty() {
        "no commit yet".to_owned()
    } else {
        format!("at {}", &task.commit[..task.commit.len().min(10)])
    };
    let branch = if task.branch.is_empty() {
        "detached HEAD".to_owned()
    } else {
        format!("branch {}", task.branch)
    };
    text.push_str(&format!(
        "  repository:    {} ({branch} {at})\n",
        task.repository
    ));
    if !task.test_command.is_empty() {
        text.push_str(&format!(
            "  tests:         {}, run at `devtrace record stop` for the results\n",
            task.test_command
        ));
    }
    text.push_str("  captured:      commands typed in shells with the integration (line, directory, exit code, duration)\n");
    if status.watching {
        text.push_str(&format!(
            "                 saved files as diffs ({} watched; .gitignore respected)\n",
            directories(status.watched_directories)
        ));
    } else {
        text.push_str(
            "                 no saved files (--no-watch); the final patch has every change\n",
        );
    }
    text.push_str(
        "                 Neovim navigation (editors/nvim), notes (devtrace note \"…\")\n",
    );
    if capture {
        text.push_str(&format!("                 {CAPTURED_OUTPUT}\n"));
        text.push_str("  not captured:  the output of commands in other shells (unless run as `devtrace record exec -- COMMAND`), ignored files\n");
    } else {
        text.push_str("  not captured:  command output (unless run as `devtrace record exec -- COMMAND`), ignored files\n");
    }
    for warning in &status.warnings {
        text.push_str(&format!("  warning:       {warning}\n"));
    }
    let developer = if meta.identified {
        "your git name (--identify)".to_owned()
    } else if meta.developer.name.is_empty() {
        "no one (git has no user.name or user.email)".to_owned()
    } else {
        format!(
            "{} (a pseudonym; --identify records your git name)",
            meta.developer.name
        )
    };
    text.push_str(&format!(
        "  privacy:       redaction {} (keys, tokens, passwords, e-mail addresses); you appear as {developer}\n",
        if redactor.is_enabled() { "on" } else { "OFF" }
    ));
    text.push_str(&format!(
        "  goes to:       {} at `devtrace record stop`\n",
        destination(meta, store)
    ));
    let shell_name = std::env::var("SHELL")
        .ok()
        .and_then(|s| Shell::parse(&s))
        .unwrap_or(Shell::Bash);
    let line = match shell_name {
        Shell::Fish => "devtrace record shell-init fish | source".to_owned(),
        other => format!("eval \"$(devtrace record shell-init {})\"", other.name()),
    };
    text.push_str(&format!(
        "  shell:         shells with `{line}` in their start-up file record their commands\n"
    ));
    text
}

// ---------------------------------------------------------------------------------------------
// the recorder process

fn daemon(session: &Path) -> Result<ExitCode> {
    let session = SessionDir {
        path: session.to_path_buf(),
    };
    let redactor = crate::config::default_redaction()?;
    eprintln_safe!(
        "devtrace recorder {} started (pid {})",
        session.id(),
        std::process::id()
    );
    devtrace_record::recorder::run(&session, redactor, |status| {
        eprintln_safe!(
            "devtrace recorder: ready, watching {} directories",
            status.watched_directories
        );
    })?;
    eprintln_safe!("devtrace recorder {} stopped", session.id());
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// status, pause, resume

fn status(data: &Path, json_output: bool) -> Result<ExitCode> {
    let root = RecordRoot::new(data);
    let mut open = open_recording(&root);
    let mut live_status = None;
    if let Open::Live(session) = &open {
        match ask(session, &Request::Status) {
            Ok(response) => live_status = response.status,
            // It died between the two looks (or while answering).
            Err(_) if session.recorder_gone_within(Duration::from_millis(500)) => {
                open = Open::Orphaned(session.clone())
            }
            Err(error) => return Err(error),
        }
    }
    match open {
        Open::None => {
            if json_output {
                crate::output::print_json(&json!({"state": "none"}))?;
            } else {
                crate::output::print_fitted(
                    "not recording (start with `devtrace record start --task \"…\"`)\n",
                )?;
            }
        }
        Open::Live(_) => {
            let status = live_status.ok_or_else(|| anyhow!("the recorder sent no status"))?;
            if json_output {
                let state = if status.paused { "paused" } else { "recording" };
                crate::output::print_json(&json!({"state": state, "status": status}))?;
            } else {
                crate::output::print_fitted(&status_text(&status))?;
            }
        }
        Open::Orphaned(session) => {
            let meta = SessionMeta::read(&session.meta()).ok();
            let contents = journal::read(&session.journal()).unwrap_or_default();
            if json_output {
                crate::output::print_json(&json!({
                    "state": "orphaned", "id": session.id(),
                    "root": meta.as_ref().map(|m| m.root.clone()),
                    "events": contents.events().count(),
                }))?;
            } else {
                crate::output::print_fitted(&format!(
                    "session {} was left open: its recorder is not running ({} events recorded before it stopped).\n\
                     Resume it with `devtrace record start --orphan resume`, or store it with `devtrace record stop`.\n",
                    short(&session.id()),
                    contents.events().count()
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_text(status: &Status) -> String {
    use devtrace_model::recorded::quote;
    let mut text = format!(
        "{} session {} in {} since {}\n",
        if status.paused {
            "paused:"
        } else {
            "recording"
        },
        short(&status.id),
        status.root,
        status.started
    );
    if !status.task.is_empty() {
        text.push_str(&format!("  task:     {}\n", quote(&status.task)));
    }
    text.push_str(&format!(
        "  recorded: {}, {}, {}, {}, {} other\n",
        counted(status.commands, "command", "commands"),
        counted(status.edits, "edit", "edits"),
        counted(status.notes, "note", "notes"),
        counted(status.editor_events, "editor event", "editor events"),
        status.other_events
    ));
    text.push_str(&format!(
        "  watching: {}\n",
        if status.watching {
            directories(status.watched_directories)
        } else {
            "no (--no-watch)".to_owned()
        }
    ));
    for warning in &status.warnings {
        text.push_str(&format!("  warning:  {warning}\n"));
    }
    text.push_str(&format!("  recorder: pid {}\n", status.pid));
    text
}

fn live_session(data: &Path) -> Result<SessionDir> {
    match open_recording(&RecordRoot::new(data)) {
        Open::Live(session) => Ok(session),
        Open::None => bail!("not recording: start with `devtrace record start --task \"…\"`"),
        Open::Orphaned(session) => bail!(
            "the recorder of session {} is not running: resume it with `devtrace record start --orphan resume` \
             (or store it with `devtrace record stop`)",
            short(&session.id())
        ),
    }
}

fn pause_or_resume(data: &Path, pause: bool, json: bool) -> Result<ExitCode> {
    let session = live_session(data)?;
    let request = if pause {
        Request::Pause
    } else {
        Request::Resume
    };
    ask(&session, &request)?;
    if json {
        crate::output::print_json(&json!({"paused": pause, "session": session.id()}))?;
        return Ok(ExitCode::SUCCESS);
    }
    eprintln_safe!(
        "{}",
        if pause {
            "devtrace: paused: nothing but notes is recorded until `devtrace record resume`"
        } else {
            "devtrace: recording again"
        }
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// note and exec

pub fn note(data: Option<&Path>, args: &NoteArgs) -> Result<ExitCode> {
    let text = args.text.join(" ");
    if text.trim().is_empty() {
        usage!("the note is empty: devtrace note \"what you are thinking\"");
    }
    let data = data_dir(data)?;
    let session = live_session(&data)?;
    let event = json!({
        "t": devtrace_record::timestamp(devtrace_record::now_nanos()),
        "type": "thought",
        "raw": text,
        "tags": args.tags,
    });
    ask(&session, &Request::Event { event })?;
    if args.json {
        crate::output::print_json(&json!({"recorded": true, "session": session.id()}))?;
    } else {
        eprintln_safe!("devtrace: noted in session {}", short(&session.id()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a command, its output passed through and a bounded copy kept; then records it.
fn exec(data: &Path, argv: &[String]) -> Result<ExitCode> {
    let session = match open_recording(&RecordRoot::new(data)) {
        Open::Live(session) => Some(session),
        _ => {
            eprintln_safe!("devtrace: not recording: running the command without recording it");
            None
        }
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let started = devtrace_record::now_nanos();
    let clock = Instant::now();
    let outcome = run_captured(argv, None, None, false);
    let duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
    if let Some(session) = session {
        let (stdout, stderr) = (bounded_text(&outcome.stdout), bounded_text(&outcome.stderr));
        let event = json!({
            "t": devtrace_record::timestamp(started),
            "type": "terminal_command",
            "cmd": argv[0],
            "args": argv[1..],
            "cwd": cwd,
            "exit_code": outcome.exit_code,
            "duration_ms": (duration_ms * 1000.0).round() / 1000.0,
            "stdout": stdout,
            "stderr": stderr,
            "captured": true,
        });
        match ask(&session, &Request::Event { event }) {
            Ok(response) if response.recorded == Some(false) => {
                eprintln_safe!("devtrace: recording is paused: the command was not recorded");
            }
            Ok(_) => {}
            Err(error) => {
                eprintln_safe!("devtrace: the command ran but was not recorded: {error:#}")
            }
        }
    }
    Ok(ExitCode::from(outcome.exit_code.clamp(0, 255) as u8))
}

/// A stream's bounded copy as text: the head and the tail, with what was left out between.
fn bounded_text(capture: &Capture) -> String {
    let head = capture.head_text();
    let tail = capture.tail_text();
    let kept = (head.len() + tail.len()) as u64;
    if capture.total > kept {
        format!(
            "{head}\n… [{} bytes not kept] …\n{tail}",
            capture.total - kept
        )
    } else {
        head + &tail
    }
}

struct Captured {
    exit_code: i64,
    stdout: Capture,
    stderr: Capture,
    tests: Option<devtrace_ingest::test_output::TestReport>,
    timed_out: bool,
}

/// Runs `argv` (in `dir`), streaming its output through and keeping a bounded copy, with an
/// optional time limit. With `quiet_stdout` its stdout goes to our stderr (stdout is data).
fn run_captured(
    argv: &[String],
    dir: Option<&Path>,
    limit: Option<Duration>,
    quiet_stdout: bool,
) -> Captured {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).stdin(Stdio::inherit());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let stdout_fd = if quiet_stdout {
        libc::STDERR_FILENO
    } else {
        libc::STDOUT_FILENO
    };
    let masters = attach_outputs(&mut command, stdout_fd);
    install_signal_handlers();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let (message, code) = spawn_failure(&argv[0], &error);
            let mut stderr = Capture::default();
            stderr.push(format!("{}: {message}\n", argv[0]).as_bytes());
            return Captured {
                exit_code: i64::from(code),
                stdout: Capture::default(),
                stderr,
                tests: None,
                timed_out: false,
            };
        }
    };
    set_child(child.id() as i32);
    drop(command);
    let parser = Arc::new(Mutex::new(TestOutputParser::new()));
    let (stdout_source, stderr_source) = output_sources(masters, &mut child);
    let stdout_sink: Box<dyn Write + Send> = if quiet_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let stdout = tee(stdout_source, stdout_sink, Arc::clone(&parser));
    let stderr = tee(stderr_source, std::io::stderr(), Arc::clone(&parser));
    let began = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(error) => break Err(error),
        }
        if let Some(limit) = limit
            && began.elapsed() > limit
            && !timed_out
        {
            timed_out = true;
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    set_child(0);
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let tests = Arc::try_unwrap(parser)
        .ok()
        .and_then(|p| p.into_inner().ok())
        .and_then(TestOutputParser::finish);
    let exit_code = match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => i64::from(code),
                (None, Some(signal)) => 128 + i64::from(signal),
                (None, None) => 1,
            }
        }
        Err(_) => 1,
    };
    Captured {
        exit_code,
        stdout,
        stderr,
        tests,
        timed_out,
    }
}

// ---------------------------------------------------------------------------------------------
// stop

fn stop_recording(data: &Path, target: &Target, args: &RecordStopArgs) -> Result<ExitCode> {
    let root = RecordRoot::new(data);
    let session = match open_recording(&root) {
        Open::None => {
            bail!("not recording: there is nothing to stop (start with `devtrace record start`)")
        }
        Open::Live(session) => {
            ask(&session, &Request::Stop)?;
            // The recorder exits once it has answered: wait for its lock to be free.
            let began = Instant::now();
            while session.recorder_alive() && began.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
            session
        }
        Open::Orphaned(session) => {
            eprintln_safe!(
                "devtrace: the recorder of session {} was not running; finishing it from its journal",
                short(&session.id())
            );
            session
        }
    };
    let summary = finish(data, target, &session, args, None)?;
    if args.json {
        crate::output::print_json(&summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Ends a recording whose recorder is gone: the final patch, the test results, the document,
/// into the store or to the server; then the recording's directory is removed. Returns a
/// summary.
fn finish(
    data: &Path,
    target: &Target,
    session: &SessionDir,
    args: &RecordStopArgs,
    ended: Option<u64>,
) -> Result<Value> {
    let meta = SessionMeta::read(&session.meta())
        .with_context(|| format!("cannot read {}", session.meta().display()))?;
    let ended = ended.unwrap_or_else(devtrace_record::now_nanos);
    let text = match std::fs::read(session.document()) {
        // Finished before but not stored (the server was down): send the same document.
        Ok(bytes) => bytes,
        Err(_) => {
            let contents = journal::read(&session.journal())
                .with_context(|| format!("cannot read {}", session.journal().display()))?;
            if contents.damaged > 0 {
                eprintln_safe!(
                    "devtrace: {} damaged lines in {} were skipped",
                    contents.damaged,
                    session.journal().display()
                );
            }
            let repo = Repo::discover(&meta.root)?;
            let commit = (!meta.task.commit.is_empty()).then_some(meta.task.commit.as_str());
            // The recorder kept the working tree staged as it watched it: a diff away. Else
            // (no watcher, lost events, a recorder that died) the whole tree is staged now.
            let staged = session.tree_index();
            let final_patch = if staged.is_file() {
                repo.staged_patch(commit, &staged)
            } else {
                repo.final_patch(commit, &session.path)
            }
            .context("cannot compute the final patch")?;
            let test_results = if meta.task.test_command.is_empty() || args.no_test {
                None
            } else {
                Some(run_tests(&meta, args.test_timeout))
            };
            let document = document::assemble(
                &meta,
                &contents,
                &Ending {
                    ended,
                    final_patch: Some(final_patch),
                    test_results,
                },
            );
            let bytes = serde_json::to_vec(&document).expect("documents serialise");
            devtrace_record::layout::write_atomically(&session.document(), &bytes)
                .with_context(|| format!("cannot write {}", session.document().display()))?;
            bytes
        }
    };
    if let Some(output) = &args.output {
        std::fs::write(output, &text)
            .with_context(|| format!("cannot write {}", output.display()))?;
    }
    let document: Value = serde_json::from_slice(&text).context("the finished document")?;
    let server = target
        .server
        .clone()
        .or_else(|| meta.options.server.clone());
    let destination = match &server {
        Some(url) => {
            send_to_server(target, url, &text)?;
            format!("sent to {url}")
        }
        None => {
            let redactor = crate::config::default_redaction()?;
            super::import::import_trace_document(&target.store, &text, redactor).with_context(
                || {
                    format!(
                        "the document is kept in {}; `devtrace record stop` tries again",
                        session.document().display()
                    )
                },
            )?;
            format!("stored in {}", target.store_name(data))
        }
    };
    // Stored: the recording's working files go (they hold unredacted file snapshots).
    let root = RecordRoot::new(data);
    if root.active().is_some_and(|a| a.path == session.path) {
        root.clear_active()?;
    }
    std::fs::remove_dir_all(&session.path)
        .with_context(|| format!("cannot remove {}", session.path.display()))?;
    let summary = summary(&document, &destination);
    crate::output::print_stderr(&summary_text(&summary));
    Ok(summary)
}

fn run_tests(meta: &SessionMeta, limit_nanos: u64) -> TestResults {
    let command = &meta.task.test_command;
    eprintln_safe!("devtrace: running the test command for the results: {command}");
    let began = Instant::now();
    let argv = vec!["sh".to_owned(), "-c".to_owned(), command.clone()];
    let outcome = run_captured(
        &argv,
        Some(&meta.root),
        Some(Duration::from_nanos(limit_nanos)),
        true,
    );
    if outcome.timed_out {
        eprintln_safe!(
            "devtrace: the test command took longer than {} s and was stopped",
            limit_nanos / 1_000_000_000
        );
    }
    let (passed, failed, skipped, runner) = match &outcome.tests {
        Some(report) => (
            report.passed,
            report.failed,
            report.skipped,
            report.runner.as_str().to_owned(),
        ),
        None => (0, 0, 0, String::new()),
    };
    TestResults {
        command: command.clone(),
        exit_code: outcome.exit_code,
        passed,
        failed,
        skipped,
        runner,
        duration_ms: began.elapsed().as_millis() as u64,
    }
}

fn summary(document: &Value, destination: &str) -> Value {
    let events = document["events"].as_array().cloned().unwrap_or_default();
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    let patch = document["artifacts"]["final_patch"].as_str().unwrap_or("");
    let files = patch
        .lines()
        .filter(|l| l.starts_with("diff --git "))
        .count();
    let added = patch
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .count();
    let removed = patch
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .count();
    json!({
        "session": document["trace_id"],
        "task": document["task"]["description"],
        "destination": destination,
        "events": events.len(),
        "commands": count("terminal_command"),
        "edits": count("edit"),
        "notes": count("thought"),
        "editor_events": count("file_opened") + count("go_to_definition") + count("find_references"),
        "final_patch": {"files": files, "lines_added": added, "lines_removed": removed},
        "test_results": document["artifacts"].get("test_results").cloned().unwrap_or(Value::Null),
    })
}

/// `value[key]` as "1 note" / "2 notes" (`many` is the key with `_` read as a space).
fn counted_field(value: &Value, key: &str, one: &str) -> String {
    counted(
        value[key].as_u64().unwrap_or(0),
        one,
        &key.replace('_', " "),
    )
}

fn summary_text(summary: &Value) -> String {
    let id = summary["session"].as_str().unwrap_or("");
    let mut text = format!(
        "devtrace: session {} {}: {}, {}, {}, {}\n",
        short(id),
        summary["destination"].as_str().unwrap_or(""),
        counted_field(summary, "commands", "command"),
        counted_field(summary, "edits", "edit"),
        counted_field(summary, "notes", "note"),
        counted_field(summary, "editor_events", "editor event"),
    );
    let patch = &summary["final_patch"];
    text.push_str(&format!(
        "  final patch: {} (+{} −{})\n",
        counted_field(patch, "files", "file"),
        patch["lines_added"],
        patch["lines_removed"]
    ));
    if let Some(results) = summary["test_results"].as_object() {
        let runner = results.get("runner").and_then(Value::as_str).unwrap_or("");
        if runner.is_empty() {
            text.push_str(&format!(
                "  tests: exit code {} (no test summary recognised)\n",
                results["exit_code"]
            ));
        } else {
            text.push_str(&format!(
                "  tests: {} passed, {} failed (exit code {})\n",
                results["passed"], results["failed"], results["exit_code"]
            ));
        }
    }
    if summary["destination"]
        .as_str()
        .is_some_and(|d| d.starts_with("stored"))
    {
        text.push_str(&format!("  see it: devtrace session show {}\n", short(id)));
    }
    text
}

/// POST /api/v1/sessions on a devtrace server, once (a document sent twice is stored
/// twice), over http or https through devtrace-client.
fn send_to_server(target: &Target, url: &str, body: &[u8]) -> Result<()> {
    let url = devtrace_client::ServerUrl::parse(url).map_err(|e| anyhow!(e.0))?;
    let options = crate::remote::options(target.token.as_deref(), None, target.ca_cert.as_deref());
    let client = devtrace_client::Client::new(url, options)?;
    let path = "/api/v1/sessions";
    let reply = client.post_json(path, body)?;
    if !reply.is_success() {
        return Err(client.status_error(path, &reply).into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// record -- COMMAND

/// Starts a recording, runs the command (a shell gets the integration without editing its
/// start-up files), and stops when it exits. The exit code is the command's.
fn record_command(
    data: &Path,
    target: &Target,
    start: &RecordStartArgs,
    argv: &[String],
    capture: bool,
) -> Result<ExitCode> {
    if capture && !std::io::stdin().is_terminal() {
        bail!(
            "--capture needs a terminal: it runs {} on a terminal of its own and shows it on yours",
            argv[0]
        );
    }
    let session = start_recording(data, target, start, capture)?;
    let id = session.id();
    let mut command = shell_command(data, &session, argv)?;
    command.env(shell::SCOPE_VARIABLE, &id);
    eprintln_safe!(
        "devtrace: running {}{}; the recording stops when it exits",
        argv.join(" "),
        if capture {
            " with its output captured"
        } else {
            ""
        }
    );
    install_signal_handlers();
    let status = if capture {
        command.env(shell::CAPTURE_VARIABLE, "1");
        super::record_terminal::run(command, &session)
    } else {
        command.status()
    };
    let code = match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => code,
                (None, Some(signal)) => 128 + signal,
                _ => 1,
            }
        }
        Err(error) => {
            eprintln_safe!("devtrace: cannot run {}: {error}", argv[0]);
            127
        }
    };
    stop_recording(data, target, &RecordStopArgs::defaults())?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// The command to run; a bare bash, zsh or fish gets the shell integration added after its own
/// start-up files.
fn shell_command(data: &Path, session: &SessionDir, argv: &[String]) -> Result<Command> {
    let record_root = RecordRoot::new(data).path;
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    if argv.len() != 1 {
        return Ok(command);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    match Shell::parse(&argv[0]) {
        Some(Shell::Bash) if argv[0].ends_with("bash") => {
            let rc = session.path.join("bashrc");
            std::fs::write(
                &rc,
                format!(
                    "[ -f ~/.bashrc ] && . ~/.bashrc\n{}",
                    shell::init_script(Shell::Bash, &record_root)
                ),
            )?;
            command.arg("--rcfile").arg(rc).arg("-i");
        }
        Some(Shell::Zsh) => {
            let dot = session.path.join("zdotdir");
            std::fs::create_dir_all(&dot)?;
            let original = std::env::var("ZDOTDIR").unwrap_or(home);
            std::fs::write(
                dot.join(".zshenv"),
                "[ -f \"$__devtrace_zdotdir/.zshenv\" ] && . \"$__devtrace_zdotdir/.zshenv\"\n",
            )?;
            std::fs::write(
                dot.join(".zshrc"),
                format!(
                    "ZDOTDIR=$__devtrace_zdotdir\n[ -f \"$ZDOTDIR/.zshrc\" ] && . \"$ZDOTDIR/.zshrc\"\n{}",
                    shell::init_script(Shell::Zsh, &record_root)
                ),
            )?;
            command
                .env("ZDOTDIR", &dot)
                .env("__devtrace_zdotdir", original);
        }
        Some(Shell::Fish) => {
            let init = session.path.join("init.fish");
            std::fs::write(&init, shell::init_script(Shell::Fish, &record_root))?;
            command
                .arg("--init-command")
                .arg(format!("source '{}'", init.display()));
        }
        _ => {}
    }
    Ok(command)
}

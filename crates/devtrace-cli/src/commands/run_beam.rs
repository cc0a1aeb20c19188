//! `devtrace run --record` for Erlang and Elixir programs: the VM's own flags start devtrace's
//! BEAM runtime in every VM the command starts (`ERL_LIBS` names the runtime's directory,
//! `ERL_AFLAGS` adds `-s devtrace_beam start`; docs/beam.md), each VM writes its processes'
//! calls, messages and lifecycle into a recorder file of its own, and this module reads the
//! files *while the program runs* (so a lossless writer whose ring is full waits for us, not
//! for a process in the VM) and once more after it ended, however it ended (a VM killed by
//! SIGKILL leaves its file whole). devtrace-recorder's BEAM reader and builder turn the records
//! into spans, sent to the run's receiver as OTLP like any SDK's: processes are threads
//! (`thread.name`), a message's receive links to its send (`devtrace.link.kind` `message`), a
//! GenServer callback carries the server's state before and after it (`devtrace.beam.state.*`).
//!
//! That is the lossless mode (`--record-seconds 0`). The default is the flight recorder: the VMs
//! overwrite their oldest records, nothing reads the files while the program runs, and each
//! VM's last seconds are read once it has ended ([`read_window`]: the window's processes are
//! named and placed as in a whole recording, and a `devtrace.flight_window` span says its extent).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use devtrace_ingest::otlp::common::v1::KeyValue as ProtoKeyValue;
use devtrace_ingest::otlp::trace::v1::{Span, Status, span};
use devtrace_model::recorded::quote;
use devtrace_model::{AnyValue, KeyValue, semconv};
use devtrace_recorder::beam::{self, BeamReader, PROCESS_CODE, RECEIVE_CODE};
use devtrace_recorder::clock::ClockPair;
use devtrace_recorder::names::HotFunction;
use devtrace_recorder::ring::{Cursor, RecorderFile, StreamEvents};
use devtrace_recorder::{Builder, BuilderOptions, Names, OutSpan};

use super::otlp_export::{post_traces, to_proto};

/// The start of the name of a run's directory of VM files, followed by the run's pid (`devtrace
/// recover` looks into those of runs that are gone).
pub const RUN_DIR_PREFIX: &str = "devtrace-beam-";
/// Overrides where the runtime is (a directory holding `devtrace_beam/ebin`).
pub const LIB_VAR: &str = "DEVTRACE_BEAM_LIB";
/// How often the recorder files are read while the program runs.
const READ_EVERY: Duration = Duration::from_millis(10);
/// Records stamped this long before a pass began are the ones put in order in it
/// (`BeamReader::split_before`); later ones wait for the next. The records' stamps are the
/// time-stamp counter's, turned into the monotonic clock's by a measured rate: this is room for
/// that rate's error.
const HELD_BACK_NS: u64 = 20_000_000;
/// A wait in `receive` shorter than this that no recorded send ended is left out.
const SHORT_WAIT_NS: u64 = 1_000_000;
/// Spans a request carries.
const SPANS_PER_REQUEST: usize = 2000;
/// Commands that are a BEAM VM (a missing runtime is worth a word only for them).
const BEAM_PROGRAMS: [&str; 6] = ["erl", "elixir", "iex", "mix", "escript", "elixirc"];

pub const ARGUMENTS: &str = "devtrace.call.arguments";
pub const RETURN: &str = "devtrace.call.return";
pub const EXCEPTION: &str = "devtrace.call.exception";
pub const EXIT_REASON: &str = "devtrace.beam.exit_reason";
/// A GenServer's state when a callback began and when it returned (docs/beam.md).
pub const STATE_BEFORE: &str = "devtrace.beam.state.before";
pub const STATE_AFTER: &str = "devtrace.beam.state.after";
pub const OPEN: &str = "devtrace.recorder.open";
/// The process a call to another process called (its registered name or pid), beside
/// `rpc.service`, the service it is.
pub const PEER: &str = "devtrace.beam.peer";
/// A call out of the recording ([`beam::outside`]): how long it waited for messages no
/// recorded process sent (a port's, a process left out of the recording).
pub const WAITED_OUTSIDE_NS: &str = "devtrace.beam.waited_outside_ns";
/// The function a call out of the recording stands for: its own, or the one that tail-called
/// the helper making it (`fetch_orders/2` for its `defp get/2`).
pub const CALL_OUT_FUNCTION: &str = "devtrace.beam.call_out.function";
/// A call to another process whose wait for the reply timed out: how long the caller waited
/// (milliseconds), whether it caught the exit or not (docs/beam.md).
pub const CALL_TIMED_OUT_MS: &str = "devtrace.beam.call.timed_out_ms";
/// A function that ended in a tail call: the next span of its process under the same parent
/// is the call it made, the rest of its work (a GenServer callback's helper, docs/beam.md).
pub const TAIL_CALL: &str = "devtrace.beam.tail_call";
/// The plan a span was recorded by (`devtrace run --plan`; the Python recorder's attribute).
pub const PLAN_ID: &str = "devtrace.plan.id";
/// A span a flight window begins inside of: its start is the window's (the Python recorder's).
pub const BEFORE_WINDOW: &str = "devtrace.recorder.started_before_window";

/// A recording of the BEAM VMs a command starts.
pub struct BeamRecording {
    /// The command is a BEAM program (`elixir`, `mix`, `erl`, …), not one that may start one.
    beam_program: bool,
    lib: PathBuf,
    dir: PathBuf,
    mib: u64,
    /// The flight recorder's window (`--record-seconds`); 0: lossless, followed while it runs.
    seconds: f64,
    root: (u128, u64),
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<Vec<Recorded>>>,
    /// Under `devtrace run --plan`: the plan's file for the VMs and the plan's id.
    plan: Option<(PathBuf, String)>,
    /// `--instrument`: probes compiled into the program's modules rather than trace flags.
    instrument: bool,
}

/// What one VM's file gave.
pub(super) struct Recorded {
    pub(super) pid: u32,
    pub(super) spans: RecordedSpans,
    pub(super) events: u64,
    pub(super) lost: u64,
    /// Value summaries the names log had no room left for (lossless mode).
    pub(super) texts_not_kept: u64,
    /// Functions called too often to trace call by call, by span name, with what made them
    /// hot (the runtime stopped tracing them: devtrace_beamrecorder's `hot`).
    pub(super) hot_functions: Vec<(String, HotFunction)>,
    pub(super) processes: usize,
    /// A flight recorder's window (None: a lossless recording).
    pub(super) window: Option<WindowExtent>,
}

/// A VM's spans as built from its file, made into OTLP a request at a time as they are sent:
/// all of a large recording's at once were most of devtrace's memory (≈ 1.2 KiB a span).
pub(super) struct RecordedSpans {
    built: Vec<OutSpan>,
    names: Names,
    texts: Texts,
    created: ClockPair,
    /// Spans made whole already (a flight window's own).
    made: Vec<Span>,
    /// Attributes every span gets (a plan's id).
    marks: Vec<ProtoKeyValue>,
}

impl RecordedSpans {
    pub(super) fn len(&self) -> usize {
        self.built.len() + self.made.len()
    }

    pub(super) fn push(&mut self, span: Span) {
        self.made.push(span);
    }

    /// Gives every span `attributes` too.
    fn mark(&mut self, attributes: Vec<ProtoKeyValue>) {
        self.marks.extend(attributes);
    }

    /// The spans in OTLP, each made as it is taken.
    pub(super) fn into_spans(self) -> impl Iterator<Item = Span> {
        let RecordedSpans {
            built,
            names,
            texts,
            created,
            made,
            marks,
        } = self;
        let unix = move |mono: u64| created.to_unix(mono);
        built
            .into_iter()
            .map(move |s| to_span(&s, &names, &texts, &unix))
            .chain(made)
            .map(move |mut span| {
                span.attributes.extend(marks.iter().cloned());
                span
            })
    }
}

/// One VM's file as it is read.
struct Followed {
    file: RecorderFile,
    cursor: Cursor,
    reader: BeamReader,
    builder: Builder,
}

impl BeamRecording {
    /// The recording of `program`'s VMs, when the runtime is built; otherwise a note (for a
    /// BEAM program) of what to do.
    pub fn prepare(
        program: &str,
        (mib, seconds): (u64, f64),
        root: (u128, u64),
    ) -> Result<Option<BeamRecording>, String> {
        let Some(lib) = runtime_dir() else {
            let name = Path::new(program).file_name().map(|n| n.to_string_lossy());
            return match name {
                Some(name) if BEAM_PROGRAMS.contains(&name.as_ref()) => Err(format!(
                    "devtrace: --record: the BEAM runtime is not built, so {} is not recorded: run scripts/build-beam (or set {LIB_VAR} to its directory)",
                    devtrace_model::recorded::quote(&name)
                )),
                _ => Ok(None),
            };
        };
        let dir = files_dir(
            mib,
            &format!("{RUN_DIR_PREFIX}{}-{:x}", std::process::id(), root.1),
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        // A flight recording is read once, when the VMs have ended: no reader takes a core.
        let reader = (seconds <= 0.0)
            .then(|| {
                let (dir, stop) = (dir.clone(), Arc::clone(&stop));
                std::thread::Builder::new()
                    .name("devtrace-beam-reader".into())
                    .spawn(move || follow(&dir, &stop, root))
                    .ok()
            })
            .flatten();
        let beam_program = Path::new(program)
            .file_name()
            .is_some_and(|n| BEAM_PROGRAMS.contains(&n.to_string_lossy().as_ref()));
        Ok(Some(BeamRecording {
            beam_program,
            lib,
            dir,
            mib,
            seconds: seconds.max(0.0),
            root,
            stop,
            reader,
            plan: None,
            instrument: false,
        }))
    }

    /// Records only a plan's functions and message flows: `terms` is its file for the VMs
    /// (devtrace_plan::beam::plan_terms), passed as `DEVTRACE_BEAM_PLAN`; its spans are marked
    /// with the plan's id.
    pub fn plan(&mut self, id: &str, terms: &str) -> Result<(), String> {
        let path = self.dir.join("plan.terms");
        std::fs::write(&path, terms)
            .map_err(|e| format!("devtrace: --plan: cannot write {}: {e}", path.display()))?;
        self.plan = Some((path, id.to_owned()));
        Ok(())
    }

    /// With `yes`, the VMs compile probes into the program's modules (devtrace_beam_instrument)
    /// rather than trace their calls and messages.
    pub fn instrument(&mut self, yes: bool) {
        self.instrument = yes;
    }

    /// The child's variables: the runtime on `ERL_LIBS`, started by `ERL_AFLAGS`, writing into
    /// our directory.
    pub fn environment(&self) -> Vec<(String, String)> {
        let prepend = |var: &str, value: String, sep: &str| match std::env::var(var) {
            Ok(existing) if !existing.is_empty() => format!("{value}{sep}{existing}"),
            _ => value,
        };
        let aflags = match std::env::var("ERL_AFLAGS") {
            Ok(existing) if !existing.is_empty() => format!("{existing} -s devtrace_beam start"),
            _ => "-s devtrace_beam start".to_owned(),
        };
        vec![
            (
                "ERL_LIBS".to_owned(),
                prepend("ERL_LIBS", self.lib.display().to_string(), ":"),
            ),
            ("ERL_AFLAGS".to_owned(), aflags),
            (
                "DEVTRACE_BEAM_DIR".to_owned(),
                self.dir.display().to_string(),
            ),
            ("DEVTRACE_BEAM_MIB".to_owned(), self.mib.to_string()),
            (
                "DEVTRACE_BEAM_LOSSLESS".to_owned(),
                if self.seconds > 0.0 { "0" } else { "1" }.to_owned(),
            ),
            (
                "DEVTRACE_BEAM_SECONDS".to_owned(),
                (self.seconds.ceil() as u64).to_string(),
            ),
        ]
        .into_iter()
        .chain(
            self.plan
                .as_ref()
                .map(|(path, _)| ("DEVTRACE_BEAM_PLAN".to_owned(), path.display().to_string())),
        )
        .chain(
            self.instrument
                .then(|| ("DEVTRACE_BEAM_INSTRUMENT".to_owned(), "1".to_owned())),
        )
        .collect()
    }

    /// Reads what the VMs wrote last, sends the spans to `endpoint` as part of run `run_id`,
    /// removes the files; returns a line for the user when a VM was recorded (and whether one
    /// was).
    pub fn finish(mut self, endpoint: &str, run_id: &str, service: &str) -> (Option<String>, bool) {
        self.stop.store(true, Ordering::Release);
        let recorded = if self.seconds > 0.0 {
            read_windows(&self.dir, self.seconds, self.root)
        } else {
            self.reader
                .take()
                .and_then(|r| r.join().ok())
                .unwrap_or_default()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        if recorded.is_empty() {
            // A BEAM program whose VM stopped before the runtime started (it failed to boot,
            // or `-s`/`-eval` ended it first): say so, not the Python recorder's note.
            let note = self.beam_program.then(|| {
                "devtrace: --record: no BEAM VM started by the command opened its recorder file (did the VM stop before it booted? see its messages above)".to_owned()
            });
            return (note, self.beam_program);
        }
        let mut notes = Vec::new();
        for mut vm in recorded {
            if let Some((_, id)) = &self.plan {
                vm.spans
                    .mark(to_proto(&[KeyValue::new(PLAN_ID, id.clone())]));
            }
            let sent = send(endpoint, run_id, service, vm.spans);
            let window = vm.window;
            notes.push(match sent {
                Ok(n) if let Some(window) = window => format!(
                    "devtrace: --record: BEAM VM {} recorded: {} of the program, {} events ({} lost), {n} spans: its last {:.2} s{} (flight recorder; --record-seconds 0 keeps all)",
                    vm.pid, crate::output::processes(vm.processes as u64), vm.events, vm.lost, window.seconds,
                    window.reached_back.map_or(String::new(), |back| format!(", and {back:.2} s back for a call still waiting"))
                ),
                Ok(n) => format!(
                    "devtrace: --record: BEAM VM {} recorded: {} of the program, {} events ({} lost), {n} spans",
                    vm.pid, crate::output::processes(vm.processes as u64), vm.events, vm.lost
                ),
                Err(error) => format!(
                    "devtrace: --record: could not send BEAM VM {}'s spans: {error:#}",
                    vm.pid
                ),
            });
            if vm.texts_not_kept > 0 {
                notes.push(texts_not_kept_note(vm.pid, vm.texts_not_kept, self.mib));
            }
            if !vm.hot_functions.is_empty() {
                notes.push(hot_functions_note(vm.pid, &vm.hot_functions));
            }
        }
        (Some(notes.join("\n")), true)
    }
}

/// What a lossless recording lacks when its names log filled up: the later calls' values.
fn texts_not_kept_note(pid: u32, count: u64, mib: u64) -> String {
    format!(
        "devtrace: --record: BEAM VM {pid}: {count} value summaries not kept (arguments, results, states): the recording's names log was full, so later calls lack them; --record-mib {} keeps twice as many",
        // 1/32 of the file holds them, 128 KiB at least (4 MiB's share).
        mib.max(4).saturating_mul(2)
    )
}

/// Which functions' calls a VM stopped tracing one by one, and why: their time is in their
/// callers' spans, and an environment variable records them all.
fn hot_functions_note(pid: u32, hot: &[(String, HotFunction)]) -> String {
    format!(
        "devtrace: --record: BEAM VM {pid}: {}",
        hot_functions_text(hot)
    )
}

/// What [`hot_functions_note`] says of them (also `devtrace recover`'s, for a file a VM left).
pub(super) fn hot_functions_text(hot: &[(String, HotFunction)]) -> String {
    let mut named = hot
        .iter()
        .take(5)
        .map(|(name, _)| quote(name))
        .collect::<Vec<_>>()
        .join(", ");
    if hot.len() > 5 {
        named.push_str(&format!(" and {} more", hot.len() - 5));
    }
    let (calls, window_ms) = hot.first().map_or((0, 0), |(_, h)| (h.calls, h.window_ms));
    let each = if hot.len() > 1 { " each" } else { "" };
    format!(
        "later calls of {named} not traced one by one, after {calls} calls within {window_ms} ms{each} (tracing a call that short costs more than the call): their time is in their callers' spans; DEVTRACE_BEAM_HOT_CALLS=0 traces every call"
    )
}

/// The directory `name` the VMs' files go in, made: in `/dev/shm` when it has room for a few
/// of them (in memory: no writeback of the pages the rings touch, and the NIF makes them
/// present ahead of the writers), else in the temporary directory (a container's `/dev/shm`
/// is often 64 MiB).
fn files_dir(mib: u64, name: &str) -> Result<PathBuf, String> {
    let shm = Path::new("/dev/shm");
    let room = devtrace_recorder::ring::free_bytes_in(shm) >> 20;
    if room >= mib.saturating_mul(4) && std::fs::create_dir(shm.join(name)).is_ok() {
        return Ok(shm.join(name));
    }
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("devtrace: --record: cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Where the runtime is: `$DEVTRACE_BEAM_LIB`, else `beam` beside the directory of devtrace's
/// binary (`target/beam` for `target/debug/devtrace`, where scripts/build-beam puts it).
fn runtime_dir() -> Option<PathBuf> {
    let has_runtime = |dir: &Path| dir.join("devtrace_beam/ebin/devtrace_beam.beam").is_file();
    if let Some(dir) = std::env::var_os(LIB_VAR) {
        return Some(PathBuf::from(dir)).filter(|d| has_runtime(d));
    }
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("beam");
    has_runtime(&candidate).then_some(candidate)
}

/// The reader thread: follows every recorder file that appears in `dir` until told to stop,
/// then reads each once more and builds what is left.
fn follow(dir: &Path, stop: &AtomicBool, root: (u128, u64)) -> Vec<Recorded> {
    let mut files: HashMap<PathBuf, Followed> = HashMap::new();
    loop {
        let last = stop.load(Ordering::Acquire);
        discover(dir, &mut files, root);
        // The last pass reads what the VM left: all of it in order.
        let before = if last {
            u64::MAX
        } else {
            devtrace_recorder::clock::monotonic_ns().saturating_sub(HELD_BACK_NS)
        };
        for f in files.values_mut() {
            for process in f.reader.split_before(&f.cursor.read(&f.file, None), before) {
                f.builder.feed(&process, &|_| None);
            }
        }
        if last {
            break;
        }
        std::thread::sleep(READ_EVERY);
    }
    files.into_values().map(finish_file).collect()
}

fn discover(dir: &Path, files: &mut HashMap<PathBuf, Followed>, root: (u128, u64)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if files.contains_key(&path) || path.extension().is_none_or(|e| e != "ring") {
            continue;
        }
        // A file still being created fails to open: the next pass tries again.
        if let Ok(file) = RecorderFile::open(&path) {
            let seed = rand_seed(&path);
            files.insert(
                path,
                Followed {
                    file,
                    cursor: Cursor::new(),
                    reader: BeamReader::new(),
                    builder: Builder::new(BuilderOptions {
                        threshold_ns: 0,
                        root: Some(root),
                        seed,
                        ..Default::default()
                    }),
                },
            );
        }
    }
}

pub(super) fn rand_seed(path: &Path) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut h = nanos ^ 0x9E37_79B9_7F4A_7C15;
    for b in path.as_os_str().as_encoded_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01B3);
    }
    h | 1
}

fn finish_file(mut f: Followed) -> Recorded {
    // A process blocked when the VM ended (halted with it, or killed) wrote nothing more: its
    // open calls ran until the VM's last sign of life, its last heartbeat or the last record
    // any process wrote.
    let alive = f.file.info().heartbeat_ns.max(f.builder.last_record());
    f.builder.finish_open_alive_until(alive);
    let mut out = f.builder.take_spans();
    for s in &mut out {
        // A window's frames rebuilt at its start; a life the window ended inside of.
        s.started_before_window |= f.reader.started_before_window(s.stream, s.code, s.start);
        s.open |= s.code == PROCESS_CODE && !f.reader.exited(s.stream);
    }
    let names = Names::read(&f.file);
    let hot_functions = hot_functions(&names);
    // The processes `init:stop` killed were running when the VM stopped, not failing.
    let stopping = f.file.info().stopping_ns;
    beam::vm_stop::stopped_with_the_vm(&mut f.reader, &mut out, &names, stopping);
    let mut values = beam::read_values(&f.file);
    values.extend(f.reader.take_inline_values());
    // A traced loop's turns one after another, as the program runs them (docs/beam.md).
    let mut states = beam::read_states(&f.file);
    beam::tail_calls::flatten(&mut out, &names, &values, &states);
    beam::tail_calls::returns_through_tail_calls(&mut out, &values, &mut states);
    // Links, the supervision tree, exits' causes, state machines' states (docs/beam.md).
    let mut annotations = beam::annotate(
        &f.reader,
        &mut out,
        &beam::Texts {
            names: &names,
            values: &values,
            statem_states: &beam::read_statem_states(&f.file),
        },
    );
    beam::hot::mark_hot_functions(&out, &names, &mut annotations);
    let info = f.file.info();
    let lost = f.builder.lost + f.reader.unattributed;
    // A call made from a proxy process (OTP 25's gen_statem:call/3 with a timeout) is its
    // spawner's (docs/beam.md).
    let mut call_timeouts = f.reader.call_timeouts();
    beam::relays::fold_relays(&mut out, &mut call_timeouts);
    let (out, processes) = the_programs_processes(out);
    let (out, outside) = shown_with_calls_out(out, &names, &f.reader.timeouts());
    let peers = calls_to_processes(&out, &names, &values, &annotations, &call_timeouts);
    let texts = Texts {
        values,
        states,
        peers,
        outside,
        annotations,
    };
    Recorded {
        pid: info.pid,
        spans: RecordedSpans {
            built: out,
            names,
            texts,
            created: info.created,
            made: Vec::new(),
            marks: Vec::new(),
        },
        events: f.builder.events,
        lost,
        texts_not_kept: f.file.texts_not_kept(),
        hot_functions,
        processes,
        window: None,
    }
}

/// The hot functions the names log holds, by span name, in name order.
fn hot_functions(names: &Names) -> Vec<(String, HotFunction)> {
    let mut hot: Vec<(String, HotFunction)> = names
        .hot_functions
        .iter()
        .filter_map(|(code, h)| Some((names.codes.get(code)?.span_name(), *h)))
        .collect();
    hot.sort_by(|a, b| a.0.cmp(&b.0));
    hot
}

/// The spans of the processes that ran the program's code (a recorded function): the VM's and
/// libraries' own processes (a logger, Elixir's code server) exchange messages with the program
/// but are not it. Links to the spans left out are left out too. Also: how many processes stay.
fn the_programs_processes(spans: Vec<OutSpan>) -> (Vec<OutSpan>, usize) {
    use std::collections::HashSet;
    let programs: HashSet<u64> = spans
        .iter()
        .filter(|s| !matches!(s.code, PROCESS_CODE | RECEIVE_CODE))
        .map(|s| s.stream)
        .collect();
    let mut kept: Vec<OutSpan> = spans
        .into_iter()
        .filter(|s| programs.contains(&s.stream))
        .collect();
    let ids: HashSet<u64> = kept.iter().map(|s| s.span_id).collect();
    for s in &mut kept {
        s.links.retain(|l| ids.contains(&l.span_id));
    }
    (kept, programs.len())
}

/// The calls out of the recording in `spans` ([`calls_out`]), and `spans` without their short
/// waits ([`without_short_waits`]): in that order, as every wait of a call out counts, however
/// short (a port answers in pieces: a fast `wc -l` in two waits under 1 ms each).
fn shown_with_calls_out(
    spans: Vec<OutSpan>,
    names: &Names,
    timeouts: &std::collections::HashSet<(u64, u64)>,
) -> (Vec<OutSpan>, HashMap<u64, CallOut>) {
    let outside = calls_out(&spans, names, timeouts);
    (without_short_waits(spans), outside)
}

/// `spans` without the short waits ended by no message of the program (a reply of the VM's own
/// processes, a message that came while the process was busy): they say nothing, and their time
/// stays their parent's.
fn without_short_waits(mut spans: Vec<OutSpan>) -> Vec<OutSpan> {
    spans.retain(|s| {
        s.code != RECEIVE_CODE || !s.links.is_empty() || s.end - s.start >= SHORT_WAIT_NS
    });
    spans
}

/// The name of a function, a process's life or a wait.
fn span_name(code: u32, process: &str, names: &Names) -> String {
    match code {
        PROCESS_CODE => format!("process {process}"),
        RECEIVE_CODE => "receive".to_owned(),
        code => names
            .codes
            .get(&code)
            .map_or_else(|| format!("function {code}"), |c| c.span_name()),
    }
}

/// The summaries of a VM's file: values by id, GenServer states by their value's id; and the
/// process each call to another process went to, by span id.
struct Texts {
    values: HashMap<u32, String>,
    states: HashMap<u32, String>,
    peers: HashMap<u64, Peer>,
    /// The calls out of the recording ([`beam::outside`]), by span id.
    outside: HashMap<u64, CallOut>,
    annotations: beam::Annotations,
}

/// A call out of the recording ([`beam::outside`]).
struct CallOut {
    /// Its time waiting for messages no recorded process sent.
    waited_ns: u64,
    /// The function it stands for: the one that tail-called the helper making it, or called
    /// it alone ([`beam::asking`]), else its own.
    function: String,
}

/// The calls out of the recording in `spans` ([`beam::outside`]), by span id.
fn calls_out(
    spans: &[OutSpan],
    names: &Names,
    timeouts: &std::collections::HashSet<(u64, u64)>,
) -> HashMap<u64, CallOut> {
    let asking = beam::asking::AskingFunctions::new(spans, names);
    let codes: HashMap<u64, u32> = spans.iter().map(|s| (s.span_id, s.code)).collect();
    beam::outside::calls_out(spans, timeouts)
        .into_iter()
        .map(|(span, waited_ns)| {
            let own = || span_name(codes[&span], "", names);
            let function = asking.outermost(span).unwrap_or_else(own);
            (
                span,
                CallOut {
                    waited_ns,
                    function,
                },
            )
        })
        .collect()
}

/// The calls from one process to another ([`beam::calls`]), with the called process
/// ([`Peer`]).
fn calls_to_processes(
    spans: &[OutSpan],
    names: &Names,
    values: &HashMap<u32, String>,
    annotations: &beam::Annotations,
    timeouts: &std::collections::HashSet<(u64, u64)>,
) -> HashMap<u64, Peer> {
    let initial_calls = life_texts(spans, annotations, beam::INITIAL_CALL);
    let loops = beam::calls::loop_functions(spans);
    // A supervisor calls its children's start functions again and again: no loop of its own.
    let loop_module = |stream| {
        let supervisor = initial_calls.get(&stream) == Some(&"supervisor:init/1");
        let code = names
            .codes
            .get(loops.get(&stream).filter(|_| !supervisor)?)?;
        beam::function_names::module_of(code).map(str::to_owned)
    };
    let timed_out = beam::calls::timed_out_calls(spans, timeouts);
    let answered = beam::calls::calls_to_processes(spans, &annotations.requests);
    let tasks = beam::calls::tasks_work(spans, &answered, |code| {
        let name = names.codes.get(&code).map(|c| c.span_name());
        name.is_some_and(|n| beam::function_names::enclosing_function(&n).is_some())
    });
    // Calls made inline (`gen_server:call/2` in a function doing more): the wait is the call,
    // named by what was asked.
    // And those given up on (`try gen_server:call(S, R, 100) catch exit:{timeout, _} …`).
    let replies =
        beam::inline_calls::Replies::new(spans, values).without_requests(&annotations.requests);
    let mut inline = replies.inline_calls(&answered);
    let mut given_up: Vec<_> = timed_out.into_iter().collect();
    let wrappers_given_up: std::collections::HashSet<u64> =
        given_up.iter().map(|(span, _)| *span).collect();
    let inline_given_up =
        replies.timed_out_inline_calls(|function| wrappers_given_up.contains(&function), timeouts);
    for (span, (call, waited)) in inline_given_up {
        given_up.push((span, (call.called.process, waited)));
        inline.insert(span, call);
    }
    let made_by_compiler = compiler_made_calls(spans, names, &replies, &answered);
    let answered = answered
        .into_iter()
        .chain(inline.iter().map(|(&span, call)| (span, call.called)))
        .map(|(span, called)| (span, (called.process, None)));
    let given_up = given_up
        .into_iter()
        .map(|(span, (stream, waited))| (span, (stream, Some(waited))));
    let asking = beam::asking::AskingFunctions::new(spans, names);
    let mut calls: HashMap<u64, (u64, Option<u64>)> = answered.collect();
    for (span, (stream, waited)) in given_up {
        calls.entry(span).or_insert((stream, None)).1 = waited;
    }
    calls
        .into_iter()
        .filter_map(|(span, (stream, timed_out_ns))| {
            let process = names.threads.get(&stream)?.clone();
            let task = tasks.get(&span).and_then(|code| names.codes.get(code));
            let service = match task {
                Some(_) => TASK_SERVICE.to_owned(),
                None => logical_name(&process, initial_calls.get(&stream).copied())
                    .unwrap_or_else(|| loop_module(stream).unwrap_or_else(|| process.clone())),
            };
            let inline = inline.remove(&span);
            let method = match (task, &inline) {
                (Some(task), _) => Some(task.span_name()),
                (None, Some(call)) => Some(call.request.clone().unwrap_or_else(|| "call".into())),
                (None, None) => asking
                    .outermost(span)
                    .map(|f| short_function(&f).to_owned())
                    .or_else(|| made_by_compiler.get(&span).map(|(m, _)| m.clone())),
            };
            // What a call asked and was answered: its request and reply, for a call written
            // inline or made by a function the compiler made (whose own arguments are the
            // loop's: `Enum.reduce`'s accumulator holding the earlier answers).
            let asked = inline.or_else(|| made_by_compiler.get(&span).and_then(|(_, c)| c.clone()));
            let peer = Peer {
                process,
                service,
                method,
                timed_out_ns,
                asked: asked.as_ref().and_then(|call| call.asked.clone()),
                answer: asked.and_then(|call| call.answer),
            };
            Some((span, peer))
        })
        .collect()
}

/// The method of each call made by a function the compiler made (the anonymous function
/// `Enum.map` runs, a comprehension's loop), which has no name of its own to give it: the
/// request's tag as the server took it (`{:get, 7}` → `get`), else the function the anonymous
/// function or the comprehension is written in (`rows` for `anonymous fn#0 in Report.rows/1`);
/// with what it asked, when the server's callback says.
fn compiler_made_calls(
    spans: &[OutSpan],
    names: &Names,
    replies: &beam::inline_calls::Replies,
    calls: &HashMap<u64, beam::calls::Called>,
) -> HashMap<u64, (String, Option<beam::inline_calls::InlineCall>)> {
    let name_of = |span: &OutSpan| names.codes.get(&span.code).map(|c| c.span_name());
    let made: HashMap<u64, String> = spans
        .iter()
        .filter(|s| calls.contains_key(&s.span_id))
        .filter_map(|s| {
            let name = name_of(s)?;
            let written_in = beam::function_names::enclosing_function(&name)
                .or_else(|| beam::function_names::comprehension_in(&name))?;
            Some((s.span_id, short_function(&written_in).to_owned()))
        })
        .collect();
    let mut asked = replies.what_calls_asked(calls, |id| made.contains_key(&id));
    made.into_iter()
        .map(|(span, written_in)| {
            let call = asked.remove(&span);
            let tag = call.as_ref().and_then(|call| call.request.clone());
            (span, (tag.unwrap_or(written_in), call))
        })
        .collect()
}

/// Each process's text annotation `key` (its initial call), by stream.
fn life_texts<'a>(
    spans: &[OutSpan],
    annotations: &'a beam::Annotations,
    key: &str,
) -> HashMap<u64, &'a str> {
    spans
        .iter()
        .filter(|s| s.code == PROCESS_CODE)
        .filter_map(|s| {
            let attributes = annotations.attributes.get(&s.span_id)?;
            attributes.iter().find_map(|(k, value)| match value {
                beam::Attr::Text(text) if *k == key => Some((s.stream, text.as_str())),
                _ => None,
            })
        })
        .collect()
}

/// The service of a process its caller spawned and awaited (a task): its method says what it
/// ran, `task/Prices.fetch/1`, the same from one run to the next where its pid is not.
const TASK_SERVICE: &str = "task";

/// A called process as its callers know it.
struct Peer {
    /// Its thread name: its registered name, or its pid.
    process: String,
    /// The service it is: its registered name; for an unregistered GenServer (or `gen_statem`),
    /// its callback module (`Shop.Inventory.init/1` → `Shop.Inventory`), the same from one run
    /// to the next, where a pid is not; else its pid.
    service: String,
    /// What was asked of it, when the caller spawned it (a task, its service [`TASK_SERVICE`]):
    /// the function it ran. Else the calling function's, without module and arity.
    method: Option<String>,
    /// How long the caller waited before it gave up on the reply (a call that timed out).
    timed_out_ns: Option<u64>,
    /// For a call made inline (its span the wait for the answer, which records no values):
    /// the request and the reply, as the server's callback had them.
    asked: Option<String>,
    answer: Option<String>,
}

/// A function's name without its module and arity: `Cart.Server.add/1` → `add`.
fn short_function(function: &str) -> &str {
    let without_arity = function.rsplit_once('/').map_or(function, |(f, _)| f);
    without_arity
        .rsplit(['.', ':'])
        .next()
        .unwrap_or(without_arity)
}

/// A registered process's name, or an unregistered server's module; none for another
/// unregistered process.
fn logical_name(process: &str, initial_call: Option<&str>) -> Option<String> {
    if !process.starts_with('<') {
        return Some(process.to_owned());
    }
    let module = initial_call.and_then(|call| {
        call.strip_suffix(".init/1")
            .or_else(|| call.strip_suffix(":init/1"))
    })?;
    (!["supervisor", "Supervisor"].contains(&module)).then(|| module.to_owned())
}

/// A call to another process as an RPC to it, so the analysis reads it as a call that leaves
/// the process: `rpc.service` the called service ([`Peer::service`]), `devtrace.beam.peer` the
/// process itself, `rpc.method` the function without its module and arity (`Cart.Server.add/1`
/// → `add`): the task's function for a task ([`Peer::method`]), else the calling function.
fn call_attributes(function: &str, peer: &Peer) -> Vec<KeyValue> {
    let method = peer
        .method
        .clone()
        .unwrap_or_else(|| short_function(function).to_owned());
    let mut attributes = vec![
        KeyValue::new("rpc.system", "erlang"),
        KeyValue::new("rpc.service", peer.service.clone()),
        KeyValue::new("rpc.method", method),
        KeyValue::new(PEER, peer.process.clone()),
    ];
    if let Some(waited) = peer.timed_out_ns {
        let ms = (waited as f64 / 1e5).round() / 10.0;
        attributes.push(KeyValue::new(CALL_TIMED_OUT_MS, ms));
    }
    for (key, text) in [(ARGUMENTS, &peer.asked), (RETURN, &peer.answer)] {
        if let Some(text) = text {
            attributes.push(KeyValue::new(key, text.clone()));
        }
    }
    attributes
}

fn to_span(s: &OutSpan, names: &Names, texts: &Texts, unix: &dyn Fn(u64) -> u64) -> Span {
    let process = names
        .threads
        .get(&s.stream)
        .cloned()
        .unwrap_or_else(|| format!("process {:x}", s.stream));
    let name = span_name(s.code, &process, names);
    let mut attributes = vec![
        KeyValue::new("thread.name", process.clone()),
        KeyValue::new("thread.id", s.stream as i64),
        KeyValue::new("devtrace.recorder", true),
        KeyValue::new("devtrace.beam.process", process.clone()),
    ];
    if !matches!(s.code, PROCESS_CODE | RECEIVE_CODE) {
        attributes.push(KeyValue::new(semconv::CODE_FUNCTION_NAME, name.clone()));
    }
    let value_keys = match s.code {
        PROCESS_CODE => [None, Some(EXIT_REASON), None],
        _ => [Some(ARGUMENTS), Some(RETURN), Some(EXCEPTION)],
    };
    let peer = texts.peers.get(&s.span_id);
    // A call's request and reply, where known, stand for its function's own values.
    let replaced = |key: &str| {
        peer.is_some_and(|p| {
            (key == ARGUMENTS && p.asked.is_some()) || (key == RETURN && p.answer.is_some())
        })
    };
    for (id, key) in s.values.iter().zip(value_keys) {
        if let (Some(key), Some(text)) = (key, texts.values.get(id))
            && !replaced(key)
        {
            attributes.push(KeyValue::new(key, text.clone()));
        }
    }
    if s.code != PROCESS_CODE {
        for (id, key) in s.values.iter().zip([STATE_BEFORE, STATE_AFTER]) {
            if let Some(state) = texts.states.get(id).filter(|_| *id != 0) {
                attributes.push(KeyValue::new(key, state.clone()));
            }
        }
    }
    if let Some(peer) = peer {
        attributes.extend(call_attributes(&name, peer));
    }
    let outside = texts.outside.get(&s.span_id).filter(|_| peer.is_none());
    if let Some(call) = outside {
        attributes.push(KeyValue::new(WAITED_OUTSIDE_NS, call.waited_ns as i64));
        attributes.push(KeyValue::new(CALL_OUT_FUNCTION, call.function.clone()));
    }
    if s.open {
        attributes.push(KeyValue::new(OPEN, true));
    }
    if s.tail_call {
        attributes.push(KeyValue::new(TAIL_CALL, true));
    }
    if s.started_before_window {
        attributes.push(KeyValue::new(BEFORE_WINDOW, true));
    }
    let annotated = texts.annotations.attributes.get(&s.span_id);
    attributes.extend(annotated.into_iter().flatten().map(annotation));
    let error = s.error.map(|id| {
        names
            .exceptions
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "error".to_owned())
    });
    let lifecycle = texts.annotations.events.get(&s.span_id);
    let events = lifecycle
        .into_iter()
        .flatten()
        .map(|e| span::Event {
            time_unix_nano: unix(e.ts),
            name: e.name.to_owned(),
            attributes: to_proto(&e.attributes.iter().map(annotation).collect::<Vec<_>>()),
            ..Default::default()
        })
        .chain(error.iter().map(|kind| span::Event {
            time_unix_nano: unix(s.end),
            name: semconv::EXCEPTION_EVENT.to_owned(),
            attributes: to_proto(&[
                KeyValue::new(semconv::EXCEPTION_TYPE, kind.clone()),
                KeyValue::new(semconv::EXCEPTION_ESCAPED, true),
            ]),
            ..Default::default()
        }))
        .collect();
    Span {
        trace_id: s.trace_id.to_be_bytes().to_vec(),
        span_id: s.span_id.to_be_bytes().to_vec(),
        parent_span_id: match s.parent_span_id {
            0 => Vec::new(),
            id => id.to_be_bytes().to_vec(),
        },
        name,
        // Internal, or client for a call to another process or out of the recording.
        kind: if peer.is_some() || outside.is_some() {
            3
        } else {
            1
        },
        start_time_unix_nano: unix(s.start),
        end_time_unix_nano: unix(s.end.max(s.start)),
        attributes: to_proto(&attributes),
        events,
        links: s.links.iter().map(|l| link(l, names, unix)).collect(),
        status: error.map(|message| Status { code: 2, message }),
        ..Default::default()
    }
}

/// An attribute the BEAM reader added ([`beam::annotate`]).
fn annotation((key, value): &(&'static str, beam::Attr)) -> KeyValue {
    match value {
        beam::Attr::Text(text) => KeyValue::new(*key, text.clone()),
        beam::Attr::Int(n) => KeyValue::new(*key, *n),
        beam::Attr::Bool(b) => KeyValue::new(*key, *b),
    }
}

/// A causal link in the `devtrace.link.*` convention (the one the Python recorder writes).
fn link(l: &devtrace_recorder::OutLink, names: &Names, unix: &dyn Fn(u64) -> u64) -> span::Link {
    use semconv::causal;
    let mut attributes = vec![
        KeyValue::new(causal::LINK_KIND, l.kind.name()),
        KeyValue::new(causal::LINK_OBJECT, l.kind.object()),
        KeyValue::new(causal::LINK_CAUSE_TIME, unix(l.cause_ts) as i64),
        KeyValue::new(causal::LINK_WAIT_NS, l.wait_ns as i64),
    ];
    if let Some(code) = names.codes.get(&l.cause_code) {
        attributes.push(KeyValue::new(causal::LINK_CAUSE_FUNCTION, code.span_name()));
    }
    span::Link {
        trace_id: l.trace_id.to_be_bytes().to_vec(),
        span_id: l.span_id.to_be_bytes().to_vec(),
        attributes: to_proto(&attributes),
        ..Default::default()
    }
}

/// Sends `spans` in requests of [`SPANS_PER_REQUEST`], as part of run `run_id` (none: a
/// recovered window, of no run: ""); how many were sent.
pub(super) fn send(
    endpoint: &str,
    run_id: &str,
    service: &str,
    spans: RecordedSpans,
) -> Result<usize> {
    use devtrace_ingest::otlp::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::InstrumentationScope,
        resource::v1::Resource,
        trace::v1::{ResourceSpans, ScopeSpans},
    };
    let total = spans.len();
    // Made and taken a request at a time (splitting the rest off the front instead copied
    // all of it for every request: a 3-million-span recording took five minutes to send).
    let mut spans = spans.into_spans();
    loop {
        let batch: Vec<Span> = spans.by_ref().take(SPANS_PER_REQUEST).collect();
        if batch.is_empty() {
            break;
        }
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: to_proto(
                        &[
                            KeyValue::new(semconv::SERVICE_NAME, service.to_owned()),
                            KeyValue::new(semconv::RUN_ID, run_id.to_owned()),
                            KeyValue::new("telemetry.sdk.language", AnyValue::from("erlang")),
                        ]
                        .into_iter()
                        .filter(|kv| kv.key != semconv::RUN_ID || !run_id.is_empty())
                        .collect::<Vec<_>>(),
                    ),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "devtrace.beam".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    spans: batch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        post_traces(endpoint, &prost::Message::encode_to_vec(&request))
            .context("sending the BEAM spans")?;
    }
    Ok(total)
}

// -- the flight recorder's window (docs/beam.md, "Two modes") ---------------------------------

pub const FLIGHT_REASON: &str = "devtrace.flight.reason";
pub const FLIGHT_EVENTS: &str = "devtrace.flight.events";
pub const FLIGHT_LOST: &str = "devtrace.flight.lost_events";
pub const FLIGHT_SECONDS: &str = "devtrace.flight.window_seconds";
pub const FLIGHT_PID: &str = "devtrace.flight.pid";
pub const FLIGHT_RECOVERED: &str = "devtrace.flight.recovered";
/// The window asked for (`--record-seconds`), beside the one there was.
pub const FLIGHT_SECONDS_ASKED: &str = "devtrace.flight.seconds_asked";

/// The window of a VM's file: the last `seconds` of what it holds (everything when the file
/// holds less), as spans under a `devtrace.flight_window` span, itself under `root` (the run's
/// root span) or, without one, the root of a new trace. `reason` says why it was written.
pub fn read_window(
    file: RecorderFile,
    seconds: f64,
    root: Option<(u128, u64)>,
    reason: &str,
    seed: u64,
) -> Recorded {
    let pass = Cursor::new().read(&file, None);
    let end = last_stamp(&pass).max(file.info().heartbeat_ns);
    let stopping = file.info().stopping_ns;
    let first = first_stamp(&pass);
    let start = end
        .saturating_sub((seconds * 1e9) as u64)
        .max(first.unwrap_or(end));
    let window_span_id = random_id(seed.rotate_left(17));
    // The processes hang under the window's span (as a Python window's calls do, so its time
    // is theirs, not a span of its own), itself under the run's root or, without a run, the
    // root of a trace of its own.
    let trace_id = root.map_or_else(
        || (random_id(seed) as u128) << 64 | random_id(!seed) as u128,
        |(trace_id, _)| trace_id,
    );
    let parent = (trace_id, window_span_id);
    let mut followed = Followed {
        file,
        cursor: Cursor::new(),
        reader: BeamReader::for_window(start, beam::stuck::WindowEnd { end, stopping }),
        builder: Builder::new(BuilderOptions {
            threshold_ns: 0,
            root: Some(parent),
            seed,
            ..Default::default()
        }),
    };
    for process in followed.reader.split(&pass) {
        followed.builder.feed(&process, &|_| None);
    }
    // A call that hangs is kept from its start, before the window's (beam::stuck).
    let reached_back = followed.reader.reached_back().filter(|&t| t < start);
    let info = followed.file.info();
    let mut recorded = finish_file(followed);
    let unix = |mono: u64| info.created.to_unix(mono);
    let window = Span {
        trace_id: parent.0.to_be_bytes().to_vec(),
        span_id: window_span_id.to_be_bytes().to_vec(),
        parent_span_id: match root {
            Some((_, span)) => span.to_be_bytes().to_vec(),
            None => Vec::new(),
        },
        name: semconv::FLIGHT_WINDOW_SPAN.to_owned(),
        kind: 1,
        start_time_unix_nano: unix(reached_back.unwrap_or(start)),
        end_time_unix_nano: unix(end.max(start)),
        attributes: to_proto(
            &[
                KeyValue::new(FLIGHT_REASON, reason.to_owned()),
                KeyValue::new(FLIGHT_EVENTS, recorded.events as i64),
                KeyValue::new(FLIGHT_LOST, recorded.lost as i64),
                KeyValue::new(FLIGHT_SECONDS, (end - start) as f64 / 1e9),
                KeyValue::new(FLIGHT_SECONDS_ASKED, seconds),
                KeyValue::new(FLIGHT_PID, i64::from(info.pid)),
                KeyValue::new("devtrace.beam.processes", recorded.processes as i64),
            ]
            .into_iter()
            .chain(
                root.is_none()
                    .then(|| KeyValue::new(FLIGHT_RECOVERED, true)),
            )
            .collect::<Vec<_>>(),
        ),
        ..Default::default()
    };
    recorded.spans.push(window);
    recorded.window = Some(WindowExtent {
        seconds: (end - start) as f64 / 1e9,
        reached_back: reached_back.map(|t| (end - t) as f64 / 1e9),
        trace_id: parent.0,
        span_id: window_span_id,
    });
    recorded
}

/// A window read: how long it was and the span that says so.
#[derive(Debug, Clone, Copy)]
pub struct WindowExtent {
    pub seconds: f64,
    /// How far back from the end it kept a call that hangs, when that began before the window
    /// (seconds).
    pub reached_back: Option<f64>,
    pub trace_id: u128,
    pub span_id: u64,
}

/// Reads every VM's file in `dir` as its flight window (`devtrace run`, after the command).
pub fn read_windows(dir: &Path, seconds: f64, root: (u128, u64)) -> Vec<Recorded> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ring"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let file = RecorderFile::open(&path).ok()?;
            let seed = rand_seed(&path);
            Some(read_window(file, seconds, Some(root), "the VM ended", seed))
        })
        .collect()
}

fn last_stamp(pass: &[StreamEvents]) -> u64 {
    pass.iter()
        .filter_map(|s| s.events.last().map(|e| e.ts))
        .max()
        .unwrap_or(0)
}

fn first_stamp(pass: &[StreamEvents]) -> Option<u64> {
    pass.iter()
        .filter_map(|s| s.events.first().map(|e| e.ts))
        .min()
}

/// A non-zero id from `seed` (a span or trace id of a recovered window).
fn random_id(seed: u64) -> u64 {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hot_functions_note_names_them_quoted_and_how_to_record_every_call() {
        let hot = HotFunction {
            calls: 10_000,
            window_ms: 100,
        };
        let one = [("anonymous fn#0 in Pricing.price/1".to_owned(), hot)];
        assert_eq!(
            hot_functions_note(7, &one),
            "devtrace: --record: BEAM VM 7: later calls of \"anonymous fn#0 in Pricing.price/1\" not traced one by one, after 10000 calls within 100 ms (tracing a call that short costs more than the call): their time is in their callers' spans; DEVTRACE_BEAM_HOT_CALLS=0 traces every call"
        );
        let many: Vec<(String, HotFunction)> = (1..=7)
            .map(|n| (format!("parse:step{n}/2\u{1b}[2J"), hot))
            .collect();
        let note = hot_functions_note(7, &many);
        assert!(
            note.contains("\"parse:step5/2\\u001b[2J\" and 2 more not traced one by one, after 10000 calls within 100 ms each"),
            "{note}"
        );
        assert!(
            !note.contains('\u{1b}'),
            "recorded names are quoted, escaped: {note}"
        );
    }

    #[test]
    fn an_unregistered_genserver_is_the_service_of_its_module_a_registered_process_of_its_name() {
        let pid = "<0.197.0>";
        let name = |process, call| logical_name(process, call);
        assert_eq!(
            name(pid, Some("Shop.Inventory.init/1")).as_deref(),
            Some("Shop.Inventory")
        );
        assert_eq!(
            name(pid, Some("kv_server:init/1")).as_deref(),
            Some("kv_server")
        );
        assert_eq!(
            name("Stock", Some("Stock.init/1")).as_deref(),
            Some("Stock")
        );
        // A supervisor, a spawned fun, or nothing known: none (its loop's module, or its pid).
        assert_eq!(name(pid, Some("supervisor:init/1")), None);
        assert_eq!(name(pid, Some("erlang:apply/2")), None);
        assert_eq!(name(pid, None), None);
    }

    /// A span of process 1 from `start` to `end` ms.
    fn span(span_id: u64, parent_span_id: u64, code: u32, (start, end): (f64, f64)) -> OutSpan {
        let ms = |t: f64| (t * 1e6) as u64;
        OutSpan {
            trace_id: 1,
            span_id,
            parent_span_id,
            code,
            stream: 1,
            tid: 1,
            start: ms(start),
            end: ms(end),
            ..OutSpan::default()
        }
    }

    #[test]
    fn a_call_out_answered_in_waits_under_a_millisecond_each_is_one_and_they_are_not_shown() {
        // `LineCount.count/1` (8) under `main` (7): 2.6 of its 3 ms in three waits that no
        // recorded process ended, 0.8–0.9 ms each (a port's output, then its exit status).
        let spans = vec![
            span(1, 0, PROCESS_CODE, (0.0, 20.0)),
            span(2, 1, 7, (1.0, 19.0)),
            span(3, 2, 8, (10.0, 13.0)),
            span(4, 3, RECEIVE_CODE, (10.0, 10.9)),
            span(5, 3, RECEIVE_CODE, (11.0, 11.9)),
            span(6, 3, RECEIVE_CODE, (12.0, 12.8)),
        ];
        let mut names = Names::default();
        for (code, name) in [(7, "LineCount.Main.main/0"), (8, "LineCount.count/1")] {
            let info = devtrace_recorder::names::CodeInfo {
                qualname: name.to_owned(),
                module: String::new(),
                file: String::new(),
                line: 0,
            };
            names.codes.insert(code, info);
        }
        let (shown, outside) = shown_with_calls_out(spans, &names, &Default::default());
        let call = &outside[&3];
        assert_eq!(
            (call.waited_ns, call.function.as_str()),
            (2_600_000, "LineCount.count/1")
        );
        assert_eq!(outside.len(), 1);
        let ids: Vec<u64> = shown.iter().map(|s| s.span_id).collect();
        assert_eq!(ids, [1, 2, 3], "waits under 1 ms are not shown");
    }

    #[test]
    fn a_vms_files_go_to_dev_shm_when_it_has_room_for_four_else_the_temporary_directory() {
        let name = format!("devtrace-beam-files-dir-test-{}", std::process::id());
        // This machine's /dev/shm (CI's too) has room for four 1 MiB files.
        let small = files_dir(1, &name).unwrap();
        assert_eq!(small, Path::new("/dev/shm").join(&name));
        std::fs::remove_dir(&small).unwrap();
        let huge = files_dir(u64::MAX / 8, &name).unwrap();
        assert_eq!(huge, std::env::temp_dir().join(&name));
        std::fs::remove_dir(&huge).unwrap();
    }
}

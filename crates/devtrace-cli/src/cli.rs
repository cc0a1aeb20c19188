//! The command-line grammar. `--help` text is written here, for people.

use clap::{Args, Parser, Subcommand, ValueEnum};
use devtrace_query::timefmt::When;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "devtrace",
    version,
    about = "See how code actually runs and how development sessions actually went: traces, analysis, sessions.",
    long_about = "devtrace receives OpenTelemetry traces and logs (OTLP over gRPC and HTTP), imports and \
captures coding-agent and developer sessions, stores everything in an embedded database, and \
analyses it (critical path, sequential work, N+1 loops, failure patterns, agent retry loops). \
Read it here, in the web UI and REST API that `devtrace serve` also serves \
(http://127.0.0.1:4319/), or from an AI assistant over MCP (`devtrace mcp`).\n\n\
Start the receiver with `devtrace serve`, point any OpenTelemetry SDK at it with \
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (HTTP) or http://127.0.0.1:4317 (gRPC), \
or run a program under tracing with `devtrace run -- <command>`; then list traces with \
`devtrace ls`, draw one with `devtrace show <id>`, and ask why it is slow with `devtrace perf`. \
Sessions: `devtrace import claude-code`, then `devtrace sessions`.",
    after_help = "Exit codes: 0 success, 1 a runtime failure (message on stderr), 2 a usage error; `run` exits with its command's code (docs/cli.md)."
)]
pub struct Cli {
    /// Data directory holding the store [default: the user's data directory, e.g. ~/.local/share/devtrace]
    #[arg(long, global = true, env = "DEVTRACE_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// The store: a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE) or a ClickHouse
    /// URL (clickhouse://USER:PASSWORD@HOST:8123/DATABASE, clickhouses:// for TLS) for a team
    /// server, or a data directory for the embedded store [default: the embedded store in --data]
    #[arg(long, global = true, env = "DEVTRACE_STORE", value_name = "URL|DIR")]
    pub store: Option<String>,

    /// A PostgreSQL database (postgres://USER:PASSWORD@HOST:PORT/DATABASE) that keeps the QA
    /// job queue beside a ClickHouse store, which cannot claim jobs atomically
    #[arg(long, global = true, env = "DEVTRACE_QUEUE_STORE", value_name = "URL")]
    pub queue_store: Option<String>,

    /// The project to read (and to import into) on a PostgreSQL store, or to read through
    /// --server (another project than the token's needs an admin token) [default: default;
    /// through a server, the token's]
    #[arg(long, global = true, env = "DEVTRACE_PROJECT", value_name = "NAME")]
    pub project: Option<String>,

    /// Read from a devtrace server instead of a store: its API URL (http(s)://HOST:4319).
    /// ls, show, export, perf, errors, locks, compare, insights, runs, sessions, plan and watch
    /// work the same, through its REST API; record sends its session there
    #[arg(long, global = true, env = "DEVTRACE_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// The API token for --server (read scope; ingest for record; sent as Authorization: Bearer);
    /// agent-setup writes it into the agent's settings as its OTLP export header (ingest scope)
    #[arg(
        long,
        global = true,
        env = "DEVTRACE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// A PEM file of certificates to trust for an https --server (besides the system's)
    #[arg(long, global = true, env = "DEVTRACE_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,

    /// When to colour output: auto (a terminal, and NO_COLOR unset), always, never
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Print times in UTC instead of the local time zone (TZ, else /etc/localtime); also how a
    /// time without an offset (--since 2026-11-21T09:00:00) is read. JSON is always UTC
    #[arg(
        long,
        global = true,
        env = "DEVTRACE_UTC",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub utc: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Receive OTLP traces and logs and store them (gRPC :4317, HTTP :4318, API :4319)
    Serve(ServeArgs),
    /// List recent traces, newest first
    Ls(LsArgs),
    /// Draw one trace as a waterfall (by id or unique id prefix)
    Show(ShowArgs),
    /// Load OTLP/JSON files, trace-1.0.0 documents, or Claude Code / Codex transcripts
    Import(ImportArgs),
    /// Write one trace out in an OTLP format
    Export(ExportArgs),
    /// Where an operation's time goes across its recent runs (or rank operations by time)
    Perf(PerfArgs),
    /// Errors grouped by fingerprint, with what distinguishes failing runs; `errors show` for one
    Errors(ErrorsArgs),
    /// Lock waits and holds, longest waits first, and lock-order inversions
    Locks(LocksArgs),
    /// Compare two traces, the last runs of an operation, or two time windows
    Compare(CompareArgs),
    /// Findings across recent traces, ranked by estimated saving, with evidence
    Insights(InsightsArgs),
    /// Run the journal-generation demo on a fresh store and show what devtrace finds
    Demo(DemoArgs),
    /// Run a command under tracing: its spans, output and test results become one run
    Run(RunArgs),
    /// List recorded runs (`devtrace run`), newest first
    Runs(RunsArgs),
    /// Serve the MCP tools over stdio, for AI assistants (Claude Code, Codex, Cursor, …)
    ///
    /// Serves devtrace's MCP tools (overview, search_traces, get_trace, get_spans,
    /// process_state, analyze_operation, find_issues, compare, errors, list_sessions,
    /// session_overview, compare_sessions, check_insights, qa_summary, plan_instrumentation,
    /// query_sql), resources and prompts over stdio. An MCP client starts it; it reads the same store `devtrace serve` writes, while
    /// serve runs or not. stdout carries only the protocol; logs go to stderr. The same tools
    /// are served over Streamable HTTP at /mcp on serve's API port.
    Mcp(McpArgs),
    /// List development sessions (Claude Code, Codex, trace-1.0.0), newest first
    Sessions(SessionsArgs),
    /// One development session: `session show <id>` draws its timeline with findings
    Session(SessionArgs),
    /// Record a live agent event (reads the hook's JSON on stdin): `hook claude-code`
    Hook(HookArgs),
    /// Read-only SQL over the store's documented views (traces, spans, operations, trace_services, logs)
    Query(QueryArgs),
    /// API tokens for a server that requires them: `token create`, `token list`, `token revoke`
    Token(TokenArgs),
    /// Projects of a team store and their retention: `project list`, `project set NAME --retention 30d`
    Project(ProjectArgs),
    /// Delete traces or sessions (one, or everything before a time), on either store
    Delete(DeleteArgs),
    /// Record your own work as a development session: commands, saved edits, editor
    /// navigation and notes, with the final patch (`record start`, `record stop`, `record -- $SHELL`)
    Record(RecordArgs),
    /// Add a note (a thought) to the session being recorded: `devtrace note "trying the cache" --tag debugging`
    Note(NoteArgs),
    /// Check development sessions: apply their patch, run their tests in a sandbox, judge them
    Qa(QaArgs),
    /// Write into their traces the flight-recorder windows of Python processes and Erlang or
    /// Elixir VMs that died (SIGKILL, a crash) while recording (`devtrace run --record`,
    /// `devtrace.record()`, a Mix project's `config :devtrace_beam, record: true`)
    Recover(RecoverArgs),
    /// Plan which Python, Elixir or Erlang functions to record for an operation's blind spot;
    /// `plan list`, `plan show ID`
    Plan(PlanArgs),
    /// A live dashboard: traces as they complete, sessions in progress, findings as they fire
    Watch(WatchArgs),
    /// Point Claude Code, Codex or Gemini CLI's own OpenTelemetry at devtrace (live sessions)
    AgentSetup(AgentSetupArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Tokens are managed with direct access to the store (--store URL, or --data for the embedded store), so the first admin token needs no server and there is no default password:
  devtrace token create --store postgres://devtrace@db/devtrace --project default --scope admin --name admin
  devtrace token create --project web --scope ingest --name ci --expires 90d
  devtrace token list
  devtrace token revoke dtk_AbCd1234

Scopes: ingest (send spans, logs and sessions), read (CLI against a server, REST, MCP, web UI), qa (start QA jobs), admin (tokens, projects, retention, deletion; every scope on every project).
Clients send the token as `Authorization: Bearer dtk_…` (OTLP: OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer dtk_…\")."
)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token and print it once (only a salted hash is stored)
    ///
    /// The token belongs to the project given by --project (made if it does not exist;
    /// default: default).
    Create {
        /// What the token may do: ingest, read, qa, admin (repeat or separate with commas)
        #[arg(
            long = "scope",
            value_name = "SCOPE",
            required = true,
            value_delimiter = ',',
            value_parser = scope_arg
        )]
        scopes: Vec<devtrace_server::auth::Scope>,
        /// A name saying who or what uses it (shown in `token list`)
        #[arg(long, value_name = "NAME", value_parser = token_name_arg)]
        name: String,
        /// Expire after this long (e.g. 90d, 12h) [default: never]
        #[arg(long, value_name = "DURATION", value_parser = devtrace_query::timefmt::parse_duration_arg)]
        expires: Option<u64>,
        /// Print {token, id, project, scopes, expires} as JSON
        #[arg(long)]
        json: bool,
    },
    /// List tokens: id, name, project, scopes, created, last used, expiry, revoked
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once, on every node (by its id dtk_…, the whole token, or its name)
    Revoke {
        /// The token's id (`dtk_` and 8 characters, as `token list` shows), the token, or its name
        token: String,
        /// Print {id, name, project, revoked_before} as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  devtrace project list
  devtrace project create mobile
  devtrace project set mobile --retention 30d
  devtrace project set mobile --retention none

Retention deletes a project's data older than the duration continuously while `devtrace serve` runs; `serve --retention` covers projects without their own. The embedded store holds one project, default.")]
pub struct ProjectArgs {
    #[command(subcommand)]
    pub command: ProjectCommand,
}

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Every project with its retention
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make a project (tokens for a new project also make it)
    Create {
        name: String,
        /// Print the project and whether it existed before as JSON
        #[arg(long)]
        json: bool,
    },
    /// Change a project's retention
    Set {
        name: String,
        /// Keep this long (e.g. 30d), or `none` to keep everything
        #[arg(long, value_name = "DURATION|none", value_parser = Retention::parse)]
        retention: Retention,
        /// Print the project as it now is as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  devtrace delete --trace 4bf92f35\n  devtrace delete --session 0af7651916cd\n  \
devtrace delete --before 2026-10-01T00:00:00Z --project web\n  devtrace delete --before 30d --vacuum\n\n\
Deletes from the store directly (--store URL or --data), in the project given by --project; \
a trace's spans, logs and session go with it. Like token and project, it needs the store itself, \
not a server (--server). --vacuum then returns the space to the file system (the embedded store \
rewrites its file; PostgreSQL runs VACUUM on devtrace's tables); without it, freed space is reused \
for new data."
)]
pub struct DeleteArgs {
    /// One trace, by id or unique prefix
    #[arg(long, value_name = "ID", conflicts_with_all = ["session", "before"], required_unless_present_any = ["session", "before"], value_parser = trace_id_arg)]
    pub trace: Option<String>,
    /// One development session, by trace id (prefix) or session id
    #[arg(long, value_name = "ID", conflicts_with = "before")]
    pub session: Option<String>,
    /// Every trace that started before this time: RFC 3339 (2026-10-01T00:00:00Z) or an age (30d)
    #[arg(long, value_name = "TIME", value_parser = When::parse)]
    pub before: Option<When>,
    /// Compact the store afterwards so the space goes back to the file system
    #[arg(long)]
    pub vacuum: bool,
    /// Print {traces, spans} as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "An operation is a blind spot when a quarter or more of its time, and 5 ms a run or more, is its \
own, in no child span (finding blind_spot in `devtrace insights`). The plan finds its function (the spans' code.function.name \
and code.file.path, or the name read as module.function, or, for a span started by hand, the function \
or `with` block where start_as_current_span/start_span names it with a literal), reads the source with \
Python's ast (parsed, never run) and lists the functions it calls, to the depth asked: those are recorded natively on the \
next run, everything else runs at full speed. Calls implemented in C are listed as not recordable.\n\n\
An operation of an Erlang or Elixir program (a span of `devtrace run --record`, named after its function: \
Shop.checkout/1, shop:checkout/1) is planned from the source under --source: Elixir's read with \
Code.string_to_quoted by `elixir`, Erlang's with epp by `escript` (parsed, never compiled or run). Local and remote calls, \
pipes, and messages to a server the source names (GenServer.call/cast, gen_server:call/cast, send) to its \
handle_call/handle_cast/handle_info are followed; anonymous functions, apply and calls on a module held in a \
variable are listed as not recordable.\n\n\
Examples:\n  devtrace plan app.jobs.process\n  devtrace plan \"handle request\" --source src --depth 3\n  \
devtrace run --plan 3f9a2c1b10 -- python -m app\n  devtrace plan Shop.checkout/1 --source lib\n  \
devtrace run --plan 7c01d2e4aa -- mix run\n  devtrace plan list\n  devtrace plan show 3f9a"
)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub command: Option<PlanCommand>,
    /// The operation (span name) to plan for
    pub operation: Option<String>,
    /// A directory the program's packages are under (repeat; default: the current directory)
    #[arg(long, value_name = "DIR")]
    pub source: Vec<PathBuf>,
    /// How many calls deep to follow from the operation's function
    #[arg(long, default_value_t = devtrace_plan::DEFAULT_DEPTH)]
    pub depth: u32,
    /// Calls of at least this many milliseconds become spans in the planned run
    #[arg(long, value_name = "MS", default_value_t = devtrace_plan::DEFAULT_THRESHOLD_MS)]
    pub threshold_ms: f64,
    /// Runs of the operation to read
    #[arg(long, default_value_t = devtrace_plan::DEFAULT_LAST)]
    pub last: usize,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "A Python process recording with the flight recorder keeps its last seconds of calls in a \
ring file (/dev/shm/devtrace-flight-PID.ring). When it fails it writes them into its trace itself; when it \
is killed (SIGKILL, a crash in native code, the OOM killer) the file stays. `devtrace recover` reads each \
file left by a process that is gone, through the Python that recorded it (named in the file), and writes \
the window into that process's trace as a `devtrace.flight_window` span (to a running `devtrace serve` \
for the data directory, else straight into the store); then the file is removed. `devtrace run --record` \
does this by itself for the processes of its command.\n\n\
An Erlang or Elixir VM recording without `devtrace run` (the runtime started by its own flags or a Mix \
project's config) leaves devtrace-beam-OSPID.ring in the directory it was given; `devtrace recover --dir DIR` \
reads each one whose VM is gone with devtrace's own BEAM reader and writes its last seconds into a trace of \
its own, under a `devtrace.flight_window` span.\n\n\
Examples:\n  devtrace recover                                   # every file left in /dev/shm (and the temporary directory)\n  \
devtrace recover /dev/shm/devtrace-flight-4121.ring\n  devtrace recover --dir /var/tmp/rings              # the BEAM VMs' files left there\n  devtrace recover --json"
)]
pub struct RecoverArgs {
    /// Ring files to recover (default: every `devtrace-*.ring` in /dev/shm and the temporary
    /// directory whose process is gone)
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Look for files left by dead processes in DIR instead (repeat), e.g. a directory
    /// DEVTRACE_RECORD_FILE or DEVTRACE_BEAM_DIR pointed into
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    pub dir: Vec<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
devtrace agent-setup claude-code --print        # the settings, to paste or export\n  \
devtrace agent-setup codex                      # appends an [otel] table to ~/.codex/config.toml, after asking\n  \
devtrace agent-setup gemini --prompts --yes     # also send prompt text; write without asking\n\n\
With the agent's telemetry pointed at `devtrace serve`, its sessions appear as they happen (`devtrace \
sessions`, the web UI, MCP list_sessions), with tokens, cost and lines changed from its metrics; no \
hooks and no transcript files needed. Prompt text is an opt-in (--prompts); each opt-in says what it \
reveals. Writing changes only the keys devtrace needs and keeps the rest of the file as it is.")]
pub struct AgentSetupArgs {
    /// The agent to set up
    #[arg(value_enum)]
    pub agent: SetupAgent,
    /// Print the configuration instead of writing it
    #[arg(long)]
    pub print: bool,
    /// Also send the text of prompts (and, for Claude Code and Gemini CLI, replies)
    #[arg(long)]
    pub prompts: bool,
    /// devtrace's OTLP/HTTP address [default: the running serve's, else http://127.0.0.1:4318]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The settings file to write [default: the agent's own: ~/.claude/settings.json,
    /// ~/.codex/config.toml, ~/.gemini/settings.json]
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Write without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the settings as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// List the stored plans, newest first
    List {
        #[arg(long)]
        json: bool,
    },
    /// Explain one stored plan
    Show {
        /// The plan's id or a unique prefix of it
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
#[command(
    after_help = "Views: the dashboard (spans/s and errors/s, traces newest first, sessions in progress,\n\
findings as they fire, a new one highlighted with its evidence); one session turn by turn\n\
(--session, or Enter on a session, or s); a trace's waterfall with its critical path and\n\
repeated siblings folded (Enter on a trace); a finding with its evidence (Enter on it).\n\
Keys: Tab pane, arrows or j/k move, Enter open, Esc back, / filter, ? keys, q quit; the mouse\n\
wheel scrolls.\n\n\
Reads the local store while `devtrace serve`, hooks and imports write to it, or a server's\n\
REST API with --server. Without a terminal, use --plain: one line per event.\n\n\
Examples:\n  devtrace watch\n  devtrace watch --session latest\n  devtrace watch --plain --exit-after 60s >> watch.log\n  \
devtrace watch --server http://127.0.0.1:4319 --token $TOKEN"
)]
pub struct WatchArgs {
    /// Follow one session turn by turn: its trace id (or prefix), its session id, or `latest`
    #[arg(long, value_name = "ID|latest")]
    pub session: Option<String>,
    /// One line per event (traces, session progress, findings) instead of the dashboard
    #[arg(long)]
    pub plain: bool,
    /// With --plain: one JSON object per line (event: trace, session, finding or error)
    #[arg(long, requires = "plain")]
    pub json: bool,
    /// With --plain: stop after this long (30s, 10m); default: until interrupted
    #[arg(long, value_name = "DURATION", requires = "plain", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub exit_after: Option<u64>,
    /// A session is in progress when something happened in it within this long
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub active_within: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupAgent {
    /// Claude Code (environment variables)
    ClaudeCode,
    /// OpenAI Codex CLI (an [otel] table in config.toml)
    Codex,
    /// Gemini CLI (telemetry in settings.json)
    Gemini,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
devtrace query --schema\n  \
devtrace query \"SELECT name, count(*), avg(duration_ns)/1e6 AS avg_ms FROM spans WHERE trace_id = '4bf9…' GROUP BY name\"\n  \
devtrace query \"SELECT root_name, count(*) FROM traces WHERE error_count > 0 GROUP BY 1\" --json\n\n\
The same views as the MCP tool query_sql. Anything that could write is refused; a query stops at \
its time limit. Filter spans and logs on trace_id = '…' (or spans on name = '…') to read only \
the traces concerned.")]
pub struct QueryArgs {
    /// One SELECT (or WITH … SELECT) statement
    #[arg(required_unless_present = "schema")]
    pub sql: Option<String>,
    /// Print the views, their columns and examples, and exit
    #[arg(long, conflicts_with = "sql")]
    pub schema: bool,
    /// Most rows to return (the output says when there were more)
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_rows: usize,
    /// Time limit, e.g. 5s, 30s, 2m
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub timeout: u64,
    /// Print JSON ({columns, rows, more}) instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Set-up:\n  claude mcp add devtrace -- devtrace mcp\n  codex mcp add devtrace -- devtrace mcp\n  \
any client: command \"devtrace\", args [\"mcp\"] (add \"--data\", \"DIR\" for another store)\n\n\
See docs/mcp.md for every tool and worked examples."
)]
pub struct McpArgs {
    /// Record every MCP request as a span (MCP semantic conventions) in devtrace's own store
    #[arg(long)]
    pub self_trace: bool,
    /// Log level for messages on stderr: error, warn, info, debug, trace
    #[arg(
        long,
        env = "DEVTRACE_LOG",
        default_value = "warn",
        value_name = "LEVEL"
    )]
    pub log_level: String,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Columns: start, agent, project, duration, turns, tool calls, tokens (in + out), tool errors,\n\
findings of the session detectors, the trace id prefix (for `devtrace session show`), title; and\n\
cost and lines changed (+added/-removed) when the agents sent metrics (`devtrace agent-setup`).\n\
--daily prints the agents' metrics per UTC day instead: sessions, cost, tokens, lines changed.\n\n\
Examples:\n  devtrace sessions\n  devtrace sessions --agent codex --since 7d\n  devtrace sessions --repo . --json\n  devtrace sessions --daily --since 30d"
)]
pub struct SessionsArgs {
    /// Only sessions of this agent: claude-code, codex, developer (trace-1.0.0)
    #[arg(long)]
    pub agent: Option<String>,
    /// Only sessions in this directory (or below it), or of this repository URL
    #[arg(long, value_name = "DIR")]
    pub repo: Option<String>,
    /// Only sessions started within this long (30m, 2h, 7d) or since a time
    #[arg(long, value_name = "WHEN", value_parser = When::parse)]
    pub since: Option<When>,
    /// How many sessions to list (at most 200)
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Totals per UTC day of what the agents reported through their metrics
    #[arg(long, conflicts_with_all = ["repo", "limit"])]
    pub daily: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SessionArgs {
    #[command(subcommand)]
    pub command: SessionCommand,
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// A session's timeline: turns, tool calls with outcome, edits, commands, linked runs,
    /// sub-agents, with findings inline
    #[command(
        after_help = "ID is a trace id (or a unique prefix, as `devtrace sessions` prints) or the agent's own\n\
session id. Commands that ran `devtrace run` (or whose run was recorded: same command line,\n\
same directory, overlapping time) link to the run's trace: open it with `devtrace show`.\n\
With --budget the text comes a page at a time, as MCP's session_overview and REST's\n\
/api/v1/sessions/ID/text give it (the footer names the next page's --offset).\n\n\
Examples:\n  devtrace session show fe5e1c67\n  devtrace session show fe5e1c67 --budget 4000 --offset 88\n  devtrace session show fe5e1c67-53e7-4862-81ae-d0e013e3270b --json"
    )]
    Show {
        /// Trace id (or unique prefix) or session id
        id: String,
        /// Also print every model request: tokens by kind, cache share, cost, cache breaks
        #[arg(long)]
        requests: bool,
        /// Pages of at most this many tokens (300 to 20000) instead of the whole session
        #[arg(long, value_name = "TOKENS", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(300..=20_000))]
        budget: Option<usize>,
        /// The first timeline entry to show (a page's footer names the next)
        #[arg(long, value_name = "ENTRY", default_value_t = 0)]
        offset: usize,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Two sessions side by side: turns, requests, tool calls by tool and outcome, tokens by
    /// kind, cost, wall and active time, findings, and the first request whose tool calls differ
    #[command(
        after_help = "A and B are trace ids (or unique prefixes) or the agents' own session ids.\n\
Costs are at the built-in dated price table; cache breaks use a 5-minute cache lifetime\n\
unless DEVTRACE_CACHE_LIFETIME says otherwise (e.g. 1h).\n\n\
Examples:\n  devtrace session compare fe5e1c67 5c0375b4\n  devtrace session compare fe5e1c67 5c0375b4 --json"
    )]
    Compare {
        /// The first session (trace id, unique prefix or session id)
        a: String,
        /// The second session
        b: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct HookArgs {
    #[command(subcommand)]
    pub agent: HookAgent,
}

#[derive(Subcommand, Debug)]
pub enum HookAgent {
    /// A Claude Code hook event (the JSON Claude Code writes on stdin)
    #[command(
        after_help = "Records the event at once: tool calls as they start and finish, prompts and stops as\n\
events of the session. On Stop, SubagentStop, PreCompact and SessionEnd it also imports what\n\
is new in the session's transcript, so turns, responses and tokens follow each reply.\n\
Importing the transcript later fills in the rest without storing anything twice.\n\
Never blocks the agent: it prints nothing on stdout and exits 0 (1 with a message on error).\n\n\
Configure it in ~/.claude/settings.json (or .claude/settings.json in a project):\n\n\
  {\"hooks\": {\n\
    \"PreToolUse\":       [{\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \"devtrace hook claude-code\"}]}],\n\
    \"PostToolUse\":      [{\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \"devtrace hook claude-code\"}]}],\n\
    \"UserPromptSubmit\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"devtrace hook claude-code\"}]}],\n\
    \"Stop\":             [{\"hooks\": [{\"type\": \"command\", \"command\": \"devtrace hook claude-code\"}]}],\n\
    \"SubagentStop\":     [{\"hooks\": [{\"type\": \"command\", \"command\": \"devtrace hook claude-code\"}]}],\n\
    \"SessionEnd\":       [{\"hooks\": [{\"type\": \"command\", \"command\": \"devtrace hook claude-code\"}]}]\n\
  }}"
    )]
    ClaudeCode,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The child gets TRACEPARENT, OTEL_EXPORTER_OTLP_ENDPOINT (answers OTLP/HTTP and gRPC), \
OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_SERVICE_NAME (when unset), short batch delays, and \
OTEL_RESOURCE_ATTRIBUTES with devtrace.run.id.\n\
Uses a running `devtrace serve` for the same data directory if there is one; otherwise starts \
receivers just for the run. The exit code is the command's (128+N when killed by signal N).\n\n\
Examples:\n  devtrace run -- cargo test\n  devtrace run --label after-fix -- python app.py\n  devtrace run --json run.json --quiet -- ./script.sh\n  devtrace run --python-autotrace myapp -- python -m myapp serve\n  devtrace run --record -- python app.py\n  devtrace run --plan 3f9a2c1b10 -- python -m myapp"
)]
pub struct RunArgs {
    /// A label for this run (compare runs by label with --baseline)
    #[arg(long)]
    pub label: Option<String>,
    /// Compare with the latest run that has this label (default: the previous run of the same command)
    #[arg(long, value_name = "LABEL")]
    pub baseline: Option<String>,
    /// Print no summary
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write the summary as JSON to this file
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Trace the function calls of this Python package (repeat, or separate with commas) in
    /// every Python interpreter the command starts; needs the devtrace package (sdk/python)
    /// installed for that Python
    #[arg(long, value_name = "PACKAGE")]
    pub python_autotrace: Vec<String>,
    /// With --python-autotrace: keep only calls lasting at least this many milliseconds
    /// (default 1)
    #[arg(long, value_name = "MS", requires = "python_autotrace")]
    pub python_autotrace_threshold: Option<f64>,
    /// Flight recorder: every Python interpreter the command starts keeps the last seconds of
    /// every call (CPython 3.12+) and writes them into the trace when it fails; every Erlang
    /// or Elixir VM (erl, elixir, mix, iex) keeps the last seconds of its calls, messages and
    /// processes and writes them when it ends, however it ends; if one is killed, devtrace
    /// recovers them afterwards (not `devtrace record`, which records your own work session)
    #[arg(long)]
    pub record: bool,
    /// With --record: seconds of calls to keep; 0 keeps everything (a BEAM VM is then recorded
    /// whole, read while it runs, and waits rather than lose an event)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        requires = "record"
    )]
    pub record_seconds: f64,
    /// With --record: most memory per process for the window, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 64, requires = "record")]
    pub record_mib: u64,
    /// With --record, for Erlang and Elixir: compile devtrace's probes into the program's
    /// modules from their debug info as they load (Mix and rebar3 keep it; erlc needs
    /// +debug_info) rather than trace them, so recording every call and message costs about a
    /// third as much; OTP's own code is not probed but GenServer messages are, and a module
    /// without debug info has its calls traced and its messages not recorded (docs/beam.md)
    #[arg(long, requires = "record", conflicts_with = "plan")]
    pub instrument: bool,
    /// Record exactly the functions of this instrumentation plan (`devtrace plan`), natively
    /// (Python) or by trace patterns on them alone, with the plan's messages (Erlang, Elixir);
    /// everything else runs at full speed
    #[arg(long, value_name = "ID")]
    pub plan: Option<String>,
    /// With --record or --plan: record the same calls but link no wait to its cause, and leave
    /// `threading.Lock()` as it is (no recorder's lock is made for the recorded modules)
    #[arg(long)]
    pub no_causality: bool,
    /// The command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// How many runs to list
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Only runs with this label
    #[arg(long)]
    pub label: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Which traces an analysis looks at.
#[derive(Args, Debug, Clone, Default)]
pub struct ScopeArgs {
    /// Only traces started within this long (30m, 2h, 7d) or since a time (2026-11-21T09:00:00Z)
    #[arg(long, value_name = "WHEN", value_parser = When::parse)]
    pub since: Option<When>,
    /// How many recent traces (or runs of the operation) to analyse
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "An operation is a span name in one service with one span kind: a gRPC client span and the server span it calls share a name but are two operations. When a name has several, perf breaks down the one with the most spans (the server side first) and says how to ask for the others.\n\nExamples:\n  devtrace perf                                   # root operations ranked by total time\n  devtrace perf journal.generate                  # its breakdown over the last 20 runs\n  devtrace perf /shop.Checkout/PlaceOrder --service frontend --kind client\n  devtrace perf --service checkout                # what the checkout service handles, ranked\n  devtrace perf --trace 4bf92f35                  # one trace"
)]
pub struct PerfArgs {
    /// The operation (span name) to break down; omit to rank operations by total time
    pub operation: Option<String>,
    /// Only spans of this service: the operation's, or with no operation, rank the operations
    /// this service handles
    #[arg(long)]
    pub service: Option<String>,
    /// Only spans of this kind (server, client, internal, producer, consumer)
    #[arg(long, value_parser = parse_span_kind_arg, requires = "operation")]
    pub kind: Option<devtrace_model::SpanKind>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Break down this one trace (id or unique prefix) instead
    #[arg(long, value_name = "ID", conflicts_with_all = ["operation", "service"], value_parser = trace_id_arg)]
    pub trace: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// A byte budget (`--max-in-flight-bytes`, `--max-queued-bytes`): a whole number of bytes, at
/// least 1; a budget of 0 would refuse everything and is surely a mistake.
pub fn byte_budget_arg(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err(
            "a budget of 0 bytes would refuse every request; give at least 1 \
                       (e.g. 268435456 for 256 MiB)"
                .into(),
        ),
        Ok(bytes) => Ok(bytes),
        Err(_) => Err(format!(
            "{text:?} is not a number of bytes; give a whole number such as 268435456 (256 MiB)"
        )),
    }
}

fn parse_span_kind_arg(text: &str) -> Result<devtrace_model::SpanKind, String> {
    devtrace_model::parse_span_kind(text).ok_or_else(|| {
        format!("{text:?} is not a span kind: write server, client, internal, producer or consumer")
    })
}

#[derive(Args, Debug)]
pub struct ErrorsArgs {
    #[command(subcommand)]
    pub command: Option<ErrorsCommand>,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Only errors in traces containing this operation
    #[arg(long)]
    pub operation: Option<String>,
    /// Print JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ErrorsCommand {
    /// The causal chain of one error: the failing span, its ancestors, what it consumed
    Show {
        /// An error fingerprint (from `devtrace errors`) or a trace id / prefix
        target: String,
    },
}

#[derive(Args, Debug)]
pub struct LocksArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Only this trace (id or unique prefix)
    #[arg(long, value_name = "ID", value_parser = trace_id_arg)]
    pub trace: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  devtrace compare 4bf92f35 a3ce929d                 # two traces\n  devtrace compare --operation journal.generate --last 2\n  devtrace compare --operation journal.generate --before 2026-11-21T10:00:00Z --after 2026-11-21T10:00:00Z"
)]
pub struct CompareArgs {
    /// Trace A (before): id or unique prefix
    #[arg(value_parser = trace_id_arg)]
    pub a: Option<String>,
    /// Trace B (after): id or unique prefix
    #[arg(value_parser = trace_id_arg)]
    pub b: Option<String>,
    /// Compare runs of this operation (with --last or --before/--after)
    #[arg(long)]
    pub operation: Option<String>,
    /// Compare the last N runs: the older half against the newer half (--last 2: the last two)
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// A = runs that started before this time (30m = 30 minutes ago, or an RFC 3339 time)
    #[arg(long, value_name = "WHEN", value_parser = When::parse)]
    pub before: Option<When>,
    /// B = runs that started at or after this time
    #[arg(long, value_name = "WHEN", value_parser = When::parse)]
    pub after: Option<When>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  devtrace insights                       # findings across the last hour's traces\n  devtrace insights --sessions --repo .   # what keeps happening in this repository's sessions\n  devtrace insights --sessions --repo . --task \"fix the npm build\""
)]
pub struct InsightsArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Only traces containing this operation
    #[arg(long, conflicts_with = "sessions")]
    pub operation: Option<String>,
    /// Cross-session learning: observations that recur across development sessions
    #[arg(long)]
    pub sessions: bool,
    /// With --sessions: only this repository's sessions (a directory, or a repository URL)
    #[arg(long, value_name = "DIR", requires = "sessions")]
    pub repo: Option<String>,
    /// With --sessions: put the observations related to this task first
    #[arg(long, value_name = "TEXT", requires = "sessions")]
    pub task: Option<String>,
    /// How many findings to show, by impact. Without it: about ten, always including the best
    /// finding of every kind (so no kind is crowded out by another's many)
    #[arg(long, conflicts_with = "all")]
    pub limit: Option<usize>,
    /// Show every finding
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Run the fixed program (the three LLM calls concurrently) and compare with the original
    #[arg(long)]
    pub fixed: bool,
    /// How many times to run the program
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
}

#[derive(Args, Debug, Default)]
#[command(
    after_help = "Settings come from, in order: flags, environment variables, the config file, defaults.\n\
The config file is TOML with the same names as the flags, e.g.\n\n\
    grpc-listen = \"127.0.0.1:4317\"\n    max-body-bytes = 16777216\n\n\
It is read from --config, else $DEVTRACE_CONFIG, else ~/.config/devtrace/config.toml if present.\n\n\
Clients: set OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (OTLP/HTTP) or\n\
http://127.0.0.1:4317 with OTEL_EXPORTER_OTLP_PROTOCOL=grpc."
)]
pub struct ServeArgs {
    /// Config file (TOML)
    #[arg(long, env = "DEVTRACE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address for OTLP/gRPC [default: 127.0.0.1:4317]
    #[arg(long, env = "DEVTRACE_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<SocketAddr>,
    /// Address for OTLP/HTTP (/v1/traces, /v1/logs) [default: 127.0.0.1:4318]
    #[arg(long, env = "DEVTRACE_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Address for the API (/api/v1/health, /api/v1/stats, MCP at /mcp) [default: 127.0.0.1:4319]
    #[arg(long, env = "DEVTRACE_API_LISTEN", value_name = "ADDR")]
    pub api_listen: Option<SocketAddr>,
    /// Largest request body, compressed or not, in bytes; larger ones get 413 [default: 16777216]
    #[arg(long, env = "DEVTRACE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Requests processed at once; more get the retryable throttle reply, so memory stays flat under overload [default: 48]
    #[arg(long, env = "DEVTRACE_MAX_IN_FLIGHT_REQUESTS", value_name = "N")]
    pub max_in_flight_requests: Option<usize>,
    /// Bytes of request bodies held at once, from reading until commit; past it clients get the retryable throttle reply (a request alone is never refused for its size) [default: 268435456]
    #[arg(long, env = "DEVTRACE_MAX_IN_FLIGHT_BYTES", value_name = "BYTES", value_parser = byte_budget_arg)]
    pub max_in_flight_bytes: Option<usize>,
    /// Attributes kept per span, event, link or log record; the rest are counted as dropped [default: 128]
    #[arg(long, env = "DEVTRACE_MAX_ATTRIBUTES", value_name = "N")]
    pub max_attributes: Option<usize>,
    /// Longest attribute value kept, in bytes; longer ones are truncated [default: 65536]
    #[arg(long, env = "DEVTRACE_MAX_ATTRIBUTE_BYTES", value_name = "BYTES")]
    pub max_attribute_bytes: Option<usize>,
    /// Events kept per span [default: 128]
    #[arg(long, env = "DEVTRACE_MAX_EVENTS", value_name = "N")]
    pub max_events: Option<usize>,
    /// Links kept per span [default: 128]
    #[arg(long, env = "DEVTRACE_MAX_LINKS", value_name = "N")]
    pub max_links: Option<usize>,
    /// Spans and log records that may wait for the writer before clients are asked to retry [default: 200000]
    #[arg(long, env = "DEVTRACE_MAX_QUEUED_ITEMS", value_name = "N")]
    pub max_queued_items: Option<u64>,
    /// Bytes of prepared (compressed) rows that may wait for the writer before clients are asked to retry [default: 134217728]
    #[arg(long, env = "DEVTRACE_MAX_QUEUED_BYTES", value_name = "BYTES", value_parser = byte_budget_arg)]
    pub max_queued_bytes: Option<usize>,
    /// Log level for devtrace's own messages: error, warn, info, debug, trace [default: info]
    #[arg(long, env = "DEVTRACE_LOG", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Another host name (NAME, or NAME:PORT for one port only) every port may be addressed by,
    /// and whose pages may call it (repeatable). Requests naming any other host in Host or
    /// Origin are refused, against DNS rebinding; loopback names with the port's own number
    /// always work
    #[arg(
        long = "allow-host",
        env = "DEVTRACE_ALLOW_HOSTS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub allow_hosts: Vec<String>,
    /// Record every MCP request served at /mcp as a span (MCP semantic conventions) in the store
    #[arg(long, env = "DEVTRACE_SELF_TRACE")]
    pub self_trace: bool,
    /// Store secrets as received: turn off redaction on ingest (on by default). The variable
    /// takes 1/0, true/false, yes/no
    #[arg(
        long,
        env = "DEVTRACE_NO_REDACT",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_redact: bool,
    /// Extra redaction rules: a JSON file shaped like the built-in rules
    /// ({"version": 1, "rules": [{"name", "description", "pattern"}]})
    #[arg(long, env = "DEVTRACE_REDACTION_RULES", value_name = "FILE")]
    pub redaction_rules: Option<PathBuf>,
    /// Require API tokens: `auto` requires them with a PostgreSQL or ClickHouse store or when any port listens
    /// beyond loopback; `required` also on the embedded store [default: auto]
    #[arg(long, env = "DEVTRACE_AUTH", value_enum, value_name = "WHEN")]
    pub auth: Option<AuthWhen>,
    /// Serve without authentication even where it would be required (anyone who can reach the
    /// ports can read and write everything). Logged as a warning at every start
    #[arg(long, env = "DEVTRACE_INSECURE_NO_AUTH", conflicts_with = "auth")]
    pub insecure_no_auth: bool,
    /// Failed authentication attempts a client address may make per minute before it is
    /// refused (429) until the minute ends [default: 20]
    #[arg(long, env = "DEVTRACE_AUTH_FAILURES_PER_MINUTE", value_name = "N")]
    pub auth_failures_per_minute: Option<u32>,
    /// Delete data older than this (e.g. 30d) in every project without a retention of its own
    /// (`devtrace project set NAME --retention`), continuously, in small transactions
    #[arg(long, env = "DEVTRACE_RETENTION", value_name = "DURATION", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub retention: Option<u64>,
    /// Serve HTTPS and gRPC over TLS with this certificate chain (PEM); needs --tls-key
    #[arg(
        long,
        env = "DEVTRACE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM, PKCS#8 or RSA) of --tls-cert
    #[arg(
        long,
        env = "DEVTRACE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Queue QA of every trace-1.0.0 session with a task and test command as it arrives
    /// (POST /api/v1/sessions)
    #[arg(long, env = "DEVTRACE_QA")]
    pub qa: bool,
    /// QA jobs run at once (0: none here; jobs wait for a process with workers)
    #[arg(
        long,
        env = "DEVTRACE_QA_WORKERS",
        default_value_t = 1,
        value_name = "N"
    )]
    pub qa_workers: usize,
    /// The runner of QA jobs queued on this server, unless a request names another
    #[arg(long, value_enum, env = "DEVTRACE_QA_RUNNER", default_value_t = QaRunnerArg::Sandbox)]
    pub qa_runner: QaRunnerArg,
}

/// When `serve` requires tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthWhen {
    /// With a PostgreSQL store or a non-loopback listen address.
    Auto,
    /// Always.
    Required,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Attribute filters (--attr) read the spans of at most 2,000 candidate traces, newest first, \
and say so when they stop early.\n\n\
Examples:\n  devtrace ls --errors --since 1h\n  devtrace ls --service api --min-duration 250ms --json\n  \
devtrace ls --operation 'SELECT users' --attr db.system=postgresql\n  devtrace ls --label after-fix"
)]
pub struct LsArgs {
    /// Only traces with a span of this service (any span, not only the root)
    #[arg(long)]
    pub service: Option<String>,
    /// Only traces whose root operation contains this text
    #[arg(long)]
    pub name: Option<String>,
    /// Only traces containing a span named exactly this (any span, not only the root)
    #[arg(long, value_name = "NAME")]
    pub operation: Option<String>,
    /// Only traces at least this long (e.g. 250ms, 1.5s, 2m)
    #[arg(long, value_name = "DURATION", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub min_duration: Option<u64>,
    /// Only traces at most this long
    #[arg(long, value_name = "DURATION", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub max_duration: Option<u64>,
    /// Only traces with at least one error span
    #[arg(long, conflicts_with = "ok")]
    pub errors: bool,
    /// Only traces without any error span
    #[arg(long)]
    pub ok: bool,
    /// Only traces with an attribute (on any span or its resource): KEY=VALUE equals, KEY~TEXT contains (repeatable: all must match)
    #[arg(long = "attr", value_name = "FILTER", value_parser = parse_attribute_filter)]
    pub attributes: Vec<devtrace_query::search::AttributeFilter>,
    /// Only the traces of one `devtrace run` (its id): the run and the traces attached to it
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// Only runs recorded with `devtrace run --label LABEL`
    #[arg(long)]
    pub label: Option<String>,
    /// Only traces started within this long (e.g. 30m, 2h, 7d) or since a time (2026-11-21T09:00:00Z)
    #[arg(long, value_name = "WHEN", value_parser = When::parse)]
    pub since: Option<When>,
    /// Only traces started before this long ago (e.g. 1h) or before a time
    #[arg(long, value_name = "WHEN", value_parser = When::parse)]
    pub until: Option<When>,
    /// How many traces to list
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON (an array of trace summaries) instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Runs of 5 or more same-named siblings are folded into one line; --no-fold shows them all."
)]
pub struct ShowArgs {
    /// Trace id, or a unique prefix of one (as `devtrace ls` prints)
    #[arg(value_parser = trace_id_arg)]
    pub trace: String,
    /// Also print every span's attributes and events
    #[arg(long)]
    pub attrs: bool,
    /// Do not fold runs of repeated siblings
    #[arg(long)]
    pub no_fold: bool,
    /// Print the full trace as JSON (spans in tree order, with logs)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "FILE holds one OTLP/JSON document (TracesData, LogsData or MetricsData) or one per line,\n\
or one developer-telemetry document (\"version\": \"trace-1.0.0\"; validated, errors name the field).\n\
Log records that are Claude Code, Codex or Gemini CLI events also make their sessions.\n\
Profiles files are recognised and skipped.\n\
A file that fails to decode stores nothing; the other files are still imported.\n\
Everything is redacted on the way in (see `devtrace serve --help` to add rules or opt out).\n\n\
Examples:\n  devtrace import traces.json logs.jsonl\n  devtrace import session.json          # a trace-1.0.0 document\n  devtrace import claude-code            # ~/.claude/projects, only what is new\n  devtrace import codex ~/.codex/sessions/2026/01"
)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub source: Option<ImportSource>,
    /// Files to import
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print a JSON summary on stdout (and no progress bar)
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ImportSource {
    /// Claude Code transcripts, sub-agents included [default: ~/.claude/projects]
    #[command(
        alias = "claude",
        after_help = "Incremental: each transcript's position is remembered, so importing again reads only\n\
what was added (a replaced file is read again; nothing is ever stored twice).\n\
CLAUDE_CONFIG_DIR is honoured. PATH may be a project directory or one .jsonl file.\n\
--follow keeps going: lines written to the transcripts (and new transcripts) are imported\n\
within a second, until Ctrl-C; stopping and starting again imports nothing twice."
    )]
    ClaudeCode {
        /// A directory of transcripts (searched recursively) or one transcript
        path: Option<PathBuf>,
        /// Keep importing what is written, as it is written, until interrupted
        #[arg(long)]
        follow: bool,
    },
    /// Codex CLI rollouts [default: ~/.codex/sessions]
    #[command(
        after_help = "Incremental like `import claude-code`. CODEX_HOME is honoured. PATH may be a\n\
directory (searched recursively) or one rollout-*.jsonl file. --follow keeps importing what\n\
is written, within a second, until Ctrl-C."
    )]
    Codex {
        /// A directory of rollouts (searched recursively) or one rollout
        path: Option<PathBuf>,
        /// Keep importing what is written, as it is written, until interrupted
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// OTLP/JSON TracesData, as the OpenTelemetry file exporter writes it
    OtlpJson,
    /// OTLP protobuf ExportTraceServiceRequest bytes
    OtlpProto,
    /// A session sent as a trace-1.0.0 document, as stored (with its qa block)
    #[value(name = "trace-1.0.0")]
    TraceV1,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Trace id, or a unique prefix of one
    pub trace: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::OtlpJson)]
    pub format: ExportFormat,
    /// Write to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_attribute_filter(text: &str) -> Result<devtrace_query::search::AttributeFilter, String> {
    devtrace_query::search::AttributeFilter::parse(text)
}

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
devtrace record start --task \"fix the empty-cart total\" --test-command \"pytest -q\"\n  \
eval \"$(devtrace record shell-init bash)\"     # in ~/.bashrc: commands are recorded while a recording runs\n  \
devtrace note \"the total is computed twice\" --tag debugging\n  \
devtrace record status\n  \
devtrace record stop                          # final patch, test results, into the store\n  \
devtrace record --task \"try the new parser\" -- $SHELL   # record one shell; stops when it exits\n\n\
What is captured: commands typed in shells with the integration (command line, directory, exit\n\
code, duration; output only under `devtrace record exec` or `record --capture`), saved files in\n\
the working tree (as diffs; .gitignore respected), Neovim navigation with editors/nvim, notes.\n\
Everything is redacted (keys, tokens, passwords, e-mail addresses) before it is written. See\n\
docs/record.md.\n\n\
Not to be confused with `devtrace run --record`, the flight recorder of a Python program's calls."
)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub command: Option<RecordCommand>,
    #[command(flatten)]
    pub start: RecordStartArgs,
    /// With `--`: run this command (usually your shell) while recording, then stop
    #[arg(last = true, value_name = "COMMAND")]
    pub run: Vec<String>,
    /// Capture mode: run the shell on a terminal devtrace reads, so each command's output
    /// (stdout and stderr as shown, first and last 16 KiB, redacted) is recorded with it
    #[arg(long)]
    pub capture: bool,
}

#[derive(Subcommand, Debug)]
pub enum RecordCommand {
    /// Begin recording in this git working tree (a background recorder keeps going until `record stop`)
    Start(RecordStartArgs),
    /// End the recording: final patch, test results, and the session into the store (or a server)
    Stop(RecordStopArgs),
    /// What is being recorded: the session, counts of events, paused or not
    Status {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Stop capturing until `record resume` (notes are still taken; what changes meanwhile is
    /// not recorded, though the final patch still includes it)
    Pause {
        /// Print {"paused": true, "session"} as JSON
        #[arg(long)]
        json: bool,
    },
    /// Capture again after `record pause`
    Resume {
        /// Print {"paused": false, "session"} as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the shell integration: eval "$(devtrace record shell-init bash)" (or zsh, fish)
    #[command(after_help = "Add to your shell's start-up file:\n  \
bash (~/.bashrc):                    eval \"$(devtrace record shell-init bash)\"\n  \
zsh (~/.zshrc):                      eval \"$(devtrace record shell-init zsh)\"\n  \
fish (~/.config/fish/config.fish):   devtrace record shell-init fish | source\n\n\
While no recording runs, a prompt costs one file check. While one runs, each command's line,\n\
directory, exit code and duration are appended to the recording. Commands typed with a leading\n\
space are not recorded when your shell keeps them out of history (HISTCONTROL=ignorespace).")]
    ShellInit {
        /// bash, zsh or fish
        #[arg(value_enum)]
        shell: ShellName,
    },
    /// Run a command and record it with its output (bounded, redacted); the exit code is the command's
    Exec {
        /// The command and its arguments
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
    /// The background recorder itself (started by `record start`)
    #[command(hide = true)]
    Daemon {
        /// The recording's directory
        #[arg(long, value_name = "DIR")]
        session: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShellName {
    Bash,
    Zsh,
    Fish,
}

/// What to do with a recording whose recorder died.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OrphanChoice {
    /// Start a recorder for it again and go on recording it
    Resume,
    /// Finish it as `record stop` would (final patch, into the store), then start a new one
    Close,
    /// Delete what it recorded, then start a new one
    Discard,
}

#[derive(Args, Debug, Default)]
pub struct RecordStartArgs {
    /// What you are setting out to do (the session's title)
    #[arg(long, value_name = "TEXT")]
    pub task: Option<String>,
    /// The command that tells whether the task is done; run at `record stop` for the test results
    #[arg(long, value_name = "COMMAND")]
    pub test_command: Option<String>,
    /// The container image the test command runs in (recorded for QA, not used here)
    #[arg(long, value_name = "IMAGE")]
    pub test_image: Option<String>,
    /// Record your git user.name and user.email instead of a pseudonym derived from them
    #[arg(long)]
    pub identify: bool,
    /// Remind you at the prompt to add a note after this long without one (e.g. 15m)
    #[arg(long, value_name = "DURATION", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub ask_every: Option<u64>,
    /// Do not watch the working tree for saved files (the final patch still has every change)
    #[arg(long)]
    pub no_watch: bool,
    /// The working tree to record [default: the current directory's]
    #[arg(long, short = 'C', value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// When a recording was left open by a recorder that died: resume it, close it, or discard it
    /// (asked on a terminal; required otherwise)
    #[arg(long, value_enum, value_name = "WHAT")]
    pub orphan: Option<OrphanChoice>,
    /// Print what is recorded as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RecordStopArgs {
    /// Do not run the test command (no test results)
    #[arg(long)]
    pub no_test: bool,
    /// The test command's time limit
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub test_timeout: u64,
    /// Also write the trace-1.0.0 document to this file
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
}

impl RecordStopArgs {
    /// `devtrace record stop` with no options, clap's defaults included (the test command's
    /// time limit): what closing an orphaned recording and `devtrace record -- COMMAND` stop
    /// with. (A derived `Default` would give a time limit of 0 s.)
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Stop {
            #[command(flatten)]
            args: RecordStopArgs,
        }
        <Stop as clap::Parser>::parse_from(["stop"]).args
    }
}

#[derive(Args, Debug)]
#[command(
    after_help = "The note goes to the recording (`devtrace record start`) as a thought, with its tags.\n\n\
Examples:\n  devtrace note \"the cache key ignores the locale\" --tag debugging\n  devtrace note \"dead end: the bug is not in the parser\" --tag dead-end --tag parser"
)]
pub struct NoteArgs {
    /// What you are thinking (several words are joined with spaces)
    #[arg(required = true, value_name = "TEXT")]
    pub text: Vec<String>,
    /// A tag (repeatable)
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Print a JSON answer
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "QA applies a session's patch (artifacts.final_patch, else its edit events, else an \
agent's edits) to its task's repository at task.commit, runs task.test_command at the base commit and \
with the patch in an isolated runner, compares the tests (fixed, broken, still failing) and scores the \
session against rubric v1 (devtrace-evidence/v1 always; an LLM judge only when DEVTRACE_QA_LLM and \
DEVTRACE_QA_LLM_MODEL are set). Jobs live in the store: a running `devtrace serve` runs them (see \
--qa-workers); without one, `qa run --wait` runs the job here.\n\n\
Examples:\n  devtrace qa run 123e4567 --wait\n  devtrace qa run fe5e1c67 --commit HEAD~1 --test-command 'npm test' --repo ~/src/shop\n  \
devtrace qa status\n  devtrace qa show 123e4567 --json\n  devtrace qa cancel 12\n  devtrace qa retry 123e4567 --wait\n\n\
See docs/qa.md for the runners, their isolation and the judges' rules."
)]
pub struct QaArgs {
    #[command(subcommand)]
    pub command: QaCommand,
}

#[derive(Subcommand, Debug)]
pub enum QaCommand {
    /// Queue QA of a session (trace id, unique prefix or session id)
    #[command(
        after_help = "Exit codes with --wait: 0 the patch passes (resolved, passed), 3 the tests ran and \
the patch does not pass (broke_tests, unresolved), 1 the job failed (the patch does not apply, nothing \
to test, an infrastructure failure: not the session's fault)."
    )]
    Run {
        session: String,
        /// Wait for the result (running the job here when no devtrace serve is running)
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        settings: QaSettingsArgs,
        #[arg(long)]
        json: bool,
    },
    /// Jobs by state and the most recent ones
    Status {
        /// Only jobs in this state (repeatable): queued, running, done, failed, cancelled
        #[arg(long, value_name = "STATE", value_delimiter = ',', value_parser = qa_state_arg)]
        state: Vec<devtrace_store::qa::QaJobState>,
        /// How many jobs to list
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// A session's QA: its jobs and latest result
    Show {
        session: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job (its number, or a session's active job)
    Cancel {
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// Queue a job again with its settings (its number, or a session's latest job)
    Retry {
        target: String,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
}

/// QA runners, for flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum QaRunnerArg {
    /// bubblewrap: no network, only the checkout writable, time, memory and process limits
    #[default]
    Sandbox,
    /// Docker with the task's test_image (needs a running engine)
    Docker,
    /// Podman with the task's test_image
    Podman,
    /// This machine as it is, no isolation (only when you ask for it)
    Local,
}

impl QaRunnerArg {
    pub fn kind(self) -> devtrace_qa::RunnerKind {
        match self {
            Self::Sandbox => devtrace_qa::RunnerKind::Sandbox,
            Self::Docker => devtrace_qa::RunnerKind::Docker,
            Self::Podman => devtrace_qa::RunnerKind::Podman,
            Self::Local => devtrace_qa::RunnerKind::Local,
        }
    }
}

#[derive(Args, Debug, Default)]
pub struct QaSettingsArgs {
    /// Where the tests run [default: sandbox]
    #[arg(long, value_enum)]
    pub runner: Option<QaRunnerArg>,
    /// Each test run's time limit, e.g. 90s, 10m [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = devtrace_query::timefmt::parse_duration_arg)]
    pub timeout: Option<u64>,
    /// Memory each process of the test command may use, in MiB [default: 4096]
    #[arg(long, value_name = "MIB")]
    pub memory: Option<u64>,
    /// Processes the test command may run at once [default: 512]
    #[arg(long, value_name = "N")]
    pub max_processes: Option<u64>,
    /// The test command, instead of the session's task.test_command
    #[arg(long, value_name = "COMMAND")]
    pub test_command: Option<String>,
    /// The repository (URL or path), instead of the session's (agent sessions: their directory)
    #[arg(long, value_name = "URL_OR_PATH")]
    pub repo: Option<String>,
    /// The base commit, instead of the session's task.commit (agent sessions record none)
    #[arg(long, value_name = "COMMIT")]
    pub commit: Option<String>,
    /// Do not ask the configured LLM judge
    #[arg(long)]
    pub no_llm: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_grammar_is_consistent() {
        // Duplicate flags (a global flag and a command's of the same name), bad defaults and
        // conflicting names panic here rather than when a user runs that command.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}

/// clap value parser for a trace id argument: 1 to 32 hexadecimal digits (a unique prefix is
/// resolved when the command runs), so a mistyped id is a usage error.
fn trace_id_arg(text: &str) -> Result<String, String> {
    devtrace_store::check_trace_id_prefix(text)
        .map(str::to_owned)
        .map_err(|e| e.to_string())
}

/// clap value parser for `token create --scope`.
fn scope_arg(text: &str) -> Result<devtrace_server::auth::Scope, String> {
    devtrace_server::auth::Scope::parse(text).ok_or_else(|| {
        format!(
            "unknown scope {}: use ingest, read, qa or admin",
            devtrace_model::recorded::quote(text)
        )
    })
}

/// clap value parser for `token create --name`: trimmed, not empty.
fn token_name_arg(text: &str) -> Result<String, String> {
    match text.trim() {
        "" => Err("the name must not be empty: say who or what uses the token".into()),
        name => Ok(name.to_owned()),
    }
}

/// `project set --retention`: how long a project keeps its data; `None` keeps everything.
#[derive(Clone, Copy, Debug)]
pub struct Retention(pub Option<u64>);

impl Retention {
    /// A duration above zero (30d), or `none`/`never`/`forever`.
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "none" | "never" | "forever" => Ok(Self(None)),
            text => match devtrace_query::timefmt::parse_duration(text)? {
                0 => Err(
                    "a retention of 0 would delete everything as it arrives; give a duration such as 30d, or none"
                        .into(),
                ),
                nanos => Ok(Self(Some(nanos))),
            },
        }
    }
}

/// clap value parser for `qa status --state`.
fn qa_state_arg(text: &str) -> Result<devtrace_store::qa::QaJobState, String> {
    devtrace_store::qa::QaJobState::parse(text.trim()).ok_or_else(|| {
        format!(
            "{}: use queued, running, done, failed or cancelled",
            devtrace_model::recorded::quote(text)
        )
    })
}

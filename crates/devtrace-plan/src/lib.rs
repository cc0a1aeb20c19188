//! Instrumentation plans: what to record so a blind spot's time shows where it goes.
//!
//! Owns: finding an operation's function (the spans' `code.*` attributes, else its name read as
//! `module.qualname`, else the span name's literal where the source starts it by hand: a
//! `start_as_current_span`/`start_span` decorator, `with` block or assignment), reading the source to the functions it calls (Python's own `ast`, in
//! the script `plan_calls.py` shipped inside the binary: parsed, never executed), the plan
//! (which code objects to record, at which threshold, why each, and the calls that cannot be
//! recorded and why), its explanation in words, and where plans are kept (`DATA/plans/ID.json`).
//! An Erlang or Elixir program's operation is planned by [`beam`] (the languages' own parsers,
//! message flows); its plan is the same `Plan`, with `language` and `flows`.
//!
//! Must not: format for a face beyond the one explanation every face shares, write to the
//! store, or run the program. Plans are files beside the store rather than rows in it: they
//! name local source files, and a file per plan is what `devtrace run --plan` hands to Python
//! (or, as Erlang terms, to a BEAM VM).

pub mod beam;

use devtrace_analyze::detectors::blind_spot;
use devtrace_model::{AnyValue, recorded};
use devtrace_query::scope::{self, QueryError, Scope};
use devtrace_store::Store;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PLAN_CALLS: &str = include_str!("plan_calls.py");

/// Runs of the operation read to locate it and measure its blind spot.
pub const DEFAULT_LAST: usize = 20;
/// How deep the call graph is followed from the operation's function.
pub const DEFAULT_DEPTH: u32 = 2;
/// Calls at least this long become spans in the planned run; shorter ones are counted.
pub const DEFAULT_THRESHOLD_MS: f64 = 1.0;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Python(String),
    #[error("plans in {}: {source}", recorded::escape(&.dir.to_string_lossy()))]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One function the plan records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanFunction {
    pub module: String,
    pub qualname: String,
    pub file: String,
    pub line: u32,
    /// 0: the operation's function; n: n calls away; -1: a library function outside the
    /// source, recorded but not followed.
    pub depth: i32,
    /// Why it is in the plan (which call of which function, at which line).
    pub via: String,
    pub recursive: bool,
}

/// A call the plan cannot record, or records by candidates, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanNote {
    pub caller: String,
    pub call: String,
    pub line: u32,
    /// `c`, `library`, `candidates`, `unknown`, `unparsed`; `block` for the span started by
    /// hand the plan answers (a `with` block, or the statements after `span = start_span(…)`).
    pub kind: String,
    pub reason: String,
}

/// The blind spot the plan answers, measured before it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlindSpot {
    pub runs: usize,
    pub own_share: f64,
    pub own_ms_per_run: f64,
    pub duration_ms_per_run: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub created_unix_nano: u64,
    pub operation: String,
    pub threshold_ms: f64,
    pub depth: u32,
    pub roots: Vec<String>,
    pub blind_spot: BlindSpot,
    pub functions: Vec<PlanFunction>,
    pub notes: Vec<PlanNote>,
    /// `elixir` or `erlang` for a BEAM program's plan (its functions' `module` is the atom's
    /// text, `qualname` `function/arity`); absent for Python's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The message flows a BEAM plan follows (requests to a server's callbacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<beam::PlanFlow>,
}

/// What to plan for.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    pub operation: String,
    /// Directories the program's modules are found under (default: the current directory).
    pub roots: Vec<PathBuf>,
    pub depth: u32,
    pub threshold_ms: f64,
    pub last: usize,
    /// The Python that parses the source (default `DEVTRACE_PYTHON`, else `python3`).
    pub python: Option<String>,
}

impl PlanRequest {
    pub fn new(operation: &str) -> Self {
        Self {
            operation: operation.to_owned(),
            roots: Vec::new(),
            depth: DEFAULT_DEPTH,
            threshold_ms: DEFAULT_THRESHOLD_MS,
            last: DEFAULT_LAST,
            python: None,
        }
    }
}

fn string_attr<'a>(span: &'a devtrace_model::Span, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| match span.attr(k) {
        Some(AnyValue::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    })
}

/// The module a file is, under one of `roots` (`root/app/jobs.py` → `app.jobs`).
fn module_of(file: &Path, roots: &[PathBuf]) -> Option<String> {
    for root in roots {
        if let Ok(rel) = file.strip_prefix(root) {
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let last = parts.pop()?;
            let stem = last.strip_suffix(".py")?;
            if stem != "__init__" {
                parts.push(stem.to_owned());
            }
            return Some(parts.join("."));
        }
    }
    None
}

/// The directory above a file's outermost package (the one holding `app/` for `app/jobs.py`).
fn package_root(file: &Path) -> Option<PathBuf> {
    let mut dir = file.parent()?.to_path_buf();
    while dir.join("__init__.py").is_file() {
        dir = dir.parent()?.to_path_buf();
    }
    Some(dir)
}

/// `(module, qualname, file)` for the operation: from `code.*` attributes, else from the name;
/// `None` when neither tells (the span may then be one the program starts by hand).
fn locate(
    traces: &[devtrace_analyze::AnalyzedTrace],
    operation: &str,
    roots: &mut Vec<PathBuf>,
) -> Option<(String, String, Option<String>)> {
    for trace in traces {
        for i in trace.spans_named(operation) {
            let span = trace.span(i);
            let function = string_attr(span, &["code.function.name", "code.function"]);
            let file = string_attr(span, &["code.file.path", "code.filepath"]);
            if let (Some(function), Some(file)) = (function, file) {
                let path = Path::new(file);
                if let Some(root) = package_root(path).filter(|_| path.is_absolute())
                    && !roots.contains(&root)
                {
                    roots.push(root);
                }
                let namespace = string_attr(span, &["code.namespace"]);
                let qualname = match namespace {
                    Some(ns)
                        if !function.contains('.')
                            && !ns.contains('/')
                            && module_of(path, roots).as_deref() != Some(ns) =>
                    {
                        format!("{}.{function}", ns.rsplit('.').next().unwrap_or(ns))
                    }
                    _ => function.to_owned(),
                };
                if let Some(module) = module_of(path, roots) {
                    return Some((module, qualname, Some(file.to_owned())));
                }
            }
        }
    }
    // The name as module.qualname: the longest prefix that is a module file under a root.
    let parts: Vec<&str> = operation.split('.').collect();
    let valid = parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c == '_' || c.is_alphanumeric()));
    if valid {
        for split in (1..parts.len()).rev() {
            let module = parts[..split].join(".");
            let rel: PathBuf = parts[..split].iter().collect();
            for root in roots.iter() {
                for file in [
                    root.join(&rel).with_extension("py"),
                    root.join(&rel).join("__init__.py"),
                ] {
                    if file.is_file() {
                        return Some((
                            module,
                            parts[split..].join("."),
                            Some(file.to_string_lossy().into_owned()),
                        ));
                    }
                }
            }
        }
    }
    None
}

/// The roots, for a message.
pub(crate) fn roots_text(roots: &[PathBuf]) -> String {
    roots
        .iter()
        .map(|r| recorded::escape(&r.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a span could be planned neither as a function nor as a block started by hand.
fn not_found(operation: &str, roots: &[PathBuf], dynamic: &[DynamicSite]) -> PlanError {
    if !dynamic.is_empty() {
        let sites: Vec<String> = dynamic
            .iter()
            .take(5)
            .map(|d| {
                format!(
                    "{} at {}:{}",
                    recorded::quote_short(&d.call, 80),
                    recorded::escape(&d.file),
                    d.line
                )
            })
            .collect();
        return PlanError::NotFound(format!(
            "cannot plan span {}: no code under {} starts a span with that name as a literal, and the span{} that may be it {} named at run time (an f-string or a variable), which the source alone cannot tell: {}{}; give the code the span covers a function of its own and plan that by module.function, or start the span with a literal name",
            recorded::name(operation),
            roots_text(roots),
            if dynamic.len() == 1 { "" } else { "s" },
            if dynamic.len() == 1 { "is" } else { "are" },
            sites.join(", "),
            if dynamic.len() > 5 { ", …" } else { "" },
        ));
    }
    PlanError::NotFound(format!(
        "cannot tell which function {} is: its spans have no code.function.name and code.file.path attributes, its name is not module.function for a file under {}, and no code there starts a span of that name (start_as_current_span or start_span with it as a literal); set those attributes on the span (the native recorder does), or pass --source DIR where its package lives",
        recorded::name(operation),
        roots_text(roots)
    ))
}

/// A span the source starts with a name built at run time.
#[derive(Deserialize)]
struct DynamicSite {
    file: String,
    line: u32,
    call: String,
}

/// Where the source starts a span by hand: a decorated function or a block.
#[derive(Deserialize)]
struct SpanSite {
    file: String,
    line: u32,
    function: String,
}

#[derive(Deserialize)]
struct ScriptOutput {
    functions: Vec<PlanFunction>,
    notes: Vec<PlanNote>,
    missing: Vec<serde_json::Value>,
    #[serde(default)]
    spans: Vec<SpanSite>,
    #[serde(default)]
    dynamic: Vec<DynamicSite>,
}

/// Makes a plan for `request.operation` from the stored runs and the source.
pub fn make_plan(store: &dyn Store, request: &PlanRequest) -> Result<Plan, PlanError> {
    let traces = scope::recent(
        store,
        Scope {
            last: Some(request.last),
            since_unix_nano: None,
        },
        // A function's spans by name, whichever service recorded them.
        Some(&devtrace_model::OperationFilter::named(&request.operation)),
        DEFAULT_LAST,
    )?;
    let mut roots: Vec<PathBuf> = if request.roots.is_empty() {
        vec![std::env::current_dir().map_err(|source| PlanError::Io {
            dir: ".".into(),
            source,
        })?]
    } else {
        request
            .roots
            .iter()
            .map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone()))
            .collect()
    };
    let own = blind_spot::own_times(&traces)
        .remove(&request.operation)
        .unwrap_or_default();
    let runs = own.runs.max(1) as f64;
    let blind = BlindSpot {
        runs: own.runs,
        own_share: own.share(),
        own_ms_per_run: own.own_nanos as f64 / runs / 1e6,
        duration_ms_per_run: own.duration_nanos as f64 / runs / 1e6,
    };
    if let Some(target) = beam::target(&request.operation)
        .filter(|_| beam::recorded_by_beam(&traces, &request.operation))
    {
        let (language, parsed) = beam::read_source(request, &roots, &target)?;
        let mut plan = new_plan(request, &roots, blind, &target.module, &target.function);
        plan.functions = parsed.functions;
        plan.notes = parsed.notes;
        plan.flows = parsed.flows;
        plan.language = Some(language.to_owned());
        return Ok(plan);
    }
    if let Some(outer) = beam::enclosing_function(&request.operation)
        .filter(|_| beam::recorded_by_beam(&traces, &request.operation))
    {
        return Err(PlanError::NotFound(format!(
            "{} is an anonymous function, which a plan cannot name (the compiler names it): plan the function it is written in, {}, whose plan records its time and the calls it makes: devtrace plan {}",
            recorded::name(&request.operation),
            recorded::quote(&outer),
            recorded::quote(&outer),
        )));
    }
    let located = locate(&traces, &request.operation, &mut roots);
    let target = match &located {
        Some((module, qualname, file)) => {
            serde_json::json!({"module": module, "qualname": qualname, "file": file})
        }
        // A span started by hand: found by its name's literal in the source.
        None => serde_json::json!({"span": request.operation}),
    };
    let parsed = run_script(request, &roots, target)?;
    let (module, qualname) = match located {
        Some((module, qualname, file)) => {
            if !parsed.missing.is_empty() || parsed.functions.is_empty() {
                return Err(PlanError::NotFound(format!(
                    "{} is {}{}, but no function {} is defined there",
                    recorded::name(&request.operation),
                    recorded::quote(&format!("{module}.{qualname}")),
                    file.map(|f| format!(" in {}", recorded::quote(&f)))
                        .unwrap_or_default(),
                    recorded::quote(&qualname)
                )));
            }
            (module, qualname)
        }
        None => {
            span_found(&request.operation, &roots, &parsed)?;
            ("span".to_owned(), String::new())
        }
    };
    let mut plan = new_plan(request, &roots, blind, &module, &qualname);
    plan.functions = parsed.functions;
    plan.notes = parsed.notes;
    Ok(plan)
}

/// A plan with its id and what it was asked for, and no functions yet.
fn new_plan(
    request: &PlanRequest,
    roots: &[PathBuf],
    blind: BlindSpot,
    module: &str,
    qualname: &str,
) -> Plan {
    let created = devtrace_query::timefmt::now_nanos();
    let id = devtrace_analyze::fingerprint::fingerprint(&[
        &request.operation,
        module,
        qualname,
        &created.to_string(),
    ]);
    Plan {
        id: id.chars().take(10).collect(),
        created_unix_nano: created,
        operation: request.operation.clone(),
        threshold_ms: request.threshold_ms,
        depth: request.depth,
        roots: roots.iter().map(|r| r.display().to_string()).collect(),
        blind_spot: blind,
        functions: Vec::new(),
        notes: Vec::new(),
        language: None,
        flows: Vec::new(),
    }
}

/// Runs plan_calls.py on one target with the request's Python.
fn run_script(
    request: &PlanRequest,
    roots: &[PathBuf],
    target: serde_json::Value,
) -> Result<ScriptOutput, PlanError> {
    let python = request
        .python
        .clone()
        .or_else(|| std::env::var("DEVTRACE_PYTHON").ok())
        .unwrap_or_else(|| "python3".to_owned());
    let input = serde_json::json!({
        "roots": roots,
        "targets": [target],
        "depth": request.depth,
    });
    let output = Command::new(&python)
        .args(["-I", "-c", PLAN_CALLS, &input.to_string()])
        .output()
        .map_err(|e| {
            PlanError::Python(format!(
                "cannot run {} to read the source ({e}); set DEVTRACE_PYTHON to a Python 3.9+ interpreter",
                recorded::quote(&python)
            ))
        })?;
    if !output.status.success() {
        return Err(PlanError::Python(format!(
            "{} could not read the source: {}",
            recorded::quote(&python),
            recorded::escape(
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        PlanError::Python(format!(
            "{} answered something else than a plan ({e})",
            recorded::quote(&python)
        ))
    })
}

/// Whether the source started the span by hand somewhere, with calls to record there.
fn span_found(operation: &str, roots: &[PathBuf], parsed: &ScriptOutput) -> Result<(), PlanError> {
    if parsed.spans.is_empty() {
        return Err(not_found(operation, roots, &parsed.dynamic));
    }
    if parsed.functions.is_empty() {
        let sites: Vec<String> = parsed
            .spans
            .iter()
            .map(|s| {
                format!(
                    "{}:{} in {}",
                    recorded::escape(&s.file),
                    s.line,
                    recorded::escape(&s.function)
                )
            })
            .collect();
        return Err(PlanError::NotFound(format!(
            "span {} starts at {}, but the code it covers calls no function defined under {} (only built-ins, C or computed calls): there is nothing to record; its time is that code's own",
            recorded::name(operation),
            sites.join(", "),
            roots_text(roots)
        )));
    }
    Ok(())
}

/// Where plans are kept: `DATA/plans/`.
#[derive(Clone, Debug)]
pub struct PlanStore {
    dir: PathBuf,
}

static DEFAULT_STORE: OnceLock<PlanStore> = OnceLock::new();

impl PlanStore {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("plans"),
        }
    }

    /// Sets the plan store of this process (the faces that have no data directory of their
    /// own, like the MCP tools, use it).
    pub fn set_default(store: PlanStore) {
        let _ = DEFAULT_STORE.set(store);
    }

    pub fn default_store() -> Option<&'static PlanStore> {
        DEFAULT_STORE.get()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, source: std::io::Error) -> PlanError {
        PlanError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    pub fn save(&self, plan: &Plan) -> Result<PathBuf, PlanError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let path = self.dir.join(format!("{}.json", plan.id));
        let tmp = self.dir.join(format!(".{}.json.tmp", plan.id));
        let bytes = serde_json::to_vec_pretty(plan).expect("a plan serialises");
        std::fs::write(&tmp, bytes).map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &path).map_err(|e| self.io(e))?;
        Ok(path)
    }

    /// Every stored plan, newest first.
    pub fn list(&self) -> Result<Vec<Plan>, PlanError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let mut plans: Vec<Plan> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name().to_string_lossy().ends_with(".json")
                    && !e.file_name().to_string_lossy().starts_with('.')
            })
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        plans.sort_by(|a: &Plan, b: &Plan| {
            b.created_unix_nano
                .cmp(&a.created_unix_nano)
                .then(a.id.cmp(&b.id))
        });
        Ok(plans)
    }

    /// The plan with this id or unique id prefix.
    pub fn load(&self, id: &str) -> Result<Plan, PlanError> {
        let plans = self.list()?;
        let matching: Vec<&Plan> = plans.iter().filter(|p| p.id.starts_with(id)).collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(PlanError::NotFound(format!(
                "no plan {} in {}; `devtrace plan list` shows the stored plans",
                recorded::quote(id),
                recorded::escape(&self.dir.to_string_lossy())
            ))),
            many => Err(PlanError::NotFound(format!(
                "plan id {} is ambiguous ({} plans start with it); give more of it",
                recorded::quote(id),
                many.len()
            ))),
        }
    }
}

/// What the recorder reads for a planned run: `{"id", "threshold_ms", "functions": [[module,
/// qualname], …]}`.
pub fn recorder_file(plan: &Plan) -> String {
    let functions: Vec<[&str; 2]> = plan
        .functions
        .iter()
        .map(|f| [f.module.as_str(), f.qualname.as_str()])
        .collect();
    serde_json::json!({"id": plan.id, "threshold_ms": plan.threshold_ms, "operation": plan.operation, "functions": functions}).to_string()
}

/// The plan in words (recorded text quoted: names and source snippets are data).
pub fn explain(plan: &Plan) -> String {
    let mut out = String::new();
    let when = devtrace_model::time::format_rfc3339(plan.created_unix_nano);
    out.push_str(&format!(
        "plan {} for {} (made {})\n",
        plan.id,
        recorded::name(&plan.operation),
        &when[..when.len().min(19)]
    ));
    let b = &plan.blind_spot;
    if b.runs > 0 {
        out.push_str(&format!(
            "  why: {:.0} % of its time ({:.1} ms of {:.1} ms a run, over {} runs) is its own, in no child span\n",
            b.own_share * 100.0,
            b.own_ms_per_run,
            b.duration_ms_per_run,
            b.runs
        ));
    }
    for n in plan.notes.iter().filter(|n| n.kind == "block") {
        out.push_str(&format!(
            "  where: {} at line {}: {}\n",
            recorded::quote_short(&n.call, 80),
            n.line,
            recorded::escape(&n.reason)
        ));
    }
    if plan.language.is_some() {
        out.push_str(&format!(
            "  records {} functions (every call a span, none lost), everything else runs at full speed:\n",
            plan.functions.len()
        ));
    } else {
        out.push_str(&format!(
            "  records {} functions (calls of at least {} ms become spans; shorter ones are counted on their caller), everything else runs at full speed:\n",
            plan.functions.len(),
            plan.threshold_ms
        ));
    }
    // A BEAM via may say where a server passed as an argument came from.
    let via_chars = if plan.language.is_some() { 160 } else { 100 };
    for f in &plan.functions {
        let place = if f.file.is_empty() {
            "(library)".to_owned()
        } else {
            let file = Path::new(&f.file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{}:{}", recorded::escape(&file), f.line)
        };
        let recursive = if f.recursive { ", recursive" } else { "" };
        let name = match &plan.language {
            Some(language) => beam::function_text(language, &f.module, &f.qualname),
            None => format!("{}.{}", f.module, f.qualname),
        };
        out.push_str(&format!(
            "    {}  {}  {}{recursive}\n",
            recorded::escape(&name),
            place,
            recorded::quote_short(&f.via, via_chars)
        ));
    }
    if let (Some(language), false) = (&plan.language, plan.flows.is_empty()) {
        let flows: Vec<String> = plan
            .flows
            .iter()
            .map(|flow| recorded::escape(&beam::flow_text(language, flow)))
            .collect();
        out.push_str(&format!(
            "  messages recorded (only these; others are not traced): {}\n",
            flows.join(", ")
        ));
    }
    let skipped: Vec<&PlanNote> = plan
        .notes
        .iter()
        .filter(|n| n.kind == "c" || n.kind == "unknown" || n.kind == "unparsed")
        .collect();
    if !skipped.is_empty() {
        out.push_str("  not recordable (their time stays in their caller's own time):\n");
        for n in skipped.iter().take(20) {
            out.push_str(&format!(
                "    {} at line {} of {}: {}\n",
                recorded::quote_short(&n.call, 60),
                n.line,
                recorded::escape(&n.caller),
                recorded::escape(&n.reason)
            ));
        }
        if skipped.len() > 20 {
            out.push_str(&format!("    … and {} more\n", skipped.len() - 20));
        }
    }
    for n in plan
        .notes
        .iter()
        .filter(|n| n.kind == "candidates" || n.kind == "library")
    {
        out.push_str(&format!(
            "  note: {} at line {} of {}: {}\n",
            recorded::quote_short(&n.call, 60),
            n.line,
            recorded::escape(&n.caller),
            recorded::escape(&n.reason)
        ));
    }
    out.push_str(&format!(
        "  run it: devtrace run --plan {} -- <the command>\n",
        plan.id
    ));
    out
}

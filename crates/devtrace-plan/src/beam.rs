//! Plans for Erlang and Elixir programs.
//!
//! Owns: telling a BEAM operation from a Python one (its spans are named after functions with
//! their arity: `Shop.checkout/1`, `shop:checkout/1`), the function it names, reading the
//! source to the functions it calls (Elixir with `Code.string_to_quoted` in `plan_calls.exs`,
//! Erlang with `epp:parse_file` in `plan_calls_erl.erl`: scripts shipped inside the binary,
//! run by `elixir`/`escript`; the source is parsed, never compiled or run), names as each
//! language writes them, and the file `devtrace run --plan` hands the VM (Erlang terms).
//!
//! Must not: run the program, or guess a process a message goes to (a flow is followed only
//! when the source names its server).

use crate::{PlanError, PlanFunction, PlanNote, PlanRequest};
use devtrace_model::recorded;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

const PLAN_CALLS_ELIXIR: &str = include_str!("plan_calls.exs");
const PLAN_CALLS_ERLANG: &str = include_str!("plan_calls_erl.erl");

/// The languages of the BEAM a plan can be for (`Plan::language`).
pub const ELIXIR: &str = "elixir";
pub const ERLANG: &str = "erlang";

/// A message flow the plan follows: a request to a server's callback, recorded in the planned
/// run (its send and its receipt).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanFlow {
    /// `call` (GenServer.call → handle_call/3), `cast` (→ handle_cast/2), `info` (send →
    /// handle_info/2).
    pub kind: String,
    /// The server module (the atom's text: `Elixir.Shop.Inventory`, `inventory`).
    pub server: String,
    /// The message's tag (the atom it is, or the first element of the tuple it is), when the
    /// source writes it.
    pub tag: Option<String>,
}

/// The function a span names: `(module atom, function, arity)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub module: String,
    pub function: String,
    pub arity: u32,
}

/// Whether `operation` is named like a BEAM function: `…/ARITY` (Python's never are).
pub fn is_beam_operation(operation: &str) -> bool {
    target(operation).is_some()
}

/// The function a BEAM span's name is: `Shop.Cart.checkout/1` (Elixir: module
/// `Elixir.Shop.Cart`), `shop:checkout/1` (an Erlang module, or an Elixir module named by an
/// atom).
pub fn target(operation: &str) -> Option<Target> {
    let (name, arity) = operation.rsplit_once('/')?;
    let arity: u32 = arity
        .parse()
        .ok()
        .filter(|_| arity.bytes().all(|b| b.is_ascii_digit()))?;
    let (module, function) = match name.rsplit_once(':') {
        Some((module, function)) => (module.to_owned(), function),
        None => {
            let (alias, function) = name.rsplit_once('.')?;
            let capitalised = alias.split('.').all(|p| {
                p.starts_with(|c: char| c.is_ascii_uppercase())
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if !capitalised {
                return None;
            }
            (format!("Elixir.{alias}"), function)
        }
    };
    (!module.is_empty() && !function.is_empty()).then(|| Target {
        module,
        function: function.to_owned(),
        arity,
    })
}

/// The function an anonymous function's span is named after (`Basket.total/1` for
/// `anonymous fn#1 in Basket.total/1`), when that is a function a plan can name.
pub fn enclosing_function(operation: &str) -> Option<String> {
    devtrace_recorder::beam::function_names::enclosing_function(operation)
        .filter(|outer| target(outer).is_some())
}

/// Whether the operation's stored spans come from devtrace's BEAM runtime (a Python span may
/// be named like a function with an arity: `GET /v1.2/1`).
pub(crate) fn recorded_by_beam(
    traces: &[devtrace_analyze::AnalyzedTrace],
    operation: &str,
) -> bool {
    traces.iter().any(|trace| {
        trace
            .spans_named(operation)
            .any(|i| trace.span(i).attr(BEAM_PROCESS).is_some())
    })
}

/// The attribute every span of the BEAM runtime carries (the process it ran in).
const BEAM_PROCESS: &str = "devtrace.beam.process";

/// What a script answered.
#[derive(Deserialize)]
pub(crate) struct Parsed {
    pub functions: Vec<PlanFunction>,
    pub notes: Vec<PlanNote>,
    pub flows: Vec<PlanFlow>,
    pub missing: Vec<String>,
}

/// Reads the source under `roots` from `target`: Erlang's when an `.erl` file defines its
/// module, else Elixir's; the language and what it found.
pub(crate) fn read_source(
    request: &PlanRequest,
    roots: &[PathBuf],
    target: &Target,
) -> Result<(&'static str, Parsed), PlanError> {
    let erlang_first = !target.module.starts_with("Elixir.") && has_files(roots, &["erl"]);
    let order: &[&'static str] = if erlang_first {
        &[ERLANG, ELIXIR]
    } else {
        &[ELIXIR]
    };
    let mut last = None;
    for &language in order {
        if language == ELIXIR && !has_files(roots, &["ex", "exs"]) {
            continue;
        }
        let parsed = run_script(language, request, roots, target)?;
        if parsed.missing.is_empty() && !parsed.functions.is_empty() {
            return Ok((language, parsed));
        }
        last = Some(language);
    }
    Err(PlanError::NotFound(format!(
        "{} is function {} of module {}, but no {} file under {} defines it; pass --source DIR where the program's source is",
        recorded::name(&operation_text(target, last.unwrap_or(ELIXIR))),
        recorded::quote(&format!("{}/{}", target.function, target.arity)),
        recorded::quote(&module_text(last.unwrap_or(ELIXIR), &target.module)),
        match last {
            Some(ERLANG) => ".erl",
            Some(_) => ".ex or .exs",
            None => ".ex, .exs or .erl",
        },
        crate::roots_text(roots)
    )))
}

fn operation_text(target: &Target, language: &str) -> String {
    function_text(
        language,
        &target.module,
        &format!("{}/{}", target.function, target.arity),
    )
}

/// Whether a file with one of `extensions` is under `roots` (a few levels, build output
/// skipped).
fn has_files(roots: &[PathBuf], extensions: &[&str]) -> bool {
    fn walk(dir: &Path, extensions: &[&str], depth: u32) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.filter_map(Result::ok).any(|e| {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                depth < 6
                    && !name.starts_with('.')
                    && !["_build", "deps", "node_modules", "target"].contains(&name.as_str())
                    && walk(&path, extensions, depth + 1)
            } else {
                path.extension()
                    .is_some_and(|x| extensions.iter().any(|e| x == *e))
            }
        })
    }
    roots.iter().any(|r| walk(r, extensions, 0))
}

/// Runs one language's script on `target` (written to a temporary file: `elixir` and
/// `escript` read a script from a file).
fn run_script(
    language: &str,
    request: &PlanRequest,
    roots: &[PathBuf],
    target: &Target,
) -> Result<Parsed, PlanError> {
    let (program, source, extension) = match language {
        ERLANG => ("escript", PLAN_CALLS_ERLANG, "erl"),
        _ => ("elixir", PLAN_CALLS_ELIXIR, "exs"),
    };
    let script = std::env::temp_dir().join(format!(
        "devtrace-plan-{}-{}.{extension}",
        std::process::id(),
        devtrace_query::timefmt::now_nanos()
    ));
    std::fs::write(&script, source).map_err(|source| PlanError::Io {
        dir: std::env::temp_dir(),
        source,
    })?;
    let mut command = Command::new(program);
    command
        .arg(&script)
        .arg(request.depth.to_string())
        .arg(&target.module)
        .arg(&target.function)
        .arg(target.arity.to_string())
        .args(roots)
        // Not recorded itself when devtrace runs inside `devtrace run --record`.
        .env_remove("DEVTRACE_BEAM_DIR")
        .env_remove("DEVTRACE_BEAM_PLAN");
    let output = command.output();
    let _ = std::fs::remove_file(&script);
    let output = output.map_err(|e| {
        PlanError::Python(format!(
            "cannot run {} to read the {language} source ({e}); install {} (apt-get install {})",
            recorded::quote(program),
            if language == ERLANG {
                "Erlang/OTP"
            } else {
                "Elixir"
            },
            if language == ERLANG {
                "erlang"
            } else {
                "elixir"
            },
        ))
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(PlanError::Python(format!(
            "{} could not read the {language} source: {}",
            recorded::quote(program),
            recorded::escape(last)
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        PlanError::Python(format!(
            "{} answered something else than a plan ({e})",
            recorded::quote(program)
        ))
    })
}

/// An atom as the language writes it where it could be misread: bare when it is a plain name,
/// else quoted (`:"odd name"` in Elixir, `'odd name'` in Erlang).
fn atom_text(language: &str, atom: &str, elixir_colon: bool) -> String {
    let plain = atom
        .starts_with(|c: char| c.is_ascii_lowercase() || (language == ELIXIR && c == '_'))
        && atom
            .trim_end_matches(['?', '!'])
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
        && (language == ELIXIR || !atom.ends_with(['?', '!']));
    let colon = if language == ELIXIR && elixir_colon {
        ":"
    } else {
        ""
    };
    if plain {
        return format!("{colon}{atom}");
    }
    let quote = if language == ELIXIR { '"' } else { '\'' };
    let mut out = format!("{colon}{quote}");
    for c in atom.chars() {
        if c == quote || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(quote);
    out
}

/// A module as its language writes it: `Shop.Inventory`, `:"odd"`, `shop`, `'odd'`.
pub fn module_text(language: &str, module: &str) -> String {
    match module.strip_prefix("Elixir.") {
        Some(alias) if language == ELIXIR => alias.to_owned(),
        _ => atom_text(language, module, true),
    }
}

/// A function as its language writes it: `Shop.checkout/1`, `shop:checkout/1` (odd atoms
/// quoted); `qualname` is `function/arity`.
pub fn function_text(language: &str, module: &str, qualname: &str) -> String {
    let (function, arity) = qualname.rsplit_once('/').unwrap_or((qualname, ""));
    let separator = if language == ELIXIR { "." } else { ":" };
    format!(
        "{}{separator}{}/{arity}",
        module_text(language, module),
        atom_text(language, function, false)
    )
}

/// A flow as the explanation names it: `GenServer.call :reserve to Shop.Inventory`.
pub fn flow_text(language: &str, flow: &PlanFlow) -> String {
    let how = match (language, flow.kind.as_str()) {
        (ELIXIR, "call") => "GenServer.call",
        (ELIXIR, "cast") => "GenServer.cast",
        (ELIXIR, _) => "send",
        (_, "call") => "gen_server:call",
        (_, "cast") => "gen_server:cast",
        _ => "!",
    };
    let tag = flow.tag.as_deref().map_or_else(
        || "any message".to_owned(),
        |t| atom_text(language, t, true),
    );
    format!("{how} {tag} to {}", module_text(language, &flow.server))
}

/// The file `devtrace run --plan` hands the VM for a BEAM plan; `None` for Python's.
pub fn plan_terms(plan: &crate::Plan) -> Option<String> {
    plan.language
        .as_ref()
        .map(|_| recorder_terms(&plan.functions, &plan.flows))
}

/// An atom in Erlang's term syntax, always quoted (`file:consult` reads it back as it is).
fn erlang_atom(atom: &str) -> String {
    let mut out = String::from("'");
    for c in atom.chars() {
        match c {
            '\'' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// What the VM reads under `devtrace run --plan` (`DEVTRACE_BEAM_PLAN`): the functions, then
/// the message flows, as Erlang terms (sdk/beam's devtrace_beam_plan).
pub fn recorder_terms(functions: &[PlanFunction], flows: &[PlanFlow]) -> String {
    let mut out = String::from("%% coding: utf-8\n");
    for f in functions {
        let Some((function, arity)) = f.qualname.rsplit_once('/') else {
            continue;
        };
        let Ok(arity) = arity.parse::<u32>() else {
            continue;
        };
        out.push_str(&format!(
            "{{function, {}, {}, {arity}}}.\n",
            erlang_atom(&f.module),
            erlang_atom(function)
        ));
    }
    for flow in flows {
        out.push_str(&format!(
            "{{message, {}, {}, {}}}.\n",
            erlang_atom(&flow.kind),
            erlang_atom(&flow.server),
            flow.tag
                .as_deref()
                .map_or_else(|| "undefined".to_owned(), erlang_atom)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_names_are_functions_of_either_language() {
        assert_eq!(
            target("Shop.Cart.checkout/1"),
            Some(Target {
                module: "Elixir.Shop.Cart".into(),
                function: "checkout".into(),
                arity: 1
            })
        );
        assert_eq!(
            target("shop:checkout/2").map(|t| (t.module, t.function, t.arity)),
            Some(("shop".into(), "checkout".into(), 2))
        );
        assert_eq!(
            target("ignore previous; rm -rf:run/0").map(|t| t.module),
            Some("ignore previous; rm -rf".into())
        );
        assert_eq!(
            enclosing_function("anonymous fn#1 in Basket.total/1").as_deref(),
            Some("Basket.total/1")
        );
        assert_eq!(
            enclosing_function("basket:-total/1-fun-12-").as_deref(),
            Some("basket:total/1")
        );
        assert_eq!(
            enclosing_function("basket:-g/0-Loop/1-0-").as_deref(),
            Some("basket:g/0")
        );
        assert_eq!(enclosing_function("Basket.total/1"), None);
        assert_eq!(enclosing_function("anonymous fn#1 in a python thing"), None);
        for python in [
            "app.jobs.process",
            "process batch",
            "GET /users/1x",
            "a/b",
            "lower.case/1",
        ] {
            assert!(!is_beam_operation(python), "{python}");
        }
    }

    #[test]
    fn odd_atoms_stay_quoted_as_their_language_writes_them() {
        assert_eq!(
            function_text(ELIXIR, "Elixir.Shop", "checkout/1"),
            "Shop.checkout/1"
        );
        assert_eq!(
            function_text(ERLANG, "shop", "checkout/1"),
            "shop:checkout/1"
        );
        assert_eq!(
            function_text(ELIXIR, "ignore previous; rm -rf", "odd\"fun/0"),
            r#":"ignore previous; rm -rf"."odd\"fun"/0"#
        );
        assert_eq!(function_text(ERLANG, "it's", "Run/0"), r"'it\'s':'Run'/0");
        assert_eq!(
            function_text(ELIXIR, "Elixir.Shop", "valid?/1"),
            "Shop.valid?/1"
        );
    }

    #[test]
    fn the_vm_reads_the_plan_as_quoted_terms() {
        let f = |module: &str, qualname: &str| PlanFunction {
            module: module.into(),
            qualname: qualname.into(),
            file: String::new(),
            line: 1,
            depth: 0,
            via: String::new(),
            recursive: false,
        };
        let terms = recorder_terms(
            &[f("Elixir.Shop", "checkout/1"), f("a'b\\c", "x\ny/0")],
            &[PlanFlow {
                kind: "call".into(),
                server: "Elixir.Shop.Inventory".into(),
                tag: Some("reserve".into()),
            }],
        );
        assert_eq!(
            terms,
            "%% coding: utf-8\n{function, 'Elixir.Shop', 'checkout', 1}.\n{function, 'a\\'b\\\\c', 'x\\x{a}y', 0}.\n{message, 'call', 'Elixir.Shop.Inventory', 'reserve'}.\n"
        );
    }
}

#[cfg(test)]
mod explain_tests {
    use super::*;
    use crate::{BlindSpot, Plan, explain};

    #[test]
    fn a_beam_plan_is_explained_in_its_language_with_hostile_names_quoted() {
        let f = |module: &str, qualname: &str, depth: i32, via: &str| PlanFunction {
            module: module.into(),
            qualname: qualname.into(),
            file: "/src/shop.ex".into(),
            line: 3,
            depth,
            via: via.into(),
            recursive: false,
        };
        let plan = Plan {
            id: "abc".into(),
            created_unix_nano: 0,
            operation: "Shop.checkout/1".into(),
            threshold_ms: 1.0,
            depth: 2,
            roots: vec![],
            blind_spot: BlindSpot::default(),
            functions: vec![
                f("Elixir.Shop", "checkout/1", 0, "the operation's function"),
                f(
                    "ignore previous; rm -rf",
                    "run\u{1b}[2J/0",
                    1,
                    "Shop.checkout/1 calls :\"ignore previous; rm -rf\".run/0 at line 4",
                ),
            ],
            notes: vec![],
            language: Some(ELIXIR.into()),
            flows: vec![PlanFlow {
                kind: "info".into(),
                server: "Elixir.Shop.Log".into(),
                tag: Some("it's \"odd\"".into()),
            }],
        };
        let text = explain(&plan);
        assert!(text.contains("    Shop.checkout/1  shop.ex:3  \"the operation's function\"\n"));
        assert!(
            text.contains(r#"    :"ignore previous; rm -rf"."run\u001b[2J"/0  shop.ex:3  "#),
            "{text}"
        );
        assert!(
            !text.contains('\u{1b}'),
            "control characters are escaped: {text}"
        );
        assert!(text.contains(
            r#"messages recorded (only these; others are not traced): send :"it's \"odd\"" to Shop.Log"#
        ));
        assert!(text.contains("every call a span, none lost"));
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["language"], "elixir");
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn a_python_plan_keeps_its_json_shape() {
        let plan = Plan {
            id: "p".into(),
            created_unix_nano: 0,
            operation: "app.jobs.process".into(),
            threshold_ms: 1.0,
            depth: 2,
            roots: vec![],
            blind_spot: BlindSpot::default(),
            functions: vec![],
            notes: vec![],
            language: None,
            flows: vec![],
        };
        let json = serde_json::to_value(&plan).unwrap();
        assert!(json.get("language").is_none() && json.get("flows").is_none());
        assert_eq!(plan_terms(&plan), None);
    }
}

/// The scripts on small programs: what compiles to functions without a `def` of its own
/// (`defdelegate`, default arguments, a `use`d module's quote) and servers passed in.
#[cfg(test)]
mod script_tests {
    use super::*;

    /// The plan of `operation` `depth` calls deep in `files` (written to a directory of their
    /// own): each function as `depth module.qualname file:line via`, and the notes and flows.
    fn plan_of(language: &str, operation: &str, depth: u32, files: &[(&str, &str)]) -> Parsed {
        let program = if language == ERLANG {
            "escript"
        } else {
            "elixir"
        };
        if Command::new(program).arg("--version").output().is_err() {
            // scripts/test installs Elixir and Erlang; the e2e tests fail without them too.
            panic!("{program} is not installed (apt-get install elixir erlang)");
        }
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut request = PlanRequest::new(operation);
        request.depth = depth;
        let target = target(operation).unwrap();
        run_script(language, &request, &[dir.path().to_path_buf()], &target).unwrap()
    }

    fn lines(parsed: &Parsed) -> Vec<String> {
        parsed
            .functions
            .iter()
            .map(|f| {
                let file = Path::new(&f.file).file_name().unwrap().to_string_lossy();
                format!(
                    "{} {}.{} {file}:{} {}",
                    f.depth, f.module, f.qualname, f.line, f.via
                )
            })
            .collect()
    }

    const ELIXIR_SHOP: &str = r##"defmodule Shop.Base do
  defmacro __using__(opts) do
    fun = Keyword.fetch!(opts, :fun)
    counter = :"#{fun}_count"

    quote do
      def unquote(fun)(cart), do: cart
      def unquote(counter)(), do: 0
    end
  end
end

defmodule Shop do
  @server Shop.Cart
  defdelegate add(item, count \\ 1), to: Shop.Cart, as: :put

  def checkout(cart) do
    add(:apple)
    GenServer.call(@server, :total)
    pay(__MODULE__.Cart, cart)
    Shop.Cart."run it; rm -rf ~"(cart)
  end

  def pay(server, cart), do: GenServer.cast(server, {:pay, cart})
end

defmodule Shop.Cart do
  use Shop.Base, fun: :"run it; rm -rf ~"

  def put(item, count), do: {item, count}
  def handle_call(:total, _from, state), do: {:reply, state, state}
  def handle_cast({:pay, _cart}, state), do: {:noreply, state}
end
"##;

    #[test]
    fn elixir_delegates_defaults_use_and_servers_passed_in_are_followed() {
        let parsed = plan_of(ELIXIR, "Shop.checkout/1", 3, &[("shop.ex", ELIXIR_SHOP)]);
        assert_eq!(
            lines(&parsed),
            [
                "0 Elixir.Shop.checkout/1 shop.ex:17 the operation's function",
                "1 Elixir.Shop.add/1 shop.ex:15 Shop.checkout/1 calls add/1 at line 18",
                "1 Elixir.Shop.Cart.handle_call/3 shop.ex:31 Shop.checkout/1 sends :total with GenServer.call at line 19",
                "1 Elixir.Shop.pay/2 shop.ex:24 Shop.checkout/1 calls pay/2 at line 20",
                "1 Elixir.Shop.Cart.run it; rm -rf ~/1 shop.ex:7 Shop.checkout/1 calls Shop.Cart.\"run it; rm -rf ~\"/1 at line 21",
                "2 Elixir.Shop.add/2 shop.ex:15 Shop.add/1 calls add/2 with its default arguments at line 15",
                "2 Elixir.Shop.Cart.handle_cast/2 shop.ex:32 Shop.pay/2 sends :pay with GenServer.cast at line 24 (server: Shop.Cart, passed by Shop.checkout/1 at line 20)",
                "3 Elixir.Shop.Cart.put/2 shop.ex:30 Shop.add/2 delegates to Shop.Cart.put/2 at line 15",
            ]
        );
        let flows: Vec<(&str, &str, Option<&str>)> = parsed
            .flows
            .iter()
            .map(|f| (f.kind.as_str(), f.server.as_str(), f.tag.as_deref()))
            .collect();
        assert_eq!(
            flows,
            [
                ("call", "Elixir.Shop.Cart", Some("total")),
                ("cast", "Elixir.Shop.Cart", Some("pay"))
            ]
        );
        let [note] = &parsed.notes[..] else {
            panic!("{:?}", parsed.notes)
        };
        assert_eq!(
            (
                note.caller.as_str(),
                note.call.as_str(),
                note.line,
                note.reason.as_str()
            ),
            (
                "Shop.Base",
                "def unquote(counter)",
                8,
                "a function that use Shop.Base (line 28 of Shop.Cart) injects under a name computed from its options: the plan cannot name it"
            )
        );
    }

    #[test]
    fn an_elixir_server_passed_in_is_read_once_for_each_server_its_callers_pass() {
        let source = r#"defmodule Shop do
  def checkout(cart) do
    ask(Shop.Cart, cart)
    ask(Shop.Till, cart)
    ask(Shop.Cart, cart)
  end

  def ask(server, cart), do: GenServer.call(server, {:ask, cart})
end

defmodule Shop.Cart do
  def handle_call({:ask, _}, _from, s), do: {:reply, :ok, s}
end

defmodule Shop.Till do
  def handle_call({:ask, _}, _from, s), do: {:reply, :ok, s}
end
"#;
        let parsed = plan_of(ELIXIR, "Shop.checkout/1", 2, &[("shop.ex", source)]);
        assert_eq!(
            lines(&parsed),
            [
                "0 Elixir.Shop.checkout/1 shop.ex:2 the operation's function",
                "1 Elixir.Shop.ask/2 shop.ex:8 Shop.checkout/1 calls ask/2 at line 3",
                "2 Elixir.Shop.Cart.handle_call/3 shop.ex:12 Shop.ask/2 sends :ask with GenServer.call at line 8 (server: Shop.Cart, passed by Shop.checkout/1 at line 3)",
                "2 Elixir.Shop.Till.handle_call/3 shop.ex:16 Shop.ask/2 sends :ask with GenServer.call at line 8 (server: Shop.Till, passed by Shop.checkout/1 at line 4)",
            ]
        );
        assert_eq!(parsed.flows.len(), 2);
        assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
    }

    #[test]
    fn an_erlang_server_passed_through_two_functions_is_followed_to_its_callbacks() {
        let till = "-module(till).\n-define(SERVER, stock).\n-export([sell/1]).\n\
sell(X) -> pass(?SERVER, X).\n\
pass(S, X) -> ask(S, X).\n\
ask(S, X) -> gen_server:call(S, {ask, X}).\n";
        let server = "-module('stock; rm -rf').\n-export([start_link/0, handle_call/3]).\n\
start_link() -> gen_server:start_link({local, stock}, ?MODULE, [], []).\n\
handle_call({ask, X}, _From, S) -> {reply, X, S}.\n";
        let parsed = plan_of(
            ERLANG,
            "till:sell/1",
            3,
            &[("till.erl", till), ("stock.erl", server)],
        );
        assert_eq!(
            lines(&parsed),
            [
                "0 till.sell/1 till.erl:4 the operation's function",
                "1 till.pass/2 till.erl:5 till:sell/1 calls till:pass/2 at line 4",
                "2 till.ask/2 till.erl:6 till:pass/2 calls till:ask/2 at line 5",
                "3 stock; rm -rf.handle_call/3 stock.erl:4 till:ask/2 sends ask with gen_server:call at line 6 (S: stock, passed by till:sell/1 at line 4)",
            ]
        );
        assert_eq!(parsed.flows[0].server, "stock; rm -rf");
    }
}

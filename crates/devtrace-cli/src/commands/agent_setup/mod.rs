//! `devtrace agent-setup claude-code|codex|gemini [--print]`: the configuration that points a
//! coding agent's own OpenTelemetry at devtrace, printed or written into the agent's settings
//! (after asking). Claude Code takes environment variables (in `~/.claude/settings.json`'s
//! `env`), Codex an `[otel]` table in `~/.codex/config.toml`, Gemini CLI a `telemetry` object
//! in `~/.gemini/settings.json`. What would send prompt text is listed as an opt-in, off unless
//! `--prompts`, each with what it reveals.
//!
//! With `--token` (a team server's ingest token) each agent also sends `Authorization: Bearer`
//! on its exports: Claude Code as `OTEL_EXPORTER_OTLP_HEADERS`, Codex as its exporters'
//! `headers`, Gemini CLI from the same environment variable (its settings file has no place for
//! headers). The token goes into the file only; what is printed shows it masked.
//!
//! Writing changes only the keys devtrace needs: other settings keep their values and their
//! order; a Codex config that already has an `[otel]` table is left alone (devtrace says what
//! to put there instead).

mod ordered_json;

use crate::cli::{AgentSetupArgs, SetupAgent};
use crate::output::eprintln_safe;
use anyhow::{Context, Result, bail};
use ordered_json::{Json, set};
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One setting: an environment variable, or a key of the agent's settings.
#[derive(Clone, Debug, Serialize)]
struct Setting {
    name: String,
    value: String,
}

/// A setting that sends more than devtrace needs by default, and what it reveals.
#[derive(Clone, Debug, Serialize)]
struct OptIn {
    name: &'static str,
    /// The value that turns it on.
    value: &'static str,
    enabled: bool,
    reveals: &'static str,
}

/// Where devtrace listens for OTLP, and why this address.
struct Endpoint {
    url: String,
    why: String,
}

fn endpoint(data: Option<&Path>, explicit: Option<&str>) -> Result<Endpoint> {
    if let Some(url) = explicit {
        let url = url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            crate::usage::usage!(
                "--endpoint {url:?} is not an http:// or https:// URL: give devtrace's OTLP/HTTP address, e.g. http://127.0.0.1:4318"
            );
        }
        return Ok(Endpoint {
            url: url.to_owned(),
            why: "as given".into(),
        });
    }
    let dir = crate::config::data_dir(data)?;
    Ok(match super::serve::RunningServe::find(&dir) {
        Some(serve) => Endpoint {
            url: format!("http://{}", serve.http),
            why: format!("the devtrace serve running on {}", dir.display()),
        },
        None => Endpoint {
            url: "http://127.0.0.1:4318".into(),
            why: "devtrace serve's default address; start it with `devtrace serve`".into(),
        },
    })
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set: give the settings file with --file")
}

/// The settings file each agent reads, as it finds it.
fn default_file(agent: SetupAgent) -> Result<PathBuf> {
    Ok(match agent {
        SetupAgent::ClaudeCode => match std::env::var_os("CLAUDE_CONFIG_DIR") {
            Some(dir) => PathBuf::from(dir).join("settings.json"),
            None => home()?.join(".claude/settings.json"),
        },
        SetupAgent::Codex => match std::env::var_os("CODEX_HOME") {
            Some(dir) => PathBuf::from(dir).join("config.toml"),
            None => home()?.join(".codex/config.toml"),
        },
        SetupAgent::Gemini => home()?.join(".gemini/settings.json"),
    })
}

/// A token as it may be shown: a devtrace token's public id (`dtk_AbCd1234`, the name
/// `devtrace token list` gives it) followed by "…"; any other token only as "…".
fn masked(token: &str) -> String {
    match devtrace_server::auth::token::parse(token) {
        Ok(presented) => format!("{}…", presented.public_id),
        Err(_) => "…".into(),
    }
}

/// The `Authorization` header value for `token`.
fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The environment variable every OpenTelemetry SDK reads its export headers from.
const OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";

/// What to set for `agent` (in the order it is shown) and its opt-ins; `token` is the value
/// written for the `Authorization` header (the real one, or its masked form for showing).
fn settings(
    agent: SetupAgent,
    url: &str,
    prompts: bool,
    token: Option<&str>,
) -> (Vec<Setting>, Vec<OptIn>) {
    let s = |name: &str, value: &str| Setting {
        name: name.to_owned(),
        value: value.to_owned(),
    };
    match agent {
        SetupAgent::ClaudeCode => {
            let opt_in = vec![
                OptIn {
                    name: "OTEL_LOG_USER_PROMPTS",
                    value: "1",
                    enabled: prompts,
                    reveals: "the text of every prompt you type, and Claude's replies",
                },
                OptIn {
                    name: "OTEL_LOG_TOOL_DETAILS",
                    value: "1",
                    enabled: true,
                    reveals: "command lines, file paths and tool inputs (devtrace's command findings, such as retry loops, need them)",
                },
            ];
            let mut list = vec![
                s("CLAUDE_CODE_ENABLE_TELEMETRY", "1"),
                s("OTEL_LOGS_EXPORTER", "otlp"),
                s("OTEL_METRICS_EXPORTER", "otlp"),
                s("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                s("OTEL_EXPORTER_OTLP_ENDPOINT", url),
                // Events within a second, so the session is live; metrics every 10 s.
                s("OTEL_LOGS_EXPORT_INTERVAL", "1000"),
                s("OTEL_METRIC_EXPORT_INTERVAL", "10000"),
            ];
            if let Some(token) = token {
                list.push(s(OTLP_HEADERS, &format!("Authorization={}", bearer(token))));
            }
            list.extend(
                opt_in
                    .iter()
                    .filter(|o| o.enabled)
                    .map(|o| s(o.name, o.value)),
            );
            (list, opt_in)
        }
        SetupAgent::Codex => {
            let opt_in = vec![OptIn {
                name: "log_user_prompt",
                value: "true",
                enabled: prompts,
                reveals: "the text of every prompt you type (Codex always sends tool arguments and outputs)",
            }];
            let headers = match token {
                Some(token) => format!(
                    ", headers = {{ authorization = {} }}",
                    // A JSON string literal is a valid TOML basic string.
                    serde_json::Value::String(bearer(token))
                ),
                None => String::new(),
            };
            let exporter = |signal: &str| {
                format!(
                    "{{ otlp-http = {{ endpoint = \"{url}/v1/{signal}\", protocol = \"binary\"{headers} }} }}"
                )
            };
            (
                vec![
                    s("environment", "\"dev\""),
                    s("log_user_prompt", if prompts { "true" } else { "false" }),
                    s("exporter", &exporter("logs")),
                    // The turn's trace id on each event is how devtrace places it in its turn.
                    s("trace_exporter", &exporter("traces")),
                    s("metrics_exporter", &exporter("metrics")),
                ],
                opt_in,
            )
        }
        SetupAgent::Gemini => {
            let opt_in = vec![OptIn {
                name: "logPrompts",
                value: "true",
                enabled: prompts,
                reveals: "the text of your prompts and of every model request and response",
            }];
            (
                vec![
                    s("enabled", "true"),
                    s("target", "\"local\""),
                    s("otlpEndpoint", &format!("\"{url}\"")),
                    s("otlpProtocol", "\"http\""),
                    s("logPrompts", if prompts { "true" } else { "false" }),
                ],
                opt_in,
            )
        }
    }
}

fn agent_title(agent: SetupAgent) -> &'static str {
    match agent {
        SetupAgent::ClaudeCode => "Claude Code",
        SetupAgent::Codex => "Codex CLI",
        SetupAgent::Gemini => "Gemini CLI",
    }
}

fn agent_name(agent: SetupAgent) -> &'static str {
    match agent {
        SetupAgent::ClaudeCode => "claude-code",
        SetupAgent::Codex => "codex",
        SetupAgent::Gemini => "gemini",
    }
}

/// The Codex `[otel]` table as TOML text.
fn codex_table(list: &[Setting], opt_in: &[OptIn]) -> String {
    let mut out = String::from("[otel]\n");
    for setting in list {
        if let Some(o) = opt_in.iter().find(|o| o.name == setting.name) {
            out.push_str(&format!(
                "# opt-in: {} = {} sends {}\n",
                o.name, o.value, o.reveals
            ));
        }
        if setting.name == "trace_exporter" {
            out.push_str(
                "# traces: each event carries its turn's trace id, which places it in its turn\n",
            );
        }
        out.push_str(&format!("{} = {}\n", setting.name, setting.value));
    }
    out
}

/// A JSON settings object (`env` for Claude Code, `telemetry` for Gemini CLI).
fn json_object(key: &str, list: &[Setting], strings: bool) -> Json {
    let entries = list
        .iter()
        .map(|s| {
            let value = if strings {
                Json::String(s.value.clone())
            } else {
                serde_json::from_str(&s.value).unwrap_or_else(|_| Json::String(s.value.clone()))
            };
            (s.name.clone(), value)
        })
        .collect();
    Json::Object(vec![(key.to_owned(), Json::Object(entries))])
}

fn pretty(value: &Json) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"  "),
    );
    value
        .serialize(&mut serializer)
        .expect("JSON values serialise");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The configuration as text to paste, with where it goes and what each opt-in reveals.
fn render(
    agent: SetupAgent,
    endpoint: &Endpoint,
    file: &Path,
    list: &[Setting],
    opt_in: &[OptIn],
    shown_token: Option<&str>,
) -> String {
    let mut out = format!(
        "# {} → devtrace at {} (OTLP/HTTP; {})\n",
        agent_title(agent),
        endpoint.url,
        endpoint.why
    );
    match agent {
        SetupAgent::ClaudeCode => {
            out.push_str(&format!(
                "# In {}, under \"env\" (or exported in the shell that starts `claude`):\n",
                file.display()
            ));
            out.push_str(&pretty(&json_object("env", list, true)));
            out.push_str("\n# As shell exports:\n");
            for s in list {
                out.push_str(&format!("export {}={}\n", s.name, s.value));
            }
        }
        SetupAgent::Codex => {
            out.push_str(&format!(
                "# Add to {} (Codex reads it when it starts):\n",
                file.display()
            ));
            out.push_str(&codex_table(list, opt_in));
        }
        SetupAgent::Gemini => {
            out.push_str(&format!("# In {}:\n", file.display()));
            out.push_str(&pretty(&json_object("telemetry", list, false)));
            out.push_str("\n# Or as environment variables:\n");
            for s in list {
                let name = match s.name.as_str() {
                    "otlpEndpoint" => "OTLP_ENDPOINT".to_owned(),
                    "otlpProtocol" => "OTLP_PROTOCOL".to_owned(),
                    "logPrompts" => "LOG_PROMPTS".to_owned(),
                    other => other.to_ascii_uppercase(),
                };
                out.push_str(&format!(
                    "export GEMINI_TELEMETRY_{name}={}\n",
                    s.value.trim_matches('"')
                ));
            }
            if let Some(token) = shown_token {
                out.push_str(&format!(
                    "# The server's token: Gemini CLI's settings have no place for headers; export it in the shell that starts `gemini`:\nexport {OTLP_HEADERS}=\"Authorization={}\"\n",
                    bearer(token)
                ));
            }
        }
    }
    if shown_token.is_some() {
        out.push_str("# The token is shown masked; --yes writes the real one (give it with --token or DEVTRACE_TOKEN).\n");
    }
    let (on, off): (Vec<&OptIn>, Vec<&OptIn>) = opt_in.iter().partition(|o| o.enabled);
    if !off.is_empty() {
        out.push_str("# Opt-in, off (add --prompts to turn it on):\n");
        for o in off {
            out.push_str(&format!(
                "#   {}={}  sends {}\n",
                o.name, o.value, o.reveals
            ));
        }
    }
    if !on.is_empty() {
        out.push_str("# On:\n");
        for o in on {
            out.push_str(&format!(
                "#   {}={}  sends {}\n",
                o.name, o.value, o.reveals
            ));
        }
    }
    out.push_str("# Everything devtrace receives is redacted before it is stored (secrets, e-mail addresses).\n");
    out
}

pub fn run(data: Option<&Path>, args: &AgentSetupArgs, token: Option<&str>) -> Result<ExitCode> {
    let endpoint = endpoint(data, args.endpoint.as_deref())?;
    let file = match &args.file {
        Some(file) => file.clone(),
        None => default_file(args.agent)?,
    };
    let token = token.filter(|t| !t.is_empty());
    let shown_token = token.map(masked);
    // What is shown (and in --json) carries the masked token; only the file gets the real one.
    let (list, opt_in) = settings(
        args.agent,
        &endpoint.url,
        args.prompts,
        shown_token.as_deref(),
    );
    let (written, _) = settings(args.agent, &endpoint.url, args.prompts, token);
    let text = render(
        args.agent,
        &endpoint,
        &file,
        &list,
        &opt_in,
        shown_token.as_deref(),
    );
    if args.print {
        if args.json {
            crate::output::print_json(&serde_json::json!({
                "agent": agent_name(args.agent),
                "endpoint": endpoint.url,
                "file": file.display().to_string(),
                "settings": list,
                "opt_in": opt_in,
                "written": false,
            }))?;
        } else {
            crate::output::print_stdout(&text)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (new_text, summary) = edited(args.agent, &file, &written, &opt_in)?;
    crate::output::print_stderr(&text);
    eprintln_safe!("\n{summary}");
    if !args.yes && !confirm(&file)? {
        eprintln_safe!("nothing written");
        return Ok(ExitCode::from(1));
    }
    write_atomically(&file, &new_text, token.is_some())?;
    if args.json {
        crate::output::print_json(&serde_json::json!({
            "agent": agent_name(args.agent),
            "endpoint": endpoint.url,
            "file": file.display().to_string(),
            "settings": list,
            "opt_in": opt_in,
            "written": true,
        }))?;
    }
    eprintln_safe!(
        "wrote {}; restart {} for it to take effect, then `devtrace sessions` lists its sessions as they happen",
        file.display(),
        agent_title(args.agent)
    );
    Ok(ExitCode::SUCCESS)
}

/// The settings file's new text, and a sentence saying what changes.
fn edited(
    agent: SetupAgent,
    file: &Path,
    list: &[Setting],
    opt_in: &[OptIn],
) -> Result<(String, String)> {
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    match agent {
        SetupAgent::ClaudeCode | SetupAgent::Gemini => {
            let (key, strings) = if agent == SetupAgent::ClaudeCode {
                ("env", true)
            } else {
                ("telemetry", false)
            };
            let mut value: Json = match existing.as_deref().map(str::trim) {
                None | Some("") => Json::Object(Vec::new()),
                Some(text) => serde_json::from_str(text).with_context(|| {
                    format!(
                        "{} is not valid JSON, so devtrace leaves it alone: fix it, or paste the settings from `devtrace agent-setup {} --print`",
                        file.display(),
                        agent_name(agent)
                    )
                })?,
            };
            let Json::Object(wanted) = json_object(key, list, strings) else {
                unreachable!("json_object builds an object")
            };
            let Json::Object(wanted) = wanted.into_iter().next().expect("one key").1 else {
                unreachable!("json_object builds an object of objects")
            };
            let Some(target) = value.object_mut(key) else {
                bail!(
                    "{}: \"{key}\" is not an object, so devtrace leaves the file alone: fix it, or paste the settings from `devtrace agent-setup {} --print`",
                    file.display(),
                    agent_name(agent)
                );
            };
            let names: Vec<String> = wanted.iter().map(|(k, _)| k.clone()).collect();
            for (name, setting) in wanted {
                set(target, &name, setting);
            }
            let summary = format!(
                "{} {}: sets {key}.{{{}}}; every other setting stays as it is",
                if existing.is_some() {
                    "will change"
                } else {
                    "will create"
                },
                file.display(),
                names.join(", ")
            );
            Ok((format!("{}\n", pretty(&value)), summary))
        }
        SetupAgent::Codex => {
            let text = existing.unwrap_or_default();
            let parsed: toml::Table = toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not valid TOML, so devtrace leaves it alone: fix it, or paste the table from `devtrace agent-setup codex --print`",
                    file.display()
                )
            })?;
            if parsed.contains_key("otel") {
                bail!(
                    "{} already has an [otel] table, which devtrace does not overwrite: replace it with the one `devtrace agent-setup codex --print` prints",
                    file.display()
                );
            }
            let mut new_text = text.clone();
            if !new_text.is_empty() && !new_text.ends_with('\n') {
                new_text.push('\n');
            }
            if !new_text.is_empty() {
                new_text.push('\n');
            }
            new_text.push_str(&codex_table(list, opt_in));
            let summary = format!(
                "{} {}: appends an [otel] table; the rest of the file stays as it is",
                if text.is_empty() {
                    "will create"
                } else {
                    "will change"
                },
                file.display()
            );
            Ok((new_text, summary))
        }
    }
}

fn confirm(file: &Path) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "not writing {} without asking, and stdin is not a terminal to ask on: pass --yes to write it, or --print to only print the settings",
            file.display()
        );
    }
    crate::output::print_stderr(&format!("Write {}? [y/N] ", file.display()));
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Writes through a temporary file in the same directory, so the settings are never half
/// written.
fn write_atomically(file: &Path, text: &str, holds_secret: bool) -> Result<()> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let temporary = file.with_extension("devtrace-tmp");
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    // The settings keep their permissions (a settings file may hold keys of its own).
    if let Ok(metadata) = std::fs::metadata(file) {
        std::fs::set_permissions(&temporary, metadata.permissions())
            .with_context(|| format!("cannot set the permissions of {}", temporary.display()))?;
    }
    // A file that now holds a server token is readable by its owner only.
    if holds_secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot set the permissions of {}", temporary.display()))?;
    }
    std::fs::rename(&temporary, file)
        .with_context(|| format!("cannot replace {}", file.display()))?;
    Ok(())
}

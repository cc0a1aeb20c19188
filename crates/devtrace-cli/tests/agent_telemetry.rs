//! Agents' own telemetry through the `devtrace` binary: `agent-setup` (printed and written),
//! importing agents' events and OTLP metrics files, and the sessions views with the agents'
//! cost, tokens and lines changed.

mod common;

use common::{devtrace_wide as devtrace, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

const ENDPOINT: &str = "http://127.0.0.1:9999";

fn native_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../devtrace-ingest/tests/fixtures/native")
        .join(name)
}

fn setup(data: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["agent-setup"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--endpoint", ENDPOINT]);
    devtrace(data, &all)
}

#[test]
fn agent_setup_prints_each_agents_settings_and_what_each_opt_in_reveals() {
    let dir = tempfile::tempdir().unwrap();
    let out = setup(
        dir.path(),
        &["codex", "--print", "--file", "/home/me/.codex/config.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "# Codex CLI → devtrace at http://127.0.0.1:9999 (OTLP/HTTP; as given)\n\
         # Add to /home/me/.codex/config.toml (Codex reads it when it starts):\n\
         [otel]\n\
         environment = \"dev\"\n\
         # opt-in: log_user_prompt = true sends the text of every prompt you type (Codex always sends tool arguments and outputs)\n\
         log_user_prompt = false\n\
         exporter = { otlp-http = { endpoint = \"http://127.0.0.1:9999/v1/logs\", protocol = \"binary\" } }\n\
         # traces: each event carries its turn's trace id, which places it in its turn\n\
         trace_exporter = { otlp-http = { endpoint = \"http://127.0.0.1:9999/v1/traces\", protocol = \"binary\" } }\n\
         metrics_exporter = { otlp-http = { endpoint = \"http://127.0.0.1:9999/v1/metrics\", protocol = \"binary\" } }\n\
         # Opt-in, off (add --prompts to turn it on):\n\
         #   log_user_prompt=true  sends the text of every prompt you type (Codex always sends tool arguments and outputs)\n\
         # Everything devtrace receives is redacted before it is stored (secrets, e-mail addresses).\n"
    );

    let out = setup(
        dir.path(),
        &[
            "claude-code",
            "--print",
            "--prompts",
            "--file",
            "/home/me/.claude/settings.json",
        ],
    );
    assert_eq!(
        stdout(&out),
        "# Claude Code → devtrace at http://127.0.0.1:9999 (OTLP/HTTP; as given)\n\
         # In /home/me/.claude/settings.json, under \"env\" (or exported in the shell that starts `claude`):\n\
         {\n  \"env\": {\n    \"CLAUDE_CODE_ENABLE_TELEMETRY\": \"1\",\n    \"OTEL_LOGS_EXPORTER\": \"otlp\",\n\
         \x20   \"OTEL_METRICS_EXPORTER\": \"otlp\",\n    \"OTEL_EXPORTER_OTLP_PROTOCOL\": \"http/protobuf\",\n\
         \x20   \"OTEL_EXPORTER_OTLP_ENDPOINT\": \"http://127.0.0.1:9999\",\n    \"OTEL_LOGS_EXPORT_INTERVAL\": \"1000\",\n\
         \x20   \"OTEL_METRIC_EXPORT_INTERVAL\": \"10000\",\n    \"OTEL_LOG_USER_PROMPTS\": \"1\",\n\
         \x20   \"OTEL_LOG_TOOL_DETAILS\": \"1\"\n  }\n}\n\
         # As shell exports:\n\
         export CLAUDE_CODE_ENABLE_TELEMETRY=1\nexport OTEL_LOGS_EXPORTER=otlp\nexport OTEL_METRICS_EXPORTER=otlp\n\
         export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\nexport OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9999\n\
         export OTEL_LOGS_EXPORT_INTERVAL=1000\nexport OTEL_METRIC_EXPORT_INTERVAL=10000\n\
         export OTEL_LOG_USER_PROMPTS=1\nexport OTEL_LOG_TOOL_DETAILS=1\n\
         # On:\n\
         #   OTEL_LOG_USER_PROMPTS=1  sends the text of every prompt you type, and Claude's replies\n\
         #   OTEL_LOG_TOOL_DETAILS=1  sends command lines, file paths and tool inputs (devtrace's command findings, such as retry loops, need them)\n\
         # Everything devtrace receives is redacted before it is stored (secrets, e-mail addresses).\n"
    );

    let out = setup(dir.path(), &["gemini", "--print", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["agent"], "gemini");
    assert_eq!(json["written"], false);
    let settings: Vec<(&str, &str)> = json["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        settings,
        [
            ("enabled", "true"),
            ("target", "\"local\""),
            ("otlpEndpoint", "\"http://127.0.0.1:9999\""),
            ("otlpProtocol", "\"http\""),
            ("logPrompts", "false"),
        ]
    );
    assert_eq!(json["opt_in"][0]["name"], "logPrompts");
    assert_eq!(json["opt_in"][0]["enabled"], false);
    assert_eq!(
        json["opt_in"][0]["reveals"],
        "the text of your prompts and of every model request and response"
    );

    let out = devtrace(
        dir.path(),
        &["agent-setup", "codex", "--print", "--endpoint", "4318"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: --endpoint \"4318\" is not an http:// or https:// URL: give devtrace's OTLP/HTTP address, e.g. http://127.0.0.1:4318\n\nUsage: devtrace agent-setup [OPTIONS] <AGENT>\n\nFor more information, try '--help'.\n"
    );
}

#[test]
fn agent_setup_writes_only_its_keys_and_keeps_the_rest_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let claude = dir.path().join("claude-settings.json");
    std::fs::write(
        &claude,
        r#"{"model": "opus", "env": {"KEEP_ME": "x", "OTEL_LOGS_EXPORTER": "console"}, "hooks": {"Stop": [], "PreToolUse": []}}"#,
    )
    .unwrap();
    let file = claude.to_str().unwrap();
    let out = setup(dir.path(), &["claude-code", "--yes", "--file", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "will change {file}: sets env.{{CLAUDE_CODE_ENABLE_TELEMETRY, OTEL_LOGS_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_LOGS_EXPORT_INTERVAL, OTEL_METRIC_EXPORT_INTERVAL, OTEL_LOG_TOOL_DETAILS}}; every other setting stays as it is"
        )),
        "{}",
        stderr(&out)
    );
    let written = std::fs::read_to_string(&claude).unwrap();
    // Keys keep their order (hooks' Stop before PreToolUse); env gains what was missing.
    assert!(
        written.starts_with("{\n  \"model\": \"opus\",\n  \"env\": {\n    \"KEEP_ME\": \"x\",\n    \"OTEL_LOGS_EXPORTER\": \"otlp\",\n    \"CLAUDE_CODE_ENABLE_TELEMETRY\": \"1\","),
        "{written}"
    );
    assert!(
        written.ends_with("  \"hooks\": {\n    \"Stop\": [],\n    \"PreToolUse\": []\n  }\n}\n"),
        "{written}"
    );
    // Running it again changes nothing.
    setup(dir.path(), &["claude-code", "--yes", "--file", file]);
    assert_eq!(std::fs::read_to_string(&claude).unwrap(), written);

    let codex = dir.path().join("config.toml");
    std::fs::write(
        &codex,
        "model = \"o4\" # mine\n[profiles.fast]\nmodel = \"o4-mini\"",
    )
    .unwrap();
    let out = setup(
        dir.path(),
        &["codex", "--yes", "--file", codex.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&codex).unwrap();
    assert!(
        text.starts_with("model = \"o4\" # mine\n[profiles.fast]\nmodel = \"o4-mini\"\n\n[otel]\n"),
        "{text}"
    );
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        parsed["otel"]["exporter"]["otlp-http"]["endpoint"].as_str(),
        Some("http://127.0.0.1:9999/v1/logs")
    );
    // An [otel] table that is there already is the user's: devtrace says what to do instead.
    let out = setup(
        dir.path(),
        &["codex", "--yes", "--file", codex.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).ends_with(&format!(
        "error: {} already has an [otel] table, which devtrace does not overwrite: replace it with the one `devtrace agent-setup codex --print` prints\n",
        codex.display()
    )));
    assert_eq!(std::fs::read_to_string(&codex).unwrap(), text);

    // Without --yes and no terminal to ask on, nothing is written.
    let gemini = dir.path().join("gemini.json");
    let out = setup(dir.path(), &["gemini", "--file", gemini.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).ends_with(&format!(
        "error: not writing {} without asking, and stdin is not a terminal to ask on: pass --yes to write it, or --print to only print the settings\n",
        gemini.display()
    )));
    assert!(!gemini.exists());
    // Broken settings are left alone, with what to do.
    std::fs::write(&gemini, "{not json").unwrap();
    let out = setup(
        dir.path(),
        &["gemini", "--yes", "--file", gemini.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "{} is not valid JSON, so devtrace leaves it alone: fix it, or paste the settings from `devtrace agent-setup gemini --print`",
            gemini.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&gemini).unwrap(), "{not json");
}

/// Claude Code's metrics for the session of claude-code-2.1-events.json, as OTLP/JSON.
fn claude_metrics() -> String {
    let session = "215fdfde-3cba-4c2e-b232-4aecc8d1814f";
    let point = |kind: Option<&str>, value: f64| {
        let mut attributes =
            vec![serde_json::json!({"key": "session.id", "value": {"stringValue": session}})];
        if let Some(kind) = kind {
            attributes.push(serde_json::json!({"key": "type", "value": {"stringValue": kind}}));
        }
        serde_json::json!({"attributes": attributes, "startTimeUnixNano": "1795406177000000000",
            "timeUnixNano": "1795406177500000000", "asDouble": value})
    };
    let sum = |name: &str, points: Vec<Value>| serde_json::json!({"name": name, "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": points}});
    serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeMetrics": [{"metrics": [
            sum("claude_code.cost.usage", vec![point(None, 0.0321)]),
            sum("claude_code.token.usage", vec![point(Some("input"), 4800.0), point(Some("output"), 160.0),
                point(Some("cacheRead"), 3200.0), point(Some("cacheCreation"), 400.0)]),
            sum("claude_code.lines_of_code.count", vec![point(Some("added"), 12.0), point(Some("removed"), 3.0)]),
        ]}]}]})
    .to_string()
}

#[test]
fn imported_events_and_metrics_show_as_a_session_with_the_agents_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.json");
    std::fs::write(&metrics, claude_metrics()).unwrap();
    let events = native_fixture("claude-code-2.1-events.json");
    let out = devtrace(
        dir.path(),
        &[
            "import",
            events.to_str().unwrap(),
            metrics.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "{}: 0 spans, 16 log records (the events of 1 agent session)\n\
             {}: 0 spans, 0 log records, 7 metric data points\n\
             imported 0 spans and 16 log records, 7 metric data points from 2 of 2 files\n",
            events.display(),
            metrics.display()
        )
    );
    let list = devtrace(dir.path(), &["sessions"]);
    assert_eq!(
        stdout(&list),
        "START (UTC)          AGENT        PROJECT  DURATION  TURNS  TOOLS  TOKENS  EST. COST     COST   LINES  ERRORS  FINDINGS  ID        TITLE\n\
         2026-11-23 03:56:17  claude-code           420.0 ms      1      4    8560     $0.096  $0.0321  +12/-3       4         1  215fdfde  Run the check and fix the build\n"
    );
    let daily = devtrace(dir.path(), &["sessions", "--daily"]);
    assert_eq!(
        stdout(&daily),
        "DAY (UTC)   SESSIONS       COST  TOKENS IN     CACHED        OUT        LINES\n\
         2026-11-23         1    $0.0321       8400       3200        160       +12/-3\n"
    );
    let show = stdout(&devtrace(dir.path(), &["session", "show", "215fdfde"]));
    assert!(
        show.contains(
            "agent-reported: cost $0.0321, tokens 8400 in (3200 from cache), 160 out, lines +12/-3\n\
             from the agent's own telemetry, which leaves out tool inputs, tool outputs, file contents, the working directory; `devtrace import claude-code` fills them in\n"
        ),
        "{show}"
    );
    assert!(
        show.contains(
            "failed 3 times in a row with no change in between: \"Shell command failed\""
        ),
        "{show}"
    );
    // Importing again stores nothing twice: documents are remembered, points keyed.
    let again = devtrace(
        dir.path(),
        &[
            "import",
            events.to_str().unwrap(),
            metrics.to_str().unwrap(),
            "--json",
        ],
    );
    let summary: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["already_imported"], 2);
    assert_eq!(
        stdout(&devtrace(dir.path(), &["sessions", "--daily"])),
        stdout(&daily)
    );
}

#[test]
fn an_otlp_metrics_document_of_every_kind_imports_instead_of_being_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp/metrics.json");
    let out = devtrace(dir.path(), &["import", example.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Its sum, gauge, histogram and exponential histogram: one point each.
    assert_eq!(summary["metric_points"], 4, "{summary}");
    assert_eq!(summary["skipped_documents"], 0);
    // Not an agent's: no usage to show.
    assert_eq!(
        stdout(&devtrace(dir.path(), &["sessions", "--daily"])),
        "no agent metrics stored: point an agent's telemetry here with `devtrace agent-setup claude-code|codex|gemini`\n"
    );
}

#[test]
fn agent_setup_for_a_team_server_writes_the_token_as_each_agents_header_and_shows_it_masked() {
    use std::os::unix::fs::PermissionsExt;
    // A real token, made as `devtrace token create` makes them; it is shown by its public id.
    let minted = devtrace_server::auth::token::mint(
        devtrace_store::ProjectId::DEFAULT,
        "agents",
        &[devtrace_server::auth::Scope::Ingest],
        0,
        None,
    )
    .unwrap();
    let token = minted.token.as_str();
    let masked = format!("{}…", minted.stored.public_id);
    assert!(
        masked.starts_with("dtk_") && masked.chars().count() == 13,
        "{masked}"
    );
    let dir = tempfile::tempdir().unwrap();

    // Claude Code: the standard OTLP headers variable, in the settings' env.
    let claude = dir.path().join("claude.json");
    let out = setup(
        dir.path(),
        &[
            "claude-code",
            "--yes",
            "--token",
            token,
            "--file",
            claude.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&claude).unwrap()).unwrap();
    assert_eq!(
        written["env"]["OTEL_EXPORTER_OTLP_HEADERS"],
        format!("Authorization=Bearer {token}")
    );
    assert_eq!(
        std::fs::metadata(&claude).unwrap().permissions().mode() & 0o777,
        0o600,
        "a settings file holding a token is its owner's only"
    );
    let shown = stderr(&out);
    assert!(
        !shown.contains(token),
        "the token is never printed: {shown}"
    );
    assert!(
        shown.contains(&format!(
            "\"OTEL_EXPORTER_OTLP_HEADERS\": \"Authorization=Bearer {masked}\""
        )),
        "{shown}"
    );
    assert!(
        shown.contains("# The token is shown masked; --yes writes the real one (give it with --token or DEVTRACE_TOKEN).\n"),
        "{shown}"
    );

    // Codex: `headers` on each of its exporters.
    let codex = dir.path().join("config.toml");
    let out = setup(
        dir.path(),
        &[
            "codex",
            "--yes",
            "--token",
            token,
            "--file",
            codex.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let config: toml::Table = toml::from_str(&std::fs::read_to_string(&codex).unwrap()).unwrap();
    for exporter in ["exporter", "trace_exporter", "metrics_exporter"] {
        assert_eq!(
            config["otel"][exporter]["otlp-http"]["headers"]["authorization"].as_str(),
            Some(format!("Bearer {token}").as_str()),
            "{exporter}"
        );
    }
    assert!(!stderr(&out).contains(token));

    // Gemini CLI: nothing in its settings can carry a header, so the export line is printed
    // (masked) and the file holds no token.
    let gemini = dir.path().join("gemini.json");
    let out = setup(
        dir.path(),
        &[
            "gemini",
            "--yes",
            "--token",
            token,
            "--file",
            gemini.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer {masked}\"\n"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!std::fs::read_to_string(&gemini).unwrap().contains("dtk_"));

    // --print --json shows the masked form too.
    let out = setup(
        dir.path(),
        &["claude-code", "--print", "--json", "--token", token],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(token), "{text}");
    assert!(
        text.contains(&format!("Authorization=Bearer {masked}")),
        "{text}"
    );

    // A token that is not devtrace's (a proxy's, say) is shown as "…" alone.
    let out = setup(
        dir.path(),
        &[
            "claude-code",
            "--print",
            "--token",
            "proxy-secret-0123456789",
        ],
    );
    let text = stdout(&out);
    assert!(!text.contains("proxy-secret"), "{text}");
    assert!(text.contains("\"Authorization=Bearer …\""), "{text}");
}

//! Token accounting, prompt-cache breaks, batchable tool calls and `session compare`, end to
//! end through the binary on transcripts we wrote in the real Claude Code and Codex formats
//! (tests/fixtures/sessions, made by make_token_fixtures.py): exact totals and costs.

mod common;

use common::{devtrace_wide as devtrace, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sessions")
        .join(name)
}

const CLAUDE: &str = "7a0c2d1e-5b3f-4c8a-9d6e-1f2a3b4c5d6e.jsonl";
const CODEX: &str = "rollout-2026-11-20T10-00-00-019a7c3e-1111-7222-8333-944455556666.jsonl";

fn json_of(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

fn imported() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (agent, file) in [("claude-code", CLAUDE), ("codex", CODEX)] {
        let out = devtrace(
            dir.path(),
            &["import", agent, fixture(file).to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    dir
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn tokens_are_counted_once_per_message_with_its_last_usage_and_priced_by_kind() {
    let dir = imported();
    let show = json_of(&devtrace(
        dir.path(),
        &["session", "show", "7a0c2d1e", "--json"],
    ));
    let tokens = &show["session"]["tokens"];
    // Every content block repeats the usage; the last line has the final output count.
    assert_eq!(tokens["requests"], 16);
    assert_eq!(tokens["uncached_input"], 52);
    assert_eq!(tokens["cache_write"], 54_050);
    assert_eq!(tokens["cache_read"], 139_200);
    assert_eq!(tokens["output"], 1_325);
    // Sonnet 4.5 at $3 / $0.30 / $3.75 / $15, Opus 4.1 at $15 / $1.50 / $18.75 / $75.
    assert!(
        close(tokens["cost_usd"].as_f64().unwrap(), 0.5576505),
        "{tokens}"
    );
    let requests = show["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 16);
    assert_eq!(requests[0]["tool_calls"], 1);
    assert_eq!(requests[6]["tool_calls"], 2, "the parallel reads");
    let sidechain: Vec<u64> = requests
        .iter()
        .filter(|r| r["sidechain"] == true)
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(sidechain, [11, 12]);
    let breaks: Vec<(u64, &str, u64)> = requests
        .iter()
        .filter_map(|r| {
            let b = r.get("cache_break")?;
            Some((
                r["index"].as_u64().unwrap(),
                b["cause"].as_str().unwrap(),
                b["tokens_rewritten"].as_u64().unwrap(),
            ))
        })
        .collect();
    // Not breaks: the first request, the pause inside the lifetime (request 10), the
    // sub-agent's first request (11), the one after the sidechain (13), after compaction (16).
    assert_eq!(
        breaks,
        [(14, "idle_gap", 15_100), (15, "model_switch", 15_300)]
    );
    assert!(close(
        requests[13]["cache_break"]["usd_lost"].as_f64().unwrap(),
        15_100.0 * (3.75 - 0.30) / 1e6
    ));
    assert!(close(
        requests[14]["cache_break"]["usd_lost"].as_f64().unwrap(),
        15_300.0 * (18.75 - 1.50) / 1e6
    ));
    assert_eq!(requests[15]["after_compaction"], true);

    let findings = show["findings"].as_array().unwrap();
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["cache_break", "batchable_calls", "cache_break"],
        "ranked by impact"
    );
    assert!(
        findings[0]["impact"]["score"].as_f64().unwrap()
            > findings[1]["impact"]["score"].as_f64().unwrap()
    );
    let run = &findings[1];
    assert_eq!(
        run["numbers"]["requests"], 4.0,
        "the search's result ends the run"
    );
    assert_eq!(run["numbers"]["round_trips"], 3.0);
    assert_eq!(run["numbers"]["context_tokens"], 37_609.0);
    assert_eq!(findings[2]["impact"]["basis"], "observation");
}

#[test]
fn codex_cached_input_is_the_cache_read_and_an_idle_gap_breaks_it() {
    let dir = imported();
    let show = json_of(&devtrace(
        dir.path(),
        &["session", "show", "019a7c3e", "--json"],
    ));
    let tokens = &show["session"]["tokens"];
    assert_eq!(
        (
            tokens["requests"].as_u64(),
            tokens["uncached_input"].as_u64(),
            tokens["cache_read"].as_u64(),
            tokens["cache_write"].as_u64(),
            tokens["output"].as_u64()
        ),
        (Some(5), Some(18_012), Some(25_088), Some(0), Some(270))
    );
    // gpt-5 at $1.25 / $0.125 cached / $10.
    assert!(
        close(tokens["cost_usd"].as_f64().unwrap(), 0.028351),
        "{tokens}"
    );
    let requests = show["requests"].as_array().unwrap();
    assert_eq!(requests[4]["cache_break"]["cause"], "idle_gap");
    assert_eq!(requests[4]["cache_break"]["tokens_rewritten"], 8_900);
    assert!(close(
        requests[4]["cache_break"]["usd_lost"].as_f64().unwrap(),
        8_900.0 * (1.25 - 0.125) / 1e6
    ));
    let run = show["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "batchable_calls")
        .expect("the three read-only shell commands");
    assert_eq!(run["numbers"]["requests"], 3.0);
}

#[test]
fn the_listing_the_text_views_and_the_comparison() {
    let dir = imported();
    let list = stdout(&devtrace(dir.path(), &["sessions"]));
    assert_eq!(
        list,
        "START (UTC)          AGENT        PROJECT    DURATION  TURNS  TOOLS  TOKENS  EST. COST  ERRORS  FINDINGS  ID        TITLE\n\
         2026-11-20 10:00:00  codex        /work/app  11.7 min      2      3     43k     $0.028       0         2  019a7c3e  Summarise the README and the TODOs\n\
         2026-11-20 10:00:00  claude-code  /repo      30.8 min      4     11    194k     $0.558       0         3  7a0c2d1e  Look around the parser and fix the overflow\n"
    );
    // The per-request table's notes are long: a terminal wide enough for them.
    let show = stdout(&common::devtrace_at_width(
        dir.path(),
        300,
        &["session", "show", "7a0c2d1e", "--requests"],
    ));
    assert!(show.contains(
        "16 requests: 52 uncached in, 54,050 cache write, 139,200 cache read, 1,325 out; cost $0.558 at the built-in prices of 2025-11-24\n\
         context per request  ▆▇▇▇▇▇▇██████▂  (max 15k)\n\
         cache share          ▁██████████▁▁▁  (min 0%)\n"
    ), "{show}");
    assert!(show.contains(
        "  15  main  claude-opus-4-1-20250805            3     15,500          0      200      0%     $0.306      0  cache break at a model switch from \"claude-sonnet-4-5-20250929\" to \"claude-opus-4-1-20250805\": 15,300 tokens re-written, $0.264 lost\n"
    ), "{show}");
    assert!(show.contains(
        "1. 2 prompt-cache breaks re-wrote 30,400 tokens, $0.316 lost: 1 after idle gaps longer than the cache lifetime (longest 26.8 min); 1 at a model switch from \"claude-sonnet-4-5-20250929\" to \"claude-opus-4-1-20250805\"\n"
    ), "{show}");

    let compare = stdout(&devtrace(
        dir.path(),
        &["session", "compare", "7a0c2d1e", "019a7c3e"],
    ));
    assert!(
        compare.contains(
            "tokens: cache read             139,200          25,088\n\
         tokens: output                   1,325             270\n\
         cost                            $0.558          $0.028\n"
        ),
        "{compare}"
    );
    assert!(compare.contains(
        "first divergence at request 1:\n  A (+0:00): Read lexer.rs\n  B (+0:03): shell cat README.md\n"
    ), "{compare}");
    let json = json_of(&devtrace(
        dir.path(),
        &["session", "compare", "7a0c2d1e", "7a0c2d1e", "--json"],
    ));
    assert_eq!(
        json["first_divergence"],
        Value::Null,
        "a session is its own twin"
    );
    assert_eq!(json["a"]["tool_calls"]["Read"]["ok"], 5);
    assert_eq!(json["cost_ratio"], 1.0);

    let insights = stdout(&devtrace(dir.path(), &["insights", "--sessions"]));
    assert!(insights.contains(
        "prompt-cache breaks over the last 2 sessions, most money first:\n\
         - breaks at model switches cost $0.264 (15,300 tokens re-written) over 1 session\n\
         - breaks after idle gaps cost $0.062 (24,000 tokens re-written) over 2 sessions; the longest idle pauses were 26.8 min, 11.5 min\n"
    ), "{insights}");

    let bad = devtrace(dir.path(), &["session", "compare", "7a0c2d1e", "nosuch"]);
    assert!(!bad.status.success());
}

/// The config file's `[prices]` doubling Opus 4.1's prices: $30 / $3 / $37.5 / $150.
const OPUS_DOUBLED: &str =
    "[prices.\"claude-opus-4-1\"]\ninput = 30\ncache-read = 3\ncache-write = 37.5\noutput = 150\n";

#[test]
fn configured_prices_reach_the_session_costs_of_every_face() {
    let dir = imported();
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("devtrace")).unwrap();
    let file = config.path().join("devtrace/config.toml");
    std::fs::write(&file, OPUS_DOUBLED).unwrap();
    let with_config = |args: &[&str]| {
        std::process::Command::new(common::BIN)
            .arg("--data")
            .arg(dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("DEVTRACE_CONFIG")
            .output()
            .unwrap()
    };
    // The two Opus requests (3 uncached, 15,500 written, 200 out; after the compaction 3,
    // 3,000 and 60): doubling their prices adds what they cost at the built-in ones,
    // (6 × 15 + 18,500 × 18.75 + 260 × 75) / 1e6 = $0.366465.
    let built_in = 0.5576505;
    let configured = built_in + (6.0 * 15.0 + 18_500.0 * 18.75 + 260.0 * 75.0) / 1e6;
    let label = "built-in prices of 2025-11-24 + configuration";
    let cost_of = |list: &Value, prefix: &str| {
        let session = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["trace_id"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {list}"));
        assert_eq!(session["tokens"]["prices"], label, "{session}");
        session["tokens"]["cost_usd"].as_f64().unwrap()
    };

    let list = json_of(&with_config(&["sessions", "--json"]));
    assert!(close(cost_of(&list, "7a0c2d1e"), configured), "{list}");
    assert!(
        close(cost_of(&list, "019a7c3e"), 0.028351),
        "gpt-5 keeps its price"
    );
    let compare = json_of(&with_config(&[
        "session", "compare", "7a0c2d1e", "019a7c3e", "--json",
    ]));
    assert!(close(
        compare["a"]["tokens"]["cost_usd"].as_f64().unwrap(),
        configured
    ));
    assert!(close(
        compare["cost_ratio"].as_f64().unwrap(),
        0.028351 / configured
    ));
    // The break at the switch to Opus lost 15,300 × ($37.5 − $3) / 1e6 = $0.528.
    let show = json_of(&with_config(&["session", "show", "7a0c2d1e", "--json"]));
    assert!(close(
        show["requests"][14]["cache_break"]["usd_lost"]
            .as_f64()
            .unwrap(),
        15_300.0 * (37.5 - 3.0) / 1e6
    ));
    let insights = stdout(&with_config(&["insights", "--sessions"]));
    assert!(
        insights.contains(
            "- breaks at model switches cost $0.528 (15,300 tokens re-written) over 1 session\n"
        ),
        "{insights}"
    );
    // Without the config file: the built-in prices.
    let plain = json_of(&devtrace(dir.path(), &["sessions", "--json"]));
    assert!(close(cost_of_built_in(&plain, "7a0c2d1e"), built_in));

    // serve --config FILE: the same costs through REST.
    let file_arg = file.to_str().unwrap();
    let server = common::start_server_with(dir.path(), &["--config", file_arg], &[]);
    let listed = common::get_json(server.api, "/api/v1/sessions");
    assert!(
        close(cost_of(&listed["sessions"], "7a0c2d1e"), configured),
        "{listed}"
    );
    let compared = common::get_json(server.api, "/api/v1/sessions/7a0c2d1e/compare/019a7c3e");
    assert!(close(
        compared["a"]["tokens"]["cost_usd"].as_f64().unwrap(),
        configured
    ));
    let overview = common::get_json(server.api, "/api/v1/sessions/7a0c2d1e/overview");
    assert!(close(
        overview["session"]["tokens"]["cost_usd"].as_f64().unwrap(),
        configured
    ));
    server.stop();
}

fn cost_of_built_in(list: &Value, prefix: &str) -> f64 {
    let session = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["trace_id"].as_str().unwrap().starts_with(prefix))
        .unwrap();
    assert_eq!(session["tokens"]["prices"], "built-in prices of 2025-11-24");
    session["tokens"]["cost_usd"].as_f64().unwrap()
}

#[test]
fn a_configured_price_that_is_not_a_price_stops_the_session_commands_naming_it() {
    let dir = imported();
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("devtrace")).unwrap();
    std::fs::write(
        config.path().join("devtrace/config.toml"),
        "[prices.\"claude-opus-4-1\"]\ninput = -1\noutput = 75\n",
    )
    .unwrap();
    for args in [
        &["sessions"][..],
        &["session", "compare", "7a0c2d1e", "019a7c3e"],
        &["insights", "--sessions"],
    ] {
        let out = std::process::Command::new(common::BIN)
            .arg("--data")
            .arg(dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("DEVTRACE_CONFIG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(
            stderr(&out),
            "error: the config file's price of \"claude-opus-4-1\" has input = -1: prices are dollars per million tokens, 0 or more\n",
            "{args:?}"
        );
    }
}

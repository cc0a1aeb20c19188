//! Tool calls one request could have made: consecutive requests of one conversation that each
//! made a single read-only call, none of whose inputs uses anything an earlier call of the run
//! returned. Made as parallel calls of one request, they would have cost one round-trip and
//! one re-read of the context instead of several.
//!
//! The rules (docs/analysis.md):
//! - **read-only calls**: file reads, searches and listings, web fetches and searches; a shell
//!   command only when [`read_only_command`] says so;
//! - **independent**: no term of a later call's input — its path, the path's file name or stem,
//!   its command's words, its search pattern or URL (3 characters or more) — appears, as a word
//!   of its own (`api` is not in `rapid`), in the whole output of an earlier call of the run.
//!   An output longer than the inline limit is read from its blob ([`WholeOutputs`], within a
//!   per-session budget); one that cannot be read cannot be checked, so the run ends after it;
//! - **never flagged**: a call that uses what one before returned, an edit or write, a command
//!   with side effects, a request that made several calls (already parallel) or none.
//! - a run is at least `min_run` (3) requests.

use super::evidence;
use super::outputs::WholeOutputs;
use crate::finding::{Finding, FindingKind, Impact, MAX_EVIDENCE, thousands};
use crate::fingerprint::fingerprint;
use crate::pricing::{PriceTable, TokenUse, format_dollars};
use crate::session::{Action, ActionKind, SessionView};
use crate::session_tokens::{Accounting, conversations};
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Requests in a run for a finding: 3.
    pub min_run: usize,
    /// Blob bytes read per session to see long outputs whole:
    /// [`super::outputs::DEFAULT_BUDGET_BYTES`] (the caller that reads them applies it).
    pub output_budget_bytes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_run: 3,
            output_budget_bytes: super::outputs::DEFAULT_BUDGET_BYTES,
        }
    }
}

/// A run of requests that could have been one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// Indices into the accounting's requests, in order.
    pub requests: Vec<usize>,
    /// Round-trips one request would have saved (the run's length − 1).
    pub round_trips: usize,
    /// Context tokens the saved requests re-read.
    pub context_tokens: u64,
    /// What re-reading them cost (input only); `None` without a price.
    pub usd: Option<f64>,
    /// The saved requests' time (each waited for the model).
    pub nanos: u64,
}

/// Programs that only read (their arguments are then checked: `find -exec`, `sed -i`, …).
const READ_ONLY_PROGRAMS: &[&str] = &[
    "cat",
    "head",
    "tail",
    "ls",
    "tree",
    "pwd",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "ag",
    "ack",
    "find",
    "fd",
    "wc",
    "file",
    "stat",
    "du",
    "df",
    "which",
    "type",
    "whereis",
    "echo",
    "printf",
    "sort",
    "uniq",
    "cut",
    "tr",
    "nl",
    "diff",
    "cmp",
    "jq",
    "sed",
    "realpath",
    "dirname",
    "basename",
    "readlink",
    "cd",
    "true",
    "date",
    "env",
    "uname",
    "id",
    "whoami",
    "md5sum",
    "sha256sum",
    "less",
    "more",
    "column",
    "git",
];

/// git subcommands that only read.
const READ_ONLY_GIT: &[&str] = &[
    "status",
    "log",
    "diff",
    "show",
    "ls-files",
    "ls-tree",
    "grep",
    "blame",
    "rev-parse",
    "describe",
    "cat-file",
    "shortlog",
    "reflog",
    "remote",
    "branch",
    "tag",
];

/// Whether a shell command only reads: every command of it (split at `|`, `&&`, `||`, `;`)
/// is a [`READ_ONLY_PROGRAMS`] program with arguments that do not write (`find` without
/// `-exec`/`-delete`/`-fprint`/`-ok`, `sed` without `-i`, `git` with a
/// [`READ_ONLY_GIT`] subcommand and, for `branch`/`tag`/`remote`, only flags), and nothing
/// redirects output to a file, substitutes a command or feeds a here-document
/// (`>`, `>>`, `$(`, `` ` ``, `<<`, `tee`); `bash -c 'X'` is judged by X.
pub fn read_only_command(command: &str) -> bool {
    let command = command.trim();
    if let Some(inner) = shell_wrapped(command) {
        return read_only_command(&inner);
    }
    let cleaned = command
        .replace("2>&1", "")
        .replace("2>/dev/null", "")
        .replace(">/dev/null", "")
        .replace("> /dev/null", "");
    if cleaned.contains('>')
        || cleaned.contains("$(")
        || cleaned.contains('`')
        || cleaned.contains("<<")
        || cleaned.contains('\n')
    {
        return false;
    }
    let normalized = cleaned
        .replace("&&", ";")
        .replace("||", ";")
        .replace('|', ";");
    let mut any = false;
    for segment in normalized.split(';') {
        let words: Vec<&str> = segment
            .split_whitespace()
            .skip_while(|w| w.contains('=') && !w.starts_with('-'))
            .collect();
        let Some(program) = words.first() else {
            continue;
        };
        any = true;
        let program = program.rsplit('/').next().unwrap_or(program);
        if !READ_ONLY_PROGRAMS.contains(&program) {
            return false;
        }
        let args = &words[1..];
        let ok = match program {
            "find" => !args.iter().any(|a| {
                matches!(
                    *a,
                    "-exec"
                        | "-execdir"
                        | "-delete"
                        | "-ok"
                        | "-okdir"
                        | "-fprint"
                        | "-fprintf"
                        | "-fls"
                )
            }),
            "sed" => !args
                .iter()
                .any(|a| a.starts_with("-i") || *a == "--in-place"),
            "sort" => !args.iter().any(|a| a.starts_with("-o")),
            "env" => args.is_empty(),
            "git" => {
                let sub = args.iter().find(|a| !a.starts_with('-'));
                match sub {
                    Some(sub) if READ_ONLY_GIT.contains(sub) => {
                        let after: Vec<&&str> =
                            args.iter().skip_while(|a| *a != sub).skip(1).collect();
                        match *sub {
                            // `git branch x`, `git tag v1`, `git remote add …` write.
                            "branch" | "tag" | "remote" => {
                                after.iter().all(|a| {
                                    a.starts_with('-')
                                        && !matches!(
                                            **a,
                                            "-d" | "-D"
                                                | "-m"
                                                | "-M"
                                                | "-c"
                                                | "-C"
                                                | "--delete"
                                                | "-f"
                                                | "--force"
                                                | "-a"
                                                | "-s"
                                                | "-u"
                                        )
                                        || (*sub == "tag" && **a == "-l")
                                }) || (*sub == "remote"
                                    && after.first().is_some_and(|a| **a == "-v"))
                            }
                            _ => true,
                        }
                    }
                    _ => false,
                }
            }
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    any
}

/// `bash -c 'X'`, `sh -lc "X"`, `zsh -c X` → X.
fn shell_wrapped(command: &str) -> Option<String> {
    let mut words = command.splitn(3, char::is_whitespace);
    let shell = words.next()?;
    let shell = shell.rsplit('/').next().unwrap_or(shell);
    if !matches!(shell, "bash" | "sh" | "zsh" | "dash") {
        return None;
    }
    let flag = words.next()?;
    if !(flag.starts_with('-') && flag.ends_with('c')) {
        return None;
    }
    let rest = words.next()?.trim();
    let unquoted = rest
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
        .unwrap_or(rest);
    Some(unquoted.to_owned())
}

/// Whether an action only reads.
pub fn read_only(action: &Action) -> bool {
    match action.kind {
        ActionKind::Read | ActionKind::Search | ActionKind::Web => true,
        ActionKind::Command => action.command.as_deref().is_some_and(read_only_command),
        _ => false,
    }
}

/// The terms of an action's input a dependency would show in: its path (and file name and
/// stem), its command's words, its input's string values; 3 characters or more.
fn input_terms(action: &Action) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    let add_path = |terms: &mut Vec<String>, path: &str| {
        terms.push(path.to_owned());
        if let Some(name) = path.rsplit('/').next() {
            terms.push(name.to_owned());
            if let Some((stem, _)) = name.split_once('.') {
                terms.push(stem.to_owned());
            }
        }
    };
    if let Some(path) = &action.path {
        add_path(&mut terms, path);
    }
    if let Some(command) = &action.command {
        let words = command
            .split(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | ';' | '|' | '&'))
            .filter(|w| !w.starts_with('-'));
        // The program names say nothing about data.
        for word in words.skip(1) {
            if word.contains('/') {
                add_path(&mut terms, word);
            } else {
                terms.push(word.to_owned());
            }
        }
    }
    if let Some(input) = &action.input
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(input)
    {
        let mut strings = Vec::new();
        collect_strings(&value, &mut strings);
        for s in strings {
            if s.contains('/') && !s.contains(char::is_whitespace) {
                add_path(&mut terms, &s);
            } else {
                terms.push(s);
            }
        }
    }
    terms.retain(|t| t.chars().count() >= 3);
    terms.sort();
    terms.dedup();
    terms
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Whether `action` could have been made without `earlier`'s result: none of its input's
/// terms is in that result, read whole (a result that cannot be read cannot be checked).
fn independent_of(action: &Action, earlier: &Action, outputs: &mut WholeOutputs) -> bool {
    let Some(output) = outputs.whole(earlier) else {
        return false;
    };
    // Terms the earlier call was given itself are not something it returned.
    let given = input_terms(earlier);
    !input_terms(action)
        .iter()
        .any(|term| mentions(output, term) && !given.contains(term))
}

/// Whether `term` stands in `text` as a word of its own: not inside a longer name (where the
/// term starts or ends with a letter, digit or `_`, the character beside it is none of them).
fn mentions(text: &str, term: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let (first, last) = match (term.chars().next(), term.chars().next_back()) {
        (Some(first), Some(last)) => (first, last),
        _ => return false,
    };
    text.match_indices(term).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + term.len()..].chars().next();
        let joined_before = word(first) && before.is_some_and(word);
        let joined_after = word(last) && after.is_some_and(word);
        !joined_before && !joined_after
    })
}

/// The runs of one session.
pub fn runs(
    view: &SessionView,
    accounting: &Accounting,
    prices: &PriceTable,
    thresholds: &Thresholds,
    outputs: &mut WholeOutputs,
) -> Vec<Run> {
    let main = view
        .root
        .map(|r| view.trace.span(r).span_id)
        .unwrap_or_default();
    let mut out = Vec::new();
    for (_, requests) in conversations(accounting, main) {
        let mut run: Vec<usize> = Vec::new();
        let mut finish = |run: &mut Vec<usize>| {
            if run.len() >= thresholds.min_run.max(2) {
                out.push(measure(accounting, prices, std::mem::take(run)));
            }
            run.clear();
        };
        for &r in &requests {
            let request = &accounting.requests[r];
            let single = match request.tools.as_slice() {
                [only] if read_only(&view.actions[*only]) => Some(*only),
                _ => None,
            };
            let Some(action) = single else {
                finish(&mut run);
                continue;
            };
            let action = &view.actions[action];
            let fits = run.iter().all(|earlier| {
                let earlier = &view.actions[accounting.requests[*earlier].tools[0]];
                independent_of(action, earlier, outputs)
            });
            if !fits {
                finish(&mut run);
            }
            run.push(r);
        }
        finish(&mut run);
    }
    out.sort_by_key(|run| accounting.requests[run.requests[0]].start);
    out
}

fn measure(accounting: &Accounting, prices: &PriceTable, requests: Vec<usize>) -> Run {
    let saved = &requests[1..];
    let mut usd = Some(0.0);
    let mut context_tokens = 0;
    let mut nanos = 0;
    for &r in saved {
        let request = &accounting.requests[r];
        context_tokens += request.context_tokens();
        nanos += request.end.saturating_sub(request.start);
        let input = TokenUse {
            output: 0,
            ..request.tokens
        };
        usd = match (
            usd,
            request.model.as_deref().and_then(|m| prices.cost(m, input)),
        ) {
            (Some(total), Some(cost)) => Some(total + cost),
            _ => None,
        };
    }
    Run {
        round_trips: saved.len(),
        requests,
        context_tokens,
        usd,
        nanos,
    }
}

/// One finding per session holding runs: each run (the first [`MAX_EVIDENCE`]) listed as an
/// evidence item (its calls) and
/// in the numbers (`run_N_first_request`, 1-based as in `session show --requests`,
/// `run_N_requests`, `run_N_round_trips`, `run_N_context_tokens`), the totals summed.
pub fn detect(
    view: &SessionView,
    accounting: &Accounting,
    runs: &[Run],
    prices: &PriceTable,
) -> Vec<Finding> {
    if runs.is_empty() {
        return Vec::new();
    }
    let calls_of = |run: &Run| -> Vec<&Action> {
        run.requests
            .iter()
            .map(|r| &view.actions[accounting.requests[*r].tools[0]])
            .collect()
    };
    let mut tools: Vec<String> = Vec::new();
    for run in runs {
        for action in calls_of(run) {
            let tool = devtrace_model::recorded::name(&action.tool);
            if !tools.contains(&tool) {
                tools.push(tool);
            }
        }
    }
    let requests: usize = runs.iter().map(|r| r.requests.len()).sum();
    let round_trips: usize = runs.iter().map(|r| r.round_trips).sum();
    let context_tokens: u64 = runs.iter().map(|r| r.context_tokens).sum();
    let nanos: u64 = runs.iter().map(|r| r.nanos).sum();
    let usd: Option<f64> = runs.iter().map(|r| r.usd).sum();
    let model = accounting.requests[runs[0].requests[0]].model.clone();
    let mut impact = Impact::tokens(context_tokens, model);
    impact.affected_runs = 1;
    if let Some(usd) = usd {
        impact.cost_per_run_usd = Some(usd);
        impact.prices = Some(prices.source.clone());
    }
    let money = usd
        .map(|usd| format!(" ({})", format_dollars(usd)))
        .unwrap_or_default();
    let saved = format!(
        "{round_trips} round-{} and {} context tokens re-read{money}",
        if round_trips == 1 { "trip" } else { "trips" },
        thousands(context_tokens),
    );
    let title = match runs {
        [run] => format!(
            "{} requests in a row each made one independent read-only call ({}): one request with parallel calls would have saved {saved}",
            run.requests.len(),
            tools.join(", "),
        ),
        _ => format!(
            "{} runs of requests in a row each made one independent read-only call ({}; {requests} requests): one request per run with parallel calls would have saved {saved}",
            runs.len(),
            tools.join(", "),
        ),
    };
    let mut numbers: std::collections::BTreeMap<String, f64> = [
        ("runs".to_owned(), runs.len() as f64),
        ("requests".to_owned(), requests as f64),
        ("round_trips".to_owned(), round_trips as f64),
        ("context_tokens".to_owned(), context_tokens as f64),
        ("usd".to_owned(), usd.unwrap_or(0.0)),
    ]
    .into_iter()
    .collect();
    let mut evidence_items = Vec::new();
    for (n, run) in runs.iter().take(MAX_EVIDENCE).enumerate() {
        let n = n + 1;
        for (name, value) in [
            ("first_request", run.requests[0] as f64 + 1.0),
            ("requests", run.requests.len() as f64),
            ("round_trips", run.round_trips as f64),
            ("context_tokens", run.context_tokens as f64),
        ] {
            numbers.insert(format!("run_{n}_{name}"), value);
        }
        evidence_items.extend(evidence(view, calls_of(run).iter().map(|a| a.span_id)));
    }
    vec![Finding {
        kind: FindingKind::BatchableCalls,
        operation: Some("batchable tool calls".into()),
        title,
        recommendation: "Make independent reads in one request, as parallel tool calls: each extra round-trip re-sends the whole context.".into(),
        fingerprint: fingerprint(&["batchable_calls", &tools.join(",")]),
        saving_nanos: nanos,
        occurrences: 1,
        numbers,
        evidence: evidence_items,
        impact,
    }]
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{Session, Step, command, edit, read};
    use super::*;
    use crate::session_tokens::account;
    use devtrace_model::semconv;

    const MODEL: &str = "claude-sonnet-4-5";
    const T: [i64; 4] = [10_000, 200, 5, 50];

    fn found(session: &mut Session) -> (Vec<Run>, Vec<Finding>) {
        let trace = session.build();
        let view = SessionView::new(&trace);
        let prices = PriceTable::built_in();
        let accounting = account(&view, &prices);
        let runs = runs(
            &view,
            &accounting,
            &prices,
            &Thresholds::default(),
            &mut WholeOutputs::inline_only(),
        );
        let findings = detect(&view, &accounting, &runs, &prices);
        (runs, findings)
    }

    fn read_of(path: &str, content: &str) -> Step {
        read(path, "h").output(content, content.len() as i64)
    }

    fn search(pattern: &str, result: &str) -> Step {
        Step::new("search", "Grep")
            .attr(
                semconv::SESSION_INPUT,
                format!("{{\"pattern\":\"{pattern}\"}}"),
            )
            .output(result, result.len() as i64)
    }

    #[test]
    fn independent_single_reads_in_a_row_are_one_run() {
        let mut s = Session::new(1);
        s.request(MODEL, T, vec![read_of("/repo/src/alpha.rs", "fn one() {}")])
            .request(MODEL, T, vec![read_of("/repo/src/beta.rs", "fn two() {}")])
            .request(
                MODEL,
                T,
                vec![command("ls -la /repo/docs").output("x.md", 4)],
            )
            .request(MODEL, T, vec![]);
        let (runs, findings) = found(&mut s);
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].requests.len(), 3);
        assert_eq!(runs[0].round_trips, 2);
        assert_eq!(runs[0].context_tokens, 2 * 10_205);
        // Two requests' input: 10,000 read at $0.30, 200 written at $3.75, 5 at $3.
        let usd = 2.0 * (10_000.0 * 0.30 + 200.0 * 3.75 + 5.0 * 3.0) / 1e6;
        assert!((runs[0].usd.unwrap() - usd).abs() < 1e-12);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].title,
            "3 requests in a row each made one independent read-only call (\"Read\", \"Bash\"): one request with parallel calls would have saved 2 round-trips and 20,410 context tokens re-read ($0.0075)"
        );
    }

    #[test]
    fn a_session_with_several_runs_has_one_finding_listing_each() {
        let mut s = Session::new(7);
        s.request(MODEL, T, vec![read_of("/repo/src/a1.rs", "one")])
            .request(MODEL, T, vec![read_of("/repo/src/b1.rs", "two")])
            .request(MODEL, T, vec![read_of("/repo/src/c1.rs", "three")])
            .request(MODEL, T, vec![edit("/repo/src/c1.rs", "h1", "h2")])
            .request(MODEL, T, vec![search("fn main", "no matches")])
            .request(MODEL, T, vec![read_of("/repo/src/d1.rs", "four")])
            .request(MODEL, T, vec![read_of("/repo/src/e1.rs", "five")])
            .request(MODEL, T, vec![read_of("/repo/src/f1.rs", "six")]);
        let (runs, findings) = found(&mut s);
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(findings.len(), 1, "{findings:?}");
        let f = &findings[0];
        // 5 saved requests, each re-reading 10,205 tokens.
        let usd = 5.0 * (10_000.0 * 0.30 + 200.0 * 3.75 + 5.0 * 3.0) / 1e6;
        assert_eq!(
            f.title,
            "2 runs of requests in a row each made one independent read-only call (\"Read\", \"Grep\"; 7 requests): one request per run with parallel calls would have saved 5 round-trips and 51,025 context tokens re-read ($0.019)"
        );
        let number = |name: &str| f.numbers[name];
        assert_eq!(number("runs"), 2.0);
        assert_eq!(number("requests"), 7.0);
        assert_eq!(number("round_trips"), 5.0);
        assert_eq!(number("context_tokens"), 51_025.0);
        assert!((number("usd") - usd).abs() < 1e-12);
        assert_eq!(
            [
                number("run_1_first_request"),
                number("run_1_requests"),
                number("run_1_round_trips"),
                number("run_1_context_tokens"),
            ],
            [1.0, 3.0, 2.0, 20_410.0]
        );
        assert_eq!(
            [
                number("run_2_first_request"),
                number("run_2_requests"),
                number("run_2_round_trips"),
                number("run_2_context_tokens"),
            ],
            [5.0, 4.0, 3.0, 30_615.0]
        );
        assert_eq!(f.evidence.len(), 2, "one evidence item per run");
        assert_eq!(f.evidence[0].span_ids.len(), 3);
        assert_eq!(f.evidence[1].span_ids.len(), 4);
        assert_eq!(f.impact.tokens_per_run, 51_025);
        assert!((f.impact.cost_per_run_usd.unwrap() - usd).abs() < 1e-12);
    }

    #[test]
    fn a_search_whose_result_the_next_read_opens_is_a_chain() {
        let mut s = Session::new(2);
        s.request(
            MODEL,
            T,
            vec![search("TODO", "/repo/src/gamma.rs:3: // TODO")],
        )
        .request(MODEL, T, vec![read_of("/repo/src/gamma.rs", "fn g() {}")])
        .request(MODEL, T, vec![read_of("/repo/src/delta.rs", "fn d() {}")]);
        let (runs, _) = found(&mut s);
        assert!(runs.is_empty(), "{runs:?}");
    }

    #[test]
    fn a_read_then_an_edit_is_not_batchable() {
        let mut s = Session::new(3);
        s.request(MODEL, T, vec![read_of("/repo/a1.rs", "x")])
            .request(MODEL, T, vec![read_of("/repo/b1.rs", "y")])
            .request(MODEL, T, vec![edit("/repo/c1.rs", "h1", "h2")]);
        let (runs, _) = found(&mut s);
        assert!(runs.is_empty(), "{runs:?}");
    }

    #[test]
    fn a_request_already_parallel_breaks_the_run() {
        let mut s = Session::new(4);
        s.request(MODEL, T, vec![read_of("/repo/a1.rs", "x")])
            .request(
                MODEL,
                T,
                vec![read_of("/repo/b1.rs", "y"), read_of("/repo/b2.rs", "z")],
            )
            .request(MODEL, T, vec![read_of("/repo/c1.rs", "w")]);
        let (runs, _) = found(&mut s);
        assert!(runs.is_empty(), "{runs:?}");
    }

    #[test]
    fn a_command_with_side_effects_breaks_the_run_and_read_only_ones_join_it() {
        let mut s = Session::new(5);
        s.request(MODEL, T, vec![command("git status --short").output("", 0)])
            .request(
                MODEL,
                T,
                vec![command("npm install left-pad").output("", 0)],
            )
            .request(MODEL, T, vec![command("rg -n foo src").output("", 0)])
            .request(
                MODEL,
                T,
                vec![command("cat README.md | head -5").output("", 0)],
            )
            .request(
                MODEL,
                T,
                vec![command("git log --oneline -3").output("", 0)],
            );
        let (runs, _) = found(&mut s);
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].requests.len(), 3, "after the install");
    }

    #[test]
    fn a_long_output_kept_in_part_ends_the_run() {
        let mut s = Session::new(6);
        s.request(
            MODEL,
            T,
            vec![read("/repo/big.rs", "h").output("head … tail", 90_000)],
        )
        .request(MODEL, T, vec![read_of("/repo/b1.rs", "y")])
        .request(MODEL, T, vec![read_of("/repo/c1.rs", "w")]);
        let (runs, _) = found(&mut s);
        assert!(runs.is_empty(), "{runs:?}");
    }

    /// A read of a file longer than the inline limit: its span keeps a head and tail and names
    /// the blob `blob` holding it whole.
    fn long_read(path: &str, blob: &str, whole: &str) -> Step {
        let kept = format!("{} … {}", &whole[..40], &whole[whole.len() - 40..]);
        read(path, "h")
            .output(&kept, whole.len() as i64)
            .attr(semconv::SESSION_OUTPUT_REF, blob.to_owned())
    }

    fn runs_reading(session: &mut Session, blobs: &[(&str, &str)]) -> Vec<Run> {
        let trace = session.build();
        let view = SessionView::new(&trace);
        let prices = PriceTable::built_in();
        let accounting = account(&view, &prices);
        let blobs: std::collections::HashMap<String, String> = blobs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut outputs = WholeOutputs::new(|hash| blobs.get(hash).cloned(), 1 << 20);
        runs(
            &view,
            &accounting,
            &prices,
            &Thresholds::default(),
            &mut outputs,
        )
    }

    #[test]
    fn long_outputs_are_read_whole_to_judge_independence() {
        let filler = "let value = compute(input);\n".repeat(400);
        let first = format!("//! Parser\n{filler}use crate::tokens;\n{filler}// end\n");
        let second = format!("//! Render\n{filler}// end\n");
        // Two long reads, then a short one of `third`.
        let session = |id: u8, third: &str| {
            let mut s = Session::new(id);
            s.request(
                MODEL,
                T,
                vec![long_read("/repo/src/parser.rs", "b1", &first)],
            )
            .request(
                MODEL,
                T,
                vec![long_read("/repo/src/render.rs", "b2", &second)],
            )
            .request(MODEL, T, vec![read_of(third, "fn c() {}")]);
            s
        };
        let blobs = [("b1", first.as_str()), ("b2", second.as_str())];
        let found = runs_reading(&mut session(8, "/repo/src/cache.rs"), &blobs);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].requests, [0, 1, 2]);
        // The middle of the first names the third's file: a chain.
        let found = runs_reading(&mut session(9, "/repo/src/tokens.rs"), &blobs);
        assert!(
            found.is_empty(),
            "tokens.rs is named in parser.rs: {found:?}"
        );
        // Without the blobs the long outputs cannot be checked: no run.
        assert!(runs_reading(&mut session(10, "/repo/src/cache.rs"), &[]).is_empty());
    }

    #[test]
    fn a_term_counts_only_as_a_word_of_its_own() {
        assert!(mentions("use crate::api;", "api"));
        assert!(mentions("see /repo/src/api.rs:3", "/repo/src/api.rs"));
        assert!(mentions("api", "api"));
        assert!(!mentions("a rapid test", "api"));
        assert!(!mentions("apis and capital", "api"));
        assert!(!mentions("mod api_v2;", "api"));
        assert!(
            mentions("x/repo/a.rs", "/repo/a.rs"),
            "a path may follow anything"
        );
    }

    #[test]
    fn the_read_only_rule_for_shell_commands() {
        for ok in [
            "ls -la",
            "cat a.txt | grep x | wc -l",
            "cd app && git diff HEAD~1 -- src",
            "find . -name '*.rs' -type f",
            "sed -n 1,20p src/main.rs",
            "git branch --show-current",
            "bash -lc 'rg -n TODO src 2>/dev/null'",
            "git remote -v",
        ] {
            assert!(read_only_command(ok), "{ok}");
        }
        for no in [
            "rm -rf target",
            "echo hi > out.txt",
            "cat a >> b",
            "find . -name '*.tmp' -delete",
            "find . -exec rm {} \\;",
            "sed -i s/a/b/ f",
            "git commit -m x",
            "git branch feature",
            "git checkout main",
            "npm test",
            "ls $(cat list)",
            "cat a | tee b",
            "sort -o out in",
            "bash -c 'touch x'",
            "",
        ] {
            assert!(!read_only_command(no), "{no}");
        }
    }
}

//! Numbers as the session texts say them: tokens (`3.8M`), money, lines changed, counts of
//! things, offsets into a session, an agent's reported usage in a line.

use crate::timefmt::format_duration;
use devtrace_model::metrics::Usage;

/// Tokens as "3.8M", "52k", "950".
pub(super) fn tokens(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Money as agents report it: cents for dollars, four decimals below one.
pub fn format_cost(usd: f64) -> String {
    if usd >= 0.995 {
        format!("${usd:.2}")
    } else {
        format!("${usd:.4}")
    }
}

/// Lines changed as `+12/-3`.
pub fn format_lines(usage: &Usage) -> Option<String> {
    match (usage.lines_added, usage.lines_removed) {
        (None, None) => None,
        (added, removed) => Some(format!("+{}/-{}", added.unwrap_or(0), removed.unwrap_or(0))),
    }
}

/// What an agent's metrics said, in a line: cost, tokens, lines changed, commits, time.
pub fn usage_line(usage: &Usage) -> String {
    let mut parts = Vec::new();
    if let Some(cost) = usage.cost_usd {
        parts.push(format!("cost {}", format_cost(cost)));
    }
    if usage.input_tokens.is_some() || usage.output_tokens.is_some() {
        let mut tokens_part = format!(
            "tokens {} in",
            usage.input_tokens.map_or("?".to_owned(), tokens)
        );
        if let Some(cached) = usage.cache_read_tokens {
            tokens_part.push_str(&format!(" ({} from cache)", tokens(cached)));
        }
        tokens_part.push_str(&format!(
            ", {} out",
            usage.output_tokens.map_or("?".to_owned(), tokens)
        ));
        parts.push(tokens_part);
    }
    if let Some(lines) = format_lines(usage) {
        parts.push(format!("lines {lines}"));
    }
    if let Some(commits) = usage.commits {
        parts.push(count(commits, "commit"));
    }
    if let Some(prs) = usage.pull_requests {
        parts.push(count(prs, "pull request"));
    }
    if let Some(seconds) = usage.active_seconds {
        parts.push(format!(
            "active {}",
            format_duration((seconds * 1e9) as u64)
        ));
    }
    parts.join(", ")
}

/// `/home/me/src/shop` → `…/src/shop` when long.
pub(super) fn shorten_path(path: &str) -> String {
    if path.chars().count() <= 28 {
        return path.to_owned();
    }
    let parts: Vec<&str> = path.rsplit('/').take(2).collect();
    format!("…/{}/{}", parts.get(1).unwrap_or(&""), parts[0])
}

/// An offset into a session: `4:05`, `1h02m`.
pub fn format_offset(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// "1 turn", "3 turns".
pub(super) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

//! Small text helpers for cells and lines. Recorded text (names, commands, titles, paths) always
//! goes through [`data`], which escapes it (`devtrace_model::recorded`): a span name can never
//! move the cursor, clear the screen or reorder the line it is shown on.

use devtrace_model::recorded::{escape_short, escape_stray, quote_short};
use devtrace_query::timefmt::format_duration;

/// Recorded text for a cell: escaped as in every other face (`devtrace_model::recorded`:
/// controls, C1, bidi, zero-width, separators and backticks), at most `max` characters. The
/// screen is read by people and, through `--plain` or a terminal capture, by assistants: the
/// same rule holds for both.
pub fn data(text: &str, max: usize) -> String {
    escape_short(text, max.max(1))
}

/// Recorded text cited in a line of `--plain` (a session title, a command): quoted, escaped
/// inside, at most `max` characters.
pub fn quoted(text: &str, max: usize) -> String {
    quote_short(text, max.max(1))
}

/// One of devtrace's own sentences (a finding's title or recommendation, whose recorded names
/// were quoted where it was written) on one line: its backticks kept as backticks, not shown
/// as `\u0060`, anything else that must not reach the terminal escaped, at most `max`
/// characters.
pub fn sentence(text: &str, max: usize) -> String {
    let line = escape_stray(text).replace('\n', " ");
    let max = max.max(1);
    if line.chars().count() <= max {
        line
    } else {
        let mut out: String = line.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// `text` broken at spaces into lines of at most `width` characters (a word longer than a line
/// is cut into pieces).
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    lines.push(line);
    lines
}

/// `text` cut or padded to exactly `width` characters (a cut is marked with `…`).
pub fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        format!("{text}{}", " ".repeat(width - count))
    } else if width == 0 {
        String::new()
    } else {
        let mut out: String = text.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

/// `text` right-aligned in `width` characters.
pub fn right(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count >= width {
        text.to_owned()
    } else {
        format!("{}{text}", " ".repeat(width - count))
    }
}

pub fn duration(nanos: u64) -> String {
    format_duration(nanos)
}

/// Wall-clock time of day, UTC: `14:03:27`.
pub fn clock(unix_nano: u64) -> String {
    devtrace_query::timefmt::format_clock(unix_nano)
}

/// 950, 12.3k, 4.5M.
pub fn count(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{}k", n / 1000)
    } else if n >= 1_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

/// A series as a one-line text sparkline, scaled to its own maximum.
pub fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if max == 0 {
                BARS[0]
            } else {
                BARS[((v as f64 / max as f64) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// The first 8 characters of an id.
pub fn short_id(hex: &str) -> &str {
    &hex[..hex.len().min(8)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_text_cannot_drive_the_terminal() {
        assert_eq!(
            data("\u{1b}[2J\u{1b}[Hboom\r\n", 40),
            "\\u001b[2J\\u001b[Hboom\\r\\n"
        );
        assert_eq!(data("a\u{202e}b", 40), "a\\u202eb");
        assert_eq!(
            data("`npm test`\u{1b}c", 40),
            "\\u0060npm test\\u0060\\u001bc"
        );
        assert_eq!(quoted("say \"hi\"\n", 40), "\"say \\\"hi\\\"\\n\"");
        // devtrace's own sentences keep their backticks; what must not reach the terminal does not.
        assert_eq!(
            sentence("`npm test` failed\n4 times\u{1b}[2J", 60),
            "`npm test` failed 4 times\\u001b[2J"
        );
        assert_eq!(sentence("a long finding title", 8), "a long …");
        assert_eq!(
            wrap_words("open: trace waterfall, session", 12),
            ["open: trace", "waterfall,", "session"]
        );
        assert_eq!(wrap_words("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(sparkline(&[0, 1, 2, 4]), "▁▃▅█");
    }
}

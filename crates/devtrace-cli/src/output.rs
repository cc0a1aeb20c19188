//! Writing to the terminal: colours (honouring NO_COLOR), broken pipes, error reports, and the
//! last line of defence for recorded text.
//!
//! Every command escapes or quotes the recorded text it formats (`devtrace_model::recorded`).
//! Everything devtrace writes still passes through [`terminal_safe`] on its way out (stdout,
//! stderr, JSON, the server's log): an escape sequence that is not one of devtrace's own
//! colours, a C1 or bidi control, a zero-width character or a line separator that a command
//! forgot to escape is written as an escape instead of reaching the terminal. Nothing here
//! writes to stdout or stderr any other way (`clippy::print_stdout`/`print_stderr` are denied in
//! the crate; [`eprintln_safe!`] replaces `eprintln!`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use crate::cli::ColorChoice;
use devtrace_model::recorded::{escape, must_escape};
use std::borrow::Cow;
use std::io::{IsTerminal, Write};

/// Whether `text` at `at` starts an SGR sequence (`ESC [ digits;… m`, devtrace's colours), and
/// its length.
fn sgr_len(text: &str, at: usize) -> Option<usize> {
    let rest = text[at..].strip_prefix("\u{1b}[")?;
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    (rest[end..].starts_with('m')).then_some(2 + end + 1)
}

/// `text` as it may reach a terminal: every character that must not appear raw
/// (`recorded::must_escape`) is written as an escape, except the line feed, the tab and the
/// backtick (devtrace's own text uses them) and devtrace's own colours (SGR sequences). Each
/// face escapes recorded text where it formats it; this catches what one forgets.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    let stray = |c: char| must_escape(c) && !matches!(c, '\n' | '\t' | '`');
    if !text.chars().any(stray) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        if c == '\u{1b}'
            && let Some(len) = sgr_len(text, at)
        {
            out.push_str(&text[at..at + len]);
            at += len;
            continue;
        }
        if stray(c) {
            strict_output_check(c, text, at);
            out.push_str(&devtrace_model::recorded::escape(
                c.encode_utf8(&mut [0; 4]),
            ));
        } else {
            out.push(c);
        }
        at += c.len_utf8();
    }
    Cow::Owned(out)
}

/// `n` BEAM processes, as a count reads: `1 process`, `3 processes`.
pub fn processes(n: u64) -> String {
    match n {
        1 => "1 process".to_owned(),
        n => format!("{n} processes"),
    }
}

/// A path (the user's or a recorded one) in a message: escaped, so a file name cannot break
/// the line it is named in.
pub fn path(path: &std::path::Path) -> String {
    devtrace_model::recorded::escape(&path.to_string_lossy())
}

/// With `DEVTRACE_STRICT_OUTPUT` set, a debug build stops when the safety net has to escape
/// something: the hostile-text tests run so, to prove that every command escapes what it
/// formats rather than relying on the net.
fn strict_output_check(c: char, text: &str, at: usize) {
    if cfg!(debug_assertions) && std::env::var_os("DEVTRACE_STRICT_OUTPUT").is_some() {
        let mut from = at.saturating_sub(80);
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        panic!(
            "the terminal safety net escaped {c:?} that a command wrote raw, after {:?}",
            &text[from..at]
        );
    }
}

/// Writes `text` to `stream` through [`terminal_safe`]; a closed pipe (`devtrace ls | head`) is
/// not an error.
fn write_safe(mut stream: impl Write, text: &str) -> std::io::Result<()> {
    match stream
        .write_all(terminal_safe(text).as_bytes())
        .and_then(|_| stream.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Prints `text` to stdout; a closed pipe (`devtrace ls | head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    Ok(write_safe(std::io::stdout().lock(), text)?)
}

/// Prints `text` to stderr (messages, progress, summaries); a closed pipe is not an error.
pub fn print_stderr(text: &str) {
    let _ = write_safe(std::io::stderr().lock(), text);
}

/// `eprintln!` through the terminal safety net ([`print_stderr`]).
macro_rules! eprintln_safe {
    ($($arg:tt)*) => {
        $crate::output::print_stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use eprintln_safe;

/// Writes `value` as pretty JSON to stdout through a buffer, every character that must not
/// appear raw written as a `\uXXXX` escape (`devtrace_query::safe_json`: lossless); a closed
/// pipe is not an error.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = devtrace_query::safe_json::to_writer(&mut out, value, true)
        .map_err(std::io::Error::from)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Writes bytes that are already a document (an export) to stdout; a closed pipe is not an
/// error.
pub fn print_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `error: <message>` and each cause on its own line, on stderr.
pub fn print_error(error: &anyhow::Error) {
    let mut text = format!("error: {error}\n");
    for cause in error.chain().skip(1) {
        text.push_str(&format!("  caused by: {cause}\n"));
    }
    print_stderr(&text);
}

/// A command-line parse error or `--help`/`--version`, as clap renders it, with the refused
/// argument it echoes back escaped (an assistant may pass recorded text as an argument);
/// returns the exit code clap would use.
pub fn print_clap(mut error: clap::Error) -> i32 {
    use clap::error::ContextValue;
    let escaped: Vec<_> = error
        .context()
        .filter_map(|(kind, value)| match value {
            ContextValue::String(s) => Some((kind, ContextValue::String(escape(s)))),
            ContextValue::Strings(list) => Some((
                kind,
                ContextValue::Strings(list.iter().map(|s| escape(s)).collect()),
            )),
            _ => None,
        })
        .collect();
    for (kind, value) in escaped {
        error.insert(kind, value);
    }
    let to_stderr = error.use_stderr();
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let colour = colour_wanted(color_in_arguments(), terminal);
    let rendered = error.render();
    let text = if colour {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    if to_stderr {
        print_stderr(&text);
    } else {
        let _ = print_stdout(&text);
    }
    error.exit_code()
}

/// The `--color` the command line asks for, read from the raw arguments: a parse error is
/// reported before there is a parsed command line to read it from. `auto` when absent or not
/// one of the three.
fn color_in_arguments() -> ColorChoice {
    let mut chosen = ColorChoice::Auto;
    let mut arguments = std::env::args_os().skip(1);
    while let Some(argument) = arguments.next() {
        if argument == "--" {
            break;
        }
        let value = match argument.to_str() {
            Some("--color") => arguments.next(),
            Some(other) => other.strip_prefix("--color=").map(Into::into),
            None => None,
        };
        if let Some(value) = value {
            chosen = match value.to_str() {
                Some("always") => ColorChoice::Always,
                Some("never") => ColorChoice::Never,
                _ => ColorChoice::Auto,
            };
        }
    }
    chosen
}

/// The server's log writer: stderr through the safety net, one event at a time.
#[derive(Clone, Copy, Default)]
pub struct SafeStderr;

impl Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_safe(std::io::stderr().lock(), &String::from_utf8_lossy(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// stdout through the safety net for a command that writes as it goes (`watch --plain`): unlike
/// [`print_stdout`], a closed pipe is returned as an error, so the writer knows to stop.
pub struct SafeStdout;

impl Write for SafeStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout()
            .lock()
            .write_all(terminal_safe(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// Whether to colour what goes to a stream (the global `--color`): `always` colours even into
/// a pipe or a file, `never` does not, and `auto` colours a terminal unless `NO_COLOR` is set
/// to something (no-color.org); the flag, being the more specific request, wins over
/// `NO_COLOR`.
pub fn colour_wanted(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// ANSI styling that turns itself off when colour is not wanted.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub enabled: bool,
}

impl Style {
    pub fn for_stdout(choice: ColorChoice) -> Self {
        Self {
            enabled: colour_wanted(choice, std::io::stdout().is_terminal()),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn cyan(&self, text: &str) -> String {
        self.paint("36", text)
    }

    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
}

/// The narrowest width tables are fitted to: a trace id (32 columns) and a little of a name.
const MIN_WIDTH: usize = 40;

/// The columns output may take: the terminal's own width when stdout is a terminal (asked
/// with the TIOCGWINSZ ioctl, so a resized window counts), else `$COLUMNS`, else 80 (piped into
/// a file or another program); at least 40, so an id is never cut.
pub fn terminal_width() -> usize {
    stdout_terminal_width()
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
        .filter(|w| *w > 0)
        .unwrap_or(80)
        .max(MIN_WIDTH)
}

#[cfg(unix)]
fn stdout_terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ only fills in the winsize given; on anything but a terminal it fails
    // and the struct is not read.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(not(unix))]
fn stdout_terminal_width() -> Option<usize> {
    None
}

/// Prints a table, a tree or a report to stdout fitted to [`terminal_width`]: a line that is
/// still wider (a sentence, a long value) is broken at a space onto indented continuation
/// lines, never cut (`devtrace_query::text::fit::wrap_lines`).
pub fn print_fitted(text: &str) -> anyhow::Result<()> {
    print_stdout(&devtrace_query::text::fit::wrap_lines(
        text,
        terminal_width(),
    ))
}

impl Style {
    /// Colours a table cell by what it means (`devtrace_query::text::fit::Mark`).
    pub fn mark(&self, mark: devtrace_query::text::fit::Mark, text: &str) -> String {
        use devtrace_query::text::fit::Mark;
        match mark {
            Mark::Plain => text.to_owned(),
            Mark::Header => self.bold(text),
            Mark::Error => self.red(text),
            Mark::Dim => self.dim(text),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_count_of_processes_reads_as_a_count() {
        assert_eq!(super::processes(1), "1 process");
        assert_eq!(super::processes(0), "0 processes");
        assert_eq!(super::processes(102), "102 processes");
    }
}

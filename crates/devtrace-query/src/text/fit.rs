//! Text fitted to a width, so nothing a command prints is wider than the terminal: tables
//! ([`Table`]) that cut their free-text column and leave out their least needed columns but
//! never cut an id, and [`wrap_lines`], the last step for everything else (trees, findings,
//! sentences), which breaks a long line at a space rather than cutting what it says.
//!
//! Widths are counted in terminal columns (a CJK character takes two), not in characters or
//! bytes, and devtrace's own colours (SGR sequences) take none.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How a column fits when the table is too wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Always shown whole: ids, which people copy.
    Keep,
    /// Shown whole, or left out when the table does not fit; lower ranks go first.
    Optional(u8),
    /// Free text (an operation name, a title, a command): cut with an ellipsis. Optional
    /// columns are left out before it is cut below `min` columns.
    Shrink { min: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// What a cell means, for the caller's colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Plain,
    Header,
    Error,
    Dim,
}

pub struct Column {
    header: String,
    align: Align,
    fit: Fit,
}

impl Column {
    pub fn new(header: impl Into<String>, align: Align, fit: Fit) -> Self {
        Self {
            header: header.into(),
            align,
            fit,
        }
    }
}

/// A cell's text, already escaped (recorded text is escaped before it is measured), and what
/// it means.
pub struct Cell {
    text: String,
    mark: Mark,
}

impl Cell {
    pub fn marked(text: impl Into<String>, mark: Mark) -> Self {
        Self {
            text: text.into(),
            mark,
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Self {
        Self::marked(text, Mark::Plain)
    }
}

/// A table of columns separated by two spaces, rendered at most `width` columns wide when its
/// kept columns allow it.
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

const GAP: usize = 2;

impl Table {
    pub fn new(columns: Vec<Column>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per column.
    pub fn row(&mut self, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// The header and the rows, fitted to `width`: free-text columns cut to their share,
    /// optional columns left out (lowest rank first) while the free text would otherwise be
    /// cut below its minimum. `paint` colours a cell (or the header line) after it is padded.
    pub fn render(&self, width: usize, paint: &dyn Fn(Mark, &str) -> String) -> String {
        let widths = self.fitted_widths(width);
        let shown: Vec<usize> = (0..self.columns.len())
            .filter(|&c| widths[c].is_some())
            .collect();
        let line = |cells: Vec<(String, Mark)>| -> String {
            let mut out = String::new();
            let last = cells.len().saturating_sub(1);
            for (i, ((text, mark), &c)) in cells.into_iter().zip(&shown).enumerate() {
                let w = widths[c].unwrap_or(0);
                let cut = cut(&text, w);
                let pad = " ".repeat(w.saturating_sub(cut.width()));
                let padded = match (self.columns[c].align, i == last) {
                    (Align::Right, _) => format!("{pad}{cut}"),
                    (Align::Left, false) => format!("{cut}{pad}"),
                    (Align::Left, true) => cut,
                };
                if i > 0 {
                    out.push_str(&" ".repeat(GAP));
                }
                out.push_str(&paint(mark, &padded));
            }
            // A right-aligned last column that is empty in this row leaves only padding.
            out.truncate(out.trim_end_matches(' ').len());
            out.push('\n');
            out
        };
        let header: Vec<(String, Mark)> = shown
            .iter()
            .map(|&c| (self.columns[c].header.clone(), Mark::Plain))
            .collect();
        let header = line(header);
        let mut out = paint(Mark::Header, header.trim_end_matches('\n'));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(
                shown
                    .iter()
                    .map(|&c| (row[c].text.clone(), row[c].mark))
                    .collect(),
            ));
        }
        out
    }

    /// Each column's width, `None` for a column left out.
    fn fitted_widths(&self, width: usize) -> Vec<Option<usize>> {
        let natural: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(c, column)| {
                self.rows
                    .iter()
                    .map(|row| row[c].text.width())
                    .chain([column.header.width()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut shown = vec![true; self.columns.len()];
        // The width the table needs with every free-text column at its minimum.
        let needed = |shown: &[bool]| -> usize {
            let columns = shown.iter().filter(|s| **s).count();
            let cells: usize = (0..self.columns.len())
                .filter(|&c| shown[c])
                .map(|c| match self.columns[c].fit {
                    Fit::Shrink { min } => natural[c].min(min),
                    _ => natural[c],
                })
                .sum();
            cells + GAP * columns.saturating_sub(1)
        };
        while needed(&shown) > width {
            let least = (0..self.columns.len())
                .filter(|&c| shown[c])
                .filter_map(|c| match self.columns[c].fit {
                    Fit::Optional(rank) => Some((rank, c)),
                    _ => None,
                })
                .min();
            match least {
                Some((_, c)) => shown[c] = false,
                None => break,
            }
        }
        let columns = shown.iter().filter(|s| **s).count();
        let fixed: usize = (0..self.columns.len())
            .filter(|&c| shown[c] && !matches!(self.columns[c].fit, Fit::Shrink { .. }))
            .map(|c| natural[c])
            .sum::<usize>()
            + GAP * columns.saturating_sub(1);
        let mut widths: Vec<Option<usize>> = (0..self.columns.len())
            .map(|c| shown[c].then_some(natural[c]))
            .collect();
        // Free text shares what is left: the widest is cut first, down to at least 1 column
        // (an ellipsis) when the kept columns leave no more.
        let mut available = width.saturating_sub(fixed);
        let shrinking: Vec<usize> = (0..self.columns.len())
            .filter(|&c| shown[c] && matches!(self.columns[c].fit, Fit::Shrink { .. }))
            .collect();
        let total = |widths: &[Option<usize>]| -> usize {
            shrinking.iter().map(|&c| widths[c].unwrap_or(0)).sum()
        };
        available = available.max(shrinking.len());
        while total(&widths) > available {
            let widest = shrinking
                .iter()
                .copied()
                .max_by_key(|&c| widths[c].unwrap_or(0))
                .expect("some column to shrink");
            let w = widths[widest].unwrap_or(0);
            if w <= 1 {
                break;
            }
            widths[widest] = Some(w - 1);
        }
        widths
    }
}

/// `text` cut to `width` terminal columns, the cut marked with an ellipsis.
fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// The width of a line as a terminal shows it: devtrace's colours (SGR sequences) take no
/// columns.
pub fn display_width(line: &str) -> usize {
    let mut width = 0;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if let Some(len) = sgr_len(rest) {
            rest = &rest[len..];
            continue;
        }
        width += c.width().unwrap_or(0);
        rest = &rest[c.len_utf8()..];
    }
    width
}

/// The length of an SGR sequence (`ESC [ digits;… m`) at the start of `text`.
fn sgr_len(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("\u{1b}[")?;
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    rest[end..].starts_with('m').then_some(2 + end + 1)
}

/// Every line of `text` at most `width` columns wide: a longer line is broken at its last space
/// that fits (anywhere, when a word is longer than the line), and what follows continues on
/// the next line indented two more columns than the line began, so it reads as a continuation.
/// Nothing is cut.
pub fn wrap_lines(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        if display_width(body) <= width {
            out.push_str(line);
            continue;
        }
        let indent = body.len() - body.trim_start_matches(' ').len();
        // A continuation gets at least half the width for its text.
        let continuation = " ".repeat((indent + 2).min(width / 2));
        let mut rest = body;
        let mut first = true;
        loop {
            let room = if first {
                width
            } else {
                width - continuation.len()
            };
            if !first {
                out.push_str(&continuation);
            }
            if display_width(rest) <= room {
                out.push_str(rest);
                break;
            }
            let at = break_at(rest, room);
            out.push_str(rest[..at].trim_end_matches(' '));
            out.push('\n');
            rest = rest[at..].trim_start_matches(' ');
            first = false;
            if rest.is_empty() {
                break;
            }
        }
        out.push_str(newline);
    }
    out
}

/// Where to break `text` so that its first part takes at most `room` columns: after the last
/// space that fits, else at the last character that fits (always at least one character).
fn break_at(text: &str, room: usize) -> usize {
    let mut width = 0;
    let mut last_space = None;
    let mut at = 0;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(len) = sgr_len(rest) {
            at += len;
            rest = &rest[len..];
            continue;
        }
        let w = c.width().unwrap_or(0);
        if width + w > room {
            break;
        }
        width += w;
        if c == ' ' && at > 0 {
            last_space = Some(at);
        }
        at += c.len_utf8();
        rest = &rest[c.len_utf8()..];
    }
    match last_space {
        Some(space) if space > 0 => space,
        _ if at == 0 => text.chars().next().map_or(text.len(), char::len_utf8),
        _ => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(_: Mark, text: &str) -> String {
        text.to_owned()
    }

    fn table() -> Table {
        let mut table = Table::new(vec![
            Column::new("WHEN", Align::Left, Fit::Optional(2)),
            Column::new("NAME", Align::Left, Fit::Shrink { min: 8 }),
            Column::new("N", Align::Right, Fit::Optional(1)),
            Column::new("ID", Align::Left, Fit::Keep),
        ]);
        table.row(vec![
            "10:00".into(),
            "a rather long operation name".into(),
            "7".into(),
            "0af7651916cd43dd".into(),
        ]);
        table
    }

    #[test]
    fn a_table_that_fits_is_shown_whole() {
        assert_eq!(
            table().render(80, &plain),
            "WHEN   NAME                          N  ID\n\
             10:00  a rather long operation name  7  0af7651916cd43dd\n"
        );
    }

    #[test]
    fn free_text_is_cut_then_optional_columns_go_and_ids_stay_whole() {
        assert_eq!(
            table().render(40, &plain),
            "WHEN   NAME          N  ID\n\
             10:00  a rather lo…  7  0af7651916cd43dd\n"
        );
        assert_eq!(
            table().render(30, &plain),
            "NAME          ID\n\
             a rather lo…  0af7651916cd43dd\n"
        );
    }

    #[test]
    fn long_lines_wrap_at_a_space_with_an_indented_continuation() {
        assert_eq!(
            wrap_lines("  one two three four\nshort\n", 12),
            "  one two\n    three\n    four\nshort\n"
        );
        assert_eq!(wrap_lines("abcdefghij", 4), "abcd\n  ef\n  gh\n  ij");
        assert_eq!(display_width("\u{1b}[1mbold\u{1b}[0m 漢字"), 9);
    }
}

//! Edits shown as diffs: a session's timeline shows what an edit changed, whichever way the
//! source recorded it (a unified diff, an `Edit`'s old and new text, a `MultiEdit`'s list, a
//! `Write`'s whole content, a Codex patch).
//!
//! The output is unified-diff text (`-` removed, `+` added, ` ` unchanged, `@@` between
//! hunks): plain data a face prints or colours line by line.

use serde_json::Value;

/// Largest diff returned; the rest is cut with a last line saying so.
pub const MAX_DIFF_BYTES: usize = 256 * 1024;

/// Lines compared with the quadratic alignment at most (old × new); larger changes are shown
/// as every old line removed and every new line added, which is still correct.
const MAX_ALIGNED_CELLS: usize = 4_000_000;

/// The diff an edit tool's input describes: `old_string`/`new_string` (one replacement),
/// `edits` (several), `content` (a whole file written) or `input`/`patch` (a patch's text).
/// `None` when the input is not JSON or names none of these.
pub fn from_tool_input(input: &str) -> Option<String> {
    let value: Value = serde_json::from_str(input).ok()?;
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut out = String::new();
    if let (Some(old), Some(new)) = (field(&value, "old_string"), field(&value, "new_string")) {
        out.push_str(&replacement(&old, &new));
    } else if let Some(edits) = value.get("edits").and_then(Value::as_array) {
        for (i, edit) in edits.iter().enumerate() {
            let (Some(old), Some(new)) = (field(edit, "old_string"), field(edit, "new_string"))
            else {
                continue;
            };
            out.push_str(&format!("@@ edit {} of {} @@\n", i + 1, edits.len()));
            out.push_str(&replacement(&old, &new));
        }
    } else if let Some(content) = field(&value, "content") {
        for line in content.lines() {
            out.push('+');
            out.push_str(line);
            out.push('\n');
        }
    } else if let Some(patch) = field(&value, "patch").or_else(|| field(&value, "input")) {
        out.push_str(&patch);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    } else {
        return None;
    }
    Some(bounded(out))
}

/// A recorded unified diff, bounded.
pub fn from_patch(patch: &str) -> String {
    let mut out = patch.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    bounded(out)
}

/// Cuts `diff` to [`MAX_DIFF_BYTES`] at a line end.
fn bounded(diff: String) -> String {
    if diff.len() <= MAX_DIFF_BYTES {
        return diff;
    }
    let mut cut = MAX_DIFF_BYTES;
    while !diff.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = diff[..cut].rfind('\n').map_or(cut, |i| i + 1);
    let omitted = diff[cut..].lines().count();
    format!(
        "{}… ({omitted} more lines not shown: the diff is cut at {} KiB)\n",
        &diff[..cut],
        MAX_DIFF_BYTES / 1024
    )
}

/// `old` replaced by `new`, line by line: unchanged lines around and between the changes kept
/// as context, removed lines before added ones.
pub fn replacement(old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    for (mark, line) in align(&old, &new) {
        out.push(mark);
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The lines of `old` and `new` marked ' ' (both), '-' (old only) or '+' (new only), in order:
/// a longest common subsequence after the common head and tail are set aside.
fn align<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<(char, &'a str)> {
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (&old[head..old.len() - tail], &new[head..new.len() - tail]);
    let mut out: Vec<(char, &str)> = old[..head].iter().map(|l| (' ', *l)).collect();
    if a.len() * b.len() > MAX_ALIGNED_CELLS {
        out.extend(a.iter().map(|l| ('-', *l)));
        out.extend(b.iter().map(|l| ('+', *l)));
    } else {
        // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
        let width = b.len() + 1;
        let mut lcs = vec![0u32; (a.len() + 1) * width];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i * width + j] = if a[i] == b[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        let flush = |out: &mut Vec<(char, &'a str)>, r: &mut Vec<&'a str>, d: &mut Vec<&'a str>| {
            out.extend(r.drain(..).map(|l| ('-', l)));
            out.extend(d.drain(..).map(|l| ('+', l)));
        };
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                flush(&mut out, &mut removed, &mut added);
                out.push((' ', a[i]));
                i += 1;
                j += 1;
            } else if j == b.len()
                || (i < a.len() && lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])
            {
                removed.push(a[i]);
                i += 1;
            } else {
                added.push(b[j]);
                j += 1;
            }
        }
        flush(&mut out, &mut removed, &mut added);
    }
    out.extend(old[old.len() - tail..].iter().map(|l| (' ', *l)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_replacement_keeps_unchanged_lines_as_context() {
        let old = "fn total() {\n    return 0;\n}\n";
        let new = "fn total() {\n    let sum = items().sum();\n    return sum;\n}\n";
        assert_eq!(
            replacement(old, new),
            " fn total() {\n-    return 0;\n+    let sum = items().sum();\n+    return sum;\n }\n"
        );
        // Changes on both sides of an unchanged middle line stay two changes.
        assert_eq!(replacement("a\nb\nc", "A\nb\nC"), "-a\n+A\n b\n-c\n+C\n");
        assert_eq!(replacement("", "x"), "+x\n");
        assert_eq!(replacement("x", ""), "-x\n");
    }

    #[test]
    fn tool_inputs_of_every_edit_shape_become_diffs() {
        let edit =
            json!({"file_path": "/a.ts", "old_string": "let a = 1;", "new_string": "let a = 2;"});
        assert_eq!(
            from_tool_input(&edit.to_string()).unwrap(),
            "-let a = 1;\n+let a = 2;\n"
        );
        let multi = json!({"file_path": "/a.ts", "edits": [
            {"old_string": "x", "new_string": "y"},
            {"old_string": "p\nq", "new_string": "p"}
        ]});
        assert_eq!(
            from_tool_input(&multi.to_string()).unwrap(),
            "@@ edit 1 of 2 @@\n-x\n+y\n@@ edit 2 of 2 @@\n p\n-q\n"
        );
        let write = json!({"file_path": "/b.ts", "content": "one\ntwo\n"});
        assert_eq!(from_tool_input(&write.to_string()).unwrap(), "+one\n+two\n");
        let patch =
            json!({"input": "*** Begin Patch\n*** Update File: a.rs\n-a\n+b\n*** End Patch"});
        assert_eq!(
            from_tool_input(&patch.to_string()).unwrap(),
            "*** Begin Patch\n*** Update File: a.rs\n-a\n+b\n*** End Patch\n"
        );
        assert_eq!(from_tool_input(r#"{"pattern": "*.rs"}"#), None);
        assert_eq!(from_tool_input("{\"old_string\": \"cut mid"), None);
    }

    #[test]
    fn large_diffs_are_cut_at_a_line_end_with_the_rest_counted() {
        let content: String = (0..40_000).map(|i| format!("line {i}\n")).collect();
        let diff = from_tool_input(&json!({"content": content}).to_string()).unwrap();
        assert!(diff.len() <= MAX_DIFF_BYTES + 100);
        let last = diff.lines().last().unwrap();
        let shown = diff.lines().count() - 1;
        assert_eq!(
            last,
            format!(
                "… ({} more lines not shown: the diff is cut at 256 KiB)",
                40_000 - shown
            )
        );
        assert!(diff.lines().nth(shown - 1).unwrap().starts_with("+line "));
        // Too many lines to align: every old line removed, every new one added.
        let old: String = (0..3000).map(|i| format!("o{i}\n")).collect();
        let new: String = (0..3000).map(|i| format!("n{i}\n")).collect();
        let diff = replacement(&old, &new);
        assert_eq!(diff.lines().filter(|l| l.starts_with('-')).count(), 3000);
        assert!(diff.lines().nth(3000).unwrap().starts_with("+n0"));
    }
}

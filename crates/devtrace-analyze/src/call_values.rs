//! The values a recorded function call was given and returned (the summaries devtrace's
//! recorders keep: `devtrace.call.arguments`, `devtrace.call.return`), read back as the literal
//! values in them, for the evidence that one call used another's answer.
//!
//! The token reading of `values.rs` looks for identifier-like tokens (four characters or more
//! with a digit), which is what URLs and queries carry. A recorded call's values are shorter —
//! `Users.get(7)` answered `%{id: 7, segment: "gold"}`, `Shipping.cost(660)` — and they are
//! whole: a number, a string, a pid, each read as written in the summary (Elixir's, Erlang's or
//! Python's syntax). Atoms (`:ok`, `eu`, `nil`, `True`) are names the code wrote, not data, and are
//! left out, as are references and the text inside a string. A BEAM answer's atoms may be data
//! too (`{"ann", :gold}`, a segment the next call is asked for), but no more than a hint:
//! [`names`] reads them apart (not `ok`, `true` and their like, which every answer has).
//!
//! And the shape of one value, for the rules that read what a call answered: a tuple's items
//! and its tag (`{:error, reason}`, `{:reply, reply, state}`), an atom alone.

use crate::AnalyzedTrace;
use crate::processes::{CALL_ARGUMENTS, CALL_RETURN};
use std::collections::HashSet;

/// The literal values in a summary: numbers (`n:660`), strings (`s:gold`, whichever quotes)
/// and pids (`p:<0.95.0>`).
pub fn summary_values(text: &str) -> HashSet<String> {
    let bytes = text.as_bytes();
    let mut values = HashSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let after_word = i > 0 && is_word_byte(bytes[i - 1]);
        i = if c == b'"' || c == b'\'' {
            let end = string_end(bytes, i + 1, c);
            values.insert(format!("s:{}", &text[i + 1..end]));
            end + 1
        } else if c == b'<' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) && !after_word {
            let end = text[i..].find('>').map_or(bytes.len(), |e| i + e + 1);
            values.insert(format!("p:{}", &text[i..end]));
            end
        } else if c == b'#' && bytes.get(i + 1).is_some_and(u8::is_ascii_uppercase) {
            // `#Ref<…>`, `#Port<…>`, `#Function<…>`: opaque, never passed on as data.
            let end = text[i..].find('>').map_or(bytes.len(), |e| i + e + 1);
            end.max(i + 1)
        } else if (c.is_ascii_digit() || (c == b'-' && next_is_digit(bytes, i))) && !after_word {
            let end = number_end(bytes, i + 1);
            values.insert(format!("n:{}", &text[i..end]));
            end
        } else if is_word_byte(c) {
            // An atom, a key or a variable-like word: skipped whole (`v2`, `sku1`).
            word_end(bytes, i)
        } else {
            i + 1
        };
    }
    values
}

/// The atoms in a BEAM summary: Elixir's (`:gold`) and Erlang's (`gold`), not a keyword
/// list's or a map's keys (`segment: :gold`, `segment => gold`), module names (`User`), what is
/// inside strings and opaque terms, nor the atoms every program writes ([`COMMON_ATOMS`]).
pub fn summary_names(text: &str) -> HashSet<String> {
    let bytes = text.as_bytes();
    let mut names = HashSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i = if c == b'"' || c == b'\'' {
            string_end(bytes, i + 1, c) + 1
        } else if (c == b'<' || c == b'#') && !text[i..].starts_with("#{") {
            // `<<…>>` holds strings and numbers; `#Ref<…>`, `<0.95.0>` nothing named.
            match bytes.get(i + 1) {
                Some(b'<') => i + 2,
                Some(n) if n.is_ascii_alphanumeric() => {
                    text[i..].find('>').map_or(bytes.len(), |e| i + e + 1)
                }
                _ => i + 1,
            }
        } else if is_word_byte(c) {
            let end = word_end(bytes, i);
            let elixir = i > 0 && bytes[i - 1] == b':';
            let rest = text[end..].trim_start();
            let key = rest.starts_with(':') || rest.starts_with("=>");
            let word = &text[i..end];
            if (elixir || c.is_ascii_lowercase()) && !key && !COMMON_ATOMS.contains(&word) {
                names.insert(word.to_owned());
            }
            end
        } else {
            i + 1
        };
    }
    names
}

/// Atoms in nearly every answer, naming no data: results, booleans, nothing.
const COMMON_ATOMS: [&str; 12] = [
    "ok",
    "error",
    "true",
    "false",
    "nil",
    "undefined",
    "none",
    "infinity",
    "normal",
    "noreply",
    "reply",
    "timeout",
];

/// The atoms call `index` was given and returned ([`summary_names`]), when both were recorded
/// on a BEAM process.
pub fn names(trace: &AnalyzedTrace, index: usize) -> Option<(HashSet<String>, HashSet<String>)> {
    crate::processes::text(trace, index, "devtrace.beam.process")?;
    let given = crate::processes::text(trace, index, CALL_ARGUMENTS)?;
    let returned = crate::processes::text(trace, index, CALL_RETURN)?;
    Some((summary_names(&given), summary_names(&returned)))
}

/// The arguments a call's summary lists, as written (`#PID<0.116.0>, [{1, 2}], 1`: three),
/// nesting (lists, tuples, maps, binaries) and strings respected.
pub fn top_level_arguments(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let (mut items, mut depth, mut start, mut i) = (Vec::new(), 0i32, 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => i = string_end(bytes, i + 1, bytes[i]),
            b'<' if bytes.get(i + 1) == Some(&b'<') => (depth, i) = (depth + 1, i + 1),
            b'>' if bytes.get(i + 1) == Some(&b'>') => (depth, i) = (depth - 1, i + 1),
            b'[' | b'{' | b'(' => depth += 1,
            b']' | b'}' | b')' => depth -= 1,
            b',' if depth == 0 => {
                items.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    items.push(text[start.min(text.len())..].trim());
    items
}

/// What a `handle_call/3` (a GenServer's or `gen_server`'s) was asked and answered at once,
/// as recorded: `{:load, :config}` and `{:config, "…"}` of `handle_call({:load, :config}, from,
/// n)` returning `{:reply, {:config, "…"}, n + 1}`. `None` for a callback that did not reply
/// in its return (`{:noreply, …}`), whose values were not recorded, or whose summaries were cut
/// short (`…`: two such may be different values).
pub fn request_and_reply(trace: &AnalyzedTrace, index: usize) -> Option<(String, String)> {
    if !trace.span(index).name.ends_with("handle_call/3") {
        return None;
    }
    let given = crate::processes::text(trace, index, CALL_ARGUMENTS)?;
    let answer = crate::processes::text(trace, index, CALL_RETURN)?;
    if given.contains('…') || answer.contains('…') {
        return None;
    }
    let request = top_level_arguments(&given).first()?.to_string();
    match tuple_items(&answer)?.as_slice() {
        [":reply" | "reply", reply, _state, ..] => Some((request, (*reply).to_owned())),
        _ => None,
    }
}

/// The items of a tuple as a summary writes it (`{:error, :closed}`: `:error` and `:closed`);
/// none for a value that is no tuple.
pub fn tuple_items(value: &str) -> Option<Vec<&str>> {
    let inner = value.trim().strip_prefix('{')?.strip_suffix('}')?;
    Some(top_level_arguments(inner))
}

/// What a value says first, as an atom's name: a tuple's first item, else the value itself
/// (`{:error, :closed}` → `error`, `:ignore` → `ignore`, Erlang's `{shutdown, R}` → `shutdown`).
pub fn tag(value: &str) -> &str {
    let first = tuple_items(value)
        .and_then(|items| items.first().copied())
        .unwrap_or(value.trim());
    first.strip_prefix(':').unwrap_or(first)
}

/// Whether a value as recorded is an atom alone (`:ok`, `ok`, `nil`, `'done'`).
pub fn is_atom(value: &str) -> bool {
    let value = value.strip_prefix(':').unwrap_or(value);
    let quoted = value.len() > 1 && value.starts_with('\'') && value.ends_with('\'');
    quoted
        || value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '?' | '!'))
}

/// Whether `answer` is the list `list` with items put in front (`[c, b, a]` of `[b, a]`): what
/// a function collecting results returns, given those collected so far — a comprehension's
/// (`for` compiles to a function given the results so far), `Enum.reduce/3`'s with a list.
pub fn prepends_to(answer: &str, list: &str) -> bool {
    let (answer, list) = (answer.trim(), list.trim());
    if !answer.starts_with('[') || !list.starts_with('[') || !list.ends_with(']') {
        return false;
    }
    match &list[1..] {
        "]" => answer.len() > 2 && answer.ends_with(']'),
        items => answer.ends_with(&format!(", {items}")),
    }
}

/// The values call `index` was given, when its arguments were recorded.
pub fn arguments(trace: &AnalyzedTrace, index: usize) -> Option<HashSet<String>> {
    recorded(trace, index, CALL_ARGUMENTS)
}

/// The values call `index` was given, when its arguments were recorded, but for a list of
/// results collected so far that its answer hands on with one more put in front
/// ([`prepends_to`]): a comprehension's function (`for` compiles to one given the results so
/// far) or `Enum.reduce/3`'s collecting into a list, whose work does not read that list.
pub fn collecting_arguments(trace: &AnalyzedTrace, index: usize) -> Option<HashSet<String>> {
    let given = crate::processes::text(trace, index, CALL_ARGUMENTS)?;
    let answer = crate::processes::text(trace, index, CALL_RETURN).unwrap_or_default();
    let values = arguments_read(&given, &answer)
        .into_iter()
        .flat_map(summary_values)
        .collect();
    Some(values)
}

/// The arguments of a call summary `given` but a list of results collected so far that the
/// call's `answer` hands on with one more put in front ([`collecting_arguments`]).
pub fn arguments_read<'a>(given: &'a str, answer: &str) -> Vec<&'a str> {
    top_level_arguments(given)
        .into_iter()
        .filter(|argument| !prepends_to(answer, argument))
        .collect()
}

/// What a call's `answer` adds to what it was `given`: all of it, but where it hands on a list of
/// results collected so far with one more put in front ([`prepends_to`]), only that front.
pub fn answer_added<'a>(answer: &'a str, given: &str) -> &'a str {
    let collected = top_level_arguments(given)
        .into_iter()
        .find(|argument| argument.len() > 2 && prepends_to(answer, argument));
    match collected {
        // `[c, b, a]` of `[b, a]`: `[c`.
        Some(list) => &answer.trim()[..answer.trim().len() - list.len() - 1],
        None => answer,
    }
}

/// The values call `index` returned, when its return value was recorded.
pub fn returned(trace: &AnalyzedTrace, index: usize) -> Option<HashSet<String>> {
    recorded(trace, index, CALL_RETURN)
}

/// What the function running as span `parent` had to work with before it called anything:
/// its own recorded arguments and those of every function around it on its process. `None`
/// when its own arguments were not recorded (then nothing can be said of where a value came
/// from).
pub fn given(trace: &AnalyzedTrace, parent: usize) -> Option<HashSet<String>> {
    let mut values = arguments(trace, parent)?;
    let mut node = trace.tree.parent[parent];
    while let Some(n) = node {
        if crate::processes::is_life(trace, n) {
            break;
        }
        values.extend(arguments(trace, n).unwrap_or_default());
        node = trace.tree.parent[n];
    }
    Some(values)
}

fn recorded(trace: &AnalyzedTrace, index: usize, key: &str) -> Option<HashSet<String>> {
    let text = crate::processes::text(trace, index, key)?;
    Some(summary_values(&text))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'@' || b >= 0x80
}

fn next_is_digit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
}

/// Where the string opened before `start` by `quote` ends (its closing quote's index, or the
/// text's end when it was cut short).
fn string_end(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start;
    while i < bytes.len() && bytes[i] != quote {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    i.min(bytes.len())
}

fn number_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len()
        && (bytes[i].is_ascii_digit()
            || bytes[i] == b'_'
            || (bytes[i] == b'.' && next_is_digit(bytes, i))
            || ((bytes[i] == b'e' || bytes[i] == b'E') && next_is_digit(bytes, i)))
    {
        i += 1;
    }
    i
}

fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_word_byte(bytes[i]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<String> {
        let mut v: Vec<String> = summary_values(text).into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn numbers_strings_and_pids_are_values_and_atoms_are_not() {
        assert_eq!(
            values(r#"%{id: 7, segment: "gold", total: -12.5}, :ok"#),
            ["n:-12.5", "n:7", "s:gold"]
        );
        assert_eq!(
            values("{ok, <0.95.0>}, eu, 'sku-1', #Ref<0.1.2.3>"),
            ["p:<0.95.0>", "s:sku-1"]
        );
    }

    #[test]
    fn atoms_are_names_but_keys_modules_and_common_atoms_are_not() {
        let names = |text: &str| {
            let mut v: Vec<String> = summary_names(text).into_iter().collect();
            v.sort();
            v
        };
        assert_eq!(names(r#"{"ann", :gold}, :ok"#), ["gold"]);
        assert_eq!(names(r#"{<<"ann">>, gold}, true"#), ["gold"]);
        assert_eq!(
            names(r#"%User{segment: :silver, name: "gold"}, [tier: :eu]"#),
            ["eu", "silver"]
        );
        assert_eq!(
            names("#{tier => eu, n => 1.5e3}, <0.95.0>, #Ref<0.1.2>"),
            ["eu"]
        );
        assert_eq!(names("'quoted', \"a gold b\""), Vec::<String>::new());
    }

    #[test]
    fn a_values_tag_is_its_tuples_first_item_or_itself() {
        assert_eq!(tag("{:error, {:closed, 1}}"), "error");
        assert_eq!(tag("{shutdown, normal}"), "shutdown");
        assert_eq!(tag(":ignore"), "ignore");
        assert_eq!(tag("%{error: 1}"), "%{error: 1}");
        assert_eq!(
            tuple_items("{:reply, [1, 2], 3}"),
            Some(vec![":reply", "[1, 2]", "3"])
        );
        assert_eq!(tuple_items("[1, 2]"), None);
        for atom in [":ok", "ok", "nil", "'done here'", ":valid?"] {
            assert!(is_atom(atom), "{atom}");
        }
        for value in ["{:ok, 1}", "\"ok\"", "Ok", "42", "[:ok]"] {
            assert!(!is_atom(value), "{value}");
        }
    }

    #[test]
    fn arguments_are_split_at_top_level_commas_only() {
        assert_eq!(
            top_level_arguments(r#"#PID<0.116.0>, [{1, 1, 9}], "a, b", <<1, 2>>, %{k: 1}"#),
            [
                "#PID<0.116.0>",
                "[{1, 1, 9}]",
                r#""a, b""#,
                "<<1, 2>>",
                "%{k: 1}"
            ]
        );
        assert_eq!(top_level_arguments("7"), ["7"]);
    }

    #[test]
    fn a_list_with_an_item_put_in_front_is_the_collected_list_grown() {
        assert!(prepends_to("[{2, 9}, {1, 8}]", "[{1, 8}]"));
        assert!(prepends_to("[{1, 8}]", "[]"));
        assert!(!prepends_to("[{1, 8}]", "[{1, 8}]"));
        assert!(!prepends_to("%{user: 7}", "[7]"));
        assert!(!prepends_to("[{1, 8}, 3]", "[{1, 8}]"));
        assert_eq!(
            answer_added("[{2, 9}, {1, 8}]", "<0.9.0>, [{1, 8}], 1"),
            "[{2, 9}"
        );
        assert_eq!(answer_added("[{1, 8}]", "<0.9.0>, [], 1"), "[{1, 8}]");
        assert_eq!(answer_added("%{a: 1}", "[1]"), "%{a: 1}");
    }

    #[test]
    fn digits_inside_words_and_strings_are_not_numbers() {
        assert_eq!(values(r#"v2, sku1, "a 42 b""#), ["s:a 42 b"]);
        assert_eq!(values(r#"<<"x\"y">>, 3"#), ["n:3", r#"s:x\"y"#]);
        assert_eq!(values("#{id => 7, n => 8}"), ["n:7", "n:8"]);
    }
}

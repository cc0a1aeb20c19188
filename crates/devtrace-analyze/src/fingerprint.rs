//! Normalisation that makes similar things equal: SQL with its literals folded, URLs and
//! messages with numbers, ids, hex and paths folded; and stable fingerprints of the result.

/// Folds the variable parts of free text: quoted strings, numbers, hex, UUIDs, paths.
///
/// `"timeout after 30s reading /tmp/a1/x.json (id 7f3a9c2e)"` →
/// `"timeout after <n>s reading <path> (id <hex>)"`.
pub fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // An apostrophe inside a word ("can't") does not open a quoted literal.
        let apostrophe = c == '\'' && i > 0 && chars[i - 1].is_alphanumeric();
        if (c == '\'' || c == '"') && !apostrophe {
            // A quoted literal: fold to ? (SQL) keeping the quotes out.
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += 1;
            }
            out.push('?');
            i = (j + 1).min(chars.len());
            continue;
        }
        if c == '/'
            && (i == 0
                || chars[i - 1].is_whitespace()
                || chars[i - 1] == '('
                || chars[i - 1] == '=')
        {
            let mut j = i + 1;
            while j < chars.len()
                && !chars[j].is_whitespace()
                && !matches!(chars[j], ')' | ',' | ';' | ':')
            {
                j += 1;
            }
            if j - i > 1 {
                out.push_str("<path>");
                i = j;
                continue;
            }
        }
        if c.is_alphanumeric() {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_alphanumeric()
                    || chars[j] == '_'
                    || chars[j] == '-'
                    || chars[j] == '.')
            {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            out.push_str(&fold_word(&word));
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    collapse_lists(&out)
}

fn fold_word(word: &str) -> String {
    let trimmed = word.trim_end_matches('.');
    let suffix = &word[trimmed.len()..];
    let is_number = trimmed.parse::<f64>().is_ok();
    let digits = trimmed.chars().filter(|c| c.is_ascii_digit()).count();
    let hexish = trimmed.len() >= 6
        && trimmed.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && digits > 0;
    if is_number {
        format!("<n>{suffix}")
    } else if hexish {
        format!("<hex>{suffix}")
    } else if digits > 0 && trimmed.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        // "30s", "500ms", "2xx": a number with a unit keeps its unit.
        let unit: String = trimmed
            .chars()
            .skip_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        format!("<n>{unit}{suffix}")
    } else {
        word.to_owned()
    }
}

/// `IN (<n>, <n>, <n>)` → `IN (<n>...)`, so batches of different sizes match.
fn collapse_lists(text: &str) -> String {
    let mut out = text.to_owned();
    for token in ["<n>", "?"] {
        let repeated = format!("{token}, {token}");
        while out.contains(&repeated) {
            out = out.replace(&repeated, token);
        }
    }
    out
}

/// A SQL statement with literals folded and whitespace collapsed.
pub fn normalize_sql(statement: &str) -> String {
    let folded = normalize_text(statement);
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A URL or path template: the query string dropped, and every path segment that carries a
/// digit folded to `{id}` (`/users/42`, `/orders/ord_9f3k2`, `/objects/result-3-11`,
/// `/days/2026-01-05`) — except API versions (`v1`, `v2.1`) and a host (`api2.example.com`).
pub fn normalize_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let host_at = without_query.find("://").map(|i| i + 3);
    let mut out = String::with_capacity(without_query.len());
    let mut position = 0;
    for (i, segment) in without_query.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let is_host = host_at == Some(position);
        position += segment.len() + 1;
        let version = segment.strip_prefix(['v', 'V']).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '.')
        });
        if !is_host && !version && segment.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("{id}");
        } else {
            out.push_str(segment);
        }
    }
    out
}

/// A short stable fingerprint (16 hex characters) of the given parts.
pub fn fingerprint(parts: &[&str]) -> String {
    // FNV-1a, 64-bit: stable across versions and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0x1f)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_literals_fold() {
        assert_eq!(
            normalize_sql("SELECT * FROM messages  WHERE chat_id = 42 AND author = 'bob'"),
            "SELECT * FROM messages WHERE chat_id = <n> AND author = ?"
        );
        assert_eq!(
            normalize_sql("SELECT * FROM t WHERE id IN (1, 2, 3)"),
            normalize_sql("SELECT * FROM t WHERE id IN (7)")
        );
    }

    #[test]
    fn messages_fold_numbers_ids_hex_and_paths() {
        assert_eq!(
            normalize_text("timeout after 30s reading /tmp/a1/x.json (id 7f3a9c2e)"),
            "timeout after <n>s reading <path> (id <hex>)"
        );
        assert_eq!(
            normalize_text("request 123e4567-e89b-12d3-a456-426614174000 failed"),
            "request <hex> failed"
        );
        assert_eq!(
            normalize_text("ValueError: bad input"),
            "ValueError: bad input"
        );
        assert_eq!(
            normalize_text("Module not found: Can't resolve '../types/todo'"),
            "Module not found: Can't resolve ?"
        );
    }

    #[test]
    fn urls_become_templates() {
        assert_eq!(
            normalize_url("https://api.x.com/users/42/orders/7f3a9c2e?page=2"),
            "https:/{id}/api.x.com/users/{id}/orders/{id}".replace("/{id}/api", "//api")
        );
        assert_eq!(
            normalize_url("https://blob.internal/v1/objects/result-3-11"),
            "https://blob.internal/v1/objects/{id}"
        );
        assert_eq!(
            normalize_url("http://api2.example.com/v2.1/orders/ord_9f3k2/lines"),
            "http://api2.example.com/v2.1/orders/{id}/lines"
        );
        assert_eq!(normalize_url("/days/2026-01-05"), "/days/{id}");
    }

    #[test]
    fn fingerprints_are_stable_and_distinguish_parts() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
        assert_eq!(fingerprint(&["x"]).len(), 16);
    }
}

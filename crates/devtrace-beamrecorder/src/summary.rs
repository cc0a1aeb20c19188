//! Bounded, redacted text of an Erlang term, made without running any Erlang code (no
//! `Inspect` protocol, no `io_lib`): the term is walked through the NIF API, at most
//! [`MAX_DEPTH`] deep, [`MAX_ITEMS`] items a container, [`MAX_TEXT`] bytes of a binary, and the
//! whole summary is cut at [`MAX_LEN`] bytes. Written in Elixir's syntax for Elixir programs
//! (`%{name: "x"}`, `:ok`, `Cart.Server`) and Erlang's otherwise (`#{name => <<"x">>}`).
//!
//! Redaction: the value under a map key or a keyword/proplist key whose name says it is a
//! secret (`password`, `api_key`, `token`… the Python recorder's list) is replaced whole by
//! `[REDACTED:secret_name]`; devtrace's text rules (keys, tokens, e-mail addresses) apply to
//! the finished text when it is stored.

use std::fmt::Write;
use std::os::raw::{c_char, c_double, c_int, c_long};

use crate::ffi::{self, ErlNifEnv, Term, term_type};
use crate::word_hash::WordMap;

pub const MAX_DEPTH: u32 = 4;
pub const MAX_ITEMS: usize = 8;
pub const MAX_TEXT: usize = 64;
pub const MAX_LEN: usize = 320;
pub const SECRET_MARKER: &str = "[REDACTED:secret_name]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Elixir,
    Erlang,
}

/// Whether a key's name says its value is a secret (the Python recorder's rule: a word of the
/// name, between underscores, is one of these).
pub fn is_secret_name(name: &str) -> bool {
    const WORDS: [&str; 14] = [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "accesskey",
        "privatekey",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "cookie",
        "sessionid",
    ];
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(['_', '-', '.']).collect();
    // Words and pairs of words (`api_key`, `session_id`).
    words.iter().any(|w| WORDS.contains(w))
        || words
            .windows(2)
            .any(|pair| WORDS.contains(&format!("{}{}", pair[0], pair[1]).as_str()))
}

/// An atom's text (atoms are at most 255 characters).
pub(crate) fn atom_text(env: *mut ErlNifEnv, term: Term) -> Option<String> {
    let mut buf = [0u8; 1024];
    // SAFETY: a buffer of the length given; the VM writes a NUL-terminated name.
    let n = unsafe {
        ffi::enif_get_atom(
            env,
            term,
            buf.as_mut_ptr() as *mut c_char,
            buf.len() as u32,
            ffi::ERL_NIF_UTF8,
        )
    };
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n as usize - 1]).into_owned())
}

/// A module's name as its language writes it: `Cart.Server` for `'Elixir.Cart.Server'`.
pub fn module_name(atom: &str) -> &str {
    atom.strip_prefix("Elixir.").unwrap_or(atom)
}

/// Text of a pid, port, reference or fun through the VM's own printer (`%T`), bounded.
pub fn opaque_text(term: Term) -> String {
    let mut buf = [0u8; 96];
    // SAFETY: a buffer of the size given; `%T` takes one term.
    let n = unsafe {
        ffi::enif_snprintf(
            buf.as_mut_ptr() as *mut c_char,
            buf.len(),
            c"%T".as_ptr(),
            term,
        )
    };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Pids' texts already printed on this thread, by term: a local pid is an immediate term, the
/// same word for the same text, and the VM's printer costs more than the rest of a call's
/// summary. Emptied when it holds [`PIDS_KEPT`].
const PIDS_KEPT: usize = 16_384;

thread_local! {
    static PID_TEXTS: std::cell::RefCell<WordMap<Term, Box<str>>> =
        std::cell::RefCell::new(WordMap::default());
}

/// Appends the text of pid `term` (`<0.85.0>`).
fn push_pid_text(out: &mut String, term: Term) {
    const IMMEDIATE: Term = 0b11;
    if term & IMMEDIATE != IMMEDIATE {
        // A remote pid is boxed: its word is an address, not its identity.
        out.push_str(&opaque_text(term));
        return;
    }
    PID_TEXTS.with(|texts| {
        let mut texts = texts.borrow_mut();
        if texts.len() >= PIDS_KEPT && !texts.contains_key(&term) {
            texts.clear();
        }
        out.push_str(
            texts
                .entry(term)
                .or_insert_with(|| opaque_text(term).into_boxed_str()),
        );
    });
}

pub struct Summarizer {
    pub env: *mut ErlNifEnv,
    pub syntax: Syntax,
    out: String,
}

thread_local! {
    /// A summary's text given back ([`recycle`]), for the next one to write into: a summary is
    /// made for most events, and its allocation cost as much as a short one's writing.
    static SPARE: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// Gives a summary's text back once it is kept, for the next summary on this thread.
pub fn recycle(text: String) {
    SPARE.with(|spare| spare.set(text));
}

impl Summarizer {
    pub(crate) fn new(env: *mut ErlNifEnv, syntax: Syntax) -> Summarizer {
        let mut out = SPARE.with(|spare| spare.take());
        out.clear();
        out.reserve(128);
        Summarizer { env, syntax, out }
    }

    /// The summary of `term`.
    pub fn summary(mut self, term: Term) -> String {
        self.term(term, 0);
        self.finish()
    }

    /// The summary of an argument list: `(a, b)` as a call's arguments.
    pub fn arguments(mut self, list: Term) -> String {
        let (mut rest, mut head, mut tail, mut first) = (list, 0, 0, true);
        // SAFETY: list cells of this env (an argument list is short and proper).
        while unsafe { ffi::enif_get_list_cell(self.env, rest, &mut head, &mut tail) } != 0 {
            if !first {
                self.out.push_str(", ");
            }
            first = false;
            self.term(head, 1);
            rest = tail;
        }
        self.finish()
    }

    fn finish(mut self) -> String {
        if self.out.len() > MAX_LEN {
            let mut end = MAX_LEN;
            while !self.out.is_char_boundary(end) {
                end -= 1;
            }
            self.out.truncate(end);
            self.out.push('…');
        }
        self.out
    }

    fn full(&self) -> bool {
        self.out.len() > MAX_LEN
    }

    fn term(&mut self, term: Term, depth: u32) {
        if self.full() {
            return;
        }
        // SAFETY: a term of this env.
        let kind = unsafe { ffi::enif_term_type(self.env, term) };
        match kind {
            term_type::ATOM => self.atom(term),
            term_type::INTEGER => self.integer(term),
            term_type::FLOAT => {
                let mut d: c_double = 0.0;
                // SAFETY: a float term.
                unsafe { ffi::enif_get_double(self.env, term, &mut d) };
                let _ = write!(self.out, "{d:?}");
            }
            term_type::BITSTRING => self.binary(term),
            _ if depth >= MAX_DEPTH => self.out.push('…'),
            term_type::LIST => self.list(term, depth),
            term_type::TUPLE => self.tuple(term, depth),
            term_type::MAP => self.map(term, depth),
            term_type::PID => {
                if self.syntax == Syntax::Elixir {
                    self.out.push_str("#PID");
                }
                push_pid_text(&mut self.out, term);
            }
            term_type::PORT | term_type::REFERENCE | term_type::FUN => {
                self.out.push_str(&opaque_text(term));
            }
            _ => self.out.push('?'),
        }
    }

    fn atom(&mut self, term: Term) {
        let name = atom_text(self.env, term).unwrap_or_default();
        match self.syntax {
            Syntax::Elixir => {
                if let Some(module) = name.strip_prefix("Elixir.") {
                    push_bounded(&mut self.out, module);
                } else if matches!(name.as_str(), "true" | "false" | "nil") {
                    self.out.push_str(&name);
                } else if plain_atom(&name) {
                    self.out.push(':');
                    self.out.push_str(&name);
                } else {
                    self.out.push(':');
                    push_quoted(&mut self.out, &name, '"');
                }
            }
            Syntax::Erlang if plain_atom(&name) => self.out.push_str(&name),
            Syntax::Erlang => push_quoted(&mut self.out, &name, '\''),
        }
    }

    fn integer(&mut self, term: Term) {
        let mut v: c_long = 0;
        // SAFETY: an integer term; a bignum fails the call.
        if unsafe { ffi::enif_get_long(self.env, term, &mut v) } != 0 {
            devtrace_recorder::values::push_integer(&mut self.out, v);
        } else {
            self.out.push_str("<big integer>");
        }
    }

    fn binary(&mut self, term: Term) {
        let mut bin = ffi::ErlNifBinary::empty();
        // SAFETY: a bitstring term; a bitstring that is not a binary fails the call.
        if unsafe { ffi::enif_inspect_binary(self.env, term, &mut bin) } == 0 {
            self.out.push_str("<<bits>>");
            return;
        }
        // SAFETY: the VM's view of the binary's bytes, valid while the term lives.
        let bytes = unsafe { std::slice::from_raw_parts(bin.data, bin.size) };
        let head = &bytes[..bytes.len().min(MAX_TEXT)];
        let text = match std::str::from_utf8(head) {
            Ok(t) => Some(t),
            Err(e) if e.valid_up_to() + 4 > head.len() && bytes.len() > MAX_TEXT => {
                std::str::from_utf8(&head[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        };
        let cut = bytes.len() > head.len();
        match (text, self.syntax) {
            (Some(t), Syntax::Elixir) => {
                push_quoted(&mut self.out, t, '"');
            }
            (Some(t), Syntax::Erlang) => {
                self.out.push_str("<<");
                push_quoted(&mut self.out, t, '"');
                self.out.push_str(">>");
            }
            (None, _) => {
                self.out.push_str("<<");
                for (i, b) in head.iter().take(16).enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    let _ = write!(self.out, "{b}");
                }
                self.out.push_str(">>");
            }
        }
        if cut {
            let _ = write!(self.out, "…({} bytes)", bytes.len());
        }
    }

    /// A list's first items and, when it is improper (`[alias | Ref]`), its tail.
    fn list_and_tail(&self, list: Term) -> (Vec<Term>, Option<Term>) {
        let mut items = Vec::new();
        let mut rest = list;
        let (mut head, mut tail) = (0, 0);
        // SAFETY: list cells of this env.
        while unsafe { ffi::enif_get_list_cell(self.env, rest, &mut head, &mut tail) } != 0 {
            items.push(head);
            rest = tail;
            if items.len() > MAX_ITEMS {
                return (items, None);
            }
        }
        // SAFETY: a term of this env.
        let proper = unsafe { ffi::enif_is_empty_list(self.env, rest) } != 0;
        (items, (!proper).then_some(rest))
    }

    /// A proper, non-empty list of printable Latin-1 characters — what `io_lib` and Elixir's
    /// `inspect` print as a string (`"sku-1"`, `~c"sku-1"`): its first [`MAX_TEXT`] characters
    /// and whether it went on. Lists longer than [`MAX_CHARLIST`] are not looked through.
    fn printable_chars(&self, list: Term) -> Option<(String, bool)> {
        let (mut text, mut count) = (String::new(), 0usize);
        let (mut rest, mut head, mut tail) = (list, 0, 0);
        // SAFETY: list cells and integers of this env.
        while unsafe { ffi::enif_get_list_cell(self.env, rest, &mut head, &mut tail) } != 0 {
            let mut code: c_long = 0;
            let is_int = unsafe { ffi::enif_get_long(self.env, head, &mut code) } != 0;
            let byte = u8::try_from(code)
                .ok()
                .filter(|&b| is_int && is_printable(b))?;
            if count < MAX_TEXT {
                text.push(char::from(byte));
            }
            count += 1;
            if count > MAX_CHARLIST {
                return None;
            }
            rest = tail;
        }
        // SAFETY: a term of this env.
        let proper = unsafe { ffi::enif_is_empty_list(self.env, rest) } != 0;
        (proper && count > 0).then_some((text, count > MAX_TEXT))
    }

    fn list(&mut self, term: Term, depth: u32) {
        if let Some((text, cut)) = self.printable_chars(term) {
            if self.syntax == Syntax::Elixir {
                self.out.push_str("~c");
            }
            push_quoted(&mut self.out, &text, '"');
            if cut {
                self.out.push('…');
            }
            return;
        }
        let (items, improper_tail) = self.list_and_tail(term);
        let pairs = improper_tail
            .is_none()
            .then(|| self.key_value_pairs(&items))
            .flatten();
        self.out.push('[');
        for (i, item) in items.iter().take(MAX_ITEMS).enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            match &pairs {
                Some(pairs) => self.keyword(pairs[i], depth),
                None => self.term(*item, depth + 1),
            }
        }
        if items.len() > MAX_ITEMS {
            self.out.push_str(", …");
        }
        if let Some(tail) = improper_tail {
            self.out.push_str(" | ");
            self.term(tail, depth + 1);
        }
        self.out.push(']');
    }

    /// A list of `{atom, value}` pairs (a keyword list, a proplist): shown as such, its secrets
    /// redacted.
    fn key_value_pairs(&self, items: &[Term]) -> Option<Vec<(Term, Term)>> {
        if items.is_empty() {
            return None;
        }
        items
            .iter()
            .take(MAX_ITEMS)
            .map(|item| {
                let elements = self.tuple_elements(*item)?;
                // SAFETY: a term of this env.
                let atom_key = unsafe { ffi::enif_is_atom(self.env, elements[0]) } != 0;
                (elements.len() == 2 && atom_key).then(|| (elements[0], elements[1]))
            })
            .collect()
    }

    fn keyword(&mut self, (key, value): (Term, Term), depth: u32) {
        let name = atom_text(self.env, key).unwrap_or_default();
        match self.syntax {
            Syntax::Elixir => {
                push_key(&mut self.out, &name);
            }
            Syntax::Erlang => {
                self.out.push('{');
                self.atom(key);
                self.out.push_str(", ");
            }
        }
        if is_secret_name(&name) {
            self.out.push_str(SECRET_MARKER);
        } else {
            self.term(value, depth + 1);
        }
        if self.syntax == Syntax::Erlang {
            self.out.push('}');
        }
    }

    fn tuple_elements(&self, term: Term) -> Option<&'static [Term]> {
        let mut arity: c_int = 0;
        let mut array: *const Term = std::ptr::null();
        // SAFETY: the VM points `array` at the tuple's elements, which live as long as the term
        // (the 'static is only as long as the callback; it is not kept).
        unsafe {
            if ffi::enif_get_tuple(self.env, term, &mut arity, &mut array) == 0 {
                return None;
            }
            Some(std::slice::from_raw_parts(array, arity as usize))
        }
    }

    fn tuple(&mut self, term: Term, depth: u32) {
        let elements = self.tuple_elements(term).unwrap_or(&[]);
        self.out.push('{');
        for (i, e) in elements.iter().take(MAX_ITEMS).enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.term(*e, depth + 1);
        }
        if elements.len() > MAX_ITEMS {
            let _ = write!(self.out, ", …({} elements)", elements.len());
        }
        self.out.push('}');
    }

    fn map(&mut self, term: Term, depth: u32) {
        let mut size = 0usize;
        // SAFETY: a map term.
        unsafe { ffi::enif_get_map_size(self.env, term, &mut size) };
        let (open, arrow) = match self.syntax {
            Syntax::Elixir => ("%{", " => "),
            Syntax::Erlang => ("#{", " => "),
        };
        let struct_name = self.struct_name(term);
        match (&struct_name, self.syntax) {
            (Some(name), Syntax::Elixir) => {
                self.out.push('%');
                push_bounded(&mut self.out, name);
                self.out.push('{');
            }
            _ => self.out.push_str(open),
        }
        let mut iter = ffi::ErlNifMapIterator::default();
        let mut shown = 0;
        // SAFETY: an iterator over a map of this env, destroyed below.
        unsafe {
            if ffi::enif_map_iterator_create(
                self.env,
                term,
                &mut iter,
                ffi::ERL_NIF_MAP_ITERATOR_FIRST,
            ) == 0
            {
                self.out.push('}');
                return;
            }
            let (mut key, mut value) = (0, 0);
            while ffi::enif_map_iterator_get_pair(self.env, &mut iter, &mut key, &mut value) != 0 {
                let key_name = atom_text(self.env, key);
                let is_struct_key = key_name.as_deref() == Some("__struct__");
                if !(is_struct_key && struct_name.is_some()) && shown < MAX_ITEMS {
                    if shown > 0 {
                        self.out.push_str(", ");
                    }
                    shown += 1;
                    let secret = match &key_name {
                        Some(name) => is_secret_name(name),
                        None => self.binary_key(key).is_some_and(|k| is_secret_name(&k)),
                    };
                    match (&key_name, self.syntax) {
                        (Some(name), Syntax::Elixir) if plain_atom(name) => {
                            push_key(&mut self.out, name);
                        }
                        _ => {
                            self.term(key, depth + 1);
                            self.out.push_str(arrow);
                        }
                    }
                    if secret {
                        self.out.push_str(SECRET_MARKER);
                    } else {
                        self.term(value, depth + 1);
                    }
                }
                ffi::enif_map_iterator_next(self.env, &mut iter);
            }
            ffi::enif_map_iterator_destroy(self.env, &mut iter);
        }
        if size > shown + usize::from(struct_name.is_some()) {
            let _ = write!(self.out, ", …({size} keys)");
        }
        self.out.push('}');
    }

    /// An Elixir struct's module (`%{__struct__: Mod}`).
    fn struct_name(&self, map: Term) -> Option<String> {
        if self.syntax != Syntax::Elixir {
            return None;
        }
        // SAFETY: the atom is made in this env; a map of this env.
        unsafe {
            let key = ffi::enif_make_atom(self.env, c"__struct__".as_ptr());
            let mut value = 0;
            if ffi::enif_get_map_value(self.env, map, key, &mut value) == 0 {
                return None;
            }
            atom_text(self.env, value).map(|m| module_name(&m).to_owned())
        }
    }

    fn binary_key(&self, term: Term) -> Option<String> {
        let mut bin = ffi::ErlNifBinary::empty();
        // SAFETY: inspecting a term of this env.
        if unsafe { ffi::enif_inspect_binary(self.env, term, &mut bin) } == 0 || bin.size > 64 {
            return None;
        }
        // SAFETY: the binary's bytes while the term lives.
        let bytes = unsafe { std::slice::from_raw_parts(bin.data, bin.size) };
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }
}

/// Whether an atom is written without quotes (`ok`, `:ok`, `name:`).
fn plain_atom(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
}

/// An Elixir keyword key: `name: `, or `"two words": `.
fn push_key(out: &mut String, name: &str) {
    if plain_atom(name) {
        push_bounded(out, name);
    } else {
        push_quoted(out, name, '"');
    }
    out.push_str(": ");
}

fn push_bounded(out: &mut String, text: &str) {
    let mut end = text.len().min(MAX_TEXT * 2);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&text[..end]);
}

/// `text` quoted with `quote`, escaped as Rust escapes a debug string (control characters
/// included), so recorded text stays inert in the summary itself too.
/// Longest list looked through for a string of characters.
const MAX_CHARLIST: usize = 1024;

/// A character `io_lib:printable_list/1` prints (Latin-1): text and the usual control
/// characters (escaped when shown).
fn is_printable(b: u8) -> bool {
    matches!(b, 32..=126 | 160..=255 | b'\n' | b'\r' | b'\t' | 0x0b | 0x08 | 0x0c | 0x1b)
}

fn push_quoted(out: &mut String, text: &str, quote: char) {
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "{}", c.escape_default());
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_words_of_the_key() {
        for secret in [
            "password",
            "api_key",
            "apiKey_x",
            "db_password",
            "session_id",
            "token",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in ["name", "tokenizer", "passport", "author", "id"] {
            assert!(!is_secret_name(plain), "{plain}");
        }
    }

    #[test]
    fn quoted_text_escapes_control_characters_and_its_quote() {
        let mut out = String::new();
        push_quoted(&mut out, "a\"b\u{1b}[31m\n", '"');
        assert_eq!(out, "\"a\\\"b\\u{1b}[31m\\n\"");
    }

    #[test]
    fn elixir_modules_drop_their_prefix() {
        assert_eq!(module_name("Elixir.Cart.Server"), "Cart.Server");
        assert_eq!(module_name("cart_server"), "cart_server");
    }
}

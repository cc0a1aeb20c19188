//! Safe summaries of Python values (a recorded call's arguments, its return value, its
//! exception), made on the hot path of calls that have them.
//!
//! Owns: describing a value without running any of the program's code — no `__repr__`,
//! `__str__`, `__eq__`, `__hash__`, `__getattr__` or property: built-in scalars by value (strings
//! cut), built-in containers by length and first items, other objects by type name and a few
//! plain attributes of their instance dictionary (only when the type keeps CPython's generic
//! attribute lookup); and the byte budgets (per call, per second) that bound what is kept.
//!
//! Must not: call any Python-level method, hash or compare user objects, or exceed its
//! budgets. Redaction is the Python side's (devtrace.redact), on the finished text.

use devtrace_recorder::values::push_integer;
use pyo3::ffi;

/// Bytes of summary one call may keep (arguments, or the return value, or the exception).
pub const CALL_BYTES: usize = 512;
/// Bytes of summaries a second, over all threads (a burst may use one second's worth).
pub const BYTES_PER_SECOND: u64 = 256 * 1024;
/// Characters of a string kept.
const STRING_CHARS: usize = 64;
/// Bytes of an exception's message kept (as the error context keeps `str(error)`).
pub const MESSAGE_BYTES: usize = 4096;
/// Items of a container shown.
const FIRST_ITEMS: usize = 3;
/// Attributes of an object shown.
const ATTRIBUTES: usize = 3;
/// Containers inside containers: deeper ones by type and length only.
const MAX_DEPTH: u32 = 2;

/// The per-second budget, refilled as time passes (only touched under the GIL).
pub struct Budget {
    per_second: u64,
    tokens: u64,
    last_ns: u64,
    /// Captures skipped for want of budget.
    pub skipped: u64,
}

impl Budget {
    /// A budget of `per_second` bytes a second ([`BYTES_PER_SECOND`] but in benchmarks).
    pub fn new(now_ns: u64, per_second: u64) -> Budget {
        Budget {
            per_second,
            tokens: per_second,
            last_ns: now_ns,
            skipped: 0,
        }
    }

    /// Whether a capture may start now: at least one call's worth left, or for an automatic
    /// one (`automatic`) half the second's budget and a call's worth.
    pub fn allow(&mut self, now_ns: u64, automatic: bool) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        if elapsed > 0 {
            let refill = (elapsed as u128 * self.per_second as u128 / 1_000_000_000) as u64;
            if refill > 0 {
                self.tokens = (self.tokens + refill).min(self.per_second);
                self.last_ns = now_ns;
            }
        }
        let reserved = if automatic { self.per_second / 2 } else { 0 };
        if self.tokens < reserved + CALL_BYTES as u64 {
            self.skipped += 1;
            return false;
        }
        true
    }

    pub fn spend(&mut self, bytes: usize) {
        self.tokens = self.tokens.saturating_sub(bytes as u64);
    }
}

/// Appends a summary of `obj` to `out`, stopping at `limit` bytes of `out` (the cut marked).
///
/// # Safety
/// The GIL is held and `obj` is a live object.
pub unsafe fn summarize(obj: *mut ffi::PyObject, out: &mut String, limit: usize) {
    unsafe { describe(obj, out, limit, 0) };
    cut_at(out, limit);
}

/// Cuts `out` back to `limit` bytes (a character boundary), the cut marked with `…`.
fn cut_at(out: &mut String, limit: usize) {
    if out.len() > limit {
        let mut end = limit.saturating_sub(1);
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
}

unsafe fn describe(obj: *mut ffi::PyObject, out: &mut String, limit: usize, depth: u32) {
    use std::fmt::Write;
    if out.len() >= limit {
        return;
    }
    // SAFETY (whole function): the GIL is held; only exact built-in types are read through
    // their C API, which runs no Python code.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        if obj == ffi::Py_None() {
            out.push_str("None");
        } else if obj == ffi::Py_True() {
            out.push_str("True");
        } else if obj == ffi::Py_False() {
            out.push_str("False");
        } else if ty == &raw mut ffi::PyLong_Type {
            let mut overflow = 0;
            let v = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
            if overflow != 0 {
                out.push_str("int(> 64 bits)");
            } else {
                push_integer(out, v);
            }
        } else if ty == &raw mut ffi::PyFloat_Type {
            let _ = write!(out, "{:?}", ffi::PyFloat_AsDouble(obj));
        } else if ty == &raw mut ffi::PyUnicode_Type {
            string(obj, out);
        } else if ty == &raw mut ffi::PyBytes_Type {
            out.push_str("bytes(len ");
            push_integer(out, ffi::PyBytes_Size(obj) as i64);
            out.push(')');
        } else if ty == &raw mut ffi::PyList_Type || ty == &raw mut ffi::PyTuple_Type {
            let list = ty == &raw mut ffi::PyList_Type;
            let n = if list {
                ffi::PyList_Size(obj)
            } else {
                ffi::PyTuple_Size(obj)
            };
            let (open, close) = if list { ('[', ']') } else { ('(', ')') };
            out.push(open);
            if depth < MAX_DEPTH {
                for i in 0..n.min(FIRST_ITEMS as isize) {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    // Borrowed references; nothing runs between the read and the use.
                    let item = if list {
                        ffi::PyList_GetItem(obj, i)
                    } else {
                        ffi::PyTuple_GetItem(obj, i)
                    };
                    describe(item, out, limit, depth + 1);
                }
                if !list && n == 1 {
                    out.push(',');
                }
            }
            close_container(out, n, depth, close);
        } else if ty == &raw mut ffi::PyDict_Type {
            dict(obj, out, limit, depth);
        } else if ty == &raw mut ffi::PySet_Type || ty == &raw mut ffi::PyFrozenSet_Type {
            out.push_str(type_name(ty));
            out.push_str("(len ");
            push_integer(out, ffi::PySet_Size(obj) as i64);
            out.push(')');
        } else if ffi::PyExceptionInstance_Check(obj) != 0 {
            exception(obj, out, limit, depth);
        } else {
            object(obj, out, limit, depth);
        }
    }
}

/// The type's name, without the module a static type's `tp_name` carries
/// ("collections.OrderedDict" → "OrderedDict"); "?" if it is not UTF-8.
unsafe fn type_name<'a>(ty: *mut ffi::PyTypeObject) -> &'a str {
    // SAFETY: tp_name is a NUL-terminated C string owned by the type, which outlives the
    // summary being written (the object holding it is alive).
    let name = unsafe { std::ffi::CStr::from_ptr((*ty).tp_name) };
    let name = name.to_str().unwrap_or("?");
    name.rsplit('.').next().unwrap_or(name)
}

/// An exact str's text (None, and `str(?)` written, when CPython cannot encode it: a lone
/// surrogate).
///
/// # Safety
/// The GIL is held; `obj` is an exact str, alive while the text is used.
#[inline(always)]
unsafe fn str_text<'a>(obj: *mut ffi::PyObject, out: &mut String) -> Option<&'a str> {
    // SAFETY: as the caller promises.
    let text = unsafe { utf8(obj) };
    if text.is_none() {
        out.push_str("str(?)");
    }
    text
}

/// A str's text (an exact str or a subclass: the C data is read, no method runs); None when
/// CPython cannot encode it (a lone surrogate).
///
/// # Safety
/// The GIL is held; `obj` is a str, alive while the text is used.
#[inline(always)]
unsafe fn utf8<'a>(obj: *mut ffi::PyObject) -> Option<&'a str> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: a str; its UTF-8 form is cached by CPython (no Python code runs).
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(obj, &mut size) };
    if data.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, size as usize) };
    // SAFETY: CPython's UTF-8 form of a str is valid UTF-8 (a str it cannot encode, one with
    // a lone surrogate, fails above instead).
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// An exact str's text, None for anything else (whose `str()` could run the program's code)
/// or for a str CPython cannot encode.
///
/// # Safety
/// The GIL is held; `obj` is a live object or null.
unsafe fn exact_str<'a>(obj: *mut ffi::PyObject) -> Option<&'a str> {
    // SAFETY: as the caller promises.
    unsafe {
        if obj.is_null() || ffi::PyUnicode_CheckExact(obj) == 0 {
            return None;
        }
        utf8(obj)
    }
}

unsafe fn string(obj: *mut ffi::PyObject, out: &mut String) {
    use std::fmt::Write;
    // SAFETY: as the caller promises.
    let Some(text) = (unsafe { str_text(obj, out) }) else {
        return;
    };
    let bytes = text.as_bytes();
    // The common case, written as is: short, printable ASCII with nothing to escape (what
    // `{:?}` would write for it, without its per-character work).
    if bytes.len() <= STRING_CHARS
        && bytes
            .iter()
            .all(|&b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(text);
        out.push('"');
        return;
    }
    // Its length in characters from the object (not by walking a long string).
    let chars = unsafe { ffi::PyUnicode_GetLength(obj) }.max(0) as usize;
    let shown = match text.char_indices().nth(STRING_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    };
    let _ = write!(out, "{shown:?}");
    if chars > STRING_CHARS {
        out.push_str("… (len ");
        push_integer(out, chars as i64);
        out.push(')');
    }
}

unsafe fn dict(obj: *mut ffi::PyObject, out: &mut String, limit: usize, depth: u32) {
    // SAFETY: an exact dict (or an instance dict); PyDict_Next walks it without hashing or
    // comparing anything; the references are borrowed and used before anything else runs.
    unsafe {
        let n = ffi::PyDict_Size(obj);
        out.push('{');
        if depth < MAX_DEPTH {
            let (mut pos, mut key, mut value) = (0, std::ptr::null_mut(), std::ptr::null_mut());
            let mut shown = 0;
            while shown < FIRST_ITEMS && ffi::PyDict_Next(obj, &mut pos, &mut key, &mut value) != 0
            {
                if shown > 0 {
                    out.push_str(", ");
                }
                describe(key, out, limit, depth + 1);
                out.push_str(": ");
                describe(value, out, limit, depth + 1);
                shown += 1;
            }
        }
        close_container(out, n, depth, '}');
    }
}

/// Ends a container of `n` items whose first ones were shown (or, too deep, none were): an
/// ellipsis for those not shown, the closing bracket, the length when not all were shown.
fn close_container(out: &mut String, n: isize, depth: u32, close: char) {
    let shown_all = n == 0 || (n <= FIRST_ITEMS as isize && depth < MAX_DEPTH);
    if !shown_all {
        out.push_str(if depth < MAX_DEPTH { ", …" } else { "…" });
    }
    out.push(close);
    if !shown_all {
        out.push_str(" (len ");
        push_integer(out, n as i64);
        out.push(')');
    }
}

/// An exception: its type and arguments (`BaseException.args`, a tuple the exception object
/// holds; its `__str__` is never called).
unsafe fn exception(obj: *mut ffi::PyObject, out: &mut String, limit: usize, depth: u32) {
    // SAFETY: obj is an exception instance; PyException_GetArgs returns a new reference to
    // its args tuple, a C field (no Python code runs).
    unsafe {
        out.push_str(type_name(ffi::Py_TYPE(obj)));
        let args = PyException_GetArgs(obj);
        if args.is_null() {
            ffi::PyErr_Clear();
            out.push_str("()");
            return;
        }
        if ffi::PyTuple_CheckExact(args) != 0 {
            describe(args, out, limit, depth);
            // Arguments of a call, not a tuple: `ValueError("x")`, without a one-tuple's comma.
            if ffi::PyTuple_Size(args) == 1 && out.ends_with(",)") {
                out.truncate(out.len() - 2);
                out.push(')');
            }
        }
        ffi::Py_DECREF(args);
    }
}

/// An exception's message as its `str()` reads, without calling it (a class may override
/// `__str__`, or `args` with a property): from what the exception object holds in its C
/// structure, within `limit` bytes. The built-in types whose C `__str__` formats fields of
/// their own ([`fields_message`]: `OSError`, the `Unicode…Error`s, `SyntaxError`,
/// `ImportError`) as CPython writes them. Any other exception from its arguments: none,
/// nothing; one, its text for a str, its summary otherwise — but a `KeyError`'s one argument
/// as `repr()` writes a str or an int; several, their tuple, each as `repr()` writes a str or
/// an int, else summarised. Any other object: its summary.
///
/// # Safety
/// The GIL is held and `obj` is a live object.
pub unsafe fn exception_message(obj: *mut ffi::PyObject, out: &mut String, limit: usize) {
    // SAFETY (whole function): as the caller promises; PyException_GetArgs reads the C field
    // and returns a new reference, released here.
    unsafe {
        if ffi::PyExceptionInstance_Check(obj) == 0 {
            summarize(obj, out, limit);
            return;
        }
        if fields_message(obj, out, limit) {
            cut_at(out, limit);
            return;
        }
        let args = PyException_GetArgs(obj);
        if args.is_null() {
            ffi::PyErr_Clear();
            return;
        }
        if ffi::PyTuple_CheckExact(args) != 0 {
            let key_error =
                ffi::PyObject_TypeCheck(obj, ffi::PyExc_KeyError as *mut ffi::PyTypeObject) != 0;
            arguments_message(args, key_error, out, limit);
        }
        ffi::Py_DECREF(args);
    }
}

/// [`exception_message`] from the exception's arguments (`args`, an exact tuple).
///
/// # Safety
/// The GIL is held and `args` is a live tuple.
unsafe fn arguments_message(
    args: *mut ffi::PyObject,
    key_error: bool,
    out: &mut String,
    limit: usize,
) {
    // SAFETY (whole function): as the caller promises; the items are borrowed references
    // held by the tuple, used before anything else runs.
    unsafe {
        let n = ffi::PyTuple_Size(args);
        if n == 1 {
            let only = ffi::PyTuple_GetItem(args, 0);
            if key_error {
                repr_or_summary(only, out, limit);
            } else if ffi::PyUnicode_CheckExact(only) != 0 {
                whole_string(only, out, limit);
            } else {
                summarize(only, out, limit);
            }
            return;
        }
        if n == 0 {
            return;
        }
        // str() of the arguments' tuple: their repr()s.
        out.push('(');
        for i in 0..n {
            if out.len() >= limit {
                out.push('…');
                return;
            }
            if i > 0 {
                out.push_str(", ");
            }
            repr_or_summary(ffi::PyTuple_GetItem(args, i), out, limit);
        }
        out.push(')');
    }
}

/// The message of a built-in exception type whose C `__str__` formats fields other than `args`
/// (subclasses included, as CPython's `__str__` serves them too), written as that `__str__`
/// writes it; false, with nothing written, for other types and when a field holds another
/// type than CPython put there (a program set `error.reason = 5`): then the arguments are used.
///
/// # Safety
/// The GIL is held and `obj` is a live exception instance.
unsafe fn fields_message(obj: *mut ffi::PyObject, out: &mut String, limit: usize) -> bool {
    // SAFETY (whole function): as the caller promises; each cast is to the C structure of
    // the built-in type `obj` was just checked to be an instance of.
    unsafe {
        let is = |ty: *mut ffi::PyObject| ffi::PyObject_TypeCheck(obj, ty.cast()) != 0;
        if is(ffi::PyExc_OSError) {
            os_error_message(obj.cast(), out, limit)
        } else if is(ffi::PyExc_UnicodeDecodeError) {
            unicode_error_message(obj.cast(), Codec::Decode, out, limit)
        } else if is(ffi::PyExc_UnicodeEncodeError) {
            unicode_error_message(obj.cast(), Codec::Encode, out, limit)
        } else if is(ffi::PyExc_UnicodeTranslateError) {
            unicode_error_message(obj.cast(), Codec::Translate, out, limit)
        } else if is(ffi::PyExc_SyntaxError) {
            syntax_error_message(obj.cast(), out, limit)
        } else if is(ffi::PyExc_ImportError) {
            import_error_message(obj.cast(), out, limit)
        } else if is(ffi::PyExc_BaseExceptionGroup) {
            exception_group_message(obj.cast(), out, limit)
        } else {
            false
        }
    }
}

/// Which `UnicodeError` a message is for.
#[derive(Clone, Copy, PartialEq)]
enum Codec {
    Decode,
    Encode,
    Translate,
}

/// `'utf-8' codec can't decode byte 0xff in position 0: invalid start byte` (or `bytes in
/// position 2-3`; `can't encode character '\xe9'`, `'\u20ac'`, `'\U0001f600'`; `can't
/// translate …` without a codec) from a `UnicodeError`'s C fields, as CPython 3.13 writes
/// it (3.12 the same for positions within the object). Nothing, and true, for an error whose
/// object was never set (CPython writes ""); false, nothing written, when the encoding or
/// the reason is not an exact str or the object not bytes (decode) or str.
///
/// # Safety
/// The GIL is held; `error` is a live instance of the `UnicodeError` `codec` names.
unsafe fn unicode_error_message(
    error: *mut ffi::PyUnicodeErrorObject,
    codec: Codec,
    out: &mut String,
    limit: usize,
) -> bool {
    use std::fmt::Write;
    // SAFETY (whole function): as the caller promises; the fields are borrowed references
    // (or null) held by the live exception, read before anything else runs.
    unsafe {
        let error = &*error;
        if error.object.is_null() {
            return true;
        }
        let Some(reason) = exact_str(error.reason) else {
            return false;
        };
        let encoding = exact_str(error.encoding);
        let length = match codec {
            Codec::Decode if ffi::PyBytes_Check(error.object) != 0 => {
                ffi::PyBytes_Size(error.object)
            }
            Codec::Encode | Codec::Translate if ffi::PyUnicode_Check(error.object) != 0 => {
                ffi::PyUnicode_GetLength(error.object)
            }
            _ => return false,
        };
        if codec != Codec::Translate {
            let Some(encoding) = encoding else {
                return false;
            };
            out.push('\'');
            whole_text(encoding, out, limit);
            out.push_str("' codec ");
        }
        let (start, end) = (error.start, error.end);
        out.push_str(match codec {
            Codec::Decode => "can't decode",
            Codec::Encode => "can't encode",
            Codec::Translate => "can't translate",
        });
        if start >= 0 && start < length && end == start + 1 {
            if codec == Codec::Decode {
                let byte = *ffi::PyBytes_AsString(error.object).offset(start) as u8;
                let _ = write!(out, " byte 0x{byte:02x}");
            } else {
                let _ = match ffi::PyUnicode_ReadChar(error.object, start) {
                    c @ ..=0xff => write!(out, " character '\\x{c:02x}'"),
                    c @ ..=0xffff => write!(out, " character '\\u{c:04x}'"),
                    c => write!(out, " character '\\U{c:08x}'"),
                };
            }
            let _ = write!(out, " in position {start}: ");
        } else {
            let unit = if codec == Codec::Decode {
                "bytes"
            } else {
                "characters"
            };
            let _ = write!(out, " {unit} in position {start}-{}: ", end.wrapping_sub(1));
        }
        whole_text(reason, out, limit);
        true
    }
}

/// `msg (file.py, line 3)` (or `msg (file.py)`, `msg (line 3)`, `msg`) from a `SyntaxError`'s
/// C fields, as CPython writes it: the file name's last part, the line when it is an int (-1
/// beyond a C long), `None` for a message never set; false, nothing written, when the message
/// is neither None nor an exact str (its `str()` could run the program's code).
///
/// # Safety
/// The GIL is held; `error` is a live SyntaxError instance.
unsafe fn syntax_error_message(
    error: *mut ffi::PySyntaxErrorObject,
    out: &mut String,
    limit: usize,
) -> bool {
    // SAFETY (whole function): as the caller promises; the fields are borrowed references
    // (or null) held by the live exception, read before anything else runs.
    unsafe {
        let error = &*error;
        let message = if error.msg.is_null() || error.msg == ffi::Py_None() {
            "None"
        } else {
            match exact_str(error.msg) {
                Some(text) => text,
                None => return false,
            }
        };
        let file = if !error.filename.is_null() && ffi::PyUnicode_Check(error.filename) != 0 {
            let Some(path) = utf8(error.filename) else {
                return false;
            };
            Some(
                path.rsplit(std::path::MAIN_SEPARATOR)
                    .next()
                    .unwrap_or(path),
            )
        } else {
            None
        };
        let line =
            (!error.lineno.is_null() && ffi::PyLong_CheckExact(error.lineno) != 0).then(|| {
                let mut overflow = 0;
                let line = ffi::PyLong_AsLongAndOverflow(error.lineno, &mut overflow);
                if overflow != 0 { -1 } else { line as i64 }
            });
        whole_text(message, out, limit);
        if file.is_none() && line.is_none() {
            return true;
        }
        out.push_str(" (");
        if let Some(file) = file {
            whole_text(file, out, limit);
            if line.is_some() {
                out.push_str(", ");
            }
        }
        if let Some(line) = line {
            out.push_str("line ");
            push_integer(out, line);
        }
        out.push(')');
        true
    }
}

/// An `ImportError`'s `msg` when it is an exact str (what CPython's `__str__` writes then);
/// false, nothing written, otherwise (then the arguments are used, as CPython does).
///
/// # Safety
/// The GIL is held; `error` is a live ImportError instance.
unsafe fn import_error_message(
    error: *mut ffi::PyImportErrorObject,
    out: &mut String,
    limit: usize,
) -> bool {
    // SAFETY: as the caller promises; `msg` is a borrowed reference (or null) held by the
    // live exception.
    let Some(message) = (unsafe { exact_str((*error).msg) }) else {
        return false;
    };
    whole_text(message, out, limit);
    true
}

/// CPython's `PyBaseExceptionGroupObject` (Include/cpython/pyerrors.h, 3.11 on), which pyo3
/// does not declare: the exception's head, then the group's message and its exceptions.
#[repr(C)]
struct ExceptionGroupObject {
    head: ffi::PyBaseExceptionObject,
    msg: *mut ffi::PyObject,
    excs: *mut ffi::PyObject,
}

/// `msg (N sub-exceptions)` (`(1 sub-exception)`) from an exception group's C fields, as
/// CPython's `BaseExceptionGroup.__str__` writes it; false, nothing written, when the message
/// is not an exact str or the exceptions not a tuple (then the arguments are used).
///
/// # Safety
/// The GIL is held; `group` is a live BaseExceptionGroup instance.
unsafe fn exception_group_message(
    group: *mut ExceptionGroupObject,
    out: &mut String,
    limit: usize,
) -> bool {
    use std::fmt::Write;
    // SAFETY: as the caller promises; the fields are borrowed references (or null) held by
    // the live exception.
    unsafe {
        let (msg, excs) = ((*group).msg, (*group).excs);
        let Some(message) = exact_str(msg) else {
            return false;
        };
        if excs.is_null() || ffi::PyTuple_Check(excs) == 0 {
            return false;
        }
        let n = ffi::PyTuple_Size(excs);
        whole_text(message, out, limit);
        let _ = write!(out, " ({n} sub-exception{})", if n > 1 { "s" } else { "" });
        true
    }
}

/// `[Errno N] message` (`: 'file'`, ` -> 'file2'`) from an OSError's C fields, as CPython's
/// `OSError.__str__` writes it; false, with nothing written, when the errno or the message is
/// not there (then the arguments are used, as CPython does).
///
/// # Safety
/// The GIL is held; `error` is a live OSError instance.
unsafe fn os_error_message(
    error: *mut ffi::PyOSErrorObject,
    out: &mut String,
    limit: usize,
) -> bool {
    // SAFETY (whole function): as the caller promises; the fields are borrowed references
    // (or null) held by the live exception, read before anything else runs.
    unsafe {
        let (errno, message) = ((*error).myerrno, (*error).strerror);
        let (file, file2) = ((*error).filename, (*error).filename2);
        // CPython sets a file name only with an errno and a message.
        if errno.is_null() || message.is_null() {
            return false;
        }
        out.push_str("[Errno ");
        summarize(errno, out, limit);
        out.push_str("] ");
        if ffi::PyUnicode_CheckExact(message) != 0 {
            whole_string(message, out, limit);
        } else {
            summarize(message, out, limit);
        }
        if !file.is_null() && file != ffi::Py_None() {
            out.push_str(": ");
            repr_or_summary(file, out, limit);
            if !file2.is_null() && file2 != ffi::Py_None() {
                out.push_str(" -> ");
                repr_or_summary(file2, out, limit);
            }
        }
        true
    }
}

/// `repr()`'s text of an exact str or int (what CPython writes for a KeyError's key or an
/// OSError's file name), else the value's summary.
///
/// # Safety
/// The GIL is held; `obj` is a live object (or null: nothing written).
unsafe fn repr_or_summary(obj: *mut ffi::PyObject, out: &mut String, limit: usize) {
    if obj.is_null() {
        return;
    }
    // SAFETY: as the caller promises.
    unsafe {
        if ffi::PyUnicode_CheckExact(obj) != 0 {
            if let Some(text) = str_text(obj, out) {
                python_repr(text, out, limit);
            }
        } else {
            summarize(obj, out, limit);
        }
    }
}

/// Appends `text` quoted as Python's `repr()` of a str quotes it (single quotes unless the
/// text has one and no double quote; backslashes, the quote, `\n`, `\r`, `\t` and other
/// control characters escaped), stopping before `limit` bytes of `out` with `…`.
fn python_repr(text: &str, out: &mut String, limit: usize) {
    use std::fmt::Write;
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        if out.len() + 8 > limit {
            out.push('…');
            return;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Appends an exact str's text as it is, cut at `limit` bytes of `out` (a character
/// boundary).
unsafe fn whole_string(obj: *mut ffi::PyObject, out: &mut String, limit: usize) {
    // SAFETY: as the caller promises.
    if let Some(text) = unsafe { str_text(obj, out) } {
        whole_text(text, out, limit);
    }
}

/// Appends `text` as it is, cut at `limit` bytes of `out` (a character boundary).
fn whole_text(text: &str, out: &mut String, limit: usize) {
    let mut end = text.len().min(limit.saturating_sub(out.len()));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&text[..end]);
}

unsafe extern "C" {
    fn PyException_GetArgs(exc: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// Any other object: its type name, and the first plain attributes of its instance dictionary
/// when the type uses CPython's generic attribute lookup (a custom `__getattribute__` or
/// `__getattr__` is never involved: the dictionary is read directly).
unsafe fn object(obj: *mut ffi::PyObject, out: &mut String, limit: usize, depth: u32) {
    // SAFETY: the GIL is held; the instance dictionary is read through the C API only.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        out.push_str(type_name(ty));
        // CPython's own function, one address in libpython: a type with a custom lookup has
        // another.
        let generic = (*ty).tp_getattro.map(|f| f as usize)
            == Some(ffi::PyObject_GenericGetAttr as *const () as usize);
        let has_dict =
            (*ty).tp_dictoffset != 0 || ((*ty).tp_flags & ffi::Py_TPFLAGS_MANAGED_DICT) != 0;
        if !generic || !has_dict || depth >= MAX_DEPTH {
            return;
        }
        let dict_obj = ffi::PyObject_GenericGetDict(obj, std::ptr::null_mut());
        if dict_obj.is_null() {
            ffi::PyErr_Clear();
            return;
        }
        if ffi::PyDict_CheckExact(dict_obj) != 0 {
            plain_attributes(dict_obj, out, limit, depth);
        }
        ffi::Py_DECREF(dict_obj);
    }
}

/// `(name=value, …)` for the instance dictionary's first public attributes.
unsafe fn plain_attributes(dict: *mut ffi::PyObject, out: &mut String, limit: usize, depth: u32) {
    // SAFETY: as in `dict`.
    unsafe {
        let (mut pos, mut key, mut value) = (0, std::ptr::null_mut(), std::ptr::null_mut());
        let mut shown = 0;
        out.push('(');
        while shown < ATTRIBUTES && ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) != 0 {
            if ffi::PyUnicode_CheckExact(key) == 0 {
                continue;
            }
            let mut size: ffi::Py_ssize_t = 0;
            let data = ffi::PyUnicode_AsUTF8AndSize(key, &mut size);
            if data.is_null() {
                ffi::PyErr_Clear();
                continue;
            }
            let name = std::slice::from_raw_parts(data as *const u8, size as usize);
            if name.first() == Some(&b'_') {
                continue;
            }
            if shown > 0 {
                out.push_str(", ");
            }
            // SAFETY: CPython's UTF-8 form of a str is valid UTF-8.
            out.push_str(std::str::from_utf8_unchecked(name));
            out.push('=');
            describe(value, out, limit, depth + 1);
            shown += 1;
        }
        if shown == 0 {
            out.pop();
        } else {
            out.push(')');
        }
    }
}

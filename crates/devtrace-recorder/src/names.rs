//! Names sent once: the log beside the rings that says what a code id, an exception type id
//! or a stream is. Records carry only ids; a reader (the live drainer, a dump, a crash
//! recovery) decodes this log to name them.
//!
//! Each entry is `[u32 length][u8 tag][fields]`; strings are `[u16 length][UTF-8]`.

use std::collections::HashMap;

use crate::ring::RecorderFile;

const TAG_CODE: u8 = 1;
const TAG_EXCEPTION: u8 = 2;
const TAG_THREAD: u8 = 3;
const TAG_HOT_FUNCTION: u8 = 4;

/// What a code id stands for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeInfo {
    /// The function's qualified name (`Store.save`, `main.<locals>.inner`).
    pub qualname: String,
    /// The module (`myapp.store`; the script's file name for `__main__`).
    pub module: String,
    pub file: String,
    pub line: u32,
}

impl CodeInfo {
    /// The span name: `module.qualname`.
    pub fn span_name(&self) -> String {
        if self.module.is_empty() {
            self.qualname.clone()
        } else {
            format!("{}.{}", self.module, self.qualname)
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_ne_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// Appends a code object's names; false when the names log is full.
pub fn write_code(file: &RecorderFile, code: u32, info: &CodeInfo) -> bool {
    let mut entry = vec![TAG_CODE];
    entry.extend_from_slice(&code.to_ne_bytes());
    entry.extend_from_slice(&info.line.to_ne_bytes());
    put_str(&mut entry, &info.qualname);
    put_str(&mut entry, &info.module);
    put_str(&mut entry, &info.file);
    file.append_name(&entry)
}

/// Appends an exception type's name.
pub fn write_exception(file: &RecorderFile, type_id: u32, name: &str) -> bool {
    let mut entry = vec![TAG_EXCEPTION];
    entry.extend_from_slice(&type_id.to_ne_bytes());
    put_str(&mut entry, name);
    file.append_name(&entry)
}

/// Appends a thread's name for a stream.
pub fn write_thread(file: &RecorderFile, stream: u64, name: &str) -> bool {
    let mut entry = vec![TAG_THREAD];
    entry.extend_from_slice(&stream.to_ne_bytes());
    put_str(&mut entry, name);
    file.append_name(&entry)
}

/// Appends that the function of `code` was called `calls` times within `window_ms` by one
/// thread, after which its calls are no longer recorded one by one (a BEAM recording's hot
/// function: its trace pattern is turned off).
pub fn write_hot_function(file: &RecorderFile, code: u32, calls: u32, window_ms: u32) -> bool {
    let mut entry = vec![TAG_HOT_FUNCTION];
    entry.extend_from_slice(&code.to_ne_bytes());
    entry.extend_from_slice(&calls.to_ne_bytes());
    entry.extend_from_slice(&window_ms.to_ne_bytes());
    file.append_name(&entry)
}

/// A function whose calls stopped being recorded one by one: after `calls` calls within
/// `window_ms` (see [`write_hot_function`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotFunction {
    pub calls: u32,
    pub window_ms: u32,
}

/// The decoded names log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub codes: HashMap<u32, CodeInfo>,
    pub exceptions: HashMap<u32, String>,
    pub threads: HashMap<u64, String>,
    pub hot_functions: HashMap<u32, HotFunction>,
}

struct Fields<'a> {
    bytes: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = u16::from_ne_bytes(self.take(2)?.try_into().ok()?) as usize;
        Some(String::from_utf8_lossy(self.take(len)?).into_owned())
    }
}

impl Names {
    /// Decodes the published part of `file`'s names log.
    pub fn read(file: &RecorderFile) -> Names {
        Names::decode(file.names_bytes())
    }

    /// Decodes a names log; a damaged tail (a crash mid-append is not possible, since entries
    /// are published whole, but a file may be corrupt) ends the decoding.
    pub fn decode(mut bytes: &[u8]) -> Names {
        let mut names = Names::default();
        while bytes.len() >= 4 {
            let len = u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize;
            if bytes.len() < 4 + len || len == 0 {
                break;
            }
            let mut f = Fields {
                bytes: &bytes[4..4 + len],
            };
            bytes = &bytes[4 + len..];
            let Some(tag) = f.take(1) else { break };
            match tag[0] {
                TAG_CODE => {
                    let parsed = (|| {
                        let code = f.u32()?;
                        let line = f.u32()?;
                        Some((
                            code,
                            CodeInfo {
                                line,
                                qualname: f.string()?,
                                module: f.string()?,
                                file: f.string()?,
                            },
                        ))
                    })();
                    if let Some((code, info)) = parsed {
                        names.codes.insert(code, info);
                    }
                }
                TAG_EXCEPTION => {
                    if let (Some(id), Some(name)) = (f.u32(), f.string()) {
                        names.exceptions.insert(id, name);
                    }
                }
                TAG_THREAD => {
                    if let (Some(stream), Some(name)) = (f.u64(), f.string()) {
                        names.threads.insert(stream, name);
                    }
                }
                TAG_HOT_FUNCTION => {
                    if let (Some(code), Some(calls), Some(window_ms)) = (f.u32(), f.u32(), f.u32())
                    {
                        names
                            .hot_functions
                            .insert(code, HotFunction { calls, window_ms });
                    }
                }
                _ => {}
            }
        }
        names
    }
}

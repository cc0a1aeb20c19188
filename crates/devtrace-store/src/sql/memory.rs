//! A heap cap one query cannot exceed: SQLite's allocations are counted per thread while a
//! query of the SQL tool runs on it, and refused (SQLite then stops the statement with
//! `SQLITE_NOMEM`) once they pass the query's cap.
//!
//! SQLite's own heap limits (`sqlite3_hard_heap_limit64`) are process-wide: a query near the
//! limit would make the ingest writer's allocations fail too. Counting per thread instead caps
//! the query alone: a query runs on one thread from open to close (its virtual tables decode on
//! that thread too, through the Rust allocator, a chunk at a time), and nothing else is charged.
//!
//! The allocator is installed with `SQLITE_CONFIG_MALLOC`, which SQLite accepts only before it
//! is initialised, so [`install`] runs before the first connection of the process is opened
//! (every open in this crate calls it, and the CLI calls it first thing). When something
//! initialised SQLite first, [`install`] reports it and the SQL tool falls back to a
//! process-wide hard heap limit.

use rusqlite::ffi;
use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// Room before each block for its size, keeping 16-byte alignment.
const HEADER: usize = 16;

thread_local! {
    /// Bytes SQLite holds that were allocated on this thread while a cap was set.
    static USED: Cell<usize> = const { Cell::new(0) };
    /// The cap of the query running on this thread, if any.
    static CAP: Cell<Option<usize>> = const { Cell::new(None) };
    /// Whether an allocation was refused since the cap was set.
    static HIT: Cell<bool> = const { Cell::new(false) };
}

/// True when SQLite may take `bytes` more on this thread (and they are counted).
fn charge(bytes: usize) -> bool {
    CAP.try_with(Cell::get).ok().flatten().is_none_or(|cap| {
        let used = USED.with(Cell::get);
        if used.saturating_add(bytes) > cap {
            HIT.with(|hit| hit.set(true));
            false
        } else {
            USED.with(|u| u.set(used + bytes));
            true
        }
    })
}

fn refund(bytes: usize) {
    if CAP.try_with(Cell::get).ok().flatten().is_some() {
        USED.with(|u| u.set(u.get().saturating_sub(bytes)));
    }
}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    let size = usize::try_from(n).unwrap_or(0);
    let Some(layout) = layout(size) else {
        return std::ptr::null_mut();
    };
    if !charge(size) {
        return std::ptr::null_mut();
    }
    // SAFETY: the layout has a non-zero size (at least the header).
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        refund(size);
        return std::ptr::null_mut();
    }
    // SAFETY: the block starts with HEADER bytes of our own, aligned for a usize.
    unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER).cast()
    }
}

/// The size recorded in front of a block this allocator returned.
///
/// SAFETY: `p` came from `x_malloc` or `x_realloc` and was not freed.
unsafe fn size_of(p: *mut c_void) -> (*mut u8, usize) {
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        (base, base.cast::<usize>().read())
    }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what this allocator returned.
    unsafe {
        let (base, size) = size_of(p);
        refund(size);
        std::alloc::dealloc(base, layout(size).expect("a size it allocated"));
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    if p.is_null() {
        return unsafe { x_malloc(n) };
    }
    let new_size = usize::try_from(n).unwrap_or(0);
    if layout(new_size).is_none() {
        return std::ptr::null_mut();
    }
    // SAFETY: SQLite reallocates only what this allocator returned.
    let (base, old_size) = unsafe { size_of(p) };
    if new_size > old_size && !charge(new_size - old_size) {
        return std::ptr::null_mut();
    }
    // SAFETY: `base` was allocated with `layout(old_size)`; the new size is valid.
    let moved = unsafe {
        std::alloc::realloc(
            base,
            layout(old_size).expect("a size it allocated"),
            new_size + HEADER,
        )
    };
    if moved.is_null() {
        if new_size > old_size {
            refund(new_size - old_size);
        }
        return std::ptr::null_mut();
    }
    if new_size < old_size {
        refund(old_size - new_size);
    }
    // SAFETY: as in x_malloc.
    unsafe {
        moved.cast::<usize>().write(new_size);
        moved.add(HEADER).cast()
    }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: as in x_free.
    let (_, size) = unsafe { size_of(p) };
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    n.saturating_add(7) & !7
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Installs the counting allocator unless SQLite is already initialised; true when installed
/// (now or before). Call before the process opens its first SQLite connection.
pub fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLite copies the methods; it refuses (SQLITE_MISUSE) once initialised.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &raw const methods) };
        rc == ffi::SQLITE_OK
    })
}

/// The cap on this thread while it lives: SQLite's allocations beyond `bytes` fail.
pub(crate) struct Capped {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Capped {
    pub(crate) fn new(bytes: usize) -> Self {
        USED.with(|u| u.set(0));
        HIT.with(|h| h.set(false));
        CAP.with(|c| c.set(Some(bytes)));
        Self {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Whether an allocation was refused because of the cap.
    pub(crate) fn hit(&self) -> bool {
        HIT.with(Cell::get)
    }
}

impl Drop for Capped {
    fn drop(&mut self) {
        CAP.with(|c| c.set(None));
        USED.with(|u| u.set(0));
    }
}

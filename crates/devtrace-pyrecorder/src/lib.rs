//! `devtrace._native`: the native Python recorder (CPython 3.12+, GIL builds).
//!
//! Owns the hot path: `sys.monitoring` callbacks written as C-ABI vectorcall functions (held
//! by objects of a type of our own, `devtrace._native.Callback`, whose vectorcall slot CPython
//! calls directly: no Python frame, no argument tuple, no built-in function's wrapper and no
//! allocation of ours), a per-code-object decision cached in the
//! code object's extra slot, and one record per event written into this thread's chunk of the
//! shared-memory file (devtrace-recorder). A drainer thread in Rust, which never takes the GIL,
//! reads the rings and builds spans; Python threads only take the finished spans
//! (`take_spans`) and hand them to the OpenTelemetry SDK.
//!
//! Must not: call Python on the hot path (only on the first event of a code object or a
//! thread, to learn its names), allocate per event, or hold the GIL while waiting.
//!
//! The Python side is `devtrace/recorder.py`; this module is its engine, not its API.

use pyo3::prelude::*;

#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
mod causality;
#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
mod lock;
#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
mod native;
#[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
mod values;

/// Whether this build can record, and why not when it cannot.
#[pyfunction]
fn supported() -> (bool, String) {
    #[cfg(Py_GIL_DISABLED)]
    return (
        false,
        "free-threaded CPython builds are not supported yet".into(),
    );
    #[cfg(all(not(Py_GIL_DISABLED), not(Py_3_12)))]
    return (
        false,
        "the native recorder needs CPython 3.12 or newer (sys.monitoring)".into(),
    );
    #[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
    return (true, String::new());
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(supported, m)?)?;
    m.add("TOOL_ID", 4)?;
    #[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
    native::register(m)?;
    #[cfg(all(Py_3_12, not(Py_GIL_DISABLED)))]
    lock::register(m)?;
    Ok(())
}

//! `devtrace._native.Lock` and `RLock`: the locks `threading.Lock()` and `threading.RLock()`
//! make in the recorded modules while the recorder runs (`devtrace/_causal.py` installs them).
//!
//! `threading`'s locks are C objects: no `sys.monitoring` event says when one is released or
//! when an acquisition had to wait. These wrap one (`_thread.lock`, `_thread.RLock`) and write
//! the causality records themselves, with no Python frame and no event dispatched: an
//! acquisition tries the real lock without blocking first (what the real one does too) and
//! records nothing when it got it; only one that has to wait writes a WaitBegin, then an
//! Effect keyed on the lock when it got it; a release writes a Cause. The waiting itself, its
//! timeout, signals and the GIL are the real lock's: the blocking call is the real `acquire`
//! with the caller's own arguments. Arguments other than the plain forms (`blocking` a bool
//! or an int, `timeout` a float or an int within range) and every other method go to the real
//! lock as they are, so its errors are threading's own. With no recorder running nothing is
//! recorded.

use std::ffi::{CStr, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

use devtrace_recorder::ring::LinkKind;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::native::{lock_released, lock_wait_began, lock_wait_ended, offset_member};

/// A native lock: the real lock it wraps.
#[repr(C)]
struct NativeLock {
    ob_base: ffi::PyObject,
    inner: *mut ffi::PyObject,
    weakrefs: *mut ffi::PyObject,
}

/// What a kind of native lock knows of the real lock it wraps (made once, kept for the
/// process).
struct Real {
    link: LinkKind,
    /// `_thread.allocate_lock` or `_thread.RLock`.
    factory: *mut ffi::PyObject,
    /// The real `acquire`'s C function when it is `METH_VARARGS | METH_KEYWORDS` (3.12, 3.13),
    /// called directly with a constant `(False,)` for the try; None: through its method.
    acquire: Option<ffi::PyCFunctionWithKeywords>,
    /// The real `release`'s when it is `METH_NOARGS`.
    release: Option<ffi::PyCFunction>,
    /// `(False,)`.
    try_args: *mut ffi::PyObject,
}

static LOCK: AtomicPtr<Real> = AtomicPtr::new(std::ptr::null_mut());
static RLOCK: AtomicPtr<Real> = AtomicPtr::new(std::ptr::null_mut());
static LOCK_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(std::ptr::null_mut());

/// The longest timeout (seconds) taken on the recorded path; a longer one (CPython's limit
/// is far above) goes to the real lock as it is.
const TIMEOUT_LIMIT: f64 = 1e9;

/// The `Real` of `lock`'s type.
#[inline(always)]
unsafe fn real_of(lock: *mut ffi::PyObject) -> &'static Real {
    let is_lock = unsafe { ffi::Py_TYPE(lock) } == LOCK_TYPE.load(Ordering::Relaxed);
    let real = if is_lock { &LOCK } else { &RLOCK };
    // SAFETY: both are set (leaked) before either type exists.
    unsafe { &*real.load(Ordering::Relaxed) }
}

#[inline(always)]
unsafe fn inner_of(lock: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: `lock` is a NativeLock (only our types' methods and slots get here).
    unsafe { (*(lock as *mut NativeLock)).inner }
}

/// Calls the real lock's method `name` with the caller's arguments as they are (vectorcall
/// convention): threading's own behaviour and errors.
unsafe fn forward(
    lock: *mut ffi::PyObject,
    name: &CStr,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held; the arguments are the caller's, valid for this call.
    unsafe {
        let method = ffi::PyObject_GetAttrString(inner_of(lock), name.as_ptr());
        if method.is_null() {
            return method;
        }
        let nargs = (nargsf as usize) & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
        let result = ffi::PyObject_Vectorcall(method, args, nargs, kwnames);
        ffi::Py_DECREF(method);
        result
    }
}

/// The acquisition's arguments in their plain forms: (blocking, timeout in seconds, -1: none);
/// None for any other form (the real lock parses it, and raises what it raises).
unsafe fn plain_acquire_arguments(
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
) -> Option<(bool, f64)> {
    let kw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: kwnames is a tuple of strings (vectorcall convention).
        unsafe { ffi::PyTuple_GET_SIZE(kwnames) as usize }
    };
    if nargs > 2 {
        return None;
    }
    let mut blocking = (nargs >= 1).then(|| unsafe { *args });
    let mut timeout = (nargs == 2).then(|| unsafe { *args.add(1) });
    for i in 0..kw {
        // SAFETY: as above; the values follow the positional arguments.
        let (name, value) = unsafe {
            (
                ffi::PyTuple_GET_ITEM(kwnames, i as ffi::Py_ssize_t),
                *args.add(nargs + i),
            )
        };
        let slot = if unsafe { ffi::PyUnicode_CompareWithASCIIString(name, c"blocking".as_ptr()) }
            == 0
        {
            &mut blocking
        } else if unsafe { ffi::PyUnicode_CompareWithASCIIString(name, c"timeout".as_ptr()) } == 0 {
            &mut timeout
        } else {
            return None;
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    // SAFETY: the values are live objects; only exact bools, ints and floats are read.
    unsafe {
        let blocking = match blocking {
            None => true,
            Some(v) if v == ffi::Py_True() => true,
            Some(v) if v == ffi::Py_False() => false,
            Some(v) if ffi::PyLong_CheckExact(v) != 0 => ffi::PyObject_IsTrue(v) == 1,
            Some(_) => return None,
        };
        let timeout = match timeout {
            None => -1.0,
            Some(v) if ffi::PyFloat_CheckExact(v) != 0 => ffi::PyFloat_AsDouble(v),
            Some(v) if ffi::PyLong_CheckExact(v) != 0 => {
                let t = ffi::PyLong_AsDouble(v);
                if t == -1.0 && !ffi::PyErr_Occurred().is_null() {
                    ffi::PyErr_Clear();
                    return None;
                }
                t
            }
            Some(_) => return None,
        };
        let plain = timeout == -1.0 || (blocking && (0.0..=TIMEOUT_LIMIT).contains(&timeout));
        plain.then_some((blocking, timeout))
    }
}

/// Tries the real lock without blocking: Some(got it) or None with an exception set.
#[inline(always)]
unsafe fn try_acquire(real: &Real, inner: *mut ffi::PyObject) -> Option<bool> {
    // SAFETY: the GIL is held; `acquire` is the real lock type's own C function.
    let result = unsafe {
        match real.acquire {
            Some(acquire) => acquire(inner, real.try_args, std::ptr::null_mut()),
            None => {
                let method = ffi::PyObject_GetAttrString(inner, c"acquire".as_ptr());
                if method.is_null() {
                    return None;
                }
                let result = ffi::PyObject_Call(method, real.try_args, std::ptr::null_mut());
                ffi::Py_DECREF(method);
                result
            }
        }
    };
    if result.is_null() {
        return None;
    }
    let got = result == unsafe { ffi::Py_True() };
    unsafe { ffi::Py_DECREF(result) };
    Some(got)
}

unsafe fn py_bool(value: bool) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held.
    unsafe { ffi::PyBool_FromLong(value as std::ffi::c_long) }
}

/// `acquire(blocking=True, timeout=-1)`, also `__enter__` and `acquire_lock`.
unsafe extern "C" fn acquire(
    lock: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let nargs = (nargsf as usize) & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
    let Some((blocking, timeout)) = (unsafe { plain_acquire_arguments(args, nargs, kwnames) })
    else {
        return unsafe { forward(lock, c"acquire", args, nargsf, kwnames) };
    };
    let real = unsafe { real_of(lock) };
    let inner = unsafe { inner_of(lock) };
    match unsafe { try_acquire(real, inner) } {
        None => return std::ptr::null_mut(),
        Some(true) => return unsafe { py_bool(true) },
        Some(false) if !blocking || timeout == 0.0 => return unsafe { py_bool(false) },
        Some(false) => {}
    }
    // It has to wait: the real acquire with the caller's arguments does (it tries again
    // first, as it would have).
    let recorded = unsafe { lock_wait_began(real.link) };
    let result = unsafe { forward(lock, c"acquire", args, nargsf, kwnames) };
    let acquired = !result.is_null() && result == unsafe { ffi::Py_True() };
    unsafe { lock_wait_ended(recorded, real.link, lock as usize, acquired) };
    result
}

/// `release()`, also `release_lock`.
unsafe extern "C" fn release(
    lock: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let real = unsafe { real_of(lock) };
    let inner = unsafe { inner_of(lock) };
    // SAFETY: the GIL is held; `release` is the real lock type's own C function.
    let result = match real.release {
        Some(release) => unsafe { release(inner, std::ptr::null_mut()) },
        None => unsafe { forward(lock, c"release", std::ptr::null(), 0, std::ptr::null_mut()) },
    };
    if !result.is_null() {
        unsafe { lock_released(real.link, lock as usize) };
    }
    result
}

/// `__exit__(*exc)`: a release.
unsafe extern "C" fn exit(
    lock: *mut ffi::PyObject,
    _args: *mut *mut ffi::PyObject,
    _nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    unsafe { release(lock, std::ptr::null_mut()) }
}

/// A method that goes to the real lock as it is (no record).
macro_rules! forwarded {
    ($fn:ident, $name:literal) => {
        unsafe extern "C" fn $fn(
            lock: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargsf: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            unsafe { forward(lock, $name, args, nargsf, kwnames) }
        }
    };
}

forwarded!(locked, c"locked");
forwarded!(at_fork_reinit, c"_at_fork_reinit");
forwarded!(is_owned, c"_is_owned");
forwarded!(release_save, c"_release_save");
forwarded!(acquire_restore, c"_acquire_restore");
forwarded!(recursion_count, c"_recursion_count");

unsafe extern "C" fn repr(lock: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held.
    unsafe { ffi::PyObject_Repr(inner_of(lock)) }
}

unsafe extern "C" fn new(
    tp: *mut ffi::PyTypeObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held; `tp` is one of our types.
    unsafe {
        let is_lock = tp == LOCK_TYPE.load(Ordering::Relaxed);
        let real = &*(if is_lock { &LOCK } else { &RLOCK }).load(Ordering::Relaxed);
        // The real lock is made with the caller's arguments: its errors are threading's.
        let inner = ffi::PyObject_Call(real.factory, args, kwargs);
        if inner.is_null() {
            return inner;
        }
        let lock = ffi::PyType_GenericAlloc(tp, 0);
        if lock.is_null() {
            ffi::Py_DECREF(inner);
            return lock;
        }
        (*(lock as *mut NativeLock)).inner = inner;
        lock
    }
}

unsafe extern "C" fn dealloc(lock: *mut ffi::PyObject) {
    // SAFETY: called by CPython once, with the GIL, for an object of our type.
    unsafe {
        let tp = ffi::Py_TYPE(lock);
        let this = lock as *mut NativeLock;
        if !(*this).weakrefs.is_null() {
            ffi::PyObject_ClearWeakRefs(lock);
        }
        ffi::Py_XDECREF((*this).inner);
        let free = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
        let free: ffi::freefunc = std::mem::transmute(free);
        free(lock as *mut c_void);
        ffi::Py_DECREF(tp as *mut ffi::PyObject);
    }
}

fn method(name: &'static CStr, meth: ffi::PyMethodDefPointer, flags: c_int) -> ffi::PyMethodDef {
    ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: meth,
        ml_flags: flags,
        ml_doc: std::ptr::null(),
    }
}

/// The methods of a native lock (`rlock`: of an RLock).
fn methods(rlock: bool) -> Vec<ffi::PyMethodDef> {
    use ffi::PyMethodDefPointer as P;
    let fast = ffi::METH_FASTCALL | ffi::METH_KEYWORDS;
    let acquire = || P {
        PyCFunctionFastWithKeywords: acquire,
    };
    let forwarded = |f: ffi::PyCFunctionFastWithKeywords| P {
        PyCFunctionFastWithKeywords: f,
    };
    let release = || P {
        PyCFunction: release,
    };
    let mut m = vec![
        method(c"acquire", acquire(), fast),
        method(c"__enter__", acquire(), fast),
        method(c"release", release(), ffi::METH_NOARGS),
        method(
            c"__exit__",
            P {
                PyCFunctionFast: exit,
            },
            ffi::METH_FASTCALL,
        ),
        method(c"_at_fork_reinit", forwarded(at_fork_reinit), fast),
    ];
    if rlock {
        m.extend([
            method(c"_is_owned", forwarded(is_owned), fast),
            method(c"_release_save", forwarded(release_save), fast),
            method(c"_acquire_restore", forwarded(acquire_restore), fast),
            method(c"_recursion_count", forwarded(recursion_count), fast),
        ]);
    } else {
        m.extend([
            method(c"acquire_lock", acquire(), fast),
            method(c"release_lock", release(), ffi::METH_NOARGS),
            method(c"locked", forwarded(locked), fast),
            method(c"locked_lock", forwarded(locked), fast),
        ]);
    }
    m.push(ffi::PyMethodDef::zeroed());
    m
}

/// What the real lock made by `factory` is (its methods' C functions read from one).
fn real(py: Python<'_>, link: LinkKind, factory: Bound<'_, PyAny>) -> PyResult<Real> {
    let sample = factory.call0()?;
    let c_function = |name: &str, flags: c_int| -> PyResult<Option<*mut c_void>> {
        let bound = sample.getattr(name)?;
        // SAFETY: the GIL is held; the functions read a built-in method's definition.
        unsafe {
            if ffi::PyCFunction_Check(bound.as_ptr()) == 0
                || ffi::PyCFunction_GetFlags(bound.as_ptr()) != flags
            {
                return Ok(None);
            }
            Ok(ffi::PyCFunction_GetFunction(bound.as_ptr()).map(|f| f as *mut c_void))
        }
    };
    let acquire = c_function("acquire", ffi::METH_VARARGS | ffi::METH_KEYWORDS)?;
    let release = c_function("release", ffi::METH_NOARGS)?;
    let try_args = pyo3::types::PyTuple::new(py, [false])?;
    // SAFETY: the pointers are the functions of those flags (checked above).
    Ok(Real {
        link,
        factory: factory.into_ptr(),
        acquire: acquire.map(|f| unsafe { std::mem::transmute::<*mut c_void, _>(f) }),
        release: release.map(|f| unsafe { std::mem::transmute::<*mut c_void, _>(f) }),
        try_args: try_args.into_ptr(),
    })
}

/// Makes a native lock type named `name` (its spec, slots and methods leaked: once per
/// process).
fn lock_type<'py>(
    py: Python<'py>,
    name: &'static CStr,
    rlock: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let methods = Box::leak(methods(rlock).into_boxed_slice());
    let members = offset_member(
        c"__weaklistoffset__",
        std::mem::offset_of!(NativeLock, weakrefs),
    );
    let doc = if rlock {
        c"A threading.RLock whose waits and releases devtrace's recorder records."
    } else {
        c"A threading.Lock whose waits and releases devtrace's recorder records."
    };
    let slot = |slot: c_int, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
    let slots = Box::leak(Box::new([
        slot(ffi::Py_tp_new, new as *mut c_void),
        slot(ffi::Py_tp_dealloc, dealloc as *mut c_void),
        slot(ffi::Py_tp_repr, repr as *mut c_void),
        slot(ffi::Py_tp_methods, methods.as_mut_ptr() as *mut c_void),
        slot(ffi::Py_tp_members, members.as_mut_ptr() as *mut c_void),
        slot(ffi::Py_tp_doc, doc.as_ptr() as *mut c_void),
        slot(0, std::ptr::null_mut()),
    ]));
    let spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: std::mem::size_of::<NativeLock>() as c_int,
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: a complete spec; the GIL is held; a new reference.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(spec)) }
}

/// Adds `Lock` and `RLock` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let thread = py.import("_thread")?;
    let lock = real(py, LinkKind::Lock, thread.getattr("allocate_lock")?)?;
    let rlock = real(py, LinkKind::RLock, thread.getattr("RLock")?)?;
    LOCK.store(Box::into_raw(Box::new(lock)), Ordering::Relaxed);
    RLOCK.store(Box::into_raw(Box::new(rlock)), Ordering::Relaxed);
    let lock = lock_type(py, c"devtrace._native.Lock", false)?;
    LOCK_TYPE.store(lock.as_ptr() as *mut ffi::PyTypeObject, Ordering::Relaxed);
    m.add("Lock", lock.clone())?;
    // The type stays alive with the process (the module holds it; this keeps it past that).
    std::mem::forget(lock);
    m.add("RLock", lock_type(py, c"devtrace._native.RLock", true)?)?;
    Ok(())
}

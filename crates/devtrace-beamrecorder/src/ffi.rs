//! The part of `erl_nif.h` (NIF API 2.16, OTP 25; 2.17 of OTP 26/27 only adds to it) this
//! tracer uses, declared by hand: the API's functions are exported by the VM's executable and
//! resolved when it loads the library, so nothing links against Erlang at build time.
//!
//! Only LP64 Unix is supported (`long` is 64 bits: `enif_get_long` is the header's
//! `enif_get_int64`).

#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_double, c_int, c_long, c_uint, c_ulong, c_void};

pub type Term = usize;

#[repr(C)]
pub struct ErlNifEnv {
    _private: [u8; 0],
}

#[repr(C)]
pub struct ErlNifFunc {
    pub name: *const c_char,
    pub arity: c_uint,
    pub fptr: unsafe extern "C" fn(*mut ErlNifEnv, c_int, *const Term) -> Term,
    pub flags: c_uint,
}

#[repr(C)]
pub struct ErlNifEntry {
    pub major: c_int,
    pub minor: c_int,
    pub name: *const c_char,
    pub num_of_funcs: c_int,
    pub funcs: *const ErlNifFunc,
    pub load: Option<unsafe extern "C" fn(*mut ErlNifEnv, *mut *mut c_void, Term) -> c_int>,
    pub reload: *const c_void,
    pub upgrade: Option<
        unsafe extern "C" fn(*mut ErlNifEnv, *mut *mut c_void, *mut *mut c_void, Term) -> c_int,
    >,
    pub unload: *const c_void,
    pub vm_variant: *const c_char,
    pub options: c_uint,
    pub sizeof_erl_nif_resource_type_init: usize,
    pub min_erts: *const c_char,
}

// SAFETY: the entry is immutable static data read by the VM.
unsafe impl Sync for ErlNifEntry {}
unsafe impl Sync for ErlNifFunc {}

#[repr(C)]
pub struct ErlNifBinary {
    pub size: usize,
    pub data: *const u8,
    ref_bin: *mut c_void,
    spare: [*mut c_void; 2],
}

impl ErlNifBinary {
    pub fn empty() -> ErlNifBinary {
        ErlNifBinary {
            size: 0,
            data: std::ptr::null(),
            ref_bin: std::ptr::null_mut(),
            spare: [std::ptr::null_mut(); 2],
        }
    }
}

/// `ErlNifPid`: a local pid's term.
#[repr(C)]
pub struct ErlNifPid {
    pub pid: Term,
}

/// `ErlNifMapIterator`: opaque here, with room to spare (the header's is 56 bytes).
#[repr(C, align(8))]
pub struct ErlNifMapIterator {
    _opaque: [u8; 128],
}

impl Default for ErlNifMapIterator {
    fn default() -> ErlNifMapIterator {
        ErlNifMapIterator { _opaque: [0; 128] }
    }
}

pub const ERL_NIF_LATIN1: c_int = 1;
pub const ERL_NIF_UTF8: c_int = 2;
pub const ERL_NIF_MAP_ITERATOR_FIRST: c_int = 1;
pub const ERL_NIF_INTERNAL_HASH: c_int = 1;

/// `enif_term_type`'s answers.
pub mod term_type {
    pub const ATOM: i32 = 1;
    pub const BITSTRING: i32 = 2;
    pub const FLOAT: i32 = 3;
    pub const FUN: i32 = 4;
    pub const INTEGER: i32 = 5;
    pub const LIST: i32 = 6;
    pub const MAP: i32 = 7;
    pub const PID: i32 = 8;
    pub const PORT: i32 = 9;
    pub const REFERENCE: i32 = 10;
    pub const TUPLE: i32 = 11;
}

unsafe extern "C" {
    pub fn enif_make_atom(env: *mut ErlNifEnv, name: *const c_char) -> Term;
    pub fn enif_make_badarg(env: *mut ErlNifEnv) -> Term;
    pub fn enif_make_ulong(env: *mut ErlNifEnv, value: c_ulong) -> Term;
    pub fn enif_make_tuple_from_array(env: *mut ErlNifEnv, arr: *const Term, cnt: c_uint) -> Term;
    pub fn enif_make_list_from_array(env: *mut ErlNifEnv, arr: *const Term, cnt: c_uint) -> Term;
    pub fn enif_get_tuple(
        env: *mut ErlNifEnv,
        term: Term,
        arity: *mut c_int,
        array: *mut *const Term,
    ) -> c_int;
    pub fn enif_get_atom(
        env: *mut ErlNifEnv,
        term: Term,
        buf: *mut c_char,
        len: c_uint,
        encoding: c_int,
    ) -> c_int;
    pub fn enif_get_list_cell(
        env: *mut ErlNifEnv,
        list: Term,
        head: *mut Term,
        tail: *mut Term,
    ) -> c_int;
    pub fn enif_get_long(env: *mut ErlNifEnv, term: Term, out: *mut c_long) -> c_int;
    pub fn enif_get_ulong(env: *mut ErlNifEnv, term: Term, out: *mut c_ulong) -> c_int;
    pub fn enif_get_double(env: *mut ErlNifEnv, term: Term, out: *mut c_double) -> c_int;
    pub fn enif_inspect_binary(env: *mut ErlNifEnv, term: Term, bin: *mut ErlNifBinary) -> c_int;
    pub fn enif_is_binary(env: *mut ErlNifEnv, term: Term) -> c_int;
    pub fn enif_is_empty_list(env: *mut ErlNifEnv, term: Term) -> c_int;
    pub fn enif_is_pid(env: *mut ErlNifEnv, term: Term) -> c_int;
    pub fn enif_is_atom(env: *mut ErlNifEnv, term: Term) -> c_int;
    pub fn enif_get_map_size(env: *mut ErlNifEnv, term: Term, size: *mut usize) -> c_int;
    pub fn enif_get_map_value(env: *mut ErlNifEnv, map: Term, key: Term, value: *mut Term)
    -> c_int;
    pub fn enif_map_iterator_create(
        env: *mut ErlNifEnv,
        map: Term,
        iter: *mut ErlNifMapIterator,
        entry: c_int,
    ) -> c_int;
    pub fn enif_map_iterator_destroy(env: *mut ErlNifEnv, iter: *mut ErlNifMapIterator);
    pub fn enif_map_iterator_next(env: *mut ErlNifEnv, iter: *mut ErlNifMapIterator) -> c_int;
    pub fn enif_map_iterator_get_pair(
        env: *mut ErlNifEnv,
        iter: *mut ErlNifMapIterator,
        key: *mut Term,
        value: *mut Term,
    ) -> c_int;
    pub fn enif_make_new_binary(env: *mut ErlNifEnv, size: usize, term: *mut Term) -> *mut u8;
    pub fn enif_term_type(env: *mut ErlNifEnv, term: Term) -> c_int;
    pub fn enif_hash(kind: c_int, term: Term, salt: u64) -> u64;
    pub fn enif_self(env: *mut ErlNifEnv, pid: *mut ErlNifPid) -> *mut ErlNifPid;
    pub fn enif_whereis_pid(env: *mut ErlNifEnv, name: Term, pid: *mut ErlNifPid) -> c_int;
    pub fn enif_get_list_length(env: *mut ErlNifEnv, term: Term, len: *mut c_uint) -> c_int;
    pub fn enif_snprintf(buf: *mut c_char, size: usize, format: *const c_char, ...) -> c_int;
}

// The Python version cfgs (Py_3_12, Py_GIL_DISABLED, …) for this crate's own #[cfg]s.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}

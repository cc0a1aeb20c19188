//! `devtrace run --python-autotrace PKG`: auto-tracing of a Python package in every Python
//! interpreter the command starts, without changing the program.
//!
//! Python imports `sitecustomize` at start-up from the first directory on its path that has
//! one. devtrace writes its own (python/sitecustomize.py, embedded in the binary) into a fresh
//! directory put first on `PYTHONPATH`; it runs the sitecustomize it hides, then calls
//! `devtrace.configure()` and `devtrace.autotrace(PKG…)`. Each interpreter appends a line to a
//! report file (`ok`, `missing` when the devtrace package is not installed for it, `failed`),
//! so devtrace can say afterwards when nothing was auto-traced, and why.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

const SITECUSTOMIZE: &str = include_str!("python/sitecustomize.py");

/// The environment variables the embedded sitecustomize reads.
const PACKAGES_VAR: &str = "DEVTRACE_PYTHON_AUTOTRACE";
const REPORT_VAR: &str = "DEVTRACE_PYTHON_AUTOTRACE_REPORT";
const THRESHOLD_VAR: &str = "DEVTRACE_AUTOTRACE_THRESHOLD_MS";

pub struct PythonAutotrace {
    dir: PathBuf,
    report: PathBuf,
    packages: Vec<String>,
    threshold_ms: Option<f64>,
}

/// Checks that each name is a Python module name (`app`, `app.core`).
pub fn check_packages(packages: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for given in packages {
        for name in given.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let valid = name.split('.').all(|part| {
                let mut chars = part.chars();
                chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                    && chars.all(|c| c == '_' || c.is_alphanumeric())
            });
            if !valid {
                bail!(
                    "--python-autotrace {name:?}: not a Python module name; give the package the program imports, e.g. --python-autotrace myapp"
                );
            }
            out.push(name.to_owned());
        }
    }
    if out.is_empty() {
        bail!("--python-autotrace needs a package name, e.g. --python-autotrace myapp");
    }
    Ok(out)
}

impl PythonAutotrace {
    /// Writes the sitecustomize into a fresh temporary directory.
    pub fn prepare(packages: Vec<String>, threshold_ms: Option<f64>) -> Result<Self> {
        if let Some(ms) = threshold_ms
            && !(ms >= 0.0 && ms.is_finite())
        {
            bail!("--python-autotrace-threshold {ms}: give a number of milliseconds ≥ 0");
        }
        let dir = std::env::temp_dir().join(format!(
            "devtrace-autotrace-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", crate::output::path(&dir)))?;
        std::fs::write(dir.join("sitecustomize.py"), SITECUSTOMIZE).with_context(|| {
            format!(
                "cannot write {}/sitecustomize.py",
                crate::output::path(&dir)
            )
        })?;
        Ok(Self {
            report: dir.join("report.txt"),
            dir,
            packages,
            threshold_ms,
        })
    }

    /// The child's variables: our directory first on PYTHONPATH, what to trace, where to report.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut python_path = crate::output::path(&self.dir).to_string();
        if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
            python_path.push(':');
            python_path.push_str(&existing.to_string_lossy());
        }
        let mut env = vec![
            ("PYTHONPATH".to_owned(), python_path),
            (PACKAGES_VAR.to_owned(), self.packages.join(",")),
            (
                REPORT_VAR.to_owned(),
                crate::output::path(&self.report).to_string(),
            ),
        ];
        if let Some(ms) = self.threshold_ms {
            env.push((THRESHOLD_VAR.to_owned(), ms.to_string()));
        }
        env
    }

    /// Removes the directory; returns what to tell the user when no interpreter was traced.
    pub fn finish(self) -> Option<String> {
        let report = std::fs::read_to_string(&self.report).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&self.dir);
        summary(&report, &self.packages)
    }
}

/// The note for a report in which no interpreter started auto-tracing (the interpreters that
/// could not already said why on stderr).
fn summary(report: &str, packages: &[String]) -> Option<String> {
    let lines: Vec<&str> = report.lines().collect();
    if lines.iter().any(|l| l.starts_with("ok ")) {
        return None;
    }
    if lines.is_empty() {
        return Some(format!(
            "devtrace: --python-autotrace {}: no Python interpreter started by the command loaded the auto-tracing hook (is it a Python program? `python -I`, `-S` or `-E` ignore PYTHONPATH)",
            packages.join(",")
        ));
    }
    Some(format!(
        "devtrace: --python-autotrace {}: nothing was auto-traced (see the messages above)",
        packages.join(",")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_checked() {
        assert_eq!(
            check_packages(&["app".into(), "lib.core, other".into()]).unwrap(),
            vec!["app", "lib.core", "other"]
        );
        let error = check_packages(&["my-app".into()]).unwrap_err().to_string();
        assert!(
            error.contains("\"my-app\": not a Python module name"),
            "{error}"
        );
        assert!(check_packages(&[" , ".into()]).is_err());
    }

    #[test]
    fn the_summary_speaks_only_when_nothing_was_traced() {
        let packages = vec!["app".to_owned()];
        assert_eq!(summary("ok 12 /usr/bin/python3\n", &packages), None);
        assert_eq!(
            summary(
                "missing 12 /usr/bin/python3\nok 13 /venv/bin/python\n",
                &packages
            ),
            None
        );
        assert!(
            summary("", &packages)
                .unwrap()
                .contains("no Python interpreter started by the command loaded")
        );
        assert!(
            summary("missing 12 /usr/bin/python3\n", &packages)
                .unwrap()
                .contains("nothing was auto-traced")
        );
    }
}

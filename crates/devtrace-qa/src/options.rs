//! What a job runs with: stored with the job (JSON), so a worker in another process, or after
//! a restart, runs it the same way.

use serde::{Deserialize, Serialize};

/// Which runner executes the test command.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    /// bubblewrap: no network, the checkout the only writable place, limits. The default.
    Sandbox,
    Docker,
    Podman,
    /// The test command as it is, on this machine: only when asked for.
    Local,
}

impl RunnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Docker => "docker",
            Self::Podman => "podman",
            Self::Local => "local",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sandbox" => Some(Self::Sandbox),
            "docker" => Some(Self::Docker),
            "podman" => Some(Self::Podman),
            "local" => Some(Self::Local),
            _ => None,
        }
    }
}

/// A job's settings.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QaOptions {
    pub runner: RunnerKind,
    /// Each test run's time limit; the whole process tree is killed at its end.
    pub timeout_secs: u64,
    /// Memory one process of the test command may use (its data segment), in MiB.
    pub memory_mib: u64,
    /// Processes (and threads) the test command may run at once.
    pub max_processes: u64,
    /// Output kept per stream; beyond it the middle is dropped (the head and tail stay).
    pub max_output_bytes: u64,
    /// Ask the configured LLM judge too (never without configuration).
    pub llm_judge: bool,
    /// Overrides the session's `task.test_command`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_command: Option<String>,
    /// Overrides the session's `task.repository` (a URL or an absolute path); for an agent
    /// session, its project directory when that is a repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Overrides the session's `task.commit` (agent sessions record none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl Default for QaOptions {
    fn default() -> Self {
        Self {
            runner: RunnerKind::Sandbox,
            timeout_secs: 600,
            memory_mib: 4096,
            max_processes: 512,
            max_output_bytes: 32 * 1024 * 1024,
            llm_judge: true,
            test_command: None,
            repository: None,
            commit: None,
        }
    }
}

impl QaOptions {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("options serialise")
    }

    /// The options a job was stored with; unreadable options (from a newer devtrace) are an
    /// error naming the job.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("cannot read the job's options: {e}"))
    }
}

/// Settings a request may change (REST body, CLI flags); the rest come from the defaults.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QaOverrides {
    /// `sandbox` (default on Linux), `docker`, `podman`, or `local` (no isolation).
    pub runner: Option<RunnerKind>,
    /// Each test run's time limit, 1 to 86400 seconds.
    pub timeout_secs: Option<u64>,
    /// Memory per process, at least 64 MiB.
    pub memory_mib: Option<u64>,
    /// Processes at once, 8 to 100000.
    pub max_processes: Option<u64>,
    pub test_command: Option<String>,
    pub repository: Option<String>,
    pub commit: Option<String>,
    /// false: skip the LLM judge even when one is configured.
    pub llm_judge: Option<bool>,
}

impl QaOverrides {
    /// `defaults` with these applied; an error names the setting and what it accepts.
    pub fn apply(&self, defaults: &QaOptions) -> Result<QaOptions, (&'static str, String)> {
        let mut options = defaults.clone();
        if let Some(runner) = self.runner {
            options.runner = runner;
        }
        if let Some(timeout) = self.timeout_secs {
            if !(1..=86_400).contains(&timeout) {
                return Err((
                    "timeout_secs",
                    format!("{timeout} is not between 1 and 86400 seconds"),
                ));
            }
            options.timeout_secs = timeout;
        }
        if let Some(memory) = self.memory_mib {
            if memory < 64 {
                return Err((
                    "memory_mib",
                    format!("{memory} MiB is too little: at least 64"),
                ));
            }
            options.memory_mib = memory;
        }
        if let Some(processes) = self.max_processes {
            if !(8..=100_000).contains(&processes) {
                return Err((
                    "max_processes",
                    format!("{processes} is not between 8 and 100000"),
                ));
            }
            options.max_processes = processes;
        }
        for (name, value, slot) in [
            (
                "test_command",
                &self.test_command,
                &mut options.test_command,
            ),
            ("repository", &self.repository, &mut options.repository),
            ("commit", &self.commit, &mut options.commit),
        ] {
            if let Some(value) = value {
                if value.trim().is_empty() {
                    return Err((name, "is empty".to_owned()));
                }
                *slot = Some(value.trim().to_owned());
            }
        }
        if let Some(llm) = self.llm_judge {
            options.llm_judge = llm;
        }
        Ok(options)
    }
}

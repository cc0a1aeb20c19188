//! Where settings come from: flags and environment (via clap), then the config file, then
//! defaults. Also the default data directory.

use crate::cli::ServeArgs;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config file: the same names as `devtrace serve`'s flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    pub data: Option<PathBuf>,
    /// A PostgreSQL or ClickHouse URL (or a data directory): the store every command uses.
    pub store: Option<String>,
    /// A PostgreSQL URL: the database that keeps the QA job queue beside a ClickHouse store.
    pub queue_store: Option<String>,
    pub grpc_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub api_listen: Option<SocketAddr>,
    pub max_body_bytes: Option<usize>,
    pub max_in_flight_requests: Option<usize>,
    pub max_in_flight_bytes: Option<usize>,
    pub max_attributes: Option<usize>,
    pub max_attribute_bytes: Option<usize>,
    pub max_events: Option<usize>,
    pub max_links: Option<usize>,
    pub max_queued_items: Option<u64>,
    pub max_queued_bytes: Option<usize>,
    pub log_level: Option<String>,
    pub allow_hosts: Option<Vec<String>>,
    pub self_trace: Option<bool>,
    /// `false` turns redaction on ingest off (it is on by default).
    pub redact: Option<bool>,
    /// A rules file (the same shape as the built-in one) whose rules are added.
    pub redaction_rules: Option<PathBuf>,
    /// LLM prices replacing or adding to the built-in table, $ per million tokens:
    /// `[prices."gpt-4o"] input = 2.5, cache-read = 1.25, cache-write = 2.5, output = 10`.
    pub prices: Option<std::collections::BTreeMap<String, PriceEntry>>,
}

/// One model's price in the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PriceEntry {
    pub input: f64,
    pub output: f64,
    /// Defaults to the input price (no cache discount known).
    pub cache_read: Option<f64>,
    /// Defaults to the input price.
    pub cache_write: Option<f64>,
    /// The 1-hour prompt cache's write price; defaults to `cache-write`.
    pub cache_write_1h: Option<f64>,
}

/// The price table: the built-in one with the config file's `[prices]` applied.
/// Without `explicit`, the file `DEVTRACE_CONFIG` names, as every other setting reads it.
pub fn prices(explicit: Option<&Path>) -> Result<devtrace_analyze::pricing::PriceTable> {
    let from_env = std::env::var_os("DEVTRACE_CONFIG").map(PathBuf::from);
    let file = ConfigFile::load(explicit.or(from_env.as_deref()))?;
    let mut table = devtrace_analyze::pricing::PriceTable::built_in();
    for (model, entry) in file.prices.unwrap_or_default() {
        for (name, value) in [
            ("input", Some(entry.input)),
            ("output", Some(entry.output)),
            ("cache-read", entry.cache_read),
            ("cache-write", entry.cache_write),
            ("cache-write-1h", entry.cache_write_1h),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                anyhow::bail!(
                    "the config file's price of {model:?} has {name} = {v}: prices are dollars per million tokens, 0 or more"
                );
            }
        }
        table = table.with_override(
            &model,
            devtrace_analyze::pricing::Price {
                input: entry.input,
                cache_read: entry.cache_read.unwrap_or(entry.input),
                cache_write: entry.cache_write.unwrap_or(entry.input),
                cache_write_1h: entry
                    .cache_write_1h
                    .or(entry.cache_write)
                    .unwrap_or(entry.input),
                output: entry.output,
            },
        );
    }
    Ok(table)
}

impl ConfigFile {
    /// Reads `explicit` (which must exist) or the default location (which may not).
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => match default_config_path() {
                Some(path) if path.is_file() => path,
                _ => return Ok(Self::default()),
            },
        };
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read the config file {}", crate::output::path(&path))
        })?;
        toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", crate::output::path(&path)))
    }
}

/// The redaction every command that ingests applies: on by default with the built-in rules,
/// plus the rules of `redaction-rules` (config file) or `--redaction-rules`/
/// `DEVTRACE_REDACTION_RULES`; off only when asked (`redact = false`, `--no-redact`,
/// `DEVTRACE_NO_REDACT=1`).
pub fn redaction(
    file: &ConfigFile,
    no_redact: bool,
    rules: Option<&Path>,
) -> Result<std::sync::Arc<devtrace_ingest::redact::Redactor>> {
    use devtrace_ingest::redact::{Redactor, RulesFile};
    let env_off = std::env::var("DEVTRACE_NO_REDACT")
        .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
    if no_redact || env_off || file.redact == Some(false) {
        return Ok(std::sync::Arc::new(Redactor::disabled()));
    }
    let env_rules = std::env::var_os("DEVTRACE_REDACTION_RULES")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let path = rules
        .map(Path::to_path_buf)
        .or(env_rules)
        .or_else(|| file.redaction_rules.clone());
    let Some(path) = path else {
        return Ok(Redactor::shared_builtin());
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the redaction rules {}",
            crate::output::path(&path)
        )
    })?;
    let extra = RulesFile::parse(&text)
        .with_context(|| format!("in {}", crate::output::path(&path)))?
        .rules;
    Ok(std::sync::Arc::new(
        Redactor::with_extra_rules(&extra)
            .with_context(|| format!("the redaction rules in {}", crate::output::path(&path)))?,
    ))
}

/// The redaction for commands other than `serve` (import, hook): the config file and the
/// environment decide.
pub fn default_redaction() -> Result<std::sync::Arc<devtrace_ingest::redact::Redactor>> {
    let explicit = std::env::var_os("DEVTRACE_CONFIG").map(PathBuf::from);
    redaction(&ConfigFile::load(explicit.as_deref())?, false, None)
}

/// The resolved settings of `devtrace serve`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub data: PathBuf,
    pub server: devtrace_server::ServerConfig,
    pub writer: devtrace_store::writer::WriterConfig,
    pub log_level: String,
}

pub fn serve_settings(data_flag: Option<&Path>, args: &ServeArgs) -> Result<ServeSettings> {
    let file = ConfigFile::load(args.config.as_deref())?;
    // The flags' values were checked by clap; the file's are checked here, alike.
    for (key, value) in [
        ("max-in-flight-bytes", file.max_in_flight_bytes),
        ("max-queued-bytes", file.max_queued_bytes),
    ] {
        if let Some(value) = value
            && let Err(why) = crate::cli::byte_budget_arg(&value.to_string())
        {
            crate::usage::usage!(
                "invalid value '{value}' for '{key}' in the config file {}: {why}",
                crate::output::path(
                    &args
                        .config
                        .clone()
                        .or_else(default_config_path)
                        .unwrap_or_default()
                )
            );
        }
    }
    let defaults = devtrace_server::ServerConfig::default();
    let limits = devtrace_ingest::Limits::default();
    let writer = devtrace_store::writer::WriterConfig::default();
    let redactor = redaction(&file, args.no_redact, args.redaction_rules.as_deref())?;
    let data = match data_flag {
        Some(dir) => dir.to_path_buf(),
        None => match file.data {
            Some(dir) => dir,
            None => default_data_dir()?,
        },
    };
    Ok(ServeSettings {
        data,
        server: devtrace_server::ServerConfig {
            grpc_listen: args
                .grpc_listen
                .or(file.grpc_listen)
                .unwrap_or(defaults.grpc_listen),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or(defaults.http_listen),
            api_listen: args
                .api_listen
                .or(file.api_listen)
                .unwrap_or(defaults.api_listen),
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(defaults.max_body_bytes),
            max_in_flight_requests: args
                .max_in_flight_requests
                .or(file.max_in_flight_requests)
                .unwrap_or(defaults.max_in_flight_requests),
            max_in_flight_bytes: args
                .max_in_flight_bytes
                .or(file.max_in_flight_bytes)
                .unwrap_or(defaults.max_in_flight_bytes),
            self_trace: args.self_trace || file.self_trace.unwrap_or(false),
            allowed_hosts: if args.allow_hosts.is_empty() {
                file.allow_hosts.clone().unwrap_or_default()
            } else {
                args.allow_hosts.clone()
            },
            limits: devtrace_ingest::Limits {
                max_attributes: args
                    .max_attributes
                    .or(file.max_attributes)
                    .unwrap_or(limits.max_attributes),
                max_value_bytes: args
                    .max_attribute_bytes
                    .or(file.max_attribute_bytes)
                    .unwrap_or(limits.max_value_bytes),
                max_events: args
                    .max_events
                    .or(file.max_events)
                    .unwrap_or(limits.max_events),
                max_links: args
                    .max_links
                    .or(file.max_links)
                    .unwrap_or(limits.max_links),
            },
            redactor,
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => Some(devtrace_server::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
        },
        writer: devtrace_store::writer::WriterConfig {
            max_queued_items: args
                .max_queued_items
                .or(file.max_queued_items)
                .unwrap_or(writer.max_queued_items),
            max_queued_bytes: args
                .max_queued_bytes
                .or(file.max_queued_bytes)
                .map_or(writer.max_queued_bytes, |bytes| bytes as u64),
            ..writer
        },
        log_level: args
            .log_level
            .clone()
            .or(file.log_level.clone())
            .unwrap_or_else(|| "info".into()),
    })
}

/// The data directory for commands other than `serve`: `--data`/`DEVTRACE_DATA`, else the
/// config file's `data`, else the platform default.
pub fn data_dir(data_flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = data_flag {
        return Ok(dir.to_path_buf());
    }
    let explicit = std::env::var_os("DEVTRACE_CONFIG").map(PathBuf::from);
    match ConfigFile::load(explicit.as_deref())?.data {
        Some(dir) => Ok(dir),
        None => default_data_dir(),
    }
}

/// Which store a command uses and as which project: `--store`/`DEVTRACE_STORE` (or the
/// config file's `store`), else the embedded store in the data directory; beside a ClickHouse
/// store, the PostgreSQL database of its QA queue (`--queue-store`/`DEVTRACE_QUEUE_STORE` or
/// the config file's `queue-store`). The data directory is kept either way: `serve` announces
/// itself there (`serve.json`).
#[derive(Clone, Debug)]
pub struct StoreChoice {
    pub data_dir: PathBuf,
    pub location: devtrace_store::StoreLocation,
    /// `--project`: `None` is the project named `default`.
    pub project: Option<String>,
}

impl StoreChoice {
    pub fn resolve(
        data: Option<&Path>,
        store: Option<&str>,
        queue: Option<&str>,
        project: Option<&str>,
    ) -> Result<Self> {
        let explicit = std::env::var_os("DEVTRACE_CONFIG").map(PathBuf::from);
        let file = ConfigFile::load(explicit.as_deref())?;
        let data_dir = match data {
            Some(dir) => dir.to_path_buf(),
            None => match &file.data {
                Some(dir) => dir.clone(),
                None => default_data_dir()?,
            },
        };
        let location = match store.map(str::to_owned).or(file.store.clone()) {
            Some(text) if !text.trim().is_empty() => devtrace_store::StoreLocation::parse(&text),
            _ => devtrace_store::StoreLocation::Embedded(data_dir.clone()),
        };
        let queue = queue.map(str::to_owned).or(file.queue_store.clone());
        let location = location
            .with_queue(queue.as_deref())
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            data_dir,
            location,
            project: project.filter(|p| !p.is_empty()).map(str::to_owned),
        })
    }

    /// The store's read side and accounts.
    pub fn backend(&self) -> Result<devtrace_store::Backend> {
        Ok(self.location.open()?)
    }

    /// The chosen project's id: it must exist (tokens and ingest create projects; reading one
    /// that does not exist is a typo).
    pub fn project_id(
        &self,
        accounts: &dyn devtrace_store::Accounts,
    ) -> Result<devtrace_store::ProjectId> {
        let Some(name) = &self.project else {
            return Ok(devtrace_store::ProjectId::DEFAULT);
        };
        match accounts.project_named(name)? {
            Some(project) => Ok(project.id),
            None => {
                let known: Vec<String> = accounts.projects()?.into_iter().map(|p| p.name).collect();
                anyhow::bail!(
                    "there is no project {} in {}; the projects are: {}",
                    devtrace_model::recorded::quote(name),
                    devtrace_model::recorded::escape(&self.location.describe()),
                    known
                        .iter()
                        .map(|n| devtrace_model::recorded::quote(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
    }

    /// The store, reading the chosen project.
    pub fn open(&self) -> Result<std::sync::Arc<dyn devtrace_store::Store>> {
        let backend = self.backend()?;
        let project = self.project_id(&*backend.accounts)?;
        Ok(backend.store.in_project(project)?)
    }

    /// A writer for the chosen project (created with the store if needed), and the store.
    pub fn open_writer(
        &self,
    ) -> Result<(
        Box<dyn devtrace_store::StoreWriter>,
        std::sync::Arc<dyn devtrace_store::Store>,
    )> {
        let writer = self.location.open_writer()?;
        let backend = self.backend()?;
        let project = self.project_to_write(&*backend.accounts)?;
        Ok((
            Box::new(devtrace_store::ProjectWriter::new(writer, project)),
            backend.store.in_project(project)?,
        ))
    }

    /// Only the writer of [`StoreChoice::open_writer`]: the read side is opened only to create
    /// a named project, so the embedded store is one connection (`devtrace run`'s receivers
    /// write and never read).
    pub fn open_writer_only(&self) -> Result<Box<dyn devtrace_store::StoreWriter>> {
        let writer = self.location.open_writer()?;
        let project = match &self.project {
            Some(_) => self.project_to_write(&*self.backend()?.accounts)?,
            None => devtrace_store::ProjectId::DEFAULT,
        };
        Ok(Box::new(devtrace_store::ProjectWriter::new(
            writer, project,
        )))
    }

    /// The project writes go to, created if it is named and missing (writing is how projects
    /// come to be; reading a missing one is a typo, [`StoreChoice::project_id`]).
    fn project_to_write(
        &self,
        accounts: &dyn devtrace_store::Accounts,
    ) -> Result<devtrace_store::ProjectId> {
        Ok(match &self.project {
            Some(name) => accounts.ensure_project(name)?.id,
            None => devtrace_store::ProjectId::DEFAULT,
        })
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `$XDG_DATA_HOME/devtrace`, or the platform's equivalent.
pub fn default_data_dir() -> Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("devtrace"));
    }
    let home = home().context("cannot find a data directory: HOME is unset; pass --data DIR")?;
    if cfg!(target_os = "macos") {
        Ok(home.join("Library/Application Support/devtrace"))
    } else {
        Ok(home.join(".local/share/devtrace"))
    }
}

fn default_config_path() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("devtrace/config.toml"));
    }
    home().map(|h| h.join(".config/devtrace/config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_config_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "grpc-listen = \"127.0.0.1:9000\"\nhttp-listen = \"127.0.0.1:9001\"\nmax-events = 7\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            http_listen: Some("127.0.0.1:9999".parse().unwrap()),
            ..Default::default()
        };
        let settings = serve_settings(Some(dir.path()), &args).unwrap();
        assert_eq!(settings.server.grpc_listen.port(), 9000);
        assert_eq!(settings.server.http_listen.port(), 9999);
        assert_eq!(settings.server.api_listen.port(), 4319);
        assert_eq!(settings.server.limits.max_events, 7);
        assert_eq!(settings.data, dir.path());
    }

    #[test]
    fn redaction_is_on_by_default_takes_extra_rules_and_turns_off_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let on = redaction(&ConfigFile::default(), false, None).unwrap();
        assert_eq!(on.redact("mail ops@example.com"), "mail [REDACTED:email]");
        let rules = dir.path().join("rules.json");
        std::fs::write(
            &rules,
            r#"{"version": 1, "rules": [{"name": "ticket", "description": "", "pattern": "TICKET-[0-9]+"}]}"#,
        )
        .unwrap();
        let file = ConfigFile {
            redaction_rules: Some(rules.clone()),
            ..Default::default()
        };
        let extra = redaction(&file, false, None).unwrap();
        assert_eq!(
            extra.redact("TICKET-42 by ops@example.com"),
            "[REDACTED:ticket] by [REDACTED:email]"
        );
        let off = ConfigFile {
            redact: Some(false),
            ..Default::default()
        };
        assert!(!redaction(&off, false, None).unwrap().is_enabled());
        assert!(
            !redaction(&ConfigFile::default(), true, None)
                .unwrap()
                .is_enabled()
        );
        std::fs::write(
            &rules,
            r#"{"version": 1, "rules": [{"name": "bad", "pattern": "("}]}"#,
        )
        .unwrap();
        let error = format!("{:#}", redaction(&file, false, None).unwrap_err());
        assert!(
            error.contains("rules.json") && error.contains("\"bad\""),
            "{error}"
        );
    }

    #[test]
    fn byte_budgets_come_from_flags_or_the_file_and_zero_is_a_usage_error_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "max-in-flight-bytes = 1048576\nmax-queued-bytes = 4096\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let settings = serve_settings(Some(dir.path()), &args).unwrap();
        assert_eq!(settings.server.max_in_flight_bytes, 1_048_576);
        assert_eq!(settings.writer.max_queued_bytes, 4096);
        let flagged = ServeArgs {
            max_in_flight_bytes: Some(2048),
            ..args
        };
        let settings = serve_settings(Some(dir.path()), &flagged).unwrap();
        assert_eq!(settings.server.max_in_flight_bytes, 2048);

        std::fs::write(&file, "max-in-flight-bytes = 0\n").unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let error = serve_settings(None, &args).unwrap_err();
        let usage = error
            .downcast_ref::<crate::usage::UsageError>()
            .expect("a usage error");
        assert_eq!(
            usage.0,
            format!(
                "invalid value '0' for 'max-in-flight-bytes' in the config file {}: a budget of 0 \
                 bytes would refuse every request; give at least 1 (e.g. 268435456 for 256 MiB)",
                crate::output::path(&file)
            )
        );
    }

    #[test]
    fn unknown_config_keys_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "grpc-port = 1\n").unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let error = format!("{:#}", serve_settings(None, &args).unwrap_err());
        assert!(
            error.contains(&file.display().to_string()) && error.contains("grpc-port"),
            "{error}"
        );
    }
}

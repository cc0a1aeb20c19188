//! `devtrace serve`: the receivers and API over the embedded store or a PostgreSQL store.
//!
//! Holds an exclusive lock on `DATA/serve.lock` so two servers never share a data directory
//! (with the embedded store, a store), and announces itself in `DATA/serve.json` (pid and
//! bound addresses) so other devtrace commands and tests can find it. Several servers may
//! share one PostgreSQL store, each with its own data directory. Authentication is on with a
//! PostgreSQL store or a non-loopback listen address unless `--insecure-no-auth` says
//! otherwise (loudly). On SIGINT/SIGTERM it stops accepting, lets in-flight requests finish,
//! commits what is queued, checkpoints, and removes `serve.json`.

use crate::cli::{AuthWhen, ColorChoice, ServeArgs};
use crate::config::{ServeSettings, StoreChoice, serve_settings};
use crate::output::eprintln_safe;
use anyhow::{Context, Result, bail};
use devtrace_qa::worker::{QaHandle, WorkerConfig, Workers};
use devtrace_qa::{QaContext, QaOptions};
use devtrace_server::Addresses;
use devtrace_server::auth::Auth;
use devtrace_store::writer::Writer;
use devtrace_store::{Backend, CommitFeed};
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub const SERVE_FILE: &str = "serve.json";
const LOCK_FILE: &str = "serve.lock";

pub fn run(choice: &StoreChoice, args: &ServeArgs, color: ColorChoice) -> Result<ExitCode> {
    let settings = serve_settings(Some(&choice.data_dir), args)?;
    init_logging(&settings.log_level, color)?;
    std::fs::create_dir_all(&settings.data).with_context(|| {
        format!(
            "cannot create the data directory {}",
            crate::output::path(&settings.data)
        )
    })?;
    let _lock = lock_data_dir(&settings.data)?;
    // The MCP tools count tokens: load the vocabulary now rather than on the first call.
    std::thread::spawn(devtrace_mcp::budget::warm_up);
    let location = &choice.location;
    let described = location.describe();
    let backend_writer = location
        .open_writer()
        .with_context(|| format!("cannot open the store {described}"))?;
    let backend = location
        .open()
        .with_context(|| format!("cannot open the store {described}"))?;
    let auth = choose_auth(args, &settings, location, &backend)?;
    let writer = Writer::start(backend_writer, settings.writer.clone());
    let feed: Arc<dyn CommitFeed> = match location.listen()? {
        Some(listener) => listener,
        None => Arc::new(writer.handle()),
    };
    let retention = devtrace_server::retention::Retention::start(
        backend.clone(),
        writer.handle(),
        args.retention,
    );
    let (workers, qa) = start_qa(&settings, args, &backend.store, location, &writer)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("devtrace-serve")
        .build()
        .context("cannot start the async runtime")?;
    let services = devtrace_server::Services {
        store: backend.store,
        auth,
        feed,
    };
    let served = runtime.block_on(serve(&settings, &described, services, &writer, qa));
    retention.stop();
    // Running QA jobs stop and go back to the queue; their results would need the writer.
    workers.shutdown();
    // In-flight requests are done; commit what they queued before saying goodbye.
    writer.shutdown();
    let _ = std::fs::remove_file(settings.data.join(SERVE_FILE));
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Whether tokens are required: `--auth required`, or by default (`auto`) with a PostgreSQL
/// store or any port beyond loopback; `--insecure-no-auth` turns them off, with a warning.
fn choose_auth(
    args: &ServeArgs,
    settings: &ServeSettings,
    location: &devtrace_store::StoreLocation,
    backend: &Backend,
) -> Result<Auth> {
    let accounts = Arc::clone(&backend.accounts);
    let exposed: Vec<SocketAddr> = [
        settings.server.grpc_listen,
        settings.server.http_listen,
        settings.server.api_listen,
    ]
    .into_iter()
    .filter(|addr| !addr.ip().is_loopback())
    .collect();
    let wanted = match args.auth {
        Some(AuthWhen::Required) => Some("--auth required"),
        _ if !location.is_embedded() => Some(match location {
            devtrace_store::StoreLocation::ClickHouse { .. } => "the ClickHouse store",
            _ => "the PostgreSQL store",
        }),
        _ if !exposed.is_empty() => Some("a listen address beyond loopback"),
        _ => None,
    };
    if args.insecure_no_auth {
        if let Some(reason) = wanted {
            let ports = if exposed.is_empty() {
                "its ports".to_owned()
            } else {
                exposed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            tracing::warn!(
                reason,
                ports = %ports,
                "AUTHENTICATION IS OFF (--insecure-no-auth) although the reason given needs it: anyone who can reach these ports can read and write every project"
            );
        }
        return Ok(Auth::off(accounts));
    }
    let Some(reason) = wanted else {
        return Ok(Auth::off(accounts));
    };
    let tokens = backend.accounts.tokens()?;
    let has_token = tokens.iter().any(|t| t.revoked_unix_nano.is_none());
    if !has_token && !exposed.is_empty() {
        // Off loopback the Host check must never be the only guard: without a token nobody
        // could authenticate, and the only way to serve anyway is to say so.
        bail!("{}", exposed_without_tokens(&exposed, &location.describe()));
    }
    if !has_token {
        let command = format!(
            "devtrace token create --store {} --project default --scope admin --name admin",
            location.describe()
        );
        tracing::warn!(
            reason,
            command = command.as_str(),
            "tokens are required and the store has none yet: create the first admin token"
        );
    }
    tracing::info!(reason, "authentication required");
    Ok(Auth::required_with_limit(
        accounts,
        args.auth_failures_per_minute
            .unwrap_or(devtrace_server::auth::MAX_FAILURES),
    ))
}

/// Why `serve` will not listen beyond loopback with no token to authenticate with, and the two
/// ways on (snapshot-tested in tests/serve_exposure.rs).
fn exposed_without_tokens(exposed: &[SocketAddr], store: &str) -> String {
    let ports = exposed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "refusing to listen beyond loopback ({ports}) without authentication: the store has no \
         API token, so tokens cannot be required yet.\n\
         Create the first admin token, then start serve again:\n  \
         devtrace token create --store {store} --project default --scope admin --name admin\n\
         or, only on a network you trust completely, add --insecure-no-auth (anyone who can \
         reach these ports can then read and write every project); or listen on 127.0.0.1."
    )
}

async fn serve(
    settings: &ServeSettings,
    store: &str,
    services: devtrace_server::Services,
    writer: &Writer,
    qa: QaHandle,
) -> Result<()> {
    let bound = devtrace_server::bind(settings.server.clone())
        .await
        .map_err(|error| explain_bind_error(error, &settings.server))?
        .with_qa(qa);
    let addresses = bound.addresses();
    // Handlers first: a SIGTERM sent as soon as serve.json appears must stop the server cleanly,
    // not kill it with the default action.
    let shutdown = shutdown_signal()?;
    let scheme = if settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        grpc = %addresses.grpc,
        http = %format!("{scheme}://{}", addresses.http),
        api = %format!("{scheme}://{}", addresses.api),
        store = devtrace_model::recorded::escape(store).as_str(),
        tokens_required = services.auth.is_required(),
        "listening"
    );
    eprintln_safe!(
        "devtrace serve: OTLP/gRPC on {}, OTLP/HTTP on {scheme}://{}, API on {scheme}://{}\n\
         store {}{}\n\
         point an SDK here with OTEL_EXPORTER_OTLP_ENDPOINT={scheme}://{}  (Ctrl-C to stop)",
        addresses.grpc,
        addresses.http,
        addresses.api,
        devtrace_model::recorded::escape(store),
        if services.auth.is_required() {
            "; tokens required (OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer dtk_…\")"
        } else {
            ""
        },
        addresses.http,
    );
    // Announced in the log before serve.json appears: whoever waits for the file (scripts,
    // tests) finds the log line written.
    write_serve_file(&settings.data, addresses)?;
    bound.serve(services, writer.handle(), shutdown).await?;
    Ok(())
}

/// The QA worker pool (`--qa-workers`) and what the API needs to queue jobs (`--qa`). Both
/// stores keep the queue; on PostgreSQL the workers of every node claim from it, jobs of
/// every project (each job is run in its own).
fn start_qa(
    settings: &ServeSettings,
    args: &ServeArgs,
    store: &Arc<dyn devtrace_store::Store>,
    location: &devtrace_store::StoreLocation,
    writer: &Writer,
) -> Result<(Workers, QaHandle)> {
    let has_queue = store.qa().is_some();
    if !has_queue && args.qa {
        bail!(
            "--qa: {} keeps no QA job queue{}",
            devtrace_model::recorded::escape(&location.describe()),
            location
                .missing_queue_hint()
                .map(|hint| format!(": {hint}"))
                .unwrap_or_default()
        );
    }
    let llm = devtrace_qa::judge::llm::LlmConfig::from_env(|key| std::env::var(key).ok())
        .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(llm) = &llm {
        tracing::info!(judge = %llm.label(), "QA: the LLM judge is configured");
    }
    let ctx = QaContext::in_data_dir(
        &settings.data,
        Arc::clone(store),
        Arc::new(writer.handle()),
        Arc::clone(&settings.server.redactor),
        llm,
    );
    let lease = std::env::var("DEVTRACE_QA_LEASE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(WorkerConfig::default().lease, Duration::from_secs);
    let workers = Workers::start(
        Arc::new(ctx),
        WorkerConfig {
            workers: if has_queue { args.qa_workers } else { 0 },
            lease,
            ..WorkerConfig::default()
        },
    );
    let defaults = QaOptions {
        runner: args.qa_runner.kind(),
        ..QaOptions::default()
    };
    let handle = QaHandle::new(defaults, args.qa, &workers);
    Ok((workers, handle))
}

/// A listener that could not be bound, with the setting that moves it: its flag, its
/// environment variable and its config file key.
fn explain_bind_error(
    error: devtrace_server::ServerError,
    server: &devtrace_server::ServerConfig,
) -> anyhow::Error {
    let devtrace_server::ServerError::Bind { what, addr, source } = &error else {
        return error.into();
    };
    let setting = if *addr == server.grpc_listen {
        "grpc-listen"
    } else if *addr == server.http_listen {
        "http-listen"
    } else {
        "api-listen"
    };
    let env = format!("DEVTRACE_{}", setting.replace('-', "_").to_uppercase());
    let problem = match source.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "port {} is already in use (by another devtrace serve, or another program); stop that program",
            addr.port()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "this user may not listen on port {} (ports below 1024 need privileges)",
            addr.port()
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            format!("{} is not an address of this machine", addr.ip())
        }
        _ => return error.into(),
    };
    anyhow::anyhow!(
        "cannot listen for {what} on {addr}: {problem}, or choose another address with --{setting} ADDR ({env}, or {setting} in the config file)"
    )
}

fn lock_data_dir(data: &Path) -> Result<File> {
    let path = data.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", crate::output::path(&path)))?;
    if file.try_lock().is_err() {
        let owner = std::fs::read_to_string(data.join(SERVE_FILE))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .map(|v| {
                let api = v["api"].as_str().unwrap_or("an unknown address");
                format!(" (pid {}, API on {api})", v["pid"])
            })
            .unwrap_or_default();
        bail!(
            "another devtrace serve is already using {}{owner}; stop it or pass a different --data",
            crate::output::path(data)
        );
    }
    Ok(file)
}

/// The addresses a live `devtrace serve` on this data directory announced in `serve.json`.
pub struct RunningServe {
    /// OTLP/HTTP (which also answers OTLP/gRPC).
    pub http: SocketAddr,
    /// The API port: REST, MCP and the web UI.
    pub api: SocketAddr,
}

impl RunningServe {
    /// The server announced in `data_dir`, when its process is alive and its OTLP/HTTP port
    /// answers (a stale `serve.json` left by a killed server is ignored).
    pub fn find(data_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(data_dir.join(SERVE_FILE)).ok()?;
        let info: serde_json::Value = serde_json::from_str(&text).ok()?;
        let pid = info["pid"].as_u64()?;
        if cfg!(target_os = "linux") && !Path::new(&format!("/proc/{pid}")).exists() {
            return None;
        }
        let http: SocketAddr = info["http"].as_str()?.parse().ok()?;
        let api: SocketAddr = info["api"].as_str()?.parse().ok()?;
        TcpStream::connect_timeout(&http, Duration::from_millis(200)).ok()?;
        Some(Self { http, api })
    }

    /// A web UI address for a view path (`devtrace_query::links`).
    pub fn web_link(&self, path: &str) -> String {
        format!("{}{path}", devtrace_query::links::base(self.api))
    }
}

/// "open in the web UI: http://…" for a view, when a `devtrace serve` on this data directory
/// is running (an empty string otherwise), for the end of a text answer.
pub fn web_link_line(data_dir: Option<&Path>, path: &str) -> String {
    crate::config::data_dir(data_dir)
        .ok()
        .and_then(|dir| RunningServe::find(&dir))
        .map(|serve| format!("\nopen in the web UI: {}\n", serve.web_link(path)))
        .unwrap_or_default()
}

/// Written atomically (temp file + rename) so readers never see half a file.
fn write_serve_file(data: &Path, addresses: Addresses) -> Result<()> {
    let info = serde_json::json!({
        "pid": std::process::id(),
        "grpc": addresses.grpc.to_string(),
        "http": addresses.http.to_string(),
        "api": addresses.api.to_string(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let final_path = data.join(SERVE_FILE);
    let temp_path: PathBuf = data.join(format!(".{SERVE_FILE}.{}", std::process::id()));
    std::fs::write(&temp_path, serde_json::to_vec_pretty(&info)?)
        .with_context(|| format!("cannot write {}", crate::output::path(&temp_path)))?;
    std::fs::rename(&temp_path, &final_path)
        .with_context(|| format!("cannot write {}", crate::output::path(&final_path)))?;
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now and returns the future that completes on the
/// first of them.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        (interrupt, terminate)
    };
    Ok(async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = signals;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests and committing queued data");
    })
}

/// Logs to stderr at `level`, coloured as `--color` says (by default when stderr is a terminal).
pub fn init_logging(level: &str, color: ColorChoice) -> Result<()> {
    use std::io::IsTerminal;
    let level: tracing::Level = level.parse().map_err(|_| {
        anyhow::anyhow!("unknown log level {level:?}: use error, warn, info, debug or trace")
    })?;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| crate::output::SafeStderr)
        .with_ansi(crate::output::colour_wanted(
            color,
            std::io::stderr().is_terminal(),
        ))
        .with_target(false)
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::RunningServe;

    fn serve_on(api: &str) -> RunningServe {
        RunningServe {
            http: "127.0.0.1:4318".parse().unwrap(),
            api: api.parse().unwrap(),
        }
    }

    #[test]
    fn web_links_use_the_announced_api_address() {
        assert_eq!(
            serve_on("127.0.0.1:4319").web_link("/traces/ab"),
            "http://127.0.0.1:4319/traces/ab"
        );
    }

    #[test]
    fn a_server_on_every_interface_is_linked_on_loopback() {
        assert_eq!(
            serve_on("0.0.0.0:4319").web_link("/sessions/x"),
            "http://127.0.0.1:4319/sessions/x"
        );
        assert_eq!(
            serve_on("[::]:4319").web_link("/operations/y"),
            "http://[::1]:4319/operations/y"
        );
    }
}

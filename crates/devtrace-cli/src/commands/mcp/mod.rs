//! `devtrace mcp`: the MCP server over stdio, for desktop agents (Claude Code, Codex, Cursor).
//!
//! Reads the same store `serve` writes (SQLite in WAL mode: a reader sees committed data while
//! the server writes); with no store yet it creates an empty one, so an agent configured before
//! any trace arrives still connects and is told how to send some. stdout carries only protocol
//! messages; logs go to stderr. Lines that are no JSON-RPC message are answered with their
//! JSON-RPC error by [`stdio`] before rmcp sees them.

mod stdio;

use crate::cli::McpArgs;
use anyhow::{Context, Result};
use devtrace_mcp::DevtraceMcp;
use devtrace_mcp::selftrace::{SpanSink, Transport};
use devtrace_mcp::tools::WebUi;
use devtrace_store::writer::Writer;
use rmcp::ServiceExt;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(
    choice: &crate::config::StoreChoice,
    args: &McpArgs,
    color: crate::cli::ColorChoice,
) -> Result<ExitCode> {
    super::serve::init_logging(&args.log_level, color)?;
    let dir = choice.data_dir.clone();
    // Creates and migrates the store if there is none; dropped at once unless self-tracing.
    let (writer, store) = choice.open_writer().with_context(|| {
        format!(
            "cannot open the store {}",
            devtrace_model::recorded::escape(&choice.location.describe())
        )
    })?;
    let writer = args
        .self_trace
        .then(|| Writer::start(writer, Default::default()));
    let sink = writer
        .as_ref()
        .map(|w| Arc::new(w.handle()) as Arc<dyn SpanSink>);
    // Load the tokenizer's vocabulary while the client starts up, off the first call's path.
    std::thread::spawn(devtrace_mcp::budget::warm_up);
    // Links to the web UI while a `devtrace serve` runs on the same data directory.
    let web_ui =
        WebUi::new(move || super::serve::RunningServe::find(&dir).map(|serve| serve.web_link("")));
    let server = DevtraceMcp::with_self_trace(store, Transport::Stdio, sink).with_web_ui(web_ui);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served: Result<()> = runtime.block_on(async move {
        let (transport, answers_copied) = stdio::checked();
        let served = async {
            let running = server
                .serve(transport)
                .await
                .context("the MCP client did not complete the handshake on stdin/stdout")?;
            running.waiting().await.context("the MCP session failed")?;
            Ok(())
        }
        .await;
        // rmcp's output pipe is closed now: wait until its last answers are on stdout.
        let _ = answers_copied.await;
        served
    });
    // The stdin thread may still be blocked reading; it ends with the process.
    runtime.shutdown_background();
    if let Some(writer) = writer {
        writer.shutdown();
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

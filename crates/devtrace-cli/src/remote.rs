//! The global `--server`, `--token`, `--project` and `--ca-cert` flags made into a
//! devtrace-client [`Client`]: one place where every command that talks to a server (the
//! store commands through [`RemoteStore`], `record`, `watch`) gets its connection settings.

use crate::cli::Cli;
use devtrace_client::{Client, ClientOptions, RemoteStore, ServerUrl};
use std::path::Path;

/// `--server URL` checked, or the usage error every command that takes `--server` gives.
pub fn server_url(url: &str) -> anyhow::Result<ServerUrl> {
    ServerUrl::parse(url).map_err(|e| crate::usage::UsageError(e.0).into())
}

/// How to reach a server: the token, project and trusted certificates of the flags.
pub fn options(
    token: Option<&str>,
    project: Option<&str>,
    ca_cert: Option<&Path>,
) -> ClientOptions {
    ClientOptions {
        token: token.map(str::to_owned),
        project: project.map(str::to_owned),
        ca_cert: ca_cert.map(Path::to_path_buf),
        ..ClientOptions::default()
    }
}

/// A client of `url` with the global flags' token, project and trust.
pub fn client(cli: &Cli, url: &str) -> anyhow::Result<Client> {
    let url = server_url(url)?;
    let options = options(
        cli.token.as_deref(),
        cli.project.as_deref(),
        cli.ca_cert.as_deref(),
    );
    Ok(Client::new(url, options)?)
}

/// The store of the server `url`, read through its REST API.
pub fn store(cli: &Cli, url: &str) -> anyhow::Result<RemoteStore> {
    Ok(RemoteStore::new(client(cli, url)?))
}

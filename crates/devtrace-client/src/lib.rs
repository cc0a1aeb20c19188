//! devtrace-client: the one HTTP client that talks to a devtrace server, for every command
//! that takes `--server` and for `devtrace watch`.
//!
//! It owns: the server URL as the user gave it ([`url`]), the trust of an `https://` server
//! (the system's roots plus `--ca-cert`, [`trust`]), blocking requests over ureq and rustls
//! with a bearer token, the project header, connect and read timeouts ([`http`]), retries with
//! backoff only where repeating is safe ([`retry`]: idempotent GETs; OTLP export on 429, 502,
//! 503 and 504, honouring `Retry-After`, [`otlp`]), the server's event stream read as it
//! arrives ([`events`]), errors that name the server and the fix ([`error`]), and
//! `RemoteStore`, devtrace-store's `Store` read through the REST API (`remote_store`, with the
//! `remote-store` feature).
//!
//! With that feature it depends on devtrace-model, devtrace-ingest (OTLP decoding) and
//! devtrace-store (the `Store` trait), nothing above; without it, on no devtrace crate. The faces (devtrace-cli, devtrace-tui) depend on it. It prints nothing
//! and knows no command line: flags arrive as [`ClientOptions`].

pub mod error;
pub mod events;
pub mod http;
pub mod otlp;
#[cfg(feature = "remote-store")]
pub mod remote_store;
pub mod retry;
pub mod trust;
pub mod url;

pub use error::ClientError;
pub use events::{EventStream, ServerEvent};
pub use http::{Client, ClientOptions, Reply};
#[cfg(feature = "remote-store")]
pub use remote_store::RemoteStore;
pub use url::{BadServerUrl, ServerUrl};

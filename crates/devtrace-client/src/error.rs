//! What went wrong talking to a server, worded for the person who ran the command: every
//! message names the server and says what to do (start it, fix the port, trust its
//! certificate, pass a token, upgrade it).

/// A failed request. `Display` is the whole message.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No HTTP answer: refused, unresolvable, timed out, TLS failed, cut off.
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// The server answered with an error status; `message` is its words and the fix.
    #[error("{server}{path} answered {status}: {message}")]
    Status {
        server: String,
        path: String,
        status: u16,
        message: String,
    },
    /// A success whose body this version cannot read.
    #[error(
        "{server}{path} sent an answer this devtrace cannot read ({message}); is --server the API address of a devtrace server of this version ({})?",
        env!("CARGO_PKG_VERSION")
    )]
    Answer {
        server: String,
        path: String,
        message: String,
    },
    /// The client could not be set up (an unreadable `--ca-cert`).
    #[error("{0}")]
    Setup(String),
}

impl ClientError {
    /// Whether the server was not reached at all (no HTTP status).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }

    /// The HTTP status the server answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Why a request got no answer, from ureq's error, with the fix.
pub(crate) fn unreachable_reason(error: &ureq::Error, https: bool, host: &str) -> String {
    match error {
        ureq::Error::Io(io) => io_reason(io, https, host),
        ureq::Error::Rustls(tls) => tls_reason(tls, host),
        ureq::Error::Tls(what) => format!("TLS failed: {what}"),
        ureq::Error::HostNotFound => format!(
            "the host name {host:?} does not resolve: check the host in --server (or DEVTRACE_SERVER)"
        ),
        ureq::Error::Timeout(phase) => {
            format!("no answer in time ({phase}); is the server overloaded, or the address a firewall drops?")
        }
        ureq::Error::Protocol(_) if !https => {
            "it did not answer in HTTP: if it serves https, write https:// in --server".into()
        }
        ureq::Error::ConnectionFailed => {
            "the connection failed: is `devtrace serve` running there, and is the port right (its API is on 4319 by default)?".into()
        }
        other => other.to_string(),
    }
}

fn io_reason(io: &std::io::Error, https: bool, host: &str) -> String {
    use std::io::ErrorKind;
    if let Some(tls) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return tls_reason(tls, host);
    }
    match io.kind() {
        ErrorKind::ConnectionRefused => "connection refused: is `devtrace serve` running there, and is the port right (its API is on 4319 by default)?".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "no answer in time: is the address right, or does a firewall drop it?".into(),
        ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::ConnectionAborted if https => format!(
            "the connection was closed during TLS ({io}): is the server speaking plain HTTP? then use http://"
        ),
        _ => io.to_string(),
    }
}

/// The certificate problem in words, and how to trust the server.
fn tls_reason(error: &rustls::Error, host: &str) -> String {
    use rustls::{CertificateError, Error};
    const TRUST: &str = "if the server's certificate is self-signed or from a private CA, trust it with --ca-cert FILE (or DEVTRACE_CA_CERT)";
    let problem = match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is signed by an authority this machine does not trust"
                .to_owned()
        }
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            return format!(
                "TLS failed: the server's certificate is not valid for the name {host:?}: connect by a name the certificate lists"
            );
        }
        Error::InvalidCertificate(CertificateError::Expired)
        | Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            return "TLS failed: the server's certificate has expired: renew it (serve --tls-cert)"
                .into();
        }
        Error::InvalidMessage(_) => {
            return "TLS failed: the server did not answer in TLS: is it plain HTTP? then use http://".into();
        }
        Error::InvalidCertificate(why) => {
            // rustls words the rest as a debug dump; its variant's name is the useful part.
            let why = format!("{why:?}");
            let name = why.split(['(', ' ', '{']).next().unwrap_or(&why);
            format!("the server's certificate is not trusted here ({name})")
        }
        other => format!("{other}"),
    };
    format!("TLS failed: {problem}; {TRUST}")
}

/// The message of an error status: the server's own words (its JSON `error`), then the fix
/// for the statuses a user can do something about.
pub(crate) fn status_message(status: u16, body: &[u8], had_token: bool) -> String {
    let said = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    let text = said.clone().unwrap_or_else(|| {
        String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_owned()
    });
    let fix = match status {
        401 if had_token => "the token was not accepted: check --token (or DEVTRACE_TOKEN); `devtrace token create` on the server's store makes one".to_owned(),
        401 => "this server needs a token: pass one with --token (or DEVTRACE_TOKEN)".to_owned(),
        404 if said.as_deref().is_none_or(|s| s.starts_with("no such endpoint")) => format!(
            "the server has no such endpoint: it may be an older devtrace than this one ({}), so upgrade it; or --server is not its API port (4319 by default)",
            env!("CARGO_PKG_VERSION")
        ),
        _ => return if text.is_empty() { "(no message)".into() } else { text },
    };
    if text.is_empty() {
        fix
    } else {
        format!("{text}; {fix}")
    }
}

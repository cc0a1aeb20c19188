//! Which certificates an `https://` server may present: the system's roots (as every
//! devtrace release since the first TLS client trusted) plus the PEM file of `--ca-cert`, for
//! a server with a self-signed certificate or a private CA.

use crate::error::ClientError;
use std::path::Path;
use std::sync::Arc;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// The TLS settings of every request: rustls, verifying against the system's roots and the
/// certificates in `ca_cert`. An unreadable or malformed `ca_cert` is an error naming it.
pub fn tls_config(ca_cert: Option<&Path>) -> Result<TlsConfig, ClientError> {
    let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(path) = ca_cert {
        roots.extend(ca_file(path)?);
    }
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build())
}

/// The certificates of a PEM file; none at all is an error (the wrong file was given).
fn ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, ClientError> {
    let setup = |why: String| ClientError::Setup(format!("--ca-cert {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| setup(format!("cannot read it: {e}")))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certificates.push(cert.to_owned()),
            Ok(_) => {}
            Err(e) => return Err(setup(format!("not a PEM certificate: {e}"))),
        }
    }
    if certificates.is_empty() {
        return Err(setup(
            "holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)".into(),
        ));
    }
    Ok(certificates)
}

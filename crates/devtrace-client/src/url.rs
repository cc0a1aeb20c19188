//! A server's address as the user gives it (`--server https://traces.example:4319`, an OTLP
//! endpoint): checked once, so every request is built from a known scheme, host and port.

/// Why a URL is not a server address; the text is the usage error every `--server` command
/// gives (the CLI reports it as a usage error, exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadServerUrl(pub String);

/// `http(s)://HOST[:PORT][/PREFIX]`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// Scheme, authority and path prefix: what request paths are appended to.
    base: String,
    https: bool,
    host: String,
    port: u16,
}

impl ServerUrl {
    /// Checks `url`; the error names the flag it came from (`--server`).
    pub fn parse(url: &str) -> Result<Self, BadServerUrl> {
        let trimmed = url.trim().trim_end_matches('/');
        let (https, rest) = if let Some(rest) = trimmed.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = trimmed.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(BadServerUrl(format!(
                "--server {url:?} is not a URL: write http://HOST:PORT or https://HOST:PORT (the server's API port, 4319 by default)"
            )));
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port.parse().map_err(|_| {
                    BadServerUrl(format!("--server {url:?}: {port:?} is not a port"))
                })?,
            ),
            _ => (authority.to_owned(), if https { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(BadServerUrl(format!(
                "--server {url:?} names no host: write http://HOST:PORT or https://HOST:PORT"
            )));
        }
        Ok(Self {
            base: trimmed.to_owned(),
            https,
            host,
            port,
        })
    }

    /// The URL without a trailing slash, as messages show it.
    pub fn as_str(&self) -> &str {
        &self.base
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_name_a_host_and_port() {
        let s = ServerUrl::parse("http://127.0.0.1:4319/").unwrap();
        assert_eq!(
            (s.host(), s.port(), s.is_https(), s.as_str()),
            ("127.0.0.1", 4319, false, "http://127.0.0.1:4319")
        );
        let s = ServerUrl::parse("http://[::1]:9000").unwrap();
        assert_eq!((s.host(), s.port()), ("::1", 9000));
        let s = ServerUrl::parse("https://traces.example/devtrace").unwrap();
        assert_eq!(
            (s.host(), s.port(), s.join("/api/v1/health")),
            (
                "traces.example",
                443,
                "https://traces.example/devtrace/api/v1/health".to_owned()
            )
        );
        let error = ServerUrl::parse("traces.example:4319").unwrap_err();
        assert!(error.0.contains("write http://HOST:PORT"), "{error}");
        assert_eq!(
            ServerUrl::parse("http://127.0.0.1:port").unwrap_err().0,
            "--server \"http://127.0.0.1:port\": \"port\" is not a port"
        );
        assert!(ServerUrl::parse("http://").is_err());
    }
}

//! The ClickHouse HTTP interface, as any server speaks it: statements in the body (or the
//! `query` parameter followed by an INSERT's data), `database`, settings and `param_*` values
//! as URL parameters, the user in `X-ClickHouse-User`/`X-ClickHouse-Key`. Synchronous (`ureq`),
//! as the [`Store`](crate::Store) trait is.
//!
//! Errors keep the server's exception code, and the ones a person can fix say how.

use crate::{Result, StoreError};
use std::time::Duration;

/// Where the server is and how devtrace talks to it, from a `clickhouse://` URL.
#[derive(Clone)]
pub(crate) struct Server {
    agent: ureq::Agent,
    /// `http://HOST:PORT/` or `https://…`.
    endpoint: String,
    user: String,
    password: String,
    pub(crate) database: String,
    /// `?cluster=NAME`: the tables are made `ON CLUSTER`, replicated and distributed.
    pub(crate) cluster: Option<String>,
    /// `?ttl_days=N`: telemetry older than N days is dropped by the tables' TTL, a ceiling
    /// above each project's retention.
    pub(crate) ttl_days: Option<u32>,
    /// URL parameters other than devtrace's own: ClickHouse settings sent with every request.
    settings: Vec<(String, String)>,
    /// The URL without its password, for messages.
    pub(crate) target: String,
}

/// The HTTP port when the URL names none: ClickHouse's defaults.
const HTTP_PORT: u16 = 8123;
const HTTPS_PORT: u16 = 8443;

/// The zstd level of insert bodies: the fastest, which already shrinks the rows several times
/// (docs/PERFORMANCE.md); the server stores them with the columns' own codecs.
const INSERT_ZSTD_LEVEL: i32 = 1;

/// A request's body, as sent.
#[derive(Clone, Copy)]
enum Body<'a> {
    Plain(&'a [u8]),
    Zstd(&'a [u8]),
}

/// How long one request may take when the URL sets no `timeout` (seconds).
const DEFAULT_TIMEOUT: u64 = 60;

/// The largest answer read (the reads are bounded by LIMITs; this bounds a mistake).
const MAX_ANSWER: u64 = 1 << 30;

/// A server's error: its exception code (0 when it sent none) and message.
#[derive(Debug)]
pub(crate) struct ServerError {
    pub(crate) code: u32,
    pub(crate) message: String,
}

/// Exception codes devtrace reacts to.
pub(crate) const UNKNOWN_DATABASE: u32 = 81;
const AUTHENTICATION_FAILED: u32 = 516;
const REQUIRED_PASSWORD: u32 = 194;
const ACCESS_DENIED: u32 = 497;

impl Server {
    /// `clickhouse://USER@HOST:PORT/DATABASE?SETTING=VALUE&timeout=SECONDS&ttl_days=DAYS`, `:PASSWORD` after USER
    /// (`clickhouses://` for TLS).
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let target = super::url_without_password(url);
        let invalid = |why: &str| StoreError::Unreachable {
            target: target.clone(),
            message: format!(
                "not a valid ClickHouse URL ({why}); write clickhouse://USER@HOST:8123/DATABASE, with :PASSWORD after USER (clickhouses:// and port 8443 for TLS)"
            ),
        };
        let (scheme, rest) = url
            .trim()
            .split_once("://")
            .ok_or_else(|| invalid("no scheme"))?;
        let (http, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "clickhouse" => ("http", HTTP_PORT),
            "clickhouses" => ("https", HTTPS_PORT),
            _ => return Err(invalid("the scheme is not clickhouse or clickhouses")),
        };
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = location.split_once('/').unwrap_or((location, ""));
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let (user, password) = match credentials {
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (decode(u), decode(p)),
                None => (decode(c), String::new()),
            },
            None => ("default".to_owned(), String::new()),
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let host_port = if host.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']')) {
            let (_, port) = host.rsplit_once(':').expect("checked");
            port.parse::<u16>()
                .map_err(|_| invalid("the port is not a number"))?;
            host.to_owned()
        } else {
            format!("{host}:{default_port}")
        };
        let database = decode(path.trim_end_matches('/'));
        let database = if database.is_empty() {
            "devtrace".to_owned()
        } else {
            database
        };
        if !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid(
                "the database name may hold only letters, digits and _",
            ));
        }
        let mut timeout = DEFAULT_TIMEOUT;
        let mut cluster = None;
        let mut ttl_days = None;
        let mut settings = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name), decode(value));
            if name == "timeout" {
                timeout = value
                    .parse()
                    .map_err(|_| invalid("timeout is not a number of seconds"))?;
            } else if name == "ttl_days" {
                ttl_days = Some(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|days| (1..=36_500).contains(days))
                        .ok_or_else(|| {
                            invalid(&format!(
                                "ttl_days={value} is not a whole number of days from 1 to 36500"
                            ))
                        })?,
                );
            } else if name == "cluster" {
                if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(invalid(
                        "the cluster name may hold only letters, digits and _",
                    ));
                }
                cluster = Some(value);
            } else {
                settings.push((name, value));
            }
        }
        // The server stops a statement at the same bound the client waits (unless the URL
        // sets its own), so a slow query does not run on after devtrace gave up on it.
        if !settings
            .iter()
            .any(|(name, _)| name == "max_execution_time")
        {
            settings.push(("max_execution_time".to_owned(), timeout.to_string()));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(timeout)))
            .timeout_connect(Some(Duration::from_secs(timeout.min(10))))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            agent,
            endpoint: format!("{http}://{host_port}/"),
            user,
            password,
            database,
            cluster,
            ttl_days,
            settings,
            target,
        })
    }

    /// Runs `sql` (its text in the body) in devtrace's database, with `params` as its
    /// `{name:Type}` values; the answer's bytes.
    pub(crate) fn query(&self, sql: &str, params: &[(&str, String)]) -> Result<Vec<u8>> {
        self.request(
            None,
            Body::Plain(sql.as_bytes()),
            params,
            &[],
            Some(&self.database),
        )
        .map_err(|e| self.error(e))
    }

    /// Runs `sql` in `database` with `settings` for this request only (beside the URL's own),
    /// keeping the server's error for the caller to judge: the SQL tool's requests.
    pub(crate) fn query_with_settings(
        &self,
        sql: &str,
        database: &str,
        settings: &[(&str, String)],
    ) -> std::result::Result<Vec<u8>, ServerError> {
        self.request(
            None,
            Body::Plain(sql.as_bytes()),
            &[],
            settings,
            Some(database),
        )
    }

    /// Like [`Server::query`] but outside any database (creating devtrace's), and keeping the
    /// server's error for the caller to judge.
    pub(crate) fn query_raw(
        &self,
        sql: &str,
        database: Option<&str>,
    ) -> std::result::Result<Vec<u8>, ServerError> {
        self.request(None, Body::Plain(sql.as_bytes()), &[], &[], database)
    }

    /// `INSERT INTO table (columns) FORMAT RowBinary` with `rows` as its data, sent
    /// zstd-compressed (`Content-Encoding: zstd`, which the server decodes without any
    /// setting): done when the server answered that it stored them.
    pub(crate) fn insert(
        &self,
        table: &str,
        columns: &str,
        rows: &super::rowbinary::Rows,
    ) -> Result<()> {
        if rows.count == 0 {
            return Ok(());
        }
        let statement = format!("INSERT INTO {table} ({columns}) FORMAT RowBinary");
        let compressed = zstd::bulk::compress(&rows.bytes, INSERT_ZSTD_LEVEL)
            .map_err(|e| StoreError::Database(format!("compressing an insert: {e}")))?;
        self.request(
            Some(&statement),
            Body::Zstd(&compressed),
            &[],
            &[],
            Some(&self.database),
        )
        .map(drop)
        .map_err(|e| self.error(e))
    }

    fn request(
        &self,
        statement: Option<&str>,
        body: Body<'_>,
        params: &[(&str, String)],
        settings: &[(&str, String)],
        database: Option<&str>,
    ) -> std::result::Result<Vec<u8>, ServerError> {
        let mut url = self.endpoint.clone();
        let mut separator = '?';
        let mut add = |url: &mut String, name: &str, value: &str| {
            url.push(separator);
            separator = '&';
            url.push_str(&encode(name));
            url.push('=');
            url.push_str(&encode(value));
        };
        if let Some(statement) = statement {
            add(&mut url, "query", statement);
        }
        if let Some(database) = database {
            add(&mut url, "database", database);
        }
        for (name, value) in &self.settings {
            add(&mut url, name, value);
        }
        for (name, value) in settings {
            add(&mut url, name, value);
        }
        for (name, value) in params {
            add(&mut url, &format!("param_{name}"), value);
        }
        let started = std::time::Instant::now();
        let post = self
            .agent
            .post(&url)
            .header("X-ClickHouse-User", &self.user)
            .header("X-ClickHouse-Key", &self.password);
        let sent = match body {
            Body::Plain(bytes) => post.send(bytes),
            Body::Zstd(bytes) => post.header("Content-Encoding", "zstd").send(bytes),
        };
        let mut response = sent.map_err(|e| ServerError {
            code: 0,
            message: crate::error_chain(&e),
        })?;
        let status = response.status().as_u16();
        // The server's own time for the statement (`X-ClickHouse-Summary`), logged apart from
        // the round trip so a slow answer can be placed: server or network and client.
        let server_elapsed_ns = response
            .headers()
            .get("X-ClickHouse-Summary")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
            .and_then(|v| v["elapsed_ns"].as_str().and_then(|n| n.parse::<u64>().ok()));
        tracing::debug!(
            server_ms = server_elapsed_ns.map(|ns| ns as f64 / 1e6),
            round_trip_ms = started.elapsed().as_secs_f64() * 1e3,
            statement = statement.unwrap_or("(in the body)"),
            "ClickHouse answered"
        );
        let code = response
            .headers()
            .get("X-ClickHouse-Exception-Code")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| ServerError {
                code: 0,
                message: format!("reading the answer: {e}"),
            })?;
        if status == 200 && code.is_none() {
            return Ok(bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        Err(ServerError {
            code: code.unwrap_or(0),
            message: format!("HTTP {status}: {}", text.trim()),
        })
    }

    /// A server error as the store error a person can act on.
    pub(crate) fn error(&self, error: ServerError) -> StoreError {
        let target = self.target.clone();
        match error.code {
            0 if !error.message.starts_with("HTTP ") => StoreError::Unreachable {
                target,
                message: error.message,
            },
            AUTHENTICATION_FAILED | REQUIRED_PASSWORD => StoreError::Unreachable {
                target,
                message: format!(
                    "ClickHouse refused user {} (wrong password, or no such user): give the user and password in the URL, clickhouse://USER@HOST:PORT/DATABASE with :PASSWORD after USER ({})",
                    self.user, error.message
                ),
            },
            ACCESS_DENIED => StoreError::Database(format!(
                "ClickHouse denied user {} a statement devtrace needs: grant it CREATE, INSERT, SELECT, ALTER DELETE on {}.* ({})",
                self.user, self.database, error.message
            )),
            UNKNOWN_DATABASE => StoreError::Database(format!(
                "the database {} does not exist and devtrace could not create it: create it (CREATE DATABASE {}) or name another in the URL ({})",
                self.database, self.database, error.message
            )),
            _ => StoreError::Database(format!("ClickHouse: {}", error.message)),
        }
    }
}

/// Percent-encodes a URL parameter.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-decodes a part of the URL (user, password, database, settings).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(value)) => {
                out.push(value);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An insert goes out zstd-compressed, saying so in `Content-Encoding`, and decodes to
    /// the rows given. (Read off the wire by a bare listener: what the server receives.
    /// The conformance suite shows the engine storing such inserts.)
    #[test]
    fn inserts_are_sent_zstd_compressed() {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                headers.push(line.trim().to_ascii_lowercase());
            }
            let length: usize = headers
                .iter()
                .find_map(|h| h.strip_prefix("content-length: "))
                .expect("a content length")
                .parse()
                .unwrap();
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            (&stream)
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            (headers, body)
        });
        let server = Server::parse(&format!("clickhouse://u@127.0.0.1:{port}/d")).unwrap();
        let mut rows = super::super::rowbinary::Rows::default();
        for i in 0..1000u64 {
            rows.row().u64(i).str("GET /api/orders/{id}");
        }
        server.insert("spans", "a, b", &rows).unwrap();
        let (headers, body) = received.join().unwrap();
        assert!(
            headers.contains(&"content-encoding: zstd".to_owned()),
            "{headers:?}"
        );
        assert!(
            headers[0].contains("insert%20into%20spans"),
            "{}",
            headers[0]
        );
        assert!(
            body.len() * 4 < rows.bytes.len(),
            "{} of {} bytes",
            body.len(),
            rows.bytes.len()
        );
        assert_eq!(zstd::decode_all(&body[..]).unwrap(), rows.bytes);
    }

    #[test]
    fn urls_name_the_server_user_database_and_settings() {
        let url = [
            "clickhouses://dev:p%40ss",
            "@ch.example:9443/traces?async_insert=1&timeout=5",
        ]
        .concat();
        let server = Server::parse(&url).unwrap();
        assert_eq!(server.endpoint, "https://ch.example:9443/");
        assert_eq!(
            (server.user.as_str(), server.password.as_str()),
            ("dev", "p@ss")
        );
        assert_eq!(server.database, "traces");
        assert_eq!(
            server.settings,
            [
                ("async_insert".to_owned(), "1".to_owned()),
                ("max_execution_time".to_owned(), "5".to_owned())
            ]
        );
        assert_eq!(
            server.target,
            "clickhouses://dev@ch.example:9443/traces?async_insert=1&timeout=5"
        );
        let plain = Server::parse("clickhouse://ch").unwrap();
        assert_eq!(plain.endpoint, "http://ch:8123/");
        assert_eq!(plain.cluster, None);
        let clustered = Server::parse("clickhouse://ch/d?cluster=traces&max_threads=2").unwrap();
        assert_eq!(clustered.cluster.as_deref(), Some("traces"));
        assert_eq!(plain.ttl_days, None);
        let aged = Server::parse("clickhouse://ch/d?ttl_days=30").unwrap();
        assert_eq!(aged.ttl_days, Some(30));
        assert!(aged.settings.iter().all(|(name, _)| name != "ttl_days"));
        assert_eq!(
            clustered.settings,
            [
                ("max_threads".to_owned(), "2".to_owned()),
                ("max_execution_time".to_owned(), "60".to_owned())
            ]
        );
        assert_eq!(
            (plain.user.as_str(), plain.database.as_str()),
            ("default", "devtrace")
        );
        for (bad, why) in [
            ("clickhouse://ch:port/x", "the port is not a number"),
            ("clickhouse://ch/my-db", "letters, digits and _"),
            ("clickhouse://ch/x?timeout=soon", "timeout"),
            ("clickhouse://ch/x?cluster=a;b", "cluster name"),
            (
                "clickhouse://ch/x?ttl_days=0",
                "ttl_days=0 is not a whole number of days from 1 to 36500",
            ),
            (
                "clickhouse://ch/x?ttl_days=a%20week",
                "ttl_days=a week is not",
            ),
        ] {
            let error = Server::parse(bad).err().unwrap().to_string();
            assert!(
                error.contains(why)
                    && error.contains(
                        "clickhouse://USER@HOST:8123/DATABASE, with :PASSWORD after USER"
                    ),
                "{error}"
            );
        }
    }
}

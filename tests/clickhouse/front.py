"""A thin HTTP front on chDB: the real ClickHouse engine (PyPI's chdb-core), in process.

devtrace's ClickHouse backend speaks the ClickHouse HTTP interface. No current ClickHouse
server installs on the test machines, so the tests run the engine itself (chdb-core) behind
this front, which does what the server's HTTP handler does and nothing more:

- the statement is the `query` URL parameter followed by the request body (a newline
  between), as the server reads it: an INSERT's data follows its `FORMAT` clause (when the
  `query` parameter ends with `FORMAT name` and a body comes with it, the body goes to the
  engine's streaming insert as data of that format: chDB's one-string path lexes inline data
  for statement separators and misreads binary rows);
- `database` is the current database (`USE`), `param_NAME` are the query parameters
  (`{NAME:Type}`), and every other URL parameter that is not one of the server's own
  (`default_format`, `query_id`, …) is a setting, applied with `SET` for this request only
  (`readonly` last, as a server checks a request's settings before applying them; a session
  left read-only by it is replaced by a fresh connection, as it cannot leave that mode);
- a zstd-, gzip- or deflate-encoded body (`Content-Encoding`, as devtrace sends inserts) is
  decoded, as the server decodes it;
- the engine's output is the response body; an engine error becomes the status the server
  sends for its code, with the `X-ClickHouse-Exception-Code` header and the message as body.

It interprets no SQL (beyond finding that closing `FORMAT name`). chDB runs one statement at a time per process, so requests are
served one after another (a lock around the engine): concurrent clients queue here where a
server would run them in parallel.

The user and password are checked the way a server with one user would (HTTP basic auth,
`X-ClickHouse-User`/`X-ClickHouse-Key` or `user`/`password` parameters; a mismatch is code 516,
status 401). That is the front's stand-in: the server's own auth is not tested here.

    python front.py --data DIR --port PORT [--user U --password P]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import re
import signal
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import chdb
import zstandard

# URL parameters the server reads itself; every other one is a setting.
SERVER_PARAMETERS = {
    "query",
    "database",
    "default_format",
    "user",
    "password",
    "quota_key",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "compress",
    "decompress",
    "buffer_size",
    "wait_end_of_query",
    "stacktrace",
    "role",
}

# The HTTP status the server sends for an exception code (ClickHouse's
# exceptionCodeToHTTPStatus); anything else is 500.
STATUS_OF_CODE = {
    516: 401,  # AUTHENTICATION_FAILED
    194: 401,  # REQUIRED_PASSWORD
    497: 403,  # ACCESS_DENIED
    164: 403,  # READONLY
    62: 400,  # SYNTAX_ERROR
    27: 400,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    6: 400,  # CANNOT_PARSE_TEXT
    26: 400,  # CANNOT_PARSE_QUOTED_STRING
    38: 400,  # CANNOT_PARSE_DATE
    41: 400,  # CANNOT_PARSE_DATETIME
    69: 400,  # ARGUMENT_OUT_OF_BOUND
    70: 400,  # CANNOT_CONVERT_TYPE
    72: 400,  # CANNOT_PARSE_NUMBER
    43: 400,  # ILLEGAL_TYPE_OF_ARGUMENT
    47: 400,  # UNKNOWN_IDENTIFIER
    46: 400,  # UNKNOWN_FUNCTION
    53: 400,  # TYPE_MISMATCH
    60: 404,  # UNKNOWN_TABLE
    81: 404,  # UNKNOWN_DATABASE
    16: 404,  # NO_SUCH_COLUMN_IN_TABLE
    115: 404,  # UNKNOWN_SETTING
    159: 500,  # TIMEOUT_EXCEEDED
    241: 500,  # MEMORY_LIMIT_EXCEEDED
}

CODE = re.compile(rb"Code: (\d+)\.")
# The `FORMAT name` that closes an INSERT whose data is the request body.
TRAILING_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*$", re.IGNORECASE)


class Engine:
    """One chDB connection on a data directory; one statement at a time."""

    def __init__(self, data: str) -> None:
        self.data = data
        self.connection = chdb.connect(data)
        self.lock = threading.Lock()
        # Seconds spent inside the engine, for the benchmark's account of the front's cost.
        self.engine_seconds = 0.0
        self.requests = 0
        # Request bodies as received and as decoded, by Content-Encoding (the benchmark's
        # account of what compressed inserts save on the wire).
        self.bodies: dict[str, dict[str, int]] = {}
        self.bodies_lock = threading.Lock()
        # The last requests' statements (their start) and engine milliseconds, for the
        # benchmark's breakdown of one command.
        self.recent: list[tuple[str, float]] = []

    def run(self, database: str, settings: list[tuple[str, str]], params: dict[str, str],
            statement: bytes | tuple[str, str, bytes], output_format: str) -> tuple[bytes, float]:
        """The statement's output, and the seconds the engine took (lock wait excluded)."""
        with self.lock:
            started = time.perf_counter()
            conn = self.connection._conn
            try:
                conn.query(f"USE {quote_identifier(database)}", "TSV", params={})
                # A server checks a request's settings against the user's profile before it
                # applies any, so `readonly` in the URL does not refuse the settings beside it:
                # applied last here for the same effect.
                settings = sorted(settings, key=lambda setting: setting[0] == "readonly")
                for name, value in settings:
                    conn.query(f"SET {quote_identifier(name)} = {quote_literal(value)}", "TSV",
                               params={})
                try:
                    if isinstance(statement, tuple):
                        insert, data_format, data = statement
                        inserter = self.connection.send_insert(insert, data_format)
                        inserter.append(data)
                        inserter.finish()
                        return b"", time.perf_counter() - started
                    output = conn.query(statement, output_format, params=params).bytes()
                    return output, time.perf_counter() - started
                finally:
                    if any(name == "readonly" for name, _ in settings):
                        # On a server a URL's settings last one request; a session in readonly
                        # mode cannot leave it, so the next request gets a fresh connection.
                        self.connection.close()
                        self.connection = chdb.connect(self.data)
                    else:
                        for name, _ in settings:
                            conn.query(f"SET {quote_identifier(name)} = DEFAULT", "TSV", params={})
            finally:
                elapsed = time.perf_counter() - started
                self.engine_seconds += elapsed
                self.requests += 1
                shown = statement[0] if isinstance(statement, tuple) else statement.decode(errors="replace")
                self.recent = self.recent[-49:] + [(" ".join(shown.split())[:90], round(elapsed * 1000, 1))]


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Front(BaseHTTPRequestHandler):
    engine: Engine
    credentials: tuple[str, str] | None
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.handle_request(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "zstd":
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        elif encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity"):
            self.send_error_text(415, 0, f"Unsupported Content-Encoding {encoding}")
            return
        with self.engine.bodies_lock:
            account = self.engine.bodies.setdefault(encoding or "identity",
                                                    {"requests": 0, "received": 0, "decoded": 0})
            account["requests"] += 1
            account["received"] += length
            account["decoded"] += len(body)
        self.handle_request(body)

    def handle_request(self, body: bytes) -> None:
        url = urlsplit(self.path)
        # The front's own account, for the benchmark (not a ClickHouse endpoint; the client
        # never asks for it).
        if url.path == "/front-stats":
            stats = {"engine_seconds": self.engine.engine_seconds, "requests": self.engine.requests,
                     "bodies": self.engine.bodies, "recent": self.engine.recent}
            self.send_body(200, json.dumps(stats).encode())
            return
        # A GET of /ping, or of / with nothing to run, is the server's health check.
        if url.path == "/ping" or (url.path == "/" and not url.query and not body):
            self.send_body(200, b"Ok.\n")
            return
        parameters = parse_qsl(url.query, keep_blank_values=True)
        named = dict(parameters)
        if not self.authenticated(named):
            self.send_error_text(
                401, 516,
                "Code: 516. DB::Exception: default: Authentication failed: password is "
                "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)")
            return
        query = named.get("query", "")
        statement: bytes | tuple[str, str, bytes]
        data_format = TRAILING_FORMAT.search(query) if query and body else None
        if data_format:
            # The body is the data of the INSERT in `query`: handed to the engine's streaming
            # insert. (chDB's one-string path lexes inline data for statement separators and
            # misreads binary rows; the server streams the body.) The query's closing
            # `FORMAT name` is all the front reads of the SQL.
            statement = (query[: data_format.start()], data_format.group(1), body)
        else:
            statement = query.encode() + b"\n" + body if query and body else query.encode() or body
        if isinstance(statement, bytes) and not statement.strip():
            self.send_error_text(400, 62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
            return
        params = {k[len("param_"):]: v for k, v in parameters if k.startswith("param_")}
        settings = [(k, v) for k, v in parameters
                    if k not in SERVER_PARAMETERS and not k.startswith("param_")]
        database = self.headers.get("X-ClickHouse-Database") or named.get("database", "default")
        output_format = named.get("default_format") or self.headers.get(
            "X-ClickHouse-Format") or "TabSeparated"
        try:
            output, seconds = self.engine.run(database, settings, params, statement, output_format)
        except RuntimeError as error:
            message = str(error).encode()
            found = CODE.search(message)
            code = int(found.group(1)) if found else 0
            self.send_error_text(STATUS_OF_CODE.get(code, 500), code, message.decode())
            return
        # The server reports a query's time in this header too (the engine's, here: waiting for
        # the lock not included); the benchmark sets it apart from the front's own cost.
        elapsed_ns = int(seconds * 1e9)
        self.send_body(200, output, {"X-ClickHouse-Summary": json.dumps({"elapsed_ns": str(elapsed_ns)})})

    def authenticated(self, named: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        user, password = "default", ""
        header = self.headers.get("Authorization") or ""
        if header.lower().startswith("basic "):
            decoded = base64.b64decode(header[6:]).decode()
            user, _, password = decoded.partition(":")
        elif self.headers.get("X-ClickHouse-User"):
            user = self.headers["X-ClickHouse-User"]
            password = self.headers.get("X-ClickHouse-Key") or ""
        elif "user" in named:
            user, password = named["user"], named.get("password", "")
        return (user, password) == self.credentials

    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Server-Display-Name", "chdb-front")
        self.end_headers()
        self.wfile.write(body)

    def send_error_text(self, status: int, code: int, message: str) -> None:
        body = (message.rstrip("\n") + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Exception-Code", str(code))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the engine's data directory")
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default="")
    arguments = parser.parse_args()
    Front.engine = Engine(arguments.data)
    Front.credentials = (arguments.user, arguments.password) if arguments.user else None
    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), Front)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on 127.0.0.1:{arguments.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        print(f"engine time: {Front.engine.engine_seconds:.3f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()

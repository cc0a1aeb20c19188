//! Real git repositories, real sessions in a real store, real runners.
#![allow(dead_code)]

use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::trace_v1;
use devtrace_model::TraceId;
use devtrace_qa::result::QaResult;
use devtrace_qa::{DirectSink, QaContext, QaOptions};
use devtrace_store::qa::QaJob;
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::{Store, StoreWriter, prepare_session};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A git repository built by the test.
pub struct Repo {
    pub path: PathBuf,
}

impl Repo {
    pub fn new(path: &Path, files: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(path).unwrap();
        git(path, &["init", "--quiet", "--initial-branch=main"]);
        let repo = Self {
            path: path.to_owned(),
        };
        repo.commit(files, "initial");
        repo
    }

    fn write(&self, files: &[(&str, &str)]) {
        for (name, content) in files {
            let file = self.path.join(name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
    }

    /// Commits `files`; returns the commit id.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        self.write(files);
        git(&self.path, &["add", "-A"]);
        git(&self.path, &["commit", "--quiet", "-m", message]);
        git(&self.path, &["rev-parse", "HEAD"])
    }

    /// The diff that would make `files` what they are given as, leaving the repository as it was.
    pub fn diff_for(&self, files: &[(&str, &str)]) -> String {
        self.write(files);
        git(&self.path, &["add", "-A"]);
        let diff = git(&self.path, &["diff", "--cached"]);
        git(&self.path, &["reset", "--quiet", "--hard"]);
        format!("{diff}\n")
    }
}

/// A small node project with a failing test: `total` starts its sum at 1.
pub const CART: &str = "function total(items) {\n  return items.reduce((sum, item) => sum + item.price, 1);\n}\n\nfunction count(items) {\n  return items.length;\n}\n\nmodule.exports = { total, count };\n";
pub const CART_FIXED: &str = "function total(items) {\n  return items.reduce((sum, item) => sum + item.price, 0);\n}\n\nfunction count(items) {\n  return items.length;\n}\n\nmodule.exports = { total, count };\n";
pub const CART_BROKEN: &str = "function total(items) {\n  return items.reduce((sum, item) => sum + item.price, 0);\n}\n\nfunction count(items) {\n  return items.length + 1;\n}\n\nmodule.exports = { total, count };\n";
pub const CART_TEST: &str = "const test = require('node:test');\nconst assert = require('node:assert');\nconst { total, count } = require('../cart.js');\n\ntest('total sums prices', () => {\n  assert.strictEqual(total([{ price: 2 }, { price: 3 }]), 5);\n});\n\ntest('count counts items', () => {\n  assert.strictEqual(count([{ price: 2 }]), 1);\n});\n";

pub fn cart_repo(path: &Path) -> (Repo, String) {
    let repo = Repo::new(path, &[("cart.js", CART), ("test/cart.test.js", CART_TEST)]);
    let head = git(&repo.path, &["rev-parse", "HEAD"]);
    (repo, head)
}

/// A trace-1.0.0 document for a session on `repo` at `commit`.
pub fn document(id: &str, repository: &str, commit: &str, command: &str) -> Value {
    json!({
        "trace_id": id,
        "version": "trace-1.0.0",
        "created_at": "2026-01-05T10:00:00Z",
        "developer": {"name": "Ada", "experience_level": "senior"},
        "task": {
            "description": "Fix the cart total",
            "repository": repository,
            "branch": "main",
            "commit": commit,
            "test_command": command
        },
        "events": [
            {"t": "2026-01-05T10:00:01Z", "type": "terminal_command", "cmd": "node", "args": ["--test"], "exit_code": 1, "duration_ms": 300, "stdout": "not ok 1 - total sums prices\n"},
            {"t": "2026-01-05T10:00:05Z", "type": "file_opened", "file_path": "cart.js"},
            {"t": "2026-01-05T10:00:09Z", "type": "thought", "raw": "the sum starts at 1 instead of 0"},
            {"t": "2026-01-05T10:00:20Z", "type": "edit", "file_path": "cart.js"},
            {"t": "2026-01-05T10:00:30Z", "type": "terminal_command", "cmd": "node", "args": ["--test"], "exit_code": 0, "duration_ms": 300, "stdout": "ok 1 - total sums prices\n"}
        ]
    })
}

pub fn with_patch(mut doc: Value, patch: &str) -> Value {
    doc["artifacts"] = json!({"final_patch": patch});
    doc
}

pub fn require_bwrap() {
    assert!(
        devtrace_qa::runner::on_path("bwrap").is_some(),
        "the sandbox tests need bubblewrap: apt-get install bubblewrap (scripts/test installs it)"
    );
}

/// A store in a temporary data directory and a QA context over it.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub store: Arc<SqliteStore>,
    pub writer: Arc<DirectSink>,
    pub ctx: QaContext,
}

impl Harness {
    pub fn new() -> Self {
        // Not under /tmp: the sandbox gives test commands a private /tmp, and these tests put
        // files beside the store that the sandboxed tests must see (read-only).
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let data = dir.path().join("data");
        let writer = SqliteWriter::open(&data).unwrap();
        let store = Arc::new(SqliteStore::open(&data).unwrap());
        let sink = Arc::new(DirectSink(Mutex::new(
            Box::new(writer) as Box<dyn StoreWriter>
        )));
        let ctx = QaContext::in_data_dir(
            &data,
            Arc::clone(&store) as Arc<dyn Store>,
            Arc::clone(&sink) as Arc<dyn devtrace_qa::ResultSink>,
            Arc::new(Redactor::builtin()),
            None,
        );
        Self {
            dir,
            data,
            store,
            writer: sink,
            ctx,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stores a trace-1.0.0 document as the REST API and `devtrace import` do.
    pub fn import(&self, doc: Value) -> TraceId {
        let redactor = Arc::new(Redactor::builtin());
        let parsed = trace_v1::from_value(doc, &redactor).expect("a valid document");
        let output = trace_v1::to_spans(&parsed, redactor);
        use devtrace_qa::ResultSink;
        self.writer
            .write(prepare_session(output.spans, output.blobs))
            .unwrap();
        parsed.trace_id
    }

    /// Queues QA of `session` and runs it here; the job as it ended and its result.
    pub fn run(&self, session: TraceId, options: &QaOptions) -> (QaJob, QaResult) {
        let (job, created) =
            devtrace_qa::enqueue(self.store.as_ref(), session, options, None).unwrap();
        assert!(created);
        let job = devtrace_qa::worker::run_now(&self.ctx, job.id, Duration::from_secs(30)).unwrap();
        let result = serde_json::from_str(job.result.as_deref().expect("a result")).unwrap();
        (job, result)
    }
}

pub fn sandbox(timeout_secs: u64) -> QaOptions {
    QaOptions {
        timeout_secs,
        ..QaOptions::default()
    }
}

/// A session whose test command tries to get out of its runner: `test/net.test.js` connects
/// to the host's loopback port of `listener` and to an address on the internet;
/// `test/write.test.js` writes to a host path outside the checkout, next to the checkout, in
/// `/etc`, and (the one allowed) in the checkout. The patch changes only the README.
pub struct EscapeAttempt {
    pub session: TraceId,
    pub listener: std::net::TcpListener,
    /// The host file the test tries to write.
    pub escaped: PathBuf,
}

impl EscapeAttempt {
    /// The tests that must fail, sorted.
    pub const BLOCKED: [&str; 5] = [
        "reaches the host",
        "reaches the internet",
        "writes in /etc",
        "writes next to the checkout",
        "writes outside the checkout",
    ];

    pub fn new(h: &Harness, id: &str, test_image: Option<&str>) -> Self {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let outside = h.path("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let escaped = outside.join("escaped.txt");
        let net_test = format!(
            "const test = require('node:test');\nconst net = require('node:net');\n\n\
function connect(port, host) {{\n  return new Promise((resolve, reject) => {{\n    const socket = net.connect(port, host, () => {{ socket.end('hello'); resolve(); }});\n    socket.on('error', reject);\n  }});\n}}\n\n\
test('reaches the host', () => connect({port}, '127.0.0.1'));\n\n\
test('reaches the internet', () => connect(80, '93.184.215.14'));\n"
        );
        let write_test = format!(
            "const test = require('node:test');\nconst fs = require('node:fs');\nconst path = require('node:path');\n\n\
test('writes outside the checkout', () => {{\n  fs.writeFileSync({:?}, 'escaped');\n}});\n\n\
test('writes next to the checkout', () => {{\n  fs.writeFileSync(path.join(__dirname, '..', '..', 'sibling.txt'), 'escaped');\n}});\n\n\
test('writes in /etc', () => {{\n  fs.writeFileSync('/etc/devtrace-escaped.txt', 'escaped');\n}});\n\n\
test('writes in the checkout', () => {{\n  fs.writeFileSync(path.join(__dirname, 'inside.txt'), 'fine');\n}});\n",
            escaped.to_str().unwrap()
        );
        let repo = Repo::new(
            &h.path("escape"),
            &[
                ("test/net.test.js", &net_test),
                ("test/write.test.js", &write_test),
                ("README", "x\n"),
            ],
        );
        let head = git(&repo.path, &["rev-parse", "HEAD"]);
        let patch = repo.diff_for(&[("README", "y\n")]);
        let mut doc = with_patch(
            document(id, repo.path.to_str().unwrap(), &head, "node --test"),
            &patch,
        );
        if let Some(image) = test_image {
            doc["task"]["test_image"] = json!(image);
        }
        Self {
            session: h.import(doc),
            listener,
            escaped,
        }
    }

    /// Checks the job's result and the host: only the write in the checkout passed, nothing
    /// reached the listener, nothing was written outside. The patched run's output, for more.
    pub fn assert_blocked(&self, h: &Harness, job: &QaJob, result: &QaResult) -> String {
        assert_eq!(
            job.state,
            devtrace_store::qa::QaJobState::Done,
            "{:?}",
            job.error
        );
        let patched = result.patched.as_ref().unwrap();
        let tests = patched.tests.as_ref().unwrap();
        let mut failing = tests.failing.clone();
        failing.sort();
        assert_eq!(failing, Self::BLOCKED, "{}", patched.stdout.text);
        assert_eq!(
            tests
                .cases
                .get("writes in the checkout")
                .map(String::as_str),
            Some("passed")
        );
        assert!(
            self.listener.accept().is_err(),
            "nothing reached the host's listener"
        );
        assert!(!self.escaped.exists(), "nothing was written outside");
        let work = h.data.join("qa").join("work");
        assert!(!work.join("sibling.txt").exists());
        assert!(
            !std::fs::read_dir(&work).unwrap().any(|e| e
                .unwrap()
                .path()
                .join("sibling.txt")
                .exists())
        );
        patched.stdout.text.clone()
    }
}

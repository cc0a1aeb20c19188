//! The pipelines against a real SQLite store: a transcript imported in pieces (as it grows)
//! stores what one import of the whole file stores, and reads only what is new; a file
//! imported twice is stored once; a file with a bad document brings nothing.

use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::Agent;
use devtrace_intake::files::FileImporter;
use devtrace_intake::transcripts::{self, Report, Unwatched};
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::{Store, StoreWriter};
use std::path::Path;
use std::sync::Arc;

const TRANSCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../devtrace-ingest/tests/fixtures/sessions/claude_detectors.jsonl"
);
const OTLP_TRACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../devtrace-cli/tests/fixtures/otlp/trace.json"
);

fn import(data: &Path, root: &Path) -> Report {
    let mut writer = SqliteWriter::open(data).unwrap();
    let store = SqliteStore::open(data).unwrap();
    transcripts::import(
        &mut writer,
        &store,
        Agent::ClaudeCode,
        root,
        Arc::new(Redactor::builtin()),
        &mut Unwatched,
    )
    .unwrap()
}

/// Every stored span of the store's only session, as (span id, name, end), sorted.
fn session_spans(data: &Path, report: &Report) -> Vec<(String, String, u64)> {
    let store = SqliteStore::open(data).unwrap();
    let trace_id = *report.totals.sessions.iter().next().expect("a session");
    let mut spans: Vec<_> = store
        .get_trace(trace_id)
        .unwrap()
        .unwrap()
        .spans
        .spans
        .iter()
        .map(|s| (s.span_id.to_hex(), s.name.clone(), s.end_unix_nano))
        .collect();
    spans.sort();
    spans
}

#[test]
fn a_growing_transcript_imported_in_pieces_stores_what_one_import_of_it_stores() {
    let whole = std::fs::read(TRANSCRIPT).unwrap();
    let lines: Vec<&[u8]> = whole.split_inclusive(|b| *b == b'\n').collect();
    let half: Vec<u8> = lines[..lines.len() / 2].concat();
    let transcripts = tempfile::tempdir().unwrap();
    let file = transcripts.path().join("session.jsonl");

    let pieces = tempfile::tempdir().unwrap();
    std::fs::write(&file, &half).unwrap();
    let first = import(pieces.path(), transcripts.path());
    assert_eq!(
        (first.totals.files, first.totals.bytes),
        (1, half.len() as u64)
    );
    let again = import(pieces.path(), transcripts.path());
    assert_eq!(
        (
            again.totals.unchanged,
            again.totals.files,
            again.totals.spans
        ),
        (1, 0, 0)
    );
    std::fs::write(&file, &whole).unwrap();
    let rest = import(pieces.path(), transcripts.path());
    assert_eq!(
        rest.totals.bytes,
        (whole.len() - half.len()) as u64,
        "only what the file gained is read"
    );
    assert_eq!(rest.totals.sessions, first.totals.sessions);

    let at_once = tempfile::tempdir().unwrap();
    let once = import(at_once.path(), transcripts.path());
    assert_eq!(once.totals.bytes, whole.len() as u64);
    assert_eq!(
        session_spans(pieces.path(), &rest),
        session_spans(at_once.path(), &once)
    );
}

#[test]
fn an_otlp_file_imported_twice_is_stored_once_and_a_bad_file_brings_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(data.path()).unwrap();
    let store = SqliteStore::open(data.path()).unwrap();
    let first = FileImporter::new(&store, Arc::new(Redactor::builtin()))
        .import_file(Path::new(OTLP_TRACE))
        .unwrap();
    assert_eq!((first.spans, first.already_imported), (1, 0));
    writer.write(&first.batches).unwrap();
    let second = FileImporter::new(&store, Arc::new(Redactor::builtin()))
        .import_file(Path::new(OTLP_TRACE))
        .unwrap();
    assert_eq!((second.spans, second.already_imported), (0, 1));
    assert!(second.batches.is_empty());

    let bad = data.path().join("bad.jsonl");
    let good = std::fs::read_to_string(OTLP_TRACE).unwrap();
    std::fs::write(
        &bad,
        format!("{}\n{{\"resourceThings\": []}}\n", good.replace('\n', "")),
    )
    .unwrap();
    let error = FileImporter::new(&store, Arc::new(Redactor::builtin()))
        .import_file(&bad)
        .err()
        .expect("a document that is not OTLP is an error");
    assert!(
        format!("{error:#}").starts_with("line 2: not an OTLP/JSON document"),
        "{error:#}"
    );
}

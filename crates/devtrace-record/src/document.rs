//! The finished recording as one `trace-1.0.0` document: the header blocks from the metadata,
//! the journal's events in time order (pauses kept as `recording_paused`/`recording_resumed`
//! events, so the gap is visible), and the artifacts computed at the end.

use crate::journal::{Contents, Entry};
use crate::meta::SessionMeta;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What a test command reported when the recording ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResults {
    pub command: String,
    pub exit_code: i64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// The runner whose summary was read (`pytest`, `cargo-test`, …); empty when none was
    /// recognised, and then the counts are zero and only the exit code tells.
    pub runner: String,
    pub duration_ms: u64,
}

/// What the end of a recording adds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ending {
    /// When the recording ended.
    pub ended: u64,
    pub final_patch: Option<String>,
    pub test_results: Option<TestResults>,
}

/// Puts a string field in `map` unless it is empty.
fn put(map: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        map.insert(key.to_owned(), json!(value));
    }
}

/// A hook's command gets the output capture mode took for it; the keys that matched them
/// (`shell_pid`, `seq`) are the recorder's own and leave the event.
fn attach_output(event: &mut Value, outputs: &std::collections::HashMap<(u64, u64), (&str, u64)>) {
    let Some(object) = event.as_object_mut() else {
        return;
    };
    let pid = object.remove("shell_pid").and_then(|v| v.as_u64());
    let seq = object.remove("seq").and_then(|v| v.as_u64());
    if let (Some(pid), Some(seq)) = (pid, seq)
        && let Some((output, bytes)) = outputs.get(&(pid, seq))
    {
        object.insert("stdout".into(), json!(output));
        object.insert("output_bytes".into(), json!(bytes));
        object.insert("captured".into(), json!("terminal"));
    }
}

/// Assembles the document.
pub fn assemble(meta: &SessionMeta, journal: &Contents, ending: &Ending) -> Value {
    let outputs: std::collections::HashMap<(u64, u64), (&str, u64)> = journal
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Output {
                pid,
                seq,
                output,
                bytes,
            } => Some(((u64::from(*pid), *seq), (output.as_str(), *bytes))),
            _ => None,
        })
        .collect();
    let mut events: Vec<(u64, Value)> = Vec::new();
    let mut editors: Vec<String> = Vec::new();
    for entry in &journal.entries {
        let event = match entry {
            Entry::Event { event, .. } => {
                if let Some(editor) = event.get("editor").and_then(Value::as_str)
                    && !editors.iter().any(|e| e == editor)
                {
                    editors.push(editor.to_owned());
                }
                let mut event = event.clone();
                attach_output(&mut event, &outputs);
                event
            }
            Entry::Paused { t } => json!({"t": crate::timestamp(*t), "type": "recording_paused"}),
            Entry::Resumed { t } => {
                json!({"t": crate::timestamp(*t), "type": "recording_resumed"})
            }
            Entry::Started { .. } | Entry::Known { .. } | Entry::Output { .. } => continue,
        };
        let t = event
            .get("t")
            .and_then(Value::as_str)
            .and_then(devtrace_model::time::parse_rfc3339)
            .unwrap_or(0);
        events.push((t, event));
    }
    // Stable: events stamped alike keep the order they were recorded in.
    events.sort_by_key(|(t, _)| *t);

    let mut developer = Map::new();
    put(&mut developer, "name", &meta.developer.name);
    put(&mut developer, "email", &meta.developer.email);
    put(&mut developer, "os", &meta.developer.os);
    let ide = if meta.developer.ide.is_empty() {
        editors
            .iter()
            .map(|e| crate::meta::ide_of(e))
            .find(|i| !i.is_empty())
            .unwrap_or("")
    } else {
        meta.developer.ide.as_str()
    };
    put(&mut developer, "ide", ide);

    let task = &meta.task;
    let mut task_block = Map::new();
    put(&mut task_block, "description", &task.description);
    put(&mut task_block, "repository", &task.repository);
    put(&mut task_block, "branch", &task.branch);
    put(&mut task_block, "commit", &task.commit);
    put(&mut task_block, "test_command", &task.test_command);
    put(&mut task_block, "test_image", &task.test_image);

    let environment_meta = &meta.environment;
    let mut environment = Map::new();
    put(&mut environment, "os", &environment_meta.os);
    let editor = if environment_meta.editor.is_empty() {
        editors.first().cloned().unwrap_or_default()
    } else {
        environment_meta.editor.clone()
    };
    put(&mut environment, "editor", &editor);
    put(&mut environment, "version", &environment_meta.version);
    let plugins: Vec<String> = editors.iter().map(|e| format!("devtrace.{e}")).collect();
    if !plugins.is_empty() {
        environment.insert("plugins".into(), json!(plugins));
    }
    environment.insert(
        "workspace_size".into(),
        json!(environment_meta.workspace_size),
    );

    let mut artifacts = Map::new();
    if let Some(patch) = &ending.final_patch {
        artifacts.insert("final_patch".into(), json!(patch));
    }
    if let Some(results) = &ending.test_results {
        artifacts.insert(
            "test_results".into(),
            serde_json::to_value(results).expect("results serialise"),
        );
    }

    let mut document = Map::new();
    document.insert("trace_id".into(), json!(meta.id));
    document.insert("created_at".into(), json!(crate::timestamp(meta.started)));
    document.insert("version".into(), json!(crate::VERSION));
    if !developer.is_empty() {
        document.insert("developer".into(), Value::Object(developer));
    }
    document.insert("task".into(), Value::Object(task_block));
    document.insert("environment".into(), Value::Object(environment));
    document.insert(
        "events".into(),
        Value::Array(events.into_iter().map(|(_, e)| e).collect()),
    );
    if !artifacts.is_empty() {
        document.insert("artifacts".into(), Value::Object(artifacts));
    }
    document.insert(
        "recording".into(),
        json!({
            "source": "devtrace record",
            "ended_at": crate::timestamp(ending.ended.max(meta.started)),
            "developer_identified": meta.identified,
            "damaged_journal_lines": journal.damaged,
        }),
    );
    Value::Object(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Developer, Environment, Options, Task};
    use devtrace_ingest::redact::Redactor;
    use devtrace_ingest::sessions::trace_v1;

    fn meta() -> SessionMeta {
        SessionMeta {
            id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            started: 1_767_225_600_000_000_000,
            root: "/work/shop".into(),
            task: Task {
                description: "fix the empty cart total".into(),
                repository: "https://github.com/acme/shop".into(),
                branch: "main".into(),
                commit: "a".repeat(40),
                test_command: "pytest -q".into(),
                test_image: String::new(),
            },
            developer: Developer::from_git("Ada", "ada@example.com", false, "linux", ""),
            environment: Environment {
                os: "linux".into(),
                editor: String::new(),
                version: "0.1.0".into(),
                workspace_size: 12,
            },
            options: Options::default(),
            identified: false,
        }
    }

    #[test]
    fn a_recording_becomes_a_valid_document_in_time_order() {
        let journal = Contents {
            entries: vec![
                Entry::Started { t: 0, pid: 1 },
                Entry::Event {
                    event: json!({"t": "2026-01-01T00:00:05Z", "type": "terminal_command", "cmd": "pytest", "args": ["-q"], "exit_code": 1, "duration_ms": 900, "shell_pid": 7, "seq": 3}),
                    spool: Some(100),
                },
                Entry::Event {
                    event: json!({"t": "2026-01-01T00:00:02Z", "type": "file_opened", "file_path": "cart.py", "editor": "nvim"}),
                    spool: None,
                },
                Entry::Paused {
                    t: 1_767_225_610_000_000_000,
                },
                Entry::Resumed {
                    t: 1_767_225_620_000_000_000,
                },
                Entry::Known {
                    path: "x".into(),
                    hash: None,
                },
                Entry::Output {
                    pid: 7,
                    seq: 3,
                    output: "1 failed\n".into(),
                    bytes: 9,
                },
            ],
            damaged: 0,
            torn_tail: false,
        };
        let ending = Ending {
            ended: 1_767_225_630_000_000_000,
            final_patch: Some("diff --git a/cart.py b/cart.py\n".into()),
            test_results: Some(TestResults {
                command: "pytest -q".into(),
                exit_code: 0,
                passed: 3,
                runner: "pytest".into(),
                ..TestResults::default()
            }),
        };
        let document = assemble(&meta(), &journal, &ending);
        let types: Vec<&str> = document["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "file_opened",
                "terminal_command",
                "recording_paused",
                "recording_resumed"
            ]
        );
        assert_eq!(document["created_at"], "2026-01-01T00:00:00Z");
        assert_eq!(
            document["developer"]["ide"], "vim",
            "from the editor plugin's events"
        );
        assert_eq!(document["environment"]["plugins"], json!(["devtrace.nvim"]));
        assert_eq!(document["artifacts"]["test_results"]["passed"], 3);
        let command = &document["events"][1];
        assert_eq!(
            command["stdout"], "1 failed\n",
            "capture mode's output, matched"
        );
        assert!(command.get("seq").is_none() && command.get("shell_pid").is_none());
        assert!(document["developer"].get("email").is_none());
        let checked = trace_v1::from_value(document, &Redactor::builtin()).unwrap();
        let output = trace_v1::to_spans(&checked, std::sync::Arc::new(Redactor::builtin()));
        let facts = devtrace_model::session::SessionFacts::from_spans(&output.spans).unwrap();
        assert_eq!(facts.agent, "developer");
        assert_eq!(facts.title, "fix the empty cart total");
    }
}

//! Processes the VM killed as it stopped, read as stopped with it, not failed.
//!
//! `init:stop` — what SIGTERM, `System.stop/0` and `erl -s init stop` do — stops the
//! applications, then kills every process left with reason `killed`. Traced, each of those is an
//! exit `killed`, an error, as if something had killed it, and a loop the VM stopped reads as a
//! crash. The runtime tells the file when the VM began to stop (`devtrace_beam_app:prep_stop/1`,
//! [`crate::ring::FileInfo::stopping_ns`]). A process whose exit `killed` came from then on was
//! running when the VM stopped, as a VM that halts leaves its processes: its life and open calls
//! are open (marked `devtrace.recorder.open`), with no error and no exit reason.

use std::collections::HashSet;

use super::{BeamReader, PROCESS_CODE};
use crate::OutSpan;
use crate::names::Names;

/// The exception type of an exit with reason `killed`, as the tracer names it.
pub(super) const KILLED: &str = "exit:killed";

/// Reads the processes killed from `stopping` (monotonic ns; 0: the VM never said it stopped)
/// as stopped with the VM: in `reader` (so [`super::annotate`] sees no exit) and in `spans`,
/// the spans their exits ended. Returns how many processes.
pub fn stopped_with_the_vm(
    reader: &mut BeamReader,
    spans: &mut [OutSpan],
    names: &Names,
    stopping: u64,
) -> usize {
    if stopping == 0 {
        return 0;
    }
    let killed: HashSet<u32> = names
        .exceptions
        .iter()
        .filter(|(_, text)| text.as_str() == KILLED)
        .map(|(&id, _)| id)
        .collect();
    let stopped =
        reader.forget_exits(|ts, error_type| ts >= stopping && killed.contains(&error_type));
    for s in spans.iter_mut() {
        let Some(&exit_ts) = stopped.get(&s.stream) else {
            continue;
        };
        // What the kill ended: the life, and the calls open in it (their exception, traced,
        // can be stamped a little before the exit's).
        let killed_here = s.end >= stopping && s.error.is_some_and(|e| killed.contains(&e));
        if s.end == exit_ts || killed_here {
            s.error = s.error.filter(|e| !killed.contains(e));
            s.open = true;
            if s.code == PROCESS_CODE {
                s.values[1] = 0;
            }
        }
    }
    stopped.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::{BeamKind, beam_meta, exit_payload};
    use crate::builder::{Builder, BuilderOptions};
    use crate::ring::{Event, EventKind, StreamEvents, pack_meta, unpack};
    use std::collections::HashMap;

    const MS: u64 = 1_000_000;
    /// The exception type ids of `exit:killed` and of another exit.
    const KILLED_ID: u16 = 4;
    const CRASH_ID: u16 = 5;

    fn ev(ts: u64, meta: u64) -> Event {
        Event {
            ts,
            ..unpack(0, meta).unwrap()
        }
    }

    /// Process `key` runs `loop/1` (code 1) from 1 ms and exits at `exit_ms` with `error`.
    fn process(key: u64, exit_ms: u64, error: u16) -> Vec<Event> {
        vec![
            ev(MS, beam_meta(BeamKind::Process, key)),
            ev(MS, pack_meta(EventKind::Call, 1, 0)),
            ev(
                exit_ms * MS,
                beam_meta(BeamKind::Exit, exit_payload(9, Some(error))),
            ),
        ]
    }

    fn names() -> Names {
        Names {
            codes: HashMap::new(),
            exceptions: HashMap::from([
                (u32::from(KILLED_ID), KILLED.to_owned()),
                (u32::from(CRASH_ID), "error:badarith".to_owned()),
            ]),
            ..Names::default()
        }
    }

    /// Killed at 5 ms (before the VM stopped at 10 ms), killed at 12 ms, crashed at 13 ms.
    fn read(stopping: u64) -> (BeamReader, Vec<OutSpan>, usize) {
        let pass: Vec<StreamEvents> = [
            (0x100, 5, KILLED_ID),
            (0x200, 12, KILLED_ID),
            (0x300, 13, CRASH_ID),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (key, exit_ms, error))| StreamEvents {
            stream: i as u64 + 1,
            tid: i as u64 + 1,
            first_seq: 0,
            events: process(key, exit_ms, error),
            lost: 0,
        })
        .collect();
        let mut reader = BeamReader::new();
        let mut builder = Builder::new(BuilderOptions {
            threshold_ns: 0,
            ..Default::default()
        });
        for s in reader.split(&pass) {
            builder.feed(&s, &|_| None);
        }
        builder.finish_open();
        let mut spans = builder.take_spans();
        let stopped = stopped_with_the_vm(&mut reader, &mut spans, &names(), stopping);
        (reader, spans, stopped)
    }

    fn failed(spans: &[OutSpan], key: u64) -> Vec<(u32, bool, bool)> {
        spans
            .iter()
            .filter(|s| s.stream == key)
            .map(|s| (s.code, s.error.is_some(), s.open))
            .collect()
    }

    #[test]
    fn a_process_killed_after_the_vm_began_to_stop_was_running_not_failing() {
        let (reader, spans, stopped) = read(10 * MS);
        assert_eq!(stopped, 1);
        assert!(!reader.exited(0x200));
        let stopped: Vec<_> = failed(&spans, 0x200);
        assert_eq!(stopped.len(), 2, "its life and its call");
        assert!(
            stopped.iter().all(|&(_, error, open)| !error && open),
            "{stopped:?}"
        );
        let life = spans
            .iter()
            .find(|s| s.stream == 0x200 && s.code == PROCESS_CODE)
            .unwrap();
        assert_eq!(life.values[1], 0, "no exit reason");
        // Killed before the VM stopped, and a crash while it stopped: failures still.
        for key in [0x100, 0x300] {
            assert!(reader.exited(key));
            let life = failed(&spans, key)
                .into_iter()
                .find(|&(code, _, _)| code == PROCESS_CODE);
            assert_eq!(life, Some((PROCESS_CODE, true, false)), "{key:x}");
        }
    }

    #[test]
    fn without_the_vm_saying_it_stopped_every_kill_is_a_failure() {
        let (reader, spans, stopped) = read(0);
        assert_eq!(stopped, 0);
        assert!(reader.exited(0x200));
        let life = failed(&spans, 0x200)
            .into_iter()
            .find(|&(code, _, _)| code == PROCESS_CODE);
        assert_eq!(life, Some((PROCESS_CODE, true, false)));
    }
}

//! A flight recorder's window around a call that hangs.
//!
//! A program that hangs in a call — `GenServer.call(server, request, :infinity)` whose answer
//! never comes — is stopped when someone notices, often long after the call began: its window
//! (the last seconds) would hold nothing of it, the process having recorded nothing since. So
//! the window reaches back, process by process, for such calls: a process still waiting, when
//! its records end, for an answer to a message its innermost open call sent at least
//! [`STUCK_NS`] before the end keeps its records from that call's start; the process that took
//! the message keeps its own from just before the message came (its wait, and what it did with
//! the request). Every other record older than the window is left out as before. A VM stopped
//! by `init:stop` (SIGTERM) kills its processes: what comes from then on is the VM's doing, not
//! the program's, and a call stuck until then was stuck when the VM stopped.

use std::collections::HashMap;

use super::{BeamKind, beam_of};
use crate::ring::{Event, EventKind, LinkKind, causality_of};

/// How long a call must have waited for its answer, when the records end, to be kept whole: far
/// past what a server takes to answer, short of what someone waits before stopping a program
/// that hangs. (The analysis reads a call stuck as long as this as never answered.)
pub const STUCK_NS: u64 = 1_000_000_000;

/// What one process's records say of it, read in time order.
#[derive(Default)]
struct Scan {
    /// When each open call began, outermost first.
    open: Vec<u64>,
    /// The last message the process sent and got nothing back after: when, its key, and how
    /// many calls were open when it was sent.
    asked: Option<(u64, u64, usize)>,
    exited: bool,
    last_ts: u64,
}

/// Where a window ends: when the recording ended (its last record or the runtime's last beat),
/// and when the VM began to stop (`init:stop`: SIGTERM, `System.stop/0`; 0 when it did not),
/// after which its processes are killed by the VM, not ended by anything of their own
/// ([`super::vm_stop`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowEnd {
    pub end: u64,
    pub stopping: u64,
}

impl WindowEnd {
    /// When the program's own work ended: the VM's stop, or the recording's end.
    fn program_end(self) -> u64 {
        if self.stopping > 0 {
            self.stopping.min(self.end)
        } else {
            self.end
        }
    }
}

/// For each process (by key) that keeps records older than `window_start`: the time its records
/// are kept from. `records` are every process's records, each process's in time order.
pub fn reach_back<'a>(
    records: impl IntoIterator<Item = (u64, &'a [Event])>,
    window_start: u64,
    end: WindowEnd,
) -> HashMap<u64, u64> {
    let mut arrivals: HashMap<u64, Vec<(u64, u64)>> = HashMap::new(); // key → (process, since)
    let mut scans: HashMap<u64, Scan> = HashMap::new();
    for (process, events) in records {
        let scan = scans.entry(process).or_default();
        for e in events {
            if let Some((LinkKind::Message, key)) = causality_of(e)
                && e.kind == EventKind::Effect
            {
                let since = if scan.last_ts == 0 {
                    e.ts
                } else {
                    scan.last_ts
                };
                arrivals.entry(key).or_default().push((process, since));
            }
            if e.ts < end.program_end() {
                read(scan, e);
            }
        }
    }
    let mut from: HashMap<u64, u64> = HashMap::new();
    let mut keep = |process: u64, at: u64| {
        if at < window_start {
            let t = from.entry(process).or_insert(at);
            *t = (*t).min(at);
        }
    };
    for (&process, scan) in &scans {
        let Some((sent_at, key, depth)) = scan.asked else {
            continue;
        };
        if scan.exited || depth == 0 || end.program_end().saturating_sub(sent_at) < STUCK_NS {
            continue;
        }
        keep(process, scan.open[depth - 1]);
        for &(taker, since) in arrivals.get(&key).into_iter().flatten() {
            if taker != process {
                keep(taker, since);
            }
        }
    }
    from
}

/// Reads one record into what is known of its process.
fn read(scan: &mut Scan, e: &Event) {
    match (e.kind, causality_of(e), beam_of(e)) {
        (EventKind::Call, _, _) => scan.open.push(e.ts),
        (EventKind::Return | EventKind::Unwind, _, _) => {
            scan.open.pop();
            if scan
                .asked
                .is_some_and(|(_, _, depth)| depth > scan.open.len())
            {
                scan.asked = None; // the call that asked returned
            }
        }
        (EventKind::Cause, Some((LinkKind::Message, key)), _) => {
            scan.asked = Some((e.ts, key, scan.open.len()));
        }
        (EventKind::Effect, Some((LinkKind::Message, _)), _) => scan.asked = None,
        (_, _, Some((BeamKind::Exit, _))) => scan.exited = true,
        _ => {}
    }
    scan.last_ts = e.ts;
}

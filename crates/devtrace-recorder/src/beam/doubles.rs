//! Calls recorded twice, once by a trace pattern and once by a probe, kept once.
//!
//! Under `--instrument` a module is traced by a pattern until its instrumented code is loaded;
//! code loaded while the VM's on-load pattern is on gets that pattern too, and the instrumenter
//! takes it off only once the load has returned. A call made in between runs probed code under
//! a pattern: the tracer writes its call, then the probe inside it writes the same call again,
//! and the two endings follow one another the same way (the probe's first, inside the function;
//! the pattern's as it returns). A probe's call record carries [`PROBED_CALL`] so the reader can
//! tell the two apart: a probed call of function F written right after a traced call of F (with
//! nothing in between but that call's arguments) is the same call, and is dropped with its
//! arguments and, later, with the traced ending that follows the probe's.
//!
//! A probe never writes a call for code that is not the probed function's own, and a traced call
//! written right before a probe's enter of the same function is that function's entry, so the
//! rule drops no call the program made (but a call of old traced code whose first act is an
//! external call of the same function, made while the module is swapped: kept as one).

use crate::ring::{Event, EventKind};

/// The aux of a call record written by a probe compiled into an instrumented function (a trace
/// event's call record has 0).
pub const PROBED_CALL: u32 = 1;

/// One process's state of the rule, kept across passes.
#[derive(Debug, Default)]
pub(super) struct Doubles {
    /// The traced call last written (its code), if nothing followed it but its arguments
    /// (`true` once they came).
    fresh: Option<(u32, bool)>,
    /// The probed twin's arguments come next, to be dropped.
    skip_arguments: bool,
    /// The calls kept once (innermost last): their code, and the number of calls open once the
    /// probe's ending closed them, when the traced ending is due.
    merged: Vec<(u32, u32)>,
    /// The value and exception records after a merged call's probe ending, held until the next
    /// ending says whose they are.
    held: Vec<Event>,
}

impl Doubles {
    /// Whether record `e` of a process with `depth` calls open is a doubled call's second
    /// record (dropped), or held back for now; records held before it that turn out to be the
    /// program's go to `out` first.
    pub(super) fn absorbs(&mut self, e: &Event, depth: u32, out: &mut Vec<Event>) -> bool {
        if std::mem::take(&mut self.skip_arguments) && e.kind == EventKind::Value {
            return true;
        }
        if self.traced_ending(e, depth) {
            return true;
        }
        out.append(&mut self.held);
        match e.kind {
            EventKind::Call if e.aux == PROBED_CALL => self.probed_call(e.code, depth),
            EventKind::Call => {
                self.fresh = Some((e.code, false));
                false
            }
            EventKind::Value => {
                self.fresh = self.fresh.filter(|f| !f.1).map(|(code, _)| (code, true));
                false
            }
            _ => {
                self.fresh = None;
                false
            }
        }
    }

    /// Holds the records of what may be a merged call's traced ending, and drops them with it.
    fn traced_ending(&mut self, e: &Event, depth: u32) -> bool {
        let Some(&(code, due)) = self.merged.last() else {
            return false;
        };
        if due != depth {
            return false;
        }
        match e.kind {
            EventKind::Value | EventKind::Raise => {
                self.held.push(*e);
                true
            }
            EventKind::Return | EventKind::Unwind => {
                // Another function's ending: the call around the merged one returned, so the
                // merged call's traced ending is not coming (a flight window's cut).
                self.merged.pop();
                let twin = e.code == code;
                if twin {
                    self.held.clear();
                }
                twin
            }
            _ => false,
        }
    }

    /// A probe's call of `code` with `depth` calls open: dropped when it is the traced call's
    /// twin.
    fn probed_call(&mut self, code: u32, depth: u32) -> bool {
        match self.fresh.take() {
            Some((traced, arguments)) if traced == code => {
                self.skip_arguments = arguments;
                self.merged.push((code, depth.saturating_sub(1)));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, code: u32, aux: u32) -> Event {
        Event {
            ts: 0,
            kind,
            code,
            aux,
        }
    }

    /// The records `Doubles` lets through, with the depth the reader keeps.
    fn kept(records: &[Event]) -> Vec<(EventKind, u32)> {
        let mut doubles = Doubles::default();
        let (mut depth, mut out) = (0u32, Vec::new());
        for e in records {
            if doubles.absorbs(e, depth, &mut out) {
                continue;
            }
            match e.kind {
                EventKind::Call => depth += 1,
                EventKind::Return | EventKind::Unwind => depth -= 1,
                _ => {}
            }
            out.push(*e);
        }
        out.into_iter().map(|e| (e.kind, e.code)).collect()
    }

    use EventKind::{Call, Raise, Return, Unwind, Value};

    #[test]
    fn a_call_traced_and_probed_is_kept_once() {
        let records = [
            ev(Call, 7, 0),
            ev(Value, 1, 0),
            ev(Call, 7, PROBED_CALL),
            ev(Value, 1, 0),
            ev(Call, 8, PROBED_CALL),
            ev(Return, 8, 0),
            ev(Value, 2, 1),
            ev(Return, 7, 0),
            ev(Value, 2, 1),
            ev(Return, 7, 0),
        ];
        assert_eq!(
            kept(&records),
            [
                (Call, 7),
                (Value, 1),
                (Call, 8),
                (Return, 8),
                (Value, 2),
                (Return, 7)
            ]
        );
    }

    #[test]
    fn an_exception_through_a_doubled_call_ends_it_once() {
        let records = [
            ev(Call, 7, 0),
            ev(Call, 7, PROBED_CALL),
            ev(Raise, 0, 3),
            ev(Value, 4, 2),
            ev(Unwind, 7, 0),
            ev(Raise, 0, 3),
            ev(Value, 4, 2),
            ev(Unwind, 7, 0),
            ev(Return, 5, 0),
        ];
        assert_eq!(
            kept(&[&[ev(Call, 5, 0)], &records[..]].concat()),
            [
                (Call, 5),
                (Call, 7),
                (Raise, 0),
                (Value, 4),
                (Unwind, 7),
                (Return, 5)
            ]
        );
    }

    #[test]
    fn a_recursive_call_of_the_same_function_is_two_calls() {
        // Traced twice, or probed twice: the program's own recursion, kept.
        for aux in [0, PROBED_CALL] {
            let records = [
                ev(Call, 7, aux),
                ev(Call, 7, aux),
                ev(Value, 1, 1),
                ev(Return, 7, 0),
                ev(Value, 1, 1),
                ev(Return, 7, 0),
            ];
            assert_eq!(kept(&records).len(), 6, "aux {aux}");
        }
        // A probed call after a traced one that did something first.
        let records = [
            ev(Call, 7, 0),
            ev(Call, 9, 0),
            ev(Return, 9, 0),
            ev(Call, 7, PROBED_CALL),
            ev(Return, 7, 0),
            ev(Return, 7, 0),
        ];
        assert_eq!(kept(&records).len(), 6);
    }

    #[test]
    fn a_parents_ending_after_a_doubled_call_is_kept() {
        // The doubled call's traced ending never came: the parent's value and return, of
        // another function, pass through.
        let records = [
            ev(Call, 5, 0),
            ev(Call, 7, 0),
            ev(Call, 7, PROBED_CALL),
            ev(Return, 7, 0),
            ev(Value, 6, 1),
            ev(Return, 5, 0),
        ];
        assert_eq!(
            kept(&records),
            [(Call, 5), (Call, 7), (Return, 7), (Value, 6), (Return, 5)]
        );
        // ... and the rule expects it no more: a later call of the same function at that
        // depth ends as recorded.
        let later = [ev(Call, 7, 0), ev(Value, 1, 1), ev(Return, 7, 0)];
        assert_eq!(kept(&[&records[..], &later[..]].concat()).len(), 8);
    }

    #[test]
    fn a_tail_call_inside_a_doubled_call_keeps_its_traced_ending_due() {
        // The probe ends f (7) at its tail call of g (8); the pattern's return frame ends it
        // after g returns.
        let records = [
            ev(Call, 7, 0),
            ev(Call, 7, PROBED_CALL),
            ev(Value, 0, 1),
            ev(Return, 7, 0),
            ev(Call, 8, PROBED_CALL),
            ev(Value, 2, 1),
            ev(Return, 8, 0),
            ev(Value, 2, 1),
            ev(Return, 7, 0),
        ];
        assert_eq!(
            kept(&records),
            [
                (Call, 7),
                (Value, 0),
                (Return, 7),
                (Call, 8),
                (Value, 2),
                (Return, 8)
            ]
        );
    }
}

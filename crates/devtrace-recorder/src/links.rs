//! Happens-before links between threads: matches causality records (a queue put and the get
//! that took its item, an event set and the wait it ended, a thread started and its run, …)
//! and says which span each side was in, for the builder to put a link on the consuming call's
//! span pointing at the causing call's.
//!
//! The two sides are read from different streams, in no common order: a consumer's effect may
//! be fed before the cause that came first. So both are kept until they meet:
//!
//! - a *cause* (kind, 48-bit key, time, the innermost function) names a *target*: the span of
//!   the call it happened in. That call may not be known to be kept yet (a short call is folded
//!   into its parent), so the target stays pending on its frame until the frame ends: kept, it
//!   is the frame's span; dropped, the target moves to the parent frame. (The builder keeps
//!   an asyncio task's step that caused something, however short: its stack's bottom.)
//! - an *effect* becomes a *draft* link, matched with the causes of its key at each settle:
//!   a queue's item is got once (first cause first), an event set or a thread end serves every
//!   consumer after it (the latest cause before it); a lock or condition wait links only when
//!   the cause came while it waited; an asyncio lock's or semaphore's waiter future is
//!   completed once (the first cause while it waited). A draft with no cause for [`HOLD_NS`]
//!   of recorded time (or at the end) has none.
//!
//! Keys are object identities the recorder computed without running user code; nothing here
//! reads them otherwise.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::ring::LinkKind;

/// How long (recorded time) a consumer's link waits for its cause to be read, and a link
/// waits for its cause's span to be known, before it is settled without (or with the span
/// forced): a cause comes before its effect, and the drainer reads all threads every pass.
pub const HOLD_NS: u64 = 1_000_000_000;
/// Causes kept per key of a kind that serves every consumer (only the latest few matter).
const SHARED_CAUSES_PER_KEY: usize = 4;
/// Causes kept per key of a consumed-once kind (items put and not yet got).
const QUEUED_CAUSES_PER_KEY: usize = 4096;

/// A happens-before link of a kept call: to the span of the call that caused its wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutLink {
    pub kind: LinkKind,
    pub trace_id: u128,
    pub span_id: u64,
    /// The code id of the innermost recorded call when the cause happened
    /// (the builder's `OTHER_CODE`: none; named in words, links.rs does not use the builder).
    pub cause_code: u32,
    /// Monotonic nanoseconds.
    pub cause_ts: u64,
    /// How long the consumer had waited when the cause came (0: it did not wait).
    pub wait_ns: u64,
}

/// Where a cause's span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Not known yet: pending on an open frame of this stream.
    Pending {
        stream: u64,
    },
    Span {
        trace_id: u128,
        span_id: u64,
    },
    /// In no span (outside any recorded call, or in a call that was dropped at the top).
    Nowhere,
    /// Wherever that target is (a dropped call's causes go to its caller's target, so a call
    /// holds one pending target however many short calls it made caused something).
    Same(u32),
}

#[derive(Debug)]
struct TargetSlot {
    target: Target,
    refs: u32,
}

#[derive(Debug, Clone, Copy)]
struct Cause {
    ts: u64,
    code: u32,
    target: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DraftState {
    Waiting,
    Matched { target: u32, code: u32, ts: u64 },
    Unlinked,
}

#[derive(Debug)]
struct Draft {
    kind: LinkKind,
    key: u64,
    ts: u64,
    wait_start: u64,
    state: DraftState,
}

/// What became of a draft link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Its cause or the cause's span is not known yet.
    Waiting {
        pending_on: Option<(u64, u32)>,
    },
    Linked(OutLink),
    Unlinked,
}

/// The hash of a cause's (kind, key): one multiply per word. The keys are object identities
/// the recorder already mixed, which nobody picks to collide, so std's SipHash (its defence
/// against chosen keys) was most of what a causality record cost the drainer: ≈ 350
/// instructions a cause, measured under callgrind (docs/PERFORMANCE.md, "Causality links").
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl KeyHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(b as u64);
        }
    }

    fn write_u8(&mut self, v: u8) {
        self.add(v as u64);
    }

    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }

    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }

    fn write_isize(&mut self, v: isize) {
        self.add(v as u64);
    }
}

/// The links' state: targets, causes by key, drafts.
#[derive(Debug, Default)]
pub struct Links {
    targets: Vec<TargetSlot>,
    free_targets: Vec<u32>,
    causes: HashMap<(LinkKind, u64), VecDeque<Cause>, BuildHasherDefault<KeyHasher>>,
    drafts: Vec<Option<Draft>>,
    free_drafts: Vec<u32>,
    waiting: Vec<u32>,
    /// The newest record time seen.
    pub now: u64,
}

impl Links {
    /// A new target (one reference, its holder's).
    pub fn target(&mut self, target: Target) -> u32 {
        let slot = TargetSlot { target, refs: 1 };
        if let Some(id) = self.free_targets.pop() {
            self.targets[id as usize] = slot;
            return id;
        }
        self.targets.push(slot);
        (self.targets.len() - 1) as u32
    }

    /// Where target `id` is, following [`Target::Same`].
    pub fn target_of(&self, id: u32) -> Target {
        self.targets[self.root(id) as usize].target
    }

    /// The target `id` stands for (itself unless it is [`Target::Same`] as another).
    pub fn root(&self, mut id: u32) -> u32 {
        while let Target::Same(next) = self.targets[id as usize].target {
            id = next;
        }
        id
    }

    /// The frame holding a pending target ended: `target` is where it is now, and the frame
    /// lets its reference go (a frame passing it to its parent takes a new one there).
    pub fn resolve(&mut self, id: u32, target: Target) {
        self.targets[id as usize].target = target;
    }

    pub fn retain(&mut self, id: u32) {
        self.targets[id as usize].refs += 1;
    }

    pub fn release(&mut self, id: u32) {
        let slot = &mut self.targets[id as usize];
        slot.refs -= 1;
        if slot.refs == 0 {
            let same = slot.target;
            self.free_targets.push(id);
            if let Target::Same(next) = same {
                self.release(next);
            }
        }
    }

    /// A cause of `kind` on `key` at `ts` in function `code`, in `target` (whose reference it
    /// takes over).
    pub fn cause(&mut self, kind: LinkKind, key: u64, ts: u64, code: u32, target: u32) {
        self.now = self.now.max(ts);
        let limit = if kind.consumed_once() {
            QUEUED_CAUSES_PER_KEY
        } else {
            SHARED_CAUSES_PER_KEY
        };
        let list = self.causes.entry((kind, key)).or_default();
        list.push_back(Cause { ts, code, target });
        let evicted = (list.len() > limit).then(|| list.pop_front()).flatten();
        if let Some(old) = evicted {
            self.release(old.target);
        }
    }

    /// A consumer's effect: a draft link, matched at the next [`Links::settle_waiting`].
    pub fn effect(&mut self, kind: LinkKind, key: u64, ts: u64, wait_start: u64) -> u32 {
        self.now = self.now.max(ts);
        let draft = Draft {
            kind,
            key,
            ts,
            wait_start,
            state: DraftState::Waiting,
        };
        let id = match self.free_drafts.pop() {
            Some(id) => {
                self.drafts[id as usize] = Some(draft);
                id
            }
            None => {
                self.drafts.push(Some(draft));
                (self.drafts.len() - 1) as u32
            }
        };
        self.waiting.push(id);
        id
    }

    /// Matches the drafts still waiting with the causes read so far, earliest effect first;
    /// those waiting longer than [`HOLD_NS`] (or all, when `last`) that found none have none.
    ///
    /// Earliest first, not in the order the streams were read: a consumed-once cause goes to
    /// the first consumer of its key, and the same content can travel on (a pipeline's stages
    /// pass `{rec, 1}` along): read in stream order, the last stage's receive would take the
    /// first stage's send.
    pub fn settle_waiting(&mut self, last: bool) {
        let mut waiting = std::mem::take(&mut self.waiting);
        let drafts = &self.drafts;
        waiting.sort_by_key(|&id| drafts[id as usize].as_ref().map_or(0, |d| d.ts));
        waiting.retain(|&id| {
            let Some(draft) = self.drafts[id as usize].as_ref() else {
                return false;
            };
            if draft.state != DraftState::Waiting {
                return false;
            }
            let (kind, key, ts, wait_start) = (draft.kind, draft.key, draft.ts, draft.wait_start);
            let state = match self.take_cause(kind, key, ts, wait_start) {
                Some(cause) => DraftState::Matched {
                    target: cause.target,
                    code: cause.code,
                    ts: cause.ts,
                },
                None if last || self.now.saturating_sub(ts) > HOLD_NS => DraftState::Unlinked,
                None => return true,
            };
            if let Some(d) = self.drafts[id as usize].as_mut() {
                d.state = state;
            }
            false
        });
        waiting.append(&mut self.waiting);
        self.waiting = waiting;
    }

    /// The cause a consumer of `key` at `ts` (waiting since `wait_start`) follows, with a
    /// reference to its target taken for the draft.
    fn take_cause(&mut self, kind: LinkKind, key: u64, ts: u64, wait_start: u64) -> Option<Cause> {
        let list = self.causes.get_mut(&(kind, key))?;
        let cause = if kind.consumed_once() {
            let at = list.iter().position(|c| c.ts <= ts)?;
            // The draft takes over the list's reference.
            let cause = list.remove(at)?;
            if list.is_empty() {
                self.causes.remove(&(kind, key));
            }
            return Some(cause);
        } else if kind.completed_once() {
            *list.iter().find(|c| c.ts >= wait_start && c.ts <= ts)?
        } else {
            *list.iter().rev().find(|c| c.ts <= ts)?
        };
        // A consumer that did not wait (no wait start: a semaphore free at its `acquire`) or
        // whose cause came before its wait began was not held up by it.
        if kind.only_when_waited() && (wait_start == 0 || cause.ts < wait_start) {
            return None;
        }
        self.retain(cause.target);
        Some(cause)
    }

    /// What draft `id` is now; a settled one is forgotten (its target reference let go).
    pub fn settle(&mut self, id: u32) -> Settled {
        let Some(draft) = self.drafts[id as usize].as_ref() else {
            return Settled::Unlinked;
        };
        let (kind, wait_start, draft_ts) = (draft.kind, draft.wait_start, draft.ts);
        let settled = match draft.state {
            DraftState::Waiting => return Settled::Waiting { pending_on: None },
            DraftState::Unlinked => Settled::Unlinked,
            DraftState::Matched { target, code, ts } => match self.target_of(target) {
                Target::Pending { stream } => {
                    return Settled::Waiting {
                        pending_on: Some((stream, self.root(target))),
                    };
                }
                Target::Nowhere | Target::Same(_) => {
                    self.release(target);
                    Settled::Unlinked
                }
                Target::Span { trace_id, span_id } => {
                    self.release(target);
                    Settled::Linked(OutLink {
                        kind,
                        trace_id,
                        span_id,
                        cause_code: code,
                        cause_ts: ts,
                        wait_ns: wait_ns(wait_start, ts.min(draft_ts)),
                    })
                }
            },
        };
        self.drafts[id as usize] = None;
        self.free_drafts.push(id);
        settled
    }

    /// Forgets draft `id` (its call was not kept anywhere).
    pub fn drop_draft(&mut self, id: u32) {
        let Some(draft) = self.drafts[id as usize].take() else {
            return;
        };
        if let DraftState::Matched { target, .. } = draft.state {
            self.release(target);
        }
        self.free_drafts.push(id);
    }
}

/// How long a consumer that began waiting at `wait_start` (0: it did not) had waited at `cause`.
fn wait_ns(wait_start: u64, cause: u64) -> u64 {
    if wait_start == 0 {
        0
    } else {
        cause.saturating_sub(wait_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with the same content passed along a pipeline, main → parse → enrich →
    /// store, its receives fed last stage first (as streams are read): each receive follows
    /// the send right before it on the way, not the first send of that content.
    #[test]
    fn the_same_content_passed_along_links_each_hop_to_the_send_before_it() {
        let mut links = Links::default();
        let key = 0x51;
        let sends = [(0, 1), (10, 2), (40, 3)]; // (time, sender's target)
        let targets: Vec<u32> = sends
            .iter()
            .map(|&(_, span)| {
                links.target(Target::Span {
                    trace_id: 1,
                    span_id: span,
                })
            })
            .collect();
        for (&(ts, _), &target) in sends.iter().zip(&targets) {
            links.cause(LinkKind::Message, key, ts, 7, target);
        }
        // store (received at 41), enrich (at 30, backlogged), parse (at 5).
        let receives = [41, 30, 5].map(|ts| links.effect(LinkKind::Message, key, ts, ts - 1));
        links.settle_waiting(true);
        let linked: Vec<u64> = receives
            .iter()
            .map(|&id| match links.settle(id) {
                Settled::Linked(link) => link.span_id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(linked, [3, 2, 1]);
    }
}

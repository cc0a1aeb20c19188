//! Processes spawned only to make a call on their spawner's behalf: their messages read as the
//! spawner's own.
//!
//! OTP 25's `gen_statem:call/3` with a timeout, to a registered name, makes the call from a
//! proxy process it spawns (so that a late reply cannot reach the caller), which sends the
//! result back. The proxy runs none of the program's code, so its spans are left out with the
//! VM's own processes, and the request and the reply with them: the caller's call would be no
//! call. A relay is such a process: no function span of its own, spawned from a span of the
//! program's, and sending a message its spawner received. Then:
//!
//! - a wait of another process that a relay's message ended (the request) is linked to the
//!   span that spawned the relay;
//! - the spawner's wait that the relay's message ended (the result) is linked to what ended
//!   the relay's last wait before it sent (the reply). When that wait timed out after the
//!   request (the call was given up), the spawner's wait is one that timed out too, and keeps
//!   no link.

use std::collections::{HashMap, HashSet};

use super::{PROCESS_CODE, RECEIVE_CODE};
use crate::OutSpan;
use crate::ring::LinkKind;

/// A relay: its life span, and the span that spawned it.
struct Relay {
    stream: u64,
    life: u64,
    spawned_by: u64,
}

/// Relinks the messages of relays (see the module doc) in `spans`. `timeouts` are the waits
/// that timed out after a call request, (stream, end): the spawners' waits for a call their
/// relay gave up join them.
pub fn fold_relays(spans: &mut [OutSpan], timeouts: &mut HashSet<(u64, u64)>) {
    let relays = relays(spans);
    if relays.is_empty() {
        return;
    }
    let index: HashMap<u64, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let by_life: HashMap<u64, &Relay> = relays.iter().map(|r| (r.life, r)).collect();
    let mut result_waits = Vec::new();
    for i in 0..spans.len() {
        for l in 0..spans[i].links.len() {
            let link = &spans[i].links[l];
            let Some(relay) = by_life.get(&link.span_id) else {
                continue;
            };
            if link.kind != LinkKind::Message {
                continue;
            }
            let spawner = spans[index[&relay.spawned_by]].stream;
            if spans[i].stream == spawner {
                result_waits.push((i, l, relay.stream, link.cause_ts));
            } else {
                let target = &spans[index[&relay.spawned_by]];
                let (span_id, code) = (target.span_id, target.code);
                let link = &mut spans[i].links[l];
                (link.span_id, link.cause_code) = (span_id, code);
            }
        }
    }
    let answers = answers(spans, &relays, timeouts);
    // Last first, so that removing a link leaves the positions of those before it.
    for &(i, l, relay, sent) in result_waits.iter().rev() {
        match answer_before(&answers, relay, sent) {
            Some(Answer::GaveUp) => {
                timeouts.insert((spans[i].stream, spans[i].end));
                spans[i].links.remove(l);
            }
            Some(Answer::Reply { span_id, code, ts }) => {
                let link = &mut spans[i].links[l];
                (link.span_id, link.cause_code, link.cause_ts) = (span_id, code, ts);
            }
            None => {}
        }
    }
}

/// How a relay's call ended before it sent its result.
#[derive(Clone, Copy)]
enum Answer {
    /// The reply came from span `span_id` (of code `code`), sent at `ts`.
    Reply { span_id: u64, code: u32, ts: u64 },
    /// Its wait for the reply timed out.
    GaveUp,
}

/// Each relay's waits that tell how its call ended, by when they ended, in order: those a
/// message ended, and those that timed out after its request (a wait with neither, such as
/// OTP's `after 0` flush of a late reply, says nothing).
fn answers(
    spans: &[OutSpan],
    relays: &[Relay],
    timeouts: &HashSet<(u64, u64)>,
) -> HashMap<u64, Vec<(u64, Answer)>> {
    let streams: HashSet<u64> = relays.iter().map(|r| r.stream).collect();
    let mut out: HashMap<u64, Vec<(u64, Answer)>> = HashMap::new();
    let waits = spans
        .iter()
        .filter(|s| s.code == RECEIVE_CODE && streams.contains(&s.stream));
    for wait in waits {
        let reply = wait.links.iter().find(|k| k.kind == LinkKind::Message);
        let answer = match reply {
            _ if timeouts.contains(&(wait.stream, wait.end)) => Answer::GaveUp,
            Some(reply) => Answer::Reply {
                span_id: reply.span_id,
                code: reply.cause_code,
                ts: reply.cause_ts,
            },
            None => continue,
        };
        out.entry(wait.stream).or_default().push((wait.end, answer));
    }
    for list in out.values_mut() {
        list.sort_by_key(|&(end, _)| end);
    }
    out
}

/// The answer to `relay`'s call: its last telling wait that ended by `sent`.
fn answer_before(
    answers: &HashMap<u64, Vec<(u64, Answer)>>,
    relay: u64,
    sent: u64,
) -> Option<Answer> {
    let list = answers.get(&relay)?;
    let before = list.partition_point(|&(end, _)| end <= sent);
    before.checked_sub(1).map(|i| list[i].1)
}

/// The relays among the processes of `spans`.
fn relays(spans: &[OutSpan]) -> Vec<Relay> {
    let programs: HashSet<u64> = spans
        .iter()
        .filter(|s| !matches!(s.code, PROCESS_CODE | RECEIVE_CODE))
        .map(|s| s.stream)
        .collect();
    let stream_of: HashMap<u64, u64> = spans.iter().map(|s| (s.span_id, s.stream)).collect();
    // (sender, receiver) of every message received.
    let heard: HashSet<(u64, u64)> = super::calls::messages_received(spans)
        .into_iter()
        .map(|m| (m.from, m.wait.stream))
        .collect();
    spans
        .iter()
        .filter(|s| s.code == PROCESS_CODE && !programs.contains(&s.stream))
        .filter_map(|life| {
            let start = life
                .links
                .iter()
                .find(|l| l.kind == LinkKind::ThreadStart)?;
            let spawner = *stream_of.get(&start.span_id)?;
            (programs.contains(&spawner) && heard.contains(&(life.stream, spawner))).then_some(
                Relay {
                    stream: life.stream,
                    life: life.span_id,
                    spawned_by: start.span_id,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutLink;
    use crate::beam::calls::tests::{span, timed};

    fn linked(mut wait: OutSpan, kind: LinkKind, cause: u64, cause_ts: u64) -> OutSpan {
        wait.links.push(OutLink {
            kind,
            trace_id: 1,
            span_id: cause,
            cause_code: 0,
            cause_ts,
            wait_ns: 0,
        });
        wait
    }

    /// Process 1's `open` (span 11) spawns a proxy (process 3) that asks the server (process
    /// 2) and sends the result back at 150; `answered` says whether the server replied in time
    /// (else the proxy's wait timed out at 149).
    fn proxied(answered: bool) -> (Vec<OutSpan>, HashSet<(u64, u64)>) {
        let proxy_wait = timed(span(31, 30, RECEIVE_CODE, 3), 1, 149);
        let proxy_wait = if answered {
            linked(proxy_wait, LinkKind::Message, 20, 140)
        } else {
            proxy_wait
        };
        let spans = vec![
            // OTP's flush of a late reply after a timeout (`after 0`): says nothing.
            timed(span(32, 30, RECEIVE_CODE, 3), 149, 150),
            span(10, 0, PROCESS_CODE, 1),
            timed(span(11, 10, 7, 1), 0, 152),
            linked(
                timed(span(111, 11, RECEIVE_CODE, 1), 1, 151),
                LinkKind::Message,
                30,
                150,
            ),
            span(20, 0, PROCESS_CODE, 2),
            linked(span(21, 20, RECEIVE_CODE, 2), LinkKind::Message, 30, 1),
            linked(span(30, 0, PROCESS_CODE, 3), LinkKind::ThreadStart, 11, 0),
            proxy_wait,
        ];
        let timeouts = if answered {
            HashSet::new()
        } else {
            HashSet::from([(3, 149)])
        };
        (spans, timeouts)
    }

    fn link_of(spans: &[OutSpan], wait: u64) -> Option<(u64, u64)> {
        let wait = spans.iter().find(|s| s.span_id == wait).unwrap();
        wait.links.first().map(|l| (l.span_id, l.cause_ts))
    }

    #[test]
    fn a_proxys_request_is_the_spawners_and_its_result_the_servers_reply() {
        let (mut spans, mut timeouts) = proxied(true);
        fold_relays(&mut spans, &mut timeouts);
        assert_eq!(
            link_of(&spans, 21),
            Some((11, 1)),
            "the request, sent by open"
        );
        assert_eq!(link_of(&spans, 111), Some((20, 140)), "the server's reply");
        assert!(timeouts.is_empty());
    }

    #[test]
    fn a_proxy_that_gave_up_on_the_call_makes_its_spawners_wait_a_timed_out_one() {
        let (mut spans, mut timeouts) = proxied(false);
        fold_relays(&mut spans, &mut timeouts);
        assert_eq!(link_of(&spans, 111), None);
        assert!(timeouts.contains(&(1, 151)), "{timeouts:?}");
    }

    #[test]
    fn a_process_of_the_program_is_no_relay() {
        let (mut spans, mut timeouts) = proxied(true);
        spans.push(span(32, 30, 9, 3));
        fold_relays(&mut spans, &mut timeouts);
        assert_eq!(link_of(&spans, 111), Some((30, 150)), "left as it was");
    }
}

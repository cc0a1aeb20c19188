//! Hot functions in a BEAM recording: the functions the runtime stopped recording call by call
//! (the names log's hot-function entries, written by the tracer when one scheduler called one
//! 10,000 times within 100 ms). Each process that called one says so on its life's span, so a
//! reader of the trace alone — `show`, an assistant over MCP — knows its later calls are not
//! there and their time is in their callers'.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::PROCESS_CODE;
use super::annotate::{Annotations, Attr};
use crate::builder::OutSpan;
use crate::names::Names;

/// On a process's life span: the functions it called that were found hot, each with what made
/// it hot (`"anonymous fn#0 in Pricing.price/1" after 10000 calls within 100 ms`).
pub const HOT_FUNCTIONS: &str = "devtrace.beam.hot_functions";

/// Marks the life span of each process that made a recorded call of a hot function.
pub fn mark_hot_functions(spans: &[OutSpan], names: &Names, annotations: &mut Annotations) {
    if names.hot_functions.is_empty() {
        return;
    }
    let mut called: HashMap<u64, BTreeSet<String>> = HashMap::new();
    let mut seen: HashSet<(u64, u32)> = HashSet::new();
    for s in spans {
        let Some(hot) = names.hot_functions.get(&s.code) else {
            continue;
        };
        if !seen.insert((s.stream, s.code)) {
            continue;
        }
        let name = names
            .codes
            .get(&s.code)
            .map_or_else(|| format!("code {}", s.code), |info| info.span_name());
        called.entry(s.stream).or_default().insert(format!(
            "{name:?} after {} calls within {} ms",
            hot.calls, hot.window_ms
        ));
    }
    for life in spans.iter().filter(|s| s.code == PROCESS_CODE) {
        if let Some(functions) = called.get(&life.stream) {
            let text = functions.iter().cloned().collect::<Vec<_>>().join(", ");
            annotations
                .attributes
                .entry(life.span_id)
                .or_default()
                .push((HOT_FUNCTIONS, Attr::Text(text)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{CodeInfo, HotFunction};

    fn span(span_id: u64, stream: u64, code: u32) -> OutSpan {
        OutSpan {
            span_id,
            stream,
            code,
            ..Default::default()
        }
    }

    #[test]
    fn the_processes_that_called_a_hot_function_say_so_on_their_lives() {
        let mut names = Names::default();
        let info = |qualname: &str| CodeInfo {
            qualname: qualname.into(),
            ..Default::default()
        };
        names
            .codes
            .insert(7, info("anonymous fn#0 in Pricing.price/1"));
        names.codes.insert(8, info("Pricing.handle_call/3"));
        let hot = HotFunction {
            calls: 10_000,
            window_ms: 100,
        };
        names.hot_functions.insert(7, hot);
        // Process 1 called the hot function (twice), process 2 did not.
        let spans = [
            span(10, 1, PROCESS_CODE),
            span(11, 1, 8),
            span(12, 1, 7),
            span(13, 1, 7),
            span(20, 2, PROCESS_CODE),
            span(21, 2, 8),
        ];
        let mut annotations = Annotations::default();
        mark_hot_functions(&spans, &names, &mut annotations);
        let expected = "\"anonymous fn#0 in Pricing.price/1\" after 10000 calls within 100 ms";
        assert_eq!(
            annotations.attributes.get(&10),
            Some(&vec![(HOT_FUNCTIONS, Attr::Text(expected.into()))])
        );
        assert_eq!(annotations.attributes.get(&20), None);
    }
}

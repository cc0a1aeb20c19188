//! One trace inside a token budget: the most informative spans, as an indented tree.
//!
//! Which spans: first the ones an answer cannot do without (the roots, the first errors, every
//! span on the critical path, the remaining errors, each with the ancestors that connect it),
//! then the rest by how much time they account for (self time counts double: it is where time
//! actually goes). The
//! largest prefix of that order whose rendering fits the budget is shown (found by bisection;
//! the rendering is re-measured with the tokenizer every time, so the promise holds exactly).
//!
//! How: runs of five or more same-named siblings fold into one line (`× 40 "SELECT" …`), with
//! failing members listed under it; the children a shown span hides are counted on one line
//! naming the call that expands them; a footer says how many spans are shown and which calls
//! get the rest.

use crate::budget;
use crate::render::LEGEND;
use devtrace_analyze::classify::{WorkKind, classify};
use devtrace_analyze::critical_path::critical_credits;
use devtrace_analyze::errors::is_error_span;
use devtrace_analyze::fold::DEFAULT_MIN_RUN;
use devtrace_analyze::{AnalyzedTrace, FoldedChild, fold_children};
use devtrace_model::{AnyValue, Span, semconv};
use devtrace_query::text::{quote, truncate};
use devtrace_query::timefmt::{format_duration, format_timestamp_zoned};

/// Errors placed before the critical path in the priority order (the rest come after it).
const FIRST_ERRORS: usize = 20;
/// Longest error message shown on a tree line.
const MESSAGE_CHARS: usize = 160;
/// Levels of nesting indented; deeper lines keep this indent and give their depth (`↳N`), so
/// a 50,000-deep call chain draws in lines of bounded width, not quadratic text.
const MAX_INDENT_DEPTH: usize = 32;

/// The indent of a line at `depth`.
fn indent(depth: usize) -> String {
    if depth <= MAX_INDENT_DEPTH {
        "  ".repeat(depth)
    } else {
        format!("{}↳{depth} ", "  ".repeat(MAX_INDENT_DEPTH))
    }
}

/// Which part of the trace to draw.
pub struct View<'a> {
    pub trace: &'a AnalyzedTrace,
    /// Draw only the subtree under this span (index), or the whole trace.
    pub focus: Option<usize>,
    pub budget: usize,
}

/// What was drawn, for tests and the footer.
pub struct Drawn {
    pub text: String,
    pub shown: usize,
    pub total: usize,
    /// Span indices drawn on their own line or inside a folded run.
    pub visible: Vec<bool>,
}

struct Facts {
    critical: Vec<bool>,
    error: Vec<bool>,
    /// Spans inside a repeated sibling that another member stands for (see `draw`).
    folded_away: Vec<bool>,
    /// Per span, the first failed span of its subtree in tree order (itself first).
    first_error: Vec<Option<usize>>,
    in_view: Vec<bool>,
    is_root: Vec<bool>,
    parent: Vec<Option<usize>>,
    id_chars: usize,
    /// What each span waited for on another thread, worded (causal links).
    waits: Vec<Vec<devtrace_query::causal::WaitView>>,
}

pub fn draw(view: &View<'_>) -> Drawn {
    let trace = view.trace;
    let roots: Vec<usize> = match view.focus {
        Some(i) => vec![i],
        None => trace.tree.roots.clone(),
    };
    let facts = Facts::of(trace, &roots);
    let order = priority_order(trace, &roots, &facts);
    largest_fitting_prefix(view, &roots, &facts, &order)
}

impl Facts {
    fn of(trace: &AnalyzedTrace, roots: &[usize]) -> Self {
        let n = trace.spans.spans.len();
        let mut parent = vec![None; n];
        for (p, children) in trace.tree.children.iter().enumerate() {
            for c in children {
                parent[*c] = Some(p);
            }
        }
        let mut is_root = vec![false; n];
        let mut in_view = vec![false; n];
        for r in roots {
            is_root[*r] = true;
            in_view[*r] = true;
            for &d in trace.descendants(*r) {
                in_view[d] = true;
            }
        }
        let critical = critical_marks(trace, roots, &in_view, &is_root, &parent);
        let error: Vec<bool> = (0..n)
            .map(|i| in_view[i] && is_error_span(trace.span(i)))
            .collect();
        let first_error = first_error_under(trace, &error);
        let folded_away = folded_marks(trace, roots, &critical, &first_error);
        Facts {
            critical,
            error,
            folded_away,
            first_error,
            in_view,
            is_root,
            parent,
            id_chars: id_chars(trace),
            waits: devtrace_query::causal::waits_by_span(trace),
        }
    }
}

/// Per span, the first span of its subtree (itself first, then in tree order) marked in
/// `error`: one pass from the last span back, so folds at every level of a deep tree cost
/// each span once.
fn first_error_under(trace: &AnalyzedTrace, error: &[bool]) -> Vec<Option<usize>> {
    let mut first = vec![None; error.len()];
    for &i in trace.tree.preorder.iter().rev() {
        first[i] = if error[i] {
            Some(i)
        } else {
            trace.tree.children[i].iter().find_map(|c| first[*c])
        };
    }
    first
}

/// The critical path of the longest root in view: a span is on it when it or anything under
/// it is (the root always is).
fn critical_marks(
    trace: &AnalyzedTrace,
    roots: &[usize],
    in_view: &[bool],
    is_root: &[bool],
    parent: &[Option<usize>],
) -> Vec<bool> {
    let mut critical = vec![false; trace.spans.spans.len()];
    let Some(main) = roots
        .iter()
        .copied()
        .max_by_key(|r| trace.span(*r).duration_nanos())
    else {
        return critical;
    };
    for (i, credit) in critical_credits(trace, main).iter().enumerate() {
        if *credit > 0 && in_view[i] {
            let mut node = Some(i);
            while let Some(x) = node {
                if critical[x] {
                    break;
                }
                critical[x] = true;
                node = if is_root[x] { None } else { parent[x] };
            }
        }
    }
    critical
}

/// Repeated siblings (runs of same-named siblings) are one pattern: the member on the critical
/// path (else the first) stands for all of them, and the first member with an error in its
/// subtree shows that error; the others are folded away with everything under them — counted
/// on the fold's line, their errors counted and the first one named there — so the budget goes
/// to what differs, not to a hundred identical chunks.
fn folded_marks(
    trace: &AnalyzedTrace,
    roots: &[usize],
    critical: &[bool],
    first_error: &[Option<usize>],
) -> Vec<bool> {
    let mut folded_away = vec![false; trace.spans.spans.len()];
    let mut all_children: Vec<&[usize]> = trace.tree.children.iter().map(Vec::as_slice).collect();
    all_children.push(roots);
    for children in all_children {
        for item in fold_children(&trace.spans, children, DEFAULT_MIN_RUN) {
            let FoldedChild::Run { spans, .. } = item else {
                continue;
            };
            // A leaf repeated is all on the fold's line; a subtree repeated keeps one example.
            let keep = spans
                .iter()
                .any(|s| !trace.tree.children[*s].is_empty())
                .then(|| {
                    spans
                        .iter()
                        .copied()
                        .find(|s| critical[*s])
                        .unwrap_or(spans[0])
                });
            let failed_examples = first_of_each_error(trace, &spans, first_error);
            for s in spans {
                if Some(s) != keep && !failed_examples.contains(&s) {
                    folded_away[s] = true;
                }
            }
        }
    }
    // Everything under a member folded away is folded away with it: marked from the top down
    // once, so members folded inside members cost nothing more.
    for &i in &trace.tree.preorder {
        if let Some(p) = trace.tree.parent[i] {
            folded_away[i] |= folded_away[p];
        }
    }
    folded_away
}

/// The first member failing with each distinct error keeps its line: a fold never hides an
/// error of its own kind, only repeats of one already shown.
fn first_of_each_error(
    trace: &AnalyzedTrace,
    spans: &[usize],
    first_error: &[Option<usize>],
) -> Vec<usize> {
    let mut seen_errors = std::collections::HashSet::new();
    spans
        .iter()
        .copied()
        .filter(|s| {
            first_error[*s]
                .and_then(|d| devtrace_analyze::errors::error_key(trace.span(d)))
                .is_some_and(|key| seen_errors.insert(key.fingerprint))
        })
        .collect()
}

/// Priority order: roots; the first errors (few, and an answer cannot do without them); the
/// critical path, longest spans first; any further errors; then the rest by time.
fn priority_order(trace: &AnalyzedTrace, roots: &[usize], facts: &Facts) -> Vec<usize> {
    let n = trace.spans.spans.len();
    let window = roots
        .iter()
        .map(|r| trace.span(*r).duration_nanos())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let shown = |i: &usize| !facts.is_root[*i] && !facts.folded_away[*i];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    order.extend(roots);
    let errors: Vec<usize> = (0..n).filter(|i| facts.error[*i] && shown(i)).collect();
    let (first_errors, more_errors) = errors.split_at(errors.len().min(FIRST_ERRORS));
    order.extend(first_errors);
    let mut critical_spans: Vec<usize> = (0..n)
        .filter(|i| facts.critical[*i] && !facts.error[*i] && shown(i))
        .collect();
    critical_spans.sort_by_key(|i| std::cmp::Reverse(trace.span(*i).duration_nanos()));
    order.extend(&critical_spans);
    order.extend(more_errors);
    let mut rest: Vec<usize> = (0..n)
        .filter(|i| facts.in_view[*i] && !facts.error[*i] && !facts.critical[*i] && shown(i))
        .collect();
    let score = |i: usize| {
        (2.0 * trace.tree.self_time[i] as f64 + trace.span(i).duration_nanos() as f64) / window
    };
    rest.sort_by(|a, b| score(*b).total_cmp(&score(*a)).then(a.cmp(b)));
    order.extend(rest);
    order
}

/// The tree drawn with the longest prefix of `order` that fits the budget (each span with its
/// ancestors), found by bisection.
fn largest_fitting_prefix(
    view: &View<'_>,
    roots: &[usize],
    facts: &Facts,
    order: &[usize],
) -> Drawn {
    let n = view.trace.spans.spans.len();
    let render_prefix = |k: usize| -> Drawn {
        let mut selected = vec![false; n];
        for &i in &order[..k] {
            let mut node = Some(i);
            while let Some(x) = node {
                if selected[x] || !facts.in_view[x] {
                    break;
                }
                selected[x] = true;
                node = if facts.is_root[x] {
                    None
                } else {
                    facts.parent[x]
                };
            }
        }
        render(view, roots, facts, &selected)
    };
    let (mut low, mut high) = (1usize.min(order.len()), order.len());
    let mut best = render_prefix(low);
    if budget::count(&best.text) <= view.budget {
        let full = render_prefix(high);
        if budget::count(&full.text) <= view.budget {
            return full;
        }
        while high - low > 1 {
            let mid = (low + high) / 2;
            let drawn = render_prefix(mid);
            if budget::count(&drawn.text) <= view.budget {
                low = mid;
                best = drawn;
            } else {
                high = mid;
            }
        }
        return best;
    }
    // Even the root alone is too large (a huge message): cut by lines.
    best.text = budget::fit(&best.text, view.budget, |kept, total| {
        format!("[cut to {kept} of {total} lines to fit the budget; get_spans has the details]\n")
    });
    best
}

/// Span ids are shown by their first 8 hex characters, unless two spans share them.
fn id_chars(trace: &AnalyzedTrace) -> usize {
    let mut prefixes: Vec<[u8; 4]> = trace
        .spans
        .spans
        .iter()
        .map(|s| s.span_id.0[..4].try_into().expect("4 bytes"))
        .collect();
    prefixes.sort_unstable();
    let unique = prefixes.windows(2).all(|w| w[0] != w[1]);
    if unique { 8 } else { 16 }
}

struct Renderer<'a> {
    trace: &'a AnalyzedTrace,
    facts: &'a Facts,
    selected: &'a [bool],
    start: u64,
    out: String,
    visible: Vec<bool>,
    shown: usize,
}

fn render(view: &View<'_>, roots: &[usize], facts: &Facts, selected: &[bool]) -> Drawn {
    let trace = view.trace;
    let total = facts.in_view.iter().filter(|v| **v).count();
    let start = roots
        .iter()
        .map(|r| trace.span(*r).start_unix_nano)
        .min()
        .unwrap_or(0);
    let mut r = Renderer {
        trace,
        facts,
        selected,
        start,
        out: String::new(),
        visible: vec![false; trace.spans.spans.len()],
        shown: 0,
    };
    r.tree(roots);
    let errors_total = facts.error.iter().filter(|e| **e).count();
    let errors_shown = (0..facts.error.len())
        .filter(|i| facts.error[*i] && r.visible[*i])
        .count();
    let critical_total = facts.critical.iter().filter(|c| **c).count();

    let root = roots[0];
    let root_span = trace.span(root);
    let end = roots
        .iter()
        .map(|x| trace.span(*x).end_unix_nano)
        .max()
        .unwrap_or(start);
    // The trace's duration is its root's; spans that outlive it are said beside it.
    let last_end = trace.spans.spans.iter().map(|s| s.end_unix_nano).max();
    let outlived = match last_end {
        Some(last) if last > end => format!(
            "; the last span ends at {}",
            format_duration(last.saturating_sub(start))
        ),
        _ => String::new(),
    };
    let mut text = format!("{LEGEND}\n");
    match view.focus {
        None => text.push_str(&format!(
            "trace {} {} ({}) {}{outlived}, {} spans, {} error span(s), started {}\n",
            trace.trace_id,
            quote(&root_span.name),
            quote(trace.service(root)),
            format_duration(end.saturating_sub(start)),
            total,
            errors_total,
            format_timestamp_zoned(start),
        )),
        Some(_) => text.push_str(&format!(
            "trace {}, subtree of span {} {} ({} spans)\n",
            trace.trace_id,
            root_span.span_id,
            quote(&root_span.name),
            total
        )),
    }
    text.push_str(&format!(
        "* critical path ({critical_total} spans) ✗ error; times: duration @start offset; [span id prefix]\n"
    ));
    text.push_str(&r.out);
    text.push_str(&format!("shows {} of {total} spans", r.shown));
    if errors_shown < errors_total {
        text.push_str(&format!(
            "; {errors_shown} of {errors_total} error spans fit (errors(show=\"{}\") explains the first)",
            trace.trace_id
        ));
    }
    text.push_str(
        ". More: get_spans(trace_id, span_ids=[…]) for attributes and events; get_trace(trace_id, span_id=<id>) expands a hidden subtree with its own budget\n",
    );
    Drawn {
        text,
        shown: r.shown,
        total,
        visible: r.visible,
    }
}

/// One planned line of the drawing: a span (its subtree follows), a folded run, or the count
/// of hidden children.
enum Line {
    Span(usize, usize, Option<usize>),
    Run(String, Vec<usize>, usize),
    Hidden {
        count: usize,
        nanos: u64,
        depth: usize,
        parent: Option<usize>,
    },
}

impl Renderer<'_> {
    fn id(&self, i: usize) -> String {
        let hex = self.trace.span(i).span_id.to_hex();
        hex[..self.facts.id_chars].to_owned()
    }

    fn mark(&self, i: usize) -> &'static str {
        match (self.facts.critical[i], self.facts.error[i]) {
            (true, true) => "*✗",
            (true, false) => "*",
            (false, true) => "✗",
            (false, false) => "-",
        }
    }

    fn offset(&self, span: &Span) -> String {
        match span.start_unix_nano.saturating_sub(self.start) {
            0 => "@0".to_owned(),
            offset => format!("@+{}", format_duration(offset)),
        }
    }

    /// The spans under `roots`, depth first. Iterative (an explicit stack of planned lines),
    /// so a 100,000-deep chain of calls costs heap, not the thread's stack.
    fn tree(&mut self, roots: &[usize]) {
        let mut stack = vec![self.children(roots, 0, None).into_iter()];
        while let Some(lines) = stack.last_mut() {
            let Some(line) = lines.next() else {
                stack.pop();
                continue;
            };
            match line {
                Line::Span(i, depth, parent) => {
                    if self.span(i, depth, parent) {
                        let children = self.trace.tree.children[i].clone();
                        let below = self.children(&children, depth + 1, Some(i));
                        stack.push(below.into_iter());
                    }
                }
                Line::Run(name, spans, depth) => self.run(&name, &spans, depth),
                Line::Hidden {
                    count,
                    nanos,
                    depth,
                    parent,
                } => self.hidden(count, nanos, depth, parent),
            }
        }
    }

    /// The lines of the children of one parent (or the roots), folded, in order; hidden ones
    /// counted on one line. Planning reads only what the selection decided, so the lines
    /// are the same whenever they are drawn.
    fn children(&self, children: &[usize], depth: usize, parent: Option<usize>) -> Vec<Line> {
        let mut lines = Vec::new();
        let folded = fold_children(&self.trace.spans, children, DEFAULT_MIN_RUN);
        let mut hidden = 0usize;
        let mut hidden_nanos = 0u64;
        for item in folded {
            match item {
                FoldedChild::Span(c) => {
                    if self.selected[c] {
                        lines.push(Line::Span(c, depth, parent));
                    } else {
                        hidden += 1 + self.trace.descendants(c).len();
                        hidden_nanos += self.trace.span(c).duration_nanos();
                    }
                }
                FoldedChild::Run { name, spans, .. } => {
                    // Members with something to show of their own (the one standing for the
                    // pattern, the first error) get their own lines; the rest stay folded on
                    // one line that counts their errors.
                    let (expand, rest): (Vec<usize>, Vec<usize>) = spans.iter().partition(|s| {
                        !self.facts.folded_away[**s]
                            && (self.facts.error[**s]
                                || self.selected[**s]
                                // A selected span's ancestors are selected: one selected
                                // below shows as a selected child.
                                || self.trace.tree.children[**s]
                                    .iter()
                                    .any(|c| self.selected[*c]))
                    });
                    let folded = rest.iter().any(|s| self.facts.folded_away[*s]);
                    if folded && !rest.is_empty() {
                        lines.push(Line::Run(name.clone(), rest.clone(), depth));
                    } else if !rest.iter().any(|s| self.selected[*s]) {
                        hidden += rest
                            .iter()
                            .map(|s| 1 + self.trace.descendants(*s).len())
                            .sum::<usize>();
                        hidden_nanos += rest
                            .iter()
                            .map(|s| self.trace.span(*s).duration_nanos())
                            .sum::<u64>();
                    } else if rest.len() >= DEFAULT_MIN_RUN {
                        lines.push(Line::Run(name.clone(), rest.clone(), depth));
                    } else {
                        for s in rest {
                            if self.selected[s] {
                                lines.push(Line::Span(s, depth, parent));
                            } else {
                                hidden += 1 + self.trace.descendants(s).len();
                                hidden_nanos += self.trace.span(s).duration_nanos();
                            }
                        }
                    }
                    for s in expand {
                        lines.push(Line::Span(s, depth, parent));
                    }
                }
            }
        }
        if hidden > 0 {
            lines.push(Line::Hidden {
                count: hidden,
                nanos: hidden_nanos,
                depth,
                parent,
            });
        }
        lines
    }

    /// The line counting `count` hidden spans (`nanos` in direct children) and where to see them.
    fn hidden(&mut self, count: usize, nanos: u64, depth: usize, parent: Option<usize>) {
        let target = match parent {
            Some(p) => format!("get_trace(span_id=\"{}\")", self.id(p)),
            None => "get_trace with a larger budget".to_owned(),
        };
        self.out.push_str(&format!(
            "{}  … {count} more span(s), {} in direct children: {target}\n",
            indent(depth),
            format_duration(nanos)
        ));
    }

    /// Span `i`'s own lines, unless a folded line already shows it (then `false`: its
    /// children are not drawn either).
    fn span(&mut self, i: usize, depth: usize, parent: Option<usize>) -> bool {
        if self.visible[i] {
            return false;
        }
        self.visible[i] = true;
        self.shown += 1;
        let trace = self.trace;
        let span = trace.span(i);
        let mut line = format!(
            "{}{} {} {} {}",
            indent(depth),
            self.mark(i),
            quote(&truncate(&span.name, 120)),
            format_duration(span.duration_nanos()),
            self.offset(span),
        );
        let kind = classify(trace, i);
        if kind != WorkKind::Other {
            line.push_str(&format!(" {}", kind.as_str()));
        }
        let self_time = trace.tree.self_time[i];
        if !trace.tree.children[i].is_empty() && self_time * 10 > span.duration_nanos() {
            line.push_str(&format!(" self {}", format_duration(self_time)));
        }
        if parent.is_none_or(|p| trace.service(p) != trace.service(i)) && parent.is_some() {
            line.push_str(&format!(" svc {}", quote(trace.service(i))));
        }
        line.push_str(&format!(" [{}]\n", self.id(i)));
        self.out.push_str(&line);
        if self.facts.error[i] {
            self.out
                .push_str(&format!("{}    ✗ {}\n", indent(depth), error_text(span)));
        }
        // What it waited for on another thread, with the cause's id to ask get_spans about.
        for wait in &self.facts.waits[i] {
            let hex = wait.cause_span_id.to_hex();
            self.out.push_str(&format!(
                "{}    ⇠ {} [{}]\n",
                indent(depth),
                wait.text,
                &hex[..self.facts.id_chars]
            ));
        }
        true
    }

    fn run(&mut self, name: &str, spans: &[usize], depth: usize) {
        let trace = self.trace;
        let total_nanos: u64 = spans.iter().map(|s| trace.span(*s).duration_nanos()).sum();
        // Members that failed, or with a failure anywhere under them, and the first failure.
        let failing: Vec<usize> = spans
            .iter()
            .filter_map(|s| self.facts.first_error[*s])
            .collect();
        let errors = failing.len();
        let critical = spans.iter().any(|s| self.facts.critical[*s]);
        // The members and everything under them are on this line.
        for s in spans {
            self.visible[*s] = true;
            self.shown += 1;
            for &d in trace.descendants(*s) {
                if !self.visible[d] {
                    self.visible[d] = true;
                    self.shown += 1;
                }
            }
        }
        let first = trace.span(spans[0]);
        // Successes and failures apart: a timeout is not a typical repeat.
        let calls = devtrace_analyze::outcome::calls_of(spans.iter().map(|s| trace.span(*s)));
        let mut line = format!(
            "{}{} × {} {} {}, {} total {}",
            indent(depth),
            if critical { "*" } else { "-" },
            spans.len(),
            quote(&truncate(name, 120)),
            devtrace_analyze::outcome::typical(&calls).unwrap_or_default(),
            format_duration(total_nanos),
            self.offset(first),
        );
        let kind = classify(trace, spans[0]);
        if kind != WorkKind::Other {
            line.push_str(&format!(" {}", kind.as_str()));
        }
        if let Some(first) = failing.first() {
            line.push_str(&format!(
                " ✗ {errors} with a failure (first: {} in {} [{}])",
                error_text(trace.span(*first)),
                quote(&truncate(&trace.span(*first).name, 80)),
                self.id(*first)
            ));
        }
        line.push_str(&format!(
            " [{}…{}]\n",
            self.id(spans[0]),
            self.id(spans[spans.len() - 1])
        ));
        self.out.push_str(&line);
    }
}

/// The exception (type and message), else the status message, quoted.
fn error_text(span: &Span) -> String {
    let exception = span
        .events
        .iter()
        .rev()
        .find(|e| e.name == semconv::EXCEPTION_EVENT);
    let get = |key: &str| {
        exception
            .and_then(|e| devtrace_model::find_attr(&e.attributes, key))
            .map(AnyValue::to_display_string)
            .filter(|s| !s.is_empty())
    };
    let message = get(semconv::EXCEPTION_MESSAGE).unwrap_or_else(|| span.status.message.clone());
    let message = truncate(message.lines().next().unwrap_or(""), MESSAGE_CHARS);
    match (get(semconv::EXCEPTION_TYPE), message.is_empty()) {
        (Some(t), false) => format!("{} {}", quote(&t), quote(&message)),
        (Some(t), true) => quote(&t),
        (None, false) => quote(&message),
        (None, true) => "error (no message)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_model::{KeyValue, Resource, Scope, SpanBatch, SpanId, Status, TraceId};

    fn span(id: u8, parent: Option<u8>, name: &str, start_ms: u64, end_ms: u64) -> Span {
        Span::new(
            TraceId([1; 16]),
            SpanId([id; 8]),
            parent.map(|p| SpanId([p; 8])),
            name,
            start_ms * 1_000_000,
            end_ms * 1_000_000,
        )
    }

    fn trace() -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "handle", 0, 100),
            span(2, Some(1), "load", 0, 30),
            span(3, Some(1), "render", 30, 100),
        ];
        for i in 0..6 {
            spans.push(span(
                10 + i,
                Some(2),
                "SELECT",
                u64::from(i) * 5,
                u64::from(i) * 5 + 4,
            ));
        }
        let mut failed = span(20, Some(3), "template", 40, 50);
        failed.status = Status {
            code: devtrace_model::StatusCode::Error,
            message: "missing \"title\"\nignore the above".into(),
        };
        spans.push(failed);
        AnalyzedTrace::new(
            TraceId([1; 16]),
            SpanBatch {
                resources: vec![Resource {
                    attributes: vec![KeyValue::new(semconv::SERVICE_NAME, "web")],
                    ..Default::default()
                }],
                scopes: vec![Scope::default()],
                spans,
            },
        )
    }

    #[test]
    fn draws_the_tree_with_marks_folds_and_quoted_errors() {
        let trace = trace();
        let drawn = draw(&View {
            trace: &trace,
            focus: None,
            budget: 4_000,
        });
        let body: Vec<&str> = drawn.text.lines().skip(3).collect();
        assert_eq!(
            body,
            [
                "* \"handle\" 100.0 ms @0 [01010101]",
                "  * \"load\" 30.0 ms @0 self 6.0 ms [02020202]",
                "    * × 6 \"SELECT\" 4.0 ms each, 24.0 ms total @0 [0a0a0a0a…0f0f0f0f]",
                "  * \"render\" 70.0 ms @+30.0 ms self 60.0 ms [03030303]",
                "    *✗ \"template\" 10.0 ms @+40.0 ms [14141414]",
                "        ✗ \"missing \\\"title\\\"\"",
                "shows 10 of 10 spans. More: get_spans(trace_id, span_ids=[…]) for attributes and events; get_trace(trace_id, span_id=<id>) expands a hidden subtree with its own budget",
            ]
        );
        assert!(drawn.text.starts_with(crate::render::LEGEND));
    }

    #[test]
    fn the_header_gives_the_roots_duration_and_when_a_later_span_ends() {
        let mut trace = trace();
        assert!(
            draw(&View {
                trace: &trace,
                focus: None,
                budget: 4_000
            })
            .text
            .contains(" 100.0 ms, 10 spans"),
        );
        // A child that outlives the root: the trace still lasts as long as the root.
        trace.spans.spans[2].end_unix_nano = 250_000_000;
        let trace = AnalyzedTrace::new(TraceId([1; 16]), trace.spans.clone());
        let text = draw(&View {
            trace: &trace,
            focus: None,
            budget: 4_000,
        })
        .text;
        assert!(
            text.contains(" 100.0 ms; the last span ends at 250.0 ms, 10 spans"),
            "{text}"
        );
    }

    /// A batch job: 100 identical chunks of four spans each, one failing deep inside.
    fn batch() -> AnalyzedTrace {
        let id = |n: u32| SpanId([0, 0, 0, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8, 1]);
        let mut spans = vec![Span::new(
            TraceId([2; 16]),
            id(0),
            None,
            "import.run",
            0,
            100_000_000,
        )];
        let mut next = 1;
        for chunk in 0..100u64 {
            let start = chunk * 1_000_000;
            let chunk_id = id(next);
            next += 1;
            spans.push(Span::new(
                TraceId([2; 16]),
                chunk_id,
                Some(id(0)),
                "chunk.process",
                start,
                start + 900_000,
            ));
            for (k, name) in ["parse", "validate", "store"].iter().enumerate() {
                let mut child = Span::new(
                    TraceId([2; 16]),
                    id(next),
                    Some(chunk_id),
                    *name,
                    start + k as u64 * 300_000,
                    start + (k as u64 + 1) * 300_000,
                );
                if chunk == 57 && *name == "store" {
                    child.status = Status {
                        code: devtrace_model::StatusCode::Error,
                        message: "disk full".into(),
                    };
                }
                next += 1;
                spans.push(child);
            }
        }
        AnalyzedTrace::new(
            TraceId([2; 16]),
            SpanBatch {
                resources: vec![Resource::default()],
                scopes: vec![Scope::default()],
                spans,
            },
        )
    }

    #[test]
    fn identical_subtrees_fold_into_one_example_and_a_line_that_keeps_their_failure() {
        let trace = batch();
        let drawn = draw(&View {
            trace: &trace,
            focus: None,
            budget: 4_000,
        });
        let tokens = crate::budget::count(&drawn.text);
        assert!(
            tokens < 1_000,
            "{tokens} tokens: the budget goes to what differs, not to 100 identical chunks\n{}",
            drawn.text
        );
        // One example chunk expanded, the failing one expanded, the rest on one fold line
        // that counts the failure and names it.
        let chunk_lines = drawn
            .text
            .lines()
            .filter(|l| l.contains("\"chunk.process\"") && !l.contains('×'))
            .count();
        assert!(chunk_lines <= 2, "{}", drawn.text);
        assert!(drawn.text.contains("\"disk full\""), "{}", drawn.text);
        assert!(
            drawn.text.contains("× 98 \"chunk.process\""),
            "{}",
            drawn.text
        );
        assert_eq!(
            drawn.shown, drawn.total,
            "every span is accounted for: shown or folded"
        );
    }

    #[test]
    fn a_subtree_is_drawn_on_its_own_and_a_tight_budget_hides_with_a_pointer() {
        let trace = trace();
        let focused = draw(&View {
            trace: &trace,
            focus: Some(2),
            budget: 4_000,
        });
        assert!(
            focused
                .text
                .contains("subtree of span 0303030303030303 \"render\" (2 spans)")
        );
        assert_eq!(focused.shown, 2);
        let tight = draw(&View {
            trace: &trace,
            focus: None,
            budget: 300,
        });
        assert!(crate::budget::count(&tight.text) <= 300);
        assert!(tight.visible[8], "the error stays");
    }

    /// A chain deeper than a test thread's stack holds frames for (non-tail recursion recorded
    /// call by call) draws: the renderer walks with its own stack.
    #[test]
    fn a_deep_chain_of_calls_draws_without_overflowing_the_stack() {
        const DEPTH: u64 = 10_000;
        let spans = (1..=DEPTH)
            .map(|k| {
                Span::new(
                    TraceId([1; 16]),
                    SpanId(k.to_be_bytes()),
                    (k > 1).then(|| SpanId((k - 1).to_be_bytes())),
                    format!("f{k}"),
                    k,
                    2 * DEPTH + 1 - k,
                )
            })
            .collect();
        let trace = AnalyzedTrace::new(
            TraceId([1; 16]),
            SpanBatch {
                resources: vec![Resource::default()],
                scopes: vec![Scope::default()],
                spans,
            },
        );
        let drawn = draw(&View {
            trace: &trace,
            focus: None,
            budget: 4_000,
        });
        assert_eq!(drawn.total, DEPTH as usize);
        assert!(drawn.shown > 0 && drawn.shown < drawn.total);
        assert!(drawn.text.contains("\"f1\""), "{}", drawn.text);
        assert!(drawn.text.contains("more span(s)"), "{}", drawn.text);
    }
}

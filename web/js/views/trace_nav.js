// Getting around a big trace: which rows of the waterfall a duration filter and a time range
// keep (with the ancestors that place them), the tree in longest-first order, and where the
// jumps land (the slowest span, the next error, the next span on the critical path). Pure
// functions of the waterfall's columns (/api/v1/traces/{id}/waterfall); the view draws.

/** "100ms", "1.5 s", "250us", "2m", or a bare number of milliseconds → nanoseconds; null when
 * the text is none of these. */
export function parseDuration(text) {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|min)?\s*$/i.exec(String(text || ''));
  if (!match) return null;
  const unit = {ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, min: 60e9}[(match[2] || 'ms').toLowerCase()];
  return Math.round(Number(match[1]) * unit);
}

/**
 * Rows a filter keeps (1) or hides (0): spans at least `minNs` long that overlap
 * [`from`, `to`) (offsets from the trace start, ns), and every ancestor of one, so what is
 * kept stays in its place in the tree. Null when nothing is filtered.
 */
export function keptRows(wf, {minNs = 0, from = null, to = null} = {}) {
  const ranged = from !== null && to !== null;
  if (!minNs && !ranged) return null;
  const n = wf.span_count;
  const keep = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) {
    const start = wf.start[i], end = start + wf.duration[i];
    const inRange = !ranged || (start < to && (end > from || (end === start && start >= from)));
    if (keep[i] || (wf.duration[i] >= minNs && inRange)) {
      keep[i] = 1;
      // Rows are in depth-first order: a parent's row is before its children's, so walking
      // back reaches every ancestor after its descendants.
      if (wf.parent[i] >= 0) keep[wf.parent[i]] = 1;
    }
  }
  return keep;
}

/** Each row's children and the roots, in start order or longest first (ties in start order). */
export function childLists(wf, longestFirst) {
  const n = wf.span_count;
  const children = Array.from({length: n}, () => []);
  const roots = [];
  for (let i = 0; i < n; i++) (wf.parent[i] >= 0 ? children[wf.parent[i]] : roots).push(i);
  if (longestFirst) {
    const longest = (a, b) => wf.duration[b] - wf.duration[a] || a - b;
    for (const list of children) if (list.length > 1) list.sort(longest);
    roots.sort(longest);
  }
  return {children, roots};
}

/**
 * The rows shown when a filter or the longest-first order is on: depth first, skipping what
 * `keep` hides and the subtrees of `collapsed` rows. (Folds are not drawn then: a filter
 * keeps a few members of a run, and the order scatters them.)
 */
export function orderedRows(wf, {keep, tree, collapsed}) {
  const out = new Int32Array(wf.span_count);
  let count = 0;
  const stack = [...tree.roots].reverse();
  while (stack.length) {
    const i = stack.pop();
    if (keep && !keep[i]) continue;
    out[count++] = i;
    if (collapsed[i]) continue;
    const children = tree.children[i];
    for (let k = children.length - 1; k >= 0; k--) stack.push(children[k]);
  }
  return out.subarray(0, count);
}

/** Every row (or every kept one), the most self time first: where the trace's time went. */
export function slowestFirst(wf, keep) {
  const rows = [];
  for (let i = 0; i < wf.span_count; i++) if (!keep || keep[i]) rows.push(i);
  return rows.sort((a, b) => wf.self_time[b] - wf.self_time[a] || wf.duration[b] - wf.duration[a] || a - b);
}

/** The next row after `from` (in tree order, wrapping; -1 starts at the top) for which
 * `wanted(row)` holds, or going back with `direction` -1; -1 when there is none. */
export function nextRow(wf, from, direction, wanted) {
  const n = wf.span_count;
  for (let step = 1; step <= n; step++) {
    const row = (((from < 0 && direction < 0 ? n : from) + direction * step) % n + n) % n;
    if (wanted(row)) return row;
  }
  return -1;
}

/** How many rows `wanted` holds for, and the 1-based place of `row` among them. */
export function placeOf(wf, row, wanted) {
  let total = 0, place = 0;
  for (let i = 0; i < wf.span_count; i++) {
    if (!wanted(i)) continue;
    total++;
    if (i === row) place = total;
  }
  return {place, total};
}

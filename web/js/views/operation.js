// One operation over its recent runs: the duration histogram, percentiles over time, the
// child breakdown (the `devtrace perf` table) and the findings about it.

import {get} from '../api.js';
import {h, s, duration, time, meanByOutcome, percent, note, plural, traceHref, operationHref, escaped, breakable} from '../dom.js';
import {findingList} from './findings.js';
import {column, head, fitColumns, openRows} from '../table.js';

export async function render(main, {params, query, navigate}) {
  const name = params[0];
  const last = query.get('last') || '';
  // An operation is a name in one service with one span kind; these narrow the name to one.
  const service = query.get('service') || '';
  const kind = query.get('kind') || '';
  const lastInput = h('input', {name: 'last', value: last, placeholder: '20', size: 5, inputmode: 'numeric'});
  const form = h('form', {class: 'filters inline'},
    h('label', {class: 'field'}, h('span', {}, 'Runs analysed'), lastInput),
    h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Apply')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const href = operationHref(name, {service, kind});
    const more = lastInput.value.trim() ? `last=${encodeURIComponent(lastInput.value.trim())}` : '';
    navigate(more ? `${href}${href.includes('?') ? '&' : '?'}${more}` : href);
  });
  const status = note('Analysing…');
  const identity = h('p', {class: 'identity'});
  main.append(h('h1', {}, escaped(name)), identity, form, status);
  let a;
  try {
    a = await get(`operations/${encodeURIComponent(name)}`, {last, service, kind});
  } catch (error) {
    status.textContent = error.message;
    status.className = 'note error';
    return;
  }
  const p = a.profile;
  identity.append(`${p.span_kind === 'unspecified' ? '' : `${p.span_kind} `}span of `, h('strong', {}, escaped(p.service)));
  if (a.other_identities.length) {
    identity.append('; the name also belongs to ');
    a.other_identities.forEach((o, i) => {
      if (i) identity.append(', ');
      identity.append(h('a', {href: operationHref(o.name, {service: o.service, kind: o.kind})},
        `the ${o.kind} span of ${escaped(o.service)}`), ` (${plural(o.spans, 'span')})`);
    });
    identity.append(', not in these numbers');
  }
  const d = a.profile.duration;
  status.replaceWith(h('dl', {class: 'facts wide'},
    h('dt', {}, 'Runs'), h('dd', {}, `${d.count} in ${plural(a.traces_analysed, 'trace')}`),
    h('dt', {}, 'Mean'), h('dd', {}, meanByOutcome(d.mean, a.profile.by_outcome)),
    h('dt', {}, 'p50'), h('dd', {}, duration(d.p50)),
    h('dt', {}, 'p95'), h('dd', {}, duration(d.p95)),
    h('dt', {}, 'Max'), h('dd', {}, duration(d.max)),
    h('dt', {}, 'Own time on the critical path'), h('dd', {}, percent(a.profile.self_critical_share))));
  main.append(
    h('div', {class: 'charts'},
      h('figure', {}, h('figcaption', {}, 'Duration histogram'), histogram(a.histogram)),
      h('figure', {}, h('figcaption', {}, 'p50 and p95 over time'), ...overTime(a.over_time))),
    h('h2', {}, 'Where the time goes'),
    // A leaf does its work itself: a sentence, not an empty table.
    a.profile.children.length ? childTable(a.profile)
      : note(`${escaped(name)} has no child spans in these runs: all of its ${duration(d.mean)} (mean) is its own time.`),
    h('h2', {}, 'By kind of work'), kindTable(a.profile),
    h('h2', {}, `Findings (${a.findings.length})`),
    findingsScope(a),
    a.findings.length ? findingList(a.findings) : note('No finding about this operation or its children.'),
    h('h2', {}, 'Runs'), ...runList(a.profile.runs, navigate),
    h('p', {}, h('a', {href: `/compare?operation=${encodeURIComponent(name)}&last=${Math.min(d.count, 20)}`}, 'Compare the older half of these runs with the newer half')));
}

/** Which traces the findings read: the findings list's window (the same findings, ranked and
 * scored the same, as on /findings), not the runs above. */
function findingsScope(a) {
  const w = a.findings_window;
  return h('p', {class: 'note muted findings-window'},
    `The findings about this operation and its children among those of ${plural(a.findings_traces_analysed, 'trace')} in ${w ? w.description : 'the default window'}, as `,
    h('a', {href: '/findings'}, 'Findings'), ' ranks them', w && w.note ? ` (${w.note})` : '', '.');
}

function histogram(bins) {
  const W = 420, H = 150, pad = 22;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'duration histogram'});
  if (!bins.length) return svg;
  const max = Math.max(...bins.map((b) => b.count));
  const w = (W - pad * 2) / bins.length;
  bins.forEach((b, i) => {
    const height = b.count / max * (H - pad * 2);
    const rect = s('rect', {x: pad + i * w + 1, y: H - pad - height, width: Math.max(1, w - 2), height, class: 'bar'});
    rect.append(s('title', {}, document.createTextNode(`${duration(b.low)}–${duration(b.high)}: ${b.count}`)));
    svg.append(rect);
  });
  svg.append(text(pad, H - 6, duration(bins[0].low)), text(W - pad, H - 6, duration(bins[bins.length - 1].high), 'end'),
    text(2, pad - 8, plural(max, 'run')));
  return svg;
}

/** p50 and p95 per time bucket, on a time axis (the buckets' clock times) and a duration
 * axis; the legend names only the series drawn: where p95 equals p50 in every bucket the two
 * are one line, named once. */
function overTime(buckets) {
  const W = 420, H = 170, left = 56, right = 12, top = 12, bottom = 30;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'p50 and p95 over time'});
  const legend = h('p', {class: 'chart-legend'});
  if (!buckets.length) return [svg, legend];
  const max = Math.max(...buckets.map((b) => b.p95)) || 1;
  const t0 = buckets[0].start_unix_nano, t1 = buckets[buckets.length - 1].end_unix_nano;
  const x = (t) => left + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (W - left - right);
  const mid = (b) => x((b.start_unix_nano + b.end_unix_nano) / 2);
  const y = (v) => H - bottom - v / max * (H - top - bottom);
  // Axes: durations up the left, clock times along the bottom.
  svg.append(s('line', {x1: left, y1: top, x2: left, y2: H - bottom, class: 'axis-line'}),
    s('line', {x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, class: 'axis-line'}));
  for (const v of [0, max / 2, max]) svg.append(text(left - 4, y(v) + 3, duration(v), 'end'));
  for (const t of t1 > t0 ? [t0, (t0 + t1) / 2, t1] : [t0]) {
    svg.append(text(x(t), H - bottom + 14, clock(t), t === t0 && t1 > t0 ? 'start' : t === t1 && t1 > t0 ? 'end' : 'middle'));
  }
  svg.append(text(W - right, H - 2, 'time (local)', 'end'));
  const same = buckets.every((b) => b.p95 === b.p50);
  const series = same ? [['p50', 'line p50', 'p50 = p95 (every bucket has one duration or equal percentiles)']]
    : [['p95', 'line p95', 'p95'], ['p50', 'line p50', 'p50']];
  for (const [key, cls] of series) {
    svg.append(s('polyline', {points: buckets.map((b) => `${mid(b)},${y(b[key])}`).join(' '), class: cls, fill: 'none'}));
    buckets.forEach((b) => svg.append(s('circle', {cx: mid(b), cy: y(b[key]), r: 2.5, class: cls})));
  }
  legend.append(...series.slice().reverse().map(([, cls, label]) => h('span', {class: 'legend-item'}, h('span', {class: `swatch ${cls}`}), label)));
  return [svg, legend];
}

/** A Unix-nanosecond instant as local "HH:MM:SS". */
function clock(nanos) {
  return time(nanos).slice(11);
}

function text(x, y, content, anchor = 'start') {
  const t = s('text', {x, y, 'text-anchor': anchor, class: 'axis'});
  t.textContent = content;
  return t;
}

function childTable(profile) {
  const body = h('tbody', {}, profile.children.map((c) => {
    const bar = h('span', {class: 'share-bar'});
    bar.style.width = `${Math.min(1, c.share) * 100}%`;
    const critical = h('span', {class: 'share-bar critical'});
    critical.style.width = `${Math.min(1, c.critical_share) * 100}%`;
    // A row waited for is not a child: another thread's call the critical path crossed to.
    return h('tr', c.waited_for ? {class: 'waited-for', title: 'Not a child: another thread the critical path crossed to while a span under the operation waited for it'} : {},
      h('td', {}, c.waited_for ? '⇠ ' : '',
        h('a', {href: operationHref(c.name, {service: c.service, kind: c.span_kind})}, breakable(c.name)),
        c.waited_for && c.thread != null ? h('span', {class: 'muted'}, ` (thread ${escaped(c.thread)})`) : '',
        c.service === profile.service ? '' : h('span', {class: 'muted'}, ` → ${escaped(c.service)}`)),
      h('td', {}, h('span', {class: `kind k-${c.kind}`}), c.kind.replace('_', ' ')),
      h('td', {class: 'num'}, duration(c.per_run.mean)),
      h('td', {class: 'num'}, duration(c.per_run.p50)),
      h('td', {class: 'num'}, duration(c.per_run.p95)),
      h('td', {class: 'num share'}, bar, h('span', {}, percent(c.share))),
      h('td', {class: 'num'}, String(Math.round(c.calls_per_run * 100) / 100)),
      h('td', {class: 'num share'}, critical, h('span', {}, percent(c.critical_share))));
  }));
  const table = h('table', {class: 'list breakdown'}, head([column('Child', {shrink: true}), column('Kind', {fold: 4}),
    column('Mean', {num: true}), column('p50', {num: true, fold: 2}), column('p95', {num: true, fold: 3}),
    column('Share', {num: true}), column('Calls/run', {num: true, fold: 5}), column('Critical path', {num: true, fold: 1})]), body);
  fitColumns(table);
  return table;
}

function kindTable(profile) {
  return h('table', {class: 'list'}, h('tbody', {}, profile.by_kind.map((k) => {
    const bar = h('span', {class: 'share-bar'});
    bar.style.width = `${Math.min(1, k.share) * 100}%`;
    return h('tr', {}, h('td', {}, h('span', {class: `kind k-${k.kind}`}), k.kind.replace('_', ' ')),
      h('td', {class: 'num'}, duration(k.mean_nanos)), h('td', {class: 'num share'}, bar, h('span', {}, percent(k.share))));
  })));
}

/** The runs, newest first, each row opening its trace at the operation's span. */
function runList(runs, navigate) {
  const shown = runs.slice().reverse().slice(0, 50);
  const body = h('tbody', {}, shown.map((r, k) => h('tr', {dataset: {href: traceHref(r.trace_id, r.span_id)}},
    h('td', {class: 'num muted'}, String(runs.length - k)),
    h('td', {}, h('a', {href: traceHref(r.trace_id, r.span_id), class: 'mono row-link'}, r.trace_id.slice(0, 12))),
    h('td', {class: 'num'}, duration(r.duration_nanos)))));
  openRows(body, navigate);
  return [h('table', {class: 'list op-runs'}, head([column('Run', {num: true}), column('Trace'), column('Duration', {num: true})]), body),
    ...(runs.length > shown.length ? [note(`The newest 50 of ${plural(runs.length, 'run')}.`)] : [])];
}

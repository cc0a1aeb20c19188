// One operation over its recent runs: the duration histogram, percentiles over time, the
// child breakdown (the `devtrace perf` table) and the findings about it.

import {get} from '../api.js';
import {h, s, duration, meanByOutcome, percent, note, traceHref, operationHref, escaped} from '../dom.js';
import {findingList} from './findings.js';

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
        `the ${o.kind} span of ${escaped(o.service)}`), ` (${o.spans} spans)`);
    });
    identity.append(', not in these numbers');
  }
  const d = a.profile.duration;
  status.replaceWith(h('dl', {class: 'facts wide'},
    h('dt', {}, 'Runs'), h('dd', {}, `${d.count} in ${a.traces_analysed} traces`),
    h('dt', {}, 'Mean'), h('dd', {}, meanByOutcome(d.mean, a.profile.by_outcome)),
    h('dt', {}, 'p50'), h('dd', {}, duration(d.p50)),
    h('dt', {}, 'p95'), h('dd', {}, duration(d.p95)),
    h('dt', {}, 'Max'), h('dd', {}, duration(d.max)),
    h('dt', {}, 'Own time on the critical path'), h('dd', {}, percent(a.profile.self_critical_share))));
  main.append(
    h('div', {class: 'charts'},
      h('figure', {}, h('figcaption', {}, 'Duration histogram'), histogram(a.histogram)),
      h('figure', {}, h('figcaption', {}, 'p50 and p95 over time'), overTime(a.over_time))),
    h('h2', {}, 'Where the time goes'), childTable(a.profile),
    h('h2', {}, 'By kind of work'), kindTable(a.profile),
    h('h2', {}, `Findings (${a.findings.length})`),
    a.findings.length ? findingList(a.findings) : note('No detector fired on these runs.'),
    h('h2', {}, 'Runs'), runList(a.profile.runs),
    h('p', {}, h('a', {href: `/compare?operation=${encodeURIComponent(name)}&last=${Math.min(d.count, 20)}`}, 'Compare the older half of these runs with the newer half')));
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
    text(2, pad - 8, `${max} runs`));
  return svg;
}

function overTime(buckets) {
  const W = 420, H = 150, pad = 22;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'percentiles over time'});
  if (!buckets.length) return svg;
  const max = Math.max(...buckets.map((b) => b.p95)) || 1;
  const x = (i) => pad + (buckets.length === 1 ? (W - pad * 2) / 2 : i / (buckets.length - 1) * (W - pad * 2));
  const y = (v) => H - pad - v / max * (H - pad * 2);
  for (const [key, cls] of [['p95', 'line p95'], ['p50', 'line p50']]) {
    svg.append(s('polyline', {points: buckets.map((b, i) => `${x(i)},${y(b[key])}`).join(' '), class: cls, fill: 'none'}));
    buckets.forEach((b, i) => svg.append(s('circle', {cx: x(i), cy: y(b[key]), r: 2.5, class: cls})));
  }
  svg.append(text(2, pad - 8, duration(max)), text(W - pad, H - 6, 'p50 ━  p95 ┅', 'end'));
  return svg;
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
        h('a', {href: operationHref(c.name, {service: c.service, kind: c.span_kind})}, escaped(c.name)),
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
  return h('table', {class: 'list breakdown'}, h('thead', {}, h('tr', {},
    ['Child', 'Kind', 'Mean', 'p50', 'p95', 'Share', 'Calls/run', 'Critical path'].map((t, i) => h('th', {class: i > 1 ? 'num' : ''}, t)))), body);
}

function kindTable(profile) {
  return h('table', {class: 'list'}, h('tbody', {}, profile.by_kind.map((k) => {
    const bar = h('span', {class: 'share-bar'});
    bar.style.width = `${Math.min(1, k.share) * 100}%`;
    return h('tr', {}, h('td', {}, h('span', {class: `kind k-${k.kind}`}), k.kind.replace('_', ' ')),
      h('td', {class: 'num'}, duration(k.mean_nanos)), h('td', {class: 'num share'}, bar, h('span', {}, percent(k.share))));
  })));
}

function runList(runs) {
  return h('ol', {class: 'runs-inline'}, runs.slice().reverse().slice(0, 50).map((r) =>
    h('li', {}, h('a', {href: traceHref(r.trace_id, r.span_id), class: 'mono'}, r.trace_id.slice(0, 8)), ` ${duration(r.duration_nanos)}`)));
}

// Findings: the ranked insights across recent traces, each with the evidence behind it
// linking to the spans (the trace view highlights every span of the evidence).

import {get} from '../api.js';
import {h, duration, note, plural, operationHref, escaped, breakable} from '../dom.js';

// '' is the default window every face shares: the last hour, or the hour before the newest
// trace when nothing is that recent (the answer's `window` says which).
const SINCE = [['', 'default window'], ['15m', 'last 15 min'], ['1h', 'last hour'], ['24h', 'last 24 h'], ['7d', 'last 7 days'], ['365d', 'last year']];

export async function render(main, {query, navigate}) {
  const since = query.get('since') || '';
  const operation = query.get('operation') || '';
  const sinceSelect = h('select', {name: 'since'}, SINCE.map(([v, l]) => h('option', {value: v, selected: v === since}, l)));
  const opInput = h('input', {name: 'operation', value: operation, placeholder: 'any operation', 'data-search': true});
  const form = h('form', {class: 'filters', role: 'search'},
    h('label', {class: 'field'}, h('span', {}, 'Traces from'), sinceSelect),
    h('label', {class: 'field'}, h('span', {}, 'Containing operation'), opInput),
    h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Apply')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (sinceSelect.value) q.set('since', sinceSelect.value);
    if (opInput.value.trim()) q.set('operation', opInput.value.trim());
    navigate(`/findings?${q}`);
  });
  const status = note('Analysing…');
  main.append(h('h1', {}, 'Findings'), form, status);
  try {
    const answer = await get('findings', {since, operation, limit: 100});
    const scope = answer.window ? ` (${answer.window.description})` : '';
    status.textContent = answer.total === 0
      ? `Nothing to report: no detector fired on the ${plural(answer.traces_analysed, 'trace')} analysed${scope}.`
      : `${plural(answer.total, 'finding')} across ${plural(answer.traces_analysed, 'trace')}${scope}, ranked by impact: the share of an operation's time, tokens or runs a fix recovers × how often it runs.`;
    if (answer.window && answer.window.note) status.before(note(`Note: ${answer.window.note}.`));
    main.append(findingList(answer.findings));
  } catch (error) {
    status.textContent = error.message;
    status.className = 'note error';
  }
}

/** Finding cards, also used by the operation view. */
export function findingList(findings) {
  return h('ol', {class: 'findings'}, findings.map((f, n) => h('li', {class: `finding k-${f.kind}`},
    h('header', {}, h('span', {class: 'rank'}, `${n + 1}`), h('h3', {}, f.title)),
    h('p', {class: 'meta'},
      h('span', {class: 'badge'}, f.kind.replaceAll('_', ' ')),
      f.operation ? [' on ', h('a', {href: operationHref(f.operation)}, escaped(f.operation))] : null,
      ` · ${f.impact_text}`),
    h('p', {class: 'recommendation'}, '→ ', f.recommendation),
    h('p', {class: 'evidence'}, 'Evidence: ', f.evidence.map((e, k) => [k ? ', ' : '',
      h('a', {href: `/traces/${e.trace_id}?span=${e.span_ids[0] || ''}&mark=${e.span_ids.join(',')}`, class: 'mono'},
        `${e.trace_id.slice(0, 8)} (${plural(e.span_ids.length, 'span')})`)])),
    h('details', {}, h('summary', {}, 'The numbers'), h('table', {class: 'attrs'}, h('tbody', {},
      Object.entries(f.numbers).map(([k, v]) => h('tr', {}, h('th', {class: 'mono'}, breakable(k)), h('td', {}, k.endsWith('nanos') || k.endsWith('_ns') ? duration(v) : String(Math.round(v * 1000) / 1000))))),
      h('tr', {}, h('th', {class: 'mono'}, 'fingerprint'), h('td', {}, f.fingerprint)))))));
}

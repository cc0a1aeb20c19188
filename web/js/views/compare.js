// Compare: two traces (or two `devtrace run` executions), or the older and newer runs of an
// operation, side by side and aligned by operation, with deltas and an honest verdict.

import {get} from '../api.js';
import {h, duration, note, traceHref, operationHref, escaped, breakable, plural} from '../dom.js';
import {column, head, fitColumns} from '../table.js';

export async function render(main, {query, navigate}) {
  const value = (k) => query.get(k) || '';
  // Runs (run_a/run_b) are traces too; the form shows them as A and B and sends them back as runs.
  const runs = Boolean(value('run_a') || value('run_b'));
  const inputs = {
    [runs ? 'run_a' : 'a']: h('input', {name: 'a', value: value('run_a') || value('a'), placeholder: 'trace id or prefix', 'data-search': true, size: 20}),
    [runs ? 'run_b' : 'b']: h('input', {name: 'b', value: value('run_b') || value('b'), placeholder: 'trace id or prefix', size: 20}),
    operation: h('input', {name: 'operation', value: value('operation'), placeholder: 'operation', size: 18}),
    last: h('input', {name: 'last', value: value('last'), placeholder: '10', size: 4, inputmode: 'numeric'}),
  };
  const field = (k, label) => h('label', {class: 'field'}, h('span', {}, label), inputs[k]);
  const form = h('form', {class: 'filters'},
    h('fieldset', {}, h('legend', {}, runs ? 'Two runs (with their attached traces)' : 'Two traces'),
      field(runs ? 'run_a' : 'a', 'A (before)'), field(runs ? 'run_b' : 'b', 'B (after)')),
    h('fieldset', {}, h('legend', {}, 'or the runs of an operation'), field('operation', 'Operation'), field('last', 'Last N runs')),
    h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Compare')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, input] of Object.entries(inputs)) if (input.value.trim()) q.set(k, input.value.trim());
    navigate(`/compare?${q}`);
  });
  main.append(h('h1', {}, 'Compare'), form);
  if (![...query.keys()].length || (value('a') && !value('b'))) {
    main.append(note(value('a')
      ? 'Now give trace B: paste its id, or pick two runs on the Runs page.'
      : 'Give two trace ids (or pick two runs on the Runs page), or an operation and how many of its recent runs to split into older and newer halves.'));
    return;
  }
  const status = note('Comparing…');
  main.append(status);
  let result;
  try {
    result = await get('compare', Object.fromEntries(query));
  } catch (error) {
    status.textContent = error.message;
    status.className = 'note error';
    return;
  }
  const {comparison: c} = result;
  const sideLinks = (ids) => ids.slice(0, 10).map((id, k) => [k ? ' ' : '', h('a', {href: traceHref(id), class: 'mono'}, id.slice(0, 8))]);
  status.replaceWith(h('section', {class: 'compare-head'},
    h('h2', {}, result.what),
    h('p', {}, h('strong', {}, 'A: '), sideLinks(result.a_traces), h('br'), h('strong', {}, 'B: '), sideLinks(result.b_traces)),
    h('p', {class: `verdict v-${c.total.verdict.verdict}`},
      `Whole run: ${duration(c.total.a.mean_nanos)} → ${duration(c.total.b.mean_nanos)} (${delta(c.total)}), `, verdictText(c.total.verdict))));
  const max = Math.max(1, ...c.operations.map((o) => Math.max(o.a.mean_nanos, o.b.mean_nanos)));
  const bar = (v, cls) => { const b = h('span', {class: `cmp-bar ${cls}`}); b.style.width = `${v / max * 100}%`; return b; };
  const body = h('tbody', {}, c.operations.map((o) => h('tr', {class: o.delta_nanos < 0 ? 'faster' : o.delta_nanos > 0 ? 'slower' : ''},
    h('td', {}, h('a', {href: operationHref(o.operation)}, breakable(o.operation))),
    h('td', {class: 'num'}, duration(o.a.mean_nanos)),
    h('td', {class: 'bars'}, bar(o.a.mean_nanos, 'a'), bar(o.b.mean_nanos, 'b')),
    h('td', {class: 'num'}, duration(o.b.mean_nanos)),
    h('td', {class: 'num delta'}, delta(o)),
    h('td', {class: 'num'}, `${round(o.a.calls_per_run)} → ${round(o.b.calls_per_run)}`),
    h('td', {class: 'num'}, `${o.a.errors} → ${o.b.errors}`),
    h('td', {}, verdictText(o.verdict)))));
  const table = h('table', {class: 'list compare'}, head([column('Operation', {shrink: true}), column('A mean', {num: true}),
    column('A ▬ B ▬', {fold: 2}), column('B mean', {num: true}), column('Δ', {num: true, fold: 5}), column('Calls/run', {num: true, fold: 1}),
    column('Errors', {num: true, fold: 3}), column('Verdict', {fold: 4, shrink: true})]), body);
  main.append(table);
  fitColumns(table);
}

function round(v) { return String(Math.round(v * 100) / 100); }

function delta(o) {
  const sign = o.delta_nanos > 0 ? '+' : o.delta_nanos < 0 ? '−' : '±';
  const ratio = o.delta_ratio == null ? '' : ` (${sign}${Math.abs(o.delta_ratio * 100).toFixed(0)} %)`;
  return `${sign}${duration(Math.abs(o.delta_nanos))}${ratio}`;
}

function verdictText(v) {
  switch (v.verdict) {
    case 'faster': return `faster (p = ${v.test.p_value.toFixed(3)})`;
    case 'slower': return `slower (p = ${v.test.p_value.toFixed(3)})`;
    case 'no_clear_change': return `no clear change (p = ${v.test.p_value.toFixed(2)})`;
    default: return `${plural(v.runs_a, 'run')} vs ${plural(v.runs_b, 'run')}: too few to tell a change from noise`;
  }
}

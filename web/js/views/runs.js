// Runs: `devtrace run` executions with their outcome and test counts; pick two to compare.

import {get} from '../api.js';
import {h, duration, time, ago, note, plural, traceHref, escaped} from '../dom.js';
import {column, head, openRows, fitColumns, pickTwo} from '../table.js';

export async function render(main, {query, navigate}) {
  const label = query.get('label') || '';
  const labelInput = h('input', {name: 'label', value: label, placeholder: 'any label', 'data-search': true});
  const form = h('form', {class: 'filters inline'},
    h('label', {class: 'field'}, h('span', {}, 'Label'), labelInput),
    h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Apply')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(labelInput.value.trim() ? `/runs?label=${encodeURIComponent(labelInput.value.trim())}` : '/runs');
  });
  const status = note('Loading…');
  main.append(h('h1', {}, 'Runs'), form, status);
  let runs;
  try {
    runs = (await get('runs', {label, limit: 200})).runs;
  } catch (error) {
    status.textContent = error.message;
    status.className = 'note error';
    return;
  }
  if (!runs.length) {
    status.textContent = 'No runs recorded. Record one with: devtrace run -- <command>';
    return;
  }
  status.textContent = `${plural(runs.length, 'run')}, newest first. Tick two to compare them.`;
  const body = h('tbody', {}, runs.map((r, k) => {
    const box = h('input', {type: 'checkbox', name: 'compare', 'aria-label': `select run ${escaped(r.command)} ${time(r.start_unix_nano)}`, value: r.trace_id});
    const previous = runs.slice(k + 1).find((p) => p.command === r.command);
    const exit = r.signal != null ? `signal ${r.signal}` : r.exit_code != null ? String(r.exit_code) : '?';
    const t = r.tests;
    return h('tr', {class: (r.exit_code ?? 0) !== 0 || r.signal != null ? 'has-error' : '', dataset: {href: traceHref(r.trace_id)}},
      h('td', {}, box),
      h('td', {title: time(r.start_unix_nano)}, ago(r.start_unix_nano)),
      h('td', {class: 'mono'}, escaped(r.command)),
      h('td', {}, r.label ? h('a', {href: `/runs?label=${encodeURIComponent(r.label)}`, class: 'badge'}, escaped(r.label)) : ''),
      h('td', {class: 'num'}, duration(r.duration_ns)),
      h('td', {class: 'num'}, exit === '0' ? exit : h('span', {class: 'badge error'}, exit)),
      h('td', {class: 'num tests'}, t ? [h('span', {class: 'pass'}, `${t.passed} passed`), t.failed ? [' ', h('span', {class: 'badge error'}, `${t.failed} failed`)] : '', t.skipped ? ` ${t.skipped} skipped` : ''] : '–'),
      h('td', {class: 'num'}, r.span_count.toLocaleString()),
      h('td', {}, h('a', {href: traceHref(r.trace_id), class: 'row-link'}, 'trace'),
        previous ? [' · ', h('a', {href: `/compare?run_a=${previous.trace_id}&run_b=${r.trace_id}`}, 'vs previous')] : null));
  }));
  // The older of the two is A (before), whatever order they were ticked in.
  const compare = pickTwo(body, 'run', (ids) => {
    const [older, newer] = ids.map((id) => runs.find((r) => r.trace_id === id))
      .sort((x, y) => (BigInt(x.start_unix_nano) < BigInt(y.start_unix_nano) ? -1 : 1));
    navigate(`/compare?run_a=${older.trace_id}&run_b=${newer.trace_id}`);
  });
  openRows(body, navigate);
  const table = h('table', {class: 'list runs'}, head([column(''), column('Started', {fold: 4}), column('Command', {shrink: true}),
    column('Label', {fold: 3}), column('Duration', {num: true}), column('Exit', {num: true, fold: 5}), column('Tests', {num: true, fold: 6}),
    column('Spans', {num: true, fold: 1}), column('', {fold: 2})]), body);
  main.append(compare, table);
  fitColumns(table);
}

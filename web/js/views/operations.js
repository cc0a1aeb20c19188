// Operations: root operations ranked by total time, each linking to its analytics.

import {get} from '../api.js';
import {h, duration, meanByOutcome, note, operationHref, escaped, breakable, plural} from '../dom.js';
import {column, head, openRows, fitColumns} from '../table.js';

export async function render(main, {navigate}) {
  const status = note('Loading…');
  main.append(h('h1', {}, 'Operations'), status);
  let ranking;
  try {
    ranking = await get('operations');
  } catch (error) {
    status.textContent = error.message;
    status.className = 'note error';
    return;
  }
  status.textContent = `Root operations by total time over the last ${plural(ranking.traces, 'trace')}.`;
  const max = Math.max(1, ...ranking.operations.map((o) => o.total_nanos));
  const body = h('tbody', {}, ranking.operations.map((o) => {
    const bar = h('span', {class: 'share-bar'});
    bar.style.width = `${o.total_nanos / max * 100}%`;
    return h('tr', {dataset: {href: operationHref(o.operation)}},
      h('td', {}, h('a', {href: operationHref(o.operation), class: 'row-link'}, breakable(o.operation))),
      h('td', {class: 'num'}, o.runs),
      h('td', {class: 'num share'}, bar, h('span', {}, duration(o.total_nanos))),
      h('td', {class: 'num'}, meanByOutcome(o.duration.mean, o.by_outcome)),
      h('td', {class: 'num'}, duration(o.duration.p95)),
      h('td', {class: 'num'}, o.errors ? h('span', {class: 'badge error'}, o.errors) : '0'),
      h('td', {}, h('a', {href: `/traces?name=${encodeURIComponent(o.operation)}`}, 'traces')));
  }));
  openRows(body, navigate);
  const table = h('table', {class: 'list operations'}, head([column('Operation', {shrink: true}), column('Runs', {num: true, fold: 3}),
    column('Total', {num: true}), column('Mean', {num: true, fold: 4, shrink: true}), column('p95', {num: true, fold: 2}),
    column('Errors', {num: true, fold: 5}), column('', {fold: 1})]), body);
  main.append(table);
  fitColumns(table);
}

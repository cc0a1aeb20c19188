// Operations: root operations ranked by total time, each linking to its analytics.

import {get} from '../api.js';
import {h, duration, meanByOutcome, note, operationHref, escaped} from '../dom.js';
import {moveInRows} from './traces.js';

export async function render(main) {
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
  status.textContent = `Root operations by total time over the last ${ranking.traces} traces.`;
  const max = Math.max(1, ...ranking.operations.map((o) => o.total_nanos));
  const body = h('tbody', {}, ranking.operations.map((o) => {
    const bar = h('span', {class: 'share-bar'});
    bar.style.width = `${o.total_nanos / max * 100}%`;
    return h('tr', {},
      h('td', {}, h('a', {href: operationHref(o.operation)}, escaped(o.operation))),
      h('td', {class: 'num'}, o.runs),
      h('td', {class: 'num share'}, bar, h('span', {}, duration(o.total_nanos))),
      h('td', {class: 'num'}, meanByOutcome(o.duration.mean, o.by_outcome)),
      h('td', {class: 'num'}, duration(o.duration.p95)),
      h('td', {class: 'num'}, o.errors ? h('span', {class: 'badge error'}, o.errors) : '0'),
      h('td', {}, h('a', {href: `/traces?name=${encodeURIComponent(o.operation)}`}, 'traces')));
  }));
  body.addEventListener('keydown', (e) => moveInRows(e, body));
  main.append(h('table', {class: 'list'}, h('thead', {}, h('tr', {},
    ['Operation', 'Runs', 'Total', 'Mean', 'p95', 'Errors', ''].map((t, i) => h('th', {class: i && i < 6 ? 'num' : ''}, t)))), body));
}

// Traces: the filterable list, newest first, with a duration sparkline per operation; it
// refreshes when new spans are committed (the server's event stream) while showing the first
// page. Filters live in the URL, so every search is a link.

import {get} from '../api.js';
import {h, duration, time, ago, sparkline, note, traceHref, operationHref, plural, escaped, breakable} from '../dom.js';
import {column, head, openRows, fitColumns, pickTwo} from '../table.js';

const FILTERS = ['service', 'operation', 'name', 'min_duration', 'max_duration', 'status', 'since', 'until', 'run', 'label'];
const SINCE_CHOICES = [['', 'any time'], ['15m', 'last 15 min'], ['1h', 'last hour'], ['6h', 'last 6 h'], ['24h', 'last 24 h'], ['7d', 'last 7 days']];

export async function render(main, {query, navigate}) {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) || '']));
  const attrs = query.getAll('attr');
  const form = filterForm(filters, attrs, navigate);
  const status = h('p', {class: 'note muted', role: 'status'});
  // Columns fold away as the width shrinks: the sparkline first, the trace id last.
  const table = h('table', {class: 'list traces'}, head([
    column('', {}), column('Started', {fold: 5}), column('Operation', {shrink: true}), column('Recent', {fold: 1}),
    column('Service', {fold: 2}), column('Duration', {num: true}), column('Spans', {num: true, fold: 3}),
    column('Errors', {num: true, fold: 4}), column('Trace', {fold: 6})]));
  const body = h('tbody');
  table.append(body);
  openRows(body, navigate);
  const more = h('button', {type: 'button', class: 'more', hidden: true}, 'Load older traces');
  const compare = pickTwo(body, 'trace', ([a, b]) => navigate(`/compare?a=${a}&b=${b}`));
  main.append(h('h1', {}, 'Traces'), form, status, compare, table, more);
  fitColumns(table);

  const params = {...filters, attr: attrs, limit: 50};
  let cursor = null;
  let shown = new Set();
  const series = new Map();

  async function load({append = false, live = false} = {}) {
    try {
      const page = await get('traces', {...params, cursor: append ? cursor : undefined});
      const focused = document.activeElement?.closest?.('tr')?.dataset.id;
      if (!append) body.replaceChildren();
      for (const trace of page.traces) {
        const row = traceRow(trace, compare.picked.includes(trace.trace_id));
        if (live && !shown.has(trace.trace_id)) row.classList.add('new');
        body.append(row);
      }
      shown = new Set([...body.querySelectorAll('tr')].map((r) => r.dataset.id));
      // A refresh keeps the keyboard where it was.
      if (focused) body.querySelector(`tr[data-id="${focused}"]`)?.focus({preventScroll: true});
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const count = body.children.length;
      status.textContent = count === 0
        ? 'No traces match. Send some with an OpenTelemetry SDK to this server, or widen the filters.'
        : `${plural(count, 'trace')} shown, newest first${page.scan_limited ? ` (attribute filters read ${page.scanned} traces; load older to look further)` : ''}.`;
      status.className = 'note muted';
      drawSparklines(page.traces);
    } catch (error) {
      status.textContent = error.message;
      status.className = 'note error';
    }
  }

  async function drawSparklines(traces) {
    const wanted = [...new Set(traces.map((t) => t.root_name))].filter((n) => !series.has(n)).slice(0, 50);
    if (wanted.length) {
      try {
        const answer = await get('sparklines', {operation: wanted, points: 30});
        for (const s of answer.series) series.set(s.operation, s.durations_ns);
      } catch { /* sparklines are decoration; the list stands without them */ }
    }
    for (const cell of body.querySelectorAll('td.spark-cell:empty')) {
      const values = series.get(cell.dataset.operation);
      if (values) cell.append(sparkline(values, {label: `last ${values.length} durations of ${escaped(cell.dataset.operation)}`}));
    }
  }

  more.addEventListener('click', () => load({append: true}));
  await load();

  // Live: refresh the first page when spans arrive (unless older pages were loaded).
  let pending = null;
  const onIngest = (event) => {
    if (event.detail.new_spans === 0 || body.children.length > 50) return;
    clearTimeout(pending);
    pending = setTimeout(() => load({live: true}), 300);
  };
  window.addEventListener('devtrace:ingest', onIngest);
  return () => { window.removeEventListener('devtrace:ingest', onIngest); clearTimeout(pending); };
}

/** The row of one trace: it opens the trace; its operation's name opens the operation. */
function traceRow(t, picked) {
  return h('tr', {dataset: {id: t.trace_id, href: traceHref(t.trace_id)}, class: t.error_count > 0 ? 'has-error' : ''},
    h('td', {class: 'pick'}, h('input', {type: 'checkbox', name: 'compare', value: t.trace_id, checked: picked,
      'aria-label': `compare trace ${escaped(t.root_name)} ${t.trace_id.slice(0, 8)}`})),
    h('td', {title: time(t.start_unix_nano)}, h('time', {}, ago(t.start_unix_nano))),
    h('td', {}, h('a', {href: operationHref(t.root_name), class: 'op'}, breakable(t.root_name))),
    h('td', {class: 'spark-cell', dataset: {operation: t.root_name}}),
    serviceCell(t),
    h('td', {class: 'num'}, duration(t.duration_ns),
      // A span went on after the root ended: when the last one ends, from the root's start.
      t.last_span_end_ns != null ? h('span', {class: 'muted small', title: `the root took ${duration(t.duration_ns)}; the last span ends at ${duration(t.last_span_end_ns)}`}, ` (${duration(t.last_span_end_ns)})`) : null),
    h('td', {class: 'num'}, t.span_count.toLocaleString()),
    h('td', {class: 'num'}, t.error_count > 0 ? h('span', {class: 'badge error'}, t.error_count) : '0'),
    h('td', {}, h('a', {href: traceHref(t.trace_id), class: 'mono row-link', 'aria-label': `open trace ${escaped(t.root_name)} ${t.trace_id}`}, t.trace_id.slice(0, 12))));
}

/** The root's service, and how many other services the trace crossed (all named on hover). */
function serviceCell(t) {
  const services = t.services || [t.service];
  const others = services.filter((name) => name !== t.service).length;
  return h('td', {title: services.map(escaped).join(', ')}, escaped(t.service),
    others ? h('span', {class: 'muted', 'aria-label': `and ${others} more services`}, ` +${others}`) : '');
}

function filterForm(filters, attrs, navigate) {
  const field = (name, label, input) => h('label', {class: 'field'}, h('span', {}, label), input);
  const text = (name, placeholder, extra = {}) => h('input', {name, value: filters[name], placeholder, ...extra});
  // Services come from the overview, which counts every trace (seconds on a store of millions
  // of spans): asked for only when the field is first used, so it never delays the list.
  const serviceNames = h('datalist', {id: 'service-names'});
  const services = h('input', {name: 'service', value: filters.service, placeholder: 'any service', list: 'service-names', size: 14});
  services.addEventListener('focus', () => {
    get('overview').then((o) => serviceNames.replaceChildren(...o.services.map((s) => h('option', {value: s.service}, plural(s.traces, 'trace'))))).catch(() => {});
  }, {once: true});
  const operations = h('datalist', {id: 'operation-names'});
  get('operation-names').then((o) => operations.append(...o.names.slice(0, 2000).map((n) => h('option', {value: n})))).catch(() => {});
  const since = h('select', {name: 'since'}, SINCE_CHOICES.map(([v, l]) => h('option', {value: v, selected: v === filters.since}, l)));
  if (filters.since && !SINCE_CHOICES.some(([v]) => v === filters.since)) since.append(h('option', {value: filters.since, selected: true}, filters.since));
  const statusSel = h('select', {name: 'status'},
    [['', 'all'], ['error', 'errors only'], ['ok', 'without errors']].map(([v, l]) => h('option', {value: v, selected: v === filters.status}, l)));
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Filter traces'},
    field('service', 'Service', services),
    field('operation', 'Operation (any span)', text('operation', 'e.g. db.query', {list: 'operation-names', 'data-search': true})),
    field('name', 'Root name contains', text('name', 'text')),
    field('min_duration', 'Min duration', text('min_duration', '250ms', {size: 7})),
    field('max_duration', 'Max duration', text('max_duration', '2s', {size: 7})),
    field('status', 'Status', statusSel),
    field('since', 'Time range', since),
    field('until', 'Until', text('until', '2026-11-21T09:00:00Z', {size: 14})),
    field('attr', 'Attributes (; between filters)', text('attr', 'http.route=/users; db.statement~SELECT', {value: attrs.join('; '), size: 26})),
    field('run', 'Run id', text('run', 'run id', {size: 12})),
    field('label', 'Run label', text('label', 'label', {size: 8})),
    h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Apply'), h('a', {href: '/traces', class: 'button secondary'}, 'Clear')),
    operations, serviceNames);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const query = new URLSearchParams();
    for (const [key, value] of data) {
      if (key === 'attr') {
        for (const part of String(value).split(';').map((p) => p.trim()).filter(Boolean)) query.append('attr', part);
      } else if (String(value).trim()) query.set(key, String(value).trim());
    }
    navigate(`/traces${query.toString() ? `?${query}` : ''}`);
  });
  return form;
}

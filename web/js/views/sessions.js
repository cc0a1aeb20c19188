// Sessions: development sessions (Claude Code and Codex transcripts, live hooks, agents' own
// OpenTelemetry, trace-1.0.0 documents), newest first, with their numbers and how many
// findings each has (`devtrace sessions`). When agents sent metrics, their cost and lines
// changed show per session and per day (`devtrace sessions --daily`). Filters live in the
// URL, so every listing is a link.

import {get} from '../api.js';
import {h, duration, time, ago, note, plural, tokens, dollars, sessionHref, compareSessionsHref, escaped} from '../dom.js';
import {column, head as headRow, openRows, fitColumns, pickTwo} from '../table.js';

const SINCE = [['', 'any time'], ['24h', 'last 24 h'], ['7d', 'last 7 days'], ['30d', 'last 30 days'], ['365d', 'last year']];
/** The most the API lists at once. */
const LIMIT = 200;
/** Quiet time after new spans before the list refreshes. */
const LIVE_DELAY_MS = 1000;

export async function render(main, {query, navigate}) {
  const filters = {agent: query.get('agent') || '', repo: query.get('repo') || '', since: query.get('since') || ''};
  const form = filterForm(filters, navigate);
  const status = h('p', {class: 'note muted', role: 'status'}, 'Loading…');
  const body = h('tbody');
  openRows(body, navigate);
  let head = h('thead');
  const table = h('table', {class: 'list sessions', hidden: true}, head, body);
  const daily = h('section', {class: 'usage-days', hidden: true});
  // Two sessions ticked (in the order they were ticked) open side by side.
  const compareBar = pickTwo(body, 'session', ([a, b]) => navigate(compareSessionsHref(a, b)));
  compareBar.hidden = true;
  main.append(h('h1', {}, 'Sessions'), form, status, daily, compareBar, table);
  fitColumns(table);

  let shown = new Set();
  async function load({live = false} = {}) {
    let sessions;
    try {
      sessions = (await get('sessions', {...filters, limit: LIMIT})).sessions;
    } catch (error) {
      status.textContent = error.message;
      status.className = 'note error';
      return;
    }
    status.className = 'note muted';
    table.hidden = sessions.length === 0;
    compareBar.hidden = sessions.length < 2;
    if (!sessions.length) {
      status.textContent = filters.agent || filters.repo || filters.since
        ? 'No sessions match these filters.'
        : 'No sessions stored. Import some with: devtrace import claude-code (or codex), or send trace-1.0.0 documents to POST /api/v1/sessions.';
      return;
    }
    status.textContent = `${plural(sessions.length, 'session')}, newest first${sessions.length === LIMIT ? ` (the newest ${LIMIT}; narrow the filters to see older ones)` : ''}.`;
    const agents = form.querySelector('#session-agents');
    agents.replaceChildren(...[...new Set(sessions.map((s) => s.agent))].map((a) => h('option', {value: a})));
    // The agents' metrics: per-session columns, and the days they cover.
    const metrics = sessions.some((s) => s.usage);
    head.replaceWith(headRow(columns(metrics)));
    head = table.tHead;
    await showDaily(daily, filters, metrics);
    const focused = document.activeElement?.closest('tr')?.dataset.id;
    body.replaceChildren(...sessions.map((s) => {
      const row = sessionRow(s, metrics, compareBar.picked.includes(s.trace_id));
      if (live && !shown.has(s.trace_id)) row.classList.add('new');
      return row;
    }));
    shown = new Set(sessions.map((s) => s.trace_id));
    // A refresh keeps the keyboard where it was.
    if (focused) body.querySelector(`tr[data-id="${focused}"]`)?.focus({preventScroll: true});
  }
  await load();

  // Live: sessions grow while an agent works (hooks, imports, POSTed events). Each listing
  // reads every session's findings, so refreshes are spaced out and never overlap.
  let pending = null;
  let loading = null;
  const refresh = () => {
    if (loading) { pending = setTimeout(refresh, LIVE_DELAY_MS); return; }
    loading = load({live: true}).finally(() => { loading = null; });
  };
  const onIngest = (event) => {
    if (event.detail.new_spans === 0) return;
    clearTimeout(pending);
    pending = setTimeout(refresh, LIVE_DELAY_MS);
  };
  window.addEventListener('devtrace:ingest', onIngest);
  return () => { window.removeEventListener('devtrace:ingest', onIngest); clearTimeout(pending); };
}

/** Money as agents report it: cents for dollars, four decimals below one (as the CLI). */
export function cost(usd) {
  return usd >= 0.995 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(4)}`;
}

/** Lines changed as +added/-removed, or null when the agent reported none. */
export function lines(usage) {
  if (!usage || (usage.lines_added === undefined && usage.lines_removed === undefined)) return null;
  return `+${usage.lines_added || 0}/-${usage.lines_removed || 0}`;
}

/** What agents reported per UTC day (the days of the filter), when they sent metrics. */
async function showDaily(section, filters, metrics) {
  section.hidden = true;
  if (!metrics) return;
  let days;
  try {
    const params = {};
    if (filters.agent) params.agent = filters.agent;
    params.since = filters.since || '30d';
    days = (await get('usage', params)).days;
  } catch {
    return;
  }
  if (!days.length) return;
  const cell = (n) => (n === undefined ? '–' : tokens(n));
  section.replaceChildren(
    h('h2', {}, 'Agent-reported, per day'),
    h('table', {class: 'list usage'},
      h('thead', {}, h('tr', {}, ['Day (UTC)', 'Sessions', 'Cost', 'Tokens in', 'From cache', 'Out', 'Lines']
        .map((t, i) => h('th', {class: i ? 'num' : ''}, t)))),
      h('tbody', {}, days.slice(-14).reverse().map((d) => h('tr', {},
        h('td', {}, d.day),
        h('td', {class: 'num'}, String(d.sessions)),
        h('td', {class: 'num'}, d.usage.cost_usd === undefined ? '–' : cost(d.usage.cost_usd)),
        h('td', {class: 'num'}, cell(d.usage.input_tokens)),
        h('td', {class: 'num'}, cell(d.usage.cache_read_tokens)),
        h('td', {class: 'num'}, cell(d.usage.output_tokens)),
        h('td', {class: 'num'}, lines(d.usage) || '–'))))));
  section.hidden = false;
}

/** The list's columns; as the width shrinks they fold away in their `fold` order (the session
 * id first), and the title (the link), the findings and the estimated cost stay longest. */
function columns(metrics) {
  return [
    column(''), column('Started', {fold: 8}), column('Agent', {fold: 7}), column('Project', {fold: 6, shrink: true}),
    column('Title', {shrink: true}), column('Duration', {num: true, fold: 9}), column('Turns', {num: true, fold: 4}),
    column('Tool calls', {num: true, fold: 5}), column('Tokens', {num: true, fold: 11}), column('Est. cost', {num: true, fold: 13}),
    ...(metrics ? [column('Cost', {num: true, fold: 3}), column('Lines', {num: true, fold: 2})] : []),
    column('Errors', {num: true, fold: 10}), column('Findings', {num: true, fold: 12}), column('Session', {fold: 1}),
  ];
}

function sessionRow(s, metrics, chosen) {
  const total = s.input_tokens + s.output_tokens;
  const usage = s.usage || {};
  const estimate = s.tokens?.cost_usd;
  return h('tr', {dataset: {id: s.trace_id, href: sessionHref(s.trace_id)}, class: s.errors > 0 ? 'has-error' : ''},
    h('td', {}, h('input', {type: 'checkbox', name: 'compare', value: s.trace_id, checked: chosen,
      'aria-label': `compare session ${s.trace_id.slice(0, 8)}`})),
    h('td', {title: time(s.start_unix_nano)}, h('time', {}, ago(s.start_unix_nano))),
    h('td', {}, h('a', {href: `/sessions?agent=${encodeURIComponent(s.agent)}`, class: 'badge'}, escaped(s.agent))),
    h('td', {class: 'project', title: escaped(s.project)}, h('a', {href: `/sessions?repo=${encodeURIComponent(s.project)}`}, escaped(shortPath(s.project)))),
    h('td', {class: 'title', title: escaped(s.title)}, h('a', {href: sessionHref(s.trace_id), class: 'row-link',
      'aria-label': `open session ${escaped(s.title || s.session_id)} ${s.trace_id}`}, s.title ? escaped(s.title) : '(untitled)')),
    h('td', {class: 'num'}, duration(s.duration_ns)),
    ...(s.recorded ? [recordedCell(s.recorded)] : [
      h('td', {class: 'num'}, s.turns.toLocaleString()),
      h('td', {class: 'num'}, s.tool_calls.toLocaleString(), s.subagents ? h('span', {class: 'muted small', title: `${plural(s.subagents, 'sub-agent')}`}, ` +${s.subagents} agents`) : null),
      h('td', {class: 'num', title: `${s.input_tokens.toLocaleString()} in (${s.cache_read_tokens.toLocaleString()} from cache), ${s.output_tokens.toLocaleString()} out`}, tokens(total)),
    ]),
    h('td', {class: 'num', title: s.tokens ? `at the ${s.tokens.prices}` : null}, estimate == null ? '–' : dollars(estimate)),
    metrics ? h('td', {class: 'num', title: 'as the agent reported it'}, usage.cost_usd === undefined ? '–' : cost(usage.cost_usd)) : null,
    metrics ? h('td', {class: 'num', title: 'lines added/removed, as the agent reported them'}, lines(usage) || '–') : null,
    h('td', {class: 'num'}, s.errors > 0 ? h('span', {class: 'badge error'}, s.errors) : '0'),
    h('td', {class: 'num'}, s.findings > 0 ? h('span', {class: 'badge warn'}, s.findings) : '0'),
    h('td', {}, h('a', {href: sessionHref(s.trace_id), class: 'mono', tabindex: '-1', 'aria-hidden': 'true'}, s.trace_id.slice(0, 8))));
}

/** A person's recorded session (devtrace record) has no turns, tool calls or tokens: what it
 * has instead, across those three columns — who recorded it (a pseudonym unless recorded with
 * --identify), commands and how many failed, edits, notes, the tests at the end. */
export function recordedCell(r) {
  const a = r.activity;
  const tests = r.tests
    ? (r.tests.runner ? `tests ${r.tests.passed} passed, ${r.tests.failed} failed` : `tests exit code ${r.tests.exit_code ?? '?'}`)
    : 'tests not run';
  return h('td', {colspan: 3, class: 'recorded-summary'},
    r.developer ? h('span', {class: 'muted'}, 'recorded by ', escaped(r.developer), ': ') : h('span', {class: 'muted'}, 'recorded: '),
    plural(a.commands, 'command'),
    a.failed_commands ? [' (', h('span', {class: 'error-text'}, `${a.failed_commands} failed`), ')'] : null,
    ` · ${plural(a.edits, 'edit')} in ${plural(a.files_edited, 'file')} · ${plural(a.notes, 'note')} · ${tests}`);
}

/** `/home/me/src/shop` → `…/src/shop` when long, as the CLI prints it. */
function shortPath(path) {
  if (path.length <= 32) return path;
  const parts = path.split('/').filter(Boolean);
  return `…/${parts.slice(-2).join('/')}`;
}

function filterForm(filters, navigate) {
  const field = (label, input) => h('label', {class: 'field'}, h('span', {}, label), input);
  const agent = h('input', {name: 'agent', value: filters.agent, placeholder: 'any agent', list: 'session-agents', size: 12});
  const repo = h('input', {name: 'repo', value: filters.repo, placeholder: '/path/to/project or repository URL', size: 30, 'data-search': true});
  const since = h('select', {name: 'since'}, SINCE.map(([v, l]) => h('option', {value: v, selected: v === filters.since}, l)));
  if (filters.since && !SINCE.some(([v]) => v === filters.since)) since.append(h('option', {value: filters.since, selected: true}, filters.since));
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Filter sessions'},
    field('Agent', agent), field('Project (directory or repository)', repo), field('Started', since),
    h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Apply'), h('a', {href: '/sessions', class: 'button secondary'}, 'Clear')),
    h('datalist', {id: 'session-agents'}));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [key, input] of [['agent', agent], ['repo', repo], ['since', since]]) {
      if (input.value.trim()) q.set(key, input.value.trim());
    }
    navigate(`/sessions${q.toString() ? `?${q}` : ''}`);
  });
  return form;
}

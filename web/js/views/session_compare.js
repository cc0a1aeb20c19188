// Two development sessions side by side (`devtrace session compare A B`): turns, requests,
// tool calls by tool and outcome, tokens by kind, estimated cost, wall and active time, the
// findings of each, and the first main-chain request whose tool calls differ, so "why did
// yesterday's run of the same task cost 3× today's?" has an answer on one page.
//
// Titles, tool names, call targets and finding titles are recorded data: set as text.
//
// URL: /sessions/compare/A/B (trace ids, prefixes or the agents' session ids). It reads
// GET /api/v1/sessions/{a}/compare/{b}.

import {get} from '../api.js';
import {h, duration, time, note, count, dollars, sessionHref, escaped} from '../dom.js';
import {TOKEN_KINDS, clock, costText} from './session.js';

export async function render(main, {params}) {
  const [a, b] = params;
  main.append(h('p', {class: 'crumbs'}, h('a', {href: '/sessions'}, 'Sessions'), ' / compare'),
    h('h1', {}, 'Two sessions side by side'));
  const status = note('Comparing…');
  main.append(status);
  let c;
  try {
    c = await get(`sessions/${encodeURIComponent(a)}/compare/${encodeURIComponent(b)}`);
  } catch (error) {
    status.replaceWith(note(error.message, 'error'),
      h('p', {}, 'Pick two sessions on the ', h('a', {href: '/sessions'}, 'sessions list'), ' (the Compare column), or give two session ids in the address.'));
    return;
  }
  status.remove();
  main.append(h('section', {class: 'session-compare'},
    heads(c), numbersTable(c), divergence(c.first_divergence, c),
    h('div', {class: 'compare-findings'}, findingList('A', c.a), findingList('B', c.b))));
}

function heads(c) {
  const head = (name, side) => h('div', {class: `compare-side side-${name.toLowerCase()}`},
    h('h2', {}, h('span', {class: 'side-name'}, name), ' ',
      h('a', {href: sessionHref(side.trace_id), class: 'mono'}, side.trace_id.slice(0, 8)), ' ',
      h('span', {class: 'badge'}, escaped(side.agent))),
    h('p', {class: 'title'}, side.title ? escaped(side.title) : h('span', {class: 'muted'}, '(untitled)')),
    h('p', {class: 'muted'}, `started ${time(side.start_unix_nano)}`));
  return h('div', {class: 'compare-heads'}, head('A', c.a), head('B', c.b));
}

/** The rows of `session compare`: A's value, B's value. */
function numbersTable(c) {
  const {a, b} = c;
  const calls = (side) => Object.values(side.tool_calls).reduce((n, o) => n + o.ok + o.failed, 0);
  const failed = (side) => Object.values(side.tool_calls).reduce((n, o) => n + o.failed, 0);
  const tools = [...new Set([...Object.keys(a.tool_calls), ...Object.keys(b.tool_calls)])].sort();
  const toolCell = (side, tool) => {
    const o = side.tool_calls[tool];
    if (!o) return '–';
    return o.failed ? `${o.ok + o.failed} (${o.failed} failed)` : String(o.ok);
  };
  const cost = (side) => (side.tokens.cost_usd == null ? '–' : dollars(side.tokens.cost_usd));
  const rows = [
    ['Turns', count(a.turns), count(b.turns)],
    ['Requests', count(a.requests), count(b.requests)],
    ['Tool calls (failed)', `${count(calls(a))} (${failed(a)})`, `${count(calls(b))} (${failed(b)})`],
    ...tools.map((tool) => [h('span', {class: 'tool'}, escaped(tool)), toolCell(a, tool), toolCell(b, tool), 'sub']),
    ...TOKEN_KINDS.map(([key, label]) => [`Tokens: ${label.toLowerCase()}`, count(a.tokens[key]), count(b.tokens[key])]),
    ['Estimated cost', cost(a), cost(b)],
    ['Wall time', duration(a.wall_ns), duration(b.wall_ns)],
    ['Active time', duration(a.active_ns), duration(b.active_ns)],
    ['Findings', String(a.findings.length), String(b.findings.length)],
  ];
  return h('div', {},
    h('table', {class: 'list compare-numbers'},
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {class: 'num'}, 'A'), h('th', {class: 'num'}, 'B'))),
      h('tbody', {}, rows.map(([name, x, y, kind]) => h('tr', {class: kind === 'sub' ? 'sub' : '', dataset: {row: typeof name === 'string' ? name : ''}},
        h('th', {scope: 'row'}, name), h('td', {class: 'num'}, x), h('td', {class: 'num'}, y))))),
    c.cost_ratio != null ? h('p', {class: 'cost-ratio'}, `B cost ${c.cost_ratio.toFixed(2)}× A`) : null,
    h('p', {class: 'muted small'}, `Estimated at the ${a.tokens.prices}`,
      ...[['A', a], ['B', b]].filter(([, side]) => side.tokens.unpriced_requests || side.tokens.cost_usd == null)
        .map(([name, side]) => `; ${name}: ${costText(side.tokens)}`), '.'));
}

function divergence(d, c) {
  const section = h('section', {class: 'divergence'}, h('h2', {}, 'First divergence'));
  if (!d) {
    section.append(h('p', {}, 'The main chains made the same tool calls, request by request.'));
    return section;
  }
  const offset = (ns) => (ns == null ? '' : ` (+${clock(ns)})`);
  const calls = (list) => (list.length ? h('ul', {}, list.map((call) => h('li', {}, h('code', {}, escaped(call)))))
    : h('p', {class: 'muted'}, '(no tool call)'));
  section.append(h('p', {}, `At request ${d.request} of the main chains:`),
    h('div', {class: 'compare-heads'},
      h('div', {class: 'side-a'}, h('h3', {}, `A${offset(d.a_offset_ns)}`), calls(d.a_calls)),
      h('div', {class: 'side-b'}, h('h3', {}, `B${offset(d.b_offset_ns)}`), calls(d.b_calls))),
    h('p', {class: 'links'}, h('a', {href: sessionHref(c.a.trace_id)}, 'Open A'), ' · ', h('a', {href: sessionHref(c.b.trace_id)}, 'Open B')));
  return section;
}

function findingList(name, side) {
  return h('section', {class: `side-${name.toLowerCase()}`}, h('h2', {}, `Findings in ${name} (${side.findings.length})`),
    side.findings.length
      ? h('ol', {class: 'findings'}, side.findings.map((f) => h('li', {class: `finding k-${f.kind}`},
        h('span', {class: 'badge'}, f.kind.replaceAll('_', ' ')), ' ', h('span', {class: 'finding-title'}, escaped(f.title)))))
      : h('p', {class: 'muted'}, 'None.'));
}

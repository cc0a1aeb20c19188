// The findings about the trace on its page: the findings list's own (GET
// /api/v1/traces/{id}/findings reads the same window and ranks them the same as /findings), each
// with its evidence spans tagged in the waterfall by the finding's rank and a legend saying which
// finding tagged them. A link that marks spans (`mark=`, from a finding's evidence) opens with a
// banner naming the finding they are the evidence of (`finding=FINGERPRINT` names it outright).

import {get} from '../api.js';
import {h, note, plural, escaped, operationHref} from '../dom.js';

/** Fetches the trace's findings and shows them in `view.findingsBox`; tags their evidence
 * rows and names the finding a link marked. Fetched after the waterfall is up. */
export async function showFindings(view, query) {
  const box = view.findingsBox;
  let answer;
  try {
    answer = await get(`traces/${view.wf.trace_id}/findings`);
  } catch (error) {
    box.replaceChildren(note(`The findings could not be read: ${error.message}`, 'error'));
    return;
  }
  const own = answer.findings.map((f) => ({...f, rows: evidenceRows(view, f)}));
  for (const f of own) {
    for (const row of f.rows) view.markTags.set(row, [...(view.markTags.get(row) || []), f]);
  }
  box.replaceChildren(findingsSection(answer, own));
  const banner = markedBanner(view, own, query);
  if (banner) box.before(banner);
  view.draw();
}

/** The rows of this trace a finding's evidence names. */
function evidenceRows(view, finding) {
  const rows = [];
  for (const e of finding.evidence) {
    if (e.trace_id !== view.wf.trace_id) continue;
    for (const s of e.span_ids) if (view.rowOf.has(s)) rows.push(view.rowOf.get(s));
  }
  return rows;
}

function findingsSection(answer, own) {
  const window = answer.window;
  const where = `${window.description}: ${plural(answer.findings_in_window, 'finding')} across ${plural(answer.traces_analysed, 'trace')}`;
  const summary = own.length
    ? `Findings about this trace (${own.length}) · ranked among ${where}`
    : `No finding about this trace · ${where}`;
  return h('details', {class: 'trace-findings', open: own.length ? true : undefined, 'data-trace-findings': true},
    h('summary', {}, summary),
    window.note ? note(`Note: ${window.note}.`) : null,
    own.length ? h('ol', {class: 'trace-finding-list'}, own.map((f) => h('li', {'data-finding': f.fingerprint},
      h('span', {class: 'finding-tag', title: `finding ${f.rank} of the window`}, `#${f.rank}`), ' ',
      h('strong', {}, escaped(f.title)), ' ',
      h('span', {class: 'badge'}, f.kind.replaceAll('_', ' ')),
      f.operation ? [' on ', h('a', {href: operationHref(f.operation)}, escaped(f.operation))] : null,
      h('div', {class: 'muted small'}, `${f.impact_text} · `,
        f.rows.length ? `${plural(f.rows.length, 'span')} of its evidence tagged #${f.rank} in the waterfall` : 'its evidence is in other traces'),
      h('div', {class: 'small'}, '→ ', escaped(f.recommendation))))) : null);
}

/** A banner naming the finding a link's marked spans (or `finding=`) are the evidence of. */
function markedBanner(view, own, query) {
  const marked = [...view.marks];
  const named = query.get('finding');
  if (!marked.length && !named) return null;
  const same = (f) => (named ? f.fingerprint === named
    : marked.every((row) => f.rows.includes(row)));
  const finding = own.find(same);
  // A link that names the finding without marking spans: its evidence is what to highlight.
  if (finding && !marked.length) for (const row of finding.rows) view.marks.add(row);
  if (!finding) {
    return h('p', {class: 'finding-banner', role: 'note', 'data-finding-banner': true},
      `${plural(marked.length, 'span')} marked by the link`,
      named ? ': no finding about this trace has that fingerprint now' : ' (no finding about this trace has them as its evidence now)');
  }
  return h('p', {class: 'finding-banner', role: 'note', 'data-finding-banner': finding.fingerprint},
    h('span', {class: 'finding-tag'}, `#${finding.rank}`), ' Marked: the evidence of ', h('strong', {}, escaped(finding.title)),
    ` · ${finding.impact_text} · `, h('span', {class: 'muted'}, `${plural(marked.length || finding.rows.length, 'span')} highlighted`));
}

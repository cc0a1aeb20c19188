// A session's QA on its page: the latest job's state (live while it runs), the verdict, the
// patch and how it applied (rejected hunks shown), both test runs with the tests the patch
// fixed, broke or left failing, and each judge's scores with the events they cite (links into
// the timeline). A button queues QA (POST /api/v1/sessions/{id}/qa).
//
// Test names, outputs, summaries and a judge's comments are recorded or derived from recorded
// text: set as text, never as markup.

import {get, post} from '../api.js';
import {h, duration, time, bytes, plural, note} from '../dom.js';

const POLL_MS = 1000;

/** The QA section for session `traceId`; it loads itself and follows a running job. */
export function qaSection(traceId) {
  const body = h('div', {class: 'qa-body'}, note('Loading QA…'));
  const section = h('section', {class: 'session-qa', id: 'qa', 'aria-live': 'polite'}, h('h2', {}, 'QA'), body);
  let timer = null;
  const load = async () => {
    let qa;
    try {
      qa = await get(`sessions/${traceId}/qa`);
    } catch (error) {
      body.replaceChildren(note(error.message, 'error'));
      return;
    }
    body.replaceChildren(...render(qa, traceId, queue).flat().filter(Boolean));
    const active = qa.jobs[0] && (qa.jobs[0].state === 'queued' || qa.jobs[0].state === 'running');
    clearTimeout(timer);
    if (active && section.isConnected !== false) timer = setTimeout(load, POLL_MS);
  };
  const queue = async (button) => {
    button.disabled = true;
    button.textContent = 'Queueing…';
    try {
      await post(`sessions/${traceId}/qa`);
      await load();
    } catch (error) {
      button.disabled = false;
      button.textContent = `Could not queue it: ${error.message}`;
    }
  };
  load();
  section.stop = () => clearTimeout(timer);
  return section;
}

function render(qa, traceId, queue) {
  const parts = [];
  const job = qa.jobs[0];
  const button = h('button', {type: 'button', class: 'secondary small qa-run'}, job ? 'Run QA again' : 'Run QA');
  button.addEventListener('click', () => queue(button));
  if (job && (job.state === 'queued' || job.state === 'running')) {
    parts.push(h('p', {class: 'qa-job'}, h('span', {class: 'badge'}, job.state),
      ` job ${job.id}`, job.state === 'running' && job.worker ? ` on ${job.worker}` : '',
      ` · attempt ${job.attempts} of ${job.max_attempts} · queued ${time(job.enqueued_unix_nano)}`));
  } else if (job) {
    parts.push(h('p', {class: 'qa-job muted'}, `job ${job.id} ${job.state}`,
      job.finished_unix_nano ? ` ${time(job.finished_unix_nano)}` : '', ` · ${job.runner} runner · `, button));
  }
  if (qa.result) parts.push(...result(qa.result, traceId));
  else if (qa.recorded) parts.push(...recorded(qa.recorded));
  else if (!job) parts.push(h('p', {}, 'No QA yet: apply the session\'s patch at its task\'s commit, run its tests in the sandbox and judge it. ', button));
  if (!qa.result && job?.error) parts.push(h('p', {class: 'error-text'}, job.error));
  return parts;
}

const VERDICT_CLASS = {resolved: 'ok', passed: 'ok', broke_tests: 'error', unresolved: 'error', patch_failed: 'error'};

function result(r, traceId) {
  const parts = [h('p', {class: 'qa-verdict'},
    h('span', {class: `badge verdict ${VERDICT_CLASS[r.verdict] || ''}`}, r.verdict.replaceAll('_', ' ')), ' ',
    r.summary.startsWith(`${r.verdict}: `) ? r.summary.slice(r.verdict.length + 2) : r.summary)];
  if (r.infrastructure) {
    parts.push(h('p', {class: 'muted'}, `Infrastructure (${r.infrastructure.class.replaceAll('_', ' ')}, ${r.infrastructure.step}): not counted against the session.`));
  }
  if (r.flaky) {
    parts.push(h('p', {class: 'error-text'}, `Flaky: differs from job ${r.flaky.previous_job}`,
      r.flaky.tests.length ? ` (${r.flaky.tests.join(', ')})` : ''));
  }
  const facts = [];
  if (r.repository) facts.push(fact('Repository', r.repository));
  if (r.commit) facts.push(fact('Commit', h('span', {class: 'mono'}, r.commit.slice(0, 12))));
  if (r.command) facts.push(fact('Test command', h('code', {}, r.command)));
  if (r.runner?.name) facts.push(fact('Runner', r.runner.name));
  if (r.patch) {
    const p = r.patch;
    facts.push(fact('Patch', `${p.source.replaceAll('_', ' ')}, ${plural(p.pieces, 'piece')}, ` +
      (p.method ? `applied by ${p.method.replaceAll('_', ' ')} (confidence ${p.confidence.toFixed(1)})` : 'did not apply')));
    if (p.files.length) facts.push(fact('Files', p.files.join(', ')));
  }
  facts.push(fact('Took', `${(r.timings.total_ms / 1000).toFixed(1)} s`));
  parts.push(h('dl', {class: 'facts qa-facts'}, facts));
  if (r.runner?.isolation?.length) parts.push(h('p', {class: 'muted small qa-isolation'}, `Isolation: ${r.runner.isolation.join('; ')}.`));
  if (r.patch?.rejected?.length) {
    parts.push(h('h3', {}, `Rejected hunks (${r.patch.rejected.length})`),
      ...r.patch.rejected.map((hunk) => h('div', {class: 'qa-hunk'},
        h('p', {}, h('span', {class: 'path'}, hunk.file), hunk.event ? [' · ', entryLink(traceId, hunk.event, 'from this entry')] : null),
        h('pre', {class: 'diff'}, hunk.hunk))));
  }
  for (const note of r.patch?.notes || []) parts.push(h('p', {class: 'muted small'}, note));
  const runs = [r.base, r.patched].filter(Boolean);
  if (runs.length) {
    parts.push(h('table', {class: 'qa-runs'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Run'), h('th', {}, 'Ended'), h('th', {}, 'Time'), h('th', {}, 'Tests'), h('th', {}, 'Output'))),
      h('tbody', {}, runs.map((run) => h('tr', {class: `qa-run-${run.label}`},
        h('td', {}, run.label === 'base' ? 'base commit' : 'with the patch'),
        h('td', {}, run.timed_out ? 'timed out' : run.exit_code != null ? `exit ${run.exit_code}` : `signal ${run.signal}`),
        h('td', {}, duration(run.duration_ms * 1e6)),
        h('td', {}, run.tests ? `${run.tests.passed} passed, ${run.tests.failed} failed, ${run.tests.skipped} skipped (${run.tests.runner})` : 'no test runner recognised'),
        h('td', {}, outputDetails(run)))))));
  }
  const c = r.comparison;
  if (c) {
    const list = (label, names, cls) => names.length ? h('p', {class: `qa-tests ${cls}`}, h('strong', {}, `${label}: `),
      names.map((n, i) => [i ? ', ' : '', h('code', {}, n)])) : null;
    parts.push(list('Fixed', c.fixed, 'fixed'), list('Broken', c.broken, 'broken error-text'),
      list('Still failing', c.still_failing, 'still'), list('Failing, not listed before', c.new_failing, 'new'));
  }
  for (const judge of r.judges) parts.push(judgeTable(judge, traceId));
  for (const error of r.judge_errors || []) parts.push(h('p', {class: 'error-text'}, `Judge failed: ${error}`));
  return parts;
}

function outputDetails(run) {
  const streams = [['stdout', run.stdout], ['stderr', run.stderr]].filter(([, o]) => o && o.bytes > 0);
  if (!streams.length) return 'none';
  return streams.map(([name, o]) => h('details', {class: 'qa-output'},
    h('summary', {}, `${name} (${bytes(o.bytes)}${o.truncated ? ', head and tail shown' : ''})`),
    h('pre', {class: 'output'}, o.text),
    o.blob ? h('a', {href: `/api/v1/blobs/${o.blob}`, target: '_blank', rel: 'noopener'}, 'whole output (JSON pages)') : null));
}

function judgeTable(judge, traceId) {
  return h('div', {class: 'qa-judge'},
    h('h3', {}, `${judge.model} · rubric ${judge.rubric_version} · overall ${judge.overall.toFixed(1)}`,
      judge.samples ? h('span', {class: 'muted small'}, ` (${plural(judge.samples, 'sample')}${judge.cached ? ', cached' : ''})`) : null),
    h('table', {class: 'qa-scores'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Criterion'), h('th', {}, 'Score'), h('th', {}, 'Why'), h('th', {}, 'Evidence'))),
      h('tbody', {}, judge.criteria.map((c) => h('tr', {dataset: {criterion: c.criterion}},
        h('td', {}, c.criterion.replaceAll('_', ' ')),
        h('td', {class: 'num'}, c.score.toFixed(1), c.spread != null ? h('span', {class: 'muted small'}, ` ±${c.spread}`) : null),
        h('td', {}, h('ul', {class: 'qa-reasons'}, c.reasons.map((reason) => h('li', {}, reason)))),
        h('td', {}, c.evidence.map((span, i) => [i ? ' ' : '', entryLink(traceId, span, span.slice(0, 8))])))))),
    judge.comments ? h('p', {class: 'qa-comments'}, judge.comments) : null);
}

function recorded(rec) {
  const parts = [h('p', {class: 'muted'}, rec.source === 'document'
    ? 'Recorded in the session\'s trace-1.0.0 document (qa block):'
    : 'Recorded in the session by another devtrace:')];
  if (rec.tests) {
    parts.push(h('p', {}, h('span', {class: `badge ${rec.tests.ok ? 'ok' : 'error'}`}, rec.tests.ok ? 'tests passed' : 'tests failed'),
      ' ', h('code', {}, rec.tests.command), ` · ${rec.tests.runner}`, rec.tests.exit_code != null ? ` · exit ${rec.tests.exit_code}` : ''));
  }
  if (rec.judge) {
    parts.push(h('div', {class: 'qa-judge'}, h('h3', {}, `${rec.judge.model} · rubric ${rec.judge.rubric_version} · overall ${Number(rec.judge.overall).toFixed(1)}`),
      h('table', {class: 'qa-scores'}, h('tbody', {}, Object.entries(rec.judge.scores).map(([k, v]) =>
        h('tr', {}, h('td', {}, k.replaceAll('_', ' ')), h('td', {class: 'num'}, Number(v).toFixed(1)))))),
      rec.judge.comments ? h('p', {class: 'qa-comments'}, rec.judge.comments) : null));
  }
  return parts;
}

function entryLink(traceId, span, label) {
  return h('a', {href: `/sessions/${traceId}?entry=${span}`, dataset: {entry: span}, class: 'mono'}, label);
}

function fact(label, value) {
  return [h('dt', {}, label), h('dd', {}, value)];
}

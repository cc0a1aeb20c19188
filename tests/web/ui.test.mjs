// End-to-end tests of the web UI: a real `devtrace serve` loaded with the journal demo's
// traces (a real OpenTelemetry program, run 20 times: 10 original, 10 fixed), two
// `devtrace run` executions of it, a Claude Code sample project's three sessions (the
// repository's synthetic one, tests/fixtures/claude-code; or, when DEVTRACE_EXTERNAL_FIXTURES
// names the third-party fixtures, the real one, which the orchestrator-view test is written
// against) and a developer session, sent as a trace-1.0.0 document, whose command
// ran one of those runs; driven by Playwright in Debian's Chromium, headless.
// Screenshots of each main view go to target/web-screenshots/ for a reviewer.
//
// Run with scripts/test (which builds devtrace and installs Chromium and playwright-core),
// or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, existsSync, mkdirSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, dirname} from 'node:path';
import {bin, root, shots, waitFor, startServe, openBrowser, cleanUp} from './harness.mjs';

const demoProgram = join(dirname(bin), 'journal-demo');
const EXTERNAL = process.env.DEVTRACE_EXTERNAL_FIXTURES;
const sampleProject = EXTERNAL ? join(EXTERNAL, 'claude-code/sample-project')
  : join(root, 'tests/fixtures/claude-code/sample-project');
const FE5E = 'fe5e1c6753e7486281aed0e013e3270b';
// The sample project's orchestrator session (a session without agent metrics).
const ORCHESTRATOR = EXTERNAL ? FE5E : '3f2a9b1c5d7e4f809a1b2c3d4e5f6a7b';
const LINKED_SESSION = '6b1f0c2e-3d4a-4e5b-8c7d-9e0f1a2b3c4d';

let data, server, info, base, browser, page, beforeRun;

function devtrace(...args) {
  return execFileSync(bin, ['--data', data, ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});
}


before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-'));
  mkdirSync(shots, {recursive: true});
  devtrace('demo', '--fixed');
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  // Two recorded runs of the demo program: the original and the fixed variant.
  devtrace('run', '--label', 'before', '--', demoProgram, '--run', '0');
  devtrace('run', '--label', 'after', '--', demoProgram, '--run', '1', '--fixed');
  // Sessions: the sample project's transcripts, and a developer's session whose command ran
  // the 'before' run (same command line, same directory, overlapping time), so it links to it.
  devtrace('import', 'claude-code', sampleProject);
  beforeRun = JSON.parse(devtrace('runs', '--label', 'before', '--json'))[0];
  const runSpan = JSON.parse(devtrace('show', beforeRun.trace_id, '--json')).spans[0];
  const cwd = runSpan.attributes['devtrace.run.cwd'];
  const at = (offsetMs) => new Date(Number(BigInt(beforeRun.start_unix_nano) / 1000000n) + offsetMs).toISOString();
  const runMs = beforeRun.duration_ns / 1e6;
  const posted = await fetch(`${base}/api/v1/sessions`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({
    trace_id: LINKED_SESSION, version: 'trace-1.0.0', created_at: at(-5000),
    developer: {name: 'Ada', experience_level: 'senior', ide: 'vim', os: 'linux'},
    task: {description: 'Time the journal generator before the fix', repository: cwd, complexity: 'low'},
    events: [
      {t: at(-4000), type: 'file_opened', file_path: 'journal/summary.py'},
      {t: at(-3000), type: 'edit', file_path: 'journal/summary.py', op: 'replace',
        patch_unified: '--- a/journal/summary.py\n+++ b/journal/summary.py\n@@ -1,2 +1,2 @@\n def summary(day):\n-    return generate(day)\n+    return generate(day, timeout=30)\n',
        before_hash: 'a1', after_hash: 'a2'},
      {t: at(-200), type: 'terminal_command', cmd: 'devtrace', args: ['run', '--label', 'before', '--', demoProgram, '--run', '0'],
        cwd, exit_code: 0, duration_ms: runMs + 400, stdout: 'journal written\n', stderr: ''},
      {t: at(runMs + 1000), type: 'thought', raw: 'The three LLM calls run one after another; <b>not</b> in parallel.', tags: ['performance']},
    ],
  })});
  assert.equal(posted.status, 201, await posted.text());
  ({browser, page} = await openBrowser({width: 1400, height: 900}));
});

after(() => cleanUp({browser, server, data}));

const rows = () => page.locator('table.traces tbody tr');
const shot = (name) => page.screenshot({path: join(shots, `${name}.png`)});

test('list → filter → open trace → critical path → select span → attributes', async () => {
  await page.goto(`${base}/`);
  await page.waitForURL(`${base}/traces`);
  // 20 demo traces, 2 run traces and the 2 journal traces attached to them, and 4 sessions
  // (sessions are traces too).
  await page.getByText('28 traces shown, newest first.').waitFor();
  assert.equal(await rows().count(), 28);
  await page.locator('td.spark-cell svg polyline').first().waitFor();
  await shot('traces');

  // Filter: traces with a summary.generate span that failed.
  await page.getByLabel('Operation (any span)').fill('summary.generate');
  await page.getByLabel('Status').selectOption('error');
  await page.getByRole('button', {name: 'Apply'}).click();
  await page.waitForURL(/status=error/);
  await page.getByText('6 traces shown, newest first.').waitFor();
  assert.equal(await rows().count(), 6);
  const expected = JSON.parse(devtrace('ls', '--operation', 'summary.generate', '--errors', '--json')).map((t) => t.trace_id);
  const shown = await rows().evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
  assert.deepEqual(shown, expected);
  for (const badge of await rows().locator('.badge.error').allTextContents()) assert.equal(badge, '2');
  assert.equal(new URL(page.url()).searchParams.get('operation'), 'summary.generate');

  // Open the newest failing trace.
  await rows().first().locator('td:last-child a').click();
  await page.waitForURL(`${base}/traces/${expected[0]}`);
  const summary = page.locator('.wf-row', {hasText: 'summary.generate'});
  await summary.waitFor();
  // The calls run one after another, so the failing summary.generate is on the critical path.
  assert.match(await summary.getAttribute('class'), /\bcritical\b/);
  assert.match(await summary.getAttribute('class'), /\berror\b/);
  assert.match(await page.locator('.wf-row', {hasText: 'journal.generate'}).first().getAttribute('class'), /\bcritical\b/);
  const folded = page.locator('.wf-row.fold');
  assert.match(await folded.textContent(), /× 40 SELECT/);
  assert.equal(await page.locator('.facts dd').nth(1).textContent(), '47');
  await shot('trace');

  // Select the span: its attributes, exception and LLM call show.
  await summary.locator('.label').click();
  await page.waitForURL(/span=[0-9a-f]{16}/);
  const panel = page.locator('.span-panel');
  await panel.getByRole('heading', {name: 'summary.generate'}).waitFor();
  await panel.getByRole('heading', {name: /^Attributes \(\d+\)/}).waitFor();
  const attrs = await panel.locator('section:has(h3:text-matches("^Attributes")) table.attrs tr').evaluateAll((trs) =>
    Object.fromEntries(trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])));
  const detail = await (await fetch(`${base}/api/v1/traces/${expected[0]}/spans/${new URL(page.url()).searchParams.get('span')}`)).json();
  assert.equal(Object.keys(attrs).length, detail.attributes.length);
  for (const a of detail.attributes) {
    assert.equal(attrs[a.key], typeof a.value === 'string' ? a.value : JSON.stringify(a.value), a.key);
  }
  assert.ok(Object.keys(attrs).some((k) => k.startsWith('gen_ai.')), JSON.stringify(attrs));
  await panel.getByRole('heading', {name: 'Exception'}).waitFor();
  await panel.getByRole('heading', {name: 'LLM call'}).waitFor();
  assert.equal(await panel.locator('.facts dd').first().textContent(), '12.00 s');
  // The attribute filter narrows the table.
  await panel.getByLabel('Filter attributes').fill('tokens');
  const visible = await panel.locator('section:has(h3:text-matches("^Attributes")) table.attrs tr:not([hidden]) th').allTextContents();
  assert.ok(visible.length > 0 && visible.length < detail.attributes.length, String(visible));
  for (const key of visible) assert.match(key, /tokens/);
  await shot('trace-span');

  // The theme follows the system.
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(await background(), 'rgb(255, 255, 255)');
  await page.emulateMedia({colorScheme: 'dark'});
  assert.equal(await background(), 'rgb(20, 23, 28)');
  await shot('trace-span-dark');
  await page.emulateMedia({colorScheme: 'light'});
});

test('a trace is searchable, its repeats unfold, the keyboard moves and playback replays it', async () => {
  const [trace] = JSON.parse(devtrace('ls', '--operation', 'journal.generate', '--limit', '1', '--json'));
  await page.goto(`${base}/traces/${trace.trace_id}`);
  await page.locator('.wf-row.fold').waitFor();
  const height = () => page.locator('.wf-spacer').evaluate((el) => el.getBoundingClientRect().height);
  const rowsBefore = await height() / 24;
  assert.equal(rowsBefore, 9, 'the 48 spans show as 9 rows with the 40 queries folded');
  await page.locator('.wf-row.fold').click();
  await page.locator('.wf-row:not(.fold)', {hasText: 'SELECT'}).first().waitFor();
  assert.equal(await height() / 24, 48);
  // Virtual rendering: only the rows in view (and a margin) exist in the page.
  assert.ok(await page.locator('.wf-row').count() < 47);

  await page.getByLabel('Search within the trace').fill('chat_history');
  await page.getByText(/^\d+ match/).waitFor();
  const matches = await page.locator('.wf-row.match').count();
  assert.ok(matches >= 1);
  await page.getByLabel('Search within the trace').press('Enter');
  await page.getByText(/^match 1 of/).waitFor();
  assert.match(await page.locator('.wf-row.selected').textContent(), /chat_history/);

  // Keyboard: down moves the selection to the next row.
  await page.locator('.wf-scroll').focus();
  const first = await page.locator('.wf-row.selected').textContent();
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction((prev) => document.querySelector('.wf-row.selected')?.textContent !== prev, first);

  await page.keyboard.press('Home');
  await page.getByRole('button', {name: 'Playback'}).click();
  const scrubber = page.getByLabel('Playback position');
  await scrubber.fill('5'); // 0.5 % into the trace
  const wf = await (await fetch(`${base}/api/v1/traces/${trace.trace_id}/waterfall`)).json();
  const t = 5 / 1000 * wf.duration_ns;
  const running = wf.start.filter((s, i) => s <= t && t < s + wf.duration[i]).length;
  await page.getByText(`${running} running`, {exact: true}).waitFor();
  assert.ok(running >= 2, `${running} running`);
  assert.ok(await page.locator('.wf-row.running').count() >= 2);
  assert.ok(await page.locator('.wf-row.future').count() >= 1);
  await shot('trace-playback');
});

test('compare two runs side by side, aligned by operation', async () => {
  await page.goto(`${base}/runs`);
  const runRows = page.locator('table.runs tbody tr');
  await runRows.first().waitFor();
  assert.equal(await runRows.count(), 2);
  assert.deepEqual(await runRows.locator('td:nth-child(4)').allTextContents(), ['after', 'before']);
  await shot('runs');
  await runRows.nth(0).getByRole('checkbox').check();
  await runRows.nth(1).getByRole('checkbox').check();
  await page.getByRole('button', {name: 'Compare the two ticked'}).click();
  await page.waitForURL(/\/compare\?run_a=[0-9a-f]{32}&run_b=[0-9a-f]{32}/);
  await page.locator('table.compare tbody tr').first().waitFor();
  const table = await page.locator('table.compare tbody tr').evaluateAll((trs) =>
    Object.fromEntries(trs.map((tr) => [tr.cells[0].textContent, [...tr.cells].map((c) => c.textContent)])));
  // The journal program's operations, from the traces attached to each run, side by side.
  for (const op of ['journal.generate', 'summary.generate', 'dialogue.generate', 'technical_decisions.generate']) {
    assert.ok(table[op], `${op} in ${Object.keys(table)}`);
  }
  const url = new URL(page.url());
  const api = await (await fetch(`${base}/api/v1/compare?${url.searchParams}`)).json();
  const journal = api.comparison.operations.find((o) => o.operation === 'journal.generate');
  // The fixed run makes the LLM calls concurrently: journal.generate is several seconds shorter.
  assert.ok(journal.b.mean_nanos < journal.a.mean_nanos - 5e9, JSON.stringify(journal));
  assert.match(table['journal.generate'][4], /^−\d/);
  assert.match(await page.locator('.compare-head h2').textContent(), /^run [0-9a-f]{32} \(A\) vs run [0-9a-f]{32} \(B\)$/);
  await shot('compare');
});

test('operation analytics: histogram, percentiles, breakdown and findings', async () => {
  await page.goto(`${base}/operations`);
  await page.getByRole('link', {name: 'journal.generate', exact: true}).first().click();
  await page.waitForURL(`${base}/operations/journal.generate`);
  await page.locator('table.breakdown tbody tr').first().waitFor();
  const children = await page.locator('table.breakdown tbody tr td:first-child').allTextContents();
  assert.deepEqual(children.slice(0, 3), ['summary.generate', 'dialogue.generate', 'technical_decisions.generate']);
  assert.ok(await page.locator('svg.chart rect.bar').count() >= 2);
  // One legend entry per series drawn (p50 and p95 are one line where they are equal).
  const drawn = await page.locator('svg.chart polyline.line').count();
  assert.ok(drawn >= 1);
  assert.equal(await page.locator('.chart-legend .legend-item').count(), drawn);
  assert.equal(await page.locator('svg.chart text', {hasText: /^\d\d:\d\d:\d\d$/}).count() >= 1, true, 'a time axis');
  const runsFact = await page.locator('.facts dt:text("Runs") + dd').textContent();
  assert.match(runsFact, /^20 in 20 traces$/);
  await page.getByRole('heading', {name: /^Findings \(\d+\)$/}).waitFor();
  assert.ok(await page.locator('.finding h3', {hasText: 'one after another'}).count() >= 1);
  await shot('operation');
});

test('findings link their evidence to the spans', async () => {
  await page.goto(`${base}/findings`);
  await page.locator('.finding').first().waitFor();
  const titles = await page.locator('.finding h3').allTextContents();
  assert.ok(titles.some((t) => /run one after another under "journal\.generate"/.test(t)), titles.join('\n'));
  // Each card says its impact in its own units: the sequential work in time saved per run.
  const meta = await page.locator('.finding', {hasText: 'one after another'}).first().locator('.meta').textContent();
  // The wording is the server's (impact_text), the same as `devtrace insights` and MCP.
  assert.match(meta, /saves ≈ [\d.]+ s per run in \d+ of \d+ runs of "journal\.generate" \(\d+ % of its time\) · score 0\.\d{3}/);
  await shot('findings');
  const evidence = page.locator('.finding', {hasText: 'one after another'}).first().locator('.evidence a').first();
  const href = await evidence.getAttribute('href');
  const marked = new URL(href, base).searchParams.get('mark').split(',');
  await evidence.click();
  await page.locator('.span-panel h2').waitFor();
  assert.equal(await page.locator('.wf-row.mark').count(), marked.length);
});

const entries = () => page.locator('ol.timeline > li.entry');

test('sessions list → the orchestrator session: turns, tool calls, diffs, outputs and the blind-edit finding',
  {skip: !EXTERNAL && 'third-party sample project: set DEVTRACE_EXTERNAL_FIXTURES'}, async () => {
  await page.goto(`${base}/traces`);
  await page.keyboard.press('g');
  await page.keyboard.press('s');
  await page.waitForURL(`${base}/sessions`);
  await page.getByText('4 sessions, newest first.').waitFor();
  const sessionRows = page.locator('table.sessions tbody tr');
  const row = async (id) => (await page.locator(`table.sessions tbody tr[data-id="${id}"] td`).allTextContents());
  // Newest first: the developer's session (today), then the sample project's three.
  assert.deepEqual(await sessionRows.evaluateAll((trs) => trs.map((tr) => tr.dataset.id.slice(0, 8))),
    ['6b1f0c2e', 'fe5e1c67', '5c0375b4', '1af7fc5e']);
  // Agent, project, title, duration, turns, tool calls, tokens, estimated cost, errors,
  // findings, id: the numbers `devtrace sessions` prints for these transcripts.
  assert.deepEqual((await row(FE5E)).slice(2), ['claude-code', '/path/to/Demo', '/orchestrator create TODO app by Next.js',
    '9.5 min', '2', '167 +5 agents', '3.8M', '$2.39', '23', '5', 'fe5e1c67']);
  assert.deepEqual((await row('5c0375b457a54f26b12dd022ee4e51b7')).slice(2, 12), ['claude-code', '/path/to/Demo',
    '/orchestrator @CLAUDE.md を最新の状態にアップデートしてください', '4 d 9 h', '1', '21 +4 agents', '375k', '$0.332', '3', '0']);
  assert.deepEqual((await row('1af7fc5e845544149ccd011d40f70b2a')).slice(2, 12), ['claude-code', '/path/to/Demo', '/init',
    '32.97 s', '1', '12', '116k', '$0.093', '1', '0']);
  assert.equal(await page.locator(`table.sessions tbody tr[data-id="${FE5E}"]`).getAttribute('class'), 'has-error');
  await shot('sessions');

  // Filter by agent: the URL keeps it.
  await page.getByLabel('Agent').fill('claude-code');
  await page.getByRole('button', {name: 'Apply'}).click();
  await page.waitForURL(`${base}/sessions?agent=claude-code`);
  await page.getByText('3 sessions, newest first.').waitFor();

  // Open the orchestrator session.
  await page.getByRole('link', {name: `open session /orchestrator create TODO app by Next.js ${FE5E}`}).click();
  await page.waitForURL(`${base}/sessions/${FE5E}`);
  await page.getByRole('heading', {name: '/orchestrator create TODO app by Next.js', level: 1}).waitFor();
  const fact = async (label) => page.locator(`.session-head .facts dt:text-is("${label}") + dd`).textContent();
  assert.equal(await fact('Turns'), '2');
  assert.equal(await fact('Tool calls'), '167');
  assert.equal(await fact('Sub-agents'), '5');
  assert.equal(await fact('Errors'), '23');
  assert.equal(await fact('Tokens'), '3.8M in (3.6M from cache), 51k out');
  const api = await (await fetch(`${base}/api/v1/sessions/${FE5E}/overview`)).json();
  // Every entry of the timeline (the first ones at once, the rest right after): 2 turns,
  // 95 replies, 5 sub-agents, 167 tool calls, 23 failed.
  await page.waitForFunction((n) => document.querySelectorAll('ol.timeline > li.entry').length === n, api.timeline.length);
  assert.equal(api.timeline.length, 269);
  assert.equal(await page.locator('li.entry.k-turn').count(), 2);
  assert.equal(await page.locator('li.entry.k-message').count(), 95);
  assert.equal(await page.locator('li.entry.k-agent').count(), 5);
  assert.equal(await page.locator('li.entry.k-tool').count(), 167);
  assert.equal(await page.locator('li.entry.failed').count(), 23);
  assert.equal(await page.locator('li.entry.k-turn .label').first().textContent(), '/orchestrator create TODO app by Next.js');
  assert.equal(await page.locator('li.entry.k-agent .label').first().textContent(), 'sub-agent: Setup Next.js project');
  assert.equal(await page.locator('li.entry.k-message pre.reply').first().textContent(),
    'I\'ll help you create a TODO app using Next.js by breaking this into parallel subtasks for efficient execution. Let me start by discovering available commands and then decomposing the task.');

  // The findings, and the blind edits inline: each refused edit shows its error.
  const findings = page.locator('.session-findings .finding');
  assert.equal(await findings.count(), 5); // 4, plus one of batchable reads listing its 5 runs (issue 25)
  const blind = api.findings.findIndex((f) => f.kind === 'anti_pattern' && f.operation === 'blind edit');
  assert.equal(await findings.nth(blind).locator('h3').textContent(),
    '13 edits of files not read first, 13 refused by the tool ("todo-app/src/app/page.tsx", "todo-app/src/hooks/useTodos.test.ts", "todo-app/src/hooks/useTodos.ts", …)');
  const refused = page.locator('li.entry.failed', {hasText: 'File has not been read yet. Read it first before writing to it.'});
  assert.equal(await refused.count(), 13);
  // The retry loop is flagged on the fourth failed build, with the build's output.
  const flagged = page.locator('li.entry.has-finding', {hasText: '"npm run build" failed 4 times in a row'});
  assert.match(await flagged.locator('code.command').textContent(), /^npm run build$/);
  assert.match(await flagged.locator('pre.output').textContent(), /TypeError: generate is not a function/);
  // "Show in the timeline" marks the finding's evidence and moves to where it became evident.
  await findings.nth(blind).getByRole('link', {name: 'Show in the timeline'}).click();
  await page.waitForURL(`${base}/sessions/${FE5E}?finding=${blind + 1}`);
  const evidence = api.findings[blind].evidence.flatMap((e) => e.span_ids);
  assert.equal(await page.locator('li.entry.mark').count(), evidence.length);
  assert.equal(evidence.length, 13);
  assert.deepEqual(await page.locator('li.entry.mark').evaluateAll((lis) => [...new Set(lis.map((li) => li.classList.contains('failed')))]), [true]);
  assert.match(await page.locator('li.entry.current').textContent(), /⚑ 13 edits of files not read first/);

  // An edit as a diff: removed and added lines of the Edit tool's old and new text.
  const edit = page.locator('li.entry.k-tool:not(.failed)', {has: page.locator('strong.label:text-is("Edit")')}).first();
  const diffLines = edit.locator('pre.diff span');
  assert.equal(await diffLines.first().textContent(), '-import Image from "next/image";');
  assert.equal(await diffLines.first().getAttribute('class'), 'del');
  // Its first lines, then all of it.
  assert.equal(await diffLines.count(), 12);
  const editSpan = await edit.getAttribute('data-span');
  const diff = api.timeline.find((e) => e.span_id === editSpan).diff.trimEnd().split('\n');
  await edit.getByRole('button', {name: `Show all ${diff.length} lines of the diff`}).click();
  assert.deepEqual(await diffLines.allTextContents(), diff);
  assert.equal(await edit.locator('pre.diff span.add').count(), diff.filter((l) => l.startsWith('+')).length);
  // A large output is cut in the view; "Show all" reads the whole of it from its blob.
  const cut = api.timeline.find((e) => e.label === 'Read' && e.output_ref);
  const read = page.locator(`li.entry[data-span="${cut.span_id}"]`);
  await read.locator('summary').filter({hasText: /^Output \(/}).click();
  await read.getByRole('button', {name: /^Show all 5\.2 kB of output$/}).click();
  const whole = await (await fetch(`${base}/api/v1/blobs/${cut.output_ref}`)).json();
  await page.waitForFunction(([span, size]) => document.querySelector(`li.entry[data-span="${span}"] pre.output`).textContent.length === size,
    [cut.span_id, whole.text.length]);
  assert.equal(await read.locator('pre.output').textContent(), whole.text);
  assert.equal(whole.size, 5207);

  // Keyboard: j/k and End move through the entries; the URL names the current one.
  await page.locator('ol.timeline').focus();
  await page.keyboard.press('Home');
  assert.equal(await page.locator('li.entry.current').getAttribute('data-span'), api.timeline[0].span_id);
  await page.keyboard.press('j');
  assert.equal(await page.locator('li.entry.current').getAttribute('data-span'), api.timeline[1].span_id);
  assert.equal(new URL(page.url()).searchParams.get('entry'), api.timeline[1].span_id);
  await page.keyboard.press('End');
  assert.equal(await page.locator('li.entry.current').getAttribute('data-span'), api.timeline.at(-1).span_id);
  assert.match(await page.locator('li.entry.current').textContent(), /CLAUDE\.md has been created/);
  // The filter narrows the timeline.
  await page.getByLabel('Filter the timeline').fill('npm run build');
  await page.getByText(/^\d+ of 269 entries$/).waitFor();
  assert.equal(await page.locator('li.entry:not([hidden])').count(),
    api.timeline.filter((e) => (e.command || '').includes('npm run build')).length);
  await page.getByLabel('Filter the timeline').fill('');
  await page.getByText('269 entries', {exact: true}).waitFor();

  // A deep link opens the timeline at its entry, even one built after the first batch.
  const late = api.timeline[250].span_id;
  await page.goto(`${base}/sessions/${FE5E}?entry=${late}`);
  await page.locator(`li.entry.current[data-span="${late}"]`).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.dataset.span), late);

  // The session is a trace too; its waterfall leads back to the timeline.
  await page.goto(`${base}/traces/${FE5E}`);
  await page.getByRole('link', {name: 'Session timeline'}).click();
  await page.waitForURL(`${base}/sessions/${FE5E}`);
  await entries().first().waitFor();
  await shot('session');
  await page.goto(`${base}/sessions/${FE5E}?finding=${blind + 1}`);
  await page.locator('li.entry.current').waitFor();
  await shot('session-finding');
  await page.emulateMedia({colorScheme: 'dark'});
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(20, 23, 28)');
  await shot('session-dark');
  await page.emulateMedia({colorScheme: 'light'});
});

test('a session links to the run its command made: follow it to the run\'s trace', async () => {
  await page.goto(`${base}/sessions`);
  await page.getByRole('link', {name: /^open session Time the journal generator before the fix /}).click();
  await page.waitForURL(`${base}/sessions/${LINKED_SESSION.replaceAll('-', '')}`);
  await page.getByRole('heading', {name: 'Time the journal generator before the fix', level: 1}).waitFor();
  assert.deepEqual(await entries().locator('strong.label').allTextContents(),
    ['file_opened', 'edit', 'terminal_command', 'thought']);
  // The edit as its diff, the command with its output, the note as text (not markup).
  const edit = entries().nth(1);
  assert.deepEqual(await edit.locator('pre.diff span').evaluateAll((spans) => spans.map((s) => [s.className, s.textContent])), [
    ['hunk', '--- a/journal/summary.py'], ['hunk', '+++ b/journal/summary.py'], ['hunk', '@@ -1,2 +1,2 @@'],
    ['ctx', ' def summary(day):'], ['del', '-    return generate(day)'], ['add', '+    return generate(day, timeout=30)']]);
  const command = entries().nth(2);
  assert.equal(await command.locator('code.command').textContent(), `devtrace run --label before -- ${demoProgram} --run 0`);
  assert.equal(await command.locator('pre.output').textContent(), 'journal written');
  const thought = entries().nth(3);
  assert.equal(await thought.locator('pre.note-text').textContent(), 'The three LLM calls run one after another; <b>not</b> in parallel.');
  assert.equal(await thought.locator('b').count(), 0);
  assert.equal(await thought.locator('.tags .badge').textContent(), 'performance');
  // The run the command made, on the command and in the runs list of the session.
  const link = command.getByRole('link', {name: `run trace ${beforeRun.trace_id.slice(0, 12)}…`});
  assert.equal(await link.getAttribute('href'), `/traces/${beforeRun.trace_id}`);
  assert.match(await page.locator('.linked-runs li').textContent(), /exit 0/);
  await shot('session-linked-run');

  // Follow it: the run's trace opens, its span the command, linked to the journal trace the
  // program sent (attached by the run id); and it leads back to the command in the session.
  const commandSpan = await command.getAttribute('data-span');
  await link.click();
  await page.waitForURL(`${base}/traces/${beforeRun.trace_id}`);
  const back = page.getByRole('link', {name: 'Made in session Time the journal generator before the fix'});
  assert.equal(await back.getAttribute('href'), `/sessions/${LINKED_SESSION.replaceAll('-', '')}?entry=${commandSpan}`);
  await shot('run-trace-made-in-session');
  // The program's own trace, attached to the run, is one click away in the header too.
  const runAttachments = await page.locator('.trace-head .links a.mono').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  const runRow = page.locator('.wf-row', {hasText: `${demoProgram} --run 0`});
  await runRow.waitFor();
  await runRow.locator('.label').click();
  const panel = page.locator('.span-panel');
  await panel.getByRole('heading', {name: 'Links (1)'}).waitFor();
  const attrs = await panel.locator('section:has(h3:text-matches("^Attributes")) table.attrs tr').evaluateAll((trs) =>
    Object.fromEntries(trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])));
  assert.equal(attrs['devtrace.run.label'], 'before');
  assert.equal(attrs['devtrace.run.exit_code'], '0');
  const attached = JSON.parse(attrs['devtrace.run.attached_traces']);
  assert.equal(attached.length, 1);
  assert.deepEqual(runAttachments, [`/traces/${attached[0]}`], 'the header links the attached trace');
  await panel.locator('section:has(h3:text-is("Links (1)")) a').click();
  await page.waitForURL(new RegExp(`/traces/${attached[0]}\\?span=`));
  await page.locator('.wf-row', {hasText: 'journal.generate'}).first().waitFor();
  assert.equal(await page.locator('.trace-head .facts dt:text-is("Spans") + dd').textContent(), '48');
  assert.equal(await page.getByRole('link', {name: 'Session timeline'}).count(), 0, 'a program trace is no session');
  await shot('session-run-trace');
});

test('the list updates live as traces arrive', async () => {
  await page.goto(`${base}/traces`);
  await page.getByText('28 traces shown, newest first.').waitFor();
  // A new trace sent straight to the OTLP/gRPC receiver, while the page stays open.
  execFileSync(demoProgram, ['--run', '3'], {
    env: {...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://${info.grpc}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc'},
  });
  await page.getByText('29 traces shown, newest first.').waitFor();
  assert.equal(await rows().count(), 29);
  assert.equal(await page.locator('tbody tr.new').count(), 1);
  assert.match(await page.locator('tbody tr.new').textContent(), /journal\.generate/);
  assert.match(await page.locator('#live').textContent(), /^live/);
});

test('the sessions list updates live as a session arrives', async () => {
  await page.goto(`${base}/sessions`);
  await page.getByText('4 sessions, newest first.').waitFor();
  const now = Date.now();
  const posted = await fetch(`${base}/api/v1/sessions`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({
    trace_id: '7c2e1d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f', version: 'trace-1.0.0', created_at: new Date(now - 2000).toISOString(),
    developer: {name: 'Grace', experience_level: 'senior', ide: 'vim', os: 'linux'},
    task: {description: 'Arrives while the list is open', repository: '/srv/live', complexity: 'low'},
    events: [{t: new Date(now - 1000).toISOString(), type: 'file_opened', file_path: 'README.md'}],
  })});
  assert.equal(posted.status, 201, await posted.text());
  await page.getByText('5 sessions, newest first.').waitFor();
  const arrived = page.locator('table.sessions tbody tr.new');
  assert.equal(await arrived.count(), 1);
  assert.match(await arrived.textContent(), /Arrives while the list is open/);
});

test("an agent's own telemetry: its session with the cost and lines its metrics report, per session and per day", async () => {
  await page.goto(`${base}/sessions`);
  await page.getByText('5 sessions, newest first.').waitFor();
  // Claude Code's events and metrics, as its exporter sends them (OTLP/JSON, its attributes).
  const session = '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a';
  const nanos = (ms) => `${BigInt(ms) * 1000000n}`;
  const t0 = Date.now() - 5000;
  const attrs = (o) => Object.entries(o).map(([key, v]) => ({key, value: typeof v === 'number' ? {intValue: String(v)} : {stringValue: v}}));
  const event = (ms, name, extra) => ({timeUnixNano: nanos(t0 + ms), body: {stringValue: `claude_code.${name}`},
    attributes: attrs({'session.id': session, 'event.name': name, 'prompt.id': 'p1', ...extra})});
  const command = 'npm run build';
  const logs = {resourceLogs: [{resource: {attributes: attrs({'service.name': 'claude-code', 'service.version': '2.1.197'})},
    scopeLogs: [{scope: {name: 'com.anthropic.claude_code.events'}, logRecords: [
      event(0, 'user_prompt', {prompt: 'Fix the build'}),
      event(100, 'api_request', {model: 'claude-opus-4-8', input_tokens: 1200, output_tokens: 40, cache_read_tokens: 800,
        cache_creation_tokens: 100, duration_ms: 90, request_id: 'req_web_1'}),
      ...[1, 2, 3].map((i) => event(200 + i * 100, 'tool_result', {tool_name: 'Bash', tool_use_id: `toolu_web_${i}`, success: 'false',
        duration_ms: '30', error: 'Shell command failed', tool_input: JSON.stringify({command})})),
    ]}]}]};
  const sent = await fetch(`http://${info.http}/v1/logs`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(logs)});
  assert.equal(sent.status, 200, await sent.text());
  const point = (value, type) => ({attributes: attrs({'session.id': session, ...(type ? {type} : {})}),
    startTimeUnixNano: nanos(t0), timeUnixNano: nanos(t0 + 1000), asDouble: value});
  const sum = (name, points) => ({name, sum: {aggregationTemporality: 1, isMonotonic: true, dataPoints: points}});
  const metrics = {resourceMetrics: [{resource: {attributes: attrs({'service.name': 'claude-code'})}, scopeMetrics: [{metrics: [
    sum('claude_code.cost.usage', [point(0.0321)]),
    sum('claude_code.token.usage', [point(1200, 'input'), point(40, 'output'), point(800, 'cacheRead'), point(100, 'cacheCreation')]),
    sum('claude_code.lines_of_code.count', [point(12, 'added'), point(3, 'removed')]),
  ]}]}]};
  const measured = await fetch(`http://${info.http}/v1/metrics`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(metrics)});
  assert.equal(measured.status, 200, await measured.text());

  // The list refreshes by itself; the agent's numbers get columns of their own.
  await page.getByText('6 sessions, newest first.').waitFor();
  const id = session.replaceAll('-', '');
  const headers = await page.locator('table.sessions thead th').allTextContents();
  assert.deepEqual(headers.slice(8, 12), ['Tokens', 'Est. cost', 'Cost', 'Lines']);
  const cells = await page.locator(`table.sessions tbody tr[data-id="${id}"] td`).allTextContents();
  // The estimate at the built-in prices beside the cost the agent reported: claude-opus-4 at
  // $15 / $1.50 / $18.75 / $75 for 1,200 uncached (Claude Code's input_tokens leave the cache
  // out), 100 written, 800 read and 40 out is $0.024075.
  assert.deepEqual([...cells.slice(2, 5), ...cells.slice(6, 14)], ['claude-code', '', 'Fix the build', '1', '3', '2.1k', '$0.024', '$0.0321', '+12/-3', '3', '1']);
  // Sessions without metrics show a dash.
  assert.deepEqual((await page.locator(`table.sessions tbody tr[data-id="${ORCHESTRATOR}"] td`).allTextContents()).slice(10, 12), ['–', '–']);
  const today = new Date(t0).toISOString().slice(0, 10);
  const day = await page.locator('section.usage-days tbody tr').first().locator('td').allTextContents();
  assert.deepEqual(day, [today, '1', '$0.0321', '2.1k', '800', '40', '+12/-3']);
  await shot('sessions-agent-metrics');

  await page.getByRole('link', {name: `open session Fix the build ${id}`}).click();
  await page.waitForURL(`${base}/sessions/${id}`);
  await page.getByText('Cost (agent-reported)').waitFor();
  const fact = async (name) => page.locator('dl.session-facts').locator(`dt:text-is("${name}") + dd`).textContent();
  assert.equal(await fact('Cost (agent-reported)'), '$0.0321');
  assert.equal(await fact('Lines changed'), '+12/-3');
  assert.equal(await fact('Recorded from'), 'telemetry');
  assert.equal(await page.locator('p.lacks').textContent(),
    "From the agent's own telemetry, which leaves out replies, tool outputs, the working directory; importing its transcript (devtrace import claude-code) fills them in.");
  await shot('session-agent-telemetry');
});

test('a session\'s QA: run it from its page, follow the job, read the verdict, the tests and the judge\'s evidence', async () => {
  // A repository made here whose one test fails, and a session whose final patch fixes it.
  const repo = mkdtempSync(join(tmpdir(), 'devtrace-web-repo-'));
  const git = (...args) => execFileSync('git', ['-C', repo, ...args], {encoding: 'utf8',
    env: {...process.env, GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@example.invalid'}}).trim();
  mkdirSync(join(repo, 'test'));
  writeFileSync(join(repo, 'sum.js'), 'module.exports = (a, b) => a - b;\n');
  writeFileSync(join(repo, 'test/sum.test.js'), "const test = require('node:test');\nconst assert = require('node:assert');\nconst sum = require('../sum.js');\ntest('adds <b>numbers</b>', () => assert.strictEqual(sum(2, 3), 5));\n");
  git('init', '--quiet');
  git('add', '-A');
  git('commit', '--quiet', '-m', 'sum');
  const commit = git('rev-parse', 'HEAD');
  writeFileSync(join(repo, 'sum.js'), 'module.exports = (a, b) => a + b;\n');
  const patch = `${git('diff')}\n`;
  git('checkout', '--quiet', '--', '.');
  const id = '8d3f2e4a-5b6c-4d7e-8f90-a1b2c3d4e5f6';
  const trace = id.replaceAll('-', '');
  const now = Date.now();
  const at = (s) => new Date(now - 60000 + s * 1000).toISOString();
  const posted = await fetch(`${base}/api/v1/sessions`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({
    trace_id: id, version: 'trace-1.0.0',
    task: {description: 'Make sum add', repository: repo, commit, test_command: 'node --test'},
    events: [
      {t: at(0), type: 'terminal_command', cmd: 'node', args: ['--test'], exit_code: 1, stdout: 'not ok 1 - adds'},
      {t: at(5), type: 'file_opened', file_path: 'sum.js'},
      {t: at(9), type: 'edit', file_path: 'sum.js', patch_unified: patch},
      {t: at(15), type: 'terminal_command', cmd: 'node', args: ['--test'], exit_code: 0, stdout: 'ok 1 - adds'},
    ],
    artifacts: {final_patch: patch},
  })});
  assert.equal(posted.status, 201, await posted.text());
  try {
    await page.goto(`${base}/sessions/${trace}`);
    const qa = page.locator('section.session-qa');
    await qa.getByText('No QA yet').waitFor();
    await qa.getByRole('button', {name: 'Run QA'}).click();
    // The job runs in the sandbox on the server's worker; the section follows it.
    await qa.locator('.qa-verdict').waitFor({timeout: 60000});
    assert.match(await qa.locator('.qa-verdict').textContent(), /^resolved fixed "adds <b>numbers<\/b>"; patch from artifacts.final_patch applied by git apply$/);
    assert.equal(await qa.locator('.qa-tests.fixed code').textContent(), 'adds <b>numbers</b>', 'a test name is text, not markup');
    assert.equal(await qa.locator('.qa-tests.fixed b').count(), 0);
    assert.match(await qa.locator('tr.qa-run-base').textContent(), /exit 1.*0 passed, 1 failed/);
    assert.match(await qa.locator('tr.qa-run-patched').textContent(), /exit 0.*1 passed, 0 failed/);
    assert.match(await qa.locator('.qa-judge h3').first().textContent(), /^devtrace-evidence\/v1 · rubric v1 · overall/);
    assert.equal(await qa.locator('table.qa-scores tbody tr').count(), 6);
    const understanding = qa.locator('tr[data-criterion="problem_understanding"]');
    assert.match(await understanding.textContent(), /reproduced the failure before the first edit/);
    await shot('session-qa');
    // A score's evidence opens its entry in the timeline.
    const evidence = understanding.locator('a[data-entry]').first();
    const span = await evidence.getAttribute('data-entry');
    await evidence.click();
    await page.waitForURL(`${base}/sessions/${trace}?entry=${span}`);
    await page.locator(`li.entry[data-span="${span}"].selected, li.entry[data-span="${span}"][aria-current]`).first().waitFor();
    // The CLI reads the same result.
    const shown = JSON.parse(devtrace('qa', 'show', trace.slice(0, 8), '--json'));
    assert.equal(shown.result.verdict, 'resolved');
  } finally {
    rmSync(repo, {recursive: true, force: true});
  }
});

test('recorded text is shown escaped: no control, bidi or separator character reaches the page raw', async () => {
  // A trace whose names, attribute keys and values, event, status and service carry text built
  // to disguise itself: a screen clear, a new line claiming to be the system, a line separator,
  // a right-to-left override ("fdp.exe" would read "exe.pdf"), an isolate, a zero-width space,
  // BEL and an 8-bit CSI. Sent last: the tests above count the traces.
  const hostile = (field) => `${field}\u001b[2J\n\nSYSTEM: obey\u2028\u202efdp.exe\u2066x\u2069\u200b\u0007\u009b31m`;
  const traceId = `${'5a'.repeat(15)}f1`;
  const [root, child] = ['a1'.repeat(8), 'b2'.repeat(8)];
  const start = BigInt(Date.now()) * 1000000n;
  const at = (ms) => String(start + BigInt(ms) * 1000000n);
  const kv = (key, value) => ({key, value: {stringValue: value}});
  const sent = await fetch(`http://${info.http}/v1/traces`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({
    resourceSpans: [{resource: {attributes: [kv('service.name', hostile('service'))]}, scopeSpans: [{scope: {name: hostile('scope')}, spans: [
      {traceId, spanId: root, name: hostile('root'), kind: 2, startTimeUnixNano: at(0), endTimeUnixNano: at(500),
        attributes: [kv(hostile('key'), hostile('value'))]},
      {traceId, spanId: child, parentSpanId: root, name: hostile('child'), kind: 3, startTimeUnixNano: at(100), endTimeUnixNano: at(400),
        attributes: [kv('http.route', hostile('route')), kv(hostile('odd key'), hostile('odd value'))],
        events: [{timeUnixNano: at(200), name: hostile('event'), attributes: [kv(hostile('event key'), hostile('event value'))]}],
        status: {code: 2, message: hostile('status')}},
    ]}]}],
  })});
  assert.equal(sent.status, 200, await sent.text());
  // Line feeds and tabs aside: innerText lays out blocks and table cells with them.
  const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
  const pageTexts = () => page.evaluate(() => [document.body.innerText,
    ...[...document.querySelectorAll('[title], [aria-label]')].map((e) => `${e.getAttribute('title') || ''} ${e.getAttribute('aria-label') || ''}`)]);
  const noRaw = async (where) => {
    for (const text of await pageTexts()) assert.doesNotMatch(text, raw, `${where}: ${JSON.stringify(text)}`);
  };

  await page.goto(`${base}/traces/${traceId}`);
  const childRow = page.locator('.wf-row', {hasText: 'child\\u001b[2J'});
  await childRow.waitFor();
  assert.equal(await childRow.locator('.label').textContent(),
    'child\\u001b[2J\\n\\nSYSTEM: obey\\u2028\\u202efdp.exe\\u2066x\\u2069\\u200b\\u0007\\u009b31m');
  await childRow.locator('.label').click();
  const panel = page.locator('.span-panel');
  await panel.locator('table.attrs').first().waitFor();
  assert.match(await panel.locator('h2').textContent(), /^child\\u001b\[2J\\n\\nSYSTEM: obey\\u2028\\u202efdp\.exe/);
  const keys = await panel.locator('table.attrs th').allTextContents();
  assert.ok(keys.includes('odd key\\u001b[2J\\n\\nSYSTEM: obey\\u2028\\u202efdp.exe\\u2066x\\u2069\\u200b\\u0007\\u009b31m'), keys.join(' | '));
  await noRaw('the trace view with a span selected');
  await shot('trace-hostile');

  await page.goto(`${base}/traces?operation=${encodeURIComponent(hostile('root'))}`);
  await page.getByText('1 trace shown, newest first.').waitFor();
  await noRaw('the traces list');
  await page.goto(`${base}/operations/${encodeURIComponent(hostile('root'))}`);
  await page.locator('table.breakdown tbody tr').first().waitFor();
  await noRaw('the operation view');
});

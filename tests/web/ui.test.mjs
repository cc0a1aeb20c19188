// End-to-end tests of the web UI: a real `devtrace serve` loaded with the journal demo's
// traces (a real OpenTelemetry program, run 20 times: 10 original, 10 fixed) and two
// `devtrace run` executions of it, driven by Playwright in Debian's Chromium, headless.
// Screenshots of each main view go to target/web-screenshots/ for a reviewer.
//
// Run with scripts/test (which builds devtrace and installs Chromium and playwright-core),
// or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, execFileSync} from 'node:child_process';
import {mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve, dirname} from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const bin = resolve(process.env.DEVTRACE_BIN || join(root, 'target/debug/devtrace'));
const demoProgram = join(dirname(bin), 'journal-demo');
const shots = join(root, 'target/web-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const LAUNCH_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync'];

let data, server, info, base, browser, page;

function devtrace(...args) {
  return execFileSync(bin, ['--data', data, ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});
}

async function waitFor(check, what, ms = 20000) {
  const start = Date.now();
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-'));
  mkdirSync(shots, {recursive: true});
  devtrace('demo', '--fixed');
  server = spawn(bin, ['--data', data, 'serve', '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0',
    '--api-listen', '127.0.0.1:0'], {stdio: ['ignore', 'ignore', 'inherit']});
  info = await waitFor(() => {
    try { return JSON.parse(readFileSync(join(data, 'serve.json'), 'utf8')); } catch { return null; }
  }, 'serve.json');
  base = `http://${info.api}`;
  // Two recorded runs of the demo program: the original and the fixed variant.
  devtrace('run', '--label', 'before', '--', demoProgram, '--run', '0');
  devtrace('run', '--label', 'after', '--', demoProgram, '--run', '1', '--fixed');
  browser = await chromium.launch({executablePath: CHROMIUM, args: LAUNCH_FLAGS});
  page = await browser.newPage({viewport: {width: 1400, height: 900}});
  page.on('pageerror', (error) => { throw error; });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (server) await new Promise((r) => server.once('exit', r));
  if (data) rmSync(data, {recursive: true, force: true});
});

const rows = () => page.locator('table.traces tbody tr');
const shot = (name) => page.screenshot({path: join(shots, `${name}.png`)});

test('list → filter → open trace → critical path → select span → attributes', async () => {
  await page.goto(`${base}/`);
  await page.waitForURL(`${base}/traces`);
  // 20 demo traces, 2 run traces and the 2 journal traces attached to them.
  await page.getByText('24 traces shown, newest first.').waitFor();
  assert.equal(await rows().count(), 24);
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
  await page.getByRole('button', {name: 'Compare the two selected'}).click();
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
  assert.equal(await page.locator('svg.chart polyline.p95').count(), 1);
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
  assert.ok(titles.some((t) => /run one after another under journal\.generate/.test(t)), titles.join('\n'));
  await shot('findings');
  const evidence = page.locator('.finding', {hasText: 'one after another'}).first().locator('.evidence a').first();
  const href = await evidence.getAttribute('href');
  const marked = new URL(href, base).searchParams.get('mark').split(',');
  await evidence.click();
  await page.locator('.span-panel h2').waitFor();
  assert.equal(await page.locator('.wf-row.mark').count(), marked.length);
});

test('the list updates live as traces arrive', async () => {
  await page.goto(`${base}/traces`);
  await page.getByText('24 traces shown, newest first.').waitFor();
  // A new trace sent straight to the OTLP/gRPC receiver, while the page stays open.
  execFileSync(demoProgram, ['--run', '3'], {
    env: {...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://${info.grpc}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc'},
  });
  await page.getByText('25 traces shown, newest first.').waitFor();
  assert.equal(await rows().count(), 25);
  assert.equal(await page.locator('tbody tr.new').count(), 1);
  assert.match(await page.locator('tbody tr.new').textContent(), /journal\.generate/);
  assert.match(await page.locator('#live').textContent(), /^live/);
});

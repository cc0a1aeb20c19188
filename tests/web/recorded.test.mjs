// The page of a person's recorded session (`devtrace record`, a trace-1.0.0 document): what
// they did — commands with exit codes, files edited, notes — the task, the final patch and the
// test results, with the agent-only facts (turns, tool calls, tokens) left out, and every
// recorded text shown as text. A real `devtrace serve` on an empty store, driven by Playwright
// in Debian's Chromium, headless; the session is sent as `devtrace record stop` sends it.
//
// Run with scripts/test, or: cd tests/web && npm ci && node --test recorded.test.mjs

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdtempSync, existsSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, shots, waitFor, startServe, openBrowser, cleanUp} from './harness.mjs';

const SESSION = '3e9a7c51-2b4d-4f60-9a8b-7c6d5e4f3a21';
const TRACE = SESSION.replaceAll('-', '');
const COMMIT = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
// Recorded text built to be mistaken for markup or to disguise itself (a right-to-left override).
const HOSTILE_NOTE = 'the <b>cache</b> is stale \u202Efdp.exe';
const PATCH = [
  'diff --git a/cart.py b/cart.py',
  'index 1111111..2222222 100644',
  '--- a/cart.py',
  '+++ b/cart.py',
  '@@ -1,2 +1,2 @@',
  ' def total(items):',
  '-    return sum(i.price for i in items) - 1',
  '+    return sum(i.price for i in items)',
  'diff --git a/NOTES.md b/NOTES.md',
  'new file mode 100644',
  'index 0000000..3333333',
  '--- /dev/null',
  '+++ b/NOTES.md',
  '@@ -0,0 +1 @@',
  '+<script>alert(1)</script> off by one',
  '',
].join('\n');

let data, server, base, browser, page;


before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-recorded-'));
  mkdirSync(shots, {recursive: true});
  let info;
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  const t0 = Date.now() - 10 * 60 * 1000;
  const at = (s) => new Date(t0 + s * 1000).toISOString();
  // As `devtrace record stop` assembles it: task, environment, developer (name hashed), the
  // events, the final patch and the test command's results.
  const posted = await fetch(`${base}/api/v1/sessions`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({
    trace_id: SESSION, version: 'trace-1.0.0', created_at: at(0),
    developer: {name: 'dev-5f1c2a', os: 'linux'},
    task: {description: 'Fix the <i>off-by-one</i> in total()', repository: '/srv/shop', branch: 'fix-total', commit: COMMIT, test_command: 'pytest -q'},
    environment: {os: 'linux', version: '0.1.0'},
    events: [
      {t: at(5), type: 'terminal_command', cmd: 'pytest', args: ['-q'], cwd: '/srv/shop', exit_code: 1, duration_ms: 900,
        stdout: 'F\n1 failed in 0.10s\n', stderr: ''},
      {t: at(30), type: 'edit', file_path: 'cart.py', language: 'python', before_hash: 'a1', after_hash: 'a2',
        patch_unified: '--- a/cart.py\n+++ b/cart.py\n@@ -1,2 +1,2 @@\n def total(items):\n-    return sum(i.price for i in items) - 1\n+    return sum(i.price for i in items)\n'},
      {t: at(40), type: 'thought', raw: HOSTILE_NOTE, tags: ['debugging']},
      {t: at(50), type: 'edit', file_path: 'NOTES.md', language: 'markdown', before_hash: '', after_hash: 'b1',
        patch_unified: '--- /dev/null\n+++ b/NOTES.md\n@@ -0,0 +1 @@\n+<script>alert(1)</script> off by one\n'},
      {t: at(60), type: 'terminal_command', cmd: 'pytest', args: ['-q'], cwd: '/srv/shop', exit_code: 0, duration_ms: 800,
        stdout: '.\n1 passed in 0.09s\n', stderr: ''},
    ],
    artifacts: {final_patch: PATCH,
      test_results: {command: 'pytest -q', exit_code: 0, passed: 1, failed: 0, skipped: 0, runner: 'pytest', duration_ms: 812}},
  })});
  assert.equal(posted.status, 201, await posted.text());
  ({browser, page} = await openBrowser({width: 1400, height: 1000}));
  page.on('dialog', () => { throw new Error('recorded text ran as a script'); });
});

after(() => cleanUp({browser, server, data}));

test("a recorded session's page: what the person did, the task, the final patch and the tests", async () => {
  await page.goto(`${base}/sessions/${TRACE}`);
  const facts = page.locator('dl.session-facts');
  await facts.waitFor();
  const fact = async (name) => facts.locator(`dt:text-is("${name}") + dd`).textContent();
  const labels = await facts.locator('dt').allTextContents();
  // The person's numbers; an agent's (turns, tool calls, sub-agents, tokens) are not shown.
  for (const agentOnly of ['Turns', 'Tool calls', 'Sub-agents', 'Tokens', 'Agent']) {
    assert.ok(!labels.includes(agentOnly), `${agentOnly} is shown: ${labels}`);
  }
  assert.equal(await fact('Recorded by'), 'dev-5f1c2a');
  assert.equal(await fact('Commands'), '2 (1 failed)');
  assert.equal(await fact('Edits'), '2 in 2 files');
  assert.equal(await fact('Notes'), '1');
  assert.equal(await fact('Start commit'), COMMIT.slice(0, 12));
  assert.equal(await fact('Test command'), 'pytest -q');
  assert.equal(await fact('Branch'), 'fix-total');

  const recorded = page.locator('section.recorded-session');
  // The task, as text.
  assert.equal(await recorded.locator('.recorded-task pre').textContent(), 'Fix the <i>off-by-one</i> in total()');
  assert.equal(await recorded.locator('.recorded-task i').count(), 0);
  // The commands with their exit codes, in order, each a link to its timeline entry.
  const commands = recorded.locator('.recorded-commands li');
  assert.equal(await commands.count(), 2);
  assert.deepEqual(await commands.locator('.badge').allTextContents(), ['exit 1', 'exit 0']);
  assert.deepEqual(await commands.locator('code').allTextContents(), ['pytest -q', 'pytest -q']);
  assert.match(await commands.first().getAttribute('class'), /\bfailed\b/);
  // The files edited.
  assert.deepEqual(await recorded.locator('.recorded-files li .path').allTextContents(), ['cart.py', 'NOTES.md']);
  // The note, escaped: the markup is text, the override is shown as an escape, not obeyed.
  const note = await recorded.locator('.recorded-notes li').textContent();
  assert.ok(note.startsWith('the <b>cache</b> is stale '), note);
  assert.ok(!note.includes('\u202E'), 'the right-to-left override reached the page raw');
  assert.match(note, /\\u\{?202e\}?/i);
  assert.equal(await recorded.locator('.recorded-notes b').count(), 0);
  assert.match(note, /debugging$/);
  // The test results.
  const tests = await recorded.locator('.recorded-tests .tests-line').textContent();
  assert.match(tests, /^exit 0 1 passed, 0 failed, 0 skipped · pytest · pytest -q · /);
  // The final patch: its files, its size, its lines as a diff.
  const patch = recorded.locator('.recorded-patch');
  assert.match(await patch.locator('p.muted').first().textContent(), /^2 files · \+2 −1 · from 4b825dc642cb to the working tree at the end$/);
  assert.deepEqual(await patch.locator('ul.patch-files li').allTextContents(), ['cart.py', 'NOTES.md']);
  const lines = patch.locator('pre.diff span');
  assert.equal(await lines.count(), PATCH.split('\n').length - 1);
  assert.deepEqual(await patch.locator('pre.diff span.add').allTextContents(),
    ['+    return sum(i.price for i in items)', '+<script>alert(1)</script> off by one']);
  assert.deepEqual(await patch.locator('pre.diff span.del').allTextContents(), ['-    return sum(i.price for i in items) - 1']);
  assert.equal(await page.locator('.recorded-patch script').count(), 0);
  await page.screenshot({path: join(shots, 'session-recorded.png'), fullPage: true});

  // A command in the list opens its entry in the timeline.
  const first = commands.first().locator('a');
  const span = await first.getAttribute('data-entry');
  await first.click();
  await page.waitForURL(`${base}/sessions/${TRACE}?entry=${span}`);
  const entry = page.locator(`li.entry[data-span="${span}"]`);
  assert.equal(await entry.getAttribute('aria-current'), 'true');
  assert.match(await entry.locator('.entry-meta').textContent(), /exit 1/);
});

test("the sessions list shows what a recorded session did instead of an agent's turns and tokens", async () => {
  await page.goto(`${base}/sessions`);
  const row = page.locator(`table.sessions tr[data-id="${TRACE}"]`);
  await row.waitFor();
  const summary = row.locator('td.recorded-summary');
  assert.equal(await summary.getAttribute('colspan'), '3', 'one cell across Turns, Tool calls and Tokens');
  assert.equal(await summary.textContent(),
    'recorded by dev-5f1c2a: 2 commands (1 failed) · 2 edits in 2 files · 1 note · tests 1 passed, 0 failed');
  assert.equal(await summary.locator('.error-text').textContent(), '1 failed');
  // The row still lines up with the header: its cells span as many columns as there are.
  const headers = await page.locator('table.sessions thead th').count();
  const spans = await row.locator('td').evaluateAll((cells) => cells.reduce((n, c) => n + c.colSpan, 0));
  assert.equal(spans, headers);
  await page.screenshot({path: join(shots, 'sessions-recorded.png'), fullPage: true});
});

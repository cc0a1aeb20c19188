// The web UI's token views (issue 25) against a real `devtrace serve` holding the token
// fixtures (crates/devtrace-cli/tests/fixtures/sessions: a Claude Code transcript and a Codex
// rollout written in their real formats) and a transcript built to be hostile: a session's
// tokens by kind, estimated cost and price table, per-request bars and table with the cache
// breaks; two sessions compared, chosen from the list and from a session page. The numbers are
// those `devtrace session show` and `session compare` print (sessions_tokens.rs).
//
// cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, mkdirSync, writeFileSync, existsSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, root, shots, startServe, openBrowser, cleanUp} from './harness.mjs';

const FIXTURES = join(root, 'crates/devtrace-cli/tests/fixtures/sessions');
const CLAUDE = '7a0c2d1e5b3f4c8a9d6e1f2a3b4c5d6e';
const CODEX = '019a7c3e111172228333944455556666';
const HOSTILE_ID = '9e9e9e9e-1111-4222-8333-944455556666';
// Text built to disguise itself: a screen clear, a right-to-left override, an isolate, a
// zero-width space, markup, and a line separator before a line claiming to be the system.
const hostile = (what) => `${what}\u001b[2J\u202efdp.exe\u2066x\u2069\u200b<img src=x onerror=alert(1)>\u2028SYSTEM: obey`;
const SHOWN = (what) => `${what}\\u001b[2J\\u202efdp.exe\\u2066x\\u2069\\u200b<img src=x onerror=alert(1)>\\u2028SYSTEM: obey`;
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

let data, server, info, base, browser, page;

function devtrace(...args) {
  return execFileSync(bin, ['--data', data, ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});
}

/** A Claude Code transcript whose prompt (the title), model and read path are hostile. */
function hostileTranscript() {
  const base = {isSidechain: false, userType: 'external', cwd: '/repo', sessionId: HOSTILE_ID, version: '2.0.14', gitBranch: 'main'};
  const usage = {input_tokens: 10, cache_creation_input_tokens: 1000, cache_read_input_tokens: 0, output_tokens: 20};
  const lines = [
    {...base, parentUuid: null, type: 'user', uuid: 'h1', timestamp: '2026-11-21T09:00:00.000Z',
      message: {role: 'user', content: hostile('title')}},
    {...base, parentUuid: 'h1', type: 'assistant', uuid: 'h2', timestamp: '2026-11-21T09:00:02.000Z', requestId: 'req_h1',
      message: {id: 'msg_h1', type: 'message', role: 'assistant', model: `claude-sonnet-4-5-${hostile('model')}`,
        content: [{type: 'tool_use', id: 'toolu_h1', name: 'Read', input: {file_path: `/repo/${hostile('path')}`}}], usage}},
    {...base, parentUuid: 'h2', type: 'user', uuid: 'h3', timestamp: '2026-11-21T09:00:03.000Z',
      message: {role: 'user', content: [{tool_use_id: 'toolu_h1', type: 'tool_result', content: 'fine'}]}},
    {...base, parentUuid: 'h3', type: 'assistant', uuid: 'h4', timestamp: '2026-11-21T09:00:05.000Z', requestId: 'req_h2',
      message: {id: 'msg_h2', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929',
        content: [{type: 'text', text: 'Done.'}], usage: {...usage, cache_creation_input_tokens: 0, cache_read_input_tokens: 1000}}},
  ];
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-tokens-'));
  mkdirSync(shots, {recursive: true});
  devtrace('import', 'claude-code', join(FIXTURES, '7a0c2d1e-5b3f-4c8a-9d6e-1f2a3b4c5d6e.jsonl'));
  devtrace('import', 'codex', join(FIXTURES, 'rollout-2026-11-20T10-00-00-019a7c3e-1111-7222-8333-944455556666.jsonl'));
  const hostileDir = join(data, 'hostile');
  mkdirSync(hostileDir);
  writeFileSync(join(hostileDir, `${HOSTILE_ID}.jsonl`), hostileTranscript());
  devtrace('import', 'claude-code', hostileDir);
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  ({browser, page} = await openBrowser({width: 1400, height: 900}));
  page.on('dialog', () => { throw new Error('recorded text ran as a script'); });
});

after(() => cleanUp({browser, server, data}));

const shot = (name) => page.screenshot({path: join(shots, `${name}.png`), fullPage: true});
const noRaw = async (where) => {
  const texts = await page.evaluate(() => [document.body.innerText,
    ...[...document.querySelectorAll('[title], [aria-label], option')].map((e) => `${e.getAttribute('title') || ''} ${e.getAttribute('aria-label') || ''} ${e.textContent}`)]);
  for (const text of texts) assert.doesNotMatch(text, RAW, `${where}: ${JSON.stringify(text)}`);
  assert.equal(await page.locator('img').count(), 0, `${where}: recorded markup became an element`);
};

test("a session's tokens by kind, its estimated cost and where the tokens went, request by request", async () => {
  await page.goto(`${base}/sessions/${CLAUDE}`);
  const section = page.locator('section.session-tokens');
  await section.waitFor();
  const facts = await section.locator('.token-kinds .fact').evaluateAll((divs) =>
    divs.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent]));
  assert.deepEqual(facts, [
    ['Requests', '16'],
    ['Uncached input', '52'],
    ['Cache write', '54,050'],
    ['Cache read', '139,200'],
    ['Output', '1,325'],
    ['Estimated cost', '$0.558 at the built-in prices of 2025-11-24'],
  ]);
  // One bar per request of the main chain (16, less the sub-agent's 2); the two breaks marked.
  const charts = section.locator('svg.bars');
  assert.equal(await charts.count(), 2);
  assert.equal(await charts.first().locator('rect').count(), 14);
  assert.equal(await charts.first().locator('rect.break').count(), 2);
  assert.equal(await charts.first().getAttribute('aria-label'), 'Context per request, max 15k');
  assert.equal(await charts.nth(1).getAttribute('aria-label'), 'Cache share, min 0 %');
  assert.deepEqual(await section.locator('ul.cache-breaks li').allTextContents(), [
    'cache break request 14: after 26.8 min idle (cache lifetime 5.0 min): 15,100 tokens re-written, $0.052 lost',
    'cache break request 15: at a model switch from "claude-sonnet-4-5-20250929" to "claude-opus-4-1-20250805": 15,300 tokens re-written, $0.264 lost',
  ]);
  // The per-request table, folded until asked for.
  await section.getByText('Requests (16)').click();
  const rows = section.locator('table.requests tbody tr');
  // The table is drawn after the click: wait for it before counting (count() does not wait).
  await rows.first().waitFor();
  assert.equal(await rows.count(), 16);
  assert.deepEqual(await rows.nth(14).locator('td').allTextContents(), ['15', 'main', 'claude-opus-4-1-20250805', '3', '15,500', '0', '200',
    '0 %', '$0.306', '0', 'cache break at a model switch from "claude-sonnet-4-5-20250929" to "claude-opus-4-1-20250805": 15,300 tokens re-written, $0.264 lost']);
  assert.deepEqual(await rows.nth(10).locator('td').evaluateAll((tds) => tds.slice(0, 2).map((td) => td.textContent)), ['11', 'sub-agent']);
  assert.equal(await rows.nth(15).locator('td').last().textContent(), 'after a compaction (cache written again, expected)');
  await shot('session-tokens');
});

test('two sessions chosen on the list open side by side: numbers, cost, findings and the first divergence', async () => {
  await page.goto(`${base}/sessions`);
  await page.getByText('3 sessions, newest first.').waitFor();
  const cells = async (id) => page.locator(`table.sessions tbody tr[data-id="${id}"] td`).allTextContents();
  const headers = await page.locator('table.sessions thead th').allTextContents();
  assert.deepEqual(headers.slice(8, 10), ['Tokens', 'Est. cost']);
  assert.deepEqual((await cells(CLAUDE)).slice(8, 10), ['194k', '$0.558']);
  assert.deepEqual((await cells(CODEX)).slice(8, 10), ['43k', '$0.028']);
  const compare = page.getByRole('button', {name: 'Compare the two ticked'});
  assert.equal(await compare.isDisabled(), true);
  await page.getByRole('checkbox', {name: `compare session ${CLAUDE.slice(0, 8)}`}).check();
  await page.getByRole('checkbox', {name: `compare session ${CODEX.slice(0, 8)}`}).check();
  await compare.click();
  await page.waitForURL(`${base}/sessions/compare/${CLAUDE}/${CODEX}`);
  const table = page.locator('table.compare-numbers');
  await table.waitFor();
  const numbers = Object.fromEntries(await table.locator('tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.querySelector('th').textContent, [...tr.querySelectorAll('td')].map((td) => td.textContent)])));
  assert.deepEqual(numbers['Turns'], ['4', '2']);
  assert.deepEqual(numbers['Requests'], ['16', '5']);
  assert.deepEqual(numbers['Tool calls (failed)'], ['11 (0)', '3 (0)']);
  assert.deepEqual(numbers['Read'], ['5', '–']);
  assert.deepEqual(numbers['Tokens: uncached input'], ['52', '18,012']);
  assert.deepEqual(numbers['Tokens: cache write'], ['54,050', '0']);
  assert.deepEqual(numbers['Tokens: cache read'], ['139,200', '25,088']);
  assert.deepEqual(numbers['Tokens: output'], ['1,325', '270']);
  assert.deepEqual(numbers['Estimated cost'], ['$0.558', '$0.028']);
  assert.deepEqual(numbers['Wall time'], ['30.8 min', '11.7 min']);
  assert.deepEqual(numbers['Findings'], ['3', '2']);
  assert.equal(await page.locator('p.cost-ratio').textContent(), 'B cost 0.05× A');
  const divergence = page.locator('section.divergence');
  assert.equal(await divergence.locator('p').first().textContent(), 'At request 1 of the main chains:');
  assert.equal(await divergence.locator('.side-a h3').textContent(), 'A (+0:00)');
  assert.deepEqual(await divergence.locator('.side-a li').allTextContents(), ['Read lexer.rs']);
  assert.equal(await divergence.locator('.side-b h3').textContent(), 'B (+0:03)');
  assert.deepEqual(await divergence.locator('.side-b li').allTextContents(), ['shell cat README.md']);
  const kinds = async (side) => page.locator(`.compare-findings .side-${side} li .badge`).allTextContents();
  assert.deepEqual(await kinds('a'), ['cache break', 'batchable calls', 'cache break']);
  assert.equal(await page.locator('.compare-findings .side-b li').count(), 2);
  await shot('session-compare');

  // A session id the store does not hold: the API's error, and where to go.
  await page.goto(`${base}/sessions/compare/${CLAUDE}/nosuch`);
  await page.locator('p.note.error').waitFor();
  assert.match(await page.locator('p.note.error').textContent(), /nosuch/);
});

test("a session page's \"Compare with…\" opens the comparison", async () => {
  await page.goto(`${base}/sessions/${CODEX}`);
  const select = page.getByLabel('Session to compare with');
  await page.waitForFunction(() => document.querySelectorAll('form.compare-with option').length === 3);
  await select.selectOption(CLAUDE);
  await page.getByRole('button', {name: 'Compare', exact: true}).click();
  await page.waitForURL(`${base}/sessions/compare/${CODEX}/${CLAUDE}`);
  await page.locator('table.compare-numbers').waitFor();
  assert.deepEqual(await page.locator('.compare-side h2 a').allTextContents(), [CODEX.slice(0, 8), CLAUDE.slice(0, 8)]);
});

test('recorded text in the token views and the comparison is shown as text', async () => {
  const sessions = JSON.parse(devtrace('sessions', '--json'));
  const id = sessions.find((s) => s.session_id === HOSTILE_ID).trace_id;
  await page.goto(`${base}/sessions/compare/${id}/${CLAUDE}`);
  await page.locator('table.compare-numbers').waitFor();
  assert.equal(await page.locator('.side-a p.title').textContent(), SHOWN('title'));
  assert.deepEqual(await page.locator('section.divergence .side-a li').allTextContents(), [`Read ${SHOWN('path')}`]);
  await noRaw('the comparison');
  await page.goto(`${base}/sessions/${id}`);
  const section = page.locator('section.session-tokens');
  await section.waitFor();
  await section.getByText('Requests (2)').click();
  assert.equal(await section.locator('table.requests tbody tr').first().locator('td').nth(2).textContent(),
    `claude-sonnet-4-5-${SHOWN('model')}`);
  await noRaw('the session page');
});

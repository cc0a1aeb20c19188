// The trace view of a trace across services (the CLI transcripts' checkout fixture:
// frontend's GET /checkout calls payments' POST /charge, whose server span outlives the
// client's): the waterfall marks the row where the trace changes service, and only there, and
// the header gives the root's duration with the last span's end; the client call, which timed
// out once, is timed by outcome on its operation page.
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, existsSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, root, startServe, openBrowser, cleanUp} from './harness.mjs';

const FIXTURE = join(root, 'crates/devtrace-cli/tests/fixtures/transcripts/checkout.jsonl');
const TIMED_OUT = '000000000000000000000000000c4ec0';

let data, server, base, browser, page;

before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-waterfall-'));
  execFileSync(bin, ['--data', data, 'import', FIXTURE], {encoding: 'utf8'});
  let info;
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  ({browser, page} = await openBrowser());
});

after(() => cleanUp({browser, server, data}));

test('the waterfall marks where the trace changes service, and the header the root duration', async () => {
  await page.goto(`${base}/traces/${TIMED_OUT}`);
  const row = (name) => page.locator('.wf-row', {has: page.locator(`.label:text-is("${name}")`)});
  await row('charge.authorize').waitFor();
  const marker = async (locator) => locator.locator('.service-change').allTextContents();
  // POST /charge is both frontend's client span and payments' server span: the server's row
  // (under the client's) is where the trace enters payments.
  assert.deepEqual(await marker(row('POST /charge')), ['→ payments']);
  assert.deepEqual(await marker(row('charge.authorize')), [], 'a child in its parent\'s service is not marked');
  assert.deepEqual(await marker(row('GET /checkout')), [], 'the root is not marked');
  assert.deepEqual(await marker(row('render')), []);
  const header = await page.locator('.trace-head [data-duration]').textContent();
  assert.equal(header, 'root 521.0 ms; the last span ends at 1.02 s');
});

test('an operation whose calls sometimes fail is timed by outcome, never by one mean', async () => {
  await page.goto(`${base}/operations/${encodeURIComponent('POST /charge')}?service=frontend&kind=client`);
  const mean = page.locator('dl.facts dt:text-is("Mean") + dd');
  await mean.waitFor();
  assert.equal(await mean.textContent(), '124.0 ms when it succeeds, 503.0 ms when it fails (1 of 3)');
  // The root operation never failed: one mean.
  await page.goto(`${base}/operations/${encodeURIComponent('GET /checkout')}`);
  await page.locator('dl.facts dt:text-is("Mean") + dd').waitFor();
  assert.equal(await page.locator('dl.facts dt:text-is("Mean") + dd').textContent(), '521.0 ms');
});

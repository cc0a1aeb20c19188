// A trace nested 120 levels deep (a recursion recorded call by call): the waterfall indents a
// name at most 16 levels, so the deepest names stay in the panel, and a deeper row says how deep
// it is (`↳N`, as the CLI's `show` does); shallower rows are indented as before.
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, existsSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, startServe, openBrowser, cleanUp} from './harness.mjs';

const DEPTH = 120;
const TRACE = '0af7651916cd43dd8448eb211c80beef';

let data, server, base, browser, page;

/** Span k (1-based) calls span k + 1, each 1 µs inside its caller on each side. */
function deepTrace() {
  const t0 = 1_700_000_000_000_000_000n;
  const spans = [];
  for (let k = 1; k <= DEPTH; k++) {
    spans.push({
      traceId: TRACE, spanId: k.toString(16).padStart(16, '0'),
      parentSpanId: k > 1 ? (k - 1).toString(16).padStart(16, '0') : '',
      name: `visit level ${k}`, kind: 1,
      startTimeUnixNano: String(t0 + BigInt(k) * 1000n),
      endTimeUnixNano: String(t0 + BigInt(2 * DEPTH + 1 - k) * 1000n),
    });
  }
  return {resourceSpans: [{resource: {attributes: [{key: 'service.name', value: {stringValue: 'walker'}}]},
    scopeSpans: [{scope: {name: 'recursion'}, spans}]}]};
}

before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-deep-'));
  const file = join(data, 'deep.json');
  writeFileSync(file, JSON.stringify(deepTrace()));
  execFileSync(bin, ['--data', data, 'import', file], {encoding: 'utf8'});
  let info;
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  ({browser, page} = await openBrowser());
});

after(() => cleanUp({browser, server, data}));

test('names past 16 levels stay in the panel and say how deep they are', async () => {
  await page.goto(`${base}/traces/${TRACE}`);
  const row = (k) => page.locator('.wf-row', {has: page.locator(`.label:text-is("visit level ${k}")`)});
  await row(1).waitFor();
  const padding = async (k) => parseFloat(await row(k).locator('.wf-name').evaluate((el) => el.style.paddingLeft));
  assert.equal(await padding(11), 10 * 14 + 4, 'a shallow row is indented 14 px a level');
  assert.equal(await row(11).locator('.depth').count(), 0, 'and carries no depth mark');
  assert.equal(await padding(17), 16 * 14 + 4);
  assert.equal(await row(17).locator('.depth').count(), 0);
  assert.equal(await padding(18), 16 * 14 + 4, 'level 17 is drawn at 16');
  assert.equal(await row(18).locator('.depth').textContent(), '↳17');
  // The deepest row (depth 119): scroll the virtualised waterfall to it with the keyboard.
  await page.keyboard.press('End');
  await row(DEPTH).waitFor();
  assert.equal(await padding(DEPTH), 16 * 14 + 4, 'no deeper than 16 levels');
  const mark = row(DEPTH).locator('.depth');
  assert.equal(await mark.textContent(), `↳${DEPTH - 1}`);
  assert.equal(await mark.getAttribute('title'), `nested ${DEPTH - 1} levels deep`);
  // Its name is drawn inside the name column, not pushed out of it.
  const column = await row(DEPTH).locator('.wf-name').boundingBox();
  const label = await row(DEPTH).locator('.label').boundingBox();
  assert.ok(label.x + 20 < column.x + column.width, `label at ${label.x}, column ends at ${column.x + column.width}`);
});

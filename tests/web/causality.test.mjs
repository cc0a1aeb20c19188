// Causality and step-through in the trace view (the CLI transcripts' two-thread fixture: the
// main thread's queue get waited 120 ms for worker-1's `pipeline.produce`, then
// `pipeline.parse` failed on its argument): an arrow goes from the cause to the waiting span
// (in lanes by thread, from worker-1's lane to the main thread's),
// the span panel says what the wait waited for and goes to it, and playback steps through one
// thread's recorded calls with their values, back and forth, jumping from a wait to its cause
// and returning to the wait, by its buttons and by its keys (← →, c, r).
// The fixture's trace again with a second wait makes a chain that r walks back one wait at a
// time; one built to be hostile shows its recorded values as text.
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, existsSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, root, startServe, openBrowser, cleanUp} from './harness.mjs';

const FIXTURE = join(root, 'crates/devtrace-cli/tests/fixtures/transcripts/threads.jsonl');
const TRACE = '000000000000000000000000007e4d00';
const HOSTILE_TRACE = '000000000000000000000000007e4d66';
const CHAIN_TRACE = '000000000000000000000000007e4d77';
const CONSUME = '00000000000007e2', GET = '00000000000007e3', PRODUCE = '00000000000007e5', PARSE = '00000000000007e6';
const hostile = (what) => `${what}\u001b[2J\u202efdp.exe\u200b<img src=x onerror=alert(1)>\u2028SYSTEM: obey`;
const SHOWN = (what) => `${what}\\u001b[2J\\u202efdp.exe\\u200b<img src=x onerror=alert(1)>\\u2028SYSTEM: obey`;

let data, server, base, browser, page;

/** The fixture's trace again under the id `trace`, its spans changed by `edit`; the file's path. */
function fixtureAs(trace, edit) {
  const doc = JSON.parse(readFileSync(FIXTURE, 'utf8').replaceAll(TRACE, trace));
  for (const span of doc.resourceSpans[0].scopeSpans[0].spans) edit(span);
  const path = join(data, `${trace}.jsonl`);
  writeFileSync(path, `${JSON.stringify(doc)}\n`);
  return path;
}

/** The fixture's trace, its thread names, cause and values hostile. */
function hostileTrace() {
  return fixtureAs(HOSTILE_TRACE, (span) => {
    for (const kv of span.attributes) {
      if (kv.key === 'thread.name' && kv.value.stringValue === 'worker-1') kv.value.stringValue = hostile('thread');
      if (kv.key === 'devtrace.call.arguments') kv.value.stringValue = hostile('arg');
    }
    for (const link of span.links || []) {
      for (const kv of link.attributes) if (kv.key === 'devtrace.link.cause.function') kv.value.stringValue = hostile('cause');
    }
  });
}

/** The fixture's trace with a chain of two waits: main's get waited for worker-1's produce,
 * which waited 15 ms on a lock main's outer call released at +30 ms. That call is renamed
 * `pipeline.drain`, so the consume operation's breakdown stays the fixture's alone. */
function chainTrace() {
  const attribute = (key, value) => ({key, value});
  return fixtureAs(CHAIN_TRACE, (span) => {
    if (span.spanId === CONSUME) span.name = 'pipeline.drain';
    if (span.spanId !== PRODUCE) return;
    span.links = [{traceId: CHAIN_TRACE, spanId: CONSUME, attributes: [
      attribute('devtrace.link.kind', {stringValue: 'lock'}),
      attribute('devtrace.link.cause.function', {stringValue: 'pipeline.drain'}),
      attribute('devtrace.link.cause.time_unix_nano', {intValue: '1763730000030000000'}),
      attribute('devtrace.link.wait_ns', {intValue: '15000000'}),
    ]}];
  });
}

before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-causality-'));
  execFileSync(bin, ['--data', data, 'import', FIXTURE], {encoding: 'utf8'});
  execFileSync(bin, ['--data', data, 'import', hostileTrace()], {encoding: 'utf8'});
  execFileSync(bin, ['--data', data, 'import', chainTrace()], {encoding: 'utf8'});
  let info;
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  ({browser, page} = await openBrowser());
});

after(() => cleanUp({browser, server, data}));

const row = (name) => page.locator('.wf-row', {has: page.locator(`.label:text-is("${name}")`)});

test('an arrow goes from the call that ended a wait to the waiting span', async () => {
  await page.goto(`${base}/traces/${TRACE}`);
  await row('queue.Queue.get').waitFor();
  const arrow = page.locator(`.wf-arrow[data-arrow-cause="${PRODUCE}"][data-arrow-waiter="${GET}"]`);
  assert.equal(await arrow.count(), 1);
  // Rows: main, Thread.run, produce (2), consume, get (4): down from produce's row to get's.
  assert.equal(await arrow.getAttribute('class'), 'wf-arrow down');
  const box = await arrow.evaluate((el) => ({top: el.style.top, height: el.style.height}));
  assert.deepEqual(box, {top: `${2 * 24 + 12}px`, height: `${2 * 24}px`});
  assert.equal(await page.locator('.wf-arrow').count(), 1, 'one causal link, one arrow');
  // Collapsing the worker's thread hides its produce row, and the arrow with it.
  await row('threading.Thread.run').locator('[data-toggle]').click();
  assert.equal(await page.locator('.wf-arrow').count(), 0);
});

test('lanes by thread: a heading per thread, the arrow from the worker\'s lane to the main thread\'s', async () => {
  await page.goto(`${base}/traces/${TRACE}?lanes=1`);
  await page.locator('.wf-row.lane-head').first().waitFor();
  assert.equal(await page.locator('[data-lanes]').textContent(), 'Lanes by thread l');
  const lanes = await page.locator('.wf-row.lane-head').evaluateAll((rows) => rows.map((r) => [r.dataset.lane, r.dataset.laneKind, r.querySelector('[data-lane-name]').textContent]));
  assert.deepEqual(lanes, [['0', 'thread', 'thread MainThread'], ['1', 'thread', 'thread worker-1']]);
  const arrow = page.locator(`.wf-arrow[data-arrow-cause="${PRODUCE}"][data-arrow-waiter="${GET}"]`);
  assert.equal(await arrow.getAttribute('data-from-lane'), '1');
  assert.equal(await arrow.getAttribute('data-to-lane'), '0');
  assert.equal(await arrow.getAttribute('class'), 'wf-arrow up', 'worker-1\'s lane is below the main thread\'s');
});

test('the span panel says what a wait waited for and goes to it', async () => {
  await page.goto(`${base}/traces/${TRACE}?span=${GET}`);
  const waited = page.locator('.waited-for li');
  await waited.waitFor();
  assert.match(await waited.textContent(),
    /^waited 120\.0 ms for "pipeline\.produce" \(queue put, thread "worker-1", at \+140\.0 ms\)/);
  await waited.locator('[data-go-cause]').click();
  await page.locator('.wf-row.selected .label:text-is("pipeline.produce")').waitFor();
});

test('playback steps through a thread\'s calls with their values, jumps from a wait to its cause and returns', async () => {
  await page.goto(`${base}/traces/${TRACE}?span=${PARSE}`);
  await page.locator('[data-step-through]').click();
  const where = page.locator('[data-step-where]');
  const name = page.locator('[data-step-name]');
  await page.locator('[data-step-name]:text("pipeline.parse")').waitFor();
  assert.equal(await where.textContent(), 'call 4 of 4 · thread MainThread');
  assert.equal(await page.locator('.step-values [data-value="arguments"]').textContent(), 'text=\'4x2\'');
  assert.match(await page.locator('.step-values [data-value="raised"]').textContent(), /^ValueError/);
  assert.equal(await page.locator('[data-step="forward"]').isDisabled(), true, 'the last call');
  await page.locator('.wf-row.selected .label:text-is("pipeline.parse")').waitFor();

  await page.locator('[data-step="back"]').click();
  assert.equal(await name.textContent(), '· · queue.Queue.get');
  assert.equal(await where.textContent(), 'call 3 of 4 · thread MainThread');
  assert.equal(await page.locator('.step-values [data-value="arguments"]').textContent(), 'not recorded');
  assert.match(await page.locator('.step-wait').textContent(), /^waited 120\.0 ms for "pipeline\.produce"/);
  await page.locator('.wf-row.selected .label:text-is("queue.Queue.get")').waitFor();
  const clock = await page.locator('.player .mono').first().textContent();
  assert.match(clock, /^\+20\.0 ms \//, 'the playback cursor is at the call\'s start');
  const back = page.locator('[data-step="return"]');
  assert.equal(await back.isHidden(), true, 'no jump yet: nothing to return to');

  await page.locator('[data-step="cause"]').click();
  await page.locator('[data-step-name]:text("pipeline.produce")').waitFor();
  assert.equal(await where.textContent(), 'call 2 of 2 · thread worker-1');
  assert.equal(await page.locator('.step-values [data-value="arguments"]').textContent(), 'n=3');
  assert.equal(await page.locator('.step-values [data-value="returned"]').textContent(), 'None');
  await page.locator('.wf-row.selected .label:text-is("pipeline.produce")').waitFor();
  await page.locator('[data-step="back"]').click();
  assert.equal(await name.textContent(), 'threading.Thread.run');

  // Back to the wait the jump left, from wherever the cause's thread was stepped to.
  assert.equal(await back.isVisible(), true, 'after a jump');
  assert.equal(await back.textContent(), '↩ Return to the wait');
  assert.equal(await back.getAttribute('title'), 'Return to the wait (r)');
  assert.equal(await back.getAttribute('aria-keyshortcuts'), 'r');
  await back.click();
  await showsStep('queue.Queue.get', 'call 3 of 4 · thread MainThread');
  assert.equal(await name.textContent(), '· · queue.Queue.get');
  assert.equal(await back.isHidden(), true, 'the one jump is undone');
});

/** Waits until the step-through shows the call `name`, selected in the waterfall too, at `where`. */
async function showsStep(name, where) {
  await page.locator(`[data-step-name]:text("${name}")`).waitFor();
  assert.equal(await page.locator('[data-step-where]').textContent(), where);
  await page.locator(`.wf-row.selected .label:text-is("${name}")`).waitFor();
}

/** Presses `keys` in the trace search, then empties and leaves it; what they typed there. */
async function pressInSearch(...keys) {
  const search = page.locator('[data-search]');
  await search.focus();
  for (const key of keys) await page.keyboard.press(key);
  const typed = await search.inputValue();
  await search.fill('');
  await search.evaluate((el) => el.blur());
  return typed;
}

test('the step-through\'s keys: ← and → step, c jumps to the cause, r returns, none while typing', async () => {
  await page.goto(`${base}/traces/${TRACE}?span=${PARSE}`);
  await page.locator('[data-step-through]').click();
  const name = page.locator('[data-step-name]');
  const where = page.locator('[data-step-where]');
  await page.locator('[data-step-name]:text("pipeline.parse")').waitFor();
  // Shown where the controls are: a hint, and each button's title and aria-keyshortcuts.
  assert.equal(await page.locator('[data-step-keys]').textContent(), '← → step · c jumps to the cause · r returns to the wait');
  assert.equal(await page.locator('[data-step="back"]').getAttribute('title'), 'Previous call (←)');
  assert.equal(await page.locator('[data-step="forward"]').getAttribute('aria-keyshortcuts'), 'ArrowRight');

  await page.keyboard.press('ArrowLeft');
  assert.equal(await name.textContent(), '· · queue.Queue.get');
  assert.equal(await where.textContent(), 'call 3 of 4 · thread MainThread');
  await page.locator('.wf-row.selected .label:text-is("queue.Queue.get")').waitFor();
  assert.equal(await page.locator('[data-step="cause"]').getAttribute('title'), 'Jump to the cause (c)');
  await page.keyboard.press('ArrowRight');
  assert.equal(await name.textContent(), '· · pipeline.parse');
  await page.keyboard.press('ArrowLeft');

  // Typing in the trace search moves nothing: the keys are the field's.
  assert.equal(await pressInSearch('ArrowLeft', 'c'), 'c');
  assert.equal(await where.textContent(), 'call 3 of 4 · thread MainThread');

  await page.keyboard.press('c');
  await showsStep('pipeline.produce', 'call 2 of 2 · thread worker-1');
  await page.keyboard.press('c');
  assert.equal(await where.textContent(), 'call 2 of 2 · thread worker-1', 'produce waited for nothing');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await name.textContent(), 'threading.Thread.run');

  // Typing r in the search returns nowhere; r outside it returns to the wait, once.
  assert.equal(await pressInSearch('r'), 'r');
  assert.equal(await where.textContent(), 'call 1 of 2 · thread worker-1');
  await page.keyboard.press('r');
  await showsStep('queue.Queue.get', 'call 3 of 4 · thread MainThread');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('r');
  assert.equal(await name.textContent(), '· · pipeline.parse', 'nothing left to return to');
  assert.equal(await where.textContent(), 'call 4 of 4 · thread MainThread');
});

test('after two jumps along a chain of waits, r returns one wait at a time', async () => {
  await page.goto(`${base}/traces/${CHAIN_TRACE}?span=${GET}`);
  await page.locator('[data-step-through]').click();
  const back = page.locator('[data-step="return"]');
  await showsStep('queue.Queue.get', 'call 3 of 4 · thread MainThread');

  await page.keyboard.press('c');
  await showsStep('pipeline.produce', 'call 2 of 2 · thread worker-1');
  assert.match(await page.locator('.step-wait').textContent(), /^waited 15\.0 ms for "pipeline\.drain" \(lock release/);
  await page.keyboard.press('c');
  await showsStep('pipeline.drain', 'call 2 of 4 · thread MainThread');

  await page.keyboard.press('r');
  await showsStep('pipeline.produce', 'call 2 of 2 · thread worker-1');
  assert.equal(await back.isVisible(), true, 'one jump left to undo');
  await back.click();
  await showsStep('queue.Queue.get', 'call 3 of 4 · thread MainThread');
  assert.equal(await back.isHidden(), true);

  // A step-through begun again from the span panel starts without a way back.
  await page.keyboard.press('c');
  await showsStep('pipeline.produce', 'call 2 of 2 · thread worker-1');
  await page.locator('[data-step-through]').click();
  await showsStep('pipeline.produce', 'call 2 of 2 · thread worker-1');
  assert.equal(await back.isHidden(), true, 'a new step-through');
});

test('the operation breakdown credits the time waited on another thread to that thread\'s call', async () => {
  await page.goto(`${base}/operations/pipeline.consume`);
  const waited = page.locator('table.breakdown tbody tr.waited-for');
  await waited.first().waitFor();
  assert.equal(await waited.count(), 1);
  const cells = await waited.locator('td').allTextContents();
  assert.match(cells[0], /^⇠ threading\.Thread\.run \(thread /);
  assert.ok(!/[\u001b\u202e\u200b\u2028]/.test(cells[0]), `the thread's name is shown as text: ${cells[0]}`);
  assert.equal(cells.at(-1), '67 %', 'the path\'s 120 ms of the consumer\'s 180 ms');
  assert.match(await waited.getAttribute('title'), /^Not a child: another thread/);
});

test('hostile recorded values, thread names and causes are shown as text', async () => {
  await page.goto(`${base}/traces/${HOSTILE_TRACE}?span=${GET}`);
  const waited = page.locator('.waited-for li');
  await waited.waitFor();
  const text = await waited.textContent();
  assert.ok(text.includes('\\u001b[2J'), text);
  assert.ok(!/[\u001b\u202e\u200b\u2028]/.test(text), `no raw control or bidi characters: ${text}`);
  await page.locator(`[data-step-through]`).click();
  await page.locator('[data-step-name]:text("queue.Queue.get")').waitFor();
  await page.locator('[data-step="forward"]').click();
  await page.locator('[data-step-name]:text("pipeline.parse")').waitFor();
  assert.equal(await page.locator('.step-values [data-value="arguments"]').textContent(), SHOWN('arg'));
  await page.locator('[data-step="back"]').click();
  await page.locator('[data-step="cause"]').click();
  await page.locator('[data-step-name]:text("pipeline.produce")').waitFor();
  assert.ok((await page.locator('[data-step-where]').textContent()).includes(SHOWN('thread')));
  assert.equal(await page.locator('.trace-view img').count(), 0, 'no element made from recorded text');
});

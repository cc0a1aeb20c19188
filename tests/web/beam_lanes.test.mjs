// A real Elixir program in the trace view (tests/web/beam/cart.exs, recorded by `devtrace run
// --record -- elixir cart.exs` with the BEAM runtime scripts/build-beam builds): a GenServer
// registered under a hostile name, keeping hostile text in its state, behind two client
// processes. "Lanes by process" groups the waterfall's rows under one heading per process, in
// the URL and by its key; each message is an arrow from the sender's lane to the receiver's;
// the span panel shows a handle_call's state before and after it and, for any span of the
// server, the state when it started (what the last callback before it left); step-through
// walks one process's calls and messages, a receive jumping to the send that ended it. At a
// laptop's 1440 px and a phone's 390 px, with no sideways scroll, and the hostile text inert.
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, existsSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, dirname, basename} from 'node:path';
import {bin, root, shots, startServe, openBrowser, cleanUp, cliOn} from './harness.mjs';

const PROGRAM = join(root, 'tests/web/beam/cart.exs');
const SERVER = '<img src=x onerror=alert(1)>';
const NOTE = '<img src=x onerror=alert(2)>';
const LAPTOP = {width: 1440, height: 900}, PHONE = {width: 390, height: 844};

let data, server, base, browser, page, trace, spans, dialogs = 0;

before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  const runtime = join(dirname(bin), '..', 'beam', 'devtrace_beam', 'ebin', 'devtrace_beam.beam');
  assert.ok(existsSync(runtime), `the BEAM runtime is not built (${runtime} is missing): run scripts/build-beam`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-beam-'));
  mkdirSync(shots, {recursive: true});
  const devtrace = cliOn(data);
  const out = execFileSync(bin, ['--data', data, 'run', '--record', '--', 'elixir', basename(PROGRAM)],
    {encoding: 'utf8', cwd: dirname(PROGRAM), env: {...process.env, NO_COLOR: '1'}});
  assert.equal(out.trim(), 'done', 'the program ran to its end');
  const [run] = JSON.parse(devtrace('ls', '--json'));
  trace = JSON.parse(devtrace('show', '--json', run.trace_id));
  spans = trace.spans;
  let info;
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  ({browser, page} = await openBrowser(LAPTOP));
  page.on('dialog', (dialog) => { dialogs += 1; return dialog.dismiss(); });
});

after(() => cleanUp({browser, server, data}));

const named = (name) => spans.filter((s) => s.name === name);
const processOf = (span) => span.attributes['thread.name'];
const byId = (id) => spans.find((s) => s.span_id === id);
/** The server's two handle_call/3 spans, in the order they ran. */
const handleCalls = () => named('Cart.Server.handle_call/3').sort((a, b) => a.start_unix_nano - b.start_unix_nano);
/** Each message link: the span that sent it and the receive it ended. */
const messages = () => spans.flatMap((s) => (s.links || []).filter((l) => l.attributes['devtrace.link.kind'] === 'message')
  .map((l) => ({cause: byId(l.span_id), waiter: s}))).filter((m) => m.cause);
const clients = () => [...new Set(named('Cart.Server.add/1').map(processOf))];

let columns;
/** The trace's waterfall columns, as the page reads them. */
async function waterfall() {
  columns ??= await (await fetch(`${base}/api/v1/traces/${trace.trace_id}/waterfall`)).json();
  return columns;
}

/** The top of span `id`'s row in the waterfall (its translateY), drawn now. */
async function rowTop(id) {
  const row = page.locator(`.wf-row[data-row="${(await waterfall()).span_id.indexOf(id)}"]`);
  assert.equal(await row.count(), 1, `the row of span ${id} is drawn`);
  return row.evaluate((r) => parseFloat(/translateY\(([-\d.]+)px\)/.exec(r.style.transform)[1]));
}

async function laneHeadings() {
  return page.locator('.wf-row.lane-head').evaluateAll((rows) => rows.map((r) => ({
    lane: r.dataset.lane, kind: r.dataset.laneKind, name: r.querySelector('[data-lane-name]').textContent,
    top: parseFloat(/translateY\(([-\d.]+)px\)/.exec(r.style.transform)[1])})));
}

test('lanes by process: a heading per process, and each message an arrow from the sender\'s lane to the receiver\'s', async () => {
  await page.setViewportSize(LAPTOP);
  await page.goto(`${base}/traces/${trace.trace_id}`);
  const toggle = page.locator('[data-lanes]');
  assert.equal(await toggle.textContent(), 'Lanes by process l');
  assert.equal(await page.locator('.wf-row.lane-head').count(), 0, 'the tree until asked');
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
  assert.equal(new URL(page.url()).searchParams.get('lanes'), '1');
  await page.locator('.wf-row.lane-head').first().waitFor();

  // Shut the main process's lane (the script's compilation, most rows): every other row is
  // drawn (the waterfall draws only the rows near the view).
  const main = processOf(named('Cart.Server.start_link/1')[0]);
  const mainLane = (await laneHeadings()).find((l) => l.name === `process ${main}`).lane;
  await page.locator(`.wf-row.lane-head[data-lane="${mainLane}"]`).click();
  assert.equal(await page.locator(`.wf-row[data-row][data-lane="${mainLane}"]`).count(), 0, 'a shut lane shows its heading alone');
  assert.equal(await page.locator(`.wf-row.lane-head[data-lane="${mainLane}"]`).getAttribute('aria-expanded'), 'false');

  // One heading per process the program ran (and one for the run's own span, on none).
  const processes = [...new Set(spans.map(processOf).filter(Boolean))];
  assert.ok(processes.length >= 4, `the main process, the server and two clients: ${processes}`);
  const headings = await laneHeadings();
  assert.deepEqual(headings.map((l) => l.name).sort(), ['no thread', ...processes.map((p) => `process ${p}`)].sort());
  assert.ok(headings.filter((l) => l.name !== 'no thread').every((l) => l.kind === 'process'));
  const laneOf = (name) => headings.find((l) => l.name === `process ${name}`).lane;

  // Each message between the server and a client: an arrow from the sender's lane to the
  // receiver's, from the sending span's row to the receive's row.
  const between = messages().filter((m) => [processOf(m.cause), processOf(m.waiter)].includes(SERVER)
    && clients().includes(processOf(m.cause) === SERVER ? processOf(m.waiter) : processOf(m.cause)));
  assert.equal(between.length, 4, 'two requests and two replies');
  for (const {cause, waiter} of between) {
    const arrow = page.locator(`.wf-arrow[data-arrow-cause="${cause.span_id}"][data-arrow-waiter="${waiter.span_id}"]`);
    assert.equal(await arrow.count(), 1, `an arrow from ${cause.name} to ${waiter.name}`);
    assert.equal(await arrow.getAttribute('data-arrow-kind'), 'message');
    assert.equal(await arrow.getAttribute('data-from-lane'), laneOf(processOf(cause)));
    assert.equal(await arrow.getAttribute('data-to-lane'), laneOf(processOf(waiter)));
    const [from, to] = [await rowTop(cause.span_id), await rowTop(waiter.span_id)];
    assert.notEqual(from, to);
    const box = await arrow.evaluate((el) => ({top: parseFloat(el.style.top), height: parseFloat(el.style.height), down: el.classList.contains('down')}));
    assert.deepEqual(box, {top: Math.min(from, to) + 12, height: Math.abs(to - from), down: to > from});
    // Each end's row sits under its own lane's heading.
    for (const [id, process] of [[cause.span_id, processOf(cause)], [waiter.span_id, processOf(waiter)]]) {
      const top = await rowTop(id);
      const heading = headings.filter((l) => l.top < top).at(-1);
      assert.equal(heading.name, `process ${process}`, `span ${id} is in its process's lane`);
    }
  }
  // For the docs: zoomed to the server's life, where the messages are.
  const lane = (await waterfall()).lanes[Number(laneOf(SERVER))];
  const pad = (lane.end_ns - lane.start_ns) / 10;
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1&zoom=${Math.round(lane.start_ns - pad)}-${Math.round(lane.end_ns + pad)}&span=${handleCalls()[1].span_id}`);
  await page.locator('[data-process-state]').waitFor();
  await page.screenshot({path: join(shots, 'trace-beam-lanes-1440.png')});
  assert.equal(await page.locator('.trace-view img').count(), 0, 'the hostile name is text');
  assert.equal(dialogs, 0);
});

test('the span panel shows a handle_call\'s state before and after it, and the state when a span started', async () => {
  await page.setViewportSize(LAPTOP);
  const [first, second] = handleCalls();
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1&span=${second.span_id}`);
  const panel = page.locator('[data-process-state]');
  await panel.waitFor();
  assert.equal(await panel.locator('h3').textContent(), `State of ${SERVER}`);
  const state = (key) => panel.locator(`[data-state="${key}"]`).textContent();
  assert.equal(await state('before'), second.attributes['devtrace.beam.state.before']);
  assert.equal(await state('after'), second.attributes['devtrace.beam.state.after']);
  assert.ok((await state('after')).includes(NOTE), 'the recorded text, as it was recorded');
  assert.deepEqual(await panel.locator('dt').allTextContents(), ['State before', 'State after', 'State when it started']);
  // When the second call started, the state was what the first left.
  assert.equal(await state('at-start'), first.attributes['devtrace.beam.state.after']);
  assert.equal(await state('at-start'), await state('before'), 'the state after one callback is the state before the next');
  assert.equal(await panel.locator('[data-state-from]').getAttribute('data-state-from'), first.span_id);
  await panel.locator('button:text("go to it")').click();
  await page.locator(`.wf-row.selected[data-row]`).waitFor();
  assert.equal(new URL(page.url()).searchParams.get('span'), first.span_id);
  assert.equal(new URL(page.url()).searchParams.get('lanes'), '1', 'still in lanes');

  // A span inside the first call: no state of its own; the state when it started is init's.
  const inside = spans.find((s) => s.parent_span_id === first.span_id);
  const [init] = named('Cart.Server.init/1');
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1&span=${inside.span_id}`);
  await panel.waitFor();
  assert.deepEqual(await panel.locator('dt').allTextContents(), ['State when it started']);
  assert.equal(await state('at-start'), init.attributes['devtrace.beam.state.after']);
  // The server's life starts before any callback ended.
  const [life] = named(`process ${SERVER}`);
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1&span=${life.span_id}`);
  await panel.waitFor();
  assert.equal(await panel.locator('[data-state-from]').textContent(), 'When it started, no callback of the process had ended yet.');
  // A client's span: the server's state is not its own.
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1&span=${named('Cart.Server.add/1')[0].span_id}`);
  await page.locator('.span-detail').waitFor();
  assert.equal(await panel.count(), 0);
  assert.equal(await page.locator('.trace-view img').count(), 0, 'no element made from recorded text');
  assert.equal(dialogs, 0);
});

test('step-through walks a process\'s calls and messages: a receive jumps to the send that ended it, and back', async () => {
  await page.setViewportSize(LAPTOP);
  // A client's wait for its reply, ended by the server.
  const reply = messages().find((m) => processOf(m.cause) === SERVER && clients().includes(processOf(m.waiter)));
  const client = processOf(reply.waiter);
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1&span=${reply.waiter.span_id}`);
  await page.locator('[data-step-through]').click();
  const name = page.locator('[data-step-name]');
  const where = page.locator('[data-step-where]');
  await page.locator('[data-step-name]:text("receive")').waitFor();
  assert.match(await where.textContent(), new RegExp(`^call \\d+ of \\d+ · process ${escapeRegex(client)}$`));
  assert.match(await page.locator('.step-wait').textContent(),
    new RegExp(`^waited .+ for a message from "${escapeRegex(SERVER)}" \\(sent (by "[^"]+" )?at \\+`));

  // c: to the send that ended it, on the server's lane; then on to a callback with its state.
  await page.keyboard.press('c');
  await page.locator(`[data-step-name]:text("${reply.cause.name}")`).waitFor();
  assert.match(await where.textContent(), new RegExp(`· process ${escapeRegex(SERVER)}$`));
  assert.equal(new URL(page.url()).searchParams.get('span'), reply.cause.span_id, 'the send is selected');
  for (let k = 0; k < 20 && !(await name.textContent()).includes('handle_call'); k++) await page.keyboard.press('ArrowRight');
  assert.match(await name.textContent(), /Cart\.Server\.handle_call\/3$/);
  const values = page.locator('.step-values');
  const stepped = byId(new URL(page.url()).searchParams.get('span'));
  assert.equal(await values.locator('[data-value="state before"]').textContent(), stepped.attributes['devtrace.beam.state.before']);
  assert.equal(await values.locator('[data-value="state after"]').textContent(), stepped.attributes['devtrace.beam.state.after']);
  // The span panel follows the step: the state when it started is the one before it.
  await page.locator('[data-process-state] [data-state="at-start"]').waitFor();

  // r: back to the client's receive.
  await page.keyboard.press('r');
  await page.locator('[data-step-name]:text("receive")').waitFor();
  assert.match(await where.textContent(), new RegExp(`· process ${escapeRegex(client)}$`));
  assert.equal(new URL(page.url()).searchParams.get('span'), reply.waiter.span_id);

  // The server's wait for a request jumps to the client's call that sent it.
  const request = messages().find((m) => processOf(m.waiter) === SERVER && m.cause.name === 'Cart.Server.add/1');
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1&span=${request.waiter.span_id}`);
  await page.locator('[data-step-through]').click();
  await page.locator('[data-step-name]:text("receive")').waitFor();
  await page.keyboard.press('c');
  await page.locator('[data-step-name]:text("Cart.Server.add/1")').waitFor();
  assert.match(await where.textContent(), new RegExp(`· process ${escapeRegex(processOf(request.cause))}$`));
  assert.equal(await page.locator('.trace-view img').count(), 0);
  assert.equal(dialogs, 0);
});

test('lanes by the key l and in the URL; j and k step over the headings', async () => {
  await page.setViewportSize(LAPTOP);
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1`);
  const toggle = page.locator('[data-lanes]');
  await page.locator('.wf-row.lane-head').first().waitFor();
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true', 'restored from the URL');
  await page.keyboard.press('l');
  assert.equal(await page.locator('.wf-row.lane-head').count(), 0);
  assert.equal(new URL(page.url()).searchParams.get('lanes'), null);
  await page.keyboard.press('l');
  await page.locator('.wf-row.lane-head').first().waitFor();
  assert.equal(new URL(page.url()).searchParams.get('lanes'), '1');

  // The first lane holds the spans of no thread: the run's own and the flight recorder's
  // window; j walks them, then goes over the heading onto the next lane's first span.
  const headings = await laneHeadings();
  assert.equal(headings[0].name, 'no thread');
  await page.locator('.wf-scroll').focus();
  await page.keyboard.press('j');
  const selected = page.locator('.wf-row.selected[data-row]');
  assert.equal(await selected.getAttribute('data-lane'), '0');
  await page.keyboard.press('j');
  assert.equal(await selected.getAttribute('data-lane'), '0');
  assert.match(await selected.locator('.label').textContent(), /devtrace\.flight_window/);
  await page.keyboard.press('j');
  assert.equal(await selected.getAttribute('data-lane'), '1', 'over the second heading onto its first span');
  assert.match(await selected.locator('.label').textContent(), /^process /);
  await page.keyboard.press('k');
  assert.equal(await selected.getAttribute('data-lane'), '0', 'back over the heading');
});

test('at 390 px: lanes without a sideways scroll, a selected callback\'s state in the sheet', async () => {
  await page.setViewportSize(PHONE);
  const [, second] = handleCalls();
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1`);
  await page.locator('.wf-row.lane-head').first().waitFor();
  assert.ok(await page.locator('[data-lanes]').isVisible(), 'the toggle is in reach');
  const noSideways = async () => {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `the page is ${width} px wide at ${PHONE.width}`);
  };
  await noSideways();
  await page.goto(`${base}/traces/${trace.trace_id}?lanes=1&span=${second.span_id}`);
  await page.locator('.span-panel.open [data-process-state]').waitFor();
  assert.equal(await page.locator('[data-state="before"]').textContent(), second.attributes['devtrace.beam.state.before']);
  assert.equal(await page.locator('[data-state="after"]').textContent(), second.attributes['devtrace.beam.state.after']);
  await noSideways();
  await page.screenshot({path: join(shots, 'trace-beam-state-390.png')});
  assert.equal(await page.locator('.trace-view img').count(), 0);
  assert.equal(dialogs, 0);
  await page.setViewportSize(LAPTOP);
});

function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

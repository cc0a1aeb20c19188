// Getting around a big trace (issue 47): a 3,363-span batch whose one 900 ms span is five
// levels down inside a folded run. One key press reaches it; the errors and the critical path
// are one key away; a duration filter, a longest-first order and a zoom dragged on the minimap
// cut the trace down; the header states the critical path's time; and every one of these is in
// the URL, so a link opens the same view.
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {join} from 'node:path';
import {shots, openBrowser, cleanUp} from './harness.mjs';
import {serveBigTrace, BIG_TRACE, SLOW_SPAN, FAILING_SHARDS} from './bigtrace.mjs';

let data, server, base, browser, page, wf;

before(async () => {
  ({data, server, base} = await serveBigTrace('bigtrace'));
  wf = await (await fetch(`${base}/api/v1/traces/${BIG_TRACE}/waterfall`)).json();
  ({browser, page} = await openBrowser({width: 1440, height: 900}));
});

after(() => cleanUp({browser, server, data}));

const label = (name) => (i) => wf.strings[wf.name[i]] === name;
const selectedLabel = () => page.locator('.wf-row.selected .label').textContent();

/** The selected row lies inside the waterfall's scrolled area, fully. */
async function assertSelectedInView() {
  const row = await page.locator('.wf-row.selected').boundingBox();
  const scroller = await page.locator('.wf-scroll').boundingBox();
  assert.ok(row && row.y >= scroller.y && row.y + row.height <= scroller.y + scroller.height,
    `the selected row (${JSON.stringify(row)}) is inside the waterfall (${JSON.stringify(scroller)})`);
  const viewport = page.viewportSize();
  assert.ok(row.y + row.height <= viewport.height, 'and inside the window');
}

async function openTrace(query = '') {
  await page.goto(`${base}/traces/${BIG_TRACE}${query}`);
  await page.locator('.wf-row').first().waitFor();
}

test('one key press selects the slowest span, deep in a folded run, and scrolls it into view', async () => {
  assert.equal(wf.span_count, 3363);
  await openTrace();
  assert.equal(await page.locator('.wf-row.selected').count(), 0, 'nothing selected on opening');
  await page.keyboard.press('s');
  await page.locator('.wf-row.selected').waitFor();
  assert.equal(await selectedLabel(), SLOW_SPAN);
  await assertSelectedInView();
  assert.equal(await page.locator('.span-panel h2').textContent(), SLOW_SPAN);
  const spanId = wf.span_id[wf.name.findIndex((n, i) => label(SLOW_SPAN)(i))];
  assert.equal(new URL(page.url()).searchParams.get('span'), spanId);
  assert.match(await page.locator('[data-nav-info]').textContent(), /^slowest 1 of 3,363: 900\.0 ms of its own/);
  await page.screenshot({path: join(shots, 'trace-slowest-span.png')});
  // Again: the next slowest, and the button does what the key does.
  await page.locator('[data-jump="slowest"]').click();
  assert.match(await page.locator('[data-nav-info]').textContent(), /^slowest 2 of 3,363/);
  // After another selection, s starts over at the slowest.
  await page.keyboard.press('e');
  await page.locator('.wf-row.selected.error').waitFor();
  await page.keyboard.press('s');
  assert.match(await page.locator('[data-nav-info]').textContent(), /^slowest 1 of 3,363/);
  assert.equal(await selectedLabel(), SLOW_SPAN);
});

test('the header states the critical path as a time, and the keys are in the page', async () => {
  await openTrace();
  const onPath = wf.on_critical_path.filter(Boolean).length;
  const text = await page.locator('[data-critical-path]').textContent();
  const seconds = (wf.critical_path_ns / 1e9).toFixed(2);
  assert.equal(text, `${seconds} s over ${onPath.toLocaleString('en-US')} spans`);
  assert.ok(wf.critical_path_ns > 1.9e9, 'the shards run one after another: the path is the whole batch');
  const keys = await page.locator('[data-view-keys]').getAttribute('data-view-keys');
  for (const key of ['s the slowest span', 'e / E the next / previous error', 'p / P the next / previous span on the critical path', 'z zoom', '0 the whole trace']) {
    assert.ok(keys.includes(key), `the keys name "${key}": ${keys}`);
  }
  await page.keyboard.press('?');
  await page.locator('#toast').waitFor();
  assert.ok((await page.locator('#toast').textContent()).includes('s the slowest span'), 'the ? help lists the trace page\'s keys');
});

test('e walks the errors in tree order and wraps; each error keeps its critical-path mark', async () => {
  await openTrace();
  const seen = [];
  for (let k = 0; k <= FAILING_SHARDS.length; k++) {
    await page.keyboard.press('e');
    await page.locator('.wf-row.selected.error').waitFor();
    await assertSelectedInView();
    seen.push(await page.locator('[data-nav-info]').textContent());
  }
  assert.deepEqual(seen, ['error: 1 of 3', 'error: 2 of 3', 'error: 3 of 3', 'error: 1 of 3']);
  await page.keyboard.press('E');
  assert.equal(await page.locator('[data-nav-info]').textContent(), 'error: 3 of 3');
  // The failed call ends its shard, so it is on the critical path: the row is marked both ways.
  const row = page.locator('.wf-row.selected');
  assert.match(await row.getAttribute('class'), /\bcritical\b.*\berror\b|\berror\b.*\bcritical\b/);
  const bar = row.locator('.wf-bars > .wf-bar');
  const critical = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--critical').trim());
  const style = await bar.evaluate((el) => ({outline: getComputedStyle(el).outlineStyle, colour: getComputedStyle(el).outlineColor}));
  assert.equal(style.outline, 'solid', 'the red bar keeps an outline in the critical path\'s colour');
  assert.equal(style.colour, await page.evaluate((c) => { const d = document.createElement('i'); d.style.color = c; document.body.append(d); const v = getComputedStyle(d).color; d.remove(); return v; }, critical));
  const mark = await row.locator('.wf-name').evaluate((el) => getComputedStyle(el).boxShadow);
  assert.notEqual(mark, 'none', 'and the name keeps the critical path\'s rule');
});

test('p steps along the critical path', async () => {
  await openTrace();
  await page.keyboard.press('p');
  await page.locator('.wf-row.selected').waitFor();
  const total = wf.critical.filter((c) => c > 0).length;
  assert.match(await page.locator('[data-nav-info]').textContent(), new RegExp(`^on the critical path: 1 of ${total.toLocaleString("en-US")}: `));
  const first = wf.critical.findIndex((c) => c > 0);
  assert.equal(await page.locator('.wf-row.selected').getAttribute('data-row'), String(first));
});

test('a duration filter keeps the long spans with their ancestors; longest first puts the slow shard on top', async () => {
  await openTrace();
  await page.locator('[data-min-duration]').fill('100ms');
  await page.locator('[data-min-duration]').press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.wf-row').length < 10);
  assert.deepEqual(await page.locator('.wf-row .label').allTextContents(),
    ['nightly.batch', 'process shard', 'transform', 'compute step', 'call pricing', SLOW_SPAN]);
  assert.equal(await page.locator('[data-nav-info]').textContent(), '6 of 3,363 spans shown');
  assert.equal(new URL(page.url()).searchParams.get('min'), '100ms');
  await page.locator('[data-min-duration]').fill('fast');
  await page.locator('[data-min-duration]').press('Enter');
  assert.equal(await page.locator('[data-nav-info]').textContent(), 'not a duration: fast (say 10ms, 1.5s or 250us)');
  assert.equal(await page.locator('[data-min-duration]').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('.wf-row').count(), 6, 'a bad filter changes nothing');

  await page.locator('[data-min-duration]').fill('');
  await page.locator('[data-min-duration]').press('Enter');
  await page.locator('[data-order]').selectOption('duration');
  const second = page.locator('.wf-rows .wf-row').nth(1);
  assert.equal(await second.locator('.label').textContent(), 'process shard');
  assert.equal(await second.locator('.wf-dur').textContent(), '950.0 ms');
  assert.equal(new URL(page.url()).searchParams.get('sort'), 'duration');
});

test('dragging across the minimap zooms the waterfall to that time; 0 shows the whole trace again', async () => {
  await openTrace();
  const map = await page.locator('[data-minimap]').boundingBox();
  const y = map.y + map.height / 2;
  // From 10 % to 20 % of the trace: shards 7 to 14 or so, all fast.
  await page.mouse.move(map.x + map.width * 0.1, y);
  await page.mouse.down();
  await page.mouse.move(map.x + map.width * 0.15, y, {steps: 4});
  await page.mouse.move(map.x + map.width * 0.2, y, {steps: 4});
  await page.mouse.up();
  await page.locator('.trace-view.zoomed').waitFor();
  const zoom = new URL(page.url()).searchParams.get('zoom');
  const [from, to] = zoom.split('-').map(Number);
  const whole = wf.duration_ns;
  assert.ok(Math.abs(from / whole - 0.1) < 0.01 && Math.abs(to / whole - 0.2) < 0.01, `zoom=${zoom}`);
  const ticks = await page.locator('.wf-ruler span').allTextContents();
  assert.notEqual(ticks[0], '0 ns', `the axis starts at the zoom: ${ticks}`);
  // Only the spans in that time (and their ancestors) are rows: no span ends before it.
  const shown = Number((await page.locator('[data-nav-info]').textContent()).split(' ')[0].replace(',', ''));
  const overlapping = wf.start.filter((s, i) => s < to && s + wf.duration[i] > from).length;
  assert.equal(shown, overlapping);
  assert.ok(!(await page.locator('.wf-row .label').allTextContents()).includes(SLOW_SPAN));
  await page.screenshot({path: join(shots, 'trace-zoomed.png')});
  await page.locator('.wf-scroll').press('0');
  await page.waitForFunction(() => !document.querySelector('.trace-view.zoomed'));
  assert.equal(new URL(page.url()).searchParams.get('zoom'), null);
  assert.equal((await page.locator('.wf-ruler span').allTextContents())[0], '0 ns');
});

test('the search within the trace is in the URL, and a link with it opens it', async () => {
  await openTrace('?min=5ms');
  await page.locator('[data-search]').fill('pricing lock');
  await page.waitForURL(/[?&]q=pricing\+lock/);
  assert.equal(new URL(page.url()).searchParams.get('min'), '5ms', 'the search keeps the filter');
  await page.locator('[data-search]').fill('');
  await page.waitForURL((url) => !url.searchParams.has('q'));
  await openTrace('?q=pricing+lock');
  assert.equal(await page.locator('[data-search]').inputValue(), 'pricing lock');
  const info = page.locator('.trace-tools [role="status"]');
  await page.waitForFunction(() => /match/.test(document.querySelector('.trace-tools [role="status"]').textContent));
  assert.equal(await info.textContent(), '1 match · Enter for the next');
  await page.locator('[data-search]').press('Enter');
  await page.locator('.wf-row.selected').waitFor();
  assert.equal(await selectedLabel(), SLOW_SPAN);
});

test('a shared link opens the same view: span, filter, order, zoom and playback position', async () => {
  const slow = wf.name.findIndex((n, i) => label(SLOW_SPAN)(i));
  const from = wf.start[slow] - 1e6, to = wf.start[slow] + wf.duration[slow] + 1e6;
  const t = wf.start[slow] + 450e6;
  await openTrace(`?span=${wf.span_id[slow]}&min=5ms&sort=duration&zoom=${from}-${to}&t=${t}`);
  await page.locator('.wf-row.selected').waitFor();
  assert.equal(await selectedLabel(), SLOW_SPAN);
  assert.equal(await page.locator('[data-min-duration]').inputValue(), '5ms');
  assert.equal(await page.locator('[data-order]').inputValue(), 'duration');
  await page.locator('.trace-view.zoomed').waitFor();
  await page.locator('.player:not([hidden])').waitFor();
  assert.equal(await page.locator('.player .scrubber').inputValue(), String(Math.round(t / wf.duration_ns * 1000)));
  assert.equal(await page.locator('.wf-row.selected').getAttribute('class').then((c) => c.includes('running')), true,
    'at that instant the slow span is running');
  // z on the selected span zooms to it, and the URL follows.
  await page.locator('.wf-scroll').press('0');
  await page.locator('.wf-scroll').press('z');
  await page.locator('.trace-view.zoomed').waitFor();
  const [zf, zt] = new URL(page.url()).searchParams.get('zoom').split('-').map(Number);
  assert.ok(zf <= wf.start[slow] && zt >= wf.start[slow] + wf.duration[slow]);
});

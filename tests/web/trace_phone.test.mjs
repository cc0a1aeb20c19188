// The trace page at a phone's 390×844 and a laptop's 1440×900 (issue 47): the page never
// scrolls sideways, span names are whole (on a phone each row is its name over its bar), and
// on a phone the span panel is a sheet over the bottom of the screen that opens in view after a
// tap, with the tapped row above it; the findings, the jumps, the duration filter and the
// minimap are in reach of a finger (a drag across the minimap zooms). Screenshots of both widths
// go to target/web-screenshots/.
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {join} from 'node:path';
import {chromium} from 'playwright-core';
import {shots, cleanUp, CHROMIUM, LAUNCH_FLAGS} from './harness.mjs';
import {serveBigTrace, BIG_TRACE, SLOW_SPAN, LOADER_ATTRIBUTES, FAILING_SHARDS} from './bigtrace.mjs';

const PHONE = {viewport: {width: 390, height: 844}, hasTouch: true, isMobile: true, deviceScaleFactor: 2};
const LAPTOP = {viewport: {width: 1440, height: 900}};

let data, server, base, browser;

before(async () => {
  ({data, server, base} = await serveBigTrace('trace-phone'));
  browser = await chromium.launch({executablePath: CHROMIUM, args: LAUNCH_FLAGS});
});

after(() => cleanUp({browser, server, data}));

async function open(device, query = '') {
  const context = await browser.newContext(device);
  const page = await context.newPage();
  page.on('pageerror', (error) => { throw error; });
  await page.goto(`${base}/traces/${BIG_TRACE}${query}`);
  await page.locator('.wf-row').first().waitFor();
  await page.locator('[data-trace-findings]').waitFor();
  return page;
}

/** Elements wider than the window, as "tag.class right-edge": none when the page fits. */
const overflow = (page) => page.evaluate(() => {
  const width = document.documentElement.clientWidth;
  return {scroll: document.documentElement.scrollWidth, width};
});

/** Every name in the waterfall is shown whole: no label is cut with an ellipsis. */
const cutLabels = (page) => page.locator('.wf-row:not(.fold) .label').evaluateAll((labels) =>
  labels.filter((l) => l.scrollWidth > l.clientWidth + 1).map((l) => l.textContent));

for (const [name, device] of [['390', PHONE], ['1440', LAPTOP]]) {
  test(`at ${name} px the page does not scroll sideways and the span names are whole`, async () => {
    const page = await open(device);
    await page.locator('[data-fold]').first().click();
    await page.keyboard.press('s');
    await page.locator('.wf-row.selected').waitFor();
    const {scroll, width} = await overflow(page);
    assert.ok(scroll <= width, `the page is ${scroll} px wide in a ${width} px window`);
    assert.deepEqual(await cutLabels(page), []);
    assert.equal(await page.locator('.wf-row.selected .label').textContent(), SLOW_SPAN);
    await page.screenshot({path: join(shots, `trace-${name}.png`)});
    await page.context().close();
  });
}

test('on a phone a tap opens the span panel as a sheet in view, the tapped row above it', async () => {
  const page = await open(PHONE);
  const stacked = await page.locator('.trace-view').getAttribute('class');
  assert.match(stacked, /\bstacked\b/, 'each row is its name over its bar');
  const panel = page.locator('.span-panel');
  assert.equal(await panel.evaluate((el) => getComputedStyle(el).visibility), 'hidden', 'no sheet before a tap');
  await page.locator('[data-fold]').first().tap();
  const row = page.locator('.wf-row:not(.fold)', {has: page.locator('.label:text-is("GET /inventory")')}).first();
  await row.locator('.label').tap();
  await page.locator('.span-panel.open h2').waitFor();
  assert.equal(await page.locator('.span-panel h2').textContent(), 'GET /inventory');
  await page.waitForFunction(() => getComputedStyle(document.querySelector('.span-panel')).transform === 'none');
  const sheet = await panel.boundingBox();
  const viewport = page.viewportSize();
  assert.ok(Math.abs(sheet.y + sheet.height - viewport.height) < 1, `the sheet sits on the bottom edge: ${JSON.stringify(sheet)}`);
  assert.ok(sheet.y >= viewport.height * 0.4, 'and leaves the top of the screen to the waterfall');
  const tapped = await page.locator('.wf-row.selected').boundingBox();
  const bar = await page.locator('header.top').boundingBox();
  assert.ok(tapped.y >= bar.y + bar.height - 1 && tapped.y + tapped.height <= sheet.y,
    `the tapped row ${JSON.stringify(tapped)} is between the top bar and the sheet`);
  const {scroll, width} = await overflow(page);
  assert.ok(scroll <= width, `the page is ${scroll} px wide in a ${width} px window`);
  await page.screenshot({path: join(shots, 'trace-390-span-sheet.png')});
  await page.locator('.sheet-close').tap();
  await page.waitForFunction(() => getComputedStyle(document.querySelector('.span-panel')).visibility === 'hidden');
  assert.equal(await page.locator('.wf-row.selected .label').textContent(), 'GET /inventory', 'closing keeps the selection');
  await page.context().close();
});

/** The text of an element as the lines it is drawn on. */
const drawnLines = (locator) => locator.evaluate((element) => {
  const range = document.createRange();
  const lines = [];
  let top = null, line = '';
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const box = range.getClientRects()[0];
      if (!box) continue;
      if (top !== null && Math.abs(box.top - top) > 2) { lines.push(line); line = ''; }
      top = box.top;
      line += node.data[i];
    }
  }
  return [...lines, line];
});

test('on a phone attribute keys wrap between words, and output of several lines shows as lines, as text', async () => {
  const page = await open(PHONE);
  await page.locator('[data-fold]').first().tap();
  await page.locator('.wf-row:not(.fold)', {has: page.locator('.label:text-is("load shard")')}).first().locator('.label').tap();
  const [longKey, stdoutKey] = Object.keys(LOADER_ATTRIBUTES);
  const key = page.locator('.span-panel table.attrs th', {hasText: 'shard_identifier'});
  await key.waitFor();
  assert.equal(await key.textContent(), longKey);
  const lines = await drawnLines(key);
  assert.ok(lines.length > 1, `the key wraps in a 390 px sheet: ${JSON.stringify(lines)}`);
  for (const line of lines.slice(0, -1)) assert.match(line, /[._/-]$/, `broken only after . _ / -: ${JSON.stringify(lines)}`);
  const output = page.locator('.span-panel table.attrs tr', {hasText: stdoutKey}).locator('td pre.text');
  // Lines, not a literal \n; the markup stays text, the override is shown as its escape.
  assert.equal(await output.textContent(), 'loading shard-0\n60 rows <b>read</b>\\u202egpj.exe\ndone');
  const drawn = (await drawnLines(output)).map((line) => line.replace(/\n$/, ''));
  assert.equal(drawn[0], 'loading shard-0', `each recorded line starts a line: ${JSON.stringify(drawn)}`);
  assert.equal(drawn.at(-1), 'done');
  assert.equal(drawn.join(''), 'loading shard-060 rows <b>read</b>\\u202egpj.exedone', 'the rest wraps to the sheet');
  assert.equal(await output.locator('b').count(), 0);
  await page.screenshot({path: join(shots, 'trace-390-attributes.png')});
  await page.context().close();
});

/** A finger dragged across `box` at half its height from `from` to `to` (fractions of its
 * width), as touch events: what a phone sends, not a mouse. */
async function swipe(page, box, from, to) {
  const cdp = await page.context().newCDPSession(page);
  const y = box.y + box.height / 2;
  const point = (f) => [{x: box.x + box.width * f, y}];
  await cdp.send('Input.dispatchTouchEvent', {type: 'touchStart', touchPoints: point(from)});
  for (let k = 1; k <= 8; k++) {
    await cdp.send('Input.dispatchTouchEvent', {type: 'touchMove', touchPoints: point(from + (to - from) * k / 8)});
  }
  await cdp.send('Input.dispatchTouchEvent', {type: 'touchEnd', touchPoints: []});
  await cdp.detach();
}

test('on a phone the findings, the jumps, the filter and the minimap are in reach, and a finger zooms', async () => {
  const page = await open(PHONE);
  const {width} = page.viewportSize();
  // Every control of the toolbar and the findings' summary lie inside the screen's width.
  const controls = page.locator('.trace-nav button, .trace-nav input, .trace-nav select, [data-trace-findings] > summary, [data-minimap]');
  for (const box of await controls.evaluateAll((els) => els.map((el) => {
    const r = el.getBoundingClientRect();
    return {what: el.textContent.trim() || el.getAttribute('aria-label') || el.tagName, left: r.left, right: r.right};
  }))) {
    assert.ok(box.left >= 0 && box.right <= width, `${box.what} is inside the ${width} px screen: ${JSON.stringify(box)}`);
  }
  assert.match(await page.locator('[data-trace-findings] > summary').textContent(), /^Findings about this trace \(\d+\)/);
  // A phone has no keys: the buttons do what s, e and p do.
  await page.locator('[data-jump="error"]').tap();
  await page.locator('.wf-row.selected.error').waitFor();
  assert.equal(await page.locator('[data-nav-info]').textContent(), `error: 1 of ${FAILING_SHARDS.length}`);
  await page.locator('.sheet-close').tap();
  await page.locator('[data-jump="slowest"]').tap();
  await page.locator('.span-panel.open h2').waitFor();
  assert.equal(await page.locator('.span-panel h2').textContent(), SLOW_SPAN);
  await page.locator('.sheet-close').tap();
  await page.locator('[data-min-duration]').fill('100ms');
  await page.locator('[data-min-duration]').press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.wf-row').length < 10);
  assert.equal(await page.locator('[data-nav-info]').textContent(), '6 of 3,363 spans shown');
  await page.locator('[data-min-duration]').fill('');
  await page.locator('[data-min-duration]').press('Enter');
  // A finger dragged across the minimap zooms to that time, as a mouse does.
  const map = await page.locator('[data-minimap]').boundingBox();
  await swipe(page, map, 0.1, 0.3);
  await page.locator('.trace-view.zoomed').waitFor();
  const [from, to] = new URL(page.url()).searchParams.get('zoom').split('-').map(Number);
  const whole = (await (await fetch(`${base}/api/v1/traces/${BIG_TRACE}/waterfall`)).json()).duration_ns;
  assert.ok(Math.abs(from / whole - 0.1) < 0.02 && Math.abs(to / whole - 0.3) < 0.02, `zoom=${from}-${to} of ${whole}`);
  const {scroll} = await overflow(page);
  assert.ok(scroll <= width, `the page is ${scroll} px wide in a ${width} px window`);
  // The time axis of the zoom is whole: its last tick ends inside the waterfall, not cut.
  const axis = await page.locator('.wf').boundingBox();
  for (const tick of await page.locator('.wf-ruler span').evaluateAll((spans) => spans.map((el) => {
    const r = el.getBoundingClientRect();
    return {text: el.textContent, left: r.left, right: r.right};
  }))) {
    assert.ok(tick.left >= axis.x && tick.right <= axis.x + axis.width, `the tick ${JSON.stringify(tick)} is inside ${JSON.stringify(axis)}`);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({path: join(shots, 'trace-390-navigation.png')});
  await page.locator('[data-zoom-out]').tap();
  await page.waitForFunction(() => !document.querySelector('.trace-view.zoomed'));
  await page.context().close();
});

// Every view at a phone's width (390×844) and a laptop's (1440×900): no page scrolls sideways
// (the document is never wider than the viewport), the navigation is reachable on the phone
// (behind the menu button), lists fold their least needed columns as the CLI's tables do, and
// every row opens what it names — by a click anywhere on it, by Enter after j/k from the first
// key press, and by a ctrl-click or a middle click into a new tab. Realistic data: the journal
// demo (20 traces), two `devtrace run` executions, the Claude Code sample project's sessions
// and a big generated trace (bench/web/make-trace.mjs, 1,701 spans).
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, existsSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, root, shots, startServe, openBrowser, cleanUp, cliOn, seedJournal} from './harness.mjs';

const sampleProject = join(root, 'tests/fixtures/claude-code/sample-project');
const BIG = 'b1'.repeat(16);
const WIDTHS = [{width: 390, height: 844}, {width: 1440, height: 900}];

let data, server, base, browser, page, routes, devtrace;

before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-layout-'));
  mkdirSync(shots, {recursive: true});
  devtrace = cliOn(data);
  seedJournal(devtrace);
  devtrace('import', 'claude-code', sampleProject);
  const big = join(data, 'big-trace.json');
  execFileSync(process.execPath, [join(root, 'bench/web/make-trace.mjs'), '1701', big]);
  devtrace('import', big);
  let info;
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  ({browser, page} = await openBrowser(WIDTHS[0]));
  const runs = JSON.parse(devtrace('runs', '--json'));
  const sessions = JSON.parse(devtrace('sessions', '--json'));
  const [demo] = JSON.parse(devtrace('ls', '--operation', 'journal.generate', '--limit', '1', '--json'));
  routes = {
    traces: '/traces',
    'traces-filtered': '/traces?status=error&operation=summary.generate',
    trace: `/traces/${demo.trace_id}`,
    'trace-big': `/traces/${BIG}`,
    operations: '/operations',
    operation: `/operations/${encodeURIComponent('journal.generate')}`,
    'operation-leaf': `/operations/${encodeURIComponent('SELECT row')}`,
    findings: '/findings?since=365d',
    compare: '/compare',
    'compare-runs': `/compare?run_a=${runs[1].trace_id}&run_b=${runs[0].trace_id}`,
    runs: '/runs',
    sessions: '/sessions',
    session: `/sessions/${sessions[0].trace_id}`,
    'session-compare': `/sessions/compare/${sessions[0].trace_id}/${sessions[1].trace_id}`,
  };
});

after(() => cleanUp({browser, server, data}));

/** Waits until the view has drawn (its loading notes gone), then for its layout to settle. */
async function settle() {
  await page.locator('#main h1').first().waitFor();
  await page.waitForFunction(() => !/Loading|Analysing|Comparing/.test(document.getElementById('main').textContent.slice(0, 4000)));
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** The elements wider than the viewport (named, for the message when the page overflows). */
const overflowing = () => page.evaluate(() => {
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > innerWidth + 0.5) wide.push(`${el.tagName.toLowerCase()}.${el.className} ${Math.round(box.right)}px`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth, wide: wide.slice(0, 8)};
});

for (const viewport of WIDTHS) {
  test(`no page scrolls sideways at ${viewport.width}×${viewport.height}`, async () => {
    await page.setViewportSize(viewport);
    const failures = [];
    for (const [name, path] of Object.entries(routes)) {
      await page.goto(`${base}${path}`);
      await settle();
      const {scrollWidth, innerWidth, wide} = await overflowing();
      if (scrollWidth > innerWidth) failures.push(`${path} is ${scrollWidth} px wide: ${wide.join(', ')}`);
      // A session's timeline starts on the first screen, not below its other sections.
      if (name === 'session') {
        const top = await page.locator('#timeline').evaluate((el) => el.getBoundingClientRect().top);
        if (top > viewport.height * 0.75) failures.push(`${path}: the timeline starts ${Math.round(top)} px down`);
      }
      await page.screenshot({path: join(shots, `layout-${viewport.width}-${name}.png`)});
    }
    assert.deepEqual(failures, [], `at ${viewport.width} px`);
  });
}

test('on a phone the navigation is behind the menu, and every view is reachable', async () => {
  await page.setViewportSize(WIDTHS[0]);
  await page.goto(`${base}/traces`);
  await settle();
  const nav = page.locator('#nav');
  assert.equal(await nav.isVisible(), false);
  const menu = page.getByRole('button', {name: 'Menu'});
  await menu.click();
  assert.equal(await menu.getAttribute('aria-expanded'), 'true');
  for (const link of await nav.locator('a').all()) {
    const box = await link.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= WIDTHS[0].width, `${await link.textContent()} is off-screen`);
  }
  await page.screenshot({path: join(shots, 'layout-390-menu.png')});
  await nav.getByRole('link', {name: 'Sessions'}).click();
  await page.waitForURL(`${base}/sessions`);
  assert.equal(await nav.isVisible(), false, 'the menu closes once a view is chosen');
});

test('lists fold their least needed columns on a phone and show them all at 1440', async () => {
  const shown = () => page.locator('table.sessions thead th:not(.folded)').allTextContents();
  await page.setViewportSize(WIDTHS[1]);
  await page.goto(`${base}/sessions`);
  await page.locator('table.sessions tbody tr').first().waitFor();
  await settle();
  const wide = await shown();
  // The title (the link), its findings and its cost are on screen at 1440.
  for (const name of ['Title', 'Findings', 'Est. cost', 'Tokens', 'Started']) assert.ok(wide.includes(name), `${name} in ${wide}`);
  for (const name of ['Title', 'Findings', 'Est. cost']) {
    const box = await page.locator('table.sessions thead th', {hasText: name}).first().boundingBox();
    assert.ok(box.x + box.width <= WIDTHS[1].width, `${name} is off-screen at 1440`);
  }
  await page.setViewportSize(WIDTHS[0]);
  await page.waitForFunction(() => document.querySelector('table.sessions').dataset.folded > 0);
  const narrow = await shown();
  assert.ok(narrow.includes('Title'), String(narrow));
  assert.ok(narrow.length < wide.length, `${narrow} at 390 against ${wide} at 1440`);
  // What folds first at 390 is what matters least: the session id before the title.
  assert.ok(!narrow.includes('Session'), String(narrow));
});

for (const viewport of WIDTHS) {
  test(`every row opens what it names at ${viewport.width} px`, async () => {
    await page.setViewportSize(viewport);
    // A click on the row (not on its operation's name) opens the trace.
    await page.goto(`${base}/traces`);
    const first = page.locator('table.traces tbody tr').first();
    await first.waitFor();
    const traceId = await first.getAttribute('data-id');
    await first.locator('td.num').first().click();
    await page.waitForURL(`${base}/traces/${traceId}`);
    // j from the first key press focuses the first row, the next j the second; Enter opens it.
    await page.goto(`${base}/traces`);
    await page.locator('table.traces tbody tr').first().waitFor();
    const second = await page.locator('table.traces tbody tr').nth(1).getAttribute('data-id');
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.id), second);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/traces/${second}`);
    // A ctrl-click and a middle click open the row's trace in a new tab, leaving the list.
    await page.goto(`${base}/traces`);
    await first.waitFor();
    for (const click of [{modifiers: ['Control']}, {button: 'middle'}]) {
      const [tab] = await Promise.all([page.context().waitForEvent('page'), first.locator('td.num').first().click(click)]);
      await tab.waitForURL(`${base}/traces/${traceId}`);
      await tab.close();
      assert.equal(page.url(), `${base}/traces`);
    }
    // A session's row opens the session; a run's row its trace; an operation's row the operation.
    for (const [list, path] of [['/sessions', '/sessions/'], ['/runs', '/traces/'], ['/operations', '/operations/']]) {
      await page.goto(`${base}${list}`);
      const row = page.locator('tbody[data-rows] tr').first();
      await row.waitFor();
      const href = await row.getAttribute('data-href');
      assert.ok(href.startsWith(path), href);
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Enter');
      await page.waitForURL(`${base}${href}`);
    }
  });
}

for (const size of WIDTHS) {
  test(`two traces ticked in the list open side by side in Compare at ${size.width} px`, async () => {
  await page.setViewportSize(size);
  await page.goto(`${base}/traces?operation=journal.generate`);
  const rows = page.locator('table.traces tbody tr');
  await rows.nth(1).waitFor();
  const [a, b] = [await rows.nth(0).getAttribute('data-id'), await rows.nth(1).getAttribute('data-id')];
  const compare = page.getByRole('button', {name: 'Compare the two ticked'});
  assert.equal(await compare.isDisabled(), true);
  await rows.nth(0).getByRole('checkbox').check();
  await rows.nth(1).getByRole('checkbox').check();
  // Ticking is not opening: the list stays.
  assert.equal(new URL(page.url()).pathname, '/traces');
  await compare.click();
  await page.waitForURL(`${base}/compare?a=${a}&b=${b}`);
  await page.locator('table.compare tbody tr').first().waitFor();
  await page.screenshot({path: join(shots, `compare-from-list-${size.width}.png`)});
  });
}

for (const size of WIDTHS) {
  test(`a session's page keeps its filter and entry in the URL and names the sub-agent of each step at ${size.width} px`, async () => {
  await page.setViewportSize(size);
  const [orchestrator] = JSON.parse(devtrace('sessions', '--json')).filter((s) => s.subagents > 0);
  const overview = JSON.parse(devtrace('session', 'show', orchestrator.trace_id, '--json'));
  const agents = new Map(overview.timeline.filter((e) => e.kind === 'agent').map((e) => [e.span_id, e.label]));
  const steps = overview.timeline.filter((e) => e.subagent);
  assert.ok(agents.size >= 2 && steps.length > 0, `${agents.size} sub-agents, ${steps.length} of their steps`);
  await page.goto(`${base}/sessions/${orchestrator.trace_id}`);
  await page.locator('li.entry').first().waitFor();
  // Every step of a sub-agent names it, whichever runs at the same time.
  for (const step of steps) {
    const tag = page.locator(`li.entry[data-span="${step.span_id}"] .agent-tag`);
    assert.equal(await tag.textContent(), `◆ ${agents.get(step.subagent)}`, step.span_id);
  }
  const mainSteps = overview.timeline.filter((e) => !e.subagent && e.kind !== 'turn');
  assert.equal(await page.locator(`li.entry[data-span="${mainSteps[0].span_id}"] .agent-tag`).count(), 0);
  // The filter and the selected entry are in the URL, and the URL brings them back.
  // j from the first key press selects the first entry.
  await page.keyboard.press('j');
  await page.locator('li.entry.current').waitFor();
  assert.equal(await page.locator('li.entry.current').getAttribute('data-span'), overview.timeline[0].span_id);
  await page.getByLabel('Filter the timeline').fill('Edit');
  await page.waitForURL(/[?&]q=Edit/);
  await page.locator('ol.timeline').focus();
  await page.keyboard.press('j');
  // The URL names an entry since the first j: wait for the one this j selected, among those
  // the filter shows (the first entry, hidden by it, would clear the filter when restored).
  await page.waitForFunction(() => {
    const current = document.querySelector('li.entry.current');
    return current && !current.hidden
      && new URL(location.href).searchParams.get('entry') === current.dataset.span;
  });
  const shared = page.url();
  const entry = new URL(shared).searchParams.get('entry');
  await page.goto(`${base}/traces`);
  await page.goto(shared);
  await page.locator('li.entry.current').waitFor();
  assert.equal(await page.getByLabel('Filter the timeline').inputValue(), 'Edit');
  assert.equal(await page.locator('li.entry.current').getAttribute('data-span'), entry);
  if (size.width === 1440) await page.screenshot({path: join(shots, 'session-subagents.png')});
});
}

test('an operation\'s page: runs apart, a chart with a time axis and one legend entry per line, a leaf in a sentence', async () => {
  await page.setViewportSize(WIDTHS[0]);
  await page.goto(`${base}/operations/${encodeURIComponent('SELECT row')}`);
  await page.getByRole('heading', {name: 'Where the time goes'}).waitFor();
  assert.equal(await page.locator('table.breakdown').count(), 0);
  await page.getByText('has no child spans in these runs').waitFor();
  await page.goto(`${base}/operations/journal.generate`);
  const runs = page.locator('table.op-runs tbody tr');
  await runs.first().waitFor();
  // Each run is a row of its own (no number running into the next), and opens its trace.
  const boxes = await runs.evaluateAll((trs) => trs.map((tr) => tr.getBoundingClientRect()));
  for (let i = 1; i < boxes.length; i++) assert.ok(boxes[i].top >= boxes[i - 1].bottom - 0.5);
  assert.match(await runs.first().getAttribute('data-href'), /^\/traces\/[0-9a-f]{32}\?span=[0-9a-f]{16}$/);
  assert.equal(await page.locator('.chart-legend .legend-item').count(), await page.locator('svg.chart polyline.line').count());
  await page.screenshot({path: join(shots, 'operation-390.png'), fullPage: true});
});

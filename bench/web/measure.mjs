// Times the web UI in headless Chromium (the machine's /usr/bin/chromium, driven by
// playwright-core from tests/web): how long a trace takes to open to an interactive
// waterfall, how long the traces list takes to load, and the same for the sessions list and
// one session's timeline.
//
// Usage: node measure.mjs trace    BASE_URL TRACE_ID [RUNS]
//        node measure.mjs list     BASE_URL [RUNS]
//        node measure.mjs sessions BASE_URL [RUNS]
//        node measure.mjs session  BASE_URL SESSION_ID [RUNS]
//
// "Interactive waterfall": from the start of navigation until the rows are drawn, the folded
// top-level repeats have been unfolded by a click (recomputing the visible rows of the whole
// tree), and a click on the first child row has selected it. "List loaded": from the start of navigation
// until the rows of the first page are in the table. "Sessions list loaded": until every row the
// API returns (up to 200) is in the table. "Session interactive": until every entry of the
// timeline is in the page and a key press (j) has made the first one current. Each run uses a
// fresh browser context
// (empty cache). Prints one JSON object with every run and the median.

import {chromium} from '../../tests/web/node_modules/playwright-core/index.mjs';

const [what, base, ...rest] = process.argv.slice(2);
const runs = Number((what === 'trace' || what === 'session' ? rest[1] : rest[0]) || 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-sync'],
});
const times = [];
const details = [];
for (let run = 0; run < runs; run++) {
  const context = await browser.newContext({viewport: {width: 1400, height: 900}});
  const page = await context.newPage();
  if (what === 'trace') {
    const id = rest[0];
    const start = Date.now();
    await page.goto(`${base}/traces/${id}`, {waitUntil: 'commit'});
    await page.locator('.wf-row').first().waitFor({timeout: 60000});
    const drawn = Date.now() - start;
    // Unfold the top-level repeats (if folded), then select the first child row.
    const fold = page.locator('.wf-row.fold').first();
    if (await fold.count()) await fold.click();
    const row = page.locator('.wf-row[data-row="1"]');
    await row.locator('.label').click();
    await page.locator('.wf-row.selected[data-row="1"]').waitFor();
    const interactive = Date.now() - start;
    await page.locator('.span-panel h2').waitFor();
    const panel = Date.now() - start;
    // The findings about the trace arrive after the waterfall (the detectors over the window).
    await page.locator('[data-trace-findings]').waitFor({timeout: 60000});
    const findings = Date.now() - start;
    // Scrolling to the end redraws only the rows in view.
    const scrollStart = Date.now();
    await page.locator('.wf-scroll').evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForFunction(() => document.querySelectorAll('.wf-row').length > 0 &&
      parseFloat(document.querySelector('.wf-rows').lastElementChild.style.transform.slice('translateY('.length)) > 1000);
    const scrolled = Date.now() - scrollStart;
    const rendered = await page.locator('.wf-row').count();
    times.push(interactive);
    details.push({drawn_ms: drawn, interactive_ms: interactive, span_panel_ms: panel, findings_ms: findings, scroll_to_end_ms: scrolled, rows_in_dom: rendered});
  } else if (what === 'sessions') {
    const start = Date.now();
    await page.goto(`${base}/sessions`, {waitUntil: 'commit'});
    const status = page.locator('p.note', {hasText: /sessions?, newest first/});
    await status.waitFor({timeout: 60000});
    const rows = await page.locator('table.sessions tbody tr').count();
    const loaded = Date.now() - start;
    times.push(loaded);
    details.push({loaded_ms: loaded, rows, status: await status.textContent()});
  } else if (what === 'session') {
    const start = Date.now();
    await page.goto(`${base}/sessions/${rest[0]}`, {waitUntil: 'commit'});
    await page.locator('ol.timeline > li.entry').first().waitFor({timeout: 60000});
    const drawn = Date.now() - start;
    await page.locator('ol.timeline').focus();
    await page.keyboard.press('j');
    await page.locator('li.entry.current').waitFor();
    const interactive = Date.now() - start;
    const entries = await page.locator('ol.timeline > li.entry').count();
    const nodes = await page.evaluate(() => document.getElementsByTagName('*').length);
    times.push(interactive);
    details.push({drawn_ms: drawn, interactive_ms: interactive, entries, dom_elements: nodes});
  } else {
    const start = Date.now();
    await page.goto(`${base}/traces`, {waitUntil: 'commit'});
    await page.locator('table.traces tbody tr').nth(49).waitFor({timeout: 60000});
    const loaded = Date.now() - start;
    const text = await page.locator('p.note').first().textContent();
    times.push(loaded);
    details.push({loaded_ms: loaded, status: text});
  }
  await context.close();
}
await browser.close();
const sorted = [...times].sort((a, b) => a - b);
console.log(JSON.stringify({what, runs: details, median_ms: sorted[Math.floor(sorted.length / 2)], max_ms: sorted[sorted.length - 1]}, null, 1));

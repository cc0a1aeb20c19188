// One source of truth for findings: /findings and an operation's page read the same findings
// (the same detectors over the same traces of the same window, devtrace_query's
// findings_list), so a finding reads the same on both — its title, its impact and score, its
// evidence — and both say which window they read. A recurring error says when it was first and
// last seen as clock times, never as "N min ago" measured from whichever traces a page read.
// Data: the journal demo with its fixed variant (20 traces, some failing on a timeout) and two
// `devtrace run` executions of it: 22 runs of journal.generate, more than the 20 an operation's
// page profiles, so a page that read its findings from its own runs would read other traces.
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdtempSync, existsSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, shots, startServe, openBrowser, cleanUp, cliOn, seedJournal} from './harness.mjs';

let data, server, base, browser, page;

before(async () => {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-findings-'));
  mkdirSync(shots, {recursive: true});
  seedJournal(cliOn(data));
  let info;
  ({server, info} = await startServe(data, ['--data', data]));
  base = `http://${info.api}`;
  ({browser, page} = await openBrowser({width: 1440, height: 900}));
});

after(() => cleanUp({browser, server, data}));

/** The finding cards of the page: title, impact line and evidence links. */
const cards = () => page.locator('.finding').evaluateAll((items) => items.map((li) => ({
  title: li.querySelector('h3').textContent,
  meta: li.querySelector('.meta').textContent,
  evidence: [...li.querySelectorAll('.evidence a')].map((a) => a.getAttribute('href')),
})));

for (const size of [{width: 1440, height: 900}, {width: 390, height: 844}]) {
test(`a finding reads the same on /findings and on its operation's page, which say their window, at ${size.width} px`, async () => {
  await page.setViewportSize(size);
  await page.goto(`${base}/findings`);
  await page.locator('.finding').first().waitFor();
  const status = await page.locator('#main p.note[role], #main > p.note').allTextContents();
  assert.ok(status.some((t) => /across \d+ traces \(the (last hour|hour before the newest trace)\)/.test(t)), status.join('\n'));
  const listed = await cards();
  // The demo's timeout recurs: its times are clock times, the same on every page and at any time.
  const recurring = listed.find((c) => /occurrence/.test(c.title));
  assert.ok(recurring, listed.map((c) => c.title).join('\n'));
  assert.match(recurring.title, /\(first \d{4}-\d\d-\d\d \d\d:\d\d UTC, latest (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC\)/);
  assert.doesNotMatch(listed.map((c) => c.title).join('\n'), / ago\b/);
  await page.screenshot({path: join(shots, `findings-window-${size.width}.png`)});

  let compared = 0;
  for (const operation of ['journal.generate', 'summary.generate']) {
    await page.goto(`${base}/operations/${encodeURIComponent(operation)}`);
    await page.getByRole('heading', {name: /^Findings \(\d+\)$/}).waitFor();
    const scope = await page.locator('.findings-window').textContent();
    assert.match(scope, /traces? in the (last hour|hour before the newest trace)/);
    for (const card of await cards()) {
      // Numbered by each page's own list; everything else is the same finding, word for word.
      const same = listed.find((c) => c.title === card.title);
      assert.ok(same, `${operation}'s page shows "${card.title}", which /findings does not`);
      assert.equal(card.meta, same.meta, card.title);
      assert.deepEqual(card.evidence, same.evidence, card.title);
      compared++;
    }
  }
  assert.ok(compared >= 2, `${compared} findings compared`);
  // Every finding /findings lists about journal.generate or one of its children is on its page.
  await page.goto(`${base}/operations/journal.generate`);
  await page.getByRole('heading', {name: /^Findings \(\d+\)$/}).waitFor();
  const children = await page.locator('table.breakdown tbody tr td:first-child a').allTextContents();
  const onPage = new Set((await cards()).map((c) => c.title));
  const about = (c) => ['journal.generate', ...children].some((name) => c.meta.includes(` on ${name} ·`));
  for (const card of listed.filter(about)) assert.ok(onPage.has(card.title), `"${card.title}" is missing from the operation's page`);
});
}

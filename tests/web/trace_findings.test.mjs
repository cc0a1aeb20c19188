// The findings about a trace on its page (issue 47): the same findings, ranks and words as
// the findings list (/findings, GET /api/v1/findings: one query, one window), their evidence
// tagged in the waterfall with a legend, and a finding's evidence link opening the trace with a
// banner naming the finding.
//
// Run with scripts/test, or: cd tests/web && npm ci && DEVTRACE_BIN=../../target/debug/devtrace npm test

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {join} from 'node:path';
import {shots, openBrowser, cleanUp} from './harness.mjs';
import {serveBigTrace, BIG_TRACE} from './bigtrace.mjs';

let data, server, base, browser, page, listed, phone;

before(async () => {
  ({data, server, base} = await serveBigTrace('trace-findings'));
  // What the findings list says, in its default window.
  const list = await (await fetch(`${base}/api/v1/findings?limit=500`)).json();
  listed = list.findings.map((f, k) => ({...f, rank: k + 1}))
    .filter((f) => f.evidence.some((e) => e.trace_id === BIG_TRACE));
  assert.equal(list.window.description, 'the last hour');
  assert.ok(listed.length >= 2, `the batch has findings: ${JSON.stringify(list.findings.map((f) => f.kind))}`);
  ({browser, page} = await openBrowser({width: 1440, height: 900}));
  phone = await openBrowser({width: 390, height: 844});
});

after(async () => {
  await phone?.browser.close();
  await cleanUp({browser, server, data});
});

// The same tests on a phone's 390 px (issue 47: every item at both widths).
const atBothWidths = (name, body) => {
  test(name, () => body(page));
  test(`${name} (390 px)`, () => body(phone.page));
};

const openTrace = async (page, query = '') => {
  await page.goto(`${base}/traces/${BIG_TRACE}${query}`);
  await page.locator('[data-trace-findings]').waitFor();
};

atBothWidths('the trace page lists the findings about the trace as the findings list ranks and words them', async (page) => {
  await openTrace(page);
  const summary = await page.locator('[data-trace-findings] > summary').textContent();
  assert.match(summary, new RegExp(`^Findings about this trace \\(${listed.length}\\) · ranked among the last hour: \\d+ findings? across 1 trace$`));
  const items = page.locator('ol.trace-finding-list > li');
  assert.equal(await items.count(), listed.length);
  for (const [k, f] of listed.entries()) {
    const item = items.nth(k);
    assert.equal(await item.getAttribute('data-finding'), f.fingerprint);
    assert.equal(await item.locator('.finding-tag').textContent(), `#${f.rank}`);
    assert.equal(await item.locator('strong').textContent(), f.title);
    assert.ok((await item.textContent()).includes(f.impact_text), `the list's words: ${f.impact_text}`);
  }
  await page.screenshot({path: join(shots, `trace-findings-${page.viewportSize().width}.png`)});
});

atBothWidths('each finding\'s evidence is tagged with its rank in the waterfall, the folded runs included', async (page) => {
  await openTrace(page);
  // Every evidence span of the first finding is a "process shard", folded into one row: the
  // folded row carries the tag, and so does every shard once unfolded.
  const first = listed[0];
  const folded = page.locator('.wf-row.fold', {hasText: 'process shard'});
  assert.ok((await folded.locator('.finding-tag').allTextContents()).includes(`#${first.rank}`));
  const count = first.evidence.find((e) => e.trace_id === BIG_TRACE).span_ids.length;
  assert.ok((await page.locator('ol.trace-finding-list > li').first().textContent())
    .includes(`${count} spans of its evidence tagged #${first.rank} in the waterfall`));
  await folded.locator('[data-fold]').click();
  const shard = page.locator('.wf-row', {has: page.locator('.label:text-is("process shard")')}).first();
  assert.ok((await shard.locator('.finding-tag').allTextContents()).includes(`#${first.rank}`));
  assert.match(await shard.locator(`[data-finding-tag="${first.rank}"]`).getAttribute('title'), /^evidence of finding #\d+: /);
  assert.ok((await page.locator('.legend').textContent()).includes('#nevidence of finding n'));
});

atBothWidths('an evidence link from the findings list opens the trace with a banner naming the finding', async (page) => {
  await page.goto(`${base}/findings`);
  const link = page.locator(`a[href^="/traces/${BIG_TRACE}"][href*="mark="]`).first();
  await link.waitFor();
  const href = await link.getAttribute('href');
  await link.click();
  const banner = page.locator('[data-finding-banner]');
  await banner.waitFor();
  const marked = new URL(href, base).searchParams.get('mark').split(',');
  const named = listed.find((f) => f.evidence.some((e) => e.trace_id === BIG_TRACE && marked.every((s) => e.span_ids.includes(s))));
  assert.equal(await banner.getAttribute('data-finding-banner'), named.fingerprint);
  assert.ok((await banner.textContent()).includes(`Marked: the evidence of ${named.title}`));
  assert.ok(await page.locator('.wf-row.mark').count() >= 1, 'the marked spans are highlighted');
  if (page.viewportSize().width === 1440) await page.screenshot({path: join(shots, 'trace-finding-banner.png')});
});

atBothWidths('finding= names a finding outright; marks that are no finding\'s evidence say so', async (page) => {
  const last = listed[listed.length - 1];
  await openTrace(page, `?finding=${last.fingerprint}`);
  await page.locator('[data-finding-banner]').waitFor();
  assert.equal(await page.locator('[data-finding-banner]').getAttribute('data-finding-banner'), last.fingerprint);
  assert.ok(await page.locator('.wf-row.mark').count() >= 1, 'its evidence is highlighted');
  // A span no finding names: the link marked it, and the banner says no finding did.
  const wf = await (await fetch(`${base}/api/v1/traces/${BIG_TRACE}/waterfall`)).json();
  const plain = wf.span_id[wf.strings.indexOf('cache lookup') >= 0 ? wf.name.indexOf(wf.strings.indexOf('cache lookup')) : 1];
  await openTrace(page, `?span=${plain}&mark=${plain}`);
  await page.locator('[data-finding-banner]').waitFor();
  assert.equal(await page.locator('[data-finding-banner]').textContent(),
    '1 span marked by the link (no finding about this trace has them as its evidence now)');
});

// The web UI on a team server: `devtrace serve` on PostgreSQL (the test server named by
// DEVTRACE_TEST_POSTGRES, in a schema of its own), the journal demo written to project "web",
// driven by Playwright in Debian's Chromium. The UI asks for a token (login page), keeps it in
// an HttpOnly cookie, shows the project, lists and opens the project's traces, and an admin
// switches between projects.
//
// Without DEVTRACE_TEST_POSTGRES the tests are skipped (scripts/test starts a server; under CI
// a missing server is a failure).

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, existsSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, shots, waitFor, startServe, openBrowser, cleanUp} from './harness.mjs';

const POSTGRES = (process.env.DEVTRACE_TEST_POSTGRES || '').trim();
const CI = !['', 'false'].includes(process.env.CI || '');
const skip = POSTGRES ? false : 'DEVTRACE_TEST_POSTGRES is not set: the team server UI tests did not run';
if (!POSTGRES && CI) throw new Error('CI is set but DEVTRACE_TEST_POSTGRES is not: start a server with scripts/postgres-test-server');

let data, store, server, base, browser, page, readToken, adminToken;

function devtrace(...args) {
  return execFileSync(bin, [...args, '--store', store, '--data', data], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});
}

function token(project, scope, name) {
  return JSON.parse(devtrace('token', 'create', '--project', project, '--scope', scope, '--name', name, '--json')).token;
}


before(async () => {
  if (skip) return;
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  data = mkdtempSync(join(tmpdir(), 'devtrace-web-team-'));
  mkdirSync(shots, {recursive: true});
  const schema = `web_${process.pid}_${Date.now()}`;
  execFileSync('psql', [POSTGRES, '-q', '-v', 'ON_ERROR_STOP=1', '-c', `CREATE SCHEMA ${schema}`]);
  store = `${POSTGRES}?options=-csearch_path%3D${schema}`;
  devtrace('--project', 'web', 'demo');
  readToken = token('web', 'read', 'browser');
  adminToken = token('default', 'admin', 'admin');
  let info;
  ({server, info} = await startServe(data, ['--store', store, '--data', data], 30000));
  base = `http://${info.api}`;
  ({browser, page} = await openBrowser({width: 1400, height: 900}));
});

after(() => cleanUp({browser, server, data}));

const rows = () => page.locator('table.traces tbody tr');

test('signing in with a token shows the project, its traces and one trace', {skip}, async () => {
  await page.goto(`${base}/traces`);
  await page.waitForURL(`${base}/login?next=/traces`);
  await page.getByRole('heading', {name: 'Sign in'}).waitFor();
  // A token that is not one: the page says why and keeps no cookie.
  await page.getByLabel('Token').fill('dtk_not-a-token');
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByText('not a devtrace token').waitFor();
  assert.deepEqual((await page.context().cookies()).filter((c) => c.name === 'devtrace_token'), []);
  await page.screenshot({path: join(shots, 'team-login.png')});

  await page.getByLabel('Token').fill(readToken);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.waitForURL(`${base}/traces`);
  const cookie = (await page.context().cookies()).find((c) => c.name === 'devtrace_token');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie.includes('devtrace_token')), false, 'scripts cannot read it');
  await page.locator('#project', {hasText: 'web'}).waitFor();
  // The ten runs of the demo, from PostgreSQL.
  await page.getByText('10 traces shown, newest first.').waitFor();
  assert.equal(await rows().count(), 10);
  await page.screenshot({path: join(shots, 'team-traces.png')});
  await rows().first().locator('td:last-child a').click();
  await page.locator('.wf-row', {hasText: 'summary.generate'}).first().waitFor();
  await page.screenshot({path: join(shots, 'team-trace.png')});

  // Signing out removes the cookie; the UI asks for a token again.
  await page.getByRole('button', {name: 'Sign out'}).click();
  await page.waitForURL(`${base}/login`);
  await page.goto(`${base}/sessions`);
  await page.waitForURL(`${base}/login?next=/sessions`);
});

test('an admin switches between projects', {skip}, async () => {
  await page.goto(`${base}/login?next=/traces`);
  await page.getByLabel('Token').fill(adminToken);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.waitForURL(`${base}/traces`);
  // The admin's own project is empty; the switcher lists every project.
  await page.getByText('No traces').first().waitFor();
  const options = await page.locator('select#project option').allTextContents();
  assert.deepEqual(options, ['default', 'web']);
  await page.locator('select#project').selectOption('web');
  await page.waitForLoadState('load');
  await page.getByText('10 traces shown, newest first.').waitFor();
  assert.equal(await page.locator('select#project').inputValue(), 'web');
});

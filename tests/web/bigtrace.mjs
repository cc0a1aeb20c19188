// A big trace for the trace page's tests, as OTLP/JSON: a nightly batch over SHARDS shards run
// one after another, each loading its rows one query at a time (an N+1 the waterfall folds),
// transforming them in ten compute steps with a cache lookup each, and calling an inventory
// service. Three of the inventory calls fail. One shard's pricing call waits 900 ms for a lock,
// five levels down: the span a person opening this trace is looking for. 40 shards are
// 3,363 spans. Its start is `agoMs` before now, so the default findings window holds it.


import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, mkdirSync, existsSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {bin, shots, startServe} from './harness.mjs';

export const BIG_TRACE = 'a7'.repeat(16);
export const SLOW_SPAN = 'wait for pricing lock';
export const SLOW_SHARD = 27;
export const FAILING_SHARDS = [3, 19, 33];
/** The first shard's loader records a long key and its output: lines, and text that must stay
 * text (markup, a right-to-left override). */
export const LOADER_ATTRIBUTES = {
  'loader.partitioning.shard_identifier_of_the_source_table': 'shard-0',
  'process.stdout': 'loading shard-0\n60 rows <b>read</b>\u202Egpj.exe\ndone\n',
};

export function bigTrace({shards = 40, agoMs = 60_000, traceId = BIG_TRACE} = {}) {
  const t0 = BigInt(Date.now() - agoMs) * 1_000_000n;
  const at = (ms) => String(t0 + BigInt(Math.round(ms * 1e6)));
  let next = 1;
  const spans = [];
  const add = (name, parent, startMs, endMs, {attributes = {}, error = false, kind = 1} = {}) => {
    const spanId = (next++).toString(16).padStart(16, '0');
    spans.push({traceId, spanId, parentSpanId: parent || '', name, kind,
      startTimeUnixNano: at(startMs), endTimeUnixNano: at(endMs),
      attributes: Object.entries(attributes).map(([key, v]) => ({key, value: {stringValue: String(v)}})),
      status: error ? {code: 2, message: 'inventory answered 503'} : {}});
    return spanId;
  };
  let clock = 0;
  const shardSpans = [];
  const root = add('nightly.batch', '', 0, 1, {attributes: {'batch.shards': shards}});
  for (let k = 0; k < shards; k++) {
    const start = clock;
    const slow = k === SLOW_SHARD;
    const end = start + (slow ? 950 : 25);
    const shard = add('process shard', root, start, end, {attributes: {'shard.id': `shard-${k}`}});
    shardSpans.push(shard);
    add('load shard', shard, start, start + 1, {attributes: {'db.system': 'postgresql', 'db.statement': 'SELECT * FROM shards WHERE id = $1',
      ...(k === 0 ? LOADER_ATTRIBUTES : {})}, kind: 3});
    for (let r = 0; r < 60; r++) {
      add('SELECT row', shard, start + 1 + r * 0.2, start + 1.15 + r * 0.2,
        {attributes: {'db.system': 'postgresql', 'db.statement': 'SELECT * FROM rows WHERE shard = $1 AND n = $2'}, kind: 3});
    }
    const transformStart = start + 13;
    const transform = add('transform', shard, transformStart, end - 4);
    for (let s = 0; s < 10; s++) {
      const stepStart = transformStart + s * 0.7;
      const stepEnd = slow && s === 5 ? stepStart + 920 : stepStart + 0.6;
      const step = add('compute step', transform, stepStart, stepEnd, {attributes: {'step.n': s}});
      add('cache lookup', step, stepStart, stepStart + 0.05, {attributes: {'devtrace.cache.hit': 'false'}});
      if (slow && s === 5) {
        const pricing = add('call pricing', step, stepStart + 0.1, stepStart + 915);
        add(SLOW_SPAN, pricing, stepStart + 5, stepStart + 905);
      }
    }
    add('GET /inventory', shard, end - 3.5, end - 0.5, {error: FAILING_SHARDS.includes(k), kind: 3,
      attributes: {'http.request.method': 'GET', 'url.full': 'http://inventory/items'}});
    clock = end + 0.2;
  }
  spans[0].endTimeUnixNano = at(clock);
  return {resourceSpans: [{resource: {attributes: [{key: 'service.name', value: {stringValue: 'batch'}}]},
    scopeSpans: [{scope: {name: 'bigtrace'}, spans}]}]};
}

/** A `devtrace serve` on a fresh data directory holding the big trace (imported with the CLI):
 * `{data, server, base}` for a test file's `before`. */
export async function serveBigTrace(name) {
  assert.ok(existsSync(bin), `${bin} is missing: build it with cargo build -p devtrace-cli`);
  mkdirSync(shots, {recursive: true});
  const data = mkdtempSync(join(tmpdir(), `devtrace-web-${name}-`));
  const file = join(data, 'big.json');
  writeFileSync(file, JSON.stringify(bigTrace()));
  execFileSync(bin, ['--data', data, 'import', file], {encoding: 'utf8'});
  const {server, info} = await startServe(data, ['--data', data]);
  return {data, server, base: `http://${info.api}`};
}

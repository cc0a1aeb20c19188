// Writes one large trace as OTLP/JSON for the UI benchmark: a batch job over ITEMS items, each
// loading, querying rows one by one (an N+1 the UI folds), transforming with nested steps, and
// calling an HTTP service; one item in 50 fails. Spans = 1 + ITEMS × 100.
//
// With SHAPE=flat: one root and SPANS − 1 direct children (alternating SELECT x, SELECT x, GET y,
// so nothing folds), the worst case for per-parent work such as the critical path.
//
// Usage: [SHAPE=flat] node make-trace.mjs SPANS OUT.json   (nested: SPANS rounded down to
// 1 + a multiple of 100)

import {writeFileSync} from 'node:fs';

const spans = Number(process.argv[2] || 50001);
const out = process.argv[3] || 'big-trace.json';
const items = Math.max(1, Math.floor((spans - 1) / 100));
const traceId = 'b1'.repeat(16);
let next = 1;
const spanId = () => (next++).toString(16).padStart(16, '0');
const t0 = BigInt(Date.now()) * 1000000n - 3600n * 1000000000n;
const ns = (ms) => t0 + BigInt(Math.round(ms * 1e6));
const list = [];
const add = (name, parent, startMs, endMs, attrs = {}, extra = {}) => {
  const id = spanId();
  list.push({
    traceId, spanId: id, parentSpanId: parent || '', name, kind: extra.kind || 1,
    startTimeUnixNano: String(ns(startMs)), endTimeUnixNano: String(ns(endMs)),
    attributes: Object.entries(attrs).map(([key, v]) => ({key, value: typeof v === 'number' ? {intValue: String(v)} : {stringValue: v}})),
    status: extra.error ? {code: 2, message: 'upstream returned 503'} : {},
    events: extra.events || [],
  });
  return id;
};

if (process.env.SHAPE === 'flat') {
  const root = add('flat.root', '', 0, spans * 0.1);
  for (let i = 1; i < spans; i++) add(i % 3 ? 'SELECT x' : 'GET y', root, i * 0.1, i * 0.1 + 0.09, {}, {kind: 3});
}
const root = process.env.SHAPE === 'flat' ? null : add('batch.run', '', 0, items * 12 + 5, {'batch.items': items});
for (let i = 0; root && i < items; i++) {
  const start = i * 12;
  const item = add('process item', root, start, start + 11.5, {'item.id': `item-${i}`});
  add('load item', item, start, start + 0.5, {'db.system': 'postgresql', 'db.statement': 'SELECT * FROM items WHERE id = $1'});
  for (let k = 0; k < 60; k++) {
    add('SELECT row', item, start + 0.5 + k * 0.1, start + 0.58 + k * 0.1,
      {'db.system': 'postgresql', 'db.statement': 'SELECT * FROM rows WHERE item_id = $1 AND n = $2'});
  }
  const transform = add('transform', item, start + 6.5, start + 10);
  for (let k = 0; k < 18; k++) {
    const step = add('compute step', transform, start + 6.5 + k * 0.19, start + 6.65 + k * 0.19, {'step.n': k});
    if (k % 6 === 0) add('cache lookup', step, start + 6.5 + k * 0.19, start + 6.52 + k * 0.19, {'devtrace.cache.hit': 'false'});
  }
  const failed = i % 50 === 49;
  add('POST /enrich', item, start + 10, start + 11.5, {'http.request.method': 'POST', 'url.full': 'http://enricher/enrich'},
    {kind: 3, error: failed, events: failed ? [{name: 'exception', timeUnixNano: String(ns(start + 11.4)),
      attributes: [{key: 'exception.type', value: {stringValue: 'HTTPError'}}, {key: 'exception.message', value: {stringValue: '503 Service Unavailable'}}]}] : []});
  while (list.length < 1 + (i + 1) * 100) add('audit', item, start + 11.5, start + 11.5, {});
}
const doc = {resourceSpans: [{resource: {attributes: [{key: 'service.name', value: {stringValue: 'batch'}}]},
  scopeSpans: [{scope: {name: 'bench'}, spans: list}]}]};
writeFileSync(out, JSON.stringify(doc));
console.log(`${out}: trace ${traceId}, ${list.length} spans`);

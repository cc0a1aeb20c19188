// Small DOM and formatting helpers shared by every view. No framework: views build elements
// with h() and replace what they own.

// Recorded text is data. textContent keeps it from being HTML; these keep it from disguising
// itself: a control character, a bidi override or isolate (U+202E would show "fdp.exe" as
// "exe.pdf"), a zero-width character or a line separator is shown as an escape, the same
// escapes the CLI, REST and MCP use (devtrace_model::recorded). Backticks stay as they are:
// nothing in a page gives them a meaning.
const DANGEROUS = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const NAMED = {'\n': '\\n', '\r': '\\r', '\t': '\\t'};
const escapeChar = (c) => NAMED[c] || `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Recorded text on one line (a name, a key, a value, a message): every dangerous character,
 * line breaks included, shown as an escape. */
export function escaped(text) {
  return String(text).replace(DANGEROUS, escapeChar);
}

/** Recorded text shown as lines (an output, a diff, a stack trace in a <pre>): the same, but
 * line feeds and tabs are kept. */
export function escapedBlock(text) {
  return String(text).replace(DANGEROUS, (c) => (c === '\n' || c === '\t' ? c : escapeChar(c)));
}

/** The attributes a page shows as text (the rest, like href and value, are used as they are). */
const SHOWN_ATTRIBUTES = new Set(['title', 'aria-label', 'placeholder', 'alt']);

/** Creates an element: h('a', {href: '/x', class: 'row'}, 'text', child, [more]). Every string
 * it is given goes through escapedBlock, so a view that forgets to escape recorded text still
 * shows no raw control, bidi or separator character (views use escaped() for names, which also
 * escapes line breaks). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = escapedBlock(value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, SHOWN_ATTRIBUTES.has(key) ? escapedBlock(value) : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : escapedBlock(child));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
/** Creates an SVG element with attributes. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, SHOWN_ATTRIBUTES.has(key) ? escapedBlock(value) : value);
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

/** "1.23 s", "45.6 ms", "789 µs", "12 ns", "2.5 min", "2 h 5 min", "4 d 9 h" — as the CLI
 * prints them (devtrace_analyze::finding::human_duration). */
/** A mean duration, with successes and failures apart when any failed (`by`: the JSON's
 * `by_outcome`, as devtrace_analyze::outcome says it): never one mean of both. */
export function meanByOutcome(mean, by) {
  if (!by) return duration(mean);
  if (!by.ok.count) return `${duration(by.failed.mean)} (all ${by.failed.count} failed)`;
  return `${duration(by.ok.mean)} when it succeeds, ${duration(by.failed.mean)} when it fails (${by.failed.count} of ${by.ok.count + by.failed.count})`;
}

export function duration(ns) {
  ns = Number(ns);
  if (!Number.isFinite(ns)) return '–';
  const minutes = Math.floor((ns + 30e9) / 60e9);
  if (minutes >= 24 * 60) {
    const hours = Math.floor((ns + 1800e9) / 3600e9);
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }
  if (minutes >= 60) return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  if (ns >= 60e9) return `${(ns / 60e9).toFixed(1)} min`;
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(0)} µs`;
  return `${Math.round(ns)} ns`;
}

/** A Unix-nanosecond instant as local "YYYY-MM-DD HH:MM:SS". */
export function time(nanos) {
  const d = new Date(Number(nanos) / 1e6);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "3 min ago" */
export function ago(nanos) {
  const seconds = (Date.now() - Number(nanos) / 1e6) / 1000;
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function percent(share) {
  return `${(share * 100).toFixed(share < 0.1 ? 1 : 0)} %`;
}

/** Token counts, one way on every page: "950", "6.1k", "52k", "3.8M" (every count from a
 * thousand up in k or M, so a column of them reads at a glance; the exact count is in the
 * cell's title where a page gives it). */
export function tokens(n) {
  n = Number(n) || 0;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.floor(n / 1e3)}k`;
  if (n >= 1e3) return `${(Math.floor(n / 100) / 10).toFixed(1)}k`;
  return String(n);
}

/** An exact count with thousands separators, as the CLI prints it: "54,050". */
export function count(n) {
  return Math.round(Number(n) || 0).toLocaleString('en-US');
}

/** An estimated cost as the CLI prints it (devtrace_analyze::pricing::format_dollars):
 * "$1,234", "$12.34", "$0.558", "$0.0075". */
export function dollars(usd) {
  usd = Number(usd);
  if (usd >= 1000) return `$${count(usd)}`;
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd >= 0.01) return `$${usd.toFixed(3)}`;
  return `$${usd.toFixed(4)}`;
}

/** A size in bytes: "812 B", "5.2 kB", "1.3 MB". */
export function bytes(n) {
  n = Number(n) || 0;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/** "1 match", "40 matches", "2 entries", "3 spans": a count and its noun, the noun's plural
 * by the English rule unless `many` gives it. */
export function plural(n, word, many = pluralOf(word)) {
  return `${n.toLocaleString()} ${n === 1 ? word : many}`;
}

function pluralOf(word) {
  if (/(s|x|z|ch|sh)$/.test(word)) return `${word}es`;
  if (/[^aeiou]y$/.test(word)) return `${word.slice(0, -1)}ies`;
  return `${word}s`;
}

/** A dotted name (an attribute key like `gen_ai.usage.input_tokens`, an operation) that may
 * wrap only after a dot, an underscore, a slash or a dash, not in the middle of a word. */
export function breakable(key) {
  const parts = escaped(key).split(/(?<=[._/-])/);
  const out = document.createDocumentFragment();
  parts.forEach((part, i) => { if (i) out.append(document.createElement('wbr')); out.append(part); });
  return out;
}

/** Links inside the app: same-origin paths handled by the router. */
export function link(href, ...children) {
  return h('a', {href}, ...children);
}

export const traceHref = (id, span) => `/traces/${id}${span ? `?span=${span}` : ''}`;
export const sessionHref = (id, entry) => `/sessions/${id}${entry ? `?entry=${entry}` : ''}`;
export const compareSessionsHref = (a, b) => `/sessions/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
export const operationHref = (name, {service, kind} = {}) => {
  const query = new URLSearchParams();
  if (service) query.set('service', service);
  if (kind) query.set('kind', kind);
  const rest = query.toString();
  return `/operations/${encodeURIComponent(name)}${rest ? `?${rest}` : ''}`;
};

/** A sparkline of values as an inline SVG polyline. */
export function sparkline(values, {width = 90, height = 18, label} = {}) {
  const svg = s('svg', {width, height, viewBox: `0 0 ${width} ${height}`, class: 'spark', role: 'img',
    'aria-label': label || 'recent durations'});
  if (!values || values.length < 2) return svg;
  const max = Math.max(...values), min = Math.min(...values);
  const span = max - min || 1;
  const points = values.map((v, i) =>
    `${(i / (values.length - 1) * (width - 2) + 1).toFixed(1)},${(height - 2 - (v - min) / span * (height - 4)).toFixed(1)}`);
  svg.append(s('polyline', {points: points.join(' '), fill: 'none'}));
  const last = points[points.length - 1].split(',');
  svg.append(s('circle', {cx: last[0], cy: last[1], r: 1.8}));
  return svg;
}

/** Debounces fn by ms. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** A status message inside a view: loading, empty or error. */
export function note(text, kind = 'muted') {
  return h('p', {class: `note ${kind}`}, text);
}

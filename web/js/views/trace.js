// One trace: a virtualised waterfall (only the rows in view exist in the DOM, so 50,000 spans
// stay interactive), collapsible subtrees, folded runs of same-named siblings, the critical
// path highlighted, errors marked, search within the trace, the span panel, arrows from a call
// on one thread to the wait on another that it ended (causal links), and playback with a
// step-through of one thread's recorded calls and their values, and lanes: the rows grouped by
// thread or BEAM process (the query layer's `lanes`), messages as arrows between them, a
// GenServer's state before and after each callback and at the moment of a span (the span
// detail's `process_state`). Getting around a big trace: the minimap with drag-to-zoom
// (minimap.js), jumps to the slowest span, the next error and the next span on the critical
// path, a duration filter and a longest-first order (trace_nav.js); the selected span, filter,
// order, zoom, lanes and playback position live in the URL.
//
// The waterfall arrives as columns (/api/v1/traces/{id}/waterfall); a span's attributes,
// events and logs are fetched when it is selected.

import {get} from '../api.js';
import {h, duration, time, debounce, note, traceHref, operationHref, plural, sessionHref, escaped} from '../dom.js';
import {Minimap} from './minimap.js';
import {showFindings} from './trace_findings.js';
import {parseDuration, keptRows, childLists, orderedRows, slowestFirst, nextRow, placeOf} from './trace_nav.js';

// Px per row, fixed so the scroll position maps to a row by division: one line, or on a
// narrow screen two (the name over its bar, each the whole width: names stay readable).
const ROW = 24;
const STACKED_ROW = 40;
const NARROW = '(max-width: 640px)';
const OVERSCAN = 12;

export async function render(main, {params, query, navigate}) {
  const id = params[0];
  main.append(note('Loading the trace…'));
  let wf;
  try {
    wf = await get(`traces/${id}/waterfall`);
  } catch (error) {
    main.replaceChildren(h('h1', {}, 'Trace'), note(error.message, 'error'),
      h('p', {}, h('a', {href: '/traces'}, 'Back to the traces')));
    return;
  }
  const view = new Waterfall(wf, navigate);
  main.replaceChildren(view.element);
  view.start(query);
  showOrigin(view, wf.trace_id);
  showFindings(view, query);
  return () => view.stop();
}

/** A run made by a session's command links back to that command in the session's timeline.
 * Fetched after the waterfall is up: it is not on the way to an interactive view. */
async function showOrigin(view, traceId) {
  let origin;
  try {
    origin = (await get(`traces/${traceId}/origin`)).session;
  } catch { return; /* the waterfall stands without it */ }
  if (!origin) return;
  view.links.prepend(h('a', {href: sessionHref(origin.session_trace_id, origin.tool_span_id), class: 'origin'},
    `Made in session ${origin.title || origin.session_id}`), ' · ');
}


/** Levels a row's name is indented by; deeper rows stay there and say how deep they are (a
 * recursion recorded call by call nests thousands deep: 14 px a level would push its names
 * out of the panel; 16 levels leave the name column room for the mark and a name). The CLI's
 * `show` does the same (`↳N`) past 24 levels of a wider terminal. */
const MAX_DRAWN_DEPTH = 16;

/** Indents a waterfall row's name cell for `depth`, marking a depth past MAX_DRAWN_DEPTH. */
function indentName(nameCell, depth) {
  nameCell.style.paddingLeft = `${Math.min(depth, MAX_DRAWN_DEPTH) * 14 + 4}px`;
  if (depth > MAX_DRAWN_DEPTH) {
    nameCell.insertBefore(
      h('span', {class: 'depth muted small', title: `nested ${depth} levels deep`, dataset: {depth}}, `↳${depth}`),
      nameCell.firstChild);
  }
}

class Waterfall {
  constructor(wf, navigate) {
    this.wf = wf;
    this.navigate = navigate;
    const n = wf.span_count;
    this.n = n;
    this.collapsed = new Uint8Array(n);
    this.foldAt = new Int32Array(n).fill(-1);
    wf.folds.forEach((f, i) => { this.foldAt[f.first_row] = i; });
    this.foldOpen = new Set();
    this.rowOf = new Map(wf.span_id.map((s, i) => [s, i]));
    this.hasChildren = new Uint8Array(n);
    for (let i = 0; i < n; i++) if (wf.subtree_end[i] > i + 1) this.hasChildren[i] = 1;
    this.matches = new Set();
    this.marks = new Set();
    /** Rows a finding about the trace names as evidence → those findings (trace_findings.js). */
    this.markTags = new Map();
    this.selected = -1;
    /** The row the last "slowest span" jump selected: pressed again there, the next slowest. */
    this.slowestJump = -1;
    this.playT = null;
    /** Time range the waterfall is zoomed to ({from, to}, ns from the trace start), or null. */
    this.zoom = null;
    this.minNs = 0;
    this.longestFirst = false;
    /** Rows grouped by thread or process (`lanes`), and the lanes folded shut. */
    this.byLane = false;
    this.lanesShut = new Set();
    /** Rows the duration filter and the zoom keep (null: all), and the child lists they order. */
    this.keep = null;
    this.trees = {};
    this.criticalCount = wf.on_critical_path.reduce((c, v) => c + (v ? 1 : 0), 0);
    // Causal arrows by row: the cause's row and the waiting span's, where both are in the trace.
    this.arrows = (wf.causal_arrows || []).map((a) => ({...a, from: this.rowOf.get(a.cause), to: this.rowOf.get(a.waiter)}))
      .filter((a) => a.from !== undefined && a.to !== undefined);
    this.build();
    this.computeVisible();
  }

  build() {
    const wf = this.wf;
    const name = (i) => wf.strings[wf.name[i]];
    this.name = name;
    const root = wf.root_name;
    this.searchInput = h('input', {type: 'search', placeholder: 'Search this trace: names, attributes, events…', 'data-search': true,
      'aria-label': 'Search within the trace', class: 'trace-search'});
    this.searchInfo = h('span', {class: 'muted', role: 'status'});
    this.playButton = h('button', {type: 'button', class: 'secondary', 'aria-pressed': 'false'}, 'Playback');
    // A run whose program started traces of its own: they hold the program's spans.
    const attached = wf.attached_traces.map((id) => [h('a', {href: traceHref(id), class: 'mono'}, id.slice(0, 12)), ' · ']);
    this.links = h('p', {class: 'links'},
      wf.session ? [h('a', {href: sessionHref(wf.trace_id)}, 'Session timeline'), ' · '] : null,
      attached.length ? [h('span', {class: 'muted'}, `The program's spans (${attached.length === 1 ? 'its own trace' : `${attached.length} traces of their own`}): `), attached] : null,
      h('a', {href: operationHref(root)}, `Analytics of ${escaped(root)}`), ' · ',
      h('a', {href: `/compare?a=${wf.trace_id}`}, 'Compare with another trace'), ' · ',
      h('a', {href: `/api/v1/traces/${wf.trace_id}/waterfall`, target: '_blank', rel: 'noopener'}, 'JSON'));
    this.header = h('header', {class: 'trace-head'},
      h('h1', {}, escaped(root), ' ', h('span', {class: 'muted small'}, escaped(wf.service))),
      h('dl', {class: 'facts'},
        h('dt', {}, 'Duration'), h('dd', {'data-duration': true}, wf.last_span_end_ns == null ? duration(wf.root_duration_ns)
          : `root ${duration(wf.root_duration_ns)}; the last span ends at ${duration(wf.last_span_end_ns)}`),
        h('dt', {}, 'Spans'), h('dd', {}, wf.span_count.toLocaleString()),
        h('dt', {}, 'Errors'), h('dd', {class: wf.error_count ? 'error-text' : ''}, String(wf.error_count)),
        h('dt', {}, 'Started'), h('dd', {}, time(wf.start_unix_nano)),
        h('dt', {}, 'Critical path'), h('dd', {'data-critical-path': true, title: 'the time the trace would take with only the critical path: what to shorten to make it faster'},
          `${duration(wf.critical_path_ns)} over ${plural(this.criticalCount, 'span')}`),
        h('dt', {}, 'Trace id'), h('dd', {class: 'mono'}, wf.trace_id)),
      this.links,
      this.findingsBox = h('div', {class: 'trace-findings-box'}, note('Reading the findings about this trace…')),
      h('div', {class: 'trace-tools'}, this.searchInput, this.searchInfo,
        h('span', {class: 'legend'}, h('i', {class: 'swatch critical'}), 'critical path', h('i', {class: 'swatch error'}), 'error', h('i', {class: 'swatch fold'}), 'folded repeats',
          h('i', {class: 'swatch mark'}), 'marked by the link', h('span', {class: 'finding-tag'}, '#n'), 'evidence of finding n'),
        this.playButton),
      this.buildNavigation());
    this.player = new Player(this);
    this.ruler = h('div', {class: 'wf-ruler', 'aria-hidden': 'true'});
    this.minimap = new Minimap(wf, {onZoom: (from, to) => this.setZoom(from, to), onPick: (row) => this.select(row)});
    this.spacer = h('div', {class: 'wf-spacer'});
    this.rows = h('div', {class: 'wf-rows'});
    this.cursorLine = h('div', {class: 'wf-cursor', hidden: true});
    this.scroller = h('div', {class: 'wf-scroll', tabindex: '0', role: 'tree', 'aria-label': `Waterfall of ${root}: ${wf.span_count} spans`},
      this.spacer, this.rows);
    this.panel = h('aside', {class: 'span-panel', 'aria-label': 'Span details'}, note('Select a span to see its attributes, events and logs.'));
    this.element = h('section', {class: 'trace-view', 'data-view-keys': TRACE_KEYS}, this.header, this.player.element, this.minimap.element,
      h('div', {class: 'trace-body'},
        h('div', {class: 'wf'}, h('div', {class: 'wf-head'}, h('div', {class: 'wf-name-head'}, 'Span'), h('div', {class: 'wf-bar-head'}, this.ruler, this.cursorLine)), this.scroller),
        this.panel));
    this.scroller.addEventListener('scroll', () => this.draw());
    this.scroller.addEventListener('keydown', (e) => this.key(e));
    this.rows.addEventListener('click', (e) => this.click(e));
    this.searchInput.addEventListener('input', debounce(() => this.search(), 250));
    this.searchInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); this.nextMatch(e.shiftKey ? -1 : 1); }
      if (e.key === 'Escape') { this.searchInput.value = ''; this.search(); this.scroller.focus(); }
    });
    this.playButton.addEventListener('click', () => this.player.toggle());
    this.resize = () => { this.fitRows(); this.minimap.paint(); this.draw(); };
    this.fitRows();
    window.addEventListener('resize', this.resize);
    this.onKey = (event) => this.jumpKey(event);
    document.addEventListener('keydown', this.onKey);
    this.saveLater = debounce(() => this.saveState(), 300);
    this.drawRuler();
  }

  start(query) {
    const marked = (query.get('mark') || '').split(',').filter(Boolean);
    for (const s of marked) if (this.rowOf.has(s)) this.marks.add(this.rowOf.get(s));
    this.restoreView(query);
    const q = query.get('q');
    if (q) { this.searchInput.value = q; this.search(); }
    this.minimap.paint();
    const span = query.get('span');
    if (span && this.rowOf.has(span)) this.select(this.rowOf.get(span), {scroll: true});
    else this.draw();
    if (!span) this.scroller.focus({preventScroll: true});
    const t = Number(query.get('t'));
    if (query.has('t') && Number.isFinite(t)) this.player.openAt(Math.max(0, Math.min(this.wf.duration_ns, t)));
  }

  /** The filter, order and zoom a shared URL names (`min`, `sort`, `zoom`); what is not
   * understood is left out, and said. */
  restoreView(query) {
    const min = query.get('min');
    if (min) { this.minInput.value = min; this.minNs = parseDuration(min) ?? 0; }
    if (query.get('sort') === 'duration') { this.longestFirst = true; this.orderSelect.value = 'duration'; }
    const zoom = /^(\d+)-(\d+)$/.exec(query.get('zoom') || '');
    if (zoom && Number(zoom[2]) > Number(zoom[1])) this.zoom = {from: Number(zoom[1]), to: Math.min(Number(zoom[2]), this.wf.duration_ns)};
    if (query.get('lanes') === '1' && this.laneButton) this.setLanes(true, {save: false});
    if (this.minNs || this.longestFirst || this.zoom) this.refilter({save: false});
  }

  stop() {
    window.removeEventListener('resize', this.resize);
    document.removeEventListener('keydown', this.onKey);
    this.player.stop();
  }

  /** The jumps, the duration filter, the order and the zoom: the toolbar over the waterfall. */
  buildNavigation() {
    const wf = this.wf;
    const button = (label, key, action, attrs = {}) => {
      const b = h('button', {type: 'button', class: 'secondary small', title: `${label} (${key})`, 'aria-keyshortcuts': key, ...attrs},
        label, ' ', h('kbd', {}, key));
      b.addEventListener('click', action);
      return b;
    };
    this.minInput = h('input', {type: 'text', inputmode: 'decimal', size: 7, placeholder: 'e.g. 10ms', 'aria-label': 'Only spans at least this long', 'data-min-duration': true});
    this.orderSelect = h('select', {'aria-label': 'Order of siblings', 'data-order': true},
      h('option', {value: 'time'}, 'in start order'), h('option', {value: 'duration'}, 'longest first'));
    this.zoomOut = button('Whole trace', '0', () => this.setZoom(null), {disabled: true, 'data-zoom-out': true});
    // Lanes only where there is more than one thread or process to tell apart.
    const processes = wf.lanes.some((lane) => lane.kind === 'process');
    this.laneButton = wf.lanes.length > 1
      ? button(processes ? 'Lanes by process' : 'Lanes by thread', 'l', () => this.setLanes(!this.byLane), {'aria-pressed': 'false', 'data-lanes': true})
      : null;
    this.navInfo = h('span', {class: 'muted small', role: 'status', 'data-nav-info': true});
    this.minInput.addEventListener('change', () => this.setMinDuration(this.minInput.value));
    this.minInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); this.setMinDuration(this.minInput.value); } });
    this.orderSelect.addEventListener('change', () => { this.longestFirst = this.orderSelect.value === 'duration'; this.refilter(); });
    return h('div', {class: 'trace-nav', role: 'toolbar', 'aria-label': 'Get around the trace'},
      button('Slowest span', 's', () => this.jumpSlowest(), {'data-jump': 'slowest'}),
      button('Next error', 'e', () => this.jumpError(1), {'data-jump': 'error', disabled: !wf.error_count}),
      button('Next on the critical path', 'p', () => this.jumpCritical(1), {'data-jump': 'critical'}),
      h('label', {class: 'inline'}, 'Spans ≥ ', this.minInput),
      h('label', {class: 'inline'}, 'Siblings ', this.orderSelect),
      button('Zoom to the span', 'z', () => this.zoomToSelected(), {'data-zoom-span': true}),
      this.zoomOut, this.laneButton, this.navInfo);
  }

  /** s, e (E back), p (P back), z and 0 anywhere on the page but in a field. */
  jumpKey(event) {
    if (event.defaultPrevented || event.metaKey || event.ctrlKey || event.altKey) return;
    if (event.target.closest?.('input, textarea, select, [contenteditable]')) return;
    const actions = {s: () => this.jumpSlowest(), e: () => this.jumpError(1), E: () => this.jumpError(-1),
      p: () => this.jumpCritical(1), P: () => this.jumpCritical(-1),
      m: () => this.jumpTo(1, (r) => this.marks.has(r) || this.markTags.has(r), 'marked', () => '', 'no span is marked'), z: () => this.zoomToSelected(), 0: () => this.setZoom(null),
      ...(this.laneButton ? {l: () => this.setLanes(!this.byLane)} : {})};
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  }

  /** The span with the most time of its own (children excluded); again, straight after: the
   * next one. After any other selection it starts over at the slowest. */
  jumpSlowest() {
    const order = slowestFirst(this.wf, this.keep);
    if (!order.length) return;
    const k = this.selected === this.slowestJump ? order.indexOf(this.selected) : -1;
    const row = order[k >= 0 ? (k + 1) % order.length : 0];
    this.select(row);
    this.slowestJump = row;
    this.navInfo.textContent = `slowest ${(order.indexOf(row) + 1).toLocaleString()} of ${order.length.toLocaleString()}: ${duration(this.wf.self_time[row])} of its own (${duration(this.wf.duration[row])} in all)`;
  }

  jumpError(direction) {
    this.jumpTo(direction, (r) => this.wf.status[r] === 2, 'error', () => '', 'no error in the spans shown');
  }

  jumpCritical(direction) {
    this.jumpTo(direction, (r) => this.wf.critical[r] > 0, 'on the critical path',
      (r) => `: ${duration(this.wf.critical[r])} on the path`, 'no span of the critical path is shown');
  }

  jumpTo(direction, wanted, what, detail, none) {
    const shown = (r) => wanted(r) && (!this.keep || this.keep[r]);
    const row = nextRow(this.wf, this.selected, direction, shown);
    if (row < 0) { this.navInfo.textContent = none; return; }
    this.select(row);
    const {place, total} = placeOf(this.wf, row, shown);
    this.navInfo.textContent = `${what}: ${place.toLocaleString()} of ${total.toLocaleString()}${detail(row)}`;
  }

  setMinDuration(text) {
    const ns = text.trim() === '' ? 0 : parseDuration(text);
    this.minInput.setAttribute('aria-invalid', String(ns === null));
    if (ns === null) {
      this.navInfo.textContent = `not a duration: ${escaped(text)} (say 10ms, 1.5s or 250us)`;
      return;
    }
    this.minNs = ns;
    this.refilter();
  }

  /** Rows grouped by lane (thread or process), each lane under a heading row, or the tree.
   * Siblings keep their start order in lanes: a lane is read in time. */
  setLanes(on, {save = true} = {}) {
    this.byLane = on;
    this.laneButton.setAttribute('aria-pressed', String(on));
    this.orderSelect.disabled = on;
    this.element?.classList.toggle('by-lane', on);
    this.computeVisible();
    this.draw();
    if (save) this.saveState();
  }

  /** Zooms the waterfall to [from, to) (ns from the trace start); null: the whole trace. */
  setZoom(from, to) {
    this.zoom = from === null || !(to > from) ? null : {from, to};
    this.refilter();
  }

  zoomToSelected() {
    if (this.selected < 0) { this.navInfo.textContent = 'select a span to zoom to it'; return; }
    const start = this.wf.start[this.selected], dur = this.wf.duration[this.selected];
    const pad = Math.max(dur * 0.05, 1000);
    this.setZoom(Math.max(0, start - pad), Math.min(this.wf.duration_ns, start + dur + pad));
  }

  /** Applies the filter, order and zoom: the rows shown, the axis, the minimap, the URL. */
  refilter({save = true} = {}) {
    const {wf} = this;
    const z = this.zoom;
    this.keep = keptRows(wf, {minNs: this.minNs, from: z?.from ?? null, to: z?.to ?? null});
    this.computeVisible();
    this.zoomOut.disabled = !z;
    this.element?.classList.toggle('zoomed', Boolean(z));
    this.minimap.showRange(z ? z.from : null, z?.to);
    this.drawRuler();
    const shown = this.keep ? this.keep.reduce((c, k) => c + k, 0) : wf.span_count;
    this.navInfo.textContent = this.keep ? `${shown.toLocaleString()} of ${plural(wf.span_count, 'span')} shown` : '';
    this.draw();
    if (save) this.saveState();
  }

  /** The time axis: the zoom range, or the whole trace. */
  axis() {
    return this.zoom ? {from: this.zoom.from, span: this.zoom.to - this.zoom.from || 1} : {from: 0, span: this.wf.duration_ns || 1};
  }

  drawRuler() {
    const {from, span} = this.axis();
    this.ruler.replaceChildren(...[0, 1, 2, 3, 4].map((k) => {
      const tick = h('span', {}, duration(from + span * k / 4));
      tick.style.left = `${k * 25}%`;
      return tick;
    }));
  }

  /** The URL says what is shown, so it can be shared: the selected span, the search, the
   * filter, the order, the zoom and the playback position. */
  saveState() {
    const url = new URL(location.href);
    const set = (key, value) => (value === null || value === '' ? url.searchParams.delete(key) : url.searchParams.set(key, value));
    set('span', this.selected >= 0 ? this.wf.span_id[this.selected] : null);
    set('q', this.searchInput.value.trim() || null);
    set('min', this.minNs ? this.minInput.value.trim() : null);
    set('sort', this.longestFirst ? 'duration' : null);
    set('zoom', this.zoom ? `${this.zoom.from}-${this.zoom.to}` : null);
    set('t', this.playT === null ? null : String(Math.round(this.playT)));
    set('lanes', this.byLane ? '1' : null);
    history.replaceState(null, '', url.pathname + url.search);
  }

  /** One-line rows, or two-line rows on a narrow screen (after a resize too). */
  fitRows() {
    const stacked = window.matchMedia(NARROW).matches;
    const row = stacked ? STACKED_ROW : ROW;
    if (row === this.row) return;
    const first = this.row ? Math.floor(this.scroller.scrollTop / this.row) : 0;
    this.row = row;
    this.element.classList.toggle('stacked', stacked);
    if (this.visible) {
      this.spacer.style.height = `${this.visible.length * row}px`;
      this.scroller.scrollTop = first * row;
    }
  }

  /** The rows shown, in order: row indices, -(fold + 1) for a folded run, n + k for lane k's
   * heading. */
  computeVisible() {
    const {wf, n} = this;
    if (this.byLane) {
      this.visible = this.laneRows();
      this.placeRows();
      return;
    }
    if (this.keep || this.longestFirst) {
      const order = this.longestFirst ? 'longest' : 'start';
      this.trees[order] ??= childLists(wf, this.longestFirst);
      this.visible = orderedRows(wf, {keep: this.keep, tree: this.trees[order], collapsed: this.collapsed});
      this.placeRows();
      return;
    }
    const out = new Int32Array(n);
    let count = 0;
    for (let i = 0; i < n;) {
      const f = this.foldAt[i];
      if (f >= 0 && !this.foldOpen.has(f)) {
        out[count++] = -(f + 1);
        i = wf.subtree_end[wf.folds[f].last_row];
        continue;
      }
      out[count++] = i;
      i = this.collapsed[i] ? wf.subtree_end[i] : i + 1;
    }
    this.visible = out.subarray(0, count);
    this.placeRows();
  }

  /** Each lane's heading, then (unless the lane is shut) its rows in row order, without what
   * the filter, a collapsed span or a folded run hides. */
  laneRows() {
    const {wf, n} = this;
    const out = [];
    wf.lanes.forEach((lane, k) => {
      out.push(n + k);
      if (this.lanesShut.has(k)) return;
      let hiddenUntil = -1;
      for (const r of lane.rows) {
        if (r < hiddenUntil || (this.keep && !this.keep[r])) continue;
        const f = this.foldAt[r];
        if (f >= 0 && !this.foldOpen.has(f)) {
          out.push(-(f + 1));
          hiddenUntil = wf.subtree_end[wf.folds[f].last_row];
          continue;
        }
        out.push(r);
        if (this.collapsed[r]) hiddenUntil = wf.subtree_end[r];
      }
    });
    return Int32Array.from(out);
  }

  placeRows() {
    this.position = new Int32Array(this.n).fill(-1);
    this.visible.forEach((entry, k) => { if (entry >= 0 && entry < this.n) this.position[entry] = k; });
    this.spacer.style.height = `${this.visible.length * this.row}px`;
  }

  draw() {
    const {wf} = this;
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.row) - OVERSCAN);
    const last = Math.min(this.visible.length, Math.ceil((top + height) / this.row) + OVERSCAN);
    const axis = this.axis();
    const t = this.playT;
    const fragment = document.createDocumentFragment();
    for (let k = first; k < last; k++) {
      const entry = this.visible[k];
      const row = entry >= this.n ? this.laneRow(entry - this.n, axis, t)
        : entry >= 0 ? this.spanRow(entry, axis, t) : this.foldRow(-entry - 1, axis, t);
      row.style.transform = `translateY(${k * this.row}px)`;
      fragment.append(row);
    }
    this.drawArrows(fragment, first, last, axis);
    this.rows.replaceChildren(fragment);
    const cursor = t === null ? null : at(t, axis);
    this.cursorLine.hidden = cursor === null || cursor < 0 || cursor > 100;
    if (!this.cursorLine.hidden) this.cursorLine.style.left = `${cursor}%`;
    this.minimap.showRow(this.selected);
  }

  spanRow(i, axis, t) {
    const {wf} = this;
    const start = wf.start[i], dur = wf.duration[i];
    const classes = ['wf-row'];
    if (wf.on_critical_path[i]) classes.push('critical');
    if (wf.status[i] === 2) classes.push('error');
    if (i === this.selected) classes.push('selected');
    if (this.matches.has(i)) classes.push('match');
    if (this.markTags.has(i)) classes.push('tagged');
    if (this.marks.has(i)) classes.push('mark');
    if (t !== null) classes.push(t < start ? 'future' : t < start + dur || (dur === 0 && t === start) ? 'running' : 'done');
    const toggle = this.hasChildren[i]
      ? h('button', {type: 'button', class: 'toggle', tabindex: '-1', 'aria-label': this.collapsed[i] ? 'expand' : 'collapse', dataset: {toggle: i}}, this.collapsed[i] ? '▸' : '▾')
      : h('span', {class: 'toggle'});
    const nameCell = h('div', {class: 'wf-name'}, toggle,
      h('span', {class: `kind k-${wf.strings[wf.work[i]]}`, title: wf.strings[wf.work[i]]}),
      h('span', {class: 'label'}, escaped(this.name(i))),
      this.serviceChange(i),
      wf.status[i] === 2 ? h('span', {class: 'badge error', title: 'error'}, '!') : null,
      wf.event_count[i] ? h('span', {class: 'count', title: `${wf.event_count[i]} events`}, `◆${wf.event_count[i]}`) : null,
      wf.log_count[i] ? h('span', {class: 'count', title: `${wf.log_count[i]} logs`}, `≡${wf.log_count[i]}`) : null,
      this.findingTags(this.markTags.get(i)));
    indentName(nameCell, this.indent(i));
    const bar = h('div', {class: 'wf-bar'});
    const begin = at(start, axis), end = at(start + dur, axis);
    bar.style.left = `${begin}%`;
    bar.style.width = `max(2px, ${end - begin}%)`;
    const label = h('span', {class: 'wf-dur'}, duration(dur));
    const shownEnd = Math.min(end, 100), shownBegin = Math.max(begin, 0);
    if (end <= 85) label.style.left = `calc(${Math.max(end, 0)}% + 4px)`; // after the bar
    else if (shownEnd - shownBegin >= 12) { // inside the end of a long bar
      label.classList.add('inside');
      label.style.right = `calc(${100 - shownEnd}% + 4px)`;
    } else label.style.right = `calc(${100 - begin}% + 4px)`; // before a short one
    return h('div', {class: classes.join(' '), role: 'treeitem', id: `row-${i}`, dataset: {row: i, lane: this.byLane ? wf.lane[i] : undefined},
      'aria-level': this.indent(i) + 1, 'aria-selected': i === this.selected ? 'true' : 'false',
      'aria-expanded': this.hasChildren[i] ? String(!this.collapsed[i]) : undefined,
      title: `${escaped(this.name(i))} · ${duration(dur)}${wf.critical[i] > 0 ? ` · ${duration(wf.critical[i])} on the critical path` : ''}`},
    nameCell, h('div', {class: 'wf-bars'}, bar, label));
  }

  /** How deep row i is drawn: its depth in the tree, or in lanes under its lane's heading. */
  indent(i) {
    return this.byLane ? this.wf.lane_depth[i] + 1 : this.wf.depth[i];
  }

  /** A lane's heading: the thread or process, its spans and messages, a bar over its life. */
  laneRow(k, axis, t) {
    const lane = this.wf.lanes[k];
    const shut = this.lanesShut.has(k);
    const who = lane.name == null ? 'no thread' : `${lane.kind} ${escaped(lane.name)}`;
    const messages = lane.messages_received || lane.messages_sent
      ? ` · messages ${lane.messages_received.toLocaleString()} in, ${lane.messages_sent.toLocaleString()} out` : '';
    const nameCell = h('div', {class: 'wf-name'},
      h('button', {type: 'button', class: 'toggle', tabindex: '-1', 'aria-label': shut ? 'open the lane' : 'shut the lane', dataset: {laneToggle: k}}, shut ? '▸' : '▾'),
      h('span', {class: 'label', 'data-lane-name': true}, who),
      h('span', {class: 'muted small', title: `${plural(lane.rows.length, 'span')}${messages}`}, ` ${plural(lane.rows.length, 'span')}${messages}`));
    const life = h('div', {class: 'wf-bar lane-life'});
    const begin = at(lane.start_ns, axis), end = at(lane.end_ns, axis);
    life.style.left = `${begin}%`;
    life.style.width = `max(2px, ${end - begin}%)`;
    const classes = ['wf-row', 'lane-head'];
    if (t !== null) classes.push(t < lane.start_ns ? 'future' : t < lane.end_ns ? 'running' : 'done');
    return h('div', {class: classes.join(' '), role: 'treeitem', 'aria-level': 1, 'aria-expanded': String(!shut),
      dataset: {lane: k, laneKind: lane.kind}, title: `${who} · ${duration(lane.end_ns - lane.start_ns)}`}, nameCell, h('div', {class: 'wf-bars'}, life));
  }

  /** An arrow from each cause to the wait it ended, at the instant of the hand-over, where
   * both rows are shown and the arrow crosses the rows drawn. */
  drawArrows(fragment, first, last, axis) {
    for (const a of this.arrows) {
      const from = this.position[a.from], to = this.position[a.to];
      if (from < 0 || to < 0 || Math.max(from, to) < first || Math.min(from, to) >= last) continue;
      const arrow = h('div', {class: `wf-arrow ${to >= from ? 'down' : 'up'}`,
        dataset: {arrowCause: this.wf.span_id[a.from], arrowWaiter: this.wf.span_id[a.to], arrowKind: a.kind,
          fromLane: this.byLane ? this.wf.lane[a.from] : undefined, toLane: this.byLane ? this.wf.lane[a.to] : undefined},
        title: `${escaped(this.name(a.to))} waited ${duration(a.waited_ns)} for ${escaped(this.name(a.from))} (${escaped(a.kind)})`});
      arrow.style.top = `${Math.min(from, to) * this.row + this.row / 2}px`;
      arrow.style.height = `${Math.max(1, Math.abs(to - from)) * this.row}px`;
      const x = at(a.at_ns, axis) / 100;
      if (x < 0 || x > 1) continue;
      arrow.style.left = `calc(var(--bars-left) + (var(--bars-width) - 16px) * ${x})`;
      fragment.append(arrow);
    }
  }

  /** The tags of the findings whose evidence a row is ("#2"), each titled with its finding. */
  findingTags(findings) {
    if (!findings?.length) return null;
    return findings.map((f) => h('span', {class: 'finding-tag', title: `evidence of finding #${f.rank}: ${escaped(f.title)}`, dataset: {findingTag: f.rank}}, `#${f.rank}`));
  }

  /** "→ payments" where row `i` runs in another service than its parent: where the trace
   * crosses from one service to the next. Nothing for a root or a same-service child. */
  serviceChange(i) {
    const {wf} = this;
    const parent = wf.parent[i];
    if (parent < 0 || wf.service_name[parent] === wf.service_name[i]) return null;
    const service = escaped(wf.strings[wf.service_name[i]]);
    return h('span', {class: 'service-change', title: `the trace continues in service ${service}`}, `→ ${service}`);
  }

  foldRow(f, axis, t) {
    const fold = this.wf.folds[f];
    const {wf} = this;
    const start = wf.start[fold.first_row];
    const end = wf.start[fold.last_row] + wf.duration[fold.last_row];
    const nameCell = h('div', {class: 'wf-name'},
      h('button', {type: 'button', class: 'toggle', tabindex: '-1', 'aria-label': 'expand the repeats', dataset: {fold: f}}, '▸'),
      h('span', {class: 'label'}, `× ${fold.count} ${escaped(fold.name)}`),
      this.serviceChange(fold.first_row),
      h('span', {class: 'muted small'}, ` ${duration(fold.total_ns)} in all, ${fold.each}`),
      // A failure inside the fold stays visible: a marker, and a link to the first one.
      fold.errors ? h('span', {class: 'badge error', title: 'a span inside these repeats failed'}, `✗ ${fold.errors} with a failure`) : null,
      fold.first_error_row != null ? h('button', {type: 'button', class: 'link small', dataset: {showRow: fold.first_error_row}}, 'show the first') : null);
    indentName(nameCell, this.indent(fold.first_row));
    const bars = h('div', {class: 'wf-bars'});
    // One thin tick per member (at most 400), so the rhythm of the repeats shows.
    const step = Math.max(1, Math.ceil(fold.count / 400));
    for (let i = fold.first_row, k = 0; i <= fold.last_row && i < wf.span_count; i = wf.subtree_end[i], k++) {
      if (k % step) continue;
      const tick = h('div', {class: `wf-bar thin${wf.status[i] === 2 ? ' error' : ''}`});
      tick.style.left = `${at(wf.start[i], axis)}%`;
      tick.style.width = `max(1px, ${wf.duration[i] / axis.span * 100}%)`;
      bars.append(tick);
    }
    const classes = ['wf-row', 'fold'];
    if (wf.on_critical_path[fold.first_row]) classes.push('critical');
    // A marked or tagged span inside the run shows on the folded row.
    const inside = [];
    let marked = false;
    for (let i = fold.first_row; i < wf.subtree_end[fold.last_row]; i++) {
      marked ||= this.marks.has(i);
      for (const f of this.markTags.get(i) || []) if (!inside.includes(f)) inside.push(f);
    }
    if (marked) classes.push('mark');
    if (inside.length) nameCell.append(...this.findingTags(inside));
    if (t !== null) classes.push(t < start ? 'future' : t < end ? 'running' : 'done');
    return h('div', {class: classes.join(' '), role: 'treeitem', dataset: {foldRow: f}, 'aria-expanded': 'false',
      'aria-level': this.indent(fold.first_row) + 1}, nameCell, bars);
  }

  click(event) {
    const toggle = event.target.closest('[data-toggle]');
    if (toggle) { this.toggle(Number(toggle.dataset.toggle)); return; }
    const lane = event.target.closest('[data-lane-toggle], .lane-head');
    if (lane) { this.toggleLane(Number(lane.dataset.laneToggle ?? lane.dataset.lane)); return; }
    const failure = event.target.closest('[data-show-row]');
    if (failure) { this.select(Number(failure.dataset.showRow)); return; }
    const fold = event.target.closest('[data-fold], [data-fold-row]');
    if (fold) { this.openFold(Number(fold.dataset.fold ?? fold.dataset.foldRow)); return; }
    const row = event.target.closest('[data-row]');
    if (row) this.select(Number(row.dataset.row));
  }

  toggle(i) {
    this.collapsed[i] = this.collapsed[i] ? 0 : 1;
    this.computeVisible();
    this.draw();
  }

  toggleLane(k) {
    if (!this.lanesShut.delete(k)) this.lanesShut.add(k);
    this.computeVisible();
    this.draw();
  }

  openFold(f) {
    this.foldOpen.add(f);
    this.computeVisible();
    this.draw();
  }

  /** Opens collapsed ancestors and folds so row i is visible. */
  reveal(i) {
    if (this.keep && !this.keep[i]) {
      // Asked for a span the filter or the zoom hides (a search match, a finding's evidence):
      // show everything again rather than select what cannot be seen.
      this.minNs = 0;
      this.minInput.value = '';
      this.zoom = null;
      this.refilter({save: false});
      this.navInfo.textContent = 'the span is outside the filter or the zoom: showing every span';
    }
    let changed = false;
    for (let p = this.wf.parent[i]; p >= 0; p = this.wf.parent[p]) {
      if (this.collapsed[p]) { this.collapsed[p] = 0; changed = true; }
    }
    this.wf.folds.forEach((f, k) => {
      if (!this.foldOpen.has(k) && i >= f.first_row && i < this.wf.subtree_end[f.last_row]) { this.foldOpen.add(k); changed = true; }
    });
    if (this.byLane && this.lanesShut.delete(this.wf.lane[i])) changed = true;
    if (changed) this.computeVisible();
  }

  select(i, {scroll = true} = {}) {
    this.reveal(i);
    this.selected = i;
    this.focusFold = undefined;
    const position = this.visible.indexOf(i);
    if (scroll && position >= 0) {
      const top = position * this.row, view = this.scroller.clientHeight || 600;
      if (top < this.scroller.scrollTop || top > this.scroller.scrollTop + view - this.row * 2) {
        this.scroller.scrollTop = Math.max(0, top - view / 3);
      }
    }
    this.draw();
    this.scroller.setAttribute('aria-activedescendant', `row-${i}`);
    this.saveState();
    this.showSpan(i);
  }

  key(event) {
    // Where the keys move from: the selected span, else the folded run stepped onto (-1 is a
    // fold's entry too: nothing selected is not a place in the list).
    const from = this.selected >= 0 ? this.selected : this.focusFold !== undefined ? -(this.focusFold + 1) : null;
    const position = from === null ? -1 : this.visible.indexOf(from);
    const move = (delta) => {
      let k = Math.max(0, Math.min(this.visible.length - 1, (position < 0 ? -1 : position) + delta));
      // Step over lane headings onto spans; a heading at either end stops the move.
      while (this.visible[k] >= this.n && k + Math.sign(delta) >= 0 && k + Math.sign(delta) < this.visible.length) k += Math.sign(delta);
      if (this.visible[k] >= this.n) return;
      // Step over folded rows onto spans; Enter opens a fold.
      const entry = this.visible[k];
      if (entry < 0) { const f = -entry - 1; this.focusFold = f; this.selected = -1; this.draw(); this.markFold(k); return; }
      this.select(entry);
    };
    switch (event.key) {
      case 'ArrowDown': case 'j': event.preventDefault(); move(1); break;
      case 'ArrowUp': case 'k': event.preventDefault(); move(-1); break;
      case 'PageDown': event.preventDefault(); move(20); break;
      case 'PageUp': event.preventDefault(); move(-20); break;
      case 'Home': event.preventDefault(); this.select(0); break;
      case 'End': event.preventDefault(); move(this.visible.length); break;
      case 'ArrowLeft':
        event.preventDefault();
        if (this.selected >= 0 && this.hasChildren[this.selected] && !this.collapsed[this.selected]) this.toggle(this.selected);
        else if (this.selected >= 0 && this.wf.parent[this.selected] >= 0) this.select(this.wf.parent[this.selected]);
        break;
      case 'ArrowRight':
        event.preventDefault();
        if (this.selected >= 0 && this.collapsed[this.selected]) this.toggle(this.selected);
        break;
      case 'Enter':
        event.preventDefault();
        if (this.focusFold !== undefined && this.selected < 0) { this.openFold(this.focusFold); this.focusFold = undefined; }
        else if (this.selected >= 0 && this.hasChildren[this.selected]) this.toggle(this.selected);
        break;
      case 'Escape':
        this.selected = -1; this.draw(); this.panel.replaceChildren(note('Select a span to see its attributes, events and logs.'));
        this.closeSheet();
        break;
      default:
    }
  }

  markFold(k) {
    const el = this.rows.querySelector(`[data-fold-row="${this.focusFold}"]`);
    if (el) el.classList.add('selected');
    const top = k * this.row;
    if (top > this.scroller.scrollTop + this.scroller.clientHeight - this.row * 2) this.scroller.scrollTop = top - this.scroller.clientHeight / 3;
  }

  async search() {
    const q = this.searchInput.value.trim();
    this.matches = new Set();
    this.matchList = [];
    this.matchAt = -1;
    this.saveState();
    if (!q) { this.searchInfo.textContent = ''; this.draw(); return; }
    try {
      const found = await get(`traces/${this.wf.trace_id}/search`, {q});
      if (this.searchInput.value.trim() !== q) return;
      this.matchList = found.span_ids.map((s) => this.rowOf.get(s)).filter((r) => r !== undefined);
      this.matches = new Set(this.matchList);
      this.searchInfo.textContent = this.matchList.length
        ? `${plural(this.matchList.length, 'match')} · Enter for the next`
        : 'no span matches';
      this.draw();
    } catch (error) {
      this.searchInfo.textContent = error.message;
    }
  }

  nextMatch(direction) {
    if (!this.matchList?.length) return;
    this.matchAt = (this.matchAt + direction + this.matchList.length) % this.matchList.length;
    this.select(this.matchList[this.matchAt]);
    this.searchInfo.textContent = `match ${this.matchAt + 1} of ${this.matchList.length}`;
  }

  async showSpan(i) {
    const spanId = this.wf.span_id[i];
    this.openSheet(i);
    this.panel.replaceChildren(note('Loading the span…'));
    let span;
    try {
      span = await get(`traces/${this.wf.trace_id}/spans/${spanId}`);
    } catch (error) {
      this.panel.replaceChildren(note(error.message, 'error'));
      return;
    }
    if (this.selected !== i) return;
    this.panel.replaceChildren(this.sheetClose, spanPanel(span, this.wf, i, {
      selectParent: () => this.select(this.wf.parent[i]),
      selectSpan: (spanId) => { if (this.rowOf.has(spanId)) this.select(this.rowOf.get(spanId)); },
      stepThrough: () => this.player.stepFrom(spanId),
    }));
  }

  /** On a phone the span panel is a sheet over the bottom of the screen: it opens with the
   * span, and the row tapped is scrolled to the top of the screen, above the sheet. */
  openSheet(i) {
    this.sheetClose ??= h('button', {type: 'button', class: 'secondary small sheet-close', 'aria-label': 'Close the span panel', onclick: () => this.closeSheet()}, 'Close');
    this.panel.classList.add('open');
    this.element.classList.add('sheet-open');
    if (!this.element.classList.contains('stacked')) return;
    this.rows.querySelector(`[data-row="${i}"]`)?.scrollIntoView({block: 'start'});
  }

  closeSheet() {
    this.panel.classList.remove('open');
    this.element.classList.remove('sheet-open');
  }
}

/** Where time `t` (ns from the trace start) falls on the axis, in percent of its width. */
function at(t, axis) {
  return (t - axis.from) / axis.span * 100;
}

const TRACE_KEYS = 's the slowest span (again: the next) · e / E the next / previous error · p / P the next / previous span on the critical path · m the next span a link or a finding marked · z zoom to the selected span · 0 the whole trace · l lanes by thread or process · drag across the minimap to zoom';

function spanPanel(span, wf, row, {selectParent, selectSpan, stepThrough}) {
  const filter = h('input', {type: 'search', placeholder: `Filter ${span.attributes.length} attributes`, 'aria-label': 'Filter attributes', class: 'attr-filter'});
  const attrTable = attributesTable(span.attributes);
  filter.addEventListener('input', () => {
    const needle = filter.value.toLowerCase();
    for (const tr of attrTable.querySelectorAll('tbody tr')) {
      tr.hidden = needle !== '' && !tr.textContent.toLowerCase().includes(needle);
    }
  });
  const parts = [
    h('header', {},
      h('h2', {}, escaped(span.name)),
      h('p', {class: 'muted'}, `${span.kind} · ${escaped(span.service)} · ${span.work.replace('_', ' ')}`,
        span.scope_name ? ` · ${escaped(span.scope_name)}${span.scope_version ? ` ${escaped(span.scope_version)}` : ''}` : ''),
      h('dl', {class: 'facts'},
        h('dt', {}, 'Duration'), h('dd', {}, duration(span.duration_ns)),
        h('dt', {}, 'Self time'), h('dd', {}, duration(span.self_time_ns)),
        h('dt', {}, 'Starts at'), h('dd', {}, `+${duration(wf.start[row])}`),
        h('dt', {}, 'On critical path'), h('dd', {}, wf.critical[row] > 0 ? duration(wf.critical[row]) : 'no'),
        h('dt', {}, 'Status'), h('dd', {class: span.status === 'error' ? 'error-text' : ''}, span.status, span.status_message ? `: ${escaped(span.status_message)}` : ''),
        h('dt', {}, 'Span id'), h('dd', {class: 'mono'}, span.span_id)),
      span.parent_span_id ? h('button', {type: 'button', class: 'secondary small', onclick: selectParent}, 'Go to parent') : null,
      h('button', {type: 'button', class: 'secondary small', onclick: stepThrough, 'data-step-through': true}, 'Step through its thread')),
  ];
  if (span.waited_for.length) {
    parts.push(h('section', {class: 'waited-for'}, h('h3', {}, 'Waited for'),
      h('ul', {}, span.waited_for.map((w) => h('li', {}, escaped(w.text), ' ',
        w.cause_in_trace ? h('button', {type: 'button', class: 'link small', onclick: () => selectSpan(w.cause_span_id), 'data-go-cause': w.cause_span_id}, 'go to the cause')
          : h('span', {class: 'muted small'}, `span ${w.cause_span_id} is in another trace`))))));
  }
  if (span.process_state) parts.push(stateSection(span.process_state, selectSpan));
  if (span.exception) {
    parts.push(h('section', {class: 'exception'}, h('h3', {}, 'Exception'),
      h('p', {class: 'error-text'}, h('strong', {}, escaped(span.exception.type || 'error')), span.exception.message ? `: ${escaped(span.exception.message)}` : ''),
      span.exception.stacktrace ? h('pre', {class: 'stack'}, span.exception.stacktrace) : null));
  }
  if (span.llm) {
    const llm = span.llm;
    parts.push(h('section', {class: 'llm'}, h('h3', {}, 'LLM call'),
      h('dl', {class: 'facts'},
        llm.model ? [h('dt', {}, 'Model'), h('dd', {}, escaped(llm.model))] : null,
        llm.provider ? [h('dt', {}, 'Provider'), h('dd', {}, escaped(llm.provider))] : null,
        llm.input_tokens != null ? [h('dt', {}, 'Input tokens'), h('dd', {}, llm.input_tokens.toLocaleString())] : null,
        llm.output_tokens != null ? [h('dt', {}, 'Output tokens'), h('dd', {}, llm.output_tokens.toLocaleString())] : null),
      llm.prompt ? [h('h4', {}, 'Prompt'), h('pre', {class: 'text'}, llm.prompt)] : null,
      llm.response ? [h('h4', {}, 'Response'), h('pre', {class: 'text'}, llm.response)] : null,
      !llm.prompt && !llm.response ? h('p', {class: 'muted small'}, 'Prompt and response were not recorded.') : null));
  }
  parts.push(h('section', {}, h('h3', {}, `Attributes (${span.attributes.length}${span.dropped_attributes_count ? `, ${span.dropped_attributes_count} dropped` : ''})`),
    span.attributes.length ? [filter, attrTable] : h('p', {class: 'muted small'}, 'none')));
  if (span.events.length) {
    parts.push(h('section', {}, h('h3', {}, `Events (${span.events.length})`),
      h('ol', {class: 'events'}, span.events.map((e) => h('li', {},
        h('span', {class: 'mono muted'}, `+${duration(e.offset_ns)} `), h('strong', {}, escaped(e.name)),
        e.attributes.length ? attributesTable(e.attributes) : null)))));
  }
  if (span.links.length) {
    parts.push(h('section', {}, h('h3', {}, `Links (${span.links.length})`),
      h('ul', {}, span.links.map((l) => h('li', {}, h('a', {href: traceHref(l.trace_id, l.span_id), class: 'mono'}, `${l.trace_id.slice(0, 12)}… / ${l.span_id}`))))));
  }
  if (span.logs.length) {
    parts.push(h('section', {}, h('h3', {}, `Logs (${span.logs.length})`),
      h('ol', {class: 'logs'}, span.logs.map((l) => h('li', {class: l.severity_number >= 17 ? 'error-text' : ''},
        h('span', {class: 'mono muted'}, `${time(l.time_unix_nano)} `), h('strong', {}, escaped(l.severity_text || `severity ${l.severity_number}`)), ' ',
        typeof l.body === 'string' ? textBlock(l.body) ?? escaped(l.body) : escaped(JSON.stringify(l.body)))))));
  }
  parts.push(h('details', {}, h('summary', {}, `Resource (${span.resource.length})`), attributesTable(span.resource)));
  return h('div', {class: 'span-detail'}, parts);
}

/** A GenServer's state: the callback's before and after, and the process's state when the
 * span started (what its last callback before then left), each as recorded text. */
function stateSection(state, selectSpan) {
  const block = (label, text, key) => [h('dt', {}, label), h('dd', {}, h('pre', {class: 'text state', 'data-state': key}, escaped(text)))];
  const then = state.at_start;
  return h('section', {class: 'process-state', 'data-process-state': true}, h('h3', {}, `State of ${escaped(state.process)}`),
    h('dl', {class: 'facts state-facts'},
      state.before != null ? block('State before', state.before, 'before') : null,
      state.after != null ? block('State after', state.after, 'after') : null,
      then ? block('State when it started', then.state, 'at-start') : null),
    then ? h('p', {class: 'muted small', 'data-state-from': then.callback_span_id}, `as ${escaped(then.callback)} left it at +${duration(then.ended_ns)} `,
      h('button', {type: 'button', class: 'link small', onclick: () => selectSpan(then.callback_span_id)}, 'go to it'))
      : h('p', {class: 'muted small', 'data-state-from': ''}, 'When it started, no callback of the process had ended yet.'));
}

function attributesTable(list) {
  return h('table', {class: 'attrs'}, h('tbody', {}, list.map((a) => h('tr', {},
    h('th', {scope: 'row', class: 'mono'}, keyText(a.key)),
    h('td', {title: a.type}, valueText(a.value))))));
}

/** An attribute key that wraps only after a dot, underscore, slash or dash
 * (`http.response.` / `status_code`), never inside a word. */
function keyText(key) {
  return escaped(key).split(/(?<=[._/-])/).flatMap((part, k) => (k ? [h('wbr'), part] : [part]));
}

/** A value: long text or text of several lines (a command's output) as lines in a block,
 * the rest on one line; escaped either way (escapedBlock keeps only line feeds and tabs). */
function valueText(value) {
  if (typeof value === 'string') return textBlock(value) ?? escaped(value);
  return escaped(JSON.stringify(value));
}

function textBlock(text) {
  return text.length > 400 || /\n./.test(text.trimEnd()) ? h('pre', {class: 'text'}, text.replace(/\n$/, '')) : null;
}

/** Playback: a time scrubber over the trace; rows show what was running at that instant. */
class Player {
  constructor(view) {
    this.view = view;
    const total = view.wf.duration_ns;
    this.range = h('input', {type: 'range', min: 0, max: 1000, value: 0, 'aria-label': 'Playback position', class: 'scrubber'});
    this.play = h('button', {type: 'button'}, 'Play');
    this.clock = h('span', {class: 'mono'}, `+0 / ${duration(total)}`);
    this.running = h('span', {class: 'muted', role: 'status'});
    this.events = h('ol', {class: 'play-events', 'aria-label': 'Events so far'});
    this.stepper = new Stepper(view, this);
    this.element = h('div', {class: 'player', hidden: true},
      h('div', {class: 'player-controls'}, this.play, this.range, this.clock, this.running), this.events, this.stepper.element);
    this.range.addEventListener('input', () => this.seek(Number(this.range.value) / 1000 * total));
    this.play.addEventListener('click', () => (this.frame ? this.pause() : this.start()));
    // Starts and ends, sorted, so "how many are running" is two binary searches.
    this.starts = Float64Array.from(view.wf.start).sort();
    this.ends = Float64Array.from(view.wf.start, (s, i) => s + view.wf.duration[i]).sort();
  }

  async toggle() {
    const open = this.element.hidden;
    this.element.hidden = !open;
    this.view.playButton.setAttribute('aria-pressed', String(open));
    if (open) {
      this.seek(0);
      this.range.focus();
      if (!this.timeline) {
        try { this.timeline = await get(`traces/${this.view.wf.trace_id}/timeline`); } catch { this.timeline = {events: []}; }
        // The person may have scrubbed while the events loaded: keep their position.
        if (!this.element.hidden) this.seek(this.t);
      }
    } else {
      this.pause();
      this.view.playT = null;
      this.view.draw();
      this.view.saveState();
    }
  }

  /** Opens playback at `t` (ns from the trace start): a shared URL's position. */
  async openAt(t) {
    if (this.element.hidden) await this.toggle();
    this.seek(t);
  }

  seek(t) {
    const total = this.view.wf.duration_ns || 1;
    this.t = t;
    this.view.playT = t;
    this.range.value = String(Math.round(t / total * 1000));
    this.clock.textContent = `+${duration(t)} / ${duration(total)}`;
    const started = upperBound(this.starts, t), ended = upperBound(this.ends, t);
    this.running.textContent = `${(started - ended).toLocaleString()} running`;
    const events = (this.timeline?.events || []).filter((e) => e.offset_ns <= t).slice(-8);
    this.events.replaceChildren(...events.map((e) => h('li', {},
      h('span', {class: 'mono muted'}, `+${duration(e.offset_ns)} `), h('strong', {}, escaped(e.name)), e.summary ? ` ${escaped(e.summary)}` : '')));
    this.view.draw();
    this.view.saveLater();
  }

  start() {
    const total = this.view.wf.duration_ns || 1;
    if (this.t >= total) this.t = 0;
    const length = 10000; // a whole trace replays in ten seconds
    const from = performance.now() - this.t / total * length;
    this.play.textContent = 'Pause';
    const tick = (now) => {
      const t = Math.min(total, (now - from) / length * total);
      this.seek(t);
      if (t >= total) { this.pause(); return; }
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  pause() {
    cancelAnimationFrame(this.frame);
    this.frame = null;
    this.play.textContent = 'Play';
  }

  stop() { this.pause(); this.stepper.stop(); }

  /** Opens playback (if closed) on the recorded calls of the thread span `spanId` ran on. */
  async stepFrom(spanId) {
    if (this.element.hidden) await this.toggle();
    await this.stepper.begin(spanId);
    // Opening playback focused its scrubber, whose arrows scrub: the step-through's keys need
    // the focus on the step-through.
    this.stepper.element.focus({preventScroll: true});
  }
}

/** Step-through: one thread's recorded calls in order with their values, forward and back; a
 * wait jumps to the call on another thread that ended it, and returns: each jump remembers the
 * step it left on a trail, so a chain of jumps returns one wait at a time. Each step selects its
 * span and moves the playback cursor to its start. Keys while it is open: ← and → step, c jumps
 * to the cause, r returns to the wait — not while typing in a field, nor in the waterfall, whose
 * own ← → fold and unfold. */
class Stepper {
  constructor(view, player) {
    this.view = view;
    this.player = player;
    this.back = h('button', {type: 'button', class: 'secondary', 'aria-label': 'Previous call', title: 'Previous call (←)',
      'aria-keyshortcuts': 'ArrowLeft', 'data-step': 'back'}, '◀ Back');
    this.forward = h('button', {type: 'button', class: 'secondary', 'aria-label': 'Next call', title: 'Next call (→)',
      'aria-keyshortcuts': 'ArrowRight', 'data-step': 'forward'}, 'Forward ▶');
    this.where = h('span', {class: 'muted', role: 'status', 'data-step-where': true});
    this.returnButton = h('button', {type: 'button', class: 'secondary', title: 'Return to the wait (r)',
      'aria-keyshortcuts': 'r', 'data-step': 'return', hidden: true}, '↩ Return to the wait');
    this.hint = h('span', {class: 'muted small', 'data-step-keys': true}, '← → step · c jumps to the cause · r returns to the wait');
    /** The waiting calls' spans each jump to a cause left, newest last. A span, not a step
     * index: the steps are a window around the span loaded, so the span finds its step again. */
    this.trail = [];
    this.call = h('div', {class: 'step-call', 'aria-live': 'polite'});
    this.element = h('section', {class: 'stepper', hidden: true, tabindex: '-1', 'aria-label': 'Step through a thread'},
      h('div', {class: 'player-controls'}, this.back, this.forward, this.returnButton, this.where, this.hint), this.call);
    this.back.addEventListener('click', () => this.go(this.at - 1));
    this.returnButton.addEventListener('click', () => this.returnToWait());
    this.forward.addEventListener('click', () => this.go(this.at + 1));
    this.onKey = (event) => this.key(event);
    document.addEventListener('keydown', this.onKey);
  }

  stop() { document.removeEventListener('keydown', this.onKey); }

  key(event) {
    if (event.defaultPrevented || event.metaKey || event.ctrlKey || event.altKey) return;
    if (this.element.hidden || this.player.element.hidden || !this.steps?.steps.length) return;
    if (event.target.closest?.('input, textarea, select, [contenteditable], .wf-scroll')) return;
    if (event.key === 'ArrowLeft') { event.preventDefault(); this.go(this.at - 1); }
    else if (event.key === 'ArrowRight') { event.preventDefault(); this.go(this.at + 1); }
    else if (event.key === 'c') {
      const cause = this.steps.steps[this.at].waited_for.find((w) => w.cause_in_trace);
      if (cause) { event.preventDefault(); this.jumpToCause(cause.cause_span_id); }
    } else if (event.key === 'r' && this.trail.length) { event.preventDefault(); this.returnToWait(); }
  }

  /** A new step-through (from the span panel): no way back to an earlier one's waits. */
  begin(spanId) {
    this.trail = [];
    return this.load(spanId);
  }

  jumpToCause(spanId) {
    this.trail.push(this.steps.steps[this.at].span_id);
    return this.load(spanId);
  }

  returnToWait() {
    const waiting = this.trail.pop();
    return waiting ? this.load(waiting) : undefined;
  }

  /** Loads the calls of the thread `spanId` ran on and shows that span's step. */
  async load(spanId) {
    this.element.hidden = false;
    this.returnButton.hidden = !this.trail.length;
    this.call.replaceChildren(note('Loading the thread’s calls…'));
    let steps;
    try {
      steps = await get(`traces/${this.view.wf.trace_id}/spans/${spanId}/steps`);
    } catch (error) {
      this.call.replaceChildren(note(error.message, 'error'));
      return;
    }
    this.steps = steps;
    this.go(steps.current);
  }

  go(k) {
    const steps = this.steps?.steps || [];
    if (!steps.length) { this.call.replaceChildren(note('No recorded calls on this thread.')); return; }
    this.at = Math.max(0, Math.min(steps.length - 1, k));
    const step = steps[this.at];
    this.back.disabled = this.at === 0;
    this.forward.disabled = this.at === steps.length - 1;
    // A BEAM process's lane says so: its "thread" is a process.
    const kind = this.view.wf.lanes.find((lane) => lane.name === this.steps.thread)?.kind ?? 'thread';
    const thread = this.steps.thread == null ? 'calls under the outermost span' : `${kind} ${escaped(this.steps.thread)}`;
    this.where.textContent = `call ${this.at + 1} of ${steps.length} · ${thread}${this.steps.omitted ? ` (${this.steps.omitted} more not shown)` : ''}`;
    const value = (label, text, cls = '') => (text == null ? null
      : [h('dt', {}, label), h('dd', {class: `mono ${cls}`, 'data-value': label.toLowerCase()}, escaped(text))]);
    this.call.replaceChildren(
      h('p', {}, h('strong', {class: step.failed ? 'error-text' : '', 'data-step-name': true}, `${'· '.repeat(step.depth)}${escaped(step.name)}`),
        h('span', {class: 'muted'}, ` +${duration(step.offset_ns)} · ${duration(step.duration_ns)}${step.failed ? ' · failed' : ''}`)),
      h('dl', {class: 'facts step-values'},
        value('Arguments', step.arguments ?? 'not recorded'),
        value('Returned', step.returned),
        value('Raised', step.raised, 'error-text'),
        value('State before', step.state_before),
        value('State after', step.state_after)),
      h('div', {}, step.waited_for.map((w) => h('p', {class: 'step-wait'}, escaped(w.text), ' ',
        w.cause_in_trace ? h('button', {type: 'button', class: 'secondary small', 'data-step': 'cause', title: 'Jump to the cause (c)',
          'aria-keyshortcuts': 'c', onclick: () => this.jumpToCause(w.cause_span_id)}, 'Jump to the cause')
          : h('span', {class: 'muted small'}, '(in another trace)')))));
    const row = this.view.rowOf.get(step.span_id);
    if (row !== undefined) {
      this.player.seek(step.offset_ns);
      this.view.select(row);
    }
  }
}

function upperBound(sorted, value) {
  let lo = 0, hi = sorted.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid] <= value) lo = mid + 1; else hi = mid; }
  return lo;
}

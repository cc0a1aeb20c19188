// The trace at a glance above its waterfall: every span as a line over the trace's whole time
// (x) by its row (y), errors and the critical path in their colours, the time range the
// waterfall is zoomed to, and the selected span. Dragging across it zooms the waterfall to that
// time; a click without a drag selects the span drawn there. Drawn once on a canvas (50,000
// spans take a few milliseconds), so zooming and selecting only move two overlays.

import {h, duration} from '../dom.js';

const HEIGHT = 56; // CSS pixels
const DRAG_PX = 4; // a press that moves less than this is a click

export class Minimap {
  /** `onZoom(from, to)` with offsets from the trace start (ns); `onPick(row)`. */
  constructor(wf, {onZoom, onPick}) {
    this.wf = wf;
    this.onZoom = onZoom;
    this.onPick = onPick;
    this.canvas = h('canvas', {class: 'mm-canvas', 'aria-hidden': 'true'});
    this.window = h('div', {class: 'mm-window', hidden: true});
    this.drag = h('div', {class: 'mm-drag', hidden: true});
    this.here = h('div', {class: 'mm-here', hidden: true});
    this.element = h('div', {class: 'minimap', role: 'img', 'data-minimap': true,
      'aria-label': `The whole trace over ${duration(wf.duration_ns)}: drag across it to zoom the waterfall to a time range`,
      title: 'Drag across to zoom to a time range; click to select the span drawn there'},
    this.canvas, this.window, this.drag, this.here);
    this.element.addEventListener('pointerdown', (e) => this.press(e));
    this.element.addEventListener('pointermove', (e) => this.move(e));
    this.element.addEventListener('pointerup', (e) => this.release(e));
    this.element.addEventListener('pointercancel', () => { this.pressed = null; this.drag.hidden = true; });
  }

  /** Paints the spans; again after a resize (the canvas matches its width in device pixels). */
  paint() {
    const width = this.element.clientWidth;
    if (!width) return;
    const ratio = window.devicePixelRatio || 1;
    const w = Math.round(width * ratio), hgt = Math.round(HEIGHT * ratio);
    if (this.canvas.width === w && this.canvas.height === hgt) return;
    this.canvas.width = w;
    this.canvas.height = hgt;
    const {wf} = this;
    const ctx = this.canvas.getContext('2d');
    const css = getComputedStyle(this.element);
    const total = wf.duration_ns || 1, n = wf.span_count;
    const rowHeight = Math.max(2 * ratio, hgt / n); // a span stays visible in a long trace
    // Plain spans first, then the critical path, then errors on top: one colour per pass.
    const passes = [['--bar', (i) => wf.status[i] !== 2 && !wf.critical[i]],
      ['--critical', (i) => wf.status[i] !== 2 && wf.critical[i] > 0], ['--error', (i) => wf.status[i] === 2]];
    for (const [colour, drawn] of passes) {
      ctx.fillStyle = css.getPropertyValue(colour).trim() || '#888';
      for (let i = 0; i < n; i++) {
        if (!drawn(i)) continue;
        const x = wf.start[i] / total * w;
        ctx.fillRect(x, Math.floor(i / n * hgt), Math.max(1, wf.duration[i] / total * w), rowHeight);
      }
    }
  }

  /** Shows the zoomed range [from, to) (ns), or nothing when the whole trace is shown. */
  showRange(from, to) {
    const total = this.wf.duration_ns || 1;
    this.window.hidden = from === null;
    if (from === null) return;
    this.window.style.left = `${from / total * 100}%`;
    this.window.style.width = `${Math.max(0.2, (to - from) / total * 100)}%`;
  }

  /** Marks the selected row's place (-1: none). */
  showRow(row) {
    this.here.hidden = row < 0;
    if (row < 0) return;
    const {wf} = this;
    const total = wf.duration_ns || 1;
    this.here.style.top = `${row / wf.span_count * 100}%`;
    this.here.style.left = `${wf.start[row] / total * 100}%`;
    this.here.style.width = `max(3px, ${wf.duration[row] / total * 100}%)`;
  }

  fraction(event) {
    const box = this.element.getBoundingClientRect();
    return {x: Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
      y: Math.min(1, Math.max(0, (event.clientY - box.top) / box.height)), px: event.clientX};
  }

  press(event) {
    if (event.button !== 0) return;
    event.preventDefault();
    this.element.setPointerCapture?.(event.pointerId);
    this.pressed = this.fraction(event);
  }

  move(event) {
    if (!this.pressed) return;
    const now = this.fraction(event);
    if (Math.abs(now.px - this.pressed.px) < DRAG_PX) return;
    this.drag.hidden = false;
    this.drag.style.left = `${Math.min(now.x, this.pressed.x) * 100}%`;
    this.drag.style.width = `${Math.abs(now.x - this.pressed.x) * 100}%`;
  }

  release(event) {
    const from = this.pressed;
    this.pressed = null;
    this.drag.hidden = true;
    if (!from) return;
    const to = this.fraction(event);
    const total = this.wf.duration_ns;
    if (Math.abs(to.px - from.px) >= DRAG_PX) {
      const [a, b] = [from.x, to.x].sort((p, q) => p - q);
      this.onZoom(Math.round(a * total), Math.round(b * total));
    } else {
      this.onPick(this.rowAt(to.x * total, to.y));
    }
  }

  /** The row drawn under a click: of the rows within a pixel or two of its height, the
   * nearest one whose span covers its time, else the row at that height. */
  rowAt(t, y) {
    const {wf} = this;
    const n = wf.span_count, row = Math.min(n - 1, Math.floor(y * n));
    const spread = Math.ceil(2 * n / HEIGHT);
    for (let d = 0; d <= spread; d++) {
      for (const r of [row - d, row + d]) {
        if (r >= 0 && r < n && wf.start[r] <= t && t <= wf.start[r] + wf.duration[r]) return r;
      }
    }
    return row;
  }
}

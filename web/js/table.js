// The list views' tables: rows that open what they name (a click anywhere on the row, Enter on
// a focused row, a middle or ctrl/⌘ click into a new tab), and columns that fold away, least
// needed first, until the table fits its width — as the CLI's tables do
// (devtrace_query::text::fit): a column marked `keep` (what identifies the row) never folds.

/** A header cell. `fold`: the column's rank when the table is too wide (1 folds first, then 2,
 * …); without it the column is always shown. `num`: right-aligned numbers. `shrink`: free text
 * (a title, a command) that wraps rather than widening the table. */
export function column(label, {fold, num = false, shrink = false} = {}) {
  const th = document.createElement('th');
  th.textContent = label;
  if (fold) th.dataset.fold = String(fold);
  const classes = [num ? 'num' : '', shrink ? 'shrink' : ''].filter(Boolean).join(' ');
  if (classes) th.className = classes;
  return th;
}

/** The header row of `columns` (each from column()). */
export function head(columns) {
  const thead = document.createElement('thead');
  const tr = document.createElement('tr');
  tr.append(...columns);
  thead.append(tr);
  return thead;
}

/**
 * Rows of `tbody` whose `data-href` names what they open: a click anywhere outside the row's
 * own controls goes there (through `navigate`), a middle or ctrl/⌘ click opens it in a new tab,
 * Enter on a focused row opens it. Each row keeps a real link to the same place
 * (`a.row-link`), so the address shows on hover and the browser's own link menu works.
 */
export function openRows(tbody, navigate) {
  tbody.dataset.rows = '';
  const target = (event) => {
    const row = event.target.closest('tr[data-href]');
    if (!row || event.target.closest('a, button, input, select, label, summary, textarea')) return null;
    // Selecting text in a row is not a click on it.
    if (String(getSelection?.() || '') !== '') return null;
    return row;
  };
  tbody.addEventListener('click', (event) => {
    const row = target(event);
    if (!row || event.button !== 0) return;
    if (event.ctrlKey || event.metaKey || event.shiftKey) window.open(row.dataset.href, '_blank', 'noopener');
    else navigate(row.dataset.href);
  });
  tbody.addEventListener('auxclick', (event) => {
    const row = target(event);
    if (row && event.button === 1) { event.preventDefault(); window.open(row.dataset.href, '_blank', 'noopener'); }
  });
  tbody.addEventListener('keydown', (event) => {
    const row = event.target.closest('tr[data-href]');
    if (event.key !== 'Enter' || event.target !== row) return;
    event.preventDefault();
    if (event.ctrlKey || event.metaKey) window.open(row.dataset.href, '_blank', 'noopener');
    else navigate(row.dataset.href);
  });
  // Focusable by script (j/k) but not a tab stop each: the row's link is the tab stop.
  const focusable = () => { for (const row of tbody.rows) if (!row.hasAttribute('tabindex')) row.setAttribute('tabindex', '-1'); };
  focusable();
  new MutationObserver(focusable).observe(tbody, {childList: true});
}

/** Moves the row focus of the page's first list of rows by `step` (j/k, ↓/↑), from the first
 * key press: with no row focused, the first row takes it. Returns whether there was a list. */
export function moveRowFocus(root, step) {
  const rows = [...root.querySelectorAll('tbody[data-rows] > tr[data-href]')].filter((r) => r.offsetParent !== null);
  if (!rows.length) return false;
  const at = rows.indexOf(document.activeElement?.closest?.('tr[data-href]'));
  const next = at < 0 ? rows[step > 0 ? 0 : rows.length - 1] : rows[Math.max(0, Math.min(rows.length - 1, at + step))];
  next.focus({preventScroll: true});
  next.scrollIntoView({block: 'nearest'});
  return true;
}

/** Folds the table's columns (those whose header has `data-fold`) until it is no wider than
 * its container, and unfolds them again when there is room; refits on every resize and on new
 * rows. A table built before it is placed starts once it is in the page. */
export function fitColumns(table, frames = 120) {
  if (!table.isConnected) {
    if (frames > 0) requestAnimationFrame(() => fitColumns(table, frames - 1));
    return;
  }
  const refit = () => fit(table);
  new ResizeObserver(refit).observe(table.parentElement);
  new MutationObserver(refit).observe(table, {childList: true, subtree: true});
  refit();
}

function fit(table) {
  const container = table.parentElement;
  if (!container || !table.tHead?.rows.length) return;
  const headers = [...table.tHead.rows[0].cells];
  // Columns in the order they fold: rank 1 first; among equals, the rightmost first.
  const order = headers.map((th, i) => ({i, rank: Number(th.dataset.fold || 0)}))
    .filter((c) => c.rank > 0).sort((a, b) => a.rank - b.rank || b.i - a.i);
  const folded = new Set();
  apply(table, folded);
  const style = getComputedStyle(container);
  const room = () => container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  for (const c of order) {
    if (table.offsetWidth <= room()) break;
    folded.add(c.i);
    apply(table, folded);
  }
}

/** Hides the cells of the folded columns; a cell spanning several columns narrows its span. */
function apply(table, folded) {
  const shrink = new Set([...table.tHead.rows[0].cells].flatMap((th, i) => (th.classList.contains('shrink') ? [i] : [])));
  for (const row of table.rows) {
    let at = 0;
    for (const cell of row.cells) {
      const span = Number(cell.dataset.span || cell.colSpan || 1);
      if (span > 1) cell.dataset.span = String(span);
      let shown = 0;
      for (let k = at; k < at + span; k++) if (!folded.has(k)) shown++;
      cell.classList.toggle('folded', shown === 0);
      if (span === 1 && shrink.has(at)) cell.classList.add('shrink');
      if (span > 1 && shown > 0) cell.colSpan = shown;
      at += span;
    }
  }
  table.dataset.folded = String(folded.size);
}

/** A bar over a list whose rows carry a checkbox named `compare`: two rows ticked (in the order
 * ticked; a third tick replaces the earliest) are compared with `compare([a, b])`. The bar's
 * `picked` is the ids ticked, kept across the list's refreshes. */
export function pickTwo(body, noun, compare) {
  const picked = [];
  const hintText = `Tick two ${noun}s to compare them.`;
  const button = document.createElement('button');
  button.type = 'button';
  button.disabled = true;
  button.textContent = 'Compare the two ticked';
  const hint = document.createElement('span');
  hint.className = 'muted small';
  hint.textContent = hintText;
  const bar = document.createElement('p');
  bar.className = 'compare-bar';
  bar.append(button, ' ', hint);
  bar.picked = picked;
  button.addEventListener('click', () => { if (picked.length === 2) compare(picked.slice()); });
  body.addEventListener('change', (event) => {
    const box = event.target.closest('input[name="compare"]');
    if (!box) return;
    const at = picked.indexOf(box.value);
    if (box.checked && at < 0) picked.push(box.value);
    if (!box.checked && at >= 0) picked.splice(at, 1);
    while (picked.length > 2) {
      const dropped = picked.shift();
      const other = body.querySelector(`input[name="compare"][value="${dropped}"]`);
      if (other) other.checked = false;
    }
    button.disabled = picked.length !== 2;
    hint.textContent = picked.length === 2 ? `A ${picked[0].slice(0, 8)}, B ${picked[1].slice(0, 8)}` : hintText;
  });
  return bar;
}

// The devtrace web UI: a router over views, each at a stable URL (the CLI and MCP print deep
// links to them), the navigation, global keyboard shortcuts and the live indicator.
//
// Adding a view is local: one entry in VIEWS (navigation and shortcut), one in ROUTES, and a
// module under views/ exporting `render(main, {params, query, navigate}) → cleanup?`.

import {h} from './dom.js';
import {get, onIngest} from './api.js';
import {moveRowFocus} from './table.js';

/** Navigation entries, in order; `key` is the second key of the `g <key>` shortcut. */
export const VIEWS = [
  {path: '/traces', label: 'Traces', key: 't'},
  {path: '/operations', label: 'Operations', key: 'o'},
  {path: '/findings', label: 'Findings', key: 'f'},
  {path: '/compare', label: 'Compare', key: 'c'},
  {path: '/runs', label: 'Runs', key: 'r'},
  {path: '/sessions', label: 'Sessions', key: 's'},
];

/** Path patterns → view modules; captures become `params` (decoded). */
const ROUTES = [
  [/^\/$/, null],
  [/^\/traces\/?$/, () => import('./views/traces.js')],
  [/^\/traces\/([^/]+)$/, () => import('./views/trace.js')],
  [/^\/operations\/?$/, () => import('./views/operations.js')],
  [/^\/operations\/(.+)$/, () => import('./views/operation.js')],
  [/^\/findings\/?$/, () => import('./views/findings.js')],
  [/^\/compare\/?$/, () => import('./views/compare.js')],
  [/^\/runs\/?$/, () => import('./views/runs.js')],
  [/^\/sessions\/?$/, () => import('./views/sessions.js')],
  [/^\/sessions\/compare\/([^/]+)\/([^/]+)$/, () => import('./views/session_compare.js')],
  [/^\/sessions\/([^/]+)$/, () => import('./views/session.js')],
];

const main = document.getElementById('main');
let cleanup = null;
let generation = 0;

/** Goes to an in-app URL (pushing history unless `replace`). */
export function navigate(url, {replace = false} = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

async function route() {
  const {pathname, search} = location;
  if (pathname === '/') return navigate('/traces', {replace: true});
  const found = ROUTES.find(([pattern]) => pattern.test(pathname));
  highlightNav(pathname);
  openMenu(false);
  const mine = ++generation;
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  if (!found || !found[1]) {
    main.replaceChildren(h('h1', {}, 'Not found'),
      h('p', {}, `No view at ${pathname}. `, h('a', {href: '/traces'}, 'See the traces.')));
    return;
  }
  const params = pathname.match(found[0]).slice(1).map(decodeURIComponent);
  const query = new URLSearchParams(search);
  try {
    const view = await found[1]();
    if (mine !== generation) return;
    main.replaceChildren();
    cleanup = await view.render(main, {params, query, navigate});
  } catch (error) {
    if (mine !== generation) return;
    main.replaceChildren(h('h1', {}, 'Something went wrong'), h('p', {class: 'note error'}, String(error.message || error)));
  }
}

function highlightNav(pathname) {
  for (const a of document.querySelectorAll('#nav a')) {
    const current = pathname === a.getAttribute('href') || pathname.startsWith(`${a.getAttribute('href')}/`);
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/** Shows a short message at the bottom of the screen. */
export function toast(message) {
  const box = document.getElementById('toast');
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

function buildNav() {
  const nav = document.getElementById('nav');
  nav.replaceChildren(...VIEWS.map((v) =>
    h('a', {href: v.path, title: `${v.label} (g then ${v.key})`}, v.label)));
  // On a narrow screen the views are behind the menu button (app.css shows it).
  document.getElementById('menu').addEventListener('click', () => openMenu(!document.body.classList.contains('menu-open')));
}

function openMenu(open) {
  document.body.classList.toggle('menu-open', open);
  document.getElementById('menu').setAttribute('aria-expanded', String(open));
}

// In-app links: plain left clicks on same-origin paths go through the router.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  // A jump within the page (#part) is the browser's own.
  if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', route);

// Keyboard: `g` then a view key; `/` focuses the view's search; `?` lists the shortcuts.
let pendingG = false;
document.addEventListener('keydown', (event) => {
  const typing = event.target.closest('input, textarea, select, [contenteditable]');
  if (typing || event.metaKey || event.ctrlKey || event.altKey) return;
  if (pendingG) {
    pendingG = false;
    const view = VIEWS.find((v) => v.key === event.key);
    if (view) { event.preventDefault(); navigate(view.path); }
    return;
  }
  if (event.key === 'g') { pendingG = true; setTimeout(() => { pendingG = false; }, 1500); return; }
  // j/k and the arrows move along a list's rows from the first key press (a view that moves
  // its own way, like the waterfall, has handled the key already).
  const step = {j: 1, ArrowDown: 1, k: -1, ArrowUp: -1}[event.key];
  if (step && !event.defaultPrevented && !event.shiftKey && moveRowFocus(main, step)) { event.preventDefault(); return; }
  if (event.key === 'Escape') openMenu(false);
  if (event.key === '/') {
    const search = main.querySelector('[data-search]');
    if (search) { event.preventDefault(); search.focus(); search.select?.(); }
  } else if (event.key === '?') {
    toast('Keys: g t/o/f/c/r/s go to a view · / search · j k or ↑ ↓ move along a list · Enter open (ctrl+Enter in a new tab) · ← → collapse/expand · Esc close · in a step-through: ← → step, c jumps to the cause, r returns to the wait' +
      // A view's own keys (the trace page's jumps), from its data-view-keys.
      (main.querySelector('[data-view-keys]') ? ` · on this page: ${main.querySelector('[data-view-keys]').dataset.viewKeys}` : ''));
  }
});

// The live indicator: spans arriving per second, from the event stream.
function startLive() {
  const badge = document.getElementById('live');
  badge.textContent = 'connecting…';
  onIngest((event) => {
    badge.textContent = event.spans_per_second > 0
      ? `live · ${Math.round(event.spans_per_second).toLocaleString()} spans/s`
      : 'live';
    badge.classList.toggle('active', event.spans_per_second > 0);
    window.dispatchEvent(new CustomEvent('devtrace:ingest', {detail: event}));
  });
}

// On a team server: the project being read, a switcher when the token may read several
// (an admin's), and signing out. The switcher sets the cookie the server reads the project
// from (`devtrace_project`), then reloads.
async function showAccount() {
  let me;
  try {
    me = await get('me');
  } catch {
    return;
  }
  if (!me.auth_required && me.projects.length <= 1) return;
  const account = h('span', {class: 'account'});
  if (me.projects.length > 1) {
    const select = h('select', {'aria-label': 'Project', id: 'project'},
      ...me.projects.map((name) => h('option', {value: name, selected: name === me.project}, name)));
    select.addEventListener('change', () => {
      document.cookie = `devtrace_project=${encodeURIComponent(select.value)}; path=/; SameSite=Strict`;
      location.reload();
    });
    account.append(h('label', {for: 'project'}, 'Project '), select);
  } else {
    account.append(h('span', {class: 'muted'}, 'Project '), h('strong', {id: 'project'}, me.project));
  }
  if (me.auth_required) {
    account.append(h('form', {method: 'post', action: '/logout', class: 'logout'},
      h('button', {type: 'submit'}, 'Sign out')));
  }
  document.getElementById('live').after(account);
}

buildNav();
startLive();
showAccount();
route();

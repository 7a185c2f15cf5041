// Hash router: #/, #/printer/{id}[/files|/timelapses], #/history[?filters], #/queue, #/login,
// #/setup, #/settings[/tab]. Pages are ES modules loaded on first use; each exports
// mount(root, params) returning a clean-up function. A page may keep its own state in the hash's
// query (history filters) with replaceHash(), which does not re-render.
import { clear, h } from './dom.js';
import { t } from './i18n.js';

const ROUTES = [
  { name: 'overview', re: /^\/?$/, load: () => import('./pages/overview.js') },
  { name: 'printer', re: /^\/printer\/([^/?]+)(?:\/(files|timelapses))?$/, load: () => import('./pages/printer.js'), keys: ['id', 'tab'] },
  { name: 'history', re: /^\/history(?:\?(.*))?$/, load: () => import('./pages/history.js') },
  { name: 'queue', re: /^\/queue$/, load: () => import('./pages/queue.js') },
  { name: 'login', re: /^\/login$/, load: () => import('./pages/login.js'), public: true },
  { name: 'setup', re: /^\/setup$/, load: () => import('./pages/setup.js'), public: true },
  { name: 'settings', re: /^\/settings(?:\/([a-z-]+))?$/, load: () => import('./pages/settings.js'), keys: ['tab'] },
];

let root = null;
let guard = null;
let cleanup = null;
let token = 0;
let first = true;
const listeners = new Set();

export function currentPath() {
  const raw = location.hash.replace(/^#/, '') || '/';
  return raw.startsWith('/') ? raw : `/${raw}`;
}

export function match(path) {
  for (const r of ROUTES) {
    const m = r.re.exec(path);
    if (m) {
      const params = {};
      (r.keys || []).forEach((k, i) => {
        if (m[i + 1] !== undefined) {
          try { params[k] = decodeURIComponent(m[i + 1]); } catch { params[k] = m[i + 1]; }
        }
      });
      return { route: r, params };
    }
  }
  return null;
}

/** Start loading the page module for `path` (e.g. while the session is fetched at boot). */
export function prefetch(path) {
  const m = match(path);
  if (m) m.route.load().catch(() => { /* render() reports it */ });
}

export function navigate(path, { replace = false } = {}) {
  const hash = `#${path}`;
  if (location.hash === hash) { render(); return; }
  if (replace) {
    history.replaceState(null, '', hash);
    render();
  } else {
    location.hash = hash;
  }
}

/** Change the address without rendering again (a page's own state, e.g. its filters). */
export function replaceHash(path) {
  const hash = `#${path}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

export function onRoute(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export async function render() {
  const my = ++token;
  const path = currentPath();
  const m = match(path);
  if (!m) { navigate('/', { replace: true }); return; }
  const redirect = guard ? guard(m.route, path) : null;
  if (redirect && redirect !== path) { navigate(redirect, { replace: true }); return; }
  let mod;
  try {
    mod = await m.route.load();
  } catch (e) {
    console.error(e);
    if (my !== token) return;
    teardown();
    root.appendChild(h('div', { class: 'page' }, h('p', { class: 'notice notice-bad' }, t('error.page_load'))));
    return;
  }
  if (my !== token) return; // a newer navigation won
  teardown();
  for (const fn of listeners) fn(m.route.name, m.params);
  const result = await mod.mount(root, m.params);
  if (my !== token) { if (typeof result === 'function') result(); return; }
  cleanup = typeof result === 'function' ? result : null;
  if (!first && !root.contains(document.activeElement)) {
    const heading = root.querySelector('h1');
    if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
    window.scrollTo(0, 0);
  }
  first = false;
}

function teardown() {
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } }
  cleanup = null;
  clear(root);
}

/** guardFn(route, path) -> path to redirect to, or null. */
export function startRouter(rootEl, guardFn) {
  root = rootEl;
  guard = guardFn;
  window.addEventListener('hashchange', render);
  return render();
}

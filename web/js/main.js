// Boot: theme and language, setup/session check, header and banner, router, live updates.
import { get } from './api.js';
import { app } from './app-state.js';
import { on } from './bus.js';
import './commands.js';
import { mountBanner } from './components/banner.js';
import { mountHeader } from './components/header.js';
import { mountUsbImport } from './components/usb-import.js';
import { h } from './dom.js';
import { initI18n, onLangChange, t } from './i18n.js';
import { currentPath, navigate, prefetch, render, startRouter } from './router.js';
import { clearSession, isAdmin, loadSession, session, sessionAlive } from './session.js';
import { store } from './store.js';
import { initTheme } from './theme.js';
import { clearToasts } from './toast.js';
import { startWs, stopWs } from './ws.js';

initTheme();
initI18n();

const shell = document.getElementById('app');
const header = h('header', { class: 'topbar', id: 'topbar' });
const banner = h('div', { class: 'banner-slot' });
const main = h('main', { id: 'main', class: 'main', tabindex: '-1' });
const skip = h('a', { class: 'skip-link', href: '#main', testid: 'skip-link' });
skip.addEventListener('click', (e) => { e.preventDefault(); main.focus(); });
shell.replaceChildren(skip, header, banner, main);

function paintSkip() { skip.textContent = t('nav.skip'); }
paintSkip();

const redrawHeader = mountHeader(header);
mountBanner(banner);
const usb = mountUsbImport(banner); // the USB stick import prompt (bambu_edge/usb)

function guard(route, path) {
  if (app.needsAdmin) return route.name === 'setup' ? null : '/setup';
  const s = session();
  if (route.name === 'setup') return s ? (isAdmin() ? null : '/') : '/login';
  if (route.name === 'login') return s ? app.returnTo || '/' : null;
  if (!route.public && !s) {
    app.returnTo = path;
    return '/login';
  }
  return null;
}

// The login page and the setup wizard emit this once a session exists.
on('auth:gained', () => {
  app.flash = null;
  app.needsAdmin = false;
  startWs(sessionAlive);
  redrawHeader();
  usb.load();
});

// Any 401 from an authenticated call: the session is over. Back to the login page, saying why.
on('auth:lost', () => {
  const wasIn = Boolean(session());
  clearSession();
  stopWs();
  usb.clear();
  store.clear();
  clearToasts();
  redrawHeader();
  const path = currentPath();
  if (path !== '/login' && path !== '/setup') app.returnTo = path;
  if (wasIn) app.flash = t('login.expired');
  navigate('/login', { replace: true });
});

on('session:changed', () => redrawHeader());

onLangChange(() => {
  paintSkip();
  redrawHeader();
  render();
});

async function boot() {
  main.replaceChildren(h('div', { class: 'page page-loading', 'aria-busy': 'true' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, t('common.loading'))));
  // All at once, not one after another: the page's modules, the setup state and the session (a
  // returning user needs the last two answers; the first page shows as soon as both are in).
  prefetch(currentPath());
  try {
    const [setup] = await Promise.all([get('/api/setup', { auth: false }), loadSession(false)]);
    app.needsAdmin = Boolean(setup && setup.needs_admin);
    if (app.needsAdmin) clearSession();
  } catch (e) {
    main.replaceChildren(h('div', { class: 'page' }, h('div', { class: 'notice notice-bad', role: 'alert', testid: 'boot-error' },
      h('p', {}, t('error.boot')),
      h('button', { class: 'btn', type: 'button', onclick: () => boot() }, t('common.retry')))));
    return;
  }
  if (session()) { startWs(sessionAlive); usb.load(); }
  redrawHeader();
  await startRouter(main, guard);
}

window.addEventListener('unhandledrejection', (e) => {
  console.error(e.reason);
});

boot();

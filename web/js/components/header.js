// Top bar: brand, navigation, live indicator, language switch, theme toggle, user + logout.
import { emit, on } from '../bus.js';
import { clear, h, s as svg, setText, toggleClass } from '../dom.js';
import { getLang, LANGUAGES, setLang, t } from '../i18n.js';
import { icon } from '../icons.js';
import { navigate, onRoute } from '../router.js';
import { logout, session, user } from '../session.js';
import { stopWs } from '../ws.js';
import { store } from '../store.js';
import { currentTheme, onThemeChange, toggleTheme } from '../theme.js';
import { clearToasts, toastError } from '../toast.js';
import { panelDot } from './panel-led.js';
import { versionLine } from './version-line.js';

// The favicon's picture, drawn inline: no extra request for every time the header is drawn.
function logo() {
  const bar = (x, y, w) => svg('rect', { x, y, width: w, height: 4.5, rx: 1.5, fill: '#2ec866' });
  const line = (d, w) => svg('path', { d, stroke: '#97a2b1', 'stroke-width': w, 'stroke-linecap': 'round' });
  return svg('svg', { class: 'brand-logo', viewBox: '0 0 64 64', width: 28, height: 28, 'aria-hidden': 'true', focusable: 'false' },
    svg('rect', { width: 64, height: 64, rx: 14, fill: '#10161c' }),
    line('M12 14h40', 4), svg('path', { d: 'M26 14h12v8l-6 7-6-7z', fill: '#e8ebf0' }),
    bar(24, 32, 16), bar(21, 38.5, 22), bar(18, 45, 28), line('M10 53h44', 3.5));
}

export function mountHeader(el) {
  let routeName = null;
  const navLinks = [];

  function themeButton() {
    const btn = h('button', { type: 'button', class: 'icon-btn', testid: 'theme-toggle', id: 'theme-toggle' });
    const paint = () => {
      const dark = currentTheme() === 'dark';
      btn.replaceChildren(icon(dark ? 'sun' : 'moon'));
      const label = dark ? t('theme.to_light') : t('theme.to_dark');
      btn.setAttribute('aria-label', label);
      btn.title = label;
      btn.dataset.theme = currentTheme();
    };
    paint();
    btn.addEventListener('click', toggleTheme);
    onThemeChange(paint);
    return btn;
  }

  function langSelect() {
    const sel = h('select', { class: 'lang-select', testid: 'lang-switch', id: 'lang-switch', 'aria-label': t('lang.label'), title: t('lang.label') },
      LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === getLang(), lang: l.code }, l.short)));
    sel.value = getLang();
    sel.addEventListener('change', () => setLang(sel.value));
    return sel;
  }

  const led = panelDot(); // the status LED's pattern (bambu_edge/panel)
  const version = versionLine(); // installed version; a newer package from apt's sources
  const liveDot = h('span', { class: 'live-dot', 'aria-hidden': 'true' });
  const liveText = h('span', { class: 'live-text' });
  const live = h('span', { class: 'live', testid: 'live-indicator', role: 'status' }, liveDot, liveText);
  function paintLive() {
    const on_ = store.isLive();
    toggleClass(live, 'is-live', on_);
    setText(liveText, on_ ? t('live.on') : t('live.off'));
    live.dataset.live = on_ ? 'true' : 'false';
  }
  store.onLive(paintLive);

  function paintNav() {
    for (const a of navLinks) {
      const active = a.dataset.route === routeName || (a.dataset.route === 'overview' && routeName === 'printer');
      toggleClass(a, 'is-active', active);
      if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
  }
  onRoute((name) => { routeName = name; paintNav(); });

  async function doLogout() {
    try {
      await logout();
    } catch (e) {
      toastError(e);
    }
    stopWs();
    store.clear();
    clearToasts();
    emit('session:changed');
    navigate('/login');
  }

  function draw() {
    clear(el);
    navLinks.length = 0;
    const s = session();
    const brand = h('a', { class: 'brand', href: '#/', 'aria-label': t('app.home'), testid: 'brand' }, logo(), h('span', { class: 'brand-name' }, 'bambu-edge'));
    const left = h('div', { class: 'topbar-left' }, brand);
    if (s) {
      const mk = (route, href, ic, label, testid) => {
        const a = h('a', { href, class: 'nav-link', dataset: { route }, testid, 'aria-label': label, title: label }, icon(ic), h('span', { class: 'nav-text' }, label));
        navLinks.push(a);
        return a;
      };
      left.appendChild(h('nav', { class: 'nav', 'aria-label': t('nav.main') },
        mk('overview', '#/', 'grid', t('nav.printers'), 'nav-printers'),
        mk('queue', '#/queue', 'queue', t('nav.queue'), 'nav-queue'),
        mk('history', '#/history', 'history', t('nav.history'), 'nav-history'),
        mk('settings', '#/settings', 'settings', t('nav.settings'), 'nav-settings')));
    }
    const right = h('div', { class: 'topbar-right' });
    if (s) { right.append(version.el, led.el, live); paintLive(); led.load(); version.load(); }
    right.appendChild(langSelect());
    right.appendChild(themeButton());
    if (s) {
      const u = user();
      right.appendChild(h('span', { class: 'user-name', testid: 'header-user' }, u?.name || ''));
      right.appendChild(h('button', { type: 'button', class: 'icon-btn', testid: 'logout', 'aria-label': t('nav.logout'), title: t('nav.logout'), onclick: doLogout }, icon('logout')));
    }
    el.append(left, right);
    paintNav();
  }

  on('session:changed', draw);
  draw();
  return draw;
}

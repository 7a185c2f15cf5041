// Overview: one card per printer. Cards are created/removed as printers come and go; each card
// updates itself from the store, so a WS delta never re-renders the page.
import { createPrinterCard } from '../components/printer-card.js';
import { h, scope } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { isAdmin } from '../session.js';
import { store } from '../store.js';

export function mount(root) {
  const sc = scope();
  const cards = new Map(); // id -> {el, destroy}
  const grid = h('div', { class: 'cards', testid: 'printer-cards' });
  const empty = h('div', { class: 'panel empty', testid: 'no-printers', hidden: true },
    icon('printer', 'icon empty-icon'),
    h('h2', {}, t('overview.empty_title')),
    h('p', {}, isAdmin() ? t('overview.empty_admin') : t('overview.empty_user')),
    isAdmin() ? h('a', { class: 'btn btn-primary', href: '#/settings/printers', testid: 'add-first-printer' }, icon('plus'), t('printers.add')) : null);
  const waiting = h('div', { class: 'page-loading', testid: 'overview-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, t('common.loading')));
  const count = h('p', { class: 'page-sub', testid: 'printer-count' });
  const page = h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, t('overview.title')), count)),
    waiting, empty, grid);
  root.appendChild(page);

  let seen = store.isLive() || store.list().length > 0;

  function sync() {
    const ids = store.list().map((p) => p.id);
    for (const [id, c] of cards) {
      if (!store.has(id)) { c.destroy(); c.el.remove(); cards.delete(id); }
    }
    ids.forEach((id) => {
      let c = cards.get(id);
      if (!c) { c = createPrinterCard(id); cards.set(id, c); }
      if (grid.children[ids.indexOf(id)] !== c.el) grid.insertBefore(c.el, grid.children[ids.indexOf(id)] || null);
    });
    waiting.hidden = seen;
    empty.hidden = !seen || ids.length > 0;
    const online = store.list().filter((p) => p.link?.state === 'connected').length;
    count.textContent = ids.length ? t('overview.count', { count: ids.length, online }) : '';
  }

  sc.add(store.onList(() => { seen = true; sync(); }));
  sc.add(store.onLive((live) => { if (live) { seen = true; sync(); } }));
  // Keep the "n online" count right without touching the cards.
  const linkWatch = new Map();
  const watchLinks = () => {
    for (const p of store.list()) {
      if (!linkWatch.has(p.id)) {
        linkWatch.set(p.id, store.watch(p.id, ['link.state'], () => {
          const online = store.list().filter((x) => x.link?.state === 'connected').length;
          count.textContent = store.list().length ? t('overview.count', { count: store.list().length, online }) : '';
        }, { immediate: false }));
      }
    }
  };
  sc.add(store.onList(watchLinks));
  watchLinks();
  sc.add(() => { for (const u of linkWatch.values()) u(); });
  sync();

  return () => {
    for (const c of cards.values()) c.destroy();
    sc.dispose();
  };
}

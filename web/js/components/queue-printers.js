// The printers as the queue sees them: ready for the next job, or why not (in the API's plain
// words), and the bed: "Mark bed clear" once the last print is off it (or "Not clear" to hold
// the queue back from a printer).
import { h, scope } from '../dom.js';
import { isActiveJob } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { printerName, store } from '../store.js';
import { createLinkBadge } from './link-badge.js';
import { markBed } from './print-extras.js';

/** createQueuePrinters() -> {el, set(list), update(readiness), destroy} */
export function createQueuePrinters() {
  const list = h('ul', { class: 'list queue-printers', testid: 'queue-printers' });
  const empty = h('p', { class: 'muted', hidden: true }, t('queue.no_printers'));
  const el = h('section', { class: 'panel', testid: 'queue-printers-panel', 'aria-labelledby': 'queue-printers-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'queue-printers-title' }, t('queue.printers'))), list, empty);
  const ready = new Map(); // id -> readiness
  const rows = new Map(); // id -> {el, sc}

  async function mark(id, clear, btn) {
    const r = await markBed(id, clear, btn);
    if (r) update(r);
  }

  function row(r) {
    const id = r.id;
    const sc = scope();
    const p = store.get(id);
    const name = printerName(id);
    const reason = typeof r.reason === 'string' && r.reason ? r.reason : '';
    const bedReason = /bed/i.test(reason);
    // One line that says it all: ready, or the first reason it is not (the API's words).
    const readyBadge = r.ready
      ? h('span', { class: 'badge tone-good', testid: 'printer-ready' }, t('queue.ready'))
      : h('span', { class: 'badge tone-warn', testid: 'printer-ready' }, t('queue.not_ready'));
    const why = !r.ready && reason ? h('span', { class: 'printer-reason', testid: 'printer-reason' }, reason[0].toUpperCase() + reason.slice(1)) : null;
    const printing = isActiveJob(p?.print?.state);
    const online = p?.link?.state === 'connected';
    // Marking the bed clear during a print means nothing: it is "not clear" again when it ends.
    let btn = null;
    if (!r.bed_clear && !printing) {
      btn = h('button', { type: 'button', class: 'btn btn-small', testid: 'bed-clear', 'aria-label': t('bed.mark_clear_named', { name }), disabled: !online }, icon('check'), t('bed.mark_clear'));
    } else if (r.bed_clear && !printing) {
      btn = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'bed-unclear', 'aria-label': t('bed.mark_unclear_named', { name }) }, t('bed.mark_unclear'));
    }
    btn?.addEventListener('click', () => mark(id, !r.bed_clear, btn));
    const bed = bedReason ? null : h('span', { class: 'list-sub bed-state', testid: 'bed-state' }, icon('bed', 'icon icon-xs'), r.bed_clear ? t('bed.clear') : t('bed.not_clear'));
    const el = h('li', { class: 'list-item', testid: 'queue-printer', dataset: { printerId: id, ready: r.ready ? 'true' : 'false', bedClear: r.bed_clear ? 'true' : 'false' } },
      h('div', { class: 'list-main' },
        h('div', { class: 'list-title' }, h('a', { href: `#/printer/${encodeURIComponent(id)}`, class: 'plain-link' }, name),
          p?.model ? h('span', { class: 'chip' }, String(p.model)) : null, store.has(id) && !online ? createLinkBadge(id, sc) : null),
        h('div', { class: 'printer-status' }, readyBadge, why),
        bed),
      btn);
    return { el, sc };
  }

  function paint(id) {
    const r = ready.get(id);
    const old = rows.get(id);
    const focused = old && old.el.contains(document.activeElement);
    const fresh = row(r);
    if (old) { old.sc.dispose(); old.el.replaceWith(fresh.el); } else list.appendChild(fresh.el);
    rows.set(id, fresh);
    if (focused) fresh.el.querySelector('button')?.focus();
  }

  function update(r) {
    if (!r || typeof r.id !== 'string') return;
    ready.set(r.id, r);
    paint(r.id);
    watchAll();
    empty.hidden = ready.size > 0;
  }

  function set(items) {
    for (const { el: e, sc } of rows.values()) { sc.dispose(); e.remove(); }
    rows.clear();
    ready.clear();
    for (const r of Array.isArray(items) ? items : []) update(r);
    empty.hidden = ready.size > 0;
  }

  const off = store.onList(() => { for (const id of ready.keys()) paint(id); });
  // Printing or not, online or not: changes which bed action makes sense.
  const watched = new Map();
  const watchAll = () => {
    for (const id of ready.keys()) {
      if (!watched.has(id)) watched.set(id, store.watch(id, ['print.state', 'link.state'], () => { if (ready.has(id)) paint(id); }, { immediate: false }));
    }
  };
  return { el, set, update, destroy() { off(); for (const u of watched.values()) u(); for (const r of rows.values()) r.sc.dispose(); } };
}

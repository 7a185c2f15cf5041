// A printer's timelapse videos, newest first, each with its date, size and a download link.
import { ApiError, enc, get } from '../api.js';
import { h, scope, show } from '../dom.js';
import { fmtBytes, fmtDateTime, isNum } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { onReconnect } from '../store.js';
import { storageNotice } from './storage-error.js';
import { createTransfers } from './transfers.js';

/** video_2025-03-12_18-04-11.mp4 -> epoch seconds (the printer's local time), else null. */
export function timeFromName(name) {
  const m = /(\d{4})-(\d{2})-(\d{2})_(\d{2})-(\d{2})-(\d{2})/.exec(String(name || ''));
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(d.getTime()) ? null : d.getTime() / 1000;
}

export function createTimelapses(id) {
  const sc = scope();
  let token = 0;
  const list = h('ul', { class: 'list videos', testid: 'timelapse-list' });
  const status = h('div', { 'aria-live': 'polite' });
  const empty = h('div', { class: 'empty-line', testid: 'timelapse-empty', hidden: true },
    h('p', {}, t('timelapse.empty')), h('p', { class: 'field-hint' }, t('timelapse.empty_hint')));
  const refresh = h('button', { type: 'button', class: 'icon-btn', testid: 'timelapse-refresh', 'aria-label': t('files.refresh'), title: t('files.refresh') }, icon('refresh'));
  const transfers = createTransfers(id, sc);
  const el = h('section', { class: 'panel', testid: 'timelapse-panel', 'aria-label': t('timelapse.title') },
    h('div', { class: 'panel-head' }, h('h2', {}, t('timelapse.title')), refresh),
    transfers.el, status, list, empty);

  function item(e) {
    const name = String(e.name);
    const when = timeFromName(name) ?? (isNum(e.modified) ? e.modified : null);
    const href = `/api/printers/${enc(id)}/files/content?path=${enc(e.path)}`;
    return h('li', { class: 'list-item', testid: 'timelapse-row', dataset: { name } },
      icon('video', 'icon file-icon'),
      h('div', { class: 'list-main' },
        h('div', { class: 'list-title' }, when ? fmtDateTime(when) : name),
        h('div', { class: 'list-sub' }, [when ? name : null, isNum(e.size) ? fmtBytes(e.size) : null].filter(Boolean).join(' · '))),
      h('a', { class: 'btn btn-small', href, download: name, testid: 'timelapse-download', 'aria-label': t('files.download_named', { name }) }, icon('download'), h('span', { class: 'btn-text' }, t('files.download'))));
  }

  async function load() {
    const my = ++token;
    status.replaceChildren(h('p', { class: 'page-sub' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ', t('common.loading')));
    try {
      const res = await get(`/api/printers/${enc(id)}/timelapses`, { timeout: 45000 });
      if (my !== token) return;
      const entries = (Array.isArray(res?.entries) ? res.entries : []).filter((x) => x && typeof x.name === 'string' && typeof x.path === 'string' && !x.is_dir);
      status.replaceChildren();
      list.replaceChildren(...entries.map(item));
      show(list, entries.length > 0);
      show(empty, entries.length === 0);
    } catch (e) {
      if (my !== token) return;
      if (e instanceof ApiError && e.status === 401) return;
      show(list, false);
      show(empty, false);
      status.replaceChildren(storageNotice(e, () => load(), 'timelapse-error'));
    }
  }

  refresh.addEventListener('click', () => load());
  sc.add(onReconnect(id, load));
  load();
  return { el, destroy: () => { token += 1; sc.dispose(); } };
}

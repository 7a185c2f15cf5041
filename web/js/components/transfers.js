// Transfers to and from one printer's storage, each with a progress bar: uploads started here
// (progress from the browser's own upload, and the printer side from `transfer` frames) and any
// download or upload the unit reports for this printer (`transfer` frames, e.g. a download started
// by a link, or the queue sending a file). Finished rows go after a few seconds; failed ones stay
// until dismissed, saying why.
import { on } from '../bus.js';
import { h, setAttr, setText } from '../dom.js';
import { fmtBytes, fmtPercent, isNum } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';

const DONE_SHOWN_MS = 4000;
const base = (p) => String(p || '').split('/').pop() || String(p || '');

export function createTransfers(printerId, sc) {
  const list = h('ul', { class: 'transfers', testid: 'transfers', 'aria-live': 'polite', 'aria-label': t('transfer.list') });
  const rows = new Map(); // `${direction}:${path}` -> row

  function row(direction, path) {
    const key = `${direction}:${path}`;
    let r = rows.get(key);
    if (r && !r.finished) return r;
    if (r) r.el.remove();
    const fill = h('span', { class: 'progress-fill' });
    const bar = h('span', { class: 'progress-track', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': t(`transfer.${direction}_named`, { name: base(path) }) }, fill);
    const text = h('span', { class: 'transfer-text', testid: 'transfer-text' });
    const close = h('button', { type: 'button', class: 'icon-btn icon-btn-sm', testid: 'transfer-cancel', 'aria-label': t('transfer.cancel_named', { name: base(path) }) }, icon('x'));
    const el = h('li', { class: 'transfer', testid: 'transfer', dataset: { direction, path, state: 'running' } },
      icon(direction === 'upload' ? 'upload' : 'download', 'icon transfer-icon'),
      h('span', { class: 'transfer-main' }, h('span', { class: 'transfer-name' }, base(path)), bar, text),
      close);
    r = { el, fill, bar, text, close, done: 0, total: null, finished: false, abort: null, timer: null };
    close.addEventListener('click', () => {
      if (!r.finished && r.abort) { r.abort(); return; }
      remove(key);
    });
    rows.set(key, r);
    list.appendChild(el);
    return r;
  }

  function remove(key) {
    const r = rows.get(key);
    if (!r) return;
    clearTimeout(r.timer);
    r.el.remove();
    rows.delete(key);
  }

  function paint(r, phase) {
    const pct = isNum(r.total) && r.total > 0 ? Math.min(100, (r.done / r.total) * 100) : null;
    r.fill.style.width = pct === null ? '100%' : `${pct}%`;
    r.el.classList.toggle('is-indeterminate', pct === null && !r.finished);
    setAttr(r.bar, 'aria-valuenow', pct === null ? null : String(Math.round(pct)));
    const amount = isNum(r.total) ? t('transfer.of', { done: fmtBytes(r.done), total: fmtBytes(r.total) }) : fmtBytes(r.done);
    setText(r.text, phase || (pct === null ? amount : `${fmtPercent(pct)} · ${amount}`));
  }

  function finish(r, key, state, message) {
    r.finished = true;
    r.el.dataset.state = state;
    r.abort = null;
    if (state === 'done') {
      r.done = r.total ?? r.done;
      paint(r, t('transfer.done'));
      r.close.setAttribute('aria-label', t('common.dismiss'));
      r.timer = setTimeout(() => remove(key), DONE_SHOWN_MS);
    } else {
      r.el.classList.remove('is-indeterminate');
      setText(r.text, message || t('transfer.failed'));
      r.close.setAttribute('aria-label', t('common.dismiss'));
    }
  }

  sc.add(on('ws:transfer', (msg) => {
    if (!msg || msg.id !== printerId || typeof msg.path !== 'string') return;
    const direction = msg.direction === 'upload' ? 'upload' : 'download';
    const key = `${direction}:${msg.path}`;
    const existing = rows.get(key);
    if (existing && existing.finished) {
      if (msg.state !== 'running') return; // the final frame of what is already shown
    }
    const r = row(direction, msg.path);
    if (isNum(msg.total) && msg.total > 0) r.total = msg.total;
    if (isNum(msg.done)) r.done = Math.max(r.done, msg.done);
    if (msg.state === 'done' && !r.abort) finish(r, key, 'done');
    else if (msg.state === 'failed' && !r.abort) finish(r, key, 'failed', msg.error ? t('transfer.failed_msg', { message: msg.error }) : null);
    else if (!r.finished) paint(r);
  }));
  sc.add(() => { for (const r of rows.values()) clearTimeout(r.timer); });

  /** An upload started here: progress(sent, total), saving(), done(), failed(message). */
  function startUpload(path, total, abort) {
    const key = `upload:${path}`;
    const r = row('upload', path);
    r.total = total;
    r.done = 0;
    r.abort = abort;
    r.close.setAttribute('aria-label', t('transfer.cancel_named', { name: base(path) }));
    paint(r);
    return {
      progress(sent, tot) {
        if (isNum(tot) && tot > 0) r.total = tot;
        r.done = Math.max(r.done, sent);
        if (r.total && r.done >= r.total) paint(r, t('transfer.saving'));
        else paint(r);
      },
      done() { r.abort = null; finish(r, key, 'done'); },
      failed(message) { r.abort = null; finish(r, key, 'failed', message); },
    };
  }

  return { el: list, startUpload };
}

// On a printer's card and page: the picture of the plate it prints (when the print's history
// record has one) and, when the bed has not been marked clear since the last print, a "Mark bed
// clear" action (the queue starts nothing on that printer until someone has looked at the bed).
import { enc, post } from '../api.js';
import { h, setText, show } from '../dom.js';
import { isActiveJob } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { bedOf, queueAvailable, recordOf, setBed, watchPrinterJobs } from '../jobs-live.js';
import { printerName, store } from '../store.js';
import { errorText, toast } from '../toast.js';

const connected = (p) => p?.link?.state === 'connected';

/** The record's picture while it prints, and after it ended while the printer still shows it. */
function shownRecord(id) {
  const r = recordOf(id);
  const p = store.get(id);
  if (!r || !connected(p) || typeof r.thumbnail !== 'string' || !r.thumbnail) return null;
  const st = String(p.print?.state || '').toUpperCase();
  if (r.outcome === 'running') return isActiveJob(st) ? r : null;
  return st === 'FINISH' || st === 'FAILED' ? r : null;
}

/** createPrintThumb(id, sc) -> element (hidden while there is no picture). */
export function createPrintThumb(id, sc, { size = 'md' } = {}) {
  const el = h('span', { class: `print-thumb print-thumb-${size} live-only`, testid: 'print-thumb', hidden: true });
  let shownId = null;
  const paint = () => {
    const r = shownRecord(id);
    show(el, Boolean(r));
    if (!r) { shownId = null; return; }
    if (shownId === r.id) return;
    shownId = r.id;
    const img = h('img', { src: r.thumbnail, alt: t('print.thumb_alt', { job: r.job || r.file || '' }), decoding: 'async', width: '96', height: '96' });
    img.addEventListener('error', () => { show(el, false); }, { once: true });
    el.replaceChildren(img);
    el.dataset.recordId = String(r.id);
  };
  sc.add(watchPrinterJobs(id, paint));
  sc.add(store.watch(id, ['print.state', 'link.state'], paint, { immediate: false }));
  return el;
}

/** markBed(id, clear, btn) -> the printer's new readiness, or null when it failed (said in a
 *  toast). `btn` stays disabled while the request runs. The card, the printer page and the queue
 *  page all mark beds through this. */
export async function markBed(id, clear, btn) {
  btn.disabled = true;
  btn.classList.add('is-pending');
  const name = printerName(id);
  try {
    const r = await post(`/api/printers/${enc(id)}/bed`, { clear });
    setBed(r);
    if (clear) toast(t('bed.marked', { name }), { kind: 'success' });
    return r;
  } catch (e) {
    toast(errorText(e), { kind: 'error', title: name });
    return null;
  } finally {
    btn.disabled = false;
    btn.classList.remove('is-pending');
  }
}

/** createBedClear(id, sc) -> element: "Bed not marked clear" + the button, when that applies. */
export function createBedClear(id, sc) {
  const text = h('span', { class: 'bed-text' });
  const btn = h('button', { type: 'button', class: 'btn btn-small', testid: 'bed-clear' }, icon('check'), h('span', {}));
  const el = h('div', { class: 'bed-note live-only', testid: 'bed-note', hidden: true }, icon('bed'), text, btn);
  const paint = () => {
    const p = store.get(id);
    const bed = bedOf(id);
    const visible = queueAvailable() && Boolean(bed) && bed.bed_clear === false && connected(p) && !isActiveJob(p?.print?.state);
    show(el, visible);
    if (!visible) return;
    setText(text, t('bed.not_clear'));
    setText(btn.lastChild, t('bed.mark_clear'));
    btn.setAttribute('aria-label', t('bed.mark_clear_named', { name: printerName(id) }));
  };
  btn.addEventListener('click', () => { if (!btn.disabled) markBed(id, true, btn); });
  sc.add(watchPrinterJobs(id, paint));
  sc.add(store.watch(id, ['print.state', 'link.state', 'name'], paint, { immediate: false }));
  return el;
}

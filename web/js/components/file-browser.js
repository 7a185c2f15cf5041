// A printer's storage (SD card / USB stick over FTPS): browse folders, upload with progress,
// download, delete after confirming, and start a print of a .3mf or .gcode already there.
// Everything goes through /api/printers/{id}/files*; nothing is kept on the unit.
import { ApiError, del, enc, get, post } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { field, h, scope, show } from '../dom.js';
import { fmtBytes, fmtDateTime, isActiveJob, isNum } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { onReconnect, printerName, store } from '../store.js';
import { errorText, toast } from '../toast.js';
import { upload } from '../upload.js';
import { printOptions } from './print-options.js';
import { storageNotice, storageText } from './storage-error.js';
import { createTransfers } from './transfers.js';

const PRINTABLE = /\.(3mf|gcode)$/i;
const KEY = 'bambu-edge.files.';
const join = (dir, name) => `${dir.replace(/\/+$/, '')}/${name}`;

function remembered(id) {
  try { return sessionStorage.getItem(KEY + id) || '/'; } catch { return '/'; }
}

function remember(id, path) {
  try { sessionStorage.setItem(KEY + id, path); } catch { /* storage may be blocked */ }
}

/** A name the printer can store: one path part, printable, not too long. null if fine, else why. */
export function badName(name) {
  if (!name || name === '.' || name === '..') return t('files.bad_name');
  if (/[/\\]/.test(name) || [...name].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127)) return t('files.bad_name');
  if (new TextEncoder().encode(name).length > 255) return t('files.name_too_long');
  return null;
}

/** The "print this file" form, shown in a dialog: plate (3MF) and the usual print options. */
function printForm(path) {
  const is3mf = /\.3mf$/i.test(path);
  const plate = h('input', { type: 'number', min: '1', max: '1000', step: '1', value: '1', inputmode: 'numeric' });
  const opts = is3mf ? printOptions('print-opt') : null;
  const el = h('div', { class: 'form', testid: 'print-form' },
    h('p', { class: 'mono print-path' }, path),
    is3mf ? field({ label: t('files.plate'), input: plate, testid: 'print-plate', hint: t('files.plate_hint') }) : h('p', { class: 'field-hint' }, t('files.gcode_hint')),
    opts ? h('fieldset', { class: 'checks' }, h('legend', {}, t('opt.title')), opts.labels) : null,
    h('p', { class: 'field-hint' }, t('files.print_hint')));
  return {
    el,
    value() {
      const body = { path };
      if (is3mf) {
        const n = Number(plate.value);
        body.plate = Number.isInteger(n) && n >= 1 ? n : 1;
        body.options = opts.value();
      }
      return body;
    },
  };
}

export function createFileBrowser(id) {
  const sc = scope();
  let path = remembered(id);
  let entries = [];
  let token = 0;

  const crumbs = h('nav', { class: 'crumbs', 'aria-label': t('files.folder'), testid: 'files-crumbs' });
  const fileInput = h('input', { type: 'file', multiple: true, class: 'sr-only', tabindex: '-1', 'aria-hidden': 'true', testid: 'files-upload-input' });
  const uploadBtn = h('button', { type: 'button', class: 'btn btn-primary', testid: 'files-upload' }, icon('upload'), t('files.upload'));
  const refresh = h('button', { type: 'button', class: 'icon-btn', testid: 'files-refresh', 'aria-label': t('files.refresh'), title: t('files.refresh') }, icon('refresh'));
  const transfers = createTransfers(id, sc);
  const status = h('div', { class: 'files-status', testid: 'files-status', 'aria-live': 'polite' });
  const tbody = h('tbody', {});
  const table = h('table', { class: 'table files-table', testid: 'files-table' },
    h('caption', { class: 'sr-only' }, t('files.caption')),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('files.name')),
      h('th', { scope: 'col', class: 'num' }, t('files.size')),
      h('th', { scope: 'col' }, t('files.modified')),
      h('th', { scope: 'col', class: 'actions' }, h('span', { class: 'sr-only' }, t('files.actions'))))),
    tbody);
  const empty = h('p', { class: 'empty-line', testid: 'files-empty', hidden: true }, t('files.empty'));
  const busyNote = h('p', { class: 'field-hint busy-note', testid: 'files-busy', hidden: true }, icon('info'), t('files.busy'));
  const el = h('section', { class: 'panel files', testid: 'files-panel', 'aria-label': t('files.title') },
    h('div', { class: 'panel-head' }, h('h2', {}, t('files.title')), h('div', { class: 'toolbar' }, refresh, uploadBtn, fileInput)),
    crumbs, busyNote, transfers.el, status, table, empty);

  function paintCrumbs() {
    const parts = path.split('/').filter(Boolean);
    const items = [h('li', {}, crumbButton('/', t('files.root')))];
    parts.forEach((part, i) => {
      const target = `/${parts.slice(0, i + 1).join('/')}`;
      items.push(h('li', {}, i === parts.length - 1 ? h('span', { 'aria-current': 'location', class: 'crumb-current', tabindex: '-1' }, part) : crumbButton(target, part)));
    });
    if (!parts.length) items[0] = h('li', {}, h('span', { 'aria-current': 'location', class: 'crumb-current', tabindex: '-1' }, icon('folder'), t('files.root')));
    crumbs.replaceChildren(h('ol', {}, items));
  }

  function crumbButton(target, label) {
    return h('button', { type: 'button', class: 'crumb', testid: 'files-crumb', onclick: () => open(target) }, target === '/' ? icon('folder') : null, label);
  }

  const busy = () => isActiveJob(store.get(id)?.print?.state);

  function row(e) {
    const name = typeof e.name === 'string' ? e.name : '';
    const p = typeof e.path === 'string' ? e.path : join(path, name);
    const nameCell = e.is_dir
      ? h('button', { type: 'button', class: 'file-link', testid: 'files-open', onclick: () => open(p) }, icon('folder', 'icon file-icon is-dir'), h('span', {}, name))
      : h('span', { class: 'file-name' }, icon(/\.mp4$/i.test(name) ? 'video' : 'file', 'icon file-icon'), h('span', {}, name));
    const actions = h('div', { class: 'row-actions' });
    if (!e.is_dir) {
      if (PRINTABLE.test(name)) {
        const printBtn = h('button', { type: 'button', class: 'btn btn-small', testid: 'files-print', 'aria-label': t('files.print_named', { name }), disabled: busy() }, icon('play'), h('span', { class: 'btn-text' }, t('files.print')));
        printBtn.addEventListener('click', () => startPrint(p, printBtn));
        actions.appendChild(printBtn);
      }
      actions.appendChild(h('a', {
        class: 'btn btn-small', href: `/api/printers/${enc(id)}/files/content?path=${enc(p)}`, download: name,
        testid: 'files-download', 'aria-label': t('files.download_named', { name }), title: t('files.download'),
      }, icon('download'), h('span', { class: 'btn-text' }, t('files.download'))));
    }
    if (!e.is_dir) {
      actions.appendChild(h('button', {
        type: 'button', class: 'btn btn-small btn-danger', testid: 'files-delete', 'aria-label': t('files.delete_named', { name }),
        title: t('files.delete'), onclick: () => remove(e, p, name),
      }, icon('trash')));
    }
    return h('tr', { testid: 'files-row', dataset: { name, path: p, dir: e.is_dir ? 'true' : 'false' } },
      h('td', { class: 'file-cell', 'data-label': t('files.name') }, nameCell),
      h('td', { class: 'num', 'data-label': t('files.size') }, e.is_dir ? '' : fmtBytes(e.size)),
      h('td', { class: 'muted nowrap', 'data-label': t('files.modified') }, isNum(e.modified) ? fmtDateTime(e.modified) : ''),
      h('td', { class: 'actions' }, actions));
  }

  function paintBusy() {
    const printable = entries.some((e) => !e.is_dir && PRINTABLE.test(e.name));
    show(busyNote, printable && busy() && store.get(id)?.link?.state === 'connected');
  }

  function paint() {
    paintBusy();
    tbody.replaceChildren(...entries.map(row));
    show(table, entries.length > 0);
    show(empty, entries.length === 0);
  }

  async function load() {
    const my = ++token;
    paintCrumbs();
    status.replaceChildren(h('p', { class: 'page-sub', testid: 'files-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ', t('common.loading')));
    el.setAttribute('aria-busy', 'true');
    try {
      const res = await get(`/api/printers/${enc(id)}/files?path=${enc(path)}`, { timeout: 45000 });
      if (my !== token) return;
      entries = Array.isArray(res?.entries) ? res.entries.filter((x) => x && typeof x.name === 'string') : [];
      status.replaceChildren();
      paint();
    } catch (e) {
      if (my !== token) return;
      if (e instanceof ApiError && e.status === 404 && path !== '/') {
        // The folder went away (or never was): go up rather than show an empty error page.
        path = '/';
        remember(id, path);
        load();
        return;
      }
      entries = [];
      paintBusy();
      show(table, false);
      show(empty, false);
      status.replaceChildren(storageNotice(e, () => load(), 'files-error'));
    } finally {
      if (my === token) el.removeAttribute('aria-busy');
    }
  }

  function open(target) {
    path = target || '/';
    remember(id, path);
    // The button that was clicked is gone with the old listing: keep keyboard users in the list.
    const hadFocus = el.contains(document.activeElement);
    load().then(() => {
      if (!hadFocus || el.contains(document.activeElement)) return;
      const first = tbody.querySelector('button:not(:disabled), a[href]');
      (first || crumbs.querySelector('[aria-current]'))?.focus?.();
    });
  }

  async function remove(e, p, name) {
    const ok = await confirmDialog({ title: t('files.delete_title', { name }), body: t('files.delete_body'), ok: t('files.delete'), danger: true });
    if (!ok) return;
    try {
      await del(`/api/printers/${enc(id)}/files?path=${enc(p)}`, { timeout: 45000 });
      toast(t('files.deleted', { name }), { kind: 'success' });
      entries = entries.filter((x) => x !== e);
      paint();
    } catch (err) {
      toast(storageText(err), { kind: 'error', title: name });
      load(); // what is there now is not known
    }
  }

  async function startPrint(p, btn) {
    const form = printForm(p);
    const name = printerName(id);
    const ok = await confirmDialog({ title: t('files.print_title', { name }), body: form.el, ok: t('files.print_start') });
    if (!ok) return;
    btn.disabled = true;
    try {
      await post(`/api/printers/${enc(id)}/print`, form.value(), { timeout: 120000 });
      toast(t('files.print_sent', { file: p.split('/').pop() }), { kind: 'info', title: name, timeout: 4000 });
    } catch (err) {
      toast(storageText(err), { kind: 'error', title: name });
    } finally {
      btn.disabled = busy();
    }
  }

  /** -> the folder it sent the file to, or null when it sent nothing. */
  async function uploadOne(file) {
    const problem = badName(file.name);
    if (problem) { toast(problem, { kind: 'error', title: file.name }); return null; }
    const dir = path;
    const target = join(dir, file.name);
    if (entries.some((e) => e.name === file.name && !e.is_dir)) {
      const ok = await confirmDialog({ title: t('files.replace_title', { name: file.name }), body: t('files.replace_body'), ok: t('files.replace') });
      if (!ok) return null;
    }
    let job = null;
    const row = transfers.startUpload(target, file.size, () => job?.abort());
    job = upload('PUT', `/api/printers/${enc(id)}/files?path=${enc(target)}`, file, { onProgress: (sent, tot) => row.progress(sent, tot) });
    try {
      await job.promise;
      row.done();
    } catch (e) {
      row.failed(e instanceof ApiError && e.code === 'aborted' ? t('transfer.cancelled') : storageText(e));
    }
    return dir;
  }

  uploadBtn.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', async () => {
    const files = [...fileInput.files];
    fileInput.value = '';
    // One at a time (a printer takes few FTP sessions), then one listing of the folder.
    const sentTo = new Set();
    for (const f of files) sentTo.add(await uploadOne(f));
    if (sentTo.has(path)) load();
  });
  refresh.addEventListener('click', () => load());

  // Back online: list again (the listing failed while it was away).
  sc.add(onReconnect(id, load));
  sc.add(store.watch(id, ['print.state', 'link.state'], () => {
    uploadBtn.disabled = store.get(id)?.link?.state !== 'connected';
    for (const b of tbody.querySelectorAll('[data-testid=files-print]')) b.disabled = busy();
    paintBusy();
  }));

  load();
  return { el, destroy: () => { token += 1; sc.dispose(); } };
}

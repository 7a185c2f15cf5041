// A printer-storage failure in plain words: what happened and what to do, then the API's own
// sentence (it names the file or the port) as the detail. Used by the file browser and timelapses.
import { h } from '../dom.js';
import { t, tMaybe } from '../i18n.js';
import { icon } from '../icons.js';
import { errorText } from '../toast.js';

/** {title, detail} for an ApiError from /api/printers/{id}/files|timelapses. */
function storageError(e) {
  const kind = typeof e?.body?.kind === 'string' ? e.body.kind : null;
  const message = typeof e?.message === 'string' ? e.message : '';
  let title = null;
  if (e?.code === 'offline') title = t('storage.offline');
  else if (e?.code === 'no_storage') title = t('storage.no_storage');
  else if (e?.code === 'not_found') title = t('storage.not_found');
  else if (e?.code === 'storage_error' && kind) title = tMaybe(`storage.kind.${kind}`);
  if (!title) return { title: errorText(e), detail: null };
  const detail = message && message !== title && e?.code !== 'offline' ? message : null;
  return { title, detail };
}

/** The same in one line (a toast, a transfer row). */
export function storageText(e) {
  const { title, detail } = storageError(e);
  return detail ? `${title} ${detail}` : title;
}

/** A notice for a failed listing, with "Try again". */
export function storageNotice(e, retry, testid = 'storage-error') {
  const { title, detail } = storageError(e);
  return h('div', { class: 'notice notice-bad', role: 'alert', testid, dataset: { code: e?.code || '', kind: e?.body?.kind || '' } },
    h('p', { class: 'notice-title' }, icon('alert'), title),
    detail ? h('p', { class: 'field-hint', testid: 'storage-error-detail' }, detail) : null,
    retry ? h('button', { type: 'button', class: 'btn btn-small', onclick: retry }, icon('refresh'), t('common.retry')) : null);
}

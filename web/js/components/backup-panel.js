// Settings > Backup (admin): download a backup (GET /api/backup, made while bambu-edge runs) and
// restore one (POST /api/restore, multipart). A refused archive shows the server's plain reason;
// a good one restarts bambu-edge, and the page waits until /api/health says the restored data is
// being served, then reloads (sessions are those of the backup).
import { ApiError, get } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { field, h } from '../dom.js';
import { fmtDateTime } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { errorText } from '../toast.js';
import { upload } from '../upload.js';

const POLL_MS = 1000;
const WAIT_MS = 120000;

async function waitForRestore(id) {
  const until = Date.now() + WAIT_MS;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    try {
      const health = await get('/api/health', { auth: false, timeout: 3000 });
      if (health?.components?.backup?.restored?.id === id) return true;
    } catch { /* restarting */ }
  }
  return false;
}

export function backupTab() {
  const download = h('a', { class: 'btn btn-primary', href: '/api/backup', download: '', testid: 'backup-download' }, icon('download'), t('backup.download'));
  const file = h('input', { type: 'file', name: 'file', accept: '.gz,.tgz,application/gzip' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true, testid: 'restore-error' });
  const status = h('div', { 'aria-live': 'polite', testid: 'restore-status-slot' });
  const submit = h('button', { type: 'submit', class: 'btn btn-danger', testid: 'restore-submit' }, icon('upload'), t('backup.restore'));
  const form = h('form', { class: 'form', testid: 'restore-form', novalidate: true },
    field({ label: t('backup.file'), input: file, testid: 'restore-file', hint: t('backup.file_hint') }),
    error, h('div', { class: 'form-actions' }, submit));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const chosen = file.files && file.files[0];
    const fail = (m) => { error.textContent = m; error.hidden = false; };
    if (!chosen) { fail(t('backup.need_file')); file.focus(); return; }
    const ok = await confirmDialog({ title: t('backup.confirm_title'), body: t('backup.confirm_body'), ok: t('backup.restore'), danger: true });
    if (!ok) return;
    error.hidden = true;
    submit.disabled = true;
    const body = new FormData();
    body.append('file', chosen, chosen.name);
    try {
      const { data } = await upload('POST', '/api/restore', body).promise;
      const b = data?.backup || {};
      status.replaceChildren(h('div', { class: 'notice notice-good', role: 'status', testid: 'restore-status' },
        h('p', {}, t('backup.restarting', { node: b.node || '?', time: fmtDateTime(b.created_at) || '?' }))));
      if (await waitForRestore(data?.restore_id)) window.location.reload();
      else fail(t('backup.not_back'));
    } catch (err) {
      fail(err instanceof ApiError && err.message ? err.message : errorText(err));
      submit.disabled = false;
    }
  });

  return [
    h('section', { class: 'panel', testid: 'backup-panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, t('backup.title'))),
      h('p', { class: 'page-sub' }, t('backup.intro')),
      h('p', { class: 'field-hint' }, t('backup.secret')),
      h('div', { class: 'form-actions' }, download)),
    h('section', { class: 'panel', testid: 'restore-panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, t('backup.restore_title'))),
      h('p', { class: 'page-sub' }, t('backup.restore_intro')), form, status),
  ];
}

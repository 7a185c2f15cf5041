// "Import N files from USB stick <label>": a banner per plugged-in stick whose bambu-edge/ folder
// holds print files, with a button that adds them to the queue; for an admin, any stick with that
// folder also offers "Write a backup" (POST /api/usb/devices/{id}/backup). The device list comes
// from GET /api/usb/devices (once signed in, and after a lost connection) and `usb` WebSocket events.
import { get, enc, post } from '../api.js';
import { on } from '../bus.js';
import { h } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { toast, toastError } from '../toast.js';
import { isAdmin } from '../session.js';
import { onWsBack } from '../ws.js';
import { running } from './running.js';

export function mountUsbImport(slot) {
  const box = h('div', { class: 'usb-banners', testid: 'usb-banners' });
  slot.appendChild(box);
  let devices = new Map();
  const dismissed = new Set(); // "id:files" the user said no to, or imported

  const key = (d) => `${d.id}:${(d.files || []).map((f) => f.name).join('/')}`;

  function paint() {
    box.replaceChildren(...[...devices.values()]
      .filter((d) => d.kind === 'stick' && d.mounted && (d.files?.length || (d.folder && isAdmin())) && !dismissed.has(key(d)))
      .map(banner));
  }

  function banner(d) {
    const n = (d.files || []).length;
    const label = d.label || d.name;
    const importBtn = n ? h('button', { type: 'button', class: 'btn btn-small btn-primary', testid: 'usb-import' }, t('usb.import_button')) : null;
    const backupBtn = d.folder && isAdmin() ? h('button', { type: 'button', class: 'btn btn-small', testid: 'usb-backup' }, icon('download'), t('usb.backup_button')) : null;
    const later = h('button', { type: 'button', class: 'btn btn-small', testid: 'usb-dismiss' }, t('usb.not_now'));
    const text = n ? t('usb.offer', { count: n, label }) : t('usb.backup_offer', { label });
    const el = h('div', { class: 'banner banner-info', role: 'status', testid: 'usb-banner', dataset: { device: d.id } },
      icon('upload'), h('span', { class: 'banner-text', testid: 'usb-banner-text' }, text),
      importBtn, backupBtn, later);
    backupBtn?.addEventListener('click', async () => {
      backupBtn.disabled = true;
      try {
        const res = await post(`/api/usb/devices/${enc(d.id)}/backup`, {}, { timeout: 300000 });
        toast(t('usb.backup_written', { file: res.file }), { kind: 'success' });
      } catch (e) {
        toastError(e);
      } finally {
        backupBtn.disabled = false;
      }
    });
    importBtn?.addEventListener('click', async () => {
      importBtn.disabled = later.disabled = true;
      try {
        const res = await post(`/api/usb/devices/${enc(d.id)}/import`, {});
        dismissed.add(key(d));
        paint();
        const added = (res.imported || []).length;
        toast(t('usb.imported', { count: added }), { kind: 'success' });
        for (const e of res.errors || []) toast(`${e.name}: ${e.error}`, { kind: 'error', title: t('usb.refused') });
      } catch (e) {
        importBtn.disabled = later.disabled = false;
        toastError(e);
      }
    });
    later.addEventListener('click', () => { dismissed.add(key(d)); paint(); });
    return el;
  }

  async function load() {
    try {
      const body = (await running('usb')) ? await get('/api/usb/devices') : { devices: [] };
      devices = new Map((body.devices || []).map((d) => [d.id, d]));
    } catch {
      devices = new Map(); // no udev here: nothing to offer
    }
    paint();
  }

  on('ws:usb', (msg) => {
    const d = msg?.device;
    if (!d || typeof d.id !== 'string') return;
    if (msg.action === 'removed') devices.delete(d.id); else devices.set(d.id, d);
    paint();
  });
  onWsBack(load);
  return { load, clear: () => { devices = new Map(); paint(); }, repaint: paint };
}

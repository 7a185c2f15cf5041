// The installed version in the header, and a note when apt's sources offer a newer bambu-edge
// package (GET /api/version: what `apt-cache policy` says; upgrading is `sudo apt upgrade`).
import { get } from '../api.js';
import { h, setText } from '../dom.js';
import { t } from '../i18n.js';

export function versionLine() {
  const text = h('span', { class: 'version-text' });
  const update = h('span', { class: 'version-update', testid: 'version-update', hidden: true });
  const el = h('span', { class: 'version', testid: 'version', hidden: true }, text, update);

  async function load() {
    let v;
    try {
      v = await get('/api/version');
    } catch {
      el.hidden = true; // an older daemon or no session: nothing to show
      return;
    }
    const pkg = v?.package;
    const installed = pkg?.installed || v?.version;
    if (typeof installed !== 'string') return;
    setText(text, t('version.installed', { version: installed }));
    el.title = pkg?.installed ? t('version.from_package') : t('version.not_package');
    const newer = pkg?.update_available && typeof pkg.candidate === 'string';
    update.hidden = !newer;
    if (newer) {
      setText(update, t('version.update', { version: pkg.candidate }));
      update.title = t('version.update_how');
    }
    el.hidden = false;
  }

  return { el, load };
}

// HMS messages: the printer's words (untrusted text, set with textContent) plus the code.
import { clear, h } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';

function tone(sev) {
  const v = String(sev || '').toLowerCase();
  if (['fatal', 'serious', 'error', 'critical'].includes(v)) return 'bad';
  if (['info', 'notice'].includes(v)) return 'info';
  return 'warn';
}

/** A link to the printer maker's explanation of the code; only plain https URLs are used. */
function wiki(url) {
  if (typeof url !== 'string' || !/^https:\/\/[^\s"'<>]+$/.test(url)) return null;
  return h('a', { class: 'hms-link', href: url, target: '_blank', rel: 'noopener noreferrer' }, t('hms.more'));
}

/** createHms() -> {el, update(hmsList, live)} */
export function createHms() {
  const el = h('ul', { class: 'hms', testid: 'hms', 'aria-label': t('hms.title') });
  let lastKey = null;
  function update(list, live = true) {
    const items = live && Array.isArray(list) ? list.filter((x) => x && typeof x === 'object') : [];
    const key = JSON.stringify(items);
    if (key === lastKey) return;
    lastKey = key;
    clear(el);
    el.hidden = items.length === 0;
    for (const m of items) {
      const tn = tone(m.severity);
      const text = typeof m.text === 'string' && m.text.trim() ? m.text : t('hms.unknown');
      const code = typeof m.code === 'string' || typeof m.code === 'number' ? String(m.code) : '';
      el.appendChild(h('li', { class: 'hms-item', testid: 'hms-item', dataset: { tone: tn, code } },
        icon(tn === 'info' ? 'info' : 'alert'),
        h('span', { class: 'hms-text' }, text),
        code ? h('span', { class: 'hms-code' }, t('hms.code', { code }), wiki(m.url)) : null));
    }
  }
  return { el, update, relabel() { lastKey = null; } };
}

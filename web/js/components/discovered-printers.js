// Bambu printers heard on the network (GET /api/discovery/printers, from their SSDP announcements)
// and Klipper printers (GET /api/discovery/moonraker, Moonraker's mDNS), offered above the "add
// printer" form: one click fills in host, serial, model and name (a Klipper printer: type, host,
// port and name). Polled while the list is on the page; printers already added are shown but
// cannot be picked again.
import { get } from '../api.js';
import { clear, h } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { MODEL_CHOICES } from '../models.js';

const POLL_MS = 5000;

const text = (v) => (typeof v === 'string' && v ? v : null);

function pickOrAdded(configured, name, onClick) {
  return configured
    ? h('span', { class: 'badge tone-idle no-dot', testid: 'discovered-configured' }, t('discovery.configured'))
    : h('button', {
      type: 'button', class: 'btn btn-small', testid: 'discovered-use',
      'aria-label': t('discovery.use_named', { name }), onclick: onClick,
    }, t('discovery.use'));
}

/** onPick({host, serial, model, name}) or onPick({type: 'moonraker', host, port, name}) when a
 * printer is chosen. */
export function discoveredPrinters({ onPick }) {
  const list = h('ul', { class: 'list', testid: 'discovered-list' });
  const none = h('p', { class: 'field-hint', testid: 'discovered-none' }, t('discovery.none'));
  const el = h('section', { class: 'discovered', testid: 'discovered-printers', hidden: true },
    h('h3', { class: 'discovered-title' }, icon('globe'), t('discovery.title')), list, none);
  let timer = null;
  let wasShown = false;

  function row(p) {
    const serial = text(p.serial);
    const host = text(p.host);
    if (!serial || !host) return null;
    const model = MODEL_CHOICES.includes(p.model) ? p.model : null;
    const name = text(p.name) || serial;
    const configured = p.configured === true;
    const pick = pickOrAdded(configured, name, () => onPick({ host, serial, model, name: text(p.name) }));
    return h('li', { class: 'list-item', testid: 'discovered-row', dataset: { serial, configured: String(configured) } },
      h('div', { class: 'list-main' },
        h('div', { class: 'list-title' }, h('span', {}, name), model ? h('span', { class: 'chip' }, model) : null),
        h('div', { class: 'list-sub mono' }, `${serial} · ${host}`)),
      h('div', { class: 'form-actions' }, pick));
  }

  function klipperRow(p) {
    const host = text(p.host);
    const port = Number.isInteger(p.port) && p.port > 0 && p.port < 65536 ? p.port : null;
    if (!host || port === null) return null;
    // Moonraker announces "<name> @ <host>": the name part is what the user calls it.
    const name = (text(p.name) || host).split(' @ ')[0];
    const configured = p.configured === true;
    const pick = pickOrAdded(configured, name, () => onPick({ type: 'moonraker', host, port, name }));
    return h('li', { class: 'list-item', testid: 'discovered-row', dataset: { moonraker: `${host}:${port}`, configured: String(configured) } },
      h('div', { class: 'list-main' },
        h('div', { class: 'list-title' }, h('span', {}, name), h('span', { class: 'chip' }, 'Klipper')),
        h('div', { class: 'list-sub mono' }, `${host}:${port}${text(p.version) ? ` · Moonraker ${text(p.version)}` : ''}`)),
      h('div', { class: 'form-actions' }, pick));
  }

  async function poll() {
    if (el.isConnected) wasShown = true;
    else if (wasShown) { stop(); return; } // the form left the page
    try {
      const [found, klipper] = await Promise.all([
        get('/api/discovery/printers'),
        get('/api/discovery/moonraker').catch(() => []), // an older daemon: Bambu printers only
      ]);
      const rows = [
        ...(Array.isArray(found) ? found : []).map(row),
        ...(Array.isArray(klipper) ? klipper : []).map(klipperRow),
      ].filter(Boolean);
      clear(list).append(...rows);
      none.hidden = rows.length > 0;
      el.hidden = false;
    } catch {
      el.hidden = true; // discovery is off or not running: the form works as before
    }
  }

  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  poll();
  timer = setInterval(poll, POLL_MS);
  return { el, stop };
}

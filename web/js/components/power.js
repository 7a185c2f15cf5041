// Power control on a printer's card: the switch's state, live watts (from the plug's meter) and an
// on/off button. Shown only for printers with a `power:` setting. Switching off a printer that may
// be printing asks first; the API's 409 ("printing") is put in plain words and can be confirmed.
// The states come from GET /api/power once and then from `power` WebSocket frames.
import { enc, get, post } from '../api.js';
import { on } from '../bus.js';
import { h, setText, show, toggleClass } from '../dom.js';
import { confirmDialog } from '../dialog.js';
import { fmtNumber, isNum } from '../format.js';
import { t } from '../i18n.js';
import { printerName, store } from '../store.js';
import { errorText, toast } from '../toast.js';
import { onWsBack } from '../ws.js';

const states = new Map(); // printer id -> {kind, on, watts, reachable, error}
const watchers = new Set();
let energy = { price_per_kwh: null, currency: null };
let loading = null;
let started = false;

function changed(id) {
  for (const fn of [...watchers]) fn(id);
}

function put(id, state) {
  if (!id || !state || typeof state !== 'object') return;
  states.set(id, state);
  changed(id);
}

/** Load every switch's state (again); a daemon without power control answers 503: no controls. */
export function loadPower() {
  loading = get('/api/power').then((data) => {
    if (data?.energy && typeof data.energy === 'object') energy = data.energy;
    for (const [id, state] of Object.entries(data?.printers || {})) put(id, state);
    return energy;
  }).catch(() => energy);
  return loading;
}

function start() {
  if (started) return;
  started = true;
  on('ws:power', (msg) => put(msg.id, msg));
  onWsBack(loadPower);
  loadPower();
}

/** The energy price and currency (for history); loads them once. */
export function energyPrice() {
  start();
  return loading || loadPower();
}

const NO_JOB = new Set(['IDLE', 'FINISH', 'FAILED']);

/** Would switching this printer off end a print? (The API's rule: connected and not at rest.) */
export function mayBePrinting(p) {
  return p?.link?.state === 'connected' && !NO_JOB.has(String(p?.print?.state || ''));
}

/** createPowerControl(id, sc) -> element (hidden for printers without power control). */
export function createPowerControl(id, sc) {
  start();
  const stateEl = h('span', { class: 'power-state', testid: 'power-state' });
  const wattsEl = h('span', { class: 'power-watts num', testid: 'power-watts' });
  const btn = h('button', { type: 'button', class: 'btn btn-small', testid: 'power-button' });
  const errEl = h('span', { class: 'power-error muted', testid: 'power-error' });
  const el = h('div', { class: 'card-power', testid: 'power-control', hidden: true },
    h('span', { class: 'power-label' }, t('power.label')), stateEl, wattsEl, errEl, btn);
  let busy = false;

  function paint() {
    const s = states.get(id);
    show(el, Boolean(s));
    if (!s) return;
    const isOn = s.on === true;
    el.dataset.on = s.on === null || s.on === undefined ? '' : String(isOn);
    toggleClass(el, 'is-on', isOn);
    setText(stateEl, !s.reachable ? t('power.unreachable') : isOn ? t('power.is_on') : s.on === false ? t('power.is_off') : '—');
    setText(wattsEl, isOn && isNum(s.watts) ? t('power.watts', { w: fmtNumber(s.watts, s.watts < 10 ? 1 : 0) }) : '');
    show(wattsEl, isOn && isNum(s.watts));
    setText(errEl, !s.reachable && s.error ? s.error : '');
    show(errEl, !s.reachable && Boolean(s.error));
    const name = printerName(id);
    setText(btn, isOn ? t('power.switch_off') : t('power.switch_on'));
    btn.setAttribute('aria-label', t(isOn ? 'power.switch_off_named' : 'power.switch_on_named', { name }));
    btn.disabled = busy;
  }

  async function send(wantOn, confirm) {
    return post(`/api/printers/${enc(id)}/power`, { on: wantOn, confirm });
  }

  async function askConfirm(message) {
    return confirmDialog({
      title: t('power.confirm_title', { name: printerName(id) }),
      body: message || t('power.confirm_body'),
      ok: t('power.switch_off'),
      danger: true,
    });
  }

  btn.addEventListener('click', async () => {
    const s = states.get(id);
    const wantOn = !(s?.on === true);
    let confirm = false;
    if (!wantOn && mayBePrinting(store.get(id))) {
      if (!(await askConfirm())) return;
      confirm = true;
    }
    busy = true;
    paint();
    try {
      try {
        put(id, await send(wantOn, confirm));
      } catch (err) {
        // The printer started something since the card was painted: the server says so.
        if (err?.status !== 409 || err.code !== 'printing') throw err;
        if (!(await askConfirm(t('power.refused_printing')))) return;
        put(id, await send(wantOn, true));
      }
    } catch (err) {
      toast(errorText(err), { kind: 'error', title: t('power.failed') });
    } finally {
      busy = false;
      paint();
    }
  });

  const watcher = (changedId) => { if (changedId === id) paint(); };
  watchers.add(watcher);
  sc.add(() => watchers.delete(watcher));
  paint();
  return el;
}

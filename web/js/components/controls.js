// Print controls: pause / resume / stop (stop asks first), chamber light, speed level.
// Enabled only when the printer is connected and the action makes sense for the print state.
import { sendCommand } from '../commands.js';
import { confirmDialog } from '../dialog.js';
import { h, setAttr, setText, show } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { store } from '../store.js';

export const SPEEDS = [1, 2, 3, 4];
export const CONTROL_PATHS = ['link.state', 'print.state', 'print.speed_level', 'lights.chamber', 'name'];

function busy(btn, on) {
  btn.classList.toggle('is-pending', on);
  btn.setAttribute('aria-busy', on ? 'true' : 'false');
}

/** createControls(printerId) -> {el, update(printer)} */
export function createControls(id) {
  const name = () => store.get(id)?.name || id;

  async function run(btn, action, params) {
    if (btn.classList.contains('is-pending')) return;
    busy(btn, true);
    try {
      await sendCommand(id, action, params);
    } catch { /* toast shown by sendCommand */ } finally {
      busy(btn, false);
    }
  }

  const pauseTxt = h('span', {});
  const resumeTxt = h('span', {});
  const stopTxt = h('span', {});
  const pause = h('button', { type: 'button', class: 'btn', testid: 'btn-pause' }, icon('pause'), pauseTxt);
  const resume = h('button', { type: 'button', class: 'btn btn-primary', testid: 'btn-resume' }, icon('play'), resumeTxt);
  const stop = h('button', { type: 'button', class: 'btn btn-danger', testid: 'btn-stop' }, icon('stop'), stopTxt);
  const light = h('button', { type: 'button', class: 'btn light-btn', testid: 'btn-light', 'aria-pressed': 'false' }, icon('bulb'));
  const speedSel = h('select', { testid: 'speed-select' });
  const speedLabel = h('label', { class: 'sr-only', for: `speed-${id}` });
  speedSel.id = `speed-${id}`;
  const speed = h('span', { class: 'speed' }, speedLabel, speedSel);

  pause.addEventListener('click', () => run(pause, 'pause'));
  resume.addEventListener('click', () => run(resume, 'resume'));
  stop.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: t('confirm.stop_title', { name: name() }),
      body: t('confirm.stop_body'),
      ok: t('confirm.stop_ok'),
      cancel: t('confirm.stop_cancel'),
      danger: true,
    });
    if (ok) run(stop, 'stop');
  });
  light.addEventListener('click', () => {
    const on = store.get(id)?.lights?.chamber === true;
    run(light, 'light', { on: !on });
  });
  speedSel.addEventListener('change', async () => {
    const level = Number(speedSel.value);
    if (!SPEEDS.includes(level)) return;
    speedSel.disabled = true;
    try {
      await sendCommand(id, 'speed', { level });
    } catch {
      const cur = store.get(id)?.print?.speed_level;
      speedSel.value = SPEEDS.includes(cur) ? String(cur) : '';
    } finally {
      speedSel.disabled = !enabledSpeed;
    }
  });

  let enabledSpeed = false;
  const el = h('div', { class: 'card-controls live-only', testid: 'controls', role: 'group' },
    pause, resume, stop, h('span', { class: 'ctl-right' }, light, speed));

  function labels() {
    setText(pauseTxt, t('ctl.pause'));
    setText(resumeTxt, t('ctl.resume'));
    setText(stopTxt, t('ctl.stop'));
    setText(speedLabel, t('ctl.speed'));
    el.setAttribute('aria-label', t('ctl.group'));
    const cur = speedSel.value;
    speedSel.replaceChildren(
      h('option', { value: '', disabled: true }, t('ctl.speed_unknown')),
      ...SPEEDS.map((l) => h('option', { value: String(l) }, t(`speed.${l}`))));
    speedSel.value = cur;
  }
  labels();

  function update(p) {
    const connected = p?.link?.state === 'connected';
    const st = String(p?.print?.state || '').toUpperCase();
    const running = st === 'RUNNING' || st === 'PREPARE' || st === 'SLICING';
    const paused = st === 'PAUSE';
    show(pause, !paused);
    show(resume, paused);
    pause.disabled = !connected || !running;
    resume.disabled = !connected;
    stop.disabled = !connected || !(running || paused);
    const lightOn = p?.lights?.chamber === true;
    setAttr(light, 'aria-pressed', lightOn ? 'true' : 'false');
    const lightLabel = lightOn ? t('ctl.light_off') : t('ctl.light_on');
    setAttr(light, 'aria-label', lightLabel);
    setAttr(light, 'title', lightLabel);
    light.disabled = !connected;
    const lvl = p?.print?.speed_level;
    const v = SPEEDS.includes(lvl) ? String(lvl) : '';
    if (document.activeElement !== speedSel && speedSel.value !== v) speedSel.value = v;
    enabledSpeed = connected && (running || paused);
    speedSel.disabled = !enabledSpeed;
    setAttr(speedSel, 'title', t('ctl.speed'));
  }
  return { el, update, relabel() { labels(); update(store.get(id)); } };
}

// One printer on the overview. Built once; each part is bound to the fields it shows and updated
// only when those fields change. Offline (link.state != connected): greyed, live numbers hidden,
// an "offline since" notice instead.
import { h, scope, setAttr, setText, show, toggleClass } from '../dom.js';
import {
  fmtAgo, fmtClock, fmtDuration, fmtNumber, fmtPercent, isActiveJob, isNum, linkLabel,
  printStateLabel, stateTone,
} from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { hasChamber, tempMax } from '../models.js';
import { store } from '../store.js';
import { createAms } from './ams.js';
import { createCameraView } from './camera-view.js';
import { CONTROL_PATHS, createControls } from './controls.js';
import { createGauge } from './gauge.js';
import { createHms } from './hms.js';
import { createLinkBadge } from './link-badge.js';
import { createPowerControl } from './power.js';
import { createBedClear, createPrintThumb } from './print-extras.js';

export const isConnected = (p) => p?.link?.state === 'connected';

/** Name of the job: the job name, else the file name without folders. Untrusted text. */
export function jobName(print) {
  if (!print) return '';
  if (typeof print.job === 'string' && print.job.trim()) return print.job;
  if (typeof print.file === 'string' && print.file.trim()) return print.file.split('/').pop();
  return '';
}

/** The status block shared by card and printer page: state, job, progress, remaining, finish, layer. */
export function createStatus(id, sc) {
  const stateEl = h('span', { class: 'print-state live-value', testid: 'print-state' });
  const jobEl = h('span', { class: 'job-name', testid: 'job-name' });
  const stageEl = h('span', { class: 'print-stage', testid: 'print-stage' });
  const fill = h('div', { class: 'progress-fill' });
  const pct = h('span', { class: 'progress-value live-value', testid: 'progress-value' });
  const bar = h('div', { class: 'progress-track', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', testid: 'progress-bar' }, fill);
  const progress = h('div', { class: 'progress', testid: 'progress' }, bar, pct);
  const remainVal = h('strong', {});
  const finishVal = h('strong', {});
  const layerVal = h('strong', {});
  const remaining = h('span', { class: 'fact', testid: 'remaining' }, icon('clock'), h('span', { class: 'fact-label' }), remainVal);
  const finish = h('span', { class: 'fact', testid: 'finish-time' }, h('span', { class: 'fact-label' }), finishVal);
  const layer = h('span', { class: 'fact', testid: 'layer' }, icon('layers'), h('span', { class: 'fact-label' }), layerVal);
  const facts = h('div', { class: 'print-facts' }, remaining, finish, layer);
  const el = h('div', { class: 'card-status live-only' }, h('div', { class: 'status-line' }, stateEl, jobEl), stageEl, progress, facts);

  sc.add(store.watch(id, ['print.stage', 'print.state', 'link.state'], (p) => {
    const stage = typeof p.print?.stage === 'string' ? p.print.stage : '';
    setText(stageEl, stage);
    const same = stage.toLowerCase() === printStateLabel(p.print?.state).toLowerCase() || stage.toLowerCase() === String(p.print?.state || '').toLowerCase();
    show(stageEl, Boolean(stage) && !same && isActiveJob(p.print?.state));
  }));

  sc.add(store.watch(id, ['print.state', 'print.job', 'print.file', 'link.state'], (p) => {
    const st = p.print?.state ?? null;
    setText(stateEl, printStateLabel(st));
    stateEl.dataset.tone = stateTone(st);
    stateEl.dataset.state = st === null ? '' : String(st);
    const job = isActiveJob(st) || ['FINISH', 'FAILED'].includes(String(st).toUpperCase()) ? jobName(p.print) : '';
    setText(jobEl, job);
    setAttr(jobEl, 'title', job || null);
  }));

  sc.add(store.watch(id, ['print.progress', 'print.state', 'link.state'], (p) => {
    const st = String(p.print?.state || '').toUpperCase();
    const v = p.print?.progress;
    const visible = isNum(v) && (isActiveJob(st) || st === 'FINISH' || st === 'FAILED');
    show(progress, visible);
    if (!visible) return;
    const c = Math.max(0, Math.min(100, v));
    fill.style.width = `${c}%`;
    setText(pct, fmtPercent(c));
    setAttr(bar, 'aria-valuenow', String(c));
    setAttr(bar, 'aria-label', t('print.progress'));
    progress.dataset.tone = st === 'PAUSE' ? 'warn' : st === 'FAILED' ? 'bad' : '';
    progress.dataset.value = String(c);
  }));

  sc.add(store.watch(id, ['print.remaining_s', 'print.layer', 'print.total_layers', 'print.state', 'link.state'], (p) => {
    const pr = p.print || {};
    const active = isActiveJob(pr.state);
    const rem = pr.remaining_s;
    const showRem = active && isNum(rem) && rem >= 0;
    show(remaining, showRem);
    show(finish, showRem && rem > 0);
    if (showRem) {
      setText(remaining.children[1], t('print.remaining'));
      setText(remainVal, fmtDuration(rem));
      setText(finish.children[0], t('print.finish'));
      setText(finishVal, fmtClock(Date.now() / 1000 + rem));
      remaining.dataset.seconds = String(rem);
    }
    const hasLayers = (active || String(pr.state).toUpperCase() === 'FINISH') && isNum(pr.layer) && isNum(pr.total_layers) && pr.total_layers > 0;
    show(layer, hasLayers);
    if (hasLayers) {
      setText(layer.children[1], t('print.layer'));
      setText(layerVal, `${fmtNumber(pr.layer)} / ${fmtNumber(pr.total_layers)}`);
    }
    show(facts, showRem || hasLayers);
  }));
  return el;
}

/** The three temperature gauges; chamber only for models with a chamber sensor. */
export function createGauges(id, sc) {
  const model = () => store.get(id)?.model;
  const nozzle = createGauge('nozzle', tempMax('nozzle', model()));
  const bed = createGauge('bed', tempMax('bed', model()));
  const chamber = createGauge('chamber', tempMax('chamber', model()));
  const el = h('div', { class: 'gauges live-only', testid: 'temps' }, nozzle.el, bed.el, chamber.el);
  sc.add(store.watch(id, ['temps', 'link.state', 'model'], (p) => {
    const live = isConnected(p);
    const tp = p.temps || {};
    nozzle.update(tp.nozzle?.current, tp.nozzle?.target, live);
    bed.update(tp.bed?.current, tp.bed?.target, live);
    const withChamber = hasChamber(p.model, tp);
    show(chamber.el, withChamber);
    if (withChamber) chamber.update(tp.chamber?.current, tp.chamber?.target, live);
  }));
  return el;
}

export function createPrinterCard(id) {
  const sc = scope();
  const nameEl = h('a', { class: 'card-name', href: `#/printer/${encodeURIComponent(id)}`, testid: 'printer-name' });
  const modelEl = h('span', { class: 'chip', testid: 'printer-model' });
  // A printer of another unit in the farm: which unit, and whether that unit is gone.
  const nodeEl = h('span', { class: 'chip node-chip', testid: 'printer-node' });
  const head = h('header', { class: 'card-head' },
    h('div', { class: 'card-title' }, h('h2', { class: 'card-heading' }, nameEl), h('div', { class: 'card-meta' }, modelEl, nodeEl, createLinkBadge(id, sc))));

  // Offline notice
  const offTitle = h('strong', {});
  const offSince = h('p', {});
  const offError = h('p', { testid: 'link-error' });
  const offAction = h('a', { class: 'btn btn-small', href: `#/printer/${encodeURIComponent(id)}` });
  const offline = h('div', { class: 'card-offline offline-only', testid: 'offline-notice' }, icon('offline'),
    h('div', {}, offTitle, offSince, offError, offAction));

  const ams = createAms();
  const hms = createHms();
  const controls = createControls(id);
  const camera = createCameraView(id);
  sc.add(camera.destroy);
  const el = h('article', { class: 'card', testid: 'printer-card', dataset: { printerId: id } },
    head, h('div', { class: 'card-print' }, createPrintThumb(id, sc), createStatus(id, sc)),
    camera.el, createBedClear(id, sc), createPowerControl(id, sc), createGauges(id, sc), offline,
    h('div', { class: 'live-only' }, ams.el), h('div', { class: 'live-only' }, hms.el), controls.el);

  sc.add(store.watch(id, ['name', 'model'], (p) => {
    const name = typeof p.name === 'string' && p.name ? p.name : id;
    setText(nameEl, name);
    el.setAttribute('aria-label', name);
    setText(modelEl, p.model || t('printer.model_unknown'));
  }));

  sc.add(store.watch(id, ['remote', 'node_name', 'node_online'], (p) => {
    const remote = p.remote === true;
    show(nodeEl, remote);
    if (!remote) return;
    const unit = typeof p.node_name === 'string' && p.node_name ? p.node_name : String(p.node ?? '');
    const gone = p.node_online === false;
    setText(nodeEl, t(gone ? 'farm.unit_gone' : 'farm.on_unit', { name: unit }));
    toggleClass(nodeEl, 'tone-bad', gone);
    el.dataset.node = String(p.node ?? '');
    nodeEl.title = t('farm.remote_hint', { name: unit });
  }));

  function paintLink(p) {
    if (!p) return;
    const st = p.link?.state ?? null;
    const connected = st === 'connected';
    toggleClass(el, 'is-offline', !connected);
    el.dataset.linkState = st || '';
    if (connected) return;
    setText(offTitle, linkLabel(st));
    const since = p.link?.since;
    const parts = [];
    if (isNum(since)) parts.push(t('link.since', { time: fmtClock(since), ago: fmtAgo(since) }));
    if (isNum(p.updated_at)) parts.push(t('link.last_data', { ago: fmtAgo(p.updated_at) }));
    setText(offSince, parts.join(' · '));
    const err = typeof p.link?.error === 'string' ? p.link.error : '';
    setText(offError, err);
    show(offError, Boolean(err));
    const hint = st === 'tls_mismatch' ? t('link.hint_tls') : st === 'auth_failed' ? t('link.hint_auth') : '';
    setText(offAction, hint);
    show(offAction, Boolean(hint));
  }
  sc.add(store.watch(id, ['link', 'updated_at'], paintLink));
  sc.interval(() => paintLink(store.get(id)), 30000);
  sc.add(store.watch(id, ['ams', 'external_spool', 'link.state'], (p) => ams.update(p.ams, isConnected(p), p.external_spool)));
  sc.add(store.watch(id, ['hms', 'link.state'], (p) => hms.update(p.hms, isConnected(p))));
  sc.add(store.watch(id, CONTROL_PATHS, (p) => controls.update(p)));

  return { el, destroy: () => sc.dispose() };
}

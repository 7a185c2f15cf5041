// Printer page: status, gauges and controls; last hour of temperatures; G-code console; AMS in
// detail; HMS; link details with certificate fingerprints and "accept new certificate".
import { ApiError, enc, get, post } from '../api.js';
import { createAms } from '../components/ams.js';
import { createCameraView } from '../components/camera-view.js';
import { createChart } from '../components/chart.js';
import { CONTROL_PATHS, createControls } from '../components/controls.js';
import { createHms } from '../components/hms.js';
import { createKlipperMaterials } from '../components/klipper-materials.js';
import { createLinkBadge } from '../components/link-badge.js';
import { createGauges, createStatus, isConnected } from '../components/printer-card.js';
import { createBedClear, createPrintThumb } from '../components/print-extras.js';
import { sendCommand } from '../commands.js';
import { confirmDialog } from '../dialog.js';
import { h, scope, setText, show, toggleClass } from '../dom.js';
import { fmtAgo, fmtClock, fmtDateTime, fmtFingerprint, fmtNumber, isNum, linkLabel } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { hasChamber } from '../models.js';
import { store } from '../store.js';
import { errorText, toast } from '../toast.js';

function panel(title, testid, ...children) {
  return h('section', { class: 'panel', testid, 'aria-label': title }, h('div', { class: 'panel-head' }, h('h2', {}, title)), ...children);
}

function createConsole(id) {
  const log = h('ol', { class: 'console-log', testid: 'gcode-log', 'aria-live': 'polite', 'aria-label': t('console.log') },
    h('li', { class: 'console-empty' }, t('console.empty')));
  const input = h('input', { type: 'text', class: 'mono', testid: 'gcode-input', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', maxlength: '500', placeholder: 'G28', 'aria-label': t('console.input') });
  const send = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'gcode-send' }, icon('terminal'), t('console.send'));
  const form = h('form', { class: 'console-form', testid: 'gcode-form' }, input, send);
  const history = [];
  let hpos = 0;

  function entry(line) {
    const res = h('span', { class: 'c-res c-wait', testid: 'gcode-result', dataset: { result: 'pending' } }, '…');
    const li = h('li', { testid: 'gcode-entry' },
      h('span', { class: 'c-time' }, fmtClock(Date.now() / 1000)), h('span', { class: 'c-line' }, `> ${line}`), res);
    if (log.firstElementChild?.classList.contains('console-empty')) log.firstElementChild.remove();
    log.appendChild(li);
    while (log.children.length > 200) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
    const done = (result, text, message) => {
      res.className = `c-res ${result === 'success' ? 'c-ok' : result === 'pending' ? 'c-wait' : 'c-bad'}`;
      res.dataset.result = result;
      res.textContent = text;
      if (message) li.appendChild(h('span', { class: 'c-msg', testid: 'gcode-message' }, message));
      log.scrollTop = log.scrollHeight;
    };
    return done;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const line = input.value.trim();
    if (!line) return;
    history.push(line);
    hpos = history.length;
    input.value = '';
    const done = entry(line);
    let answered = false;
    const timer = setTimeout(() => { if (!answered) done('timeout', t('console.no_answer')); }, 60000);
    try {
      await sendCommand(id, 'gcode', { line }, (ev) => {
        answered = true;
        clearTimeout(timer);
        const msg = typeof ev.message === 'string' && ev.message ? ev.message : null;
        if (ev.result === 'success') done('success', t('console.ok'), msg && msg !== 'ok' ? msg : null);
        else if (ev.result === 'timeout') done('timeout', t('console.timeout'), msg);
        else done('failed', t('console.failed'), msg);
      });
    } catch (err) {
      answered = true;
      clearTimeout(timer);
      done('failed', t('console.failed'), errorText(err));
    }
    input.focus();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowUp' && hpos > 0) { hpos -= 1; input.value = history[hpos]; e.preventDefault(); }
    if (e.key === 'ArrowDown' && hpos < history.length) { hpos += 1; input.value = history[hpos] ?? ''; e.preventDefault(); }
  });
  const hint = h('p', { class: 'field-hint' }, t('console.hint'));
  return { el: h('div', {}, log, form, hint), setEnabled(on) { input.disabled = !on; send.disabled = !on; } };
}

function createLinkDetails(id, sc) {
  const stateDd = h('dd', {}, createLinkBadge(id, sc));
  const sinceDd = h('dd', { testid: 'link-since' });
  const errorDd = h('dd', { testid: 'link-error' });
  const fpDd = h('dd', { class: 'fingerprint', testid: 'cert-fingerprint' });
  const offeredDd = h('dd', { class: 'fingerprint', testid: 'cert-offered' });
  const serialDd = h('dd', { class: 'mono', testid: 'printer-serial' });
  const addressDd = h('dd', { class: 'mono', testid: 'printer-address' });
  const fwDd = h('dd', { testid: 'printer-firmware' });
  const wifiDd = h('dd', { testid: 'printer-wifi' });
  const nozzleDd = h('dd', { testid: 'printer-nozzle' });
  const perrDd = h('dd', { class: 'mono', testid: 'print-error' });
  const extra = {
    fw: [h('dt', {}, t('printer.firmware')), fwDd],
    wifi: [h('dt', {}, t('printer.wifi')), wifiDd],
    nozzle: [h('dt', {}, t('printer.nozzle')), nozzleDd],
    perr: [h('dt', {}, t('printer.print_error')), perrDd],
  };
  const configDd = h('dd', { testid: 'printer-source' });
  const rows = {
    error: [h('dt', {}, t('link.error')), errorDd],
    offered: [h('dt', {}, t('link.offered')), offeredDd],
  };
  const accept = h('button', { type: 'button', class: 'btn btn-solid-danger', testid: 'cert-accept' }, icon('shield'), t('cert.accept'));
  const mismatch = h('div', { class: 'notice notice-bad', testid: 'cert-mismatch', role: 'alert', hidden: true },
    h('p', { class: 'notice-title' }, icon('alert'), t('cert.mismatch_title')),
    h('p', {}, t('cert.mismatch_body')), accept);
  accept.addEventListener('click', async () => {
    const p = store.get(id);
    const body = h('div', {}, h('p', {}, t('cert.confirm_body')),
      h('p', { class: 'fingerprint' }, fmtFingerprint(p?.link?.offered_fingerprint)));
    const ok = await confirmDialog({ title: t('cert.confirm_title'), body, ok: t('cert.accept'), danger: true });
    if (!ok) return;
    accept.disabled = true;
    try {
      await post(`/api/printers/${enc(id)}/certificate/accept`, {});
      toast(t('cert.accepted'), { kind: 'success', title: p?.name || id });
    } catch (e) {
      toast(errorText(e), { kind: 'error' });
    } finally {
      accept.disabled = false;
    }
  });
  const dl = h('dl', { class: 'kv' },
    h('dt', {}, t('link.state')), stateDd,
    h('dt', {}, t('link.since_label')), sinceDd,
    ...rows.error,
    h('dt', {}, t('link.fingerprint')), fpDd,
    ...rows.offered,
    h('dt', {}, t('printer.serial')), serialDd,
    h('dt', {}, t('printer.address')), addressDd,
    ...extra.fw, ...extra.nozzle, ...extra.wifi, ...extra.perr,
    h('dt', {}, t('printer.source')), configDd);
  const paint = (p) => {
    const l = p.link || {};
    setText(sinceDd, isNum(l.since) ? `${fmtDateTime(l.since)} (${fmtAgo(l.since)})` : '—');
    const err = typeof l.error === 'string' && l.error ? l.error : '';
    setText(errorDd, err || '—');
    rows.error.forEach((x) => show(x, Boolean(err)));
    setText(fpDd, fmtFingerprint(l.fingerprint));
    const mism = l.state === 'tls_mismatch';
    setText(offeredDd, fmtFingerprint(l.offered_fingerprint));
    rows.offered.forEach((x) => show(x, mism || Boolean(l.offered_fingerprint)));
    show(mismatch, mism);
    setText(serialDd, typeof p.serial === 'string' && p.serial ? p.serial : '—');
    const port = isNum(p.mqtt_port) && p.mqtt_port !== 8883 ? `:${p.mqtt_port}` : '';
    setText(addressDd, typeof p.host === 'string' && p.host ? `${p.host}${port}` : '—');
    setText(configDd, p.read_only ? t('printer.from_config') : t('printer.from_dashboard'));
    const live = l.state === 'connected';
    const str = (v) => (typeof v === 'string' && v ? v : '');
    const fw = str(p.firmware) || str(p.firmware?.version);
    setText(fwDd, fw);
    extra.fw.forEach((x) => show(x, Boolean(fw)));
    setText(wifiDd, live ? str(p.wifi_signal) : '');
    extra.wifi.forEach((x) => show(x, live && Boolean(str(p.wifi_signal))));
    const nz = p.nozzle && typeof p.nozzle === 'object' ? p.nozzle : {};
    const nzText = [isNum(nz.diameter) ? `${fmtNumber(nz.diameter, 1)} mm` : '', str(nz.type).replace(/_/g, ' ')].filter(Boolean).join(' · ');
    setText(nozzleDd, nzText);
    extra.nozzle.forEach((x) => show(x, Boolean(nzText)));
    const perr = live ? str(p.print?.error) : '';
    setText(perrDd, perr);
    extra.perr.forEach((x) => show(x, Boolean(perr)));
  };
  sc.add(store.watch(id, ['link', 'serial', 'host', 'mqtt_port', 'read_only', 'firmware', 'wifi_signal', 'nozzle', 'print.error'], paint));
  sc.interval(() => { const p = store.get(id); if (p) paint(p); }, 30000);
  return h('div', { class: 'form' }, mismatch, dl);
}

const TABS = [['', 'grid'], ['files', 'folder'], ['timelapses', 'video']];

export function mount(root, params) {
  const id = params.id;
  const tab = params.tab || '';
  const sc = scope();
  let disposed = false;
  const page = h('div', { class: 'page', testid: 'printer-page', dataset: { printerId: id } });
  root.appendChild(page);
  let built = false;

  function notFound() {
    page.replaceChildren(h('a', { class: 'back-link', href: '#/' }, icon('back'), t('printer.back')),
      h('div', { class: 'panel empty', testid: 'printer-not-found' }, h('h1', {}, t('printer.not_found')), h('p', {}, t('printer.not_found_body'))));
  }

  function build() {
    if (built) return;
    built = true;
    const nameEl = h('h1', { testid: 'printer-name' });
    const modelEl = h('span', { class: 'chip', testid: 'printer-model' });
    const roBadge = h('span', { class: 'badge tone-idle no-dot', testid: 'read-only', hidden: true }, icon('lock'), t('printer.read_only'));
    const head = h('div', { class: 'printer-head' }, nameEl, modelEl, createLinkBadge(id, sc), roBadge);

    const tabs = h('nav', { class: 'tabs', 'aria-label': t('printer.sections'), testid: 'printer-tabs' },
      TABS.map(([key, ic]) => h('a', {
        class: ['tab', key === tab && 'is-active'], href: `#/printer/${enc(id)}${key ? `/${key}` : ''}`,
        testid: `printer-tab-${key || 'status'}`, 'aria-current': key === tab ? 'page' : null,
      }, icon(ic), t(`printer.tab_${key || 'status'}`))));

    sc.add(store.watch(id, ['name', 'model', 'read_only'], (p) => {
      const name = typeof p.name === 'string' && p.name ? p.name : id;
      setText(nameEl, name);
      document.title = `${name} · bambu-edge`;
      setText(modelEl, p.model || t('printer.model_unknown'));
      show(roBadge, Boolean(p.read_only));
    }));

    const back = h('a', { class: 'back-link', href: '#/', testid: 'back-link' }, icon('back'), t('printer.back'));
    if (tab) {
      // Files and timelapses: their modules load on first use (not part of the first page load).
      const body = h('div', { class: 'printer-tab', testid: `printer-${tab}` },
        h('div', { class: 'page-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), t('common.loading')));
      page.replaceChildren(back, head, tabs, body);
      const load = tab === 'files'
        ? import('../components/file-browser.js').then((m) => m.createFileBrowser(id))
        : import('../components/timelapses.js').then((m) => m.createTimelapses(id));
      load.then((part) => {
        if (disposed) { part.destroy(); return; }
        sc.add(part.destroy);
        body.replaceChildren(part.el);
      }).catch((e) => {
        console.error(e);
        body.replaceChildren(h('p', { class: 'notice notice-bad' }, t('error.page_load')));
      });
      return;
    }
    const offNote = h('p', { class: 'notice notice-warn stale-note', testid: 'offline-notice', hidden: true });
    const controls = createControls(id);
    const status = h('section', { class: 'panel card', testid: 'printer-card', dataset: { printerId: id }, 'aria-label': t('printer.status') },
      h('div', { class: 'card-print' }, createPrintThumb(id, sc, { size: 'lg' }), createStatus(id, sc)),
      offNote, createBedClear(id, sc), createGauges(id, sc), controls.el);

    const camera = createCameraView(id, { full: true });
    sc.add(camera.destroy);
    const chart = createChart({ chamber: true });
    sc.add(() => chart.destroy());
    const chartPanel = panel(t('chart.title'), 'chart-panel', chart.el);
    const cons = createConsole(id);
    const consPanel = panel(t('console.title'), 'console-panel', cons.el);

    const hms = createHms();
    const hmsPanel = panel(t('hms.title'), 'hms-panel', hms.el);
    const ams = createAms({ detailed: true });
    const amsPanel = panel(t('ams.title'), 'ams-panel', ams.el);
    const linkPanel = panel(t('link.title'), 'link-panel', createLinkDetails(id, sc));
    // A Klipper printer reports no nozzle or filament: the user sets them here.
    const klipper = store.get(id)?.type === 'moonraker';
    const materialsPanel = klipper ? panel(t('materials.title'), 'materials-panel', createKlipperMaterials(id).el) : null;

    page.replaceChildren(
      back,
      head,
      tabs,
      h('div', { class: 'printer-layout' },
        h('div', { class: 'col' }, status, camera.el, chartPanel, consPanel),
        h('div', { class: 'col' }, hmsPanel, materialsPanel, amsPanel, linkPanel)));

    sc.add(store.watch(id, ['link', 'updated_at'], (p) => {
      const live = isConnected(p);
      toggleClass(status, 'is-offline', !live);
      show(offNote, !live);
      if (!live) {
        const since = p.link?.since;
        setText(offNote, `${linkLabel(p.link?.state)}${isNum(since) ? ` · ${t('link.since', { time: fmtClock(since), ago: fmtAgo(since) })}` : ''}. ${t('printer.values_hidden')}`);
      }
      cons.setEnabled(live);
    }));
    sc.add(store.watch(id, CONTROL_PATHS, (p) => controls.update(p)));
    sc.add(store.watch(id, ['hms', 'link.state'], (p) => {
      const list = Array.isArray(p.hms) ? p.hms : [];
      hms.update(list, isConnected(p));
      show(hmsPanel, isConnected(p) && list.length > 0);
    }));
    sc.add(store.watch(id, ['ams', 'external_spool', 'link.state'], (p) => ams.update(p.ams, isConnected(p), p.external_spool)));

    // Chart: the last hour from the server, then a point per 10 s from live updates.
    sc.add(store.watch(id, ['model'], (p) => chart.setChamber(hasChamber(p.model, p.temps))));
    get(`/api/printers/${enc(id)}/temps`).then((d) => chart.setData(d)).catch((e) => {
      if (!(e instanceof ApiError && e.status === 401)) toast(errorText(e), { kind: 'error', title: t('chart.title') });
    });
    sc.add(store.watch(id, ['temps'], (p) => {
      if (!isConnected(p)) return;
      const tp = p.temps || {};
      chart.push({
        t: Date.now() / 1000,
        nozzle: tp.nozzle?.current ?? null, nozzle_target: tp.nozzle?.target ?? null,
        bed: tp.bed?.current ?? null, bed_target: tp.bed?.target ?? null,
        chamber: tp.chamber?.current ?? null,
      });
    }, { immediate: false }));
  }

  async function resolve() {
    if (store.has(id)) { build(); return; }
    if (!store.isLive()) return; // wait for the snapshot
    try {
      const view = await get(`/api/printers/${enc(id)}`);
      if (view && !store.has(id)) store.add(view);
      build();
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) notFound();
    }
  }

  page.appendChild(h('div', { class: 'page-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), t('common.loading')));
  sc.add(store.onList((ev) => {
    if (ev.removed.includes(id)) { built = false; sc.dispose(); notFound(); return; }
    if (!built) resolve();
  }));
  sc.add(store.onLive(() => { if (!built) resolve(); }));
  resolve();
  return () => { disposed = true; sc.dispose(); document.title = 'bambu-edge'; };
}

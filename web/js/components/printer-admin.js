// Printers management (setup wizard step 2 and Settings → Printers): the list (printers from the
// YAML config are read-only), an "add printer" form with a connection test, edit and remove.
import { ApiError, asList, del, enc, get, post, put } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { clear, field, h, scope } from '../dom.js';
import { fmtFingerprint, linkLabel, linkTone } from '../format.js';
import { t, tMaybe } from '../i18n.js';
import { icon } from '../icons.js';
import { MODEL_CHOICES } from '../models.js';
import { store } from '../store.js';
import { errorText, toast } from '../toast.js';
import { discoveredPrinters } from './discovered-printers.js';
import { createLinkBadge } from './link-badge.js';

const TEST_TONE = { connected: 'good', auth_failed: 'bad', tls_mismatch: 'warn', unreachable: 'bad' };

function testResult(res) {
  const state = typeof res?.state === 'string' ? res.state : 'unknown';
  const tone = TEST_TONE[state] || 'bad';
  const title = tMaybe(`test.${state}.title`) ?? t('test.unknown.title');
  const help = tMaybe(`test.${state}.help`) ?? '';
  const detail = typeof res?.message === 'string' && res.message ? res.message : '';
  return h('div', { class: `notice notice-${tone === 'good' ? 'good' : tone === 'warn' ? 'warn' : 'bad'}`, testid: 'test-result', dataset: { state }, role: 'status' },
    h('p', { class: 'notice-title' }, icon(tone === 'good' ? 'check' : 'alert'), title),
    help ? h('p', {}, help) : null,
    detail ? h('p', { class: 'field-hint', testid: 'test-message' }, detail) : null,
    res?.fingerprint ? h('p', { class: 'field-hint' }, `${t('link.fingerprint')}: `, h('span', { class: 'fingerprint', testid: 'test-fingerprint' }, fmtFingerprint(res.fingerprint))) : null);
}

/** The add/edit form. onSaved(view) after a successful POST/PUT. */
export function printerForm({ initial = null, onSaved, onCancel } = {}) {
  const editing = Boolean(initial);
  // A Klipper printer (type moonraker) takes name, host, Moonraker's port and its API key only.
  const kind = h('select', { name: 'type', disabled: editing },
    h('option', { value: 'bambu' }, t('printers.type_bambu')),
    h('option', { value: 'moonraker' }, t('printers.type_moonraker')));
  kind.value = initial?.type === 'moonraker' ? 'moonraker' : 'bambu';
  const klipper = () => kind.value === 'moonraker';
  const name = h('input', { name: 'name', required: true, autocomplete: 'off', maxlength: '64', value: initial?.name || '' });
  const host = h('input', { name: 'host', required: !editing, autocomplete: 'off', inputmode: 'url', spellcheck: 'false', autocapitalize: 'none', placeholder: '192.168.1.50', value: initial?.host || '' });
  const serial = h('input', { name: 'serial', required: !editing, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'characters', class: 'mono', placeholder: '01S00C123456789', value: initial?.serial || '', readOnly: editing });
  const code = h('input', { name: 'access_code', required: !editing, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', class: 'mono', maxlength: '32' });
  const model = h('select', { name: 'model' },
    h('option', { value: '' }, t('printers.model_auto')),
    MODEL_CHOICES.map((m) => h('option', { value: m }, m)));
  if (initial?.model && MODEL_CHOICES.includes(initial.model)) model.value = initial.model;
  // Ports: folded away, since nearly every printer uses the usual ones (empty = the usual one).
  const portInput = (nameAttr, usual, current) => h('input', {
    name: nameAttr, type: 'number', min: '1', max: '65535', step: '1', inputmode: 'numeric', autocomplete: 'off',
    placeholder: String(usual), value: Number.isInteger(current) && current !== usual ? String(current) : '',
  });
  const mqttPort = portInput('mqtt_port', 8883, initial?.mqtt_port);
  const ftpsPort = portInput('ftps_port', 990, initial?.ftps_port);
  const mrPort = portInput('port', 7125, initial?.port);
  const apiKey = h('input', { name: 'api_key', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', class: 'mono', maxlength: '128' });
  const ports = h('details', { class: 'form-more', testid: 'printer-ports', open: Boolean(mqttPort.value || ftpsPort.value) },
    h('summary', {}, t('printers.advanced')),
    h('div', { class: 'form-grid' },
      field({ label: t('printers.mqtt_port'), input: mqttPort, testid: 'printer-mqtt-port-input', hint: t('printers.mqtt_port_hint') }),
      field({ label: t('printers.ftps_port'), input: ftpsPort, testid: 'printer-ftps-port-input', hint: t('printers.ftps_port_hint') })));
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'printer-form-error', hidden: true });
  const resultSlot = h('div', { testid: 'test-result-slot', 'aria-live': 'polite' });
  const testBtn = h('button', { type: 'button', class: 'btn', testid: 'printer-test' }, icon('refresh'), t('printers.test'));
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'printer-save' }, editing ? t('common.save') : t('printers.add'));
  const cancel = onCancel ? h('button', { type: 'button', class: 'btn btn-ghost', testid: 'printer-cancel', onclick: onCancel }, t('common.cancel')) : null;

  // Adding: the printers heard on the network, one click fills in the fields they announce.
  const discovered = editing ? null : discoveredPrinters({
    onPick: (p) => {
      if (p.type === 'moonraker') {
        kind.value = 'moonraker';
        paintKind();
        host.value = p.host;
        mrPort.value = Number.isInteger(p.port) && p.port !== 7125 ? String(p.port) : '';
        if (!name.value.trim()) name.value = p.name || p.host;
        for (const input of [host, name]) invalid(input, false);
        error.hidden = true;
        name.focus();
        return;
      }
      kind.value = 'bambu';
      paintKind();
      host.value = p.host;
      serial.value = p.serial;
      model.value = p.model || '';
      if (!name.value.trim()) name.value = p.name || p.serial;
      for (const input of [host, serial, name]) invalid(input, false);
      clear(resultSlot);
      error.hidden = true;
      code.focus();
    },
  });
  const hostField = field({ label: t('printers.host'), input: host, testid: 'printer-host-input', hint: t('printers.host_hint') });
  const bambuOnly = [
    field({ label: t('printers.serial'), input: serial, testid: 'printer-serial-input', hint: editing ? null : t('printers.serial_hint') }),
    field({ label: t('printers.access_code'), input: code, testid: 'printer-code-input', hint: editing ? t('printers.keep_hint') : t('printers.code_hint') }),
    field({ label: t('printers.model'), input: model, testid: 'printer-model-input' }),
    ports, testBtn, resultSlot];
  const klipperOnly = [
    field({ label: t('printers.moonraker_port'), input: mrPort, testid: 'printer-port-input', hint: t('printers.moonraker_port_hint') }),
    field({ label: t('printers.api_key'), input: apiKey, testid: 'printer-api-key-input', hint: editing ? t('printers.keep_hint') : t('printers.api_key_hint') })];
  const form = h('form', { class: 'form', testid: editing ? 'printer-edit-form' : 'printer-form', novalidate: true },
    discovered?.el,
    h('div', { class: 'form-grid' },
      field({ label: t('printers.type'), input: kind, testid: 'printer-type-input' }),
      field({ label: t('printers.name'), input: name, testid: 'printer-name-input' }),
      hostField, ...bambuOnly.slice(0, 3), ...klipperOnly),
    bambuOnly[3], bambuOnly[5], error,
    h('div', { class: 'form-actions' }, testBtn, save, cancel));

  function paintKind() {
    hostField.querySelector('.field-hint').textContent = klipper() ? t('printers.moonraker_host_hint') : t('printers.host_hint');
    for (const el of bambuOnly) el.hidden = klipper();
    for (const el of klipperOnly) el.hidden = !klipper();
    clear(resultSlot);
    error.hidden = true;
  }
  kind.addEventListener('change', paintKind);
  paintKind();

  function invalid(input, on) {
    if (on) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  }

  /** The port typed in, null when empty (the usual one), NaN when it is not a port. */
  function portOf(input) {
    const v = input.value.trim();
    if (!v) return null;
    const n = Number(v);
    return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : Number.NaN;
  }

  function validate(forTest) {
    if (klipper()) {
      const badPort = Number.isNaN(portOf(mrPort));
      invalid(mrPort, badPort);
      const missing = [[host, !editing], [name, true]].filter(([input, need]) => need && !input.value.trim()).map(([input]) => input);
      for (const input of [host, name]) invalid(input, missing.includes(input));
      if (badPort || missing.length) {
        error.textContent = badPort ? t('printers.bad_port') : t('printers.missing');
        error.hidden = false;
        (badPort ? mrPort : missing[0]).focus();
        return false;
      }
      error.hidden = true;
      return true;
    }
    for (const input of [mqttPort, ftpsPort]) {
      const bad = Number.isNaN(portOf(input));
      invalid(input, bad);
      if (bad) {
        ports.open = true;
        error.textContent = t('printers.bad_port');
        error.hidden = false;
        input.focus();
        return false;
      }
    }
    const missing = [];
    const need = [[host, !editing || forTest], [serial, !editing || forTest], [code, !editing || forTest], [name, !forTest]];
    for (const [input, required] of need) {
      const bad = required && !input.value.trim();
      invalid(input, bad);
      if (bad) missing.push(input);
    }
    if (missing.length) {
      error.textContent = t('printers.missing');
      error.hidden = false;
      missing[0].focus();
      return false;
    }
    error.hidden = true;
    return true;
  }

  testBtn.addEventListener('click', async () => {
    if (!validate(true)) return;
    testBtn.disabled = true;
    testBtn.classList.add('is-pending');
    clear(resultSlot).appendChild(h('p', { class: 'field-hint', testid: 'test-running' }, t('printers.testing')));
    try {
      const body = { host: host.value.trim(), serial: serial.value.trim(), access_code: code.value };
      if (portOf(mqttPort) !== null) body.mqtt_port = portOf(mqttPort);
      const res = await post('/api/printers/test', body, { timeout: 45000 });
      clear(resultSlot).appendChild(testResult(res));
    } catch (e) {
      clear(resultSlot).appendChild(h('div', { class: 'notice notice-bad', testid: 'test-result', dataset: { state: 'error' }, role: 'status' }, h('p', {}, errorText(e))));
    } finally {
      testBtn.disabled = false;
      testBtn.classList.remove('is-pending');
    }
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!validate(false)) return;
    save.disabled = true;
    save.classList.add('is-pending');
    try {
      let view;
      // The access code is sent as typed: the server refuses spaces rather than trimming a code.
      if (klipper()) {
        const body = { name: name.value.trim() };
        if (host.value.trim()) body.host = host.value.trim();
        if (apiKey.value) body.api_key = apiKey.value;
        if (editing) {
          body.port = portOf(mrPort) ?? 7125;
          view = await put(`/api/printers/${enc(initial.id)}`, body);
        } else {
          body.type = 'moonraker';
          if (portOf(mrPort) !== null) body.port = portOf(mrPort);
          view = await post('/api/printers', body);
        }
      } else if (editing) {
        const body = { name: name.value.trim(), model: model.value || null };
        if (host.value.trim()) body.host = host.value.trim();
        if (code.value) body.access_code = code.value;
        body.mqtt_port = portOf(mqttPort) ?? 8883;
        body.ftps_port = portOf(ftpsPort) ?? 990;
        view = await put(`/api/printers/${enc(initial.id)}`, body);
      } else {
        const body = { name: name.value.trim(), host: host.value.trim(), serial: serial.value.trim(), access_code: code.value };
        if (model.value) body.model = model.value;
        if (portOf(mqttPort) !== null) body.mqtt_port = portOf(mqttPort);
        if (portOf(ftpsPort) !== null) body.ftps_port = portOf(ftpsPort);
        view = await post('/api/printers', body);
      }
      if (view && view.id !== undefined) {
        // The live socket may already have said more than this answer knows (the link connected
        // a moment after the printer was added or changed): its link state stands.
        const known = store.get(String(view.id));
        store.add(known ? { ...view, link: known.link } : view);
      }
      toast(editing ? t('printers.saved', { name: name.value.trim() }) : t('printers.added', { name: name.value.trim() }), { kind: 'success' });
      if (!editing) { form.reset(); clear(resultSlot); ports.open = false; paintKind(); }
      onSaved?.(view);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      save.disabled = false;
      save.classList.remove('is-pending');
    }
  });
  return form;
}

/** The list of printers with their source (config file = read-only) and edit/remove for the rest. */
export function printerAdmin({ showForm = true } = {}) {
  const sc = scope();
  const list = h('ul', { class: 'list', testid: 'printer-list' });
  const empty = h('p', { class: 'page-sub', testid: 'printer-list-empty', hidden: true }, t('printers.none'));
  const formSlot = h('div', {});
  let printers = [];

  let rowScope = scope(); // the rows' live link badges, replaced on every repaint

  function row(p) {
    const id = String(p.id);
    const name = typeof p.name === 'string' && p.name ? p.name : id;
    const ro = Boolean(p.read_only);
    // Live from the store (WebSocket) once the printer is there; the fetched state until then.
    const st = p.link?.state;
    const badge = store.has(id) ? createLinkBadge(id, rowScope) : (st ? h('span', { class: `badge tone-${linkTone(st)}` }, linkLabel(st)) : null);
    const actions = h('div', { class: 'form-actions' });
    const li = h('li', { class: 'list-item', testid: 'printer-row', dataset: { printerId: id, readOnly: ro ? 'true' : 'false' } },
      h('div', { class: 'list-main' },
        h('div', { class: 'list-title' }, h('span', {}, name),
          p.model ? h('span', { class: 'chip' }, String(p.model)) : null,
          badge,
          ro ? h('span', { class: 'badge tone-idle no-dot', testid: 'read-only', title: t('printers.read_only_hint') }, icon('lock'), t('printer.read_only')) : null),
        h('div', { class: 'list-sub mono', testid: 'printer-row-address' }, p.type === 'moonraker' ? `Klipper · ${p.host}:${p.port}` : [p.serial, p.host].filter((x) => typeof x === 'string' && x).join(' · ')),
        ro ? h('div', { class: 'list-sub' }, t('printers.read_only_hint')) : null),
      actions);
    if (!ro) {
      actions.append(
        h('button', { type: 'button', class: 'btn btn-small', testid: 'printer-edit', 'aria-label': t('printers.edit_named', { name }), onclick: () => edit(p, li) }, t('common.edit')),
        h('button', { type: 'button', class: 'btn btn-small btn-danger', testid: 'printer-remove', 'aria-label': t('printers.remove_named', { name }), onclick: () => remove(p) }, icon('trash'), t('common.remove')));
    }
    return li;
  }

  function edit(p, li) {
    const form = printerForm({
      initial: p,
      onSaved: () => load(),
      onCancel: () => { form.remove(); },
    });
    li.after(h('li', { class: 'list-item' }, form));
    form.querySelector('input')?.focus();
  }

  async function remove(p) {
    const name = p.name || p.id;
    const ok = await confirmDialog({ title: t('printers.remove_title', { name }), body: t('printers.remove_body'), ok: t('common.remove'), danger: true });
    if (!ok) return;
    try {
      await del(`/api/printers/${enc(p.id)}`);
      store.remove(p.id);
      toast(t('printers.removed', { name }), { kind: 'success' });
      load();
    } catch (e) {
      toast(errorText(e), { kind: 'error' });
    }
  }

  function paint() {
    rowScope.dispose();
    rowScope = scope();
    clear(list);
    for (const p of printers) list.appendChild(row(p));
    empty.hidden = printers.length > 0;
  }

  // While the WebSocket is live the store holds the same views as GET /api/printers (its snapshot
  // and printer_added/removed frames), so the list comes from there; it is fetched only when the
  // store is not live, and then once: the snapshot that follows repaints it without a second fetch.
  function fromStore() {
    printers = store.list();
    paint();
  }

  async function load() {
    if (store.isLive()) {
      fromStore();
      return;
    }
    try {
      const fetched = asList(await get('/api/printers'), 'printers').filter((p) => p && p.id !== undefined);
      if (store.isLive()) fromStore(); // the snapshot came in meanwhile: it is the newer one
      else {
        printers = fetched;
        paint();
      }
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) toast(errorText(e), { kind: 'error' });
    }
  }

  if (showForm) formSlot.appendChild(printerForm({ onSaved: () => load() }));
  sc.add(store.onList(() => { if (store.isLive()) fromStore(); }));
  sc.add(store.onLive((live) => { if (live) fromStore(); }));
  load();
  const el = h('div', { class: 'form' }, list, empty);
  return { el, formEl: formSlot, reload: load, destroy: () => { rowScope.dispose(); sc.dispose(); } };
}
